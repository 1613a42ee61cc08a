//! fly as a separate process against a small fake ATC (no store, no config module): login,
//! the flyrc it writes, tables, error rendering and the version gate.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[derive(Default)]
struct Fake {
    version: String,
    /// Requests as `METHOD path`, to assert what fly sent.
    seen: Mutex<Vec<String>>,
}

type S = State<Arc<Fake>>;

fn authed(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn record(s: &Fake, what: String) {
    s.seen.lock().expect("lock").push(what);
}

async fn info(State(s): S, h: HeaderMap) -> Response {
    if h.contains_key("authorization") && !authed(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"version": s.version, "worker_version": "3.0", "feature_flags": {"global_resources": false, "build_rerun": false, "cache_streamed_volumes": false, "resource_causality": false}})).into_response()
}

async fn token(State(s): S, h: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    // Refuse Basic client auth so fly has to retry with the credentials in the form.
    if h.contains_key("authorization") {
        record(&s, "token basic".into());
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    record(
        &s,
        format!(
            "token form client_id={}",
            f.get("client_id").cloned().unwrap_or_default()
        ),
    );
    if f.get("username").map(String::as_str) == Some("test")
        && f.get("password").map(String::as_str) == Some("test")
    {
        Json(json!({"access_token": TOKEN, "token_type": "bearer", "expires_in": 86399}))
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "access_denied", "error_description": "Invalid username or password"}))).into_response()
    }
}

async fn user(h: HeaderMap) -> Response {
    if !authed(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"sub": "s", "name": "test", "user_id": "test", "user_name": "test", "email": "", "is_admin": false, "is_system": false, "teams": {"main": ["owner"]}, "connector": "local", "display_user_id": "test"})).into_response()
}

async fn pipelines(h: HeaderMap) -> Response {
    if !authed(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!([
        {"id": 1, "name": "known", "paused": true, "public": false, "archived": false, "team_name": "main", "extra_field": 1},
        {"id": 2, "name": "inst", "instance_vars": {"branch": "main"}, "paused": false, "public": true, "archived": false, "team_name": "main"},
        {"id": 3, "name": "old", "paused": true, "public": false, "archived": true, "team_name": "main"}
    ]))
    .into_response()
}

async fn pause(State(s): S, h: HeaderMap, Path(p): Path<String>) -> Response {
    if !authed(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    record(&s, format!("pause {p}"));
    if p == "known" {
        StatusCode::OK.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn jobs(h: HeaderMap) -> Response {
    if !authed(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!([
        {"id": 1, "name": "unit", "team_name": "main", "pipeline_id": 1, "pipeline_name": "known", "paused": true,
         "finished_build": {"id": 4, "name": "2", "status": "succeeded", "team_name": "main", "pipeline_id": 1, "pipeline_name": "known", "job_name": "unit"}},
        {"id": 2, "name": "integration-long", "team_name": "main", "pipeline_id": 1, "pipeline_name": "known"}
    ]))
    .into_response()
}

async fn logout(State(s): S, h: HeaderMap) -> StatusCode {
    record(
        &s,
        format!(
            "logout cookie={}",
            h.get("cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        ),
    );
    StatusCode::OK
}

/// Serves the fake on 127.0.0.1:0 from a background runtime; returns its URL.
fn serve(version: &str) -> (String, Arc<Fake>) {
    let state = Arc::new(Fake {
        version: version.into(),
        ..Default::default()
    });
    let app = Router::new()
        .route("/api/v1/info", get(info))
        .route("/sky/issuer/token", post(token))
        .route("/sky/logout", get(logout))
        .route("/api/v1/user", get(user))
        .route("/api/v1/teams/main/pipelines", get(pipelines))
        .route("/api/v1/teams/main/pipelines/{p}/pause", put(pause))
        .route("/api/v1/teams/main/pipelines/{p}/jobs", get(jobs))
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

struct Fly {
    home: tempfile::TempDir,
}

impl Fly {
    fn new() -> Fly {
        Fly {
            home: tempfile::tempdir().expect("temp"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_concourse"))
            .arg("fly")
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("FLY_HOME")
            .env_remove("FAKE_FLY_VERSION")
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .output()
            .expect("run fly")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "fly {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn flyrc(&self) -> String {
        std::fs::read_to_string(self.home.path().join(".flyrc")).expect("flyrc")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn login_saves_the_target_and_later_commands_use_its_token() {
    let (url, fake) = serve("8.2.5");
    let fly = Fly::new();
    let out = fly.ok(&[
        "-t",
        "ci",
        "login",
        "-c",
        &format!("{url}/"),
        "-u",
        "test",
        "-p",
        "test",
    ]);
    assert_eq!(out, "logging in to team 'main'\n\n\ntarget saved\n");
    assert_eq!(fly.flyrc(), format!("targets:\n  ci:\n    api: {url}\n    team: main\n    token:\n      type: bearer\n      value: {TOKEN}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fly.home.path().join(".flyrc"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        fake.seen.lock().expect("lock")[..2],
        [
            "token basic".to_string(),
            "token form client_id=fly".to_string()
        ]
    );

    let targets = fly.ok(&["targets"]);
    assert_eq!(
        targets,
        format!("ci  {url}  main  Mon, 01 Jan 0001 00:00:00 UTC\n")
            .replace("Mon, 01 Jan 0001 00:00:00 UTC", &expected_expiry())
    );
    assert_eq!(fly.ok(&["-t", "ci", "status"]), "logged in successfully\n");

    let table = fly.ok(&["pipelines", "-t", "ci"]);
    assert_eq!(
        table,
        "1  known             yes  no   1970-01-01 00:00:00 +0000 UTC\n2  inst/branch:main  no   yes  1970-01-01 00:00:00 +0000 UTC\n"
    );
    let headed = fly.ok(&[
        "-t",
        "ci",
        "--print-table-headers",
        "ps",
        "--include-archived",
    ]);
    assert!(headed.starts_with("id  name              paused  public  archived  last updated                 \n1   known             yes     no      no        1970-01-01 00:00:00 +0000 UTC\n"), "{headed}");
    let json: Value = serde_json::from_str(&fly.ok(&["-t", "ci", "ps", "--json"])).expect("json");
    assert_eq!(
        json[0],
        json!({"id": 1, "name": "known", "paused": true, "public": false, "archived": false, "team_name": "main"})
    );
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    assert_eq!(
        fly.ok(&["-t", "ci", "pp", "-p", "known"]),
        "paused 'known'\n"
    );
    let out = fly.run(&["-t", "ci", "pause-pipeline", "-p", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "pipeline 'missing' not found\n\n");
    let out = fly.run(&["-t", "ci", "pause-pipeline"]);
    assert_eq!(
        stderr(&out),
        "one of the flags '-p, --pipeline' or '-a, --all' is required\n"
    );

    assert_eq!(
        fly.ok(&["-t", "ci", "jobs", "-p", "known"]),
        "unit              yes  succeeded  n/a\nintegration-long  no   n/a        n/a\n"
    );

    assert_eq!(
        fly.ok(&["-t", "ci", "logout"]),
        "logged out of target: ci\n"
    );
    assert!(fake
        .seen
        .lock()
        .expect("lock")
        .iter()
        .any(|s| s == &format!("logout cookie=skymarshal_auth=\"bearer {TOKEN}\"")));
    assert!(
        fly.flyrc()
            .contains("    token:\n      type: \"\"\n      value: \"\"\n"),
        "{}",
        fly.flyrc()
    );
    let out = fly.run(&["-t", "ci", "status"]);
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (Some(1), "logged out\n".to_string())
    );
    let out = fly.run(&["-t", "ci", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "not authorized. run the following to log in:\n\n    fly -t ci login\n\n"
    );
}

fn expected_expiry() -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(TOKEN)
        .expect("b64");
    let secs = u64::from_le_bytes(raw[20..28].try_into().expect("8 bytes")) as i64;
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.format("%a, %d %b %Y %H:%M:%S UTC").to_string(),
        None => "n/a: invalid token".into(),
    }
}

#[test]
fn a_minor_version_mismatch_refuses_but_login_only_warns() {
    let (url, _) = serve("8.3.0");
    let fly = Fly::new();
    let out = fly.run(&["-t", "ci", "login", "-c", &url, "-u", "test", "-p", "test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fly version (8.2.5) is out of sync with the target (8.3.0)"),
        "{}",
        stderr(&out)
    );
    let out = fly.run(&["-t", "ci", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "fly version (8.2.5) is out of sync with the target (8.3.0). to sync up, run the following:\n\n    fly -t ci sync\n\ncowardly refusing to run due to significant version discrepancy\n"
    );
    assert!(fly.run(&["-t", "ci", "targets"]).status.success());
}

#[test]
fn wrong_password_reports_the_oauth2_error() {
    let (url, _) = serve("8.2.5");
    let fly = Fly::new();
    let out = fly.run(&["-t", "ci", "login", "-c", &url, "-u", "test", "-p", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .ends_with("error: oauth2: \"access_denied\" \"Invalid username or password\"\n"),
        "{}",
        stderr(&out)
    );
    assert!(!fly.home.path().join(".flyrc").exists());
}

#[test]
fn usage_errors_and_unreachable_servers_are_reported_like_upstream() {
    let fly = Fly::new();
    assert_eq!(fly.ok(&["-v"]), "8.2.5\n");
    let out = fly.run(&["pipelines"]);
    assert_eq!(stderr(&out), "no target specified. specify the target with -t or log in like so:\n\n    fly -t (alias) login -c (concourse url)\n\n");
    let out = fly.run(&["-t", "nope", "pipelines"]);
    assert_eq!(stderr(&out), "error: unknown target: nope\n");
    let out = fly.run(&["-t", "x", "get-pipeline"]);
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (
            Some(1),
            "error: the required flag '-p, --pipeline' was not specified\n".to_string()
        )
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    std::fs::write(
        fly.home.path().join(".flyrc"),
        format!("targets:\n  gone:\n    api: http://127.0.0.1:{port}\n"),
    )
    .expect("write");
    let out = fly.run(&["-t", "gone", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("could not reach the Concourse server called gone:\n\n    "),
        "{err}"
    );
    assert!(
        err.ends_with("\n\nis the targeted Concourse running? better go catch it lol\n"),
        "{err}"
    );
    assert_eq!(
        fly.ok(&["targets"]),
        format!("gone  http://127.0.0.1:{port}  main  n/a\n")
    );
}
