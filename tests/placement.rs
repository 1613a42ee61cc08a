//! Container placement strategies on a real quickstart: `limit-active-tasks` holds a
//! task back ("no suitable workers found") while the worker already runs its limit, and
//! starts it once the running task ends.

mod common;

use common::{stderr, stdout, Backend, Fly, Server};
use std::time::{Duration, Instant};

const T: &str = "place";

const PIPELINE: &str = r#"
jobs:
- name: hold
  plan:
  - task: hold
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run:
        path: sh
        args: [-c, "echo holding; while [ ! -e /tmp/release ]; do sleep 0.1; done"]
- name: next
  plan:
  - task: next
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: echo, args: [next ran]}
"#;

fn eventually(fly: &Fly, args: &[&str], what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = std::process::Command::new("timeout")
            .arg("3")
            .arg(common::bin())
            .args(["fly", "-t", T])
            .args(args)
            .env("HOME", fly.home.path())
            .env_remove("FLY_HOME")
            .output()
            .expect("fly");
        let text = format!("{}{}", stdout(&out), stderr(&out));
        if cond(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn limit_active_tasks_holds_a_task_until_the_worker_has_room(backend: Backend) {
    let server = Server::quickstart_with(
        backend,
        &[
            "--container-placement-strategy",
            "volume-locality,limit-active-tasks",
            "--max-active-tasks-per-worker",
            "1",
        ],
    );
    let fly = Fly::new();
    fly.login(&server, T);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    let file = file.to_string_lossy().to_string();
    fly.ok(&["-t", T, "set-pipeline", "-n", "-p", "p", "-c", &file]);
    fly.ok(&["-t", T, "unpause-pipeline", "-p", "p"]);
    fly.ok(&["-t", T, "trigger-job", "-j", "p/hold"]);
    eventually(&fly, &["watch", "-j", "p/hold"], "hold to run", |o| {
        o.contains("holding")
    });
    fly.ok(&["-t", T, "trigger-job", "-j", "p/next"]);
    eventually(&fly, &["watch", "-j", "p/next"], "next to wait", |o| {
        o.contains("no suitable workers found, waiting for worker")
    });
    let next = fly.ok(&["-t", T, "builds", "-j", "p/next"]);
    assert!(next.contains("started"), "next waits, started: {next}");
    assert!(!next.contains("succeeded"), "{next}");
    // Release the held task from inside its container (works on every runtime).
    fly.ok(&[
        "-t",
        T,
        "intercept",
        "-j",
        "p/hold",
        "-s",
        "hold",
        "--",
        "touch",
        "/tmp/release",
    ]);
    eventually(&fly, &["builds", "-j", "p/next"], "next to finish", |o| {
        o.contains("succeeded")
    });
    let out = fly.ok(&["-t", T, "watch", "-j", "p/next"]);
    assert!(out.contains("next ran"), "{out}");
}

#[test]
fn limit_active_tasks_on_the_embedded_store() {
    limit_active_tasks_holds_a_task_until_the_worker_has_room(Backend::Embedded);
}

#[test]
fn limit_active_tasks_on_postgres() {
    if let Some(b) = Backend::postgres("limit_active_tasks_on_postgres") {
        limit_active_tasks_holds_a_task_until_the_worker_has_room(b);
    }
}

#[test]
fn an_unknown_strategy_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(common::bin())
        .args(["quickstart", "--container-placement-strategy", "nearest"])
        .args([
            "--bind-port",
            "0",
            "--tsa-bind-port",
            "0",
            "--bind-ip",
            "127.0.0.1",
        ])
        .args(["--add-local-user", "a:b", "--main-team-local-user", "a"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("quickstart");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid container placement strategy: nearest"),
        "{}",
        stderr(&out)
    );
}
