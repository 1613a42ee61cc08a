//! Every route of upstream's `atc/routes.go` (method + path template) answered by a real
//! `concourse quickstart`: none may be unknown to the router (a 405, or a 404 from the
//! fallback, which carries no `X-Concourse-Version`), and those whose target the fixtures
//! seed must not 404 at all. Plus the shapes of the routes served since the parity issue.

mod common;

use common::{Backend, Server};
use concourse::db::{BuildInputRow, BuildOutputRow, BuildStatus, NewBuild, NewVersion, Page};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// Upstream's route table: (method, path, strict). `strict`: the fixtures make the
/// target exist, so any 404 is a failure; otherwise a 404 must at least come from a
/// handler. Placeholders are upstream's `:names`.
#[rustfmt::skip]
const ROUTES: &[(&str, &str, bool)] = &[
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/config", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/config", true),
    ("POST", "/api/v1/teams/:team_name/builds", true),
    ("GET", "/api/v1/builds", true),
    ("GET", "/api/v1/builds/:build_id", true),
    // 404 while the build has no engine plan (the fixture's build is made in the store).
    ("GET", "/api/v1/builds/:build_id/plan", false),
    ("GET", "/api/v1/builds/:build_id/events", true),
    ("GET", "/api/v1/builds/:build_id/resources", true),
    ("GET", "/api/v1/builds/:build_id/preparation", false),
    ("GET", "/api/v1/builds/:build_id/artifacts", true),
    ("PUT", "/api/v1/builds/:build_id/comment", true),
    ("GET", "/api/v1/jobs", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/builds", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/builds", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/builds/:build_name", true),
    // 404 until the scheduler has determined the next build's inputs.
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/inputs", false),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/builds/:build_name", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/pause", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/unpause", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/schedule", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/badge", true),
    ("GET", "/api/v1/pipelines/:pipeline_name/jobs/:job_name/badge", true),
    ("DELETE", "/api/v1/teams/:team_name/pipelines/:pipeline_name/jobs/:job_name/tasks/:step_name/cache", true),
    ("GET", "/api/v1/pipelines", true),
    ("GET", "/api/v1/teams/:team_name/pipelines", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/ordering", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/ordering", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/pause", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/unpause", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/expose", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/hide", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/versions-db", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/builds", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/builds", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/badge", true),
    ("GET", "/api/v1/resources", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resource-types", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/check", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/check/webhook", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resource-types/:resource_type_name/check", true),
    ("POST", "/api/v1/teams/:team_name/pipelines/:pipeline_name/prototypes/:prototype_name/check", true),
    ("DELETE", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/cache", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/enable", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/disable", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/pin", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/unpin", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/pin_comment", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/input_to", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/output_of", true),
    // Earlier upstream releases' causality routes (403 unless --enable-resource-causality).
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/upstream", true),
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/downstream", true),
    // v7.0-v7.3's name for downstream (called `:resource_version_id` there).
    ("GET", "/api/v1/teams/:team_name/pipelines/:pipeline_name/resources/:resource_name/versions/:resource_config_version_id/causality", true),
    ("GET", "/api/v1/teams/:team_name/cc.xml", true),
    ("GET", "/api/v1/workers", true),
    ("POST", "/api/v1/workers", true),
    ("PUT", "/api/v1/workers/:worker_name/heartbeat", true),
    ("GET", "/api/v1/log-level", true),
    ("PUT", "/api/v1/log-level", true),
    ("GET", "/api/v1/cli", true),
    ("GET", "/api/v1/info", true),
    ("GET", "/api/v1/info/creds", true),
    ("GET", "/api/v1/user", true),
    ("GET", "/api/v1/users", true),
    ("GET", "/api/v1/containers/destroying", true),
    ("PUT", "/api/v1/containers/report", true),
    ("GET", "/api/v1/teams/:team_name/containers", true),
    // An unknown handle: the handler's 404.
    ("GET", "/api/v1/teams/:team_name/containers/:id", false),
    ("GET", "/api/v1/teams/:team_name/containers/:id/hijack", false),
    ("GET", "/api/v1/teams/:team_name/volumes", true),
    ("GET", "/api/v1/volumes/destroying", true),
    ("PUT", "/api/v1/volumes/report", true),
    ("GET", "/api/v1/teams", true),
    ("GET", "/api/v1/teams/:team_name", true),
    ("PUT", "/api/v1/teams/:team_name", true),
    ("GET", "/api/v1/teams/:team_name/builds", true),
    ("POST", "/api/v1/teams/:team_name/artifacts", true),
    ("GET", "/api/v1/teams/:team_name/artifacts/:artifact_id", false),
    ("GET", "/api/v1/wall", true),
    ("PUT", "/api/v1/wall", true),
    ("DELETE", "/api/v1/wall", true),
    // Last: the ones that change or remove their target.
    ("PUT", "/api/v1/workers/:worker_name/prune", true),
    ("PUT", "/api/v1/workers/:worker_name/retire", true),
    ("PUT", "/api/v1/workers/:worker_name/land", true),
    ("DELETE", "/api/v1/workers/:worker_name", true),
    ("PUT", "/api/v1/builds/:build_id/abort", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/archive", true),
    ("DELETE", "/api/v1/teams/:team_name/pipelines/:pipeline_name", true),
    ("PUT", "/api/v1/teams/:team_name/pipelines/:pipeline_name/rename", true),
    // 403: main is the last admin team.
    ("DELETE", "/api/v1/teams/:team_name", true),
    ("PUT", "/api/v1/teams/:team_name/rename", true),
];

/// Upstream routes this server does not serve yet (see the parity issue): kept here so
/// the table stays complete and a fix shows up as a failing entry to remove.
#[rustfmt::skip]
const NOT_YET: &[(&str, &str)] = &[];

const PIPELINE: &str = r#"
resource_types:
- name: rt
  type: mock
  source: {}
prototypes:
- name: proto
  type: mock
  source: {}
resources:
- name: r
  type: mock
  source: {}
jobs:
- name: j
  plan:
  - get: r
  - put: r
"#;

struct Fixture {
    c: Client,
    s: Server,
    token: String,
    build_id: i64,
    build_name: String,
    version_a: i64,
    version_put: i64,
    worker: String,
}

impl Fixture {
    fn req(&self, m: Method, path: &str) -> reqwest::RequestBuilder {
        self.c.request(m, self.s.api(path)).bearer_auth(&self.token)
    }

    async fn status(&self, m: Method, path: &str) -> StatusCode {
        self.req(m, path).send().await.expect("request").status()
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.req(Method::GET, path).send().await.expect("GET");
        let st = r.status();
        let text = r.text().await.expect("body");
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The main team's pipeline `p` (paused: nothing runs by itself) with one build of
    /// job `j` that got version `a` of `r` and put version `put`.
    async fn new() -> Fixture {
        Self::with(&[]).await
    }

    async fn with(flags: &[&str]) -> Fixture {
        let s = Server::quickstart_with(Backend::Embedded, flags);
        let token = s.token("test", "test").await;
        let c = Client::new();
        let st = c
            .put(s.api("/api/v1/teams/main/pipelines/p/config"))
            .bearer_auth(&token)
            .header("Content-Type", "application/x-yaml")
            .body(PIPELINE)
            .send()
            .await
            .expect("set pipeline")
            .status();
        assert!(st.is_success(), "set pipeline: {st}");
        let store = s.store().await;
        let team = store.team("main").await.unwrap().unwrap();
        let pipeline = store.pipeline("main", "p", None).await.unwrap().unwrap();
        let job = store.job(pipeline.id, "j").await.unwrap().unwrap();
        let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
        // The scope the checker uses too, so a check (the table POSTs one) keeps these.
        let key = concourse::atc::engine::resource::config_key("mock", &json!({}), &[]);
        let scope = store
            .resource_scope("mock", &key, Some(r.id))
            .await
            .unwrap();
        store.set_resource_scope(r.id, scope).await.unwrap();
        let nv = |s: &str| NewVersion {
            version: json!({ "version": s }),
            metadata: json!([]),
        };
        store
            .save_versions(scope, &[nv("a"), nv("b")])
            .await
            .unwrap();
        let b = store
            .create_build(&NewBuild {
                team_id: team.id,
                job_id: Some(job.id),
                pipeline_id: Some(pipeline.id),
                created_by: "test".into(),
                plan: None,
                at: 1,
                resource_id: None,
            })
            .await
            .unwrap();
        store
            .save_build_inputs(
                b.id,
                &[BuildInputRow {
                    name: "r".into(),
                    resource_id: r.id,
                    version: json!({"version": "a"}),
                    first_occurrence: true,
                }],
            )
            .await
            .unwrap();
        store
            .save_build_output(
                b.id,
                &BuildOutputRow {
                    name: "r".into(),
                    resource_id: r.id,
                    version: json!({"version": "put"}),
                    metadata: json!([]),
                },
            )
            .await
            .unwrap();
        let start = concourse::db::BuildStart {
            at: 2,
            plan: json!({}),
            holder: "test".into(),
            expires: 32,
        };
        assert!(store.start_build(b.id, &start).await.unwrap());
        store
            .finish_build(b.id, BuildStatus::Failed, 3)
            .await
            .unwrap();
        let versions = store.versions(scope, &Page::default()).await.unwrap();
        let id = |s: &str| {
            versions
                .iter()
                .find(|v| v.version["version"] == s)
                .unwrap()
                .id
        };
        let (version_a, version_put) = (id("a"), id("put"));
        let mut f = Fixture {
            c,
            s,
            token,
            build_id: b.id,
            build_name: b.name,
            version_a,
            version_put,
            worker: String::new(),
        };
        let (_, workers) = f.get_json("/api/v1/workers").await;
        f.worker = workers[0]["name"].as_str().expect("a worker").to_string();
        f
    }

    async fn set_pipeline(&self) {
        let st = self
            .req(Method::PUT, "/api/v1/teams/main/pipelines/p/config")
            .header("Content-Type", "application/x-yaml")
            .body(PIPELINE)
            .send()
            .await
            .expect("set pipeline")
            .status();
        assert!(st.is_success(), "set pipeline: {st}");
    }

    fn path(&self, template: &str) -> String {
        let mut p = template
            .replace(":team_name", "main")
            .replace(":pipeline_name", "p")
            .replace(":job_name", "j")
            .replace(":build_name", &self.build_name)
            .replace(":build_id", &self.build_id.to_string())
            .replace(":resource_name", "r")
            .replace(":resource_type_name", "rt")
            .replace(":prototype_name", "proto")
            .replace(":resource_config_version_id", &self.version_a.to_string())
            .replace(":step_name", "unit")
            .replace(":worker_name", &self.worker)
            .replace(":artifact_id", "999999")
            .replace(":id", "nope");
        // Queries a route needs to be answered rather than refused.
        if p.ends_with("/destroying") || p.ends_with("/report") {
            p.push_str(&format!("?worker_name={}", self.worker));
        } else if p == "/api/v1/cli" {
            p.push_str("?arch=amd64&platform=linux");
        }
        p
    }
}

fn body_for(method: &str, path: &str) -> Option<(&'static str, String)> {
    let j = |v: Value| Some(("application/json", v.to_string()));
    match (method, path) {
        (_, p) if p.ends_with("/config") => Some(("application/x-yaml", PIPELINE.to_string())),
        (_, p) if p.ends_with("/report") => j(json!([])),
        (_, p) if p.ends_with("/comment") => j(json!({"comment": "hi"})),
        (_, p) if p.ends_with("/pin_comment") => j(json!({"pin_comment": "x"})),
        (_, p) if p.ends_with("/check") => j(json!({})),
        (_, p) if p.ends_with("/rename") => j(json!({"name": "renamed"})),
        // The instances of group p: `{}` is its non-instanced pipeline.
        (_, p) if p.ends_with("/pipelines/p/ordering") => j(json!([{}])),
        (_, p) if p.ends_with("/ordering") => j(json!(["p"])),
        ("PUT", "/api/v1/wall") => j(json!({"message": "hello"})),
        ("PUT", "/api/v1/log-level") => Some(("text/plain", "debug".into())),
        ("PUT", "/api/v1/teams/main") => {
            j(json!({"auth": {"owner": {"users": ["local:test"], "groups": []}}}))
        }
        ("PUT", p) if p.starts_with("/api/v1/workers/") => j(json!({"team": ""})),
        ("POST", p) if p.ends_with("/builds") && !p.contains("/jobs/") => j(json!({})),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_route_is_served() {
    let f = Fixture::new().await;
    let mut failures = Vec::new();
    for &(method, template, strict) in ROUTES {
        let path = f.path(template);
        if template.ends_with("/rename") && template.contains(":pipeline_name") {
            f.set_pipeline().await; // deleted by the row before
        }
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = f.req(m, &path);
        if let Some((ct, body)) = body_for(method, &path) {
            rb = rb.header("Content-Type", ct).body(body);
        }
        let resp = rb
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let st = resp.status();
        let from_router = !resp.headers().contains_key("X-Concourse-Version");
        drop(resp);
        if st == StatusCode::METHOD_NOT_ALLOWED
            || (st == StatusCode::NOT_FOUND && (strict || from_router))
        {
            failures.push(format!("{method} {template} ({path}) → {st}"));
        }
    }
    for &(method, template) in NOT_YET {
        let st = f
            .status(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &f.path(template),
            )
            .await;
        if st != StatusCode::NOT_FOUND && st != StatusCode::METHOD_NOT_ALLOWED {
            failures.push(format!(
                "{method} {template} is served now ({st}): move it to ROUTES"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "unserved routes:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_routes_answer_upstreams_shapes() {
    let f = Fixture::new().await;
    let v = format!(
        "/api/v1/teams/main/pipelines/p/resources/r/versions/{}",
        f.version_a
    );

    // input_to / output_of: lists of builds.
    let (st, used) = f.get_json(&format!("{v}/input_to")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(used.as_array().unwrap().len(), 1, "{used}");
    assert_eq!(used[0]["id"], f.build_id);
    assert_eq!(used[0]["job_name"], "j");
    assert_eq!(used[0]["status"], "failed");
    let (_, made) = f.get_json(&format!("{v}/output_of")).await;
    assert_eq!(made, json!([]));
    let put = format!(
        "/api/v1/teams/main/pipelines/p/resources/r/versions/{}",
        f.version_put
    );
    let (_, made) = f.get_json(&format!("{put}/output_of")).await;
    assert_eq!(made[0]["id"], f.build_id);
    let (st, _) = f.get_json(&format!("{v}/nope/input_to")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Causality is behind a flag, off by default as upstream.
    for direction in ["downstream", "causality"] {
        assert_eq!(
            f.status(Method::GET, &format!("{v}/{direction}")).await,
            StatusCode::FORBIDDEN
        );
    }

    // Badges: SVG of the latest finished build; the pipeline's takes the worst.
    let resp = f
        .req(
            Method::GET,
            "/api/v1/teams/main/pipelines/p/jobs/j/badge?title=ci",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    let svg = resp.text().await.unwrap();
    assert!(svg.contains(">failing<") && svg.contains(">ci<"), "{svg}");
    let svg = f
        .req(Method::GET, "/api/v1/teams/main/pipelines/p/badge")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        svg.contains(">failing<") && svg.contains(">build<"),
        "{svg}"
    );
    let resp = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(f.s.api("/api/v1/pipelines/p/jobs/j/badge"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        resp.headers()["location"],
        "/api/v1/teams/main/pipelines/p/jobs/j/badge"
    );

    // cc.xml: the job with a finished build.
    let resp = f
        .req(Method::GET, "/api/v1/teams/main/cc.xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/xml");
    let xml = resp.text().await.unwrap();
    assert!(
        xml.starts_with("<Projects><Project activity=\"Sleeping\""),
        "{xml}"
    );
    assert!(xml.contains("lastBuildStatus=\"Failure\""), "{xml}");
    assert!(xml.contains("name=\"p/j\""), "{xml}");
    assert!(xml.contains("/teams/main/pipelines/p/jobs/j\""), "{xml}");
    // Anonymous: the pipeline is not exposed.
    let anon = Client::new()
        .get(f.s.api("/api/v1/teams/main/cc.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(anon, "<Projects></Projects>");

    // versions-db.
    let (st, db) = f
        .get_json("/api/v1/teams/main/pipelines/p/versions-db")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(db["Jobs"][0]["Name"], "j");
    assert_eq!(db["Resources"][0]["Name"], "r");
    assert_eq!(db["ResourceVersions"].as_array().unwrap().len(), 3, "{db}");
    assert!(db["ResourceVersions"][0]["CheckOrder"].as_i64().unwrap() > 0);
    assert_eq!(db["BuildInputs"], json!([]), "only successful builds count");

    // Schedule: 200; unknown job 404.
    assert_eq!(
        f.status(
            Method::PUT,
            "/api/v1/teams/main/pipelines/p/jobs/j/schedule"
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        f.status(
            Method::PUT,
            "/api/v1/teams/main/pipelines/p/jobs/x/schedule"
        )
        .await,
        StatusCode::NOT_FOUND
    );

    // Resource caches: nothing cached yet.
    let (st, cleared) = {
        let r = f
            .req(
                Method::DELETE,
                "/api/v1/teams/main/pipelines/p/resources/r/cache",
            )
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(st, StatusCode::OK);
    assert_eq!(cleared, json!({"caches_removed": 0}));
    let r = f
        .req(
            Method::DELETE,
            "/api/v1/teams/main/pipelines/p/resource-types/rt/cache",
        )
        .json(&json!({"version": {"version": "a"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"caches_removed": 0})
    );
    assert_eq!(
        f.status(
            Method::DELETE,
            "/api/v1/teams/main/pipelines/p/resource-types/nope/cache"
        )
        .await,
        StatusCode::NOT_FOUND
    );

    // Wall: set with a TTL, read back with the time left, cleared; admin only.
    assert_eq!(f.get_json("/api/v1/wall").await.1, json!({}));
    let st = f
        .req(Method::PUT, "/api/v1/wall")
        .json(&json!({"message": "down at 5", "TTL": 3_600_000_000_000i64}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::OK);
    let wall: Value = Client::new()
        .get(f.s.api("/api/v1/wall"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wall["message"], "down at 5");
    let ttl = wall["TTL"].as_i64().unwrap();
    assert!(
        ttl > 3_500_000_000_000 && ttl <= 3_600_000_000_000,
        "{wall}"
    );
    let st = f
        .req(Method::PUT, "/api/v1/wall")
        .json(&json!({"message": ""}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let dev = f.s.token("dev", "dev").await;
    let st = Client::new()
        .delete(f.s.api("/api/v1/wall"))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        f.status(Method::DELETE, "/api/v1/wall").await,
        StatusCode::OK
    );
    assert_eq!(f.get_json("/api/v1/wall").await.1, json!({}));

    // Log level: plain text, the known levels only.
    let level = |f: &Fixture| {
        let rb = f.req(Method::GET, "/api/v1/log-level");
        async move { rb.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(level(&f).await, "info");
    let put = |body: &'static str| f.req(Method::PUT, "/api/v1/log-level").body(body).send();
    assert_eq!(put("debug").await.unwrap().status(), StatusCode::OK);
    assert_eq!(level(&f).await, "debug");
    assert_eq!(put("loud").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(level(&f).await, "debug");

    // Users: the admin's login is recent; a bad date is upstream's JSON error.
    let (st, users) = f.get_json("/api/v1/users").await;
    assert_eq!(st, StatusCode::OK);
    let me = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "test")
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(me["connector"], "local");
    assert!(me["last_login"].as_i64().unwrap() > 0);
    assert!(me["id"].as_i64().unwrap() > 0);
    let (st, err) = f.get_json("/api/v1/users?since=yesterday").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(err, json!({"error": "wrong date format (yyyy-mm-dd)"}));
    let (_, none) = f.get_json("/api/v1/users?since=2999-01-01").await;
    assert_eq!(none, json!([]));

    // Credential managers: none configured.
    assert_eq!(
        f.get_json("/api/v1/info/creds").await,
        (StatusCode::OK, json!({}))
    );

    // Worker-facing lists and reports.
    let w = &f.worker;
    for kind in ["containers", "volumes"] {
        let (st, list) = f
            .get_json(&format!("/api/v1/{kind}/destroying?worker_name={w}"))
            .await;
        assert_eq!((st, list), (StatusCode::OK, json!([])), "{kind}");
        assert_eq!(
            f.status(Method::GET, &format!("/api/v1/{kind}/destroying"))
                .await,
            StatusCode::BAD_REQUEST
        );
        let st = f
            .req(
                Method::PUT,
                &format!("/api/v1/{kind}/report?worker_name={w}"),
            )
            .json(&json!(["h1"]))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::NO_CONTENT, "{kind}");
        assert_eq!(
            f.status(
                Method::PUT,
                &format!("/api/v1/{kind}/report?worker_name=nope")
            )
            .await,
            StatusCode::NOT_FOUND
        );
    }

    // Abort answers 204, as upstream's handler does.
    assert_eq!(
        f.status(Method::PUT, &format!("/api/v1/builds/{}/abort", f.build_id))
            .await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn causality_trees_follow_inputs_and_outputs() {
    let f = Fixture::with(&["--enable-resource-causality"]).await;
    let v = |id: i64| format!("/api/v1/teams/main/pipelines/p/resources/r/versions/{id}");
    let (st, down) = f.get_json(&format!("{}/downstream", v(f.version_a))).await;
    assert_eq!(st, StatusCode::OK, "{down}");
    assert_eq!(
        down,
        json!({
            "resource_id": down["resource_id"], "resource_version_id": f.version_a,
            "resource_name": "r", "version": {"version": "a"},
            "builds": [{
                "id": f.build_id, "name": f.build_name, "job_id": down["builds"][0]["job_id"],
                "job_name": "j", "status": "failed",
                "resource_versions": [{
                    "resource_id": down["resource_id"], "resource_version_id": f.version_put,
                    "resource_name": "r", "version": {"version": "put"},
                }],
            }],
        })
    );
    // The pre-v7.4 name answers the same tree.
    let (st, old) = f.get_json(&format!("{}/causality", v(f.version_a))).await;
    assert_eq!((st, old), (StatusCode::OK, down));
    let (st, up) = f.get_json(&format!("{}/upstream", v(f.version_put))).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    assert_eq!(up["builds"][0]["id"], f.build_id);
    assert_eq!(
        up["builds"][0]["resource_versions"][0]["resource_version_id"],
        f.version_a
    );
    assert!(up["builds"][0]["resource_versions"][0]
        .get("builds")
        .is_none());
    let (st, _) = f.get_json(&format!("{}/upstream", v(999_999))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// A real build's gets leave resource caches on the worker; `DELETE R/cache` finds them
/// by their labels and destroys them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_resource_cache_destroys_what_gets_left() {
    let f = Fixture::new().await;
    let p = "/api/v1/teams/main/pipelines/p";
    assert_eq!(
        f.status(Method::PUT, &format!("{p}/unpause")).await,
        StatusCode::OK
    );
    let b: Value = f
        .req(Method::POST, &format!("{p}/jobs/j/builds"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = b["id"].as_i64().expect("build id");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        let (_, b) = f.get_json(&format!("/api/v1/builds/{id}")).await;
        let s = b["status"].as_str().unwrap_or_default().to_string();
        if !matches!(s.as_str(), "pending" | "started") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "build {id} still {s}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let log = f
        .req(Method::GET, &format!("/api/v1/builds/{id}/log"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The get fetched the newest version; the put (no params) fails, which is beside the point.
    assert!(log.contains("fetching version: put"), "{status}: {log}");
    let clear = || async {
        f.req(Method::DELETE, &format!("{p}/resources/r/cache"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["caches_removed"]
            .as_i64()
            .unwrap()
    };
    assert!(clear().await >= 1, "the get's cache is found");
    assert_eq!(clear().await, 0, "and gone");
}
