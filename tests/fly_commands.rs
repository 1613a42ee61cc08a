//! fly's command list against upstream's, and the commands added for parity: against a
//! small fake ATC where our server does not serve the route yet, and against a real
//! `concourse web` where it does (`get-wall`, `builds`).

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use clap::CommandFactory;
use common::{stderr, stdout, Backend, Server};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// Upstream v8.2.5 `fly --help` (fly/commands/fly.go): every command with its aliases.
const UPSTREAM: &[(&str, &[&str])] = &[
    ("help", &[]),
    ("targets", &["ts"]),
    ("delete-target", &["dtg"]),
    ("edit-target", &["etg"]),
    ("login", &["l"]),
    ("logout", &["o"]),
    ("status", &[]),
    ("health", &[]),
    ("sync", &["s"]),
    ("active-users", &["au"]),
    ("userinfo", &[]),
    ("teams", &["t"]),
    ("get-team", &["gt"]),
    ("set-team", &["st"]),
    ("rename-team", &["rt"]),
    ("destroy-team", &["dt"]),
    ("checklist", &["cl"]),
    ("execute", &["e"]),
    ("watch", &["w"]),
    ("containers", &["cs"]),
    ("hijack", &["intercept", "i"]),
    ("jobs", &["js"]),
    ("paused-jobs", &["pjs"]),
    ("pause-job", &["pj"]),
    ("unpause-job", &["uj"]),
    ("schedule-job", &["sj"]),
    ("pipelines", &["ps"]),
    ("paused-pipelines", &["pps"]),
    ("destroy-pipeline", &["dp"]),
    ("get-pipeline", &["gp"]),
    ("set-pipeline", &["sp"]),
    ("pause-pipeline", &["pp"]),
    ("archive-pipeline", &["ap"]),
    ("unpause-pipeline", &["up"]),
    ("expose-pipeline", &["ep"]),
    ("hide-pipeline", &["hp"]),
    ("rename-pipeline", &["rp"]),
    ("validate-pipeline", &["vp"]),
    ("format-pipeline", &["fp"]),
    ("order-pipelines", &["op"]),
    ("order-instanced-pipelines", &["oip"]),
    ("resources", &["rs"]),
    ("resource-versions", &["rvs"]),
    ("check-resource", &["cr"]),
    ("pin-resource", &["pr"]),
    ("unpin-resource", &["ur"]),
    ("enable-resource-version", &["erv"]),
    ("disable-resource-version", &["drv"]),
    ("clear-resource-cache", &["crc"]),
    ("clear-versions", &["cv"]),
    ("check-resource-type", &["crt"]),
    ("clear-task-cache", &["ctc"]),
    ("builds", &["bs"]),
    ("abort-build", &["ab"]),
    ("rerun-build", &["rb"]),
    ("trigger-job", &["tj"]),
    ("volumes", &["vs"]),
    ("workers", &["ws"]),
    ("land-worker", &["lw"]),
    ("prune-worker", &["pw"]),
    ("curl", &["c"]),
    ("get-wall", &["gw"]),
    ("set-wall", &["sw"]),
    ("clear-wall", &["cw"]),
    ("get-components", &["gc"]),
    ("pause-component", &["pc"]),
    ("unpause-component", &["uc"]),
    ("completion", &[]),
];

#[test]
fn every_upstream_command_and_alias_exists() {
    let mut cmd = concourse::fly::cli::FlyArgs::command();
    cmd.build();
    let mut missing = Vec::new();
    for (name, aliases) in UPSTREAM {
        match cmd.find_subcommand(name) {
            None => missing.push(name.to_string()),
            Some(sub) => {
                let ours: Vec<&str> = sub.get_all_aliases().collect();
                for a in *aliases {
                    if !ours.contains(a) {
                        missing.push(format!("{name} alias {a}"));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing from our fly: {missing:?}");
    // And the help text lists them (what a user sees).
    let help = stdout(&fly_bare(&["--help"]));
    for (name, _) in UPSTREAM {
        assert!(help.contains(&format!("  {name} ")), "{name} not in --help");
    }
}

/// Upstream v8.2.5's long flags per command (struct tags in fly/commands/*.go; `set-team`'s
/// connector flags come from skymarshal and are not listed here).
const UPSTREAM_FLAGS: &str = "
delete-target all
edit-target concourse-url target-name team-name
login ca-cert client-cert client-key concourse-url insecure open-browser password team-name username
logout all
sync ca-cert client-cert client-key concourse-url force insecure
active-users json since
userinfo json
teams details json
get-team json team-name
set-team non-interactive team-name
rename-team new-name old-name
destroy-team non-interactive team-name
checklist pipeline team
execute background config image include-ignored input input-mapping inputs-from load-vars-from output privileged tag team var yaml-var
watch build ignore-event-parsing-errors job team timestamps url
containers json team
hijack attempt build check handle job step step-type team url
jobs json pipeline team
paused-jobs json pipeline team
pause-job job team
unpause-job job team
schedule-job job
pipelines all include-archived json team
paused-pipelines all json
destroy-pipeline non-interactive pipeline team
get-pipeline json pipeline team
set-pipeline check-creds config dry-run instance-var load-vars-from no-color non-interactive pipeline team var yaml-var
pause-pipeline all pipeline team
archive-pipeline all non-interactive pipeline team
unpause-pipeline all pipeline team
expose-pipeline pipeline team
hide-pipeline pipeline team
rename-pipeline new-name old-name team
validate-pipeline config enable-across-step load-vars-from output strict var yaml-var
format-pipeline config write
order-pipelines alphabetical pipeline team
order-instanced-pipelines group pipeline team
resources json pipeline team
resource-versions count json resource team
check-resource async from resource shallow team
pin-resource comment resource version
unpin-resource resource
enable-resource-version resource version
disable-resource-version resource version
clear-resource-cache resource team version
clear-versions non-interactive resource resource-type team
check-resource-type async from resource-type shallow team
clear-task-cache cache-path job non-interactive step team
builds all-teams count current-team job json pipeline since team until
abort-build build job team
rerun-build build job watch
trigger-job job team watch
volumes details json
workers details json
land-worker worker
prune-worker all-stalled worker
curl print-and-exit
set-wall message ttl
get-components json
pause-component all gc-components name runtime-components
unpause-component all gc-components name runtime-components
completion shell
";

#[test]
fn every_upstream_long_flag_exists() {
    let cmd = concourse::fly::cli::FlyArgs::command();
    let mut missing = Vec::new();
    for line in UPSTREAM_FLAGS.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let name = words.next().expect("name");
        let sub = cmd.find_subcommand(name).expect(name);
        let ours: Vec<&str> = sub.get_arguments().filter_map(|a| a.get_long()).collect();
        for flag in words {
            if !ours.contains(&flag) {
                missing.push(format!("{name} --{flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from our fly: {missing:?}"
    );
}

fn fly_bare(args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("fly")
        .args(args)
        .output()
        .expect("run fly")
}

const VERSION: &str = "8.2.5";
const TOKEN: &str = "tok";

#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<String>>,
    wall: Mutex<Value>,
}

fn build(id: i64, pipeline: &str, job: &str, name: &str) -> Value {
    let mut b = json!({"id": id, "team_name": "main", "name": name, "status": "succeeded",
        "api_url": format!("/api/v1/builds/{id}"), "start_time": 1_700_000_000, "end_time": 1_700_000_090,
        "not_upstream": true});
    if !pipeline.is_empty() {
        b["pipeline_id"] = json!(1);
        b["pipeline_name"] = json!(pipeline);
        b["job_name"] = json!(job);
    }
    b
}

const EVENTS: &str = "id: 0\nevent: event\ndata: {\"event\":\"log\",\"version\":\"5.1\",\"data\":{\"time\":1700000000,\"payload\":\"hello\\n\",\"origin\":{\"id\":\"x\"}}}\n\nid: 1\nevent: event\ndata: {\"event\":\"status\",\"version\":\"1.0\",\"data\":{\"time\":1700000001,\"status\":\"succeeded\"}}\n\nevent: end\ndata: \n\n";

async fn handler(
    State(s): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let line = match uri.query() {
        Some(q) => format!("{method} {path}?{q} {body_text}"),
        None => format!("{method} {path} {body_text}"),
    };
    s.seen
        .lock()
        .expect("lock")
        .push(line.trim_end().to_string());
    if path == "/api/v1/info" {
        return axum::Json(json!({"version": VERSION, "worker_version": "2.5"})).into_response();
    }
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let j = |v: Value| axum::Json(v).into_response();
    let p = "/api/v1/teams/main/pipelines";
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v1/wall") => j(s.wall.lock().expect("lock").clone()),
        ("PUT", "/api/v1/wall") => {
            *s.wall.lock().expect("lock") = serde_json::from_slice(&body).unwrap_or(json!({}));
            StatusCode::OK.into_response()
        }
        ("DELETE", "/api/v1/wall") => {
            *s.wall.lock().expect("lock") = json!({});
            StatusCode::OK.into_response()
        }
        ("GET", "/api/v1/users") => j(json!([
            {"id": 2, "username": "zed", "connector": "local", "last_login": 1_700_000_000},
            {"id": 1, "username": "bob", "connector": "github", "last_login": 1_690_000_000}
        ])),
        ("GET", "/api/v1/components") => j(json!([
            {"id": 1, "name": "scheduler", "interval": 10_000_000_000i64, "last_ran": "2023-11-14T22:13:20Z", "paused": false}
        ])),
        ("PUT", "/api/v1/components/unpause") => StatusCode::OK.into_response(),
        ("PUT", _) if path.starts_with("/api/v1/components/") && path.ends_with("/pause") => {
            StatusCode::OK.into_response()
        }
        ("GET", "/api/v1/health") => j(json!({
            "status": "degraded", "timestamp": "2023-11-14T22:13:20Z",
            "database": {"status": "ok"},
            "workers": {"status": "unhealthy", "running": 1, "total": 2, "unhealthy_workers": ["w2"]},
            "components": [{"name": "scheduler", "status": "ok", "paused": true, "last_ran": "2023-11-14T22:13:20Z"}]
        })),
        ("GET", "/api/v1/builds") => j(json!([build(9, "", "", "9"), build(7, "p", "j", "3")])),
        ("GET", "/api/v1/teams/main/pipelines/p/jobs/j/builds/3") => j(build(7, "p", "j", "3")),
        ("GET", "/api/v1/teams/main/pipelines/p/jobs/j") => j(
            json!({"id": 1, "name": "j", "team_name": "main", "pipeline_id": 1, "pipeline_name": "p", "next_build": build(7, "p", "j", "3")}),
        ),
        ("GET", "/api/v1/builds/7/events") => {
            ([("content-type", "text/event-stream")], EVENTS).into_response()
        }
        _ if path == format!("{p}/p/jobs/j/schedule") => StatusCode::OK.into_response(),
        _ if path == format!("{p}/grp/ordering") => StatusCode::OK.into_response(),
        _ if path == format!("{p}/p/resources/r/cache") => j(json!({"caches_removed": 2})),
        _ if path == format!("{p}/p/resources/r/shared") => j(json!({
            "resources": [{"name": "r", "pipeline_name": "p", "team_name": "main"}],
            "resource_types": [{"name": "t", "pipeline_name": "p", "team_name": "main"}]
        })),
        _ if path == format!("{p}/p/resources/r/versions") => j(json!({"versions_removed": 5})),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

struct Env {
    home: tempfile::TempDir,
    fake: Arc<Fake>,
    url: String,
}

impl Env {
    fn new() -> Env {
        let fake = Arc::new(Fake {
            wall: Mutex::new(json!({})),
            ..Default::default()
        });
        let app = Router::new().fallback(handler).with_state(fake.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(l, app).await.expect("serve");
            });
        });
        let home = tempfile::tempdir().expect("temp");
        std::fs::write(
            home.path().join(".flyrc"),
            format!("targets:\n  f:\n    api: http://{addr}\n    team: main\n    token:\n      type: bearer\n      value: {TOKEN}\n"),
        )
        .expect("flyrc");
        Env {
            home,
            fake,
            url: format!("http://{addr}"),
        }
    }

    fn run_with(&self, stdin: &str, args: &[&str]) -> Output {
        let mut child = Command::new(common::bin())
            .arg("fly")
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("FLY_HOME")
            .env("FAKE_FLY_VERSION", VERSION)
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fly");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        child.wait_with_output().expect("fly")
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with("", args)
    }

    fn ok_with(&self, stdin: &str, args: &[&str]) -> String {
        let out = self.run_with(stdin, args);
        assert!(
            out.status.success(),
            "fly {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn seen(&self, prefix: &str) -> Vec<String> {
        self.fake
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }
}

#[test]
fn wall_is_set_read_and_cleared() {
    let e = Env::new();
    assert_eq!(
        e.ok(&["-t", "f", "gw"]),
        "No wall message is currently set\n"
    );
    assert_eq!(
        e.ok(&[
            "-t",
            "f",
            "set-wall",
            "-m",
            "maintenance at 5",
            "--ttl",
            "1h30m"
        ]),
        "Wall message set successfully\nMessage will expire in 1h30m0s\n"
    );
    assert_eq!(
        e.seen("PUT /api/v1/wall"),
        vec![r#"PUT /api/v1/wall {"message":"maintenance at 5","TTL":5400000000000}"#]
    );
    assert_eq!(
        e.ok(&["-t", "f", "get-wall"]),
        "Wall Message: maintenance at 5\nExpires in: 1h30m0s\n"
    );
    assert_eq!(
        e.ok(&["-t", "f", "sw", "-m", "hi"]),
        "Wall message set successfully\nNo expiration set\n"
    );
    assert_eq!(
        e.ok(&["-t", "f", "get-wall"]),
        "Wall Message: hi\nNo expiration set\n"
    );
    assert_eq!(
        e.ok(&["-t", "f", "cw"]),
        "Wall message cleared successfully\n"
    );
    assert_eq!(e.seen("DELETE /api/v1/wall").len(), 1);
    let bad = e.run_with("", &["-t", "f", "set-wall", "-m", "x", "--ttl", "5x"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn active_users_since_and_json() {
    let e = Env::new();
    let out = e.ok(&["-t", "f", "au", "--since", "2023-01-02"]);
    assert_eq!(out, "zed  local   2023-11-14\nbob  github  2023-07-22\n");
    assert_eq!(
        e.seen("GET /api/v1/users"),
        vec!["GET /api/v1/users?since=2023-01-02"]
    );
    let js: Value =
        serde_json::from_str(&e.ok(&["-t", "f", "active-users", "--json"])).expect("json");
    assert_eq!(js[0]["username"], "zed");
    assert_eq!(js[1]["last_login"], 1_690_000_000);
    let bad = e.run_with("", &["-t", "f", "au", "--since", "01/02/2023"]);
    assert_eq!(
        stderr(&bad),
        "error: since time should be in the format: yyyy-mm-dd\n"
    );
    let future = e.run_with("", &["-t", "f", "au", "--since", "2999-01-01"]);
    assert_eq!(
        stderr(&future),
        "error: since time can't be in the future\n"
    );
}

#[test]
fn schedule_job_and_order_instanced_pipelines() {
    let e = Env::new();
    assert_eq!(e.ok(&["-t", "f", "sj", "-j", "p/j"]), "scheduled 'j'\n");
    let missing = e.run_with("", &["-t", "f", "schedule-job", "-j", "p/nope"]);
    assert_eq!(stderr(&missing), "error: p/nope not found\n\n");
    assert_eq!(missing.status.code(), Some(1));
    let out = e.ok(&[
        "-t",
        "f",
        "oip",
        "-g",
        "grp",
        "-p",
        "branch:main",
        "-p",
        "branch:dev,n:1",
    ]);
    assert_eq!(
        out,
        "ordered instanced pipelines \n  - branch:main \n  - branch:dev,n:1 \n"
    );
    assert_eq!(
        e.seen("PUT /api/v1/teams/main/pipelines/grp/ordering"),
        vec![
            r#"PUT /api/v1/teams/main/pipelines/grp/ordering [{"branch":"main"},{"branch":"dev","n":1}]"#
        ]
    );
}

#[test]
fn clear_resource_cache_and_versions_confirm_first() {
    let e = Env::new();
    let out = e.ok_with("n\n", &["-t", "f", "crc", "-r", "p/r"]);
    assert!(out.ends_with("bailing out\n"), "{out}");
    assert!(e.seen("DELETE").is_empty());
    let out = e.ok_with(
        "y\n",
        &[
            "-t",
            "f",
            "clear-resource-cache",
            "-r",
            "p/r",
            "-v",
            "ref:abc",
        ],
    );
    assert_eq!(
        out,
        "!!! this will remove the resource cache(s) for `p/r` with version: `{\"ref\":\"abc\"}`\n\nare you sure? [yN]: 2 caches removed\n"
    );
    assert_eq!(
        e.seen("DELETE"),
        vec![
            r#"DELETE /api/v1/teams/main/pipelines/p/resources/r/cache {"version":{"ref":"abc"}}"#
        ]
    );
    let out = e.ok_with("y\n", &["-t", "f", "cv", "--resource", "p/r"]);
    assert_eq!(
        out,
        "!!! this will clear the version histories for the following resources:\n- main/p/r\n\nand the following resource types:\n- main/p/t\n\nare you sure? [yN]: 5 versions removed\n"
    );
    let neither = e.run_with("", &["-t", "f", "cv"]);
    assert_eq!(
        stderr(&neither),
        "error: please specify one of the required flags --resource or --resource-type\n"
    );
    let gone = e.run_with("", &["-t", "f", "cv", "--resource-type", "p/x"]);
    assert_eq!(stderr(&gone), "error: resource type 'x' is not found\n");
}

#[test]
fn components_and_health() {
    let e = Env::new();
    assert_eq!(
        e.ok(&["-t", "f", "gc"]),
        "scheduler  10s  2023-11-14 22:13:20  false\n"
    );
    assert_eq!(
        e.ok(&["-t", "f", "pc", "-n", "scheduler"]),
        "paused 'scheduler'\n"
    );
    assert_eq!(e.ok(&["-t", "f", "uc", "-a"]), "all components unpaused\n");
    assert_eq!(
        e.ok(&["-t", "f", "pc", "--runtime-components"]),
        "paused 'tracker'\npaused 'scanner'\npaused 'scheduler'\n"
    );
    let none = e.run_with("", &["-t", "f", "pause-component"]);
    assert_eq!(stderr(&none), "error: --name or --all must be provided\n");
    let rows: Vec<Vec<String>> = e
        .ok(&["-t", "f", "health"])
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["overall", "degraded", "2023-11-14T22:13:20Z"],
            vec!["database", "ok"],
            vec!["workers", "unhealthy", "1/2 running (unhealthy: w2)"],
            vec!["scheduler", "ok", "paused, last ran: 2023-11-14T22:13:20Z"],
        ]
    );
    let js: Value = serde_json::from_str(&e.ok(&["-t", "f", "health", "--json"])).expect("json");
    assert_eq!(js["workers"]["total"], 2);
}

#[test]
fn completion_scripts_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = fly_bare(&["completion", "--shell", shell]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let flag = if shell == "fish" {
            "-l pipeline"
        } else {
            "--pipeline"
        };
        for name in ["set-pipeline", "clear-versions", "get-wall", flag] {
            assert!(text.contains(name), "{shell}: {name} missing");
        }
    }
    let bad = fly_bare(&["completion", "--shell", "tcsh"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn builds_name_one_off_builds_by_number_and_json_keeps_upstream_fields() {
    let e = Env::new();
    let out = e.ok(&["-t", "f", "builds"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("9  9      succeeded  2023-11-14@22:13:20+0000  2023-11-14@22:14:50+0000  1m30s  main  system"), "{out}");
    assert!(lines[1].starts_with("7  p/j/3  succeeded"), "{out}");
    let js: Value = serde_json::from_str(&e.ok(&["-t", "f", "builds", "--json"])).expect("json");
    let keys: Vec<&String> = js[1].as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        // upstream atc.Build's field order; fields fly does not know are dropped
        vec![
            "id",
            "team_name",
            "name",
            "status",
            "api_url",
            "job_name",
            "pipeline_id",
            "pipeline_name",
            "start_time",
            "end_time"
        ]
    );
    assert!(js[0].get("pipeline_name").is_none());
}

#[test]
fn watch_dash_t_after_the_command_means_timestamps() {
    let e = Env::new();
    let out = e.ok(&["-t", "f", "watch", "-j", "p/j", "-t"]);
    assert_eq!(out, "22:13:20  hello\n22:13:21  succeeded\n");
    let out = e.ok(&["-t", "f", "w", "-j", "p/j"]);
    assert_eq!(out, "hello\nsucceeded\n");
    // No flags: the newest one-off build (9); a build URL of the target names build 7.
    let none = e.run_with("", &["-t", "f", "watch"]);
    assert!(
        e.seen("GET /api/v1/builds/9/events").len() == 1,
        "{}",
        stderr(&none)
    );
    let url = format!("{}/teams/main/pipelines/p/jobs/j/builds/3", e.url);
    assert_eq!(
        e.ok(&["-t", "f", "watch", "-u", &url]),
        "hello\nsucceeded\n"
    );
    let other = e.run_with(
        "",
        &["-t", "f", "watch", "-u", "http://elsewhere:1/builds/7"],
    );
    assert!(
        stderr(&other).starts_with("error: URL doesn't match target"),
        "{}",
        stderr(&other)
    );
}

#[test]
fn real_server_wall_and_builds() {
    let s = Server::start(Backend::Embedded);
    let fly = common::Fly::new();
    fly.login(&s, "real");
    assert_eq!(
        fly.ok(&["-t", "real", "get-wall"]),
        "No wall message is currently set\n"
    );
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, "jobs:\n- name: j\n  plan:\n  - task: t\n    config:\n      platform: linux\n      run: {path: echo}\n").expect("write");
    let file = file.to_string_lossy().into_owned();
    fly.ok(&["-t", "real", "sp", "-p", "p", "-c", &file, "-n"]);
    fly.ok(&["-t", "real", "up", "-p", "p"]);
    fly.ok(&["-t", "real", "tj", "-j", "p/j"]);
    let out = fly.ok(&["-t", "real", "builds"]);
    let row = out.lines().next().unwrap_or_default().to_string();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols.get(1), Some(&"p/j/1"), "{out}");
    assert_eq!(
        cols.get(cols.len().saturating_sub(2)..),
        Some(&["main", "test"][..]),
        "{out}"
    );
}
