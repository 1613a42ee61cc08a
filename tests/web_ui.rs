//! The web UI in a real headless Chromium (Debian's `chromium` + `chromium-driver`), driven
//! over WebDriver as a user would: log in through the form, the dashboard, a pipeline's
//! graph, triggering from the job page and watching the log arrive live, aborting, pinning
//! with a comment, `#L` permalinks, anonymous browsing with controls disabled, logging
//! out. Once against `concourse quickstart` on the embedded store, once against
//! `concourse web` on PostgreSQL with a remote worker. Skips without the browser (fails in CI).

mod common;
mod worker_builds_support;

use common::webdriver::{self, Browser};
use common::{Backend, Fly, Server};
use serde_json::{json, Value};
use std::path::Path;
use worker_builds_support::Cluster;

/// `live` prints a line, waits for the test to create the release file, prints another;
/// `sleeper` runs until aborted; `src` gets versions from `fly check-resource -f`.
const PIPELINE: &str = r#"resources:
- name: src
  type: mock
  check_every: never
  source: {no_initial_version: true}
- name: broken
  type: mock
  check_every: never
  source: {check_failure: the-check-is-broken}
jobs:
- name: live
  public: true
  plan:
  - task: wait
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run:
        path: sh
        args: [-c, 'printf "\033[32mfirst-line\033[0m\nsecond\nthird\n"; while [ ! -f ((release)) ]; do sleep 0.05; done; echo released-line']
- name: sleeper
  plan:
  - task: nap
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: sh, args: [-c, 'echo napping; sleep 300']}
- name: consumer
  plan:
  - get: src
  - get: broken
"#;

/// A bearer token through the password grant (the API checks below are not the browser's).
fn token(url: &str) -> String {
    let resp: Value = reqwest::blocking::Client::new()
        .post(format!("{url}/sky/issuer/token"))
        .basic_auth("fly", Some("Zmx5"))
        .form(&[
            ("grant_type", "password"),
            ("username", "test"),
            ("password", "test"),
            ("scope", "openid profile email federated:id groups"),
        ])
        .send()
        .and_then(|r| r.json())
        .expect("token");
    resp["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

fn api(url: &str, token: &str, path: &str) -> Value {
    reqwest::blocking::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn set_pipeline(fly: &Fly, target: &str, dir: &Path) -> std::path::PathBuf {
    let file = dir.join("ui.yml");
    std::fs::write(&file, PIPELINE).expect("write pipeline");
    let release = dir.join("release");
    let release_var = format!("release={}", release.display());
    fly.ok(&[
        "-t",
        target,
        "set-pipeline",
        "-n",
        "-p",
        "ui",
        "-c",
        &file.to_string_lossy(),
        "-v",
        &release_var,
    ]);
    fly.ok(&["-t", target, "unpause-pipeline", "-p", "ui"]);
    release
}

/// The plan id of the first task step (events and permalinks name steps by it).
fn task_id(plan: &Value) -> Option<String> {
    if plan.get("task").is_some() {
        return plan["id"].as_str().map(String::from);
    }
    match plan {
        Value::Object(m) => m.values().find_map(task_id),
        Value::Array(a) => a.iter().find_map(task_id),
        _ => None,
    }
}

/// Everything the issue lists, against a server whose fly target `target` is logged in.
fn drive(url: &str, fly: &Fly, target: &str, dir: &Path) {
    let release = set_pipeline(fly, target, dir);
    let token = token(url);
    let b = Browser::start();

    // Log in through the form; the dashboard shows the pipeline's card.
    b.login(url, "test", "test");
    b.goto(&format!("{url}/"));
    b.find("[data-testid=pipeline-card][data-name=ui]");
    assert!(
        b.find_all("[data-testid=team-section][data-team=main]")
            .len()
            == 1
    );

    // The pipeline's graph: one node per job, the resource through `passed`.
    b.goto(&format!("{url}/teams/main/pipelines/ui"));
    b.find("[data-testid=pipeline-graph]");
    for job in ["live", "sleeper", "consumer"] {
        b.find(&format!("[data-testid=job-node][data-name={job}]"));
    }
    b.find("[data-testid=resource-node][data-name=src]");

    // Trigger from the job page: the browser lands on the new build and the log arrives
    // while the task still runs; the last line only after the test releases it.
    b.goto(&format!("{url}/teams/main/pipelines/ui/jobs/live"));
    b.wait("an enabled trigger button", || {
        (b.disabled("[data-testid=trigger-job]") == Some(false)).then_some(())
    });
    b.click_css("[data-testid=trigger-job]");
    b.wait("the build page", || {
        b.url().contains("/jobs/live/builds/1").then_some(())
    });
    b.wait_text("first-line");
    let coloured = b.js(
        "return [...document.querySelectorAll('.log-line span.ansi-fg-2')].map(s => s.textContent)",
        json!([]),
    );
    assert_eq!(
        coloured,
        json!(["first-line"]),
        "ANSI green rendered as a class"
    );
    assert!(
        !b.js("return document.body.innerText", json!([]))
            .as_str()
            .unwrap_or_default()
            .contains("released-line"),
        "the task is still waiting"
    );
    std::fs::write(&release, "go").expect("release");
    b.wait_text("released-line");
    b.wait("the build to succeed", || {
        let h = b.find("[data-testid=build-header]");
        (b.attr(&h, "data-status").as_deref() == Some("succeeded")).then_some(())
    });

    // A `#L` permalink expands the step, highlights the line and scrolls to it.
    let plan = api(
        url,
        &token,
        "/api/v1/teams/main/pipelines/ui/jobs/live/builds/1",
    );
    let build_id = plan["id"].as_i64().expect("id");
    let plan = api(url, &token, &format!("/api/v1/builds/{build_id}/plan"));
    let task_id = task_id(&plan["plan"]).expect("a task in the plan");
    b.goto(&format!(
        "{url}/teams/main/pipelines/ui/jobs/live/builds/1#L{task_id}:2"
    ));
    // Rows are redrawn as lines arrive: query afresh rather than hold an element.
    b.wait("the permalinked line, highlighted and on screen", || {
        let v = b.js(
            "const l = document.querySelector(\".log-line.highlighted[data-line='2']\"); \
             if (!l) return null; const r = l.getBoundingClientRect(); \
             return [l.textContent, r.top >= 0 && r.bottom <= innerHeight]",
            json!([]),
        );
        (v[0].as_str().is_some_and(|t| t.ends_with("second")) && v[1] == json!(true)).then_some(())
    });

    // The raw log downloads as plain text with the escapes resolved.
    let raw = reqwest::blocking::Client::new()
        .get(format!("{url}/api/v1/builds/{build_id}/log"))
        .bearer_auth(&token)
        .send()
        .expect("raw log");
    assert!(raw.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let raw = raw.text().expect("text");
    assert!(
        raw.contains("first-line\nsecond\nthird\nreleased-line\n"),
        "{raw:?}"
    );

    // Abort a running build from its page.
    fly.ok(&["-t", target, "trigger-job", "-j", "ui/sleeper"]);
    b.goto(&format!(
        "{url}/teams/main/pipelines/ui/jobs/sleeper/builds/1"
    ));
    b.wait_text("napping");
    b.click_css("[data-testid=abort-build]");
    b.wait("the build to be aborted", || {
        let h = b.find("[data-testid=build-header]");
        (b.attr(&h, "data-status").as_deref() == Some("aborted")).then_some(())
    });

    // Pin a version with a comment, then unpin it.
    fly.ok(&[
        "-t",
        target,
        "check-resource",
        "-r",
        "ui/src",
        "-f",
        "version:v1",
    ]);
    fly.ok(&[
        "-t",
        target,
        "check-resource",
        "-r",
        "ui/src",
        "-f",
        "version:v2",
    ]);
    let resource = "/api/v1/teams/main/pipelines/ui/resources/src";
    b.goto(&format!("{url}/teams/main/pipelines/ui/resources/src"));
    b.wait("two versions", || {
        (b.find_all("[data-testid=version]").len() == 2).then_some(())
    });
    b.click(&b.find_all("[data-testid=pin-version]")[1]);
    b.wait("the pin", || {
        api(url, &token, resource)["pinned_version"]
            .as_object()
            .cloned()
    });
    let comment = b.find("[data-testid=pin-comment]");
    b.clear(&comment);
    b.type_into(&comment, "holding v1 for the release");
    b.click_css("[data-testid=save-pin-comment]");
    b.wait("the pin comment", || {
        (api(url, &token, resource)["pin_comment"] == "holding v1 for the release").then_some(())
    });
    assert_eq!(
        api(url, &token, resource)["pinned_version"],
        json!({"version": "v1"})
    );
    b.click_css("[data-testid=unpin]");
    b.wait("the unpin", || {
        api(url, &token, resource)
            .get("pinned_version")
            .is_none()
            .then_some(())
    });

    // A failing check shows its output on the resource page.
    let failed = fly.run(&["-t", target, "check-resource", "-r", "ui/broken"]);
    assert!(!failed.status.success());
    b.goto(&format!("{url}/teams/main/pipelines/ui/resources/broken"));
    b.find("[data-testid=check-output] [data-testid=step]");
    b.wait_text("the-check-is-broken");

    // A build waiting for its inputs says why.
    fly.ok(&["-t", target, "trigger-job", "-j", "ui/consumer"]);
    b.goto(&format!(
        "{url}/teams/main/pipelines/ui/jobs/consumer/builds/1"
    ));
    b.find("[data-testid=preparation]");
    b.wait_text("discovering any new versions of broken");
    b.wait_text("broken: latest version of resource not found");
    let consumer = api(
        url,
        &token,
        "/api/v1/teams/main/pipelines/ui/jobs/consumer/builds/1",
    );
    let prep = api(
        url,
        &token,
        &format!("/api/v1/builds/{}/preparation", consumer["id"]),
    );
    assert_eq!(prep["paused_pipeline"], "NOT_BLOCKING", "{prep}");
    assert_eq!(prep["inputs_satisfied"], "BLOCKING", "{prep}");
    assert_eq!(
        prep["missing_input_reasons"]["broken"], "latest version of resource not found",
        "{prep}"
    );
    // Once the trigger's checks are done (the page polls every second), only the inputs block.
    b.wait("only the inputs to block", || {
        let blocking = b.find_all("[data-testid=prep-item][data-state=blocking]");
        (blocking.len() == 1).then_some(())
    });

    // Keyboard help on `?`.
    b.goto(&format!("{url}/teams/main/pipelines/ui/jobs/live/builds/1"));
    b.find("[data-testid=step]");
    b.keys("?");
    b.wait_text("keyboard shortcuts");

    // Log out: the login link comes back and the cookie no longer authenticates.
    b.goto(&format!("{url}/"));
    b.click_css(".user-id");
    b.click_css(".logout");
    b.find(".user-area a.login");
    let status = b.js_async(
        "const done = arguments[arguments.length - 1]; fetch('/api/v1/user').then(r => done(r.status))",
        json!([]),
    );
    assert_eq!(status, json!(401));

    // Anonymous: an exposed pipeline is visible, its controls disabled; a hidden one is not.
    fly.ok(&[
        "-t",
        target,
        "set-pipeline",
        "-n",
        "-p",
        "hidden",
        "-c",
        &dir.join("ui.yml").to_string_lossy(),
        "-v",
        "release=/nonexistent",
    ]);
    fly.ok(&["-t", target, "expose-pipeline", "-p", "ui"]);
    let anon = Browser::start();
    anon.goto(&format!("{url}/"));
    anon.find("[data-testid=pipeline-card][data-name=ui]");
    assert!(anon
        .find_all("[data-testid=pipeline-card][data-name=hidden]")
        .is_empty());
    let pause = "[data-testid=pipeline-card][data-name=ui] [data-testid=pause-toggle]";
    assert_eq!(
        anon.disabled(pause),
        Some(true),
        "anonymous users cannot pause"
    );
    anon.goto(&format!("{url}/teams/main/pipelines/ui/jobs/live"));
    anon.find("[data-testid=trigger-job]");
    assert_eq!(
        anon.disabled("[data-testid=trigger-job]"),
        Some(true),
        "anonymous users cannot trigger"
    );
    // The job is public: its finished build's log is readable; green steps start folded.
    anon.goto(&format!("{url}/teams/main/pipelines/ui/jobs/live/builds/1"));
    anon.click_css("[data-testid=step-header]");
    anon.wait_text("released-line");
    anon.find("[data-testid=rerun-build]");
    assert_eq!(
        anon.disabled("[data-testid=rerun-build]"),
        Some(true),
        "anonymous users cannot rerun"
    );
    anon.goto(&format!("{url}/no/such/page"));
    anon.find("[data-testid=not-found]");
}

#[test]
fn web_ui_against_quickstart_on_the_embedded_store() {
    if !webdriver::available("web_ui_against_quickstart_on_the_embedded_store") {
        return;
    }
    let server = Server::quickstart_with(Backend::Embedded, &["--worker-runtime", "process"]);
    let fly = Fly::new();
    fly.login(&server, "qs");
    let dir = tempfile::tempdir().expect("temp");
    drive(&server.url, &fly, "qs", dir.path());
    search_and_fly_login(&server.url, &fly, "qs", dir.path());
}

/// The dashboard's filter terms, and fly's browser login hand-off through `/fly_success`.
fn search_and_fly_login(url: &str, fly: &Fly, target: &str, dir: &Path) {
    let failing = dir.join("failing.yml");
    std::fs::write(
        &failing,
        "jobs:\n- name: broken\n  plan:\n  - task: t\n    config:\n      platform: linux\n      run: {path: sh, args: [-c, 'exit 1']}\n",
    )
    .expect("write");
    fly.ok(&[
        "-t",
        target,
        "set-pipeline",
        "-n",
        "-p",
        "payments",
        "-c",
        &failing.to_string_lossy(),
    ]);
    fly.ok(&["-t", target, "unpause-pipeline", "-p", "payments"]);
    let out = fly.run(&["-t", target, "trigger-job", "-j", "payments/broken", "-w"]);
    assert_eq!(out.status.code(), Some(1), "the job fails");

    let b = Browser::start();
    b.login(url, "test", "test");
    let cards = |b: &Browser| {
        let v = b.js(
            "return [...document.querySelectorAll('[data-testid=pipeline-card]')].map(c => c.dataset.name).sort()",
            json!([]),
        );
        serde_json::from_value::<Vec<String>>(v).unwrap_or_default()
    };
    for (search, want) in [
        ("status:failed", vec!["payments"]),
        ("-payments", vec!["hidden", "ui"]),
        ("\"ui\"", vec!["ui"]),
        ("pymnts", vec!["payments"]),
        ("team:main status:paused", vec!["hidden"]),
        ("team:\"other\"", vec![]),
    ] {
        b.goto(&format!(
            "{url}/?search={}",
            url::form_urlencoded::byte_serialize(search.as_bytes()).collect::<String>()
        ));
        b.wait(&format!("cards for {search:?}"), || {
            (b.js(
                "return performance.getEntriesByName('dashboard-drawn').length",
                json!([]),
            ) == json!(1))
            .then_some(())
        });
        assert_eq!(cards(&b), want, "search {search:?}");
    }
    // Typing in the box filters as well (`/` focuses it).
    b.goto(&format!("{url}/"));
    b.find("[data-testid=pipeline-card]");
    b.keys("/");
    let focused = b.js("return document.activeElement.dataset.testid", json!([]));
    assert_eq!(focused, json!("search"));
    b.keys("status:failed");
    b.wait("typed filter", || {
        (cards(&b) == vec!["payments".to_string()]).then_some(())
    });

    // `fly login` without a password opens /fly_success?fly_port=N; the page sends the
    // token to fly's listener on 127.0.0.1:N.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let got = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().expect("fly_success connects");
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).expect("request");
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    b.goto(&format!("{url}/fly_success?fly_port={port}"));
    b.wait_text("your token has been transferred to fly");
    let request = got.join().expect("listener thread");
    assert!(
        request.starts_with("GET /?token=bearer%20")
            || request.starts_with("GET /?token=Bearer%20"),
        "{request}"
    );
}

#[test]
fn web_ui_against_web_on_postgres_with_a_remote_worker() {
    let name = "web_ui_against_web_on_postgres_with_a_remote_worker";
    if !webdriver::available(name) {
        return;
    }
    let Some(backend) = Backend::postgres(name) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cluster = rt.block_on(Cluster::start(backend, &[]));
    let _worker = cluster.start_worker("ui-worker", &[]);
    rt.block_on(cluster.eventually_state("ui-worker", "running"));
    let dir = tempfile::tempdir().expect("temp");
    drive(
        &cluster.server.url,
        &cluster.fly,
        worker_builds_support::MAIN,
        dir.path(),
    );
}

/// What the server promises every page without a browser: the shell for page routes, the
/// headers, robots.txt, assets with long caching, API paths never answered with the shell.
#[test]
fn pages_are_served_with_their_headers() {
    let server = Server::start(Backend::Embedded);
    let c = reqwest::blocking::Client::new();
    for path in [
        "/",
        "/teams/main/pipelines/p",
        "/builds/7",
        "/download-fly",
        "/anything/else",
    ] {
        let r = c.get(server.api(path)).send().expect("page");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-frame-options"], "deny");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        let body = r.text().expect("html");
        assert!(
            body.contains("<div id=\"app\">") && !body.contains("<script>"),
            "{path}"
        );
    }
    let r = c
        .get(server.api("/?csrf_token=abc%22%3E"))
        .send()
        .expect("page");
    let body = r.text().expect("html");
    assert!(
        body.contains("name=\"csrf-token\" content=\"abc&quot;&gt;\""),
        "the meta tag is escaped"
    );
    let robots = c
        .get(server.api("/robots.txt"))
        .send()
        .expect("robots")
        .text()
        .expect("text");
    assert_eq!(robots, "User-agent: *\nDisallow: /\n");
    let r = c.get(server.api("/api/v1/nope")).send().expect("api");
    assert_eq!(r.status(), 404);
    let index = c
        .get(server.api("/"))
        .send()
        .expect("page")
        .text()
        .expect("html");
    let js = index
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("script src");
    let r = c.get(server.api(js)).send().expect("js");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}

/// Upstream's `--x-frame-options` and `--content-security-policy` replace the defaults;
/// an empty value sends no header.
#[test]
fn security_headers_follow_the_web_flags() {
    let server = Server::start_with(
        Backend::Embedded,
        &[
            "--x-frame-options",
            "",
            "--content-security-policy",
            "frame-ancestors 'self'",
        ],
    );
    let r = reqwest::blocking::get(server.api("/")).expect("page");
    assert!(r.headers().get("x-frame-options").is_none());
    assert_eq!(
        r.headers()["content-security-policy"],
        "frame-ancestors 'self'"
    );
    let r = reqwest::blocking::get(server.api("/api/v1/info")).expect("info");
    assert_eq!(
        r.headers()["content-security-policy"],
        "frame-ancestors 'self'"
    );
}
