//! Archived pipelines over real HTTP against a real `concourse web`: the writes upstream's
//! reject-archived wrapper refuses answer 409 before any auth check and change nothing
//! (no check build either); the others keep their usual answers.

mod common;

use common::{Backend, Server};
use reqwest::{Client, Method};
use serde_json::Value;

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
                if let Some(b) = Backend::postgres(concat!("archived::", stringify!($name))) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

on_both_stores!(archived_pipelines_refuse_checks_and_other_writes);

const PIPELINE: &str = "
resource_types:
- name: rt
  type: mock
  source: {}
resources:
- name: repo
  type: mock
  webhook_token: s3cret
  check_every: never
  source: {initial_version: one}
jobs:
- name: j
  plan:
  - get: repo
";

const P: &str = "/api/v1/teams/main/pipelines/p";

struct Api {
    c: Client,
    s: Server,
    token: String,
}

impl Api {
    async fn send(&self, method: &Method, path: &str, auth: bool) -> (u16, String) {
        let mut r = self.c.request(method.clone(), self.s.api(path));
        if auth {
            r = r.bearer_auth(&self.token);
        }
        if *method == Method::POST || path.ends_with("/pin_comment") {
            r = r.header("Content-Type", "application/json").body("{}");
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(&Method::GET, path, true).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    async fn build_count(&self) -> usize {
        let builds = self.get("/api/v1/builds?limit=1000").await;
        builds.as_array().expect("builds").len()
    }
}

async fn archived_pipelines_refuse_checks_and_other_writes(b: Backend) {
    let s = Server::start(b);
    let token = s.token("test", "test").await;
    let api = Api {
        c: Client::new(),
        s,
        token,
    };
    let r = api
        .c
        .put(api.s.api(&format!("{P}/config")))
        .bearer_auth(&api.token)
        .header("Content-Type", "application/x-yaml")
        .body(PIPELINE)
        .send()
        .await
        .expect("PUT config");
    assert_eq!(r.status(), 201);
    // Before archiving, a check is a write like any other: 201 and a check build.
    let before = api.build_count().await;
    let (status, body) = api
        .send(&Method::POST, &format!("{P}/resources/repo/check"), true)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(api.build_count().await, before + 1);

    let (status, _) = api.send(&Method::PUT, &format!("{P}/archive"), true).await;
    assert_eq!(status, 200);
    let pipeline = api.get(P).await;
    assert_eq!(pipeline["archived"], true);
    let builds = api.build_count().await;

    // Upstream's reject-archived list (atc-api.md §1.3); the 409 comes before auth, so
    // anonymous callers get it too.
    let refused = [
        (Method::PUT, format!("{P}/pause")),
        (Method::PUT, format!("{P}/unpause")),
        (Method::POST, format!("{P}/jobs/j/builds")),
        (Method::POST, format!("{P}/jobs/j/builds/1")),
        (Method::POST, format!("{P}/resources/repo/check")),
        (Method::POST, format!("{P}/resource-types/rt/check")),
        (Method::PUT, format!("{P}/resources/repo/versions/1/enable")),
        (
            Method::PUT,
            format!("{P}/resources/repo/versions/1/disable"),
        ),
        (Method::PUT, format!("{P}/resources/repo/versions/1/pin")),
        (Method::PUT, format!("{P}/resources/repo/unpin")),
        (Method::PUT, format!("{P}/resources/repo/pin_comment")),
    ];
    let mut wrong = Vec::new();
    for (method, path) in &refused {
        for auth in [true, false] {
            let (status, body) = api.send(method, path, auth).await;
            if status != 409 || body != "action not allowed for an archived pipeline" {
                wrong.push(format!("{method} {path} (auth {auth}): {status} {body:?}"));
            }
        }
    }
    // Upstream's webhook is not wrapped: archiving cleared the resource's config, so its
    // token no longer matches (401) — and no check runs either way.
    for auth in [true, false] {
        let path = format!("{P}/resources/repo/check/webhook?webhook_token=s3cret");
        let (status, body) = api.send(&Method::POST, &path, auth).await;
        if status != 401 {
            wrong.push(format!("webhook (auth {auth}): {status} {body:?}"));
        }
    }
    // Writes upstream leaves alone keep their usual answers.
    for (method, path, want) in [
        (Method::PUT, format!("{P}/expose"), 200),
        (Method::PUT, format!("{P}/hide"), 200),
    ] {
        let (status, body) = api.send(&method, &path, true).await;
        if status != want {
            wrong.push(format!("{method} {path}: {status} {body:?}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    assert_eq!(api.build_count().await, builds, "no build was created");
    let after = api.get(P).await;
    assert_eq!(after["archived"], true);
    assert_eq!(after["paused"], pipeline["paused"]);
    assert_eq!(after["paused_by"], pipeline["paused_by"]);
}
