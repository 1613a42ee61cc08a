//! Worker registration over real SSH: `concourse web` with its TSA, the in-process beacon,
//! and a stand-in Garden/Baggageclaim at the far end of real reverse tunnels.

mod common;
#[path = "common/tsa.rs"]
mod tsa_support;

use common::Backend;
use concourse::beacon::{self, BeaconError, Ended};
use concourse::proto::worker::{TsaEventKind, WorkerState};
use std::time::Duration;
use tsa_support::{Gateway, RunningBeacon, StandIn};

const FAST: &[&str] = &["--tsa-heartbeat-interval", "1s", "--gc-interval", "1s"];

async fn forwarded_worker_lifecycle(backend: Backend) {
    let gateway = Gateway::start(backend, FAST);
    let local = StandIn::start().await;
    let token = gateway.admin_token().await;
    let (events_tx, mut events) = tokio::sync::broadcast::channel(16);
    let mut config = gateway.beacon("worker-1", &local);
    config.events = Some(events_tx);

    let beacon = RunningBeacon::start(config.clone());
    let registered = tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("an event within 30s")
        .expect("event channel open");
    assert_eq!(registered, TsaEventKind::Registered);
    let worker = gateway
        .wait_for_state(&token, "worker-1", WorkerState::Running)
        .await;

    // The address is the peer address and a port bound by the TSA, not the local server's.
    let addr = worker["addr"].as_str().expect("addr").to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_ne!(addr, local.addr);
    let bc_url = worker["baggageclaim_url"]
        .as_str()
        .expect("url")
        .to_string();
    assert!(bc_url.starts_with("http://127.0.0.1:"), "{bc_url}");
    // Both really reach the stand-in through the tunnel.
    let handles: serde_json::Value = reqwest::get(format!("http://{addr}/containers"))
        .await
        .expect("GET through the garden tunnel")
        .json()
        .await
        .expect("JSON");
    assert_eq!(handles, serde_json::json!({"Handles": ["c1", "c2"]}));
    let volumes: Vec<serde_json::Value> = reqwest::get(format!("{bc_url}/volumes"))
        .await
        .expect("GET through the baggageclaim tunnel")
        .json()
        .await
        .expect("JSON");
    assert_eq!(volumes.len(), 3);
    assert_eq!(worker["active_containers"], 2, "counted through the tunnel");
    assert_eq!(worker["active_volumes"], 3);
    // Heartbeats keep coming.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("a heartbeat within 30s")
            .expect("event channel open");
        if event == TsaEventKind::Heartbeated {
            break;
        }
    }

    // A stopped beacon stops heartbeating: the worker stalls after its TTL.
    assert_eq!(beacon.stop().await.expect("clean stop"), Ended::Stopped);
    gateway
        .wait_for_state(&token, "worker-1", WorkerState::Stalled)
        .await;

    // It comes back when a beacon reconnects, on new ports.
    let beacon = RunningBeacon::start(config.clone());
    let again = gateway
        .wait_for_state(&token, "worker-1", WorkerState::Running)
        .await;
    assert!(again["addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));

    // Landing (on a second connection) marks it landing; with nothing running on it the
    // collector lands it, the TSA ends the registration and the beacon is done.
    beacon::land(&config).await.expect("land-worker");
    let state = gateway.worker(&token, "worker-1").await.expect("listed")["state"].clone();
    assert!(state == "landing" || state == "landed", "{state}");
    let landed = gateway
        .wait_for_state(&token, "worker-1", WorkerState::Landed)
        .await;
    assert_eq!(landed["addr"], "", "a landed worker has no address");
    let ended = tokio::time::timeout(Duration::from_secs(30), beacon.task)
        .await
        .expect("registration ended within 30s")
        .expect("beacon task");
    assert_eq!(ended.expect("clean end"), Ended::Finished);
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_worker_registers_stalls_recovers_and_lands() {
    forwarded_worker_lifecycle(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_worker_registers_stalls_recovers_and_lands_on_postgres() {
    let Some(backend) =
        Backend::postgres("a_forwarded_worker_registers_stalls_recovers_and_lands_on_postgres")
    else {
        return;
    };
    forwarded_worker_lifecycle(backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_worker_key_is_refused() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let config = gateway.beacon_with_key("intruder", &local, tsa_support::worker_key());
    let err = beacon::land(&config).await.expect_err("unknown key");
    assert!(matches!(err, BeaconError::Unauthorized), "{err}");
    let token = gateway.admin_token().await;
    assert!(gateway.worker(&token, "intruder").await.is_none());
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_another_host_key_is_refused() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let mut config = gateway.beacon("w", &local);
    let other = tsa_support::worker_key();
    config.tsa_public_keys = vec![other.public_key().clone()];
    let err = beacon::land(&config).await.expect_err("pinned key differs");
    assert!(
        matches!(err, BeaconError::HostKeyRejected | BeaconError::Ssh(_)),
        "{err}"
    );
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_key_cannot_register_a_global_worker() {
    let team_key = tsa_support::worker_key();
    let team_line = tsa_support::public_line(&team_key);
    let gateway = Gateway::start_with_keys(Backend::Embedded, FAST, |dir| {
        let path = dir.join("main_keys");
        std::fs::write(&path, format!("{team_line}\n")).expect("writing team keys");
        vec![
            "--tsa-team-authorized-keys".into(),
            format!("main:{}", path.display()),
        ]
    });
    let local = StandIn::start().await;
    let config = gateway.beacon_with_key("global-worker", &local, team_key.clone());
    let err = beacon::run(config, Default::default())
        .await
        .expect_err("a team key registering a global worker");
    match err {
        BeaconError::CommandFailed { command, message } => {
            assert_eq!(command, "forward-worker");
            assert_eq!(
                message,
                "key is authorized for team main, but worker is global"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    let mut config = gateway.beacon_with_key("other-team-worker", &local, team_key);
    config.worker.team = "other".into();
    let err = beacon::land(&config)
        .await
        .expect_err("another team's worker");
    assert!(
        err.to_string()
            .ends_with("key is authorized for team main, but worker belongs to team other"),
        "{err}"
    );
    let token = gateway.admin_token().await;
    assert!(gateway.worker(&token, "global-worker").await.is_none());
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_parsed_and_checked_like_upstream() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let unknown = gateway.exec_raw("register-nonsense", b"{}").await;
    assert!(unknown.refused);
    assert_eq!(
        unknown.stdout,
        "invalid command: unknown command: register-nonsense"
    );

    // Every command reads the payload first; garbage fails the command with exit status 1.
    let garbage = gateway.exec_raw("land-worker", b"not json").await;
    assert!(!garbage.refused);
    assert_eq!(garbage.exit_status, Some(1));
    assert!(
        garbage.stderr.starts_with("invalid worker payload"),
        "{garbage:?}"
    );

    // forward-worker without the forwards it names fails with upstream's message.
    let unforwarded = gateway
        .exec_raw(
            "forward-worker --garden 0.0.0.0:7777 --baggageclaim 0.0.0.0:7788",
            br#"{"name":"w","version":"3.0"}"#,
        )
        .await;
    assert_eq!(unforwarded.exit_status, Some(1));
    assert_eq!(
        unforwarded.stderr.trim(),
        "garden address (0.0.0.0:7777) not forwarded"
    );

    // Sweeps answer the (empty) list of handles to destroy.
    let sweep = gateway
        .exec_raw("sweep-containers", br#"{"name":"w"}"#)
        .await;
    assert_eq!(sweep.exit_status, Some(0));
    assert_eq!(sweep.stdout, "[]");
    let unnamed = gateway.exec_raw("sweep-volumes", br#"{"name":""}"#).await;
    assert_eq!(
        (unnamed.exit_status, unnamed.stderr.trim()),
        (Some(1), "empty-worker-name")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_host_key_is_kept_across_restarts() {
    let server = common::Server::start(Backend::Embedded);
    let path = server.dir.path().join("data").join("tsa_host_key");
    let first = std::fs::read(&path).expect("host key generated into the data dir");
    let server = server.restart();
    assert_eq!(std::fs::read(&path).expect("host key still there"), first);
    assert!(!server.tsa_addr.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beacon_with_no_reachable_gateway_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let key = tsa_support::worker_key();
    let config = beacon::BeaconConfig::new(
        vec![addr.clone(), addr],
        vec![key.public_key().clone()],
        key,
        Default::default(),
        "127.0.0.1:1".into(),
        "127.0.0.1:1".into(),
    );
    let err = beacon::land(&config).await.expect_err("nothing listens");
    assert_eq!(err.to_string(), "all worker SSH gateways unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_authorized_keys() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let newcomer = tsa_support::worker_key();
    let config = gateway.beacon_with_key("newcomer", &local, newcomer.clone());
    let err = beacon::retire(&config)
        .await
        .expect_err("not yet authorized");
    assert!(matches!(err, BeaconError::Unauthorized), "{err}");

    let keys = gateway.keys_dir.path().join("authorized_keys");
    let mut text = std::fs::read_to_string(&keys).expect("reading keys");
    text.push_str(&format!("{}\n", tsa_support::public_line(&newcomer)));
    std::fs::write(&keys, text).expect("writing keys");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gateway.server.pid().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());

    // retire-worker tolerates an unknown worker, so success means "authenticated".
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match beacon::retire(&config).await {
            Ok(()) => break,
            Err(BeaconError::Unauthorized) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("key not accepted after SIGHUP: {e}"),
        }
    }
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_keys_file_binds_its_keys_to_the_team() {
    let team_key = tsa_support::worker_key();
    let team_line = tsa_support::public_line(&team_key);
    let gateway = Gateway::start_with_keys(Backend::Embedded, FAST, |dir| {
        let path = dir.join("team_keys.yml");
        std::fs::write(
            &path,
            format!("- team: main\n  ssh_keys:\n  - {team_line}\n"),
        )
        .expect("writing team keys file");
        vec![
            "--tsa-team-authorized-keys-file".into(),
            path.display().to_string(),
        ]
    });
    let local = StandIn::start().await;
    let token = gateway.admin_token().await;

    let mut config = gateway.beacon_with_key("team-worker", &local, team_key.clone());
    config.worker.team = "main".into();
    let beacon = RunningBeacon::start(config);
    let worker = gateway
        .wait_for_state(&token, "team-worker", WorkerState::Running)
        .await;
    assert_eq!(worker["team"], "main");
    assert_eq!(beacon.stop().await.expect("clean stop"), Ended::Stopped);

    let config = gateway.beacon_with_key("global-worker", &local, team_key);
    let err = beacon::land(&config)
        .await
        .expect_err("global worker with a team key");
    assert!(
        err.to_string()
            .ends_with("key is authorized for team main, but worker is global"),
        "{err}"
    );
    local.stop().await;
}

/// A gateway where `team_key` may act only for team `main`.
fn gateway_with_main_team_key(team_key: &russh::keys::PrivateKey, extra: &[&str]) -> Gateway {
    let team_line = tsa_support::public_line(team_key);
    Gateway::start_with_keys(Backend::Embedded, extra, |dir| {
        let path = dir.join("main_keys");
        std::fs::write(&path, format!("{team_line}\n")).expect("writing team keys");
        vec![
            "--tsa-team-authorized-keys".into(),
            format!("main:{}", path.display()),
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_key_cannot_land_retire_or_delete_a_worker_outside_its_team() {
    let team_key = tsa_support::worker_key();
    let gateway = gateway_with_main_team_key(&team_key, FAST);
    let local = StandIn::start().await;
    let token = gateway.admin_token().await;
    let global = RunningBeacon::start(gateway.beacon("global-worker", &local));
    gateway
        .wait_for_state(&token, "global-worker", WorkerState::Running)
        .await;

    // The payload claims the key's team; the stored worker is global.
    let payload = br#"{"name":"global-worker","team":"main","version":"3.0"}"#;
    for command in ["land-worker", "retire-worker", "delete-worker"] {
        let result = gateway.exec_raw_with_key(&team_key, command, payload).await;
        assert_eq!(result.exit_status, Some(1), "{command}: {result:?}");
        assert_eq!(
            result.stderr.trim(),
            "key is authorized for team main, but worker global-worker is global",
            "{command}"
        );
        let worker = gateway
            .worker(&token, "global-worker")
            .await
            .unwrap_or_else(|| panic!("{command} left the worker in place"));
        assert_eq!(worker["state"], "running", "{command} changed nothing");
    }

    // The team key keeps its power over its own team's workers.
    let mut config = gateway.beacon_with_key("team-worker", &local, team_key);
    config.worker.team = "main".into();
    let team_worker = RunningBeacon::start(config.clone());
    gateway
        .wait_for_state(&token, "team-worker", WorkerState::Running)
        .await;
    beacon::land(&config).await.expect("landing its own worker");
    let state = gateway.worker(&token, "team-worker").await.expect("listed")["state"].clone();
    assert!(state == "landing" || state == "landed", "{state}");

    assert_eq!(global.stop().await.expect("clean stop"), Ended::Stopped);
    let _ = team_worker.stop().await;
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_worker_refuses_addresses_off_the_workers_own_ip() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let token = gateway.admin_token().await;
    // The test's SSH peer is 127.0.0.1; each of these points elsewhere.
    for (addr, url, message) in [
        (
            "127.0.0.2:5432",
            "http://127.0.0.1:7788",
            "garden address (127.0.0.2:5432) must be an IP:port on the worker's own address (127.0.0.1)",
        ),
        (
            "localhost:5432",
            "http://127.0.0.1:7788",
            "garden address (localhost:5432) must be an IP:port on the worker's own address (127.0.0.1)",
        ),
        (
            "127.0.0.1:7777",
            "http://169.254.169.254:80",
            "baggageclaim url (http://169.254.169.254:80) must be http://IP:port on the worker's own address (127.0.0.1)",
        ),
    ] {
        let payload = serde_json::json!({
            "name": "direct", "version": "3.0", "platform": "linux",
            "addr": addr, "baggageclaim_url": url,
        });
        let result = gateway
            .exec_raw("register-worker", payload.to_string().as_bytes())
            .await;
        assert_eq!(result.exit_status, Some(1), "{addr} {url}: {result:?}");
        assert_eq!(result.stderr.trim(), message);
        assert!(gateway.worker(&token, "direct").await.is_none());
    }
}

/// An interrupted registration (the client's signal) fails: only a worker that landed or is
/// gone ends with status 0, which tells a beacon to stop for good. A worker once exited
/// when its web node merely restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_registration_is_not_a_landing() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let payload = serde_json::json!({
        "name": "direct", "version": "3.0", "platform": "linux",
        "addr": local.addr, "baggageclaim_url": format!("http://{}", local.addr),
    });
    let result = gateway
        .exec_interrupted(
            "register-worker",
            payload.to_string().as_bytes(),
            "registered",
        )
        .await;
    assert!(result.stdout.contains("registered"), "{result:?}");
    assert_eq!(result.exit_status, Some(1), "{result:?}");
    assert_eq!(result.stderr.trim(), "registration interrupted");
    local.stop().await;
}

/// A web node that stops (SIGTERM) ends its registrations without an answer: the beacon
/// reconnects to the node that comes back on the same address instead of taking the end as
/// final. The TSA used to answer `registration interrupted` (exit 1), and when that beat
/// the disconnect, the beacon gave up and its worker exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beacon_comes_back_to_a_web_node_that_stopped_and_restarted() {
    let mut gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let (events_tx, mut events) = tokio::sync::broadcast::channel(64);
    let mut config = gateway.beacon("comeback", &local);
    config.events = Some(events_tx);
    let beacon = RunningBeacon::start(config);
    registered(&mut events).await;
    for round in 0..3 {
        let Gateway {
            mut server,
            host_public,
            worker_key,
            keys_dir,
        } = gateway;
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !server.exited() {
            assert!(std::time::Instant::now() < deadline, "web never exited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !beacon.task.is_finished(),
            "round {round}: the beacon gave up"
        );
        gateway = Gateway {
            server: server.restart_in_place(),
            host_public,
            worker_key,
            keys_dir,
        };
        registered(&mut events).await;
    }
    assert!(matches!(beacon.stop().await, Ok(Ended::Stopped)));
    local.stop().await;
}

async fn registered(events: &mut tokio::sync::broadcast::Receiver<TsaEventKind>) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("registered within 30s");
        match event {
            Ok(TsaEventKind::Registered) => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("beacon events: {e}"),
        }
    }
}

/// The addresses (hex, as in /proc/net/tcp*) of the sockets listening on `port`.
fn listening_addresses(port: u16) -> Vec<String> {
    let mut found = vec![];
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((ip, hex_port)) = local.rsplit_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push(ip.to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_ports_listen_only_on_the_peer_address() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let token = gateway.admin_token().await;
    let beacon = RunningBeacon::start(gateway.beacon("worker-1", &local));
    let worker = gateway
        .wait_for_state(&token, "worker-1", WorkerState::Running)
        .await;
    let garden: std::net::SocketAddr = worker["addr"]
        .as_str()
        .expect("addr")
        .parse()
        .expect("an IP:port");
    let baggageclaim: std::net::SocketAddr = worker["baggageclaim_url"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .expect("baggageclaim_url")
        .parse()
        .expect("an IP:port");
    for addr in [garden, baggageclaim] {
        assert_eq!(
            addr.ip().to_string(),
            "127.0.0.1",
            "the default peer address"
        );
        // 0100007F is 127.0.0.1; 00000000 would be every interface.
        assert_eq!(
            listening_addresses(addr.port()),
            vec!["0100007F".to_string()],
            "what listens on {addr}"
        );
        // Through another local address the port is closed, where one exists.
        let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
        let outward = probe
            .connect("192.0.2.1:9")
            .and_then(|()| probe.local_addr())
            .map(|a| a.ip());
        match outward {
            Ok(ip) if !ip.is_loopback() && !ip.is_unspecified() => {
                let reached = tokio::net::TcpStream::connect((ip, addr.port())).await;
                assert!(reached.is_err(), "{addr}'s port answers on {ip}");
            }
            _ => eprintln!("no non-loopback local address: only the listener table checked"),
        }
    }
    assert_eq!(beacon.stop().await.expect("clean stop"), Ended::Stopped);
    local.stop().await;
}

/// OpenSSH's `ssh`, or None (printing why) when it is missing outside CI.
fn openssh_client() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("ssh"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let why = "OpenSSH's ssh client is not installed (Debian: openssh-client)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipping: {why}");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_runs_a_tsa_command_with_keepalives_and_exits_zero() {
    use std::io::{BufRead, Write};
    let Some(ssh) = openssh_client() else {
        return;
    };
    // Heartbeats 4 s apart leave the connection silent long enough for OpenSSH to send
    // keep-alives; with two unanswered in a row it would give up.
    let gateway = Gateway::start(
        Backend::Embedded,
        &["--tsa-heartbeat-interval", "4s", "--gc-interval", "1s"],
    );
    let local = StandIn::start().await;
    let token = gateway.admin_token().await;
    let dir = gateway.keys_dir.path();
    let key_path = dir.join("openssh_worker_key");
    gateway
        .worker_key
        .write_openssh_file(&key_path, russh::keys::ssh_key::LineEnding::LF)
        .expect("writing the worker key");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod 600");
    }
    let (host, port) = gateway.server.tsa_addr.rsplit_once(':').expect("host:port");
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "[{host}]:{port} {}\n",
            gateway.host_public.to_openssh().expect("host key")
        ),
    )
    .expect("writing known_hosts");

    let mut child = std::process::Command::new(ssh)
        .args(["-F", "/dev/null", "-p", port, "-i"])
        .arg(&key_path)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ServerAliveCountMax=2",
            // Debian's ssh_config sends LANG before the exec, as most users' ssh does.
            "-o",
            "SendEnv=LANG",
        ])
        .arg(format!("beacon@{host}"))
        .arg("register-worker")
        .env("LANG", "C.UTF-8")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running ssh");
    let payload = serde_json::json!({
        "name": "openssh-worker", "version": "3.0", "platform": "linux",
        "addr": local.addr, "baggageclaim_url": format!("http://{}", local.addr),
    });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(payload.to_string().as_bytes())
        .expect("writing the payload");
    drop(stdin);
    let stdout = child.stdout.take().expect("stdout");
    let (events_tx, events) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = events_tx.send(line);
        }
    });

    gateway
        .wait_for_state(&token, "openssh-worker", WorkerState::Running)
        .await;
    // Two heartbeats: at least one silent 4 s stretch survived on keep-alives alone.
    let mut heartbeats = 0;
    while heartbeats < 2 {
        let line = match events.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("ssh output");
                panic!("no heartbeat event ({e}); ssh: {out:?}")
            }
        };
        if line.contains("heartbeated") {
            heartbeats += 1;
        }
    }

    // Landing ends the registration: the command exits 0, and so does ssh.
    beacon::land(&gateway.beacon("openssh-worker", &local))
        .await
        .expect("land-worker");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for ssh") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ssh still running 30s after landing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = child.wait_with_output().expect("ssh output");
    assert_eq!(
        status.code(),
        Some(0),
        "ssh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    local.stop().await;
}
