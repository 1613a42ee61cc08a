//! `fly check-resource` / `check-resource-type` against a small fake ATC: the request fly
//! sends, the messages it prints, and how it streams the check build like `fly watch`.

mod common;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{stderr, stdout, Fly};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Fake {
    /// `METHOD path?query body`, in order.
    seen: Mutex<Vec<String>>,
}

type S = State<Arc<Fake>>;

fn record(s: &Fake, what: String) {
    s.seen.lock().expect("lock").push(what);
}

async fn info() -> Json<Value> {
    Json(
        json!({"version": concourse::proto::api::API_VERSION, "worker_version": "3.0",
                "feature_flags": {"global_resources": false, "build_rerun": false,
                                  "cache_streamed_volumes": false, "resource_causality": false}}),
    )
}

fn check_build(id: i64, resource: &str) -> Response {
    (
        StatusCode::CREATED,
        Json(
            json!({"id": id, "team_name": "main", "name": "check", "status": "started",
                    "api_url": format!("/api/v1/builds/{id}"), "resource_name": resource,
                    "pipeline_id": 1, "pipeline_name": "p"}),
        ),
    )
        .into_response()
}

async fn check(
    State(s): S,
    Path((p, kind, name)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    record(
        &s,
        format!(
            "POST {p}/{kind}/{name}/check?{} {}",
            q.unwrap_or_default(),
            String::from_utf8_lossy(&body)
        ),
    );
    match name.as_str() {
        "missing" => StatusCode::NOT_FOUND.into_response(),
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "bad" => check_build(8, &name),
        _ => check_build(7, &name),
    }
}

fn sse(events: &[Value]) -> String {
    let mut out = String::new();
    for (i, e) in events.iter().enumerate() {
        out.push_str(&format!("id: {i}\nevent: event\ndata: {e}\n\n"));
    }
    out.push_str(&format!("id: {}\nevent: end\ndata\n\n", events.len()));
    out
}

async fn events(State(s): S, Path(id): Path<i64>) -> Response {
    record(&s, format!("GET events {id}"));
    let status = if id == 7 { "succeeded" } else { "failed" };
    let body = sse(&[
        json!({"event": "initialize-check", "version": "1.0", "data": {"name": "r", "time": 1}}),
        json!({"event": "log", "version": "5.1", "data": {"payload": "checked\n", "time": 1}}),
        json!({"event": "status", "version": "1.0", "data": {"status": status, "time": 2}}),
    ]);
    ([("Content-Type", "text/event-stream")], body).into_response()
}

/// Serves the fake from a background runtime; returns its URL and state.
fn serve() -> (String, Arc<Fake>) {
    let state = Arc::new(Fake::default());
    let app = Router::new()
        .route("/api/v1/info", get(info))
        .route(
            "/api/v1/teams/main/pipelines/{p}/{kind}/{name}/check",
            post(check),
        )
        .route("/api/v1/builds/{id}/events", get(events))
        .with_state(state.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    (format!("http://{addr}"), state)
}

/// A fly whose flyrc already holds a token for target `fake`.
fn fly_for(url: &str) -> Fly {
    let fly = Fly::new();
    std::fs::write(
        fly.home.path().join(".flyrc"),
        format!("targets:\n  fake:\n    api: {url}\n    team: main\n    token:\n      type: bearer\n      value: tok\n"),
    )
    .expect("write flyrc");
    fly
}

fn seen(s: &Fake) -> Vec<String> {
    std::mem::take(&mut *s.seen.lock().expect("lock"))
}

#[test]
fn check_resource_posts_the_version_and_streams_the_check_build() {
    let (url, fake) = serve();
    let fly = fly_for(&url);

    let out = fly.ok(&[
        "-t",
        "fake",
        "check-resource",
        "-r",
        "p/ok",
        "-f",
        "ref:abc",
    ]);
    assert_eq!(
        out,
        "checking p/ok in build 7\ninitializing check: r\nchecked\nsucceeded\n"
    );
    assert_eq!(
        seen(&fake),
        vec![
            r#"POST p/resources/ok/check? {"from":{"ref":"abc"},"shallow":false}"#.to_string(),
            "GET events 7".to_string()
        ]
    );

    let out = fly.run(&["-t", "fake", "cr", "-r", "p/bad", "--shallow"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("checked\nfailed\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        seen(&fake)[0],
        r#"POST p/resources/bad/check? {"from":null,"shallow":true}"#
    );

    let out = fly.ok(&[
        "-t",
        "fake",
        "check-resource",
        "-r",
        "p/branch:main/ok",
        "-a",
    ]);
    assert_eq!(out, "checking p/branch:main/ok in build 7\n");
    assert_eq!(
        seen(&fake),
        vec![r#"POST p/resources/ok/check?vars.branch=%22main%22 {"from":null,"shallow":false}"#]
    );
}

#[test]
fn check_resource_reports_unknown_resources_and_server_errors() {
    let (url, _fake) = serve();
    let fly = fly_for(&url);

    let out = fly.run(&["-t", "fake", "check-resource", "-r", "p/missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: pipeline 'p' or resource 'missing' not found\n\n"
    );
    assert_eq!(stdout(&out), "");

    let out = fly.run(&["-t", "fake", "check-resource", "-r", "p/broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: boom\n");

    let out = fly.run(&["-t", "fake", "check-resource", "-r", "nopipeline"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: argument format should be <pipeline>/<resource>\n"
    );
}

#[test]
fn check_resource_type_uses_the_resource_types_route() {
    let (url, fake) = serve();
    let fly = fly_for(&url);

    let out = fly.ok(&["-t", "fake", "crt", "-r", "p/my-type", "-f", "digest:sha"]);
    assert_eq!(
        out,
        "checking p/my-type in build 7\ninitializing check: r\nchecked\nsucceeded\n"
    );
    assert_eq!(
        seen(&fake)[0],
        r#"POST p/resource-types/my-type/check? {"from":{"digest":"sha"},"shallow":false}"#
    );

    let out = fly.run(&["-t", "fake", "check-resource-type", "-r", "p/missing"]);
    assert_eq!(
        stderr(&out),
        "error: pipeline 'p' or resource-type 'missing' not found\n\n"
    );
}
