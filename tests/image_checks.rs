//! A task's `image_resource` check is reused as upstream's step-embedded checks are: a
//! build the scheduler started takes an image version checked within the last minute, a
//! manually triggered build checks again (no check began after it was created). Whether
//! a check ran shows in the build's events: only a check that runs selects a worker.
//! Builds checking one image take turns, and one that waited uses the check run meanwhile.

mod common;

use common::{Backend, Fly, Server};
use serde_json::Value;
use std::time::Duration;

const PIPELINE: &str = r#"
resources:
- name: r
  type: mock
  check_every: 1h
  source: {initial_version: v1}
jobs:
- name: j
  plan:
  - get: r
    trigger: true
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: echo, args: [hi]}
- name: bump
  plan:
  - put: r
    params: {version: v2}
- name: slow
  plan:
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true, check_delay: 8s}}
      run: {path: echo, args: [hi]}
"#;

/// Ids of job `j`'s finished builds, oldest first, once there are `n`.
async fn finished_builds(s: &Server, token: &str, n: usize) -> Vec<i64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let builds =
            common::get_json(s, token, "/api/v1/teams/main/pipelines/p/jobs/j/builds").await;
        let list = builds.as_array().expect("builds");
        let done = list
            .iter()
            .all(|b| !["pending", "started"].contains(&b["status"].as_str().unwrap_or("")));
        if list.len() >= n && done {
            for b in list {
                assert_eq!(b["status"], "succeeded", "{b}");
            }
            return list
                .iter()
                .rev()
                .map(|b| b["id"].as_i64().expect("id"))
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "j never had {n} finished builds: {builds}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The build's image-check events, by kind: (`selected-worker` count, a successful finish).
async fn image_check(s: &Server, token: &str, build: i64) -> (usize, bool) {
    let text = common::events_text(s, token, build).await;
    let mut selected = 0;
    let mut succeeded = false;
    for line in text.lines() {
        let Some(json) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(e) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let origin = e["data"]["origin"]["id"].as_str().unwrap_or("");
        if !origin.ends_with("/image-check") {
            continue;
        }
        match e["event"].as_str() {
            Some("selected-worker") => selected += 1,
            Some("finish") => succeeded = e["data"]["succeeded"] == true,
            _ => {}
        }
    }
    (selected, succeeded)
}

/// A quickstart with PIPELINE set and unpaused as `p`, and a token for its API.
async fn with_pipeline() -> (Server, String) {
    let s = Server::quickstart(Backend::Embedded);
    let fly = Fly::new();
    fly.login(&s, "t");
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    let file = file.to_str().expect("utf-8");
    fly.ok(&["-t", "t", "set-pipeline", "-n", "-p", "p", "-c", file]);
    fly.ok(&["-t", "t", "unpause-pipeline", "-p", "p"]);
    let token = s.token("test", "test").await;
    (s, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_builds_reuse_a_recent_image_check_and_manual_ones_check_again() {
    let (s, token) = with_pipeline().await;

    // v1 triggers the first build: nothing was checked yet, so its image check runs.
    let first = finished_builds(&s, &token, 1).await[0];
    assert_eq!(image_check(&s, &token, first).await, (1, true));

    // v2 triggers the second within the minute: the image's version is reused.
    let bump = common::trigger_job(&s, &token, "p", "bump").await;
    assert_eq!(
        common::build_finished(&s, &token, bump, Duration::from_secs(120)).await,
        "succeeded"
    );
    let second = finished_builds(&s, &token, 2).await[1];
    assert_eq!(image_check(&s, &token, second).await, (0, true));

    // By hand: the last check began before this build was created, so it checks again.
    let manual = common::trigger_job(&s, &token, "p", "j").await;
    assert_eq!(
        common::build_finished(&s, &token, manual, Duration::from_secs(120)).await,
        "succeeded"
    );
    assert_eq!(image_check(&s, &token, manual).await, (1, true));
}

/// Reads a build's event stream (live) until `done` holds on what came so far.
async fn events_until(s: &Server, token: &str, build: i64, done: impl Fn(&str) -> bool) {
    let mut resp = reqwest::Client::new()
        .get(s.api(&format!("/api/v1/builds/{build}/events")))
        .bearer_auth(token)
        .send()
        .await
        .expect("events");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !done(&text) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("build {build}'s events never got there:\n{text}"))
            .expect("events chunk")
            .unwrap_or_else(|| panic!("build {build}'s events ended first:\n{text}"));
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Whether the events so far show the image check running (it selected a worker).
fn checking(text: &str) -> bool {
    text.lines()
        .any(|l| l.contains("selected-worker") && l.contains("/image-check"))
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_builds_waiting_on_one_image_check_it_once() {
    let (s, token) = with_pipeline().await;

    // The first build's check (8 s) is under way: the next two were created after it
    // began, so they may not use it; they wait their turns behind it.
    let first = common::trigger_job(&s, &token, "p", "slow").await;
    events_until(&s, &token, first, checking).await;
    let next = [
        common::trigger_job(&s, &token, "p", "slow").await,
        common::trigger_job(&s, &token, "p", "slow").await,
    ];
    let initialized = |t: &str| t.contains("initialize-check");
    for b in next {
        events_until(&s, &token, b, initialized).await;
    }
    for b in [first].iter().chain(&next) {
        let status = common::build_finished(&s, &token, *b, Duration::from_secs(120)).await;
        assert_eq!(status, "succeeded", "build {b}");
    }
    assert_eq!(image_check(&s, &token, first).await, (1, true));
    // Whichever of them went first checked; the other asked before that check began.
    let (a, b) = (
        image_check(&s, &token, next[0]).await,
        image_check(&s, &token, next[1]).await,
    );
    assert!(a.1 && b.1, "both image checks succeeded: {a:?} {b:?}");
    assert_eq!(a.0 + b.0, 1, "one check for the two: {a:?} {b:?}");
}
