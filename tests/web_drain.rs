//! SIGTERM of a web node is a drain: running builds go on to their end (the API and the
//! event stream keep serving them), then the node exits; past `--shutdown-grace-period`
//! what still runs is aborted, saying why, and nothing is left running.

mod common;

use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pipeline(script: &str) -> String {
    format!(
        r#"
jobs:
- name: j
  plan:
  - task: work
    config:
      platform: linux
      image_resource: {{type: mock, source: {{mirror_self: true}}}}
      run: {{path: sh, args: [-c, "{script}"]}}
"#
    )
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the watch if the test fails before it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets the pipeline, triggers its job and watches the build; returns the watch and what
/// it has printed so far (growing).
fn start_build(
    server: &Server,
    fly: &Fly,
    script: &str,
) -> (Reaped, std::sync::Arc<std::sync::Mutex<String>>) {
    fly.login(server, "t");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("p.yml");
    std::fs::write(&config, pipeline(script)).expect("pipeline");
    let path = config.to_str().unwrap();
    fly.ok(&["-t", "t", "set-pipeline", "-n", "-p", "p", "-c", path]);
    fly.ok(&["-t", "t", "unpause-pipeline", "-p", "p"]);
    fly.ok(&["-t", "t", "trigger-job", "-j", "p/j"]);
    let mut watch = Command::new(bin())
        .args(["fly", "-t", "t", "watch", "-j", "p/j"])
        .env("HOME", fly.home.path())
        .env_remove("FLY_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fly watch");
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut pipe = watch.stdout.take().unwrap();
    let sink = shown.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    (Reaped(watch), shown)
}

fn sigterm(server: &Server) {
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
}

async fn build_status(server: &Server) -> (String, String) {
    let store = server.store().await;
    let builds = store
        .builds_with_status(&[
            concourse::db::BuildStatus::Succeeded,
            concourse::db::BuildStatus::Aborted,
            concourse::db::BuildStatus::Errored,
            concourse::db::BuildStatus::Failed,
            concourse::db::BuildStatus::Started,
        ])
        .await
        .expect("builds");
    let b = builds.first().expect("the build");
    let events = store.build_events(b.id, 0, 0).await.expect("events");
    let log: Vec<String> = events.iter().map(|(_, e)| e.to_string()).collect();
    (b.status.as_str().to_string(), log.join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_build_finishes_before_the_node_exits() {
    let mut server = Server::quickstart_with(Backend::Embedded, &["--shutdown-grace-period", "2m"]);
    let fly = Fly::new();
    let (mut watch, shown) = start_build(
        &server,
        &fly,
        "echo started-$((40+2)); sleep 5; echo finished-$((1+1))",
    );
    wait_until("the task to start", || {
        shown.lock().unwrap().contains("started-42")
    });
    sigterm(&server);
    wait_until("the node to exit", || server.exited());
    let status = watch.0.wait().expect("watch");
    let out = shown.lock().unwrap().clone();
    assert!(
        out.contains("finished-2"),
        "the task ran to its end:\n{out}"
    );
    assert!(out.contains("succeeded"), "the watch saw the end:\n{out}");
    assert!(status.success(), "{out}");
    let (status, _) = build_status(&server).await;
    assert_eq!(status, "succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_grace_period_builds_are_aborted_saying_why() {
    let mut server = Server::quickstart_with(Backend::Embedded, &["--shutdown-grace-period", "1s"]);
    let fly = Fly::new();
    let (_watch, shown) = start_build(&server, &fly, "echo started-$((40+2)); sleep 600");
    wait_until("the task to start", || {
        shown.lock().unwrap().contains("started-42")
    });
    sigterm(&server);
    wait_until("the node to exit", || server.exited());
    let (status, log) = build_status(&server).await;
    assert_eq!(status, "aborted", "{log}");
    assert!(log.contains("shut down before it finished"), "{log}");
    let leftover = Command::new("pgrep")
        .args(["-f", "sleep 600"])
        .output()
        .expect("pgrep");
    assert!(
        leftover.stdout.is_empty(),
        "the task's process ended with the node: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}
