//! The linux backend (root only; never skipped in CI): isolation, limits, volumes, users.

mod worker_support;

use bytes::Bytes;
use concourse::baggageclaim::{DriverKind, Volumes, VolumesConfig};
use concourse::garden::linux::{LinuxBackend, LinuxConfig};
use concourse::garden::{server, Containers, GardenClient, GardenConfig};
use concourse::proto::baggageclaim::{Baggageclaim, Strategy, VolumeRequest};
use concourse::proto::garden::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use worker_support::*;

struct G {
    client: GardenClient,
    containers: Arc<Containers>,
    backend: Arc<LinuxBackend>,
    dir: tempfile::TempDir,
    rootfs: String,
    _stop: StopOnDrop,
}

impl G {
    /// Destroys every container the test made: no process, mount or cgroup outlives it.
    async fn finish(self) {
        self.containers.close().await;
    }
}

/// A minimal rootfs: static busybox and its applets, passwd/group with a non-root user.
fn busybox_rootfs(at: &Path) {
    let bin = at.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    for applet in [
        "sh", "cat", "echo", "ls", "hostname", "sleep", "dd", "touch", "id", "grep", "test", "wc",
        "mkdir", "ps", "true",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
    }
    std::fs::create_dir_all(at.join("etc")).expect("etc");
    std::fs::write(
        at.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nconcourse:x:1000:1000::/home/concourse:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(at.join("etc/group"), "root:x:0:\nconcourse:x:1000:\n").expect("group");
}

async fn start(test: &str) -> Option<G> {
    if !root_or_skip(test) {
        return None;
    }
    if !Path::new("/bin/busybox").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI installs busybox-static"
        );
        eprintln!("skipping {test}: needs /bin/busybox (apt-get install busybox-static)");
        return None;
    }
    let dir = tempfile::tempdir().expect("tmp");
    busybox_rootfs(&dir.path().join("image"));
    let backend = Arc::new(
        LinuxBackend::with_config(LinuxConfig {
            stage: env!("CARGO_BIN_EXE_concourse").into(),
            work_dir: dir.path().to_path_buf(),
            allowed_raw_rootfs: vec![dir.path().join("image"), dir.path().join("bare")],
            ..Default::default()
        })
        .expect("linux backend"),
    );
    let containers = Containers::new(
        backend.clone(),
        GardenConfig {
            dir: dir.path().join("containers"),
            default_grace_time: Duration::ZERO,
            max_containers: 0,
        },
    )
    .expect("containers");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let token = CancellationToken::new();
    tokio::spawn(server::run(
        listener,
        Arc::new(containers.clone()),
        token.clone(),
    ));
    let rootfs = format!("raw://{}", dir.path().join("image").display());
    Some(G {
        client: GardenClient::new(&url),
        containers,
        backend,
        dir,
        rootfs,
        _stop: StopOnDrop(token),
    })
}

async fn drain(mut rx: mpsc::Receiver<Bytes>) -> String {
    let mut out = Vec::new();
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a shell script; returns (exit status, stdout, stderr).
async fn run(g: &G, handle: &str, script: &str, user: &str) -> (i32, String, String) {
    let (otx, orx) = mpsc::channel(16);
    let (etx, erx) = mpsc::channel(16);
    let spec = ProcessSpec {
        path: "sh".into(),
        args: vec!["-c".into(), script.into()],
        user: user.into(),
        ..Default::default()
    };
    let p = g
        .client
        .run(
            handle,
            spec,
            ProcessIo {
                stdin: None,
                stdout: Some(otx),
                stderr: Some(etx),
                ..Default::default()
            },
        )
        .await
        .expect("run");
    let (o, e) = (tokio::spawn(drain(orx)), tokio::spawn(drain(erx)));
    let status = p.wait().await.expect("wait");
    (status, o.await.expect("stdout"), e.await.expect("stderr"))
}

/// Processes start as stages forked by the stage server, not by the worker: none of its
/// descriptors or ignored signals (Rust ignores SIGPIPE) reach them, and their environment
/// is theirs (a later value of a name wins, as with upstream's Garden).
#[tokio::test]
async fn processes_start_clean_with_only_their_own_descriptors_signals_and_environment() {
    let Some(g) = start("processes_start_clean").await else {
        return;
    };
    g.client
        .create(ContainerSpec {
            handle: "clean".into(),
            rootfs: g.rootfs.clone(),
            env: vec!["FROM=container".into(), "DUP=container".into()],
            ..Default::default()
        })
        .await
        .expect("create");
    let (otx, orx) = mpsc::channel(16);
    let spec = ProcessSpec {
        path: "sh".into(),
        args: vec![
            "-c".into(),
            "ls /proc/self/fd; grep SigIgn /proc/self/status; echo $FROM $DUP".into(),
        ],
        env: vec!["DUP=first".into(), "DUP=last".into()],
        ..Default::default()
    };
    let io = ProcessIo {
        stdout: Some(otx),
        ..Default::default()
    };
    let p = g.client.run("clean", spec, io).await.expect("run");
    let out = tokio::spawn(drain(orx));
    assert_eq!(p.wait().await.expect("wait"), 0);
    let out = out.await.expect("stdout");
    let lines: Vec<&str> = out.lines().collect();
    // 0-2 and the directory `ls` reads.
    assert_eq!(&lines[..4], ["0", "1", "2", "3"], "{out}");
    assert_eq!(
        lines[4].split_whitespace().nth(1),
        Some("0000000000000000"),
        "{out}"
    );
    assert_eq!(lines[5], "container last", "{out}");
    g.client.destroy("clean").await.expect("destroy");
}

#[tokio::test]
async fn a_container_has_its_own_pids_hostname_and_no_view_of_host_processes() {
    let Some(g) =
        start("a_container_has_its_own_pids_hostname_and_no_view_of_host_processes").await
    else {
        return;
    };
    g.client
        .create(ContainerSpec {
            handle: "iso".into(),
            rootfs: g.rootfs.clone(),
            ..Default::default()
        })
        .await
        .expect("create");
    let me = std::process::id();
    let script = format!("test -e /proc/1 && echo has-init; hostname; test -e /proc/{me} || echo host-hidden; ls /proc | grep -c '^[0-9]'");
    let (status, out, err) = run(&g, "iso", &script, "").await;
    assert_eq!(status, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["has-init", "iso", "host-hidden"], "{out}");
    let visible: u32 = lines[3].trim().parse().expect("count");
    assert!(
        visible <= 5,
        "only the container's own processes are visible, saw {visible}"
    );
    let (status, out, _) = run(&g, "iso", "echo $$; grep -c lo /proc/net/dev", "").await;
    let pid: u32 = out
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("a pid");
    assert_eq!(status, 0);
    assert!(
        pid > 1 && pid < 100,
        "the process runs under the container's own pid 1, as pid {pid}"
    );
    // Processes of one container share its pid namespace: a second one sees the first.
    let sleeper = ProcessSpec {
        id: "sleeper".into(),
        path: "sleep".into(),
        args: vec!["100".into()],
        ..Default::default()
    };
    let p = g
        .client
        .run("iso", sleeper, ProcessIo::default())
        .await
        .expect("run");
    let (_, out, _) = run(&g, "iso", "grep -l '^sleep' /proc/[0-9]*/comm | wc -l", "").await;
    assert_eq!(out.trim(), "1", "the sleeper is visible to its neighbour");
    p.signal(Signal::Kill).await.expect("kill");
    assert_eq!(p.wait().await.expect("wait"), 137);
    g.client.destroy("iso").await.expect("destroy");
    g.finish().await;
}

#[tokio::test]
async fn memory_limits_are_enforced_and_an_oom_kill_is_the_exit_status() {
    let Some(g) = start("memory_limits_are_enforced_and_an_oom_kill_is_the_exit_status").await
    else {
        return;
    };
    let spec = ContainerSpec {
        handle: "oom".into(),
        rootfs: g.rootfs.clone(),
        limits: Limits {
            memory_limits: MemoryLimits {
                limit_in_bytes: 32 * 1024 * 1024,
            },
            ..Default::default()
        },
        ..Default::default()
    };
    g.client.create(spec).await.expect("create");
    let (status, _, _) = run(
        &g,
        "oom",
        "dd if=/dev/zero of=/dev/null bs=128M count=1",
        "",
    )
    .await;
    assert_eq!(status, 137, "killed by SIGKILL");
    let info = g.client.info("oom").await.expect("info");
    assert!(
        info.events.contains(&"oom".to_string()),
        "{:?}",
        info.events
    );
    let (status, _, _) = run(&g, "oom", "dd if=/dev/zero of=/dev/null bs=1M count=4", "").await;
    assert_eq!(status, 0, "within the limit");
    g.client.destroy("oom").await.expect("destroy");
    g.finish().await;
}

#[tokio::test]
async fn volumes_are_visible_at_their_paths_and_read_only_ones_refuse_writes() {
    let Some(g) =
        start("volumes_are_visible_at_their_paths_and_read_only_ones_refuse_writes").await
    else {
        return;
    };
    let rw = tempfile::tempdir().expect("rw");
    let ro = tempfile::tempdir().expect("ro");
    std::fs::write(ro.path().join("cert.pem"), "CERT").expect("write");
    let spec = ContainerSpec {
        handle: "vol".into(),
        rootfs: g.rootfs.clone(),
        bind_mounts: vec![
            BindMount {
                src_path: rw.path().display().to_string(),
                dst_path: "/tmp/build/out".into(),
                mode: BindMountMode::ReadWrite,
                origin: 0,
            },
            BindMount {
                src_path: ro.path().display().to_string(),
                dst_path: "/etc/ssl/certs".into(),
                mode: BindMountMode::ReadOnly,
                origin: 0,
            },
        ],
        ..Default::default()
    };
    g.client.create(spec).await.expect("create");
    let spec = ProcessSpec {
        path: "sh".into(),
        args: vec!["-c".into(), "echo hi > made; pwd".into()],
        dir: "/tmp/build/out".into(),
        ..Default::default()
    };
    let (otx, orx) = mpsc::channel(16);
    let p = g
        .client
        .run(
            "vol",
            spec,
            ProcessIo {
                stdout: Some(otx),
                ..Default::default()
            },
        )
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 0);
    assert_eq!(drain(orx).await, "/tmp/build/out\n");
    assert_eq!(
        std::fs::read_to_string(rw.path().join("made")).expect("on the host"),
        "hi\n"
    );
    let (status, out, _) = run(
        &g,
        "vol",
        "cat /etc/ssl/certs/cert.pem; touch /etc/ssl/certs/x || echo refused",
        "",
    )
    .await;
    assert_eq!((status, out.as_str()), (0, "CERTrefused\n"));
    assert!(!ro.path().join("x").exists());
    g.client.destroy("vol").await.expect("destroy");
    g.finish().await;
}

#[tokio::test]
async fn a_cow_volumes_writes_from_a_container_stay_out_of_its_parent() {
    let Some(g) = start("a_cow_volumes_writes_from_a_container_stay_out_of_its_parent").await
    else {
        return;
    };
    let mut config = VolumesConfig::under(&g.dir.path().join("worker"));
    config.driver = Some(DriverKind::Overlay);
    let volumes = Volumes::open(config).expect("volumes");
    let parent = volumes
        .create_volume(VolumeRequest::new("parent", Strategy::Empty))
        .await
        .expect("parent");
    std::fs::write(format!("{}/input.txt", parent.path), "original").expect("write");
    let child = volumes
        .create_volume(VolumeRequest::new(
            "child",
            Strategy::Cow {
                volume: "parent".into(),
            },
        ))
        .await
        .expect("cow");
    let spec = ContainerSpec {
        handle: "cow".into(),
        rootfs: g.rootfs.clone(),
        bind_mounts: vec![BindMount {
            src_path: child.path.clone(),
            dst_path: "/tmp/build/input".into(),
            mode: BindMountMode::ReadWrite,
            origin: 0,
        }],
        ..Default::default()
    };
    g.client.create(spec).await.expect("create");
    let (status, out, err) = run(&g, "cow", "cat /tmp/build/input/input.txt; echo changed > /tmp/build/input/input.txt; touch /tmp/build/input/new", "").await;
    assert_eq!((status, out.as_str()), (0, "original"), "{err}");
    assert_eq!(
        std::fs::read_to_string(format!("{}/input.txt", parent.path)).expect("parent"),
        "original"
    );
    assert!(!Path::new(&format!("{}/new", parent.path)).exists());
    assert_eq!(
        std::fs::read_to_string(format!("{}/input.txt", child.path)).expect("child"),
        "changed\n"
    );
    g.client.destroy("cow").await.expect("destroy");
    volumes
        .destroy_volume("child")
        .await
        .expect("destroy child");
    volumes
        .destroy_volume("parent")
        .await
        .expect("destroy parent");
    g.finish().await;
}

#[tokio::test]
async fn only_allowed_roots_are_used_and_users_and_capabilities_apply() {
    let Some(g) = start("only_allowed_roots_are_used_and_users_and_capabilities_apply").await
    else {
        return;
    };
    // No image: refused, as upstream's containerd runtime refuses it; so is a raw root
    // outside what the operator allowed, however it is spelled.
    for (rootfs, want) in [
        ("".to_string(), "no image specified".to_string()),
        (
            "raw:///".to_string(),
            "rootfs / is not in a directory the worker allows (--allowed-raw-rootfs)".into(),
        ),
        (
            format!("raw://{}/../..", g.rootfs.trim_start_matches("raw://")),
            format!(
                "rootfs {}/../.. is not in a directory the worker allows (--allowed-raw-rootfs)",
                g.rootfs.trim_start_matches("raw://")
            ),
        ),
    ] {
        let err = g
            .client
            .create(ContainerSpec {
                handle: "host".into(),
                rootfs,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err, GardenError::BadRequest(want));
    }
    g.client
        .create(ContainerSpec {
            handle: "users".into(),
            rootfs: g.rootfs.clone(),
            ..Default::default()
        })
        .await
        .expect("create");
    let (_, out, _) = run(&g, "users", "id -u; id -g", "concourse").await;
    assert_eq!(out, "1000\n1000\n");
    let missing = ProcessSpec {
        path: "no-such-binary".into(),
        ..Default::default()
    };
    let err = g
        .client
        .run("users", missing, ProcessIo::default())
        .await
        .err();
    assert!(
        matches!(err, Some(GardenError::ExecutableNotFound { .. })),
        "{err:?}"
    );
    let ghost = ProcessSpec {
        path: "true".into(),
        user: "ghost".into(),
        ..Default::default()
    };
    let err = g
        .client
        .run("users", ghost, ProcessIo::default())
        .await
        .err();
    assert_eq!(
        err,
        Some(GardenError::Other(
            "unable to find user ghost: no matching entries in passwd file".into()
        ))
    );
    let (otx, orx) = mpsc::channel(4);
    let limited = ProcessSpec {
        path: "sh".into(),
        args: vec!["-c".into(), "ulimit -n".into()],
        rlimits: Some(serde_json::json!({"nofile": 100})),
        ..Default::default()
    };
    let p = g
        .client
        .run(
            "users",
            limited,
            ProcessIo {
                stdout: Some(otx),
                ..Default::default()
            },
        )
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 0);
    assert_eq!(drain(orx).await, "100\n");
    let cap_bnd = "grep CapBnd /proc/self/status";
    let (_, unprivileged, _) = run(&g, "users", cap_bnd, "").await;
    g.client
        .create(ContainerSpec {
            handle: "priv".into(),
            rootfs: g.rootfs.clone(),
            privileged: true,
            ..Default::default()
        })
        .await
        .expect("create");
    let (_, privileged, _) = run(&g, "priv", cap_bnd, "").await;
    assert_ne!(
        unprivileged, privileged,
        "unprivileged containers lose capabilities"
    );
    let err = g
        .client
        .create(ContainerSpec {
            handle: "bad".into(),
            rootfs: "docker:///busybox".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        GardenError::BadRequest("malformatted rootfs: must be of form 'scheme://<abs_dir>'".into())
    );
    for h in ["users", "priv"] {
        g.client.destroy(h).await.expect("destroy");
    }
    assert!(std::fs::read_dir(g.dir.path().join("containers"))
        .expect("dir")
        .next()
        .is_none());
    g.finish().await;
}

#[tokio::test]
async fn an_image_without_users_runs_as_a_named_root() {
    let Some(g) = start("an_image_without_users_runs_as_a_named_root").await else {
        return;
    };
    let bare = g.dir.path().join("bare");
    busybox_rootfs(&bare);
    std::os::unix::fs::symlink("busybox", bare.join("bin/whoami")).expect("applet");
    std::fs::remove_file(bare.join("etc/passwd")).expect("rm passwd");
    std::fs::remove_file(bare.join("etc/group")).expect("rm group");
    g.client
        .create(ContainerSpec {
            handle: "bare".into(),
            rootfs: format!("raw://{}", bare.display()),
            ..Default::default()
        })
        .await
        .expect("create");
    let (status, out, err) = run(&g, "bare", "echo running as $(whoami)", "").await;
    assert_eq!(status, 0, "stderr: {err}");
    assert_eq!(out.trim(), "running as root");
    g.finish().await;
}

/// Containers' inits and processes are forked by one stage server: one that died is
/// replaced at the next start, and none outlives the backend's close.
#[tokio::test]
async fn a_dead_stage_server_is_replaced_and_none_outlives_the_worker() {
    let Some(g) = start("a_dead_stage_server_is_replaced_and_none_outlives_the_worker").await
    else {
        return;
    };
    g.client
        .create(ContainerSpec {
            handle: "s".into(),
            rootfs: g.rootfs.clone(),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(run(&g, "s", "true", "").await.0, 0);
    let first = g.backend.stage_server().expect("a stage server runs");
    // SAFETY: kill takes integers.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    let state = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()))
            .flatten()
    };
    eventually(
        Duration::from_secs(10),
        "the stage server to die",
        || async { (state(first) == Some('Z')).then_some(()) },
    )
    .await;
    let (status, out, err) = run(&g, "s", "echo again", "").await;
    assert_eq!((status, out.trim()), (0, "again"), "stderr: {err}");
    let second = g.backend.stage_server().expect("a new stage server runs");
    assert_ne!(first, second);
    let backend = g.backend.clone();
    g.finish().await;
    assert_eq!(backend.stage_server(), None);
    assert_eq!(state(first), None, "the dead server was reaped");
    assert_eq!(state(second), None, "the server ended with the worker");
}

/// A creation whose caller gives up half-way (a client's timeout) runs on: the container
/// ends in the table, so the worker's stop destroys it, not left running unknown.
#[tokio::test]
async fn a_creation_whose_caller_went_away_ends_in_the_table() {
    let Some(g) = start("a_creation_whose_caller_went_away_ends_in_the_table").await else {
        return;
    };
    let spec = ContainerSpec {
        handle: "abandoned".into(),
        rootfs: g.rootfs.clone(),
        ..Default::default()
    };
    let abandoned = tokio::time::timeout(Duration::from_millis(1), g.containers.create(spec));
    assert!(
        abandoned.await.is_err(),
        "the creation outlasts a millisecond"
    );
    eventually(
        Duration::from_secs(30),
        "the abandoned container",
        || async {
            let listed = g.containers.list(Default::default()).await.expect("list");
            listed.contains(&"abandoned".to_string()).then_some(())
        },
    )
    .await;
    let dir = g.dir.path().join("containers/abandoned");
    g.finish().await;
    assert!(!dir.exists(), "the worker's stop destroyed it");
}

/// runc's defaults for an unprivileged container: the kernel's knobs under /proc are masked
/// or read-only, no device can be made (devices cgroup, or no CAP_MKNOD where the cgroup
/// cannot enforce it), setuid binaries gain nothing (`no_new_privs`). A privileged
/// container keeps today's behaviour.
#[tokio::test]
async fn unprivileged_containers_get_masked_proc_no_devices_and_no_new_privileges() {
    let Some(g) =
        start("unprivileged_containers_get_masked_proc_no_devices_and_no_new_privileges").await
    else {
        return;
    };
    for (handle, privileged) in [("unpriv", false), ("priv", true)] {
        g.client
            .create(ContainerSpec {
                handle: handle.into(),
                rootfs: g.rootfs.clone(),
                privileged,
                ..Default::default()
            })
            .await
            .expect("create");
    }
    let script =
        // Writes the current value back: harmless to the host even where the mask is missing.
        "cat /proc/sys/kernel/core_pattern > /tmp/cp; cat /tmp/cp > /proc/sys/kernel/core_pattern 2>/dev/null && echo wrote-core-pattern; \
         test -w /proc/sysrq-trigger && echo sysrq-writable; \
         test -s /proc/kcore && echo kcore-readable; \
         head -c 10 /proc/keys 2>/dev/null | grep -q . && echo keys-readable; \
         mknod /tmp/sda b 8 0 2>/dev/null && echo made-block-device; \
         grep NoNewPrivs /proc/self/status; \
         cat /dev/null && echo null-works; echo hi > /dev/null && echo null-writable";
    let (status, out, err) = run(&g, "unpriv", script, "").await;
    assert_eq!(status, 0, "stderr: {err}");
    assert_eq!(
        out.lines().map(str::trim).collect::<Vec<_>>(),
        ["NoNewPrivs:\t1".trim(), "null-works", "null-writable"],
        "{out}"
    );
    let (_, out, _) = run(
        &g,
        "priv",
        "grep NoNewPrivs /proc/self/status; mknod /tmp/sda b 8 0 && echo made-block-device",
        "",
    )
    .await;
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(
        out.contains("made-block-device"),
        "privileged keeps mknod: {out}"
    );
    g.finish().await;
}

/// A container has its own cgroup namespace: /sys/fs/cgroup shows its own groups, read-only,
/// so a task (or `fly intercept`) reads its limits there (upstream's container_limits test
/// reads 1073741824 and 512), and its /proc/self/cgroup paths are `/`.
#[tokio::test]
async fn a_container_sees_its_own_cgroups_read_only() {
    let Some(g) = start("a_container_sees_its_own_cgroups_read_only").await else {
        return;
    };
    if concourse::garden::linux::cgroup_version() != Some("v1") {
        eprintln!("skipped: this host has no cgroup v1 hierarchies to check limits in");
        return;
    }
    let spec = ContainerSpec {
        handle: "limited".into(),
        rootfs: g.rootfs.clone(),
        limits: Limits {
            memory_limits: MemoryLimits {
                limit_in_bytes: 1024 * 1024 * 1024,
            },
            cpu_limits: CpuLimits {
                limit_in_shares: 512,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    };
    g.client.create(spec).await.expect("create");
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares; \
         grep -c ':/$' /proc/self/cgroup >/dev/null && grep memory /proc/self/cgroup; \
         echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo raised-limit; true";
    let (status, out, err) = run(&g, "limited", script, "").await;
    assert_eq!(status, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "limits, own cgroup, and no write: {out}");
    assert_eq!(&lines[..2], ["1073741824", "512"], "{out}");
    assert!(
        lines[2].ends_with(":memory:/"),
        "its own cgroup is its root: {out}"
    );
    g.finish().await;
}

/// An unprivileged container's root is nobody on the host (a user namespace mapping root
/// to Garden's highest id); the worker's base root shows the host's system directories
/// read-only and nothing else of it; seccomp refuses new namespaces and mounts.
#[tokio::test]
async fn unprivileged_root_is_unprivileged_on_the_host_and_sees_none_of_it() {
    let Some(g) = start("unprivileged_root_is_unprivileged_on_the_host_and_sees_none_of_it").await
    else {
        return;
    };
    let work = g.dir.path().display().to_string();
    g.client
        .create(ContainerSpec {
            handle: "base".into(),
            rootfs: WORKER_ROOTFS.into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let script = format!(
        "cat /proc/self/uid_map; id -u; \
         echo ok > /tmp/w && echo tmp-writable; \
         touch /usr/concourse-probe 2>/dev/null && echo usr-writable; \
         test -e {work} && echo work-dir-visible; \
         test -e /root/.cargo && echo host-home-visible; \
         unshare -U true 2>&1 | grep -q 'not permitted' && echo user-namespace-refused; \
         unshare -m true 2>&1 | grep -q 'not permitted' && echo mount-namespace-refused; \
         mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mounted; \
         sh -c 'echo child-processes-work'"
    );
    let (status, out, err) = run(&g, "base", &script, "").await;
    assert_eq!(status, 0, "stderr: {err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0", "4294967294", "1"],
            vec!["1", "1", "4294967293"],
            vec!["0"],
            vec!["tmp-writable"],
            vec!["user-namespace-refused"],
            vec!["mount-namespace-refused"],
            vec!["child-processes-work"],
        ],
        "{out}"
    );

    // A volume written by one unprivileged container's root is its root's in the next, a
    // privileged container reads it, and a non-root user gets it handed over.
    let vol = g.dir.path().join("image/vol");
    std::fs::create_dir_all(&vol).expect("vol");
    for (handle, privileged) in [("a", false), ("b", false), ("p", true)] {
        g.client
            .create(ContainerSpec {
                handle: handle.into(),
                rootfs: g.rootfs.clone(),
                privileged,
                bind_mounts: vec![BindMount {
                    src_path: vol.display().to_string(),
                    dst_path: "/vol".into(),
                    mode: BindMountMode::ReadWrite,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .expect("create");
    }
    let (status, _, err) = run(&g, "a", "mkdir /vol/d && echo one > /vol/d/f", "").await;
    assert_eq!(status, 0, "{err}");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(vol.join("d/f")).expect("written");
    assert_eq!((meta.uid(), meta.gid()), (4294967294, 4294967294));
    let (status, _, err) = run(&g, "b", "echo two >> /vol/d/f", "").await;
    assert_eq!(status, 0, "{err}");
    let (_, out, _) = run(&g, "p", "cat /vol/d/f", "").await;
    assert_eq!(out, "one\ntwo\n");
    let (status, out, err) = run(&g, "b", "echo three >> /vol/d/f && id -u", "concourse").await;
    assert_eq!((status, out.as_str()), (0, "1000\n"), "{err}");
    g.finish().await;
}
