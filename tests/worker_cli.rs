//! `concourse worker` as a process: serves Garden and Baggageclaim standalone, stops on
//! SIGTERM, and finds its volumes again when restarted on the same work dir.

mod worker_support;

use concourse::baggageclaim::BaggageclaimClient;
use concourse::garden::GardenClient;
use concourse::proto::baggageclaim::{Baggageclaim, Strategy, VolumeRequest};
use concourse::proto::garden::{ContainerSpec, Garden, ProcessIo, ProcessSpec};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use worker_support::eventually;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Worker {
    child: Child,
    garden: GardenClient,
    bc: BaggageclaimClient,
}

impl Worker {
    async fn start(work_dir: &std::path::Path) -> Worker {
        Self::start_with(work_dir, "houdini").await
    }

    async fn start_with(work_dir: &std::path::Path, runtime: &str) -> Worker {
        let (gp, bp) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_concourse"))
            .args(["worker", "--work-dir"])
            .arg(work_dir)
            // The linux runtime gets the overlay driver: its COW volumes are mounts.
            .args(["--runtime", runtime, "--baggageclaim-driver"])
            .arg(if runtime == "linux" {
                "overlay"
            } else {
                "naive"
            })
            .args([
                "--bind-port",
                &gp.to_string(),
                "--baggageclaim-bind-port",
                &bp.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker");
        let w = Worker {
            child,
            garden: GardenClient::new(format!("http://127.0.0.1:{gp}")),
            bc: BaggageclaimClient::new(format!("http://127.0.0.1:{bp}")),
        };
        eventually(Duration::from_secs(30), "worker serving", || async {
            (w.garden.ping().await.is_ok() && w.bc.list_volumes(Default::default()).await.is_ok())
                .then_some(())
        })
        .await;
        w
    }

    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("wait")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn a_standalone_worker_serves_both_apis_and_keeps_volumes_across_restarts() {
    let work = tempfile::tempdir().expect("tmp");
    let w = Worker::start(work.path()).await;
    let v =
        w.bc.create_volume(VolumeRequest::new("kept", Strategy::Empty))
            .await
            .expect("volume");
    let spec = ContainerSpec {
        handle: "c".into(),
        bind_mounts: vec![concourse::proto::garden::BindMount {
            src_path: v.path.clone(),
            dst_path: "/out".into(),
            mode: concourse::proto::garden::BindMountMode::ReadWrite,
            origin: 0,
        }],
        ..Default::default()
    };
    w.garden.create(spec).await.expect("container");
    let spec = ProcessSpec {
        path: "sh".into(),
        args: vec!["-c".into(), "echo made > out/file".into()],
        dir: "/".into(),
        ..Default::default()
    };
    let p = w
        .garden
        .run("c", spec, ProcessIo::default())
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 0);
    assert!(w.stop().success(), "SIGTERM stops the worker cleanly");

    let w = Worker::start(work.path()).await;
    let again =
        w.bc.lookup_volume("kept")
            .await
            .expect("volume found after restart");
    assert_eq!(
        std::fs::read_to_string(format!("{}/file", again.path)).expect("file"),
        "made\n"
    );
    assert!(
        w.garden
            .list(Default::default())
            .await
            .expect("list")
            .is_empty(),
        "containers do not survive a restart"
    );
    w.stop();
}

#[test]
fn worker_without_work_dir_fails_with_upstream_wording() {
    let out = Command::new(env!("CARGO_BIN_EXE_concourse"))
        .arg("worker")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("the required flag `--work-dir' was not specified"));
}

#[tokio::test]
async fn the_in_process_worker_parts_serve_the_traits_directly() {
    let work = tempfile::tempdir().expect("tmp");
    let parts =
        concourse::roles::worker::WorkerParts::open_default(work.path(), None).expect("parts");
    let (garden, bc) = (parts.garden(), parts.baggageclaim());
    let v = bc
        .create_volume(VolumeRequest::new("scratch", Strategy::Empty))
        .await
        .expect("volume");
    assert!(
        std::path::Path::new(&v.path).starts_with(work.path().canonicalize().expect("canonical"))
    );
    garden.ping().await.expect("ping");
    assert!(garden
        .list(Default::default())
        .await
        .expect("list")
        .is_empty());
}

/// A worker that is not root has no isolation to offer: it refuses to start unless the
/// unisolated `process` runtime is asked for by name. Run as `nobody` through setpriv
/// (needs root to switch; skipped otherwise, failing in CI).
#[test]
fn a_worker_that_is_not_root_needs_the_process_runtime_by_name() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !is_root || !std::path::Path::new("/usr/bin/setpriv").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root with setpriv"
        );
        eprintln!("skipped: needs root and setpriv to run a worker as another user");
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let chowned = Command::new("chown")
        .args(["nobody", &work.to_string_lossy()])
        .status()
        .expect("chown");
    assert!(chowned.success());
    let as_nobody = |extra: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid",
                "nobody",
                "--regid",
                "nogroup",
                "--clear-groups",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_concourse"))
            .args(["worker", "--work-dir", &work.to_string_lossy()])
            .args(["--bind-ip", "127.0.0.1", "--bind-port", "0"])
            .args([
                "--baggageclaim-bind-ip",
                "127.0.0.1",
                "--baggageclaim-bind-port",
                "0",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let out = as_nobody(&[]).wait_with_output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass --runtime process"), "{err}");

    let mut child = as_nobody(&["--runtime", "process"]);
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let warned = lines.any(|l| l.is_ok_and(|l| l.contains("tasks run unisolated")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "the process runtime says what it does not isolate");
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect()
}

/// Whether the worker's work dir has anything mounted under it.
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let work = dir.canonicalize().expect("canonical");
    std::fs::read_to_string("/proc/mounts")
        .expect("mounts")
        .lines()
        .filter(|l| l.contains(&*work.to_string_lossy()))
        .map(String::from)
        .collect()
}

/// A container running `sleep MARKER` (and, on the linux runtime, a COW volume: an overlay
/// mount), what a stop must not leave behind.
async fn leave_work_running(w: &Worker, marker: &str) {
    w.garden
        .create(ContainerSpec {
            handle: "left-behind".into(),
            rootfs: concourse::proto::garden::WORKER_ROOTFS.into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let parent =
        w.bc.create_volume(VolumeRequest::new("parent", Strategy::Empty))
            .await
            .expect("volume");
    w.bc.create_volume(VolumeRequest::new(
        "child",
        Strategy::Cow {
            volume: parent.handle,
        },
    ))
    .await
    .expect("cow volume");
    let spec = ProcessSpec {
        path: "sleep".into(),
        args: vec![marker.into()],
        ..Default::default()
    };
    let _p = w
        .garden
        .run("left-behind", spec, ProcessIo::default())
        .await
        .expect("run");
    eventually(Duration::from_secs(10), "the process running", || async {
        (!processes_with(&format!("sleep {marker}")).is_empty()).then_some(())
    })
    .await;
}

/// SIGTERM destroys the worker's containers: their processes end and (linux runtime)
/// nothing stays mounted under the work dir.
async fn stopping_a_worker_leaves_nothing_running(runtime: &str, marker: &str) {
    let dir = tempfile::tempdir().expect("temp");
    let w = Worker::start_with(dir.path(), runtime).await;
    leave_work_running(&w, marker).await;
    if runtime == "linux" {
        assert!(
            !mounts_under(dir.path()).is_empty(),
            "rootfs and COW mounts"
        );
    }
    assert!(w.stop().success());
    assert_eq!(
        processes_with(&format!("sleep {marker}")),
        Vec::<String>::new()
    );
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
}

/// A worker killed with SIGKILL cannot clean up: its containers keep running. The next
/// worker on that work dir reaps them (processes, mounts) before it serves.
#[tokio::test]
async fn a_worker_started_after_a_kill_reaps_what_the_killed_one_left() {
    if !worker_support::root_or_skip("a_worker_started_after_a_kill_reaps_what_the_killed_one_left")
    {
        return;
    }
    let marker = "4247";
    let dir = tempfile::tempdir().expect("temp");
    let mut w = Worker::start_with(dir.path(), "linux").await;
    leave_work_running(&w, marker).await;
    w.child.kill().expect("kill -9");
    w.child.wait().expect("wait");
    assert_eq!(
        processes_with(&format!("sleep {marker}")).len(),
        1,
        "a killed worker leaves its containers running"
    );
    let w = Worker::start_with(dir.path(), "linux").await;
    assert_eq!(
        processes_with(&format!("sleep {marker}")),
        Vec::<String>::new()
    );
    // What is mounted now is the restarted worker's own (the COW volume it recovered).
    assert!(w.stop().success());
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn stopping_a_process_runtime_worker_ends_its_containers_processes() {
    stopping_a_worker_leaves_nothing_running("houdini", "4241").await;
}

#[tokio::test]
async fn stopping_a_linux_runtime_worker_ends_its_containers_and_mounts() {
    if worker_support::root_or_skip(
        "stopping_a_linux_runtime_worker_ends_its_containers_and_mounts",
    ) {
        stopping_a_worker_leaves_nothing_running("linux", "4243").await;
    }
}
