//! Container networking of the linux backend (root only; never skipped in CI): each
//! container with outbound rules has an eth0 on the worker's bridge and reaches other
//! hosts through the worker's NAT, but never the worker host itself nor denied networks;
//! hermetic containers have loopback only; nothing is left on the host afterwards.
//!
//! The "remote host" is a network namespace of this test joined to the host by a veth
//! pair; every address a container dials is on this machine.

mod worker_support;

use bytes::Bytes;
use concourse::garden::linux::network::{HostNames, NetworkConfig};
use concourse::garden::linux::{LinuxBackend, LinuxConfig};
use concourse::garden::{server, Containers, GardenClient, GardenConfig};
use concourse::proto::garden::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use worker_support::*;

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Per test `k`: the container pool 10.(200+2k).N.0/24 and the remote network
/// 10.(201+2k).N.0/24, N from the pid, so tests and parallel runs do not share one.
fn nets(k: u8) -> (String, String) {
    let n = std::process::id() % 250;
    (
        format!("10.{}.{n}", 200 + 2 * k),
        format!("10.{}.{n}", 201 + 2 * k),
    )
}

/// A namespace at `<net>.2` (host end `<net>.1`) serving `remote-ok` over HTTP on 8080.
struct Remote {
    ns: String,
    host_veth: String,
    host_ip: String,
    ip: String,
    httpd: Option<Child>,
    _docroot: tempfile::TempDir,
}

impl Remote {
    async fn start(k: u8, net: &str) -> Remote {
        let id = std::process::id();
        let (ns, host_veth, inner) = (
            format!("cgn-{id}-{k}"),
            format!("cgr{id}{k}"),
            format!("cgp{id}{k}"),
        );
        let (host_ip, ip) = (format!("{net}.1"), format!("{net}.2"));
        let (host_cidr, cidr) = (format!("{host_ip}/24"), format!("{ip}/24"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &ns],
            vec![
                "ip", "link", "add", &host_veth, "type", "veth", "peer", "name", &inner, "netns",
                &ns,
            ],
            vec!["ip", "addr", "add", &host_cidr, "dev", &host_veth],
            vec!["ip", "link", "set", &host_veth, "up"],
            vec!["ip", "-n", &ns, "addr", "add", &cidr, "dev", &inner],
            vec!["ip", "-n", &ns, "link", "set", &inner, "up"],
            vec!["ip", "-n", &ns, "link", "set", "lo", "up"],
        ];
        let docroot = tempfile::tempdir().expect("docroot");
        std::fs::write(docroot.path().join("index.html"), "remote-ok\n").expect("index");
        // Made first so a failing step still removes what the earlier ones made.
        let mut remote = Remote {
            ns: ns.clone(),
            host_veth: host_veth.clone(),
            host_ip,
            ip: ip.clone(),
            httpd: None,
            _docroot: docroot,
        };
        for step in &steps {
            sh(step).unwrap_or_else(|e| panic!("setting up the remote host: {e}"));
        }
        // The remote has no route to the container pool: only the worker's NAT lets
        // replies find their way back.
        let httpd = Command::new("ip")
            .args(["netns", "exec", &ns, "/bin/busybox", "httpd", "-f", "-p"])
            .arg(format!("{ip}:8080"))
            .arg("-h")
            .arg(remote._docroot.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("httpd");
        remote.httpd = Some(httpd);
        let addr = format!("{ip}:8080");
        eventually(
            Duration::from_secs(10),
            "the remote httpd listening",
            || {
                let addr = addr.clone();
                async move { tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ()) }
            },
        )
        .await;
        remote
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(mut httpd) = self.httpd.take() {
            let _ = httpd.kill();
            let _ = httpd.wait();
        }
        let _ = sh(&["ip", "link", "del", &self.host_veth]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

struct G {
    client: GardenClient,
    containers: Arc<Containers>,
    names: HostNames,
    rootfs: String,
    /// The Garden's port, listening on every address of the host.
    port: u16,
    _dir: tempfile::TempDir,
    _stop: StopOnDrop,
}

fn busybox_rootfs(at: &Path) {
    let bin = at.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    for applet in ["sh", "cat", "ip", "nc", "printf"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
    }
    std::fs::create_dir_all(at.join("etc")).expect("etc");
}

fn can_run(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    let tools = ["ip", "iptables", "nsenter"]
        .iter()
        .all(|t| sh(&["sh", "-c", &format!("command -v {t}")]).is_ok());
    if !tools || !Path::new("/bin/busybox").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI installs iproute2, iptables and busybox-static"
        );
        eprintln!("skipping {test}: needs ip, iptables, nsenter and /bin/busybox");
        return false;
    }
    true
}

async fn start(network: NetworkConfig) -> G {
    let dir = tempfile::tempdir().expect("tmp");
    busybox_rootfs(&dir.path().join("image"));
    let backend = LinuxBackend::with_config(LinuxConfig {
        stage: env!("CARGO_BIN_EXE_concourse").into(),
        work_dir: dir.path().to_path_buf(),
        allowed_raw_rootfs: vec![dir.path().join("image")],
        network,
    })
    .expect("linux backend");
    let containers = Containers::new(
        Arc::new(backend),
        GardenConfig {
            dir: dir.path().join("containers"),
            default_grace_time: Duration::ZERO,
            max_containers: 0,
        },
    )
    .expect("containers");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let token = CancellationToken::new();
    tokio::spawn(server::run(
        listener,
        Arc::new(containers.clone()),
        token.clone(),
    ));
    G {
        client: GardenClient::new(format!("http://127.0.0.1:{port}")),
        containers,
        names: HostNames::of(dir.path()),
        rootfs: format!("raw://{}", dir.path().join("image").display()),
        port,
        _dir: dir,
        _stop: StopOnDrop(token),
    }
}

impl G {
    async fn create(&self, handle: &str, networked: bool) {
        self.client
            .create(ContainerSpec {
                handle: handle.into(),
                rootfs: self.rootfs.clone(),
                netout_rules: if networked {
                    vec![NetOutRule::allow_all()]
                } else {
                    vec![]
                },
                ..Default::default()
            })
            .await
            .expect("create");
    }

    /// Runs a script as an unprivileged container's root: (status, stdout, stderr).
    async fn run(&self, handle: &str, script: &str) -> (i32, String, String) {
        let (otx, orx) = mpsc::channel(16);
        let (etx, erx) = mpsc::channel(16);
        let spec = ProcessSpec {
            path: "sh".into(),
            args: vec!["-c".into(), script.into()],
            ..Default::default()
        };
        let io = ProcessIo {
            stdin: None,
            stdout: Some(otx),
            stderr: Some(etx),
            ..Default::default()
        };
        let p = self.client.run(handle, spec, io).await.expect("run");
        let (o, e) = (tokio::spawn(drain(orx)), tokio::spawn(drain(erx)));
        let status = p.wait().await.expect("wait");
        (status, o.await.expect("stdout"), e.await.expect("stderr"))
    }

    /// An HTTP GET of `http://{addr}{path}` from inside the container: Ok(response) or
    /// Err(what went wrong). With `nc`: the static busybox's wget needs NSS libraries a
    /// bare rootfs lacks.
    async fn get(&self, handle: &str, addr: &str, path: &str) -> Result<String, String> {
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}");
        match self.run(handle, &script).await {
            (0, out, _) => Ok(out),
            (status, out, err) => Err(format!("exit {status}: {err}{out}")),
        }
    }

    /// Destroys the containers and the backend's bridge and rules; asserts none is left.
    async fn finish_leaving_nothing(self) {
        assert!(
            links().contains(&self.names.bridge),
            "the bridge {} exists while containers run",
            self.names.bridge
        );
        assert!(rules().contains(&self.names.chain_prefix));
        self.containers.close().await;
        let left: Vec<String> = links()
            .lines()
            .filter(|l| l.contains(&self.names.bridge) || l.contains(&self.names.veth_prefix))
            .map(String::from)
            .collect();
        assert!(left.is_empty(), "interfaces left: {left:?}");
        let rules = rules();
        assert!(
            !rules.contains(&self.names.chain_prefix),
            "rules left: {rules}"
        );
    }
}

async fn drain(mut rx: mpsc::Receiver<Bytes>) -> String {
    let mut out = Vec::new();
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn links() -> String {
    sh(&["ip", "-o", "link", "show"]).expect("ip link")
}

fn rules() -> String {
    let filter = sh(&["iptables", "-w", "-S"]).expect("iptables -S");
    let nat = sh(&["iptables", "-w", "-t", "nat", "-S"]).expect("iptables -t nat -S");
    filter + &nat
}

fn config(pool: &str) -> NetworkConfig {
    NetworkConfig {
        pool: format!("{pool}.0/24").parse().expect("pool"),
        ..Default::default()
    }
}

fn refused(result: Result<String, String>, what: &str) {
    match result {
        Err(e) => assert!(e.contains("refused"), "{what}: {e}"),
        Ok(body) => panic!("{what} answered: {body}"),
    }
}

#[tokio::test]
async fn a_container_reaches_other_hosts_through_nat_but_never_the_worker_host() {
    let test = "a_container_reaches_other_hosts_through_nat_but_never_the_worker_host";
    if !can_run(test) {
        return;
    }
    let (pool, remote_net) = nets(1);
    let remote = Remote::start(1, &remote_net).await;
    let g = start(config(&pool)).await;
    // A service of the host on its loopback only.
    let local = std::net::TcpListener::bind("127.0.0.1:0").expect("bind local");
    let local_port = local.local_addr().expect("addr").port();

    g.create("web", true).await;
    let (status, out, err) = g
        .run(
            "web",
            "ip -o -4 addr show eth0; ip -o link show eth0; cat /etc/hosts; ip route",
        )
        .await;
    assert_eq!(status, 0, "{err}");
    let ip = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .expect("an IPv4 address on eth0")
        .to_string();
    assert!(ip.starts_with(&format!("{pool}.")), "{ip} from {pool}.0/24");
    assert_ne!(ip, format!("{pool}.1"), "the gateway is the bridge's");
    assert!(out.contains(&format!("{ip} web\n")), "/etc/hosts: {out}");
    assert!(out.contains("127.0.0.1 localhost web\n"), "{out}");
    assert!(
        out.contains(&format!("default via {pool}.1 dev eth0")),
        "{out}"
    );
    let host_mtu = sh(&["sh", "-c", "cat /sys/class/net/$(ip route show default | awk '{print $5; exit}')/mtu 2>/dev/null || echo 1500"])
        .expect("mtu");
    assert!(
        out.contains(&format!("mtu {}", host_mtu.trim())),
        "the host's MTU: {out}"
    );

    let response = g
        .get("web", &format!("{}:8080", remote.ip), "/")
        .await
        .expect("the remote host answers through the worker's NAT");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\nremote-ok\n"), "{response}");

    // The worker host: its Garden (on 0.0.0.0) through the gateway and through another of
    // its addresses, and its loopback-only service (127.0.0.1 is the container's own).
    refused(
        g.get("web", &format!("{pool}.1:{}", g.port), "/ping").await,
        "the host's Garden at the gateway",
    );
    refused(
        g.get("web", &format!("{}:{}", remote.host_ip, g.port), "/ping")
            .await,
        "the host's Garden at another host address",
    );
    refused(
        g.get("web", &format!("127.0.0.1:{local_port}"), "/").await,
        "the host's loopback service",
    );
    g.client.ping().await.expect("the Garden does listen");
    // Nor over IPv6: the host's side of the link has no address to dial.
    let v6 = sh(&["ip", "-6", "addr", "show", "dev", &g.names.bridge]).expect("ip -6");
    assert_eq!(v6.trim(), "", "the bridge has no IPv6 address");
    let veth = links()
        .lines()
        .find_map(|l| {
            l.split(": ")
                .nth(1)
                .filter(|n| n.starts_with(&g.names.veth_prefix))
                .map(|n| n.split('@').next().unwrap_or(n).to_string())
        })
        .expect("the container's host interface");
    let v6 = sh(&["ip", "-6", "addr", "show", "dev", &veth]).expect("ip -6");
    assert_eq!(v6.trim(), "", "{veth} has no IPv6 address");

    // No rules: hermetic, loopback only.
    g.create("sealed", false).await;
    let (status, out, err) = g.run("sealed", "ip -o link show").await;
    assert_eq!(status, 0, "{err}");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim))
        .collect();
    assert_eq!(names, ["lo"], "{out}");
    let err = g
        .get("sealed", &format!("{}:8080", remote.ip), "/")
        .await
        .expect_err("a hermetic container reaches nothing");
    assert!(err.contains("unreachable"), "{err}");

    // Destroying a container removes its host interface at once.
    let veths = |links: &str| links.matches(&g.names.veth_prefix).count();
    assert_eq!(veths(&links()), 1);
    g.client.destroy("web").await.expect("destroy");
    assert_eq!(veths(&links()), 0, "{}", links());
    g.create("again", true).await;
    assert!(g
        .get("again", &format!("{}:8080", remote.ip), "/")
        .await
        .is_ok());
    drop(local);
    g.finish_leaving_nothing().await;
    drop(remote);
}

#[tokio::test]
async fn denied_networks_are_refused() {
    if !can_run("denied_networks_are_refused") {
        return;
    }
    let (pool, remote_net) = nets(2);
    let remote = Remote::start(2, &remote_net).await;
    let mut network = config(&pool);
    network.deny = vec![format!("{}/32", remote.ip).parse().expect("cidr")];
    let g = start(network).await;
    g.create("denied", true).await;
    refused(
        g.get("denied", &format!("{}:8080", remote.ip), "/").await,
        "a denied network",
    );
    g.finish_leaving_nothing().await;
}

#[tokio::test]
async fn allow_host_access_lets_containers_reach_the_worker_host() {
    if !can_run("allow_host_access_lets_containers_reach_the_worker_host") {
        return;
    }
    let (pool, _) = nets(3);
    let mut network = config(&pool);
    network.allow_host_access = true;
    network.dns_servers = vec!["192.0.2.53".parse().expect("ip")];
    let g = start(network).await;
    g.create("friend", true).await;
    // A service of the host on all its addresses, greeting whoever connects.
    let service = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = service.local_addr().expect("addr").port();
    let greeter = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut conn, _)) = service.accept() {
            let _ = conn.write_all(b"host-ok\n");
        }
    });
    let (status, out, err) = g
        .run("friend", &format!("nc -w 5 {pool}.1 {port} </dev/null"))
        .await;
    assert_eq!((status, out.as_str()), (0, "host-ok\n"), "{err}");
    greeter.join().expect("greeter");
    let (_, conf, _) = g.run("friend", "cat /etc/resolv.conf").await;
    assert!(conf.starts_with("nameserver 192.0.2.53\n"), "{conf}");
    g.finish_leaving_nothing().await;
}

#[tokio::test]
async fn a_worker_removes_the_bridges_and_rules_killed_workers_left() {
    if !can_run("a_worker_removes_the_bridges_and_rules_killed_workers_left") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let names = HostNames::of(dir.path());
    let chain = format!("{}fwd", names.chain_prefix);
    let veth = format!("{}1", names.veth_prefix);
    let peer = format!("{veth}p");
    for step in [
        vec!["ip", "link", "add", &names.bridge, "type", "bridge"],
        vec![
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ],
        vec!["iptables", "-w", "-N", &chain],
        vec!["iptables", "-w", "-I", "FORWARD", "1", "-j", &chain],
    ] {
        sh(&step).expect("leftovers");
    }
    // A killed worker on another work dir: its bridge's alias names a process that is gone.
    let other = HostNames::of(&dir.path().join("other"));
    let other_chain = format!("{}nat", other.chain_prefix);
    let mut gone = Command::new("true").spawn().expect("spawn");
    gone.wait().expect("wait");
    let pidns = std::fs::read_link("/proc/self/ns/pid").expect("pidns");
    let tag = format!(
        "concourse worker pid={} start=1 pidns={}",
        gone.id(),
        pidns.display()
    );
    // A bridge no worker tagged is not ours to remove.
    let foreign = HostNames::of(&dir.path().join("foreign"));
    for step in [
        vec!["ip", "link", "add", &other.bridge, "type", "bridge"],
        vec!["ip", "link", "set", "dev", &other.bridge, "alias", &tag],
        vec!["iptables", "-w", "-t", "nat", "-N", &other_chain],
        vec![
            "iptables",
            "-w",
            "-t",
            "nat",
            "-I",
            "POSTROUTING",
            "1",
            "-j",
            &other_chain,
        ],
        vec!["ip", "link", "add", &foreign.bridge, "type", "bridge"],
    ] {
        sh(&step).expect("a killed worker's leftovers");
    }
    let backend = LinuxBackend::with_config(LinuxConfig {
        stage: env!("CARGO_BIN_EXE_concourse").into(),
        work_dir: dir.path().to_path_buf(),
        network: config(&nets(4).0),
        ..Default::default()
    })
    .expect("backend");
    let links = links();
    let _ = sh(&["ip", "link", "del", &foreign.bridge]);
    for n in [&names, &other] {
        assert!(!links.contains(&n.bridge), "{links}");
        assert!(!links.contains(&n.veth_prefix), "{links}");
        let rules = rules();
        assert!(!rules.contains(&n.chain_prefix), "{rules}");
    }
    assert!(links.contains(&foreign.bridge), "{links}");
    drop(backend);
}
