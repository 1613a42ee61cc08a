//! The scheduler skips pipelines where nothing moved, so it must notice every change that
//! matters, including one made through another pipeline: with global resources, a `put` in
//! pipeline `a` adds a version to the resource config scope pipeline `b` shares, and `b`'s
//! job triggers on it.
//! The periodic full pass is pushed out of reach, so only change detection can start it.

mod common;

use common::{Backend, Fly, Server};
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
- name: bump
  plan:
  - put: r
    params: {version: v2}
"#;

/// The versions of `job`'s builds in `pipeline`, oldest first, as `fly builds` would list.
async fn input_versions(s: &Server, token: &str, pipeline: &str, job: &str) -> Vec<String> {
    let path = format!("/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds");
    let builds: serde_json::Value = reqwest::Client::new()
        .get(s.api(&path))
        .bearer_auth(token)
        .send()
        .await
        .expect("builds")
        .json()
        .await
        .expect("json");
    let mut out = Vec::new();
    for b in builds.as_array().expect("list").iter().rev() {
        let id = b["id"].as_i64().expect("id");
        let io: serde_json::Value = reqwest::Client::new()
            .get(s.api(&format!("/api/v1/builds/{id}/resources")))
            .bearer_auth(token)
            .send()
            .await
            .expect("resources")
            .json()
            .await
            .expect("json");
        let v = io["inputs"][0]["version"]["version"].as_str().unwrap_or("");
        out.push(v.to_string());
    }
    out
}

async fn wait_for_versions(s: &Server, token: &str, pipeline: &str, want: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got = input_versions(s, token, pipeline, "j").await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pipeline}/j built {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_version_put_by_one_pipeline_triggers_another(backend: Backend) {
    // Set before the server starts, which reads it; every test here sets the same value.
    std::env::set_var("CONCOURSE_SCHEDULER_FULL_PASS_SECONDS", "3600");
    let s = Server::quickstart_with(backend, &["--enable-global-resources"]);
    let fly = Fly::new();
    fly.login(&s, "t");
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    let file = file.to_str().expect("utf-8");
    for p in ["a", "b"] {
        fly.ok(&["-t", "t", "set-pipeline", "-n", "-p", p, "-c", file]);
        fly.ok(&["-t", "t", "unpause-pipeline", "-p", p]);
    }
    let token = s.token("test", "test").await;
    wait_for_versions(&s, &token, "a", &["v1"]).await;
    wait_for_versions(&s, &token, "b", &["v1"]).await;

    let bump = common::trigger_job(&s, &token, "a", "bump").await;
    assert_eq!(
        common::build_finished(&s, &token, bump, Duration::from_secs(120)).await,
        "succeeded"
    );
    wait_for_versions(&s, &token, "b", &["v1", "v2"]).await;
    wait_for_versions(&s, &token, "a", &["v1", "v2"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded() {
    a_version_put_by_one_pipeline_triggers_another(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    let Some(backend) = Backend::postgres("scheduling_changes::postgres") else {
        return;
    };
    a_version_put_by_one_pipeline_triggers_another(backend).await;
}
