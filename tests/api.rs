//! The ATC API over real HTTP against a real `concourse web` process, once on the
//! embedded store and once on PostgreSQL.

mod common;

use common::{Backend, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// Generates one test per backend for a scenario `async fn name(Backend)`.
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
                if let Some(b) = Backend::postgres(concat!("api::", stringify!($name))) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

on_both_stores!(
    info_speaks_the_upstream_release,
    team_routes_need_a_token,
    wrong_password_is_refused_with_oauth_error,
    config_round_trips_with_version_conflicts,
    bad_config_is_rejected_and_changes_nothing,
    alias_bomb_config_is_rejected_and_changes_nothing,
    pipeline_lifecycle_follows_upstream,
    teams_scope_what_users_may_touch,
    jobs_list_inputs_outputs_and_pause,
    builds_trigger_page_abort_and_stream,
);

const PIPELINE: &str = r#"
resources:
- name: repo
  type: mock
  source: {initial_version: one}
jobs:
- name: build
  public: yes
  plan:
  - get: repo
    trigger: true
  - task: unit
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: echo, args: [hi]}
  - put: repo
    params: {version: two}
- name: ship
  plan:
  - get: repo
    passed: [build]
"#;

struct Api {
    c: Client,
    s: Server,
    token: String,
}

impl Api {
    async fn new(backend: Backend) -> Api {
        let s = Server::start(backend);
        let token = s.token("test", "test").await;
        Api {
            c: Client::new(),
            s,
            token,
        }
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.c.request(m, self.s.api(path)).bearer_auth(&self.token)
    }

    /// Pipeline `pipeline`'s current config version, as `fly set-pipeline` reads it.
    async fn config_version(&self, pipeline: &str) -> String {
        let r = self
            .req(
                reqwest::Method::GET,
                &format!("/api/v1/teams/main/pipelines/{pipeline}/config"),
            )
            .send()
            .await
            .expect("GET config");
        r.headers()["x-concourse-config-version"]
            .to_str()
            .expect("config version")
            .to_string()
    }

    async fn put_config(&self, pipeline: &str, yaml: &str, version: &str) -> reqwest::Response {
        self.req(
            reqwest::Method::PUT,
            &format!("/api/v1/teams/main/pipelines/{pipeline}/config"),
        )
        .header("Content-Type", "application/x-yaml")
        .header("X-Concourse-Config-Version", version)
        .body(yaml.to_string())
        .send()
        .await
        .expect("PUT config")
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .req(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET");
        let status = r.status();
        let text = r.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn put(&self, path: &str) -> StatusCode {
        self.req(reqwest::Method::PUT, path)
            .send()
            .await
            .expect("PUT")
            .status()
    }
}

async fn info_speaks_the_upstream_release(b: Backend) {
    let s = Server::start(b);
    let r = reqwest::get(s.api("/api/v1/info")).await.expect("info");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-concourse-version"], "8.2.5");
    let info: Value = r.json().await.expect("json");
    assert_eq!(info["version"], "8.2.5");
    assert_eq!(info["worker_version"], "3.0");
    assert!(info["feature_flags"].is_object());
}

async fn team_routes_need_a_token(b: Backend) {
    let s = Server::start(b);
    let c = Client::new();
    let r = c
        .get(s.api("/api/v1/teams/main/pipelines/p/config"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    let r = c
        .put(s.api("/api/v1/teams/main/pipelines/p/config"))
        .header("Content-Type", "application/x-yaml")
        .body(PIPELINE)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 401);
    let r = c.get(s.api("/api/v1/user")).send().await.expect("user");
    assert_eq!(r.status(), 401);
    let r = c
        .get(s.api("/api/v1/user"))
        .bearer_auth("bogus")
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 401, "an invalid token is unauthenticated");
    // Anonymous listing works and shows nothing private.
    let r = c.get(s.api("/api/v1/teams")).send().await.expect("teams");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json"), json!([]));
}

async fn wrong_password_is_refused_with_oauth_error(b: Backend) {
    let s = Server::start(b);
    let r = Client::new()
        .post(s.api("/sky/issuer/token"))
        .basic_auth("fly", Some("Zmx5"))
        .form(&[
            ("grant_type", "password"),
            ("username", "test"),
            ("password", "nope"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "access_denied");
    assert_eq!(body["error_description"], "Invalid username or password");

    let token = s.token("TEST", "test").await;
    assert_eq!(token.len(), 38, "upstream's opaque token format");
    let user: Value = Client::new()
        .get(s.api("/api/v1/user"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json");
    assert_eq!(user["is_admin"], true);
    assert_eq!(user["user_name"], "test");
    assert_eq!(user["teams"]["main"], json!(["owner"]));
}

async fn config_round_trips_with_version_conflicts(b: Backend) {
    let api = Api::new(b).await;
    let r = api.put_config("p", PIPELINE, "").await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());

    let r = api
        .req(
            reqwest::Method::GET,
            "/api/v1/teams/main/pipelines/p/config",
        )
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let version = r.headers()["x-concourse-config-version"]
        .to_str()
        .expect("header")
        .to_string();
    let got: Value = r.json().await.expect("json");
    let expected = concourse::config::to_json(
        &concourse::config::parse_pipeline(PIPELINE.as_bytes()).expect("parses"),
    );
    assert_eq!(got["config"], expected);
    assert_eq!(
        got["config"]["jobs"][0]["public"], true,
        "yes is a YAML 1.1 boolean"
    );

    let (_, p) = api.get_json("/api/v1/teams/main/pipelines/p").await;
    assert_eq!(
        p["paused"], true,
        "pipelines made through the API start paused"
    );
    assert_eq!(p["name"], "p");

    let r = api.put_config("p", PIPELINE, &version).await;
    assert_eq!(r.status(), 200, "re-save with the current version");
    let r = api.put_config("p", PIPELINE, &version).await;
    assert_eq!(r.status(), 500, "stale version");
    assert_eq!(
        r.text().await.expect("body"),
        "failed to save config: comparison with existing config failed during save"
    );
}

async fn bad_config_is_rejected_and_changes_nothing(b: Backend) {
    let api = Api::new(b).await;
    let r = api.put_config("p", "jobs: [", "").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    let err = body["errors"][0].as_str().expect("an error");
    assert!(err.starts_with("malformed config"), "{err}");

    let r = api.put_config("p", "resources: []\njobs: []\n", "").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["errors"],
        json!(["invalid jobs:\n\tjobs: pipeline must contain at least one job\n"])
    );

    let r = api
        .req(
            reqwest::Method::PUT,
            "/api/v1/teams/main/pipelines/p/config",
        )
        .header("Content-Type", "text/plain")
        .body(PIPELINE)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 415);

    let (status, _) = api.get_json("/api/v1/teams/main/pipelines/p").await;
    assert_eq!(status, 404, "nothing was written");
    let (_, list) = api.get_json("/api/v1/teams/main/pipelines").await;
    assert_eq!(list, json!([]));
}

async fn alias_bomb_config_is_rejected_and_changes_nothing(b: Backend) {
    let api = Api::new(b).await;
    assert_eq!(api.put_config("p", PIPELINE, "").await.status(), 201);
    let (_, before) = api.get_json("/api/v1/teams/main/pipelines/p/config").await;
    let saved = before["config"].clone();

    // A 66 KB anchor used 200 times: 13 MB once expanded, past the 10 MB floor.
    let uses = vec!["*big"; 200].join(", ");
    let bomb = format!(
        "resources:\n- name: repo\n  type: mock\n  source:\n    big: &big \"{}\"\n    uses: [{uses}]\njobs:\n- name: build\n  plan: [{{get: repo}}]\n",
        "s".repeat(66 * 1024)
    );
    let current = api
        .req(
            reqwest::Method::GET,
            "/api/v1/teams/main/pipelines/p/config",
        )
        .send()
        .await
        .expect("GET config")
        .headers()
        .get("X-Concourse-Config-Version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .expect("a config version");
    let r = api.put_config("p", &bomb, &current).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["errors"],
        json!(["malformed config: error converting YAML to JSON: yaml: document expands to more than 10485760 bytes through aliases (line 6)"])
    );

    let (_, after) = api.get_json("/api/v1/teams/main/pipelines/p/config").await;
    assert_eq!(after["config"], saved, "the saved config is unchanged");
}

async fn pipeline_lifecycle_follows_upstream(b: Backend) {
    let api = Api::new(b).await;
    for name in ["a", "b", "c"] {
        assert_eq!(api.put_config(name, PIPELINE, "").await.status(), 201);
    }
    let base = "/api/v1/teams/main/pipelines";
    assert_eq!(api.put(&format!("{base}/a/unpause")).await, 200);
    let (_, a) = api.get_json(&format!("{base}/a")).await;
    assert_eq!(a["paused"], false);
    assert_eq!(api.put(&format!("{base}/a/pause")).await, 200);
    let (_, a) = api.get_json(&format!("{base}/a")).await;
    assert_eq!(a["paused"], true);
    assert_eq!(a["paused_by"], "test");

    // Exposed pipelines are visible anonymously; hidden ones are not.
    assert_eq!(api.put(&format!("{base}/b/expose")).await, 200);
    let anon: Value = reqwest::get(api.s.api(base))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = anon
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, vec!["b"]);
    assert_eq!(
        reqwest::get(api.s.api(&format!("{base}/a")))
            .await
            .expect("get")
            .status(),
        401
    );
    assert_eq!(api.put(&format!("{base}/b/hide")).await, 200);
    let anon: Value = reqwest::get(api.s.api(base))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(anon, json!([]));

    // Ordering: named ones first; an unknown name is a 400 and changes nothing.
    let r = api
        .req(reqwest::Method::PUT, &format!("{base}/ordering"))
        .json(&json!(["c", "a"]))
        .send()
        .await
        .expect("order");
    assert_eq!(r.status(), 200);
    let (_, list) = api.get_json(base).await;
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, vec!["c", "a", "b"]);
    let r = api
        .req(reqwest::Method::PUT, &format!("{base}/ordering"))
        .json(&json!(["nope"]))
        .send()
        .await
        .expect("order");
    assert_eq!(r.status(), 400);

    // Rename keeps the pipeline's id.
    let id = a["id"].clone();
    let r = api
        .req(reqwest::Method::PUT, &format!("{base}/a/rename"))
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(r.status(), 200);
    let (_, renamed) = api.get_json(&format!("{base}/renamed")).await;
    assert_eq!(renamed["id"], id);
    let r = api
        .req(reqwest::Method::PUT, &format!("{base}/missing/rename"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(r.status(), 404);

    // Archive: config gone, writes refused with 409, re-setting revives it.
    assert_eq!(api.put(&format!("{base}/c/archive")).await, 200);
    let (_, c) = api.get_json(&format!("{base}/c")).await;
    assert_eq!(c["archived"], true);
    assert_eq!(c["paused"], true);
    let (status, _) = api.get_json(&format!("{base}/c/config")).await;
    assert_eq!(status, 404);
    let r = api
        .req(reqwest::Method::PUT, &format!("{base}/c/unpause"))
        .send()
        .await
        .expect("unpause");
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.text().await.expect("body"),
        "action not allowed for an archived pipeline"
    );
    assert_eq!(api.put_config("c", PIPELINE, "").await.status(), 200);
    let (_, c) = api.get_json(&format!("{base}/c")).await;
    assert_eq!(c["archived"], false);

    // Destroy.
    let r = api
        .req(reqwest::Method::DELETE, &format!("{base}/b"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    let (status, _) = api.get_json(&format!("{base}/b")).await;
    assert_eq!(status, 404);
}

async fn teams_scope_what_users_may_touch(b: Backend) {
    let api = Api::new(b).await;
    let dev = api.s.token("dev", "dev").await;
    let c = Client::new();
    // dev has no role on main.
    let r = c
        .get(api.s.api("/api/v1/teams/main/pipelines/p/config"))
        .bearer_auth(&dev)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    let r = c
        .put(api.s.api("/api/v1/teams/devs"))
        .bearer_auth(&dev)
        .json(&json!({"auth": {"member": {"users": ["local:dev"]}}}))
        .send()
        .await
        .expect("put team");
    assert_eq!(r.status(), 403, "only admins create teams");

    let r = api
        .req(reqwest::Method::PUT, "/api/v1/teams/devs")
        .json(&json!({"auth": {"member": {"users": ["local:dev"], "groups": []}}}))
        .send()
        .await
        .expect("put team");
    assert_eq!(r.status(), 201);
    let r = api
        .req(reqwest::Method::PUT, "/api/v1/teams/empty")
        .json(&json!({"auth": {}}))
        .send()
        .await
        .expect("put team");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.expect("body"),
        "auth config for the team must not be empty"
    );

    let r = c
        .put(api.s.api("/api/v1/teams/devs/pipelines/mine/config"))
        .bearer_auth(&dev)
        .header("Content-Type", "application/x-yaml")
        .body(PIPELINE)
        .send()
        .await
        .expect("put config");
    assert_eq!(r.status(), 201);
    let teams: Value = c
        .get(api.s.api("/api/v1/teams"))
        .bearer_auth(&dev)
        .send()
        .await
        .expect("teams")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = teams
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, vec!["devs"]);
    let r = c
        .delete(api.s.api("/api/v1/teams/devs"))
        .bearer_auth(&dev)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 403);
    let r = api
        .req(reqwest::Method::DELETE, "/api/v1/teams/main")
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 403, "the last admin team stays");
    let r = api
        .req(reqwest::Method::DELETE, "/api/v1/teams/devs")
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
}

async fn jobs_list_inputs_outputs_and_pause(b: Backend) {
    let api = Api::new(b).await;
    assert_eq!(api.put_config("p", PIPELINE, "").await.status(), 201);
    let (status, jobs) = api.get_json("/api/v1/teams/main/pipelines/p/jobs").await;
    assert_eq!(status, 200);
    let jobs = jobs.as_array().expect("array");
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["name"], "build");
    assert_eq!(
        jobs[0]["inputs"],
        json!([{"name": "repo", "resource": "repo", "trigger": true}])
    );
    assert_eq!(
        jobs[0]["outputs"],
        json!([{"name": "repo", "resource": "repo"}])
    );
    assert_eq!(jobs[1]["inputs"][0]["passed"], json!(["build"]));

    let (_, job) = api
        .get_json("/api/v1/teams/main/pipelines/p/jobs/ship")
        .await;
    assert!(
        job.get("next_build").is_some_and(Value::is_null),
        "always present"
    );
    assert_eq!(
        api.put("/api/v1/teams/main/pipelines/p/jobs/ship/pause")
            .await,
        200
    );
    let (_, job) = api
        .get_json("/api/v1/teams/main/pipelines/p/jobs/ship")
        .await;
    assert_eq!(job["paused"], true);
    let (status, _) = api
        .get_json("/api/v1/teams/main/pipelines/p/jobs/nope")
        .await;
    assert_eq!(status, 404);
    let (_, all) = api.get_json("/api/v1/jobs").await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));

    // A new config shows in both listings at once (what they derive from the jobs'
    // configs is kept per config version).
    let version = api.config_version("p").await;
    let changed = PIPELINE.replace(
        "    passed: [build]\n",
        "    passed: [build]\n  - get: again\n    resource: repo\n",
    );
    assert!(api
        .put_config("p", &changed, &version)
        .await
        .status()
        .is_success());
    let names = |jobs: &Value, job: &str| -> Vec<Value> {
        jobs.as_array()
            .expect("array")
            .iter()
            .find(|j| j["name"] == job)
            .expect("the job")["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|i| i["name"].clone())
            .collect()
    };
    let (_, jobs) = api.get_json("/api/v1/teams/main/pipelines/p/jobs").await;
    assert_eq!(names(&jobs, "ship"), [json!("repo"), json!("again")]);
    let (_, all) = api.get_json("/api/v1/jobs").await;
    assert_eq!(names(&all, "ship"), [json!("repo"), json!("again")]);
}

async fn builds_trigger_page_abort_and_stream(b: Backend) {
    let api = Api::new(b).await;
    assert_eq!(api.put_config("p", PIPELINE, "").await.status(), 201);
    let job = "/api/v1/teams/main/pipelines/p/jobs/build";
    let trigger = || {
        api.req(reqwest::Method::POST, &format!("{job}/builds"))
            .send()
    };
    let r = trigger().await.expect("trigger");
    assert_eq!(r.status(), 200, "upstream answers a trigger with 200");
    let first: Value = r.json().await.expect("json");
    assert_eq!(
        (
            first["name"].as_str(),
            first["status"].as_str(),
            first["created_by"].as_str()
        ),
        (Some("1"), Some("pending"), Some("test"))
    );
    let second: Value = trigger()
        .await
        .expect("trigger")
        .json()
        .await
        .expect("json");
    assert_eq!(second["name"], "2");

    let r = api
        .req(reqwest::Method::GET, &format!("{job}/builds?limit=1"))
        .send()
        .await
        .expect("list");
    let link = r
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        link.contains(&format!("to={}&limit=1>; rel=\"next\"", first["id"])),
        "{link}"
    );
    let page: Value = r.json().await.expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    assert_eq!(page[0]["name"], "2");
    let (_, by_name) = api.get_json(&format!("{job}/builds/1")).await;
    assert_eq!(by_name["id"], first["id"]);
    let (status, _) = api.get_json("/api/v1/builds/nope").await;
    assert_eq!(status, 400);
    let (status, _) = api.get_json("/api/v1/builds/999999").await;
    assert_eq!(status, 404);

    let id = first["id"].as_i64().expect("id");
    assert_eq!(api.put(&format!("/api/v1/builds/{id}/abort")).await, 204);
    let (_, aborted) = api.get_json(&format!("/api/v1/builds/{id}")).await;
    assert_eq!(aborted["status"], "aborted");
    let events = api
        .req(reqwest::Method::GET, &format!("/api/v1/builds/{id}/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(
        events.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let text = events.text().await.expect("stream ends after end");
    assert!(text.starts_with("id: 0\nevent: event\ndata: {"), "{text}");
    assert!(
        text.contains("\"status\":\"aborted\"") && text.contains("\"event_id\":\"0\""),
        "{text}"
    );
    assert!(text.ends_with("id: 1\nevent: end\ndata\n\n"), "{text}");
    let resumed = api
        .req(reqwest::Method::GET, &format!("/api/v1/builds/{id}/events"))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .expect("events");
    assert_eq!(
        resumed.text().await.expect("body"),
        "id: 1\nevent: end\ndata\n\n"
    );
    let bad = api
        .req(reqwest::Method::GET, &format!("/api/v1/builds/{id}/events"))
        .header("Last-Event-ID", "x")
        .send()
        .await
        .expect("events");
    assert_eq!(bad.status(), 400);

    let r = api
        .req(reqwest::Method::POST, &format!("{job}/builds/1"))
        .send()
        .await
        .expect("rerun");
    assert_eq!(r.status(), 200);
    let rerun: Value = r.json().await.expect("json");
    assert_eq!(rerun["name"], "1.1");
    assert_eq!(rerun["rerun_of"]["id"], first["id"]);

    let locked = PIPELINE.replace(
        "- name: ship\n",
        "- name: ship\n  disable_manual_trigger: true\n",
    );
    let (_, cfg) = api.get_json("/api/v1/teams/main/pipelines/p/config").await;
    assert!(cfg["config"].is_object());
    let version = api.config_version("p").await;
    assert_eq!(api.put_config("p", &locked, &version).await.status(), 200);
    let r = api
        .req(
            reqwest::Method::POST,
            "/api/v1/teams/main/pipelines/p/jobs/ship/builds",
        )
        .send()
        .await
        .expect("trigger");
    assert_eq!(r.status(), 409);
}
