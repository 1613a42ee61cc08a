//! One table-driven authorization test (security review): every API route of
//! `atc::api::router` × requester × pipeline visibility × job visibility, each cell
//! asserting upstream's auth outcome (atc-api.md §1.1–§1.3 and the *Access*/*Role*
//! columns of §3): 401, 403, or "allowed" (any status but 401/403 — the request may still
//! 400/404/409 on its body or target). All cells run; one failure lists every mismatch.
//!
//! The routes and their access come from the server's own table, `policy::ROUTES`: every
//! rule must have a row here, and each row's *Access* column (upstream's, as the review
//! wrote it down) must agree with the table's rule for that route.

mod common;

use common::{Backend, Server};
use concourse::atc::api::policy::{self, RouteRule, ROUTES};
use concourse::atc::auth::Role;
use concourse::proto::worker::{Worker, WorkerState};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Requesters. Roles on team `t` (the fixtures' team); `other` owns team `other`;
/// `nobody` (the harness's `dev`) has no role anywhere; `admin` is main's owner (`test`).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Anon,
    Viewer,
    Operator,
    Member,
    Owner,
    Other,
    Nobody,
    Admin,
}
const WHO: [Who; 8] = [
    Who::Anon,
    Who::Viewer,
    Who::Operator,
    Who::Member,
    Who::Owner,
    Who::Other,
    Who::Nobody,
    Who::Admin,
];

impl Who {
    fn creds(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Who::Anon => return None,
            Who::Viewer => ("viewer", "p"),
            Who::Operator => ("operator", "p"),
            Who::Member => ("member", "p"),
            Who::Owner => ("owner", "p"),
            Who::Other => ("other", "p"),
            Who::Nobody => ("dev", "dev"),
            Who::Admin => ("test", "test"),
        })
    }
    /// Role level on team `t`: 1 viewer, 2 pipeline-operator, 3 member, 4 owner.
    fn level(self) -> u8 {
        match self {
            Who::Viewer => 1,
            Who::Operator => 2,
            Who::Member => 3,
            Who::Owner => 4,
            _ => 0,
        }
    }
}

const VIEW: u8 = 1;
const OP: u8 = 2;
const MEMBER: u8 = 3;
const OWNER: u8 = 4;

/// Access classes of atc-api.md §1.3 (the role is the §3 *Role* column).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    Open,
    Authn,
    AnyTeam,
    /// `team`, and `build-w` (role on the build's team).
    Team(u8),
    /// `pipe` and `build-r` (role viewer): public pipeline, or a role on its team.
    Pipe,
    /// `build-rj`: as `Pipe`, but non-members also need the job to be `public: true`.
    PipeJob,
    /// `worker`: the role on the worker's team (a team worker), or admin (any worker).
    Worker(u8),
    System,
    Admin,
}

/// What the matrix expects of a route with the table's `access` (its fixtures' team
/// exists, so `TeamUpsert` is the owner's).
fn class_of(access: policy::Access) -> Access {
    use policy::Access as P;
    let level = |r: Role| match r {
        Role::Viewer => VIEW,
        Role::PipelineOperator => OP,
        Role::Member => MEMBER,
        Role::Owner => OWNER,
    };
    match access {
        // No token on the webhook row: 400 for everyone.
        P::Open | P::Visible | P::WebhookToken => Access::Open,
        P::Authenticated => Access::Authn,
        P::AnyTeam => Access::AnyTeam,
        P::System => Access::System,
        P::Admin => Access::Admin,
        P::TeamUpsert => Access::Team(OWNER),
        P::TeamRole(r)
        | P::Intercept(r)
        | P::PipelineRole(r)
        | P::PipelineRoleUnarchived(r)
        | P::BuildRole(r) => Access::Team(level(r)),
        P::PipelineRead | P::BuildRead => Access::Pipe,
        P::BuildReadPublicJob => Access::PipeJob,
        P::WorkerRole(r) => Access::Worker(level(r)),
    }
}

/// Rules without a row: the login endpoints (their own tests), and causality, which
/// answers 403 to everyone while its flag is off (the default).
fn unmatrixed(rule: &RouteRule) -> bool {
    rule.path.starts_with("/sky/")
        || rule.path == "/login"
        || rule.path == "/logout"
        || rule.path.ends_with("/upstream")
        || rule.path.ends_with("/downstream")
}

/// The table's rule for a row: same method, same segments (a `{param}` of the template
/// takes any segment), the most literal segments winning as in the router.
fn rule_of(method: &Method, row_path: &str) -> Option<&'static RouteRule> {
    let path: Vec<&str> = row_path.split('?').next()?.split('/').collect();
    ROUTES
        .iter()
        .filter(|r| r.method == method.as_str())
        .filter_map(|r| {
            let tpl: Vec<&str> = r.path.split('/').collect();
            if tpl.len() != path.len() {
                return None;
            }
            let mut literal = 0;
            for (t, p) in tpl.iter().zip(&path) {
                if t.starts_with('{') {
                    continue;
                }
                if t != p {
                    return None;
                }
                literal += 1;
            }
            Some((literal, r))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, r)| r)
}

#[test]
fn every_rule_has_a_row_that_agrees_with_it() {
    let rows = rows();
    let mut problems = Vec::new();
    let mut covered = Vec::new();
    for (method, path, spec, ..) in &rows {
        match rule_of(method, path) {
            Some(rule) => {
                covered.push(rule);
                if class_of(rule.access) != *spec {
                    problems.push(format!(
                        "{method} {path}: the table says {:?} ({:?}), the matrix {spec:?}",
                        rule.access,
                        class_of(rule.access)
                    ));
                }
            }
            None => problems.push(format!("{method} {path}: no rule in policy::ROUTES")),
        }
    }
    for rule in ROUTES {
        if !unmatrixed(rule) && !covered.contains(&rule) {
            problems.push(format!(
                "{} {} ({:?}): no row in the matrix",
                rule.method, rule.path, rule.access
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Want {
    Unauthorized,
    Forbidden,
    Allowed,
}

/// What the cell's fixture is: pipeline exposed?, job public? (None where irrelevant).
#[derive(Clone, Copy, Debug)]
struct Vis {
    exposed: Option<bool>,
    public_job: Option<bool>,
    /// The target is worker `tw` of team t (else the global worker `gw`).
    team_worker: bool,
}

fn expect(access: Access, who: Who, vis: Vis) -> Want {
    use Want::*;
    let team = |role: u8| match who {
        Who::Anon => Unauthorized,
        Who::Admin => Allowed,
        w if w.level() >= role => Allowed,
        _ => Forbidden,
    };
    let exposed = vis.exposed.unwrap_or(false);
    match access {
        Access::Open => Allowed,
        Access::Authn => match who {
            Who::Anon => Unauthorized,
            _ => Allowed,
        },
        Access::AnyTeam => match who {
            Who::Anon => Unauthorized,
            Who::Nobody => Forbidden,
            _ => Allowed,
        },
        Access::Team(role) => team(role),
        Access::Worker(role) if vis.team_worker => team(role),
        Access::Pipe if exposed => Allowed,
        Access::PipeJob if exposed && vis.public_job == Some(true) => Allowed,
        Access::Pipe | Access::PipeJob => team(VIEW),
        Access::System => match who {
            Who::Anon => Unauthorized,
            _ => Forbidden,
        },
        Access::Admin | Access::Worker(_) => match who {
            Who::Anon => Unauthorized,
            Who::Admin => Allowed,
            _ => Forbidden,
        },
    }
}

/// How a row's target is prepared: the shared fixtures, or a throwaway made afresh
/// before each cell (for rows that would destroy or rename their target).
#[derive(Clone, Copy, PartialEq)]
enum Fix {
    Shared,
    /// After the cell, put the pipeline's visibility back (expose / hide).
    RestoreVis,
    /// A fresh pipeline `scratch` in team `t`, exposed or hidden like the cell.
    ScratchPipeline,
    /// A fresh team `scratch` with `t`'s auth.
    ScratchTeam,
    /// Workers `tw` (team t) and `gw` (global) put back into the store as running.
    Workers,
}

/// Path placeholders: {t} team, {p} pipeline, {j} job, {n} build name, {b} build id,
/// {w} worker (× team worker `tw` / global worker `gw`).
/// A row's dimensions follow from its placeholders: {p} × exposed/hidden pipeline,
/// {j} × public/private job, {b} × build of public job/private job/check/one-off (and a
/// team one-off build, with the hidden pipeline).
const T: &str = "/api/v1/teams/{t}";
const P: &str = "/api/v1/teams/{t}/pipelines/{p}";
const J: &str = "/api/v1/teams/{t}/pipelines/{p}/jobs/{j}";
const R: &str = "/api/v1/teams/{t}/pipelines/{p}/resources/r";
const V: &str = "/api/v1/teams/{t}/pipelines/{p}/resources/r/versions/999999";
const B: &str = "/api/v1/builds/{b}";

type Row = (Method, String, Access, Fix, Option<Value>);

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    use Access::*;
    use Fix::*;
    let (get, put, post, del) = (Method::GET, Method::PUT, Method::POST, Method::DELETE);
    let r = |m: &Method, path: String, a: Access, fix: Fix, body: Option<Value>| (m.clone(), path, a, fix, body);
    let f = |base: &str, rest: &str| format!("{base}{rest}");
    let s = |x: &str| x.to_string();
    let worker = || Some(json!({"addr": "127.0.0.1:7777", "name": "tw", "team": "t", "version": "2.5"}));
    let team = || Some(json!({"team": "t"}));
    vec![
        // §3.1 info, user, wall, cli; well-known (outside /api/v1)
        r(&get, s("/api/v1/info"), Open, Shared, None),
        r(&get, s("/api/v1/user"), Authn, Shared, None),
        r(&get, s("/api/v1/wall"), Open, Shared, None),
        r(&get, s("/api/v1/cli?arch=amd64&platform=linux"), Open, Shared, None),
        r(&get, s("/.well-known/openid-configuration"), Open, Shared, None),
        r(&get, s("/.well-known/jwks.json"), Open, Shared, None),
        r(&put, s("/api/v1/wall"), Admin, Shared, Some(json!({"message": "hi", "TTL": 1_000_000_000i64}))),
        r(&del, s("/api/v1/wall"), Admin, Shared, None),
        r(&get, s("/api/v1/log-level"), Admin, Shared, None),
        r(&put, s("/api/v1/log-level"), Admin, Shared, Some(Value::String("info".into()))),
        r(&get, s("/api/v1/info/creds"), Admin, Shared, None),
        r(&get, s("/api/v1/users"), Admin, Shared, None),
        // §3.8 workers
        r(&get, s("/api/v1/workers"), AnyTeam, Shared, None),
        r(&post, s("/api/v1/workers?ttl=30s"), System, Shared, worker()),
        r(&put, s("/api/v1/workers/{w}/heartbeat?ttl=30s"), System, Workers, worker()),
        r(&del, s("/api/v1/workers/{w}"), System, Workers, worker()),
        r(&put, s("/api/v1/workers/{w}/land"), Worker(MEMBER), Workers, team()),
        r(&put, s("/api/v1/workers/{w}/retire"), Worker(MEMBER), Workers, team()),
        r(&put, s("/api/v1/workers/{w}/prune"), Worker(MEMBER), Workers, None),
        r(&get, s("/api/v1/containers/destroying?worker_name={w}"), Worker(VIEW), Workers, None),
        r(&get, s("/api/v1/volumes/destroying?worker_name={w}"), Worker(VIEW), Workers, None),
        r(&put, s("/api/v1/containers/report?worker_name={w}"), Worker(MEMBER), Workers, Some(json!([]))),
        r(&put, s("/api/v1/volumes/report?worker_name={w}"), Worker(MEMBER), Workers, Some(json!([]))),
        // §3.2 teams, §3.5 team builds, §3.9 containers, §3.10 artifacts
        r(&get, s("/api/v1/teams"), Open, Shared, None),
        r(&get, s(T), Team(VIEW), Shared, None),
        r(&put, s(T), Team(OWNER), Shared, Some(team_t_auth())), // t's own auth: a no-op
        r(&get, f(T, "/builds"), Team(VIEW), Shared, None),
        r(&post, f(T, "/builds"), Team(MEMBER), Shared, Some(json!({}))),
        r(&get, f(T, "/containers"), Team(VIEW), Shared, None),
        r(&get, f(T, "/containers/nope"), Team(VIEW), Shared, None),
        r(&get, f(T, "/containers/nope/hijack"), Team(MEMBER), Shared, None),
        r(&get, f(T, "/volumes"), Team(VIEW), Shared, None),
        r(&post, f(T, "/artifacts?platform=linux"), Team(MEMBER), Shared, None),
        r(&get, f(T, "/artifacts/999999"), Team(MEMBER), Shared, None),
        r(&put, f(T, "/pipelines/ordering"), Team(MEMBER), Shared, Some(json!(["exposed", "hidden"]))),
        r(&get, f(T, "/cc.xml"), Open, Shared, None),
        // §3.3 pipelines and config
        r(&get, s("/api/v1/pipelines"), Open, Shared, None),
        r(&get, f(T, "/pipelines"), Open, Shared, None),
        r(&get, s(P), Pipe, Shared, None),
        r(&get, f(P, "/config"), Team(VIEW), Shared, None),
        // No version header: a stale save (500) for the allowed, nothing changes.
        r(&put, f(P, "/config"), Team(MEMBER), Shared, Some(Value::String(pipeline_yaml()))),
        r(&put, f(P, "/pause"), Team(OP), Shared, None),
        r(&put, f(P, "/unpause"), Team(OP), Shared, None),
        // The instances of group {p}: `{}` is the pipeline itself, so nothing changes.
        r(&put, f(P, "/ordering"), Team(MEMBER), Shared, Some(json!([{}]))),
        r(&put, f(P, "/expose"), Team(MEMBER), RestoreVis, None),
        r(&put, f(P, "/hide"), Team(MEMBER), RestoreVis, None),
        r(&get, f(P, "/builds"), Pipe, Shared, None),
        r(&post, f(P, "/builds"), Team(MEMBER), Shared, Some(json!({}))),
        r(&get, f(P, "/graph"), Pipe, Shared, None), // UI extension; a read like GET P
        r(&get, f(P, "/badge"), Pipe, Shared, None),
        r(&get, f(P, "/versions-db"), Team(VIEW), Shared, None),
        // §3.4 jobs
        r(&get, s("/api/v1/jobs"), Open, Shared, None),
        r(&get, s("/api/v1/dashboard"), Open, Shared, None), // UI extension, like /jobs
        r(&get, f(P, "/jobs"), Pipe, Shared, None),
        r(&get, s(J), Pipe, Shared, None),
        r(&get, f(J, "/builds"), Pipe, Shared, None),
        r(&post, f(J, "/builds"), Team(OP), Shared, None),
        r(&get, f(J, "/builds/{n}"), Pipe, Shared, None),
        r(&post, f(J, "/builds/{n}"), Team(OP), Shared, None),
        r(&get, f(J, "/inputs"), Team(VIEW), Shared, None),
        r(&put, f(J, "/pause"), Team(OP), Shared, None),
        r(&put, f(J, "/unpause"), Team(OP), Shared, None),
        r(&del, f(J, "/tasks/unit/cache"), Team(OP), Shared, None),
        r(&put, f(J, "/schedule"), Team(OP), Shared, None),
        r(&get, f(J, "/badge"), Pipe, Shared, None),
        r(&get, s("/api/v1/pipelines/{p}/jobs/{j}/badge"), Open, Shared, None), // 301 to main's
        // §3.5 builds: `Pipe` is build-r, `PipeJob` build-rj, `Team(OP)` build-w
        r(&get, s("/api/v1/builds"), Open, Shared, None),
        r(&get, s(B), Pipe, Shared, None),
        r(&get, f(B, "/resources"), Pipe, Shared, None),
        r(&get, f(B, "/plan"), PipeJob, Shared, None),
        r(&get, f(B, "/events"), PipeJob, Shared, None),
        r(&get, f(B, "/preparation"), PipeJob, Shared, None),
        r(&get, f(B, "/artifacts"), PipeJob, Shared, None),
        r(&get, f(B, "/log"), PipeJob, Shared, None), // UI extension; a log is its events
        r(&put, f(B, "/comment"), Team(OP), Shared, Some(json!({"comment": "hi"}))),
        // §3.6 resources and types
        r(&get, s("/api/v1/resources"), Open, Shared, None),
        r(&get, f(P, "/resources"), Pipe, Shared, None),
        r(&get, s(R), Pipe, Shared, None),
        r(&get, f(P, "/resource-types"), Pipe, Shared, None),
        r(&post, f(R, "/check"), Team(OP), Shared, Some(json!({}))),
        r(&post, f(R, "/check/webhook"), Open, Shared, None), // no token: 400 for everyone
        r(&post, f(P, "/resource-types/rt/check"), Team(OP), Shared, Some(json!({}))),
        r(&post, f(P, "/prototypes/proto/check"), Team(OP), Shared, Some(json!({}))), // 404 when allowed
        r(&del, f(R, "/cache"), Team(OP), Shared, None),
        r(&del, f(P, "/resource-types/rt/cache"), Team(OP), Shared, None),
        // §3.7 versions (an unknown id: access is decided before the lookup)
        r(&get, f(R, "/versions"), Pipe, Shared, None),
        r(&get, s(V), Pipe, Shared, None),
        r(&put, f(V, "/enable"), Team(OP), Shared, None),
        r(&put, f(V, "/disable"), Team(OP), Shared, None),
        r(&put, f(V, "/pin"), Team(OP), Shared, None),
        r(&put, f(R, "/unpin"), Team(OP), Shared, None),
        r(&put, f(R, "/pin_comment"), Team(OP), Shared, Some(json!({"pin_comment": "x"}))),
        r(&get, f(V, "/input_to"), Pipe, Shared, None),
        r(&get, f(V, "/output_of"), Pipe, Shared, None),
        // With the causality flag on (403 for everyone without it): `pipe`, like input_to.
        r(&get, f(V, "/upstream"), Pipe, Shared, None),
        r(&get, f(V, "/downstream"), Pipe, Shared, None),
        r(&get, f(V, "/causality"), Pipe, Shared, None),
        // Last: rows that change their target.
        r(&put, f(B, "/abort"), Team(OP), Shared, None),
        r(&put, f(P, "/archive"), Team(MEMBER), ScratchPipeline, None),
        r(&put, f(P, "/rename"), Team(MEMBER), ScratchPipeline, Some(json!({"name": "renamed"}))),
        r(&del, s(P), Team(MEMBER), ScratchPipeline, None),
        r(&put, f(T, "/rename"), Team(OWNER), ScratchTeam, Some(json!({"name": "renamed"}))),
        r(&del, s(T), Admin, ScratchTeam, None),
    ]
}

fn pipeline_yaml() -> String {
    r#"
resource_types:
- name: rt
  type: mock
  source: {}
resources:
- name: r
  type: mock
  source: {}
jobs:
- name: pub
  public: true
  plan: [{get: r}, {task: unit, config: {platform: linux, image_resource: {type: mock, source: {}}, run: {path: "true"}}}]
- name: priv
  plan: [{get: r}, {task: unit, config: {platform: linux, image_resource: {type: mock, source: {}}, run: {path: "true"}}}]
"#
    .to_string()
}

fn team_t_auth() -> Value {
    let u = |name: &str| json!({"users": [format!("local:{name}")], "groups": []});
    json!({"auth": {"owner": u("owner"), "member": u("member"),
                    "pipeline-operator": u("operator"), "viewer": u("viewer")}})
}

struct World {
    c: Client,
    s: Server,
    tokens: HashMap<&'static str, String>,
    /// (pipeline, job) → (build id, build name)
    builds: HashMap<(String, String), (i64, String)>,
    store: std::sync::Arc<dyn concourse::db::Store>,
}

impl World {
    fn req(&self, who: Who, m: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.c.request(m, self.s.api(path));
        match who.creds() {
            Some((u, _)) => rb.bearer_auth(&self.tokens[u]),
            None => rb,
        }
    }

    async fn admin(&self, m: Method, path: &str, body: Option<Value>) -> StatusCode {
        let mut rb = self.req(Who::Admin, m, path);
        rb = match body {
            Some(Value::String(y)) => rb.header("Content-Type", "application/x-yaml").body(y),
            Some(v) => rb.json(&v),
            None => rb,
        };
        rb.send().await.expect("admin request").status()
    }

    /// Pipeline `name` in team `t` with the standard config, exposed or hidden.
    async fn set_pipeline(&self, name: &str, exposed: bool) {
        let st = self
            .admin(
                Method::PUT,
                &format!("/api/v1/teams/t/pipelines/{name}/config"),
                Some(Value::String(pipeline_yaml())),
            )
            .await;
        assert!(st.is_success(), "set pipeline {name}: {st}");
        let action = if exposed { "expose" } else { "hide" };
        let st = self
            .admin(
                Method::PUT,
                &format!("/api/v1/teams/t/pipelines/{name}/{action}"),
                None,
            )
            .await;
        assert!(st.is_success(), "{action} {name}: {st}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_upstream_access() {
    let started = Instant::now();
    let s = Server::start_with(
        Backend::Embedded,
        &[
            "--add-local-user",
            "viewer:p,operator:p,member:p,owner:p,other:p",
            // So the causality routes get past the flag to their access check.
            "--enable-resource-causality",
        ],
    );
    let mut tokens = HashMap::new();
    for who in WHO {
        if let Some((u, p)) = who.creds() {
            tokens.insert(u, s.token(u, p).await);
        }
    }
    let store = s.store().await;
    let mut w = World {
        c: Client::new(),
        s,
        tokens,
        builds: HashMap::new(),
        store,
    };

    // Fixtures: team t (one user per role), team other (owned by `other`), pipelines
    // `exposed` and `hidden` in t, each with a public and a private job, and one build of each job.
    assert!(w
        .admin(Method::PUT, "/api/v1/teams/t", Some(team_t_auth()))
        .await
        .is_success());
    let other = json!({"auth": {"owner": {"users": ["local:other"], "groups": []}}});
    assert!(w
        .admin(Method::PUT, "/api/v1/teams/other", Some(other))
        .await
        .is_success());
    // Besides the job builds, a check build and a one-off build of each pipeline (never
    // public for build-rj, whatever the pipeline's visibility) and a team one-off build.
    let oneoff = json!({"id": "a1", "task": {"name": "one-off",
        "config": {"platform": "linux", "run": {"path": "true"}}}});
    for (p, exposed) in [("exposed", true), ("hidden", false)] {
        w.set_pipeline(p, exposed).await;
        let base = format!("/api/v1/teams/t/pipelines/{p}");
        for (kind, path, body) in [
            ("pub", format!("{base}/jobs/pub/builds"), None),
            ("priv", format!("{base}/jobs/priv/builds"), None),
            (
                "check",
                format!("{base}/resources/r/check"),
                Some(json!({})),
            ),
            ("oneoff", format!("{base}/builds"), Some(oneoff.clone())),
            // A team one-off (no pipeline), filed under `hidden` for the table.
            (
                "team",
                "/api/v1/teams/t/builds".to_string(),
                Some(oneoff.clone()),
            ),
        ] {
            if kind == "team" && exposed {
                continue;
            }
            let mut rb = w.req(Who::Admin, Method::POST, &path);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            let resp = rb.send().await.expect("creating a build");
            let status = resp.status();
            let b: Value = resp.json().await.unwrap_or_default();
            assert!(status.is_success(), "{kind} build of {p}: {status} {b}");
            let id = b["id"].as_i64().expect("build id");
            let name = b["name"].as_str().expect("build name").to_string();
            w.builds
                .insert((p.to_string(), kind.to_string()), (id, name));
        }
    }

    let mut cells = 0;
    let mut mismatches = Vec::new();
    let all_rows = rows();
    for (method, template, _, fix, body) in &all_rows {
        // The server is held to its own table (the test above ties the table to the spec).
        let access = &class_of(rule_of(method, template).expect("a rule").access);
        let has_p = template.contains("{p}") || template.contains("{b}");
        let pipelines: &[Option<bool>] = if has_p {
            &[Some(true), Some(false)]
        } else {
            &[None]
        };
        // (target kind: job, build or worker; is its job public?)
        let jobs: &[(&str, Option<bool>)] = if template.contains("{b}") {
            &[
                ("pub", Some(true)),
                ("priv", Some(false)),
                ("check", Some(false)),
                ("oneoff", Some(false)),
                ("team", Some(false)),
            ]
        } else if template.contains("{j}") {
            &[("pub", Some(true)), ("priv", Some(false))]
        } else if template.contains("{w}") {
            &[("tw", None), ("gw", None)]
        } else {
            &[("priv", None)]
        };
        for &exposed in pipelines {
            for &(j, public_job) in jobs {
                if j == "team" && exposed == Some(true) {
                    continue; // no pipeline to expose
                }
                let vis = Vis {
                    exposed,
                    public_job,
                    team_worker: j == "tw",
                };
                for who in WHO {
                    let mut p = match exposed {
                        Some(true) => "exposed",
                        _ => "hidden",
                    };
                    let mut t = "t";
                    match fix {
                        Fix::ScratchPipeline => {
                            w.admin(Method::DELETE, "/api/v1/teams/t/pipelines/scratch", None)
                                .await;
                            w.admin(Method::DELETE, "/api/v1/teams/t/pipelines/renamed", None)
                                .await;
                            w.set_pipeline("scratch", exposed == Some(true)).await;
                            p = "scratch";
                        }
                        Fix::Workers => {
                            for (name, team) in [("tw", "t"), ("gw", "")] {
                                let worker = Worker {
                                    name: name.into(),
                                    garden_addr: "10.0.0.1:7777".into(),
                                    baggageclaim_url: "http://10.0.0.1:7788".into(),
                                    platform: "linux".into(),
                                    team: team.into(),
                                    version: "2.5".into(),
                                    state: Some(WorkerState::Running),
                                    ..Worker::default()
                                };
                                let now = chrono::Utc::now().timestamp();
                                w.store
                                    .register_worker(&worker, None, now)
                                    .await
                                    .expect("seed worker");
                            }
                        }
                        Fix::ScratchTeam => {
                            w.admin(Method::DELETE, "/api/v1/teams/scratch", None).await;
                            w.admin(Method::DELETE, "/api/v1/teams/renamed", None).await;
                            let st = w
                                .admin(Method::PUT, "/api/v1/teams/scratch", Some(team_t_auth()))
                                .await;
                            assert!(st.is_success(), "scratch team: {st}");
                            t = "scratch";
                        }
                        _ => {}
                    }
                    let (b, n) = w
                        .builds
                        .get(&(p.to_string(), j.to_string()))
                        .cloned()
                        .unwrap_or_default();
                    let path = template
                        .replace("{t}", t)
                        .replace("{p}", p)
                        .replace("{j}", j)
                        .replace("{n}", &n)
                        .replace("{b}", &b.to_string())
                        .replace("{w}", j);
                    let mut rb = w.req(who, method.clone(), &path);
                    rb = match body {
                        Some(Value::String(y)) => rb
                            .header("Content-Type", "application/x-yaml")
                            .body(y.clone()),
                        Some(v) => rb.json(v),
                        None => rb,
                    };
                    // Headers only: event streams of pending builds stay open.
                    let got = rb.send().await.expect("request").status();
                    cells += 1;
                    if *fix == Fix::RestoreVis {
                        let action = if exposed == Some(true) {
                            "expose"
                        } else {
                            "hide"
                        };
                        w.admin(
                            Method::PUT,
                            &format!("/api/v1/teams/t/pipelines/{p}/{action}"),
                            None,
                        )
                        .await;
                    }
                    let want = expect(*access, who, vis);
                    let outcome = match got.as_u16() {
                        401 => Want::Unauthorized,
                        403 => Want::Forbidden,
                        _ => Want::Allowed,
                    };
                    if outcome != want {
                        mismatches.push(format!(
                            "{method} {template} [{access:?}] as {who:?} (pipeline exposed={exposed:?}, target {j}): want {want:?}, got {got}"
                        ));
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "authz: {} rows, {cells} cells in {elapsed:?}",
        all_rows.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {cells} cells disagree with upstream:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// `--config-rbac` moves actions to other roles, as upstream's example does; a file naming
/// an unknown role or action stops the node at start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_rbac_changes_the_role_an_action_needs() {
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("rbac.yml");
    std::fs::write(
        &file,
        "viewer: [PausePipeline, UnpausePipeline]\nowner: [ListContainers]\n",
    )
    .expect("write");
    let s = Server::start_with(
        Backend::Embedded,
        &[
            "--add-local-user",
            "viewer:p,operator:p,member:p,owner:p,other:p",
            "--config-rbac",
            file.to_str().expect("utf-8"),
        ],
    );
    let c = Client::new();
    let admin = s.token("test", "test").await;
    let put = c
        .put(s.api("/api/v1/teams/t"))
        .bearer_auth(&admin)
        .json(&team_t_auth())
        .send()
        .await
        .expect("team");
    assert!(put.status().is_success(), "{}", put.status());
    let config = c
        .put(s.api("/api/v1/teams/t/pipelines/p/config"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/x-yaml")
        .body(pipeline_yaml())
        .send()
        .await
        .expect("config");
    assert!(config.status().is_success(), "{}", config.status());
    let call = |who: &'static str, m: Method, path: &'static str| {
        let (c, s) = (c.clone(), &s);
        async move {
            let token = s.token(who, "p").await;
            c.request(m, s.api(path))
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    // A viewer may now pause (by default, pipeline-operator and up)...
    let pause = "/api/v1/teams/t/pipelines/p/pause";
    assert_eq!(call("viewer", Method::PUT, pause).await, StatusCode::OK);
    // ...and only owners list containers (by default, viewers and up).
    let containers = "/api/v1/teams/t/containers";
    assert_eq!(
        call("member", Method::GET, containers).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call("owner", Method::GET, containers).await, StatusCode::OK);
    // Everything else keeps its default: a viewer still cannot expose.
    assert_eq!(
        call("viewer", Method::PUT, "/api/v1/teams/t/pipelines/p/expose").await,
        StatusCode::FORBIDDEN
    );

    for (text, said) in [
        ("wizard: [GetTeam]\n", "unknown role wizard"),
        ("viewer: [MakeCoffee]\n", "unknown action MakeCoffee"),
    ] {
        std::fs::write(&file, text).expect("write");
        let out = std::process::Command::new(common::bin())
            .args(["web", "--bind-ip", "127.0.0.1", "--bind-port", "0"])
            .args(["--tsa-bind-ip", "127.0.0.1", "--tsa-bind-port", "0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config-rbac")
            .arg(&file)
            .args(["--add-local-user", "a:b", "--main-team-local-user", "a"])
            .output()
            .expect("concourse web");
        assert!(!out.status.success(), "web started with {text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{err}");
    }
}
