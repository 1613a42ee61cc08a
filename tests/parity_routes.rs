//! The last upstream routes served for the parity issue, against a real server:
//! `PUT P/ordering` (instances within a group, through `fly order-instanced-pipelines`)
//! and `POST P/prototypes/:name/check`. (`V/causality` is covered in `api_routes.rs`.)

mod common;

use common::{stderr, Backend, Fly, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: &str = "parity";

const PIPELINE: &str = "resources:
- name: r
  type: mock
  source: {}
jobs:
- name: j
  plan:
  - get: r
";

/// `(name, instance vars)` of the main team's pipelines as the API lists them.
async fn listed(s: &Server, token: &str) -> Vec<(String, Value)> {
    let list: Value = Client::new()
        .get(s.api("/api/v1/teams/main/pipelines"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["instance_vars"].clone(),
            )
        })
        .collect()
}

fn inst(n: i64) -> (String, Value) {
    ("inst".into(), json!({ "n": n }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fly_orders_the_instances_of_a_group() {
    let s = Server::start(Backend::Embedded);
    let fly = Fly::new();
    fly.login(&s, T);
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    let file = file.to_string_lossy().into_owned();
    let set = |name: &str, vars: Option<&str>| {
        let mut args = vec!["-t", T, "set-pipeline", "-n", "-p", name, "-c", &file];
        if let Some(v) = vars {
            args.extend(["-i", v]);
        }
        fly.ok(&args);
    };
    set("first", None);
    for n in ["n=1", "n=2", "n=3"] {
        set("inst", Some(n));
    }
    set("last", None);
    let token = s.token("test", "test").await;
    let first = ("first".to_string(), Value::Null);
    let last = ("last".to_string(), Value::Null);
    assert_eq!(
        listed(&s, &token).await,
        vec![first.clone(), inst(1), inst(2), inst(3), last.clone()]
    );

    let out = fly.ok(&[
        "-t",
        T,
        "order-instanced-pipelines",
        "-g",
        "inst",
        "-p",
        "n:3",
        "-p",
        "n:1",
    ]);
    assert_eq!(out, "ordered instanced pipelines \n  - n:3 \n  - n:1 \n");
    let ordered = vec![first, inst(3), inst(1), inst(2), last];
    assert_eq!(
        listed(&s, &token).await,
        ordered,
        "the group keeps its place"
    );
    let shown: Value =
        serde_json::from_str(&fly.ok(&["-t", T, "pipelines", "--json"])).expect("json");
    let names: Vec<(String, Value)> = shown
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["instance_vars"].clone(),
            )
        })
        .collect();
    assert_eq!(names, ordered, "fly pipelines lists them in that order");

    // Vars of no instance: upstream's 400 naming them, and nothing changes.
    let out = fly.run(&[
        "-t",
        T,
        "order-instanced-pipelines",
        "-g",
        "inst",
        "-p",
        "n:2",
        "-p",
        "n:9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("failed to order instanced pipelines")
            && err.contains("pipeline 'inst/n:9' not found"),
        "{err}"
    );
    assert_eq!(listed(&s, &token).await, ordered);

    let put = |body: &'static str, group: &'static str| {
        Client::new()
            .put(s.api(&format!("/api/v1/teams/main/pipelines/{group}/ordering")))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let resp = put(r#"[{"n": 1}, {}]"#, "inst").await.expect("PUT");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.text().await.unwrap(), "pipeline 'inst' not found");
    for bad in [r#"["n:1"]"#, r#"{"n": 1}"#, "nope"] {
        let resp = put(bad, "inst").await.expect("PUT");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // The team-wide ordering names an unknown pipeline the same way.
    let resp = Client::new()
        .put(s.api("/api/v1/teams/main/pipelines/ordering"))
        .bearer_auth(&token)
        .json(&json!(["nope"]))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.text().await.unwrap(), "pipeline 'nope' not found");
    // `{}` is the group's non-instanced pipeline, so a plain pipeline is a group of one.
    let resp = put("[{}]", "first").await.expect("PUT");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(listed(&s, &token).await, ordered);
}

/// GETs the build until it has finished; its status.
async fn finished(s: &Server, token: &str, id: i64) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b: Value = Client::new()
            .get(s.api(&format!("/api/v1/builds/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET build")
            .json()
            .await
            .expect("json");
        let status = b["status"].as_str().unwrap_or_default().to_string();
        if !matches!(status.as_str(), "pending" | "started") {
            return status;
        }
        assert!(Instant::now() < deadline, "build {id} still {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prototype_check_is_a_check_build_of_its_type() {
    // The process runtime: the check needs no container networking.
    let s = Server::quickstart_with(Backend::Embedded, &["--worker-runtime", "process"]);
    let token = s.token("test", "test").await;
    let config = format!("{PIPELINE}prototypes:\n- name: proto\n  type: mock\n  source: {{}}\n");
    let c = Client::new();
    let st = c
        .put(s.api("/api/v1/teams/main/pipelines/p/config"))
        .bearer_auth(&token)
        .header("Content-Type", "application/x-yaml")
        .body(config)
        .send()
        .await
        .expect("set pipeline")
        .status();
    assert!(st.is_success(), "set pipeline: {st}");
    let check = |name: &'static str, body: &'static str| {
        c.post(s.api(&format!(
            "/api/v1/teams/main/pipelines/p/prototypes/{name}/check"
        )))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
    };

    let resp = check("proto", "{}").await.expect("POST");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let build: Value = resp.json().await.expect("build");
    assert_eq!(build["team_name"], "main");
    assert_eq!(build["pipeline_name"], "p");
    let id = build["id"].as_i64().expect("build id");
    let status = finished(&s, &token, id).await;
    if status != "succeeded" {
        let events = c
            .get(s.api(&format!("/api/v1/builds/{id}/events")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("events")
            .text()
            .await
            .unwrap_or_default();
        panic!("check build {status}:\n{events}");
    }
    let plan: Value = c
        .get(s.api(&format!("/api/v1/builds/{id}/plan")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("plan")
        .json()
        .await
        .expect("json");
    assert_eq!(
        plan["plan"]["check"],
        json!({"name": "proto", "type": "mock"})
    );

    // Like upstream: an unknown prototype is 404 (resources and types are not
    // prototypes), a malformed body 400.
    for name in ["nope", "r"] {
        let resp = check(name, "{}").await.expect("POST");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{name}");
    }
    let resp = check("proto", "nope").await.expect("POST");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
