//! A worker at its container cap (`--worker-containerd-max-containers`, upstream's
//! `--containerd-max-containers`) never errors a build: kept check containers make room
//! (least recently used first), and when only build containers fill the worker the next
//! step waits for one to go (`waiting-for-worker`), then runs.

mod common;

use common::{Backend, Fly, Server};
use std::time::{Duration, Instant};

/// Three resources (three kept check containers), and a job whose build holds three
/// containers at once (its get, its task image's get, its task).
const PIPELINE: &str = r#"
resources:
- {name: r1, type: mock, check_every: 1s, source: {initial_version: a}}
- {name: r2, type: mock, check_every: 1s, source: {initial_version: b}}
- {name: r3, type: mock, check_every: 1s, source: {initial_version: c}}
jobs:
- name: j
  plan:
  - get: r1
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: sh, args: [-c, "sleep 2; echo done-$((2+2))"]}
- name: uses
  plan:
  - in_parallel: [{get: r2}, {get: r3}]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_at_its_container_cap_makes_work_wait_never_error() {
    let s = Server::quickstart_with(
        Backend::Embedded,
        &["--worker-containerd-max-containers", "4"],
    );
    let fly = Fly::new();
    fly.login(&s, "cap");
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    let path = file.to_str().expect("utf-8");
    fly.ok(&["-t", "cap", "set-pipeline", "-n", "-p", "p", "-c", path]);
    fly.ok(&["-t", "cap", "unpause-pipeline", "-p", "p"]);
    let token = s.token("test", "test").await;

    // Every resource gets checked (each check may take another's kept container).
    let deadline = Instant::now() + Duration::from_secs(120);
    for r in ["r1", "r2", "r3"] {
        loop {
            let v = common::get_json(
                &s,
                &token,
                &format!("/api/v1/teams/main/pipelines/p/resources/{r}/versions"),
            )
            .await;
            if v.as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            assert!(Instant::now() < deadline, "{r} never got a version");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Two builds of three containers each on a worker of four: one runs, the other waits.
    let first = common::trigger_job(&s, &token, "p", "j").await;
    let second = common::trigger_job(&s, &token, "p", "j").await;
    let uses = common::trigger_job(&s, &token, "p", "uses").await;
    for id in [first, second, uses] {
        let status = common::build_finished(&s, &token, id, Duration::from_secs(180)).await;
        assert_eq!(status, "succeeded", "build {id}");
    }
    let (a, b) = (
        common::events_text(&s, &token, first).await,
        common::events_text(&s, &token, second).await,
    );
    assert!(
        a.contains("waiting-for-worker") || b.contains("waiting-for-worker"),
        "one build waited for room:\n{a}\n{b}"
    );
    assert!(!a.contains("max containers") && !b.contains("max containers"));
}
