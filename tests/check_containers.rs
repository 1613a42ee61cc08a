//! Kept check containers are shared by a team's resources of one resource config, as
//! upstream keys them by config: found from any of those resources (`fly intercept -c`,
//! the containers API's check locator), and collected only once no resource has the config.

mod common;

use common::{Backend, Fly, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

const T: &str = "cc";

/// `r1` and `r2` share a config; `own` has its own.
const SHARED: &str = "resources:
- {name: r1, type: mock, check_every: 1h, source: {initial_version: shared}}
- {name: r2, type: mock, check_every: 1h, source: {initial_version: shared}}
- {name: own, type: mock, check_every: 1h, source: {initial_version: own}}
jobs:
- name: j
  plan: [{get: r1}, {get: r2}, {get: own}]
";

/// Another pipeline's resource of the shared config.
const OTHER: &str = "resources:
- {name: r3, type: mock, check_every: 1h, source: {initial_version: shared}}
jobs:
- name: j
  plan: [{get: r3}]
";

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = Backend::postgres(concat!("check_containers::", stringify!($name))) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

on_both_stores!(resources_of_one_config_share_a_check_container);

fn set_pipeline(fly: &Fly, p: &str, yml: &str) {
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, yml).expect("write");
    let path = file.to_str().expect("utf-8");
    fly.ok(&["-t", T, "set-pipeline", "-n", "-p", p, "-c", path]);
    fly.ok(&["-t", T, "unpause-pipeline", "-p", p]);
}

/// The ids of the team's containers the query finds.
async fn ids(s: &Server, token: &str, query: &str) -> Vec<String> {
    let found = common::get_json(s, token, &format!("/api/v1/teams/main/containers?{query}")).await;
    let mut ids: Vec<String> = found
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {found}"))
        .iter()
        .filter_map(|c| c["id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn resources_of_one_config_share_a_check_container(b: Backend) {
    let s = Server::quickstart_with(b, &["--gc-interval", "1s"]);
    let fly = Fly::new();
    fly.login(&s, T);
    set_pipeline(&fly, "p", SHARED);
    set_pipeline(&fly, "other", OTHER);
    let token = s.token("test", "test").await;
    for (p, r) in [("p", "r1"), ("p", "r2"), ("p", "own"), ("other", "r3")] {
        let path = format!("/api/v1/teams/main/pipelines/{p}/resources/{r}/versions");
        wait_until(&format!("{p}/{r}'s first check"), || async {
            let v: Value = common::get_json(&s, &token, &path).await;
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    }

    // Four resources, two configs: two containers.
    let all = ids(&s, &token, "type=check").await;
    assert_eq!(all.len(), 2, "one check container per config: {all:?}");
    let own = ids(&s, &token, "type=check&pipeline_name=p&resource_name=own").await;
    assert_eq!(own.len(), 1, "own's container: {own:?}");
    let shared: Vec<String> = all.iter().filter(|c| **c != own[0]).cloned().collect();
    for (p, r) in [("p", "r1"), ("p", "r2"), ("other", "r3")] {
        let q = format!("type=check&pipeline_name={p}&resource_name={r}");
        assert_eq!(
            ids(&s, &token, &q).await,
            shared,
            "{p}/{r} finds the shared one"
        );
    }
    assert!(
        ids(&s, &token, "type=check&pipeline_name=p&resource_name=nope")
            .await
            .is_empty(),
        "an unknown resource has no check container"
    );
    let out = fly.ok(&[
        "-t",
        T,
        "intercept",
        "-c",
        "other/r3",
        "--",
        "sh",
        "-c",
        "echo in-$((40+2))",
    ]);
    assert!(
        out.contains("in-42"),
        "intercepted the shared container: {out}"
    );

    // The pipeline that started them goes; `other` still has the shared config.
    fly.ok(&["-t", T, "destroy-pipeline", "-p", "p", "-n"]);
    wait_until("own's container collected", || async {
        !ids(&s, &token, "type=check").await.contains(&own[0])
    })
    .await;
    // That collection pass saw `p` gone and kept the shared container.
    assert_eq!(ids(&s, &token, "type=check").await, shared);
    let q = "type=check&pipeline_name=other&resource_name=r3";
    assert_eq!(ids(&s, &token, q).await, shared);

    fly.ok(&["-t", T, "destroy-pipeline", "-p", "other", "-n"]);
    wait_until("the shared container collected", || async {
        ids(&s, &token, "type=check").await.is_empty()
    })
    .await;
}
