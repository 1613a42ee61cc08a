//! `fly watch` outlives a web node restart: the event stream is resumed from the last event
//! seen (`Last-Event-ID`), as upstream's SSE client does, and the watch ends with the build.

mod common;

use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
jobs:
- name: long
  plan:
  - task: wait
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: sh, args: [-c, "echo waiting-$((40+2)); sleep 600"]}
"#;

/// Kills the watch if the test fails before it ends, so no process outlives the test.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watch_resumes_after_the_web_node_restarts() {
    let server = Server::quickstart(Backend::Embedded);
    let fly = Fly::new();
    fly.login(&server, "t");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("p.yml");
    std::fs::write(&config, PIPELINE).expect("pipeline");
    fly.ok(&[
        "-t",
        "t",
        "set-pipeline",
        "-n",
        "-p",
        "p",
        "-c",
        config.to_str().unwrap(),
    ]);
    fly.ok(&["-t", "t", "unpause-pipeline", "-p", "p"]);
    fly.ok(&["-t", "t", "trigger-job", "-j", "p/long"]);

    let watch = Command::new(bin())
        .args(["fly", "-t", "t", "watch", "-j", "p/long"])
        .env("HOME", fly.home.path())
        .env_remove("FLY_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fly watch");
    let mut watch = Reaped(watch);
    // What the watch prints, as it prints it.
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut pipe = watch.0.stdout.take().unwrap();
    let sink = shown.clone();
    let reader = std::thread::spawn(move || {
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
    wait_until("the task's output in the watch", || {
        shown.lock().unwrap().contains("waiting-42")
    });

    // A crashed node, restarted on the same port: it ends the build it cannot resume
    // (errored), and the watch, reconnected, shows that end.
    let server = server.restart_in_place();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = watch.0.try_wait().expect("waiting for fly watch") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "fly watch did not end after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    reader.join().expect("reader");
    let out = shown.lock().unwrap().clone();
    let mut err = String::new();
    watch
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        out.matches("waiting-42").count() == 1,
        "the log is shown once, not replayed after reconnecting:\n{out}"
    );
    assert!(
        out.contains("errored"),
        "the watch follows the build to its end:\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!status.success(), "an errored build's watch fails");
    drop(server);
}
