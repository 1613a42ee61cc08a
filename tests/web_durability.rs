//! The web node under stress an operator meets: a build printing hundreds of megabytes
//! (memory stays bounded, the log arrives whole), a database that blips (503, never 401),
//! a port still held at restart (the bind is retried), and build logs reaped by retention.

mod common;
mod worker_builds_support;

use common::*;
use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

fn set_pipeline(fly: &Fly, target: &str, name: &str, yaml: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("p.yml");
    std::fs::write(&config, yaml).expect("pipeline");
    let config = config.to_str().unwrap();
    fly.ok(&["-t", target, "set-pipeline", "-n", "-p", name, "-c", config]);
    fly.ok(&["-t", target, "unpause-pipeline", "-p", name]);
}

async fn get(server: &Server, token: &str, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(server.api(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.expect("json")
}

/// Triggers `job` of pipeline `p` and returns the new build's id.
async fn trigger(server: &Server, token: &str, job: &str) -> i64 {
    let resp = reqwest::Client::new()
        .post(server.api(&format!("/api/v1/teams/main/pipelines/p/jobs/{job}/builds")))
        .bearer_auth(token)
        .send()
        .await
        .expect("trigger");
    assert_eq!(resp.status(), 200, "trigger {job}");
    resp.json::<Value>().await.expect("build")["id"]
        .as_i64()
        .expect("build id")
}

/// Memory of a process from /proc: (VmRSS, VmHWM) in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What one reader of a build's event stream saw of a log of numbered lines.
#[derive(Debug, Default)]
struct LineCheck {
    /// The number the next line must carry.
    next: u64,
    partial: String,
    bytes: u64,
    status: Option<String>,
    errors: Vec<String>,
}

impl LineCheck {
    fn payload(&mut self, text: &str) {
        self.bytes += text.len() as u64;
        self.partial.push_str(text);
        let Some(end) = self.partial.rfind('\n') else {
            return;
        };
        for line in self.partial[..end].split('\n') {
            assert_eq!(
                line,
                (self.next + 1).to_string(),
                "line {} (every line once, in order)",
                self.next + 1
            );
            self.next += 1;
        }
        self.partial.drain(..=end);
    }
}

/// Reads the whole event stream of a build, checking its log line by line as it goes (a
/// 200 MB log is never held in the test either).
async fn read_numbered_log(server: &Server, token: &str, build: i64) -> LineCheck {
    let resp = reqwest::Client::new()
        .get(server.api(&format!("/api/v1/builds/{build}/events")))
        .bearer_auth(token)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200, "events of build {build}");
    let mut body = resp.bytes_stream();
    let mut pending = Vec::new();
    let mut check = LineCheck::default();
    // The task's own output: image fetching logs under other plan ids.
    let mut task = None;
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.expect("event stream"));
        while let Some(pos) = pending.windows(2).position(|w| w == b"\n\n") {
            let message: Vec<u8> = pending.drain(..pos + 2).collect();
            let message = String::from_utf8(message).expect("utf-8 events");
            if message.contains("event: end") {
                return check;
            }
            let Some(data) = message.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let event: Value = serde_json::from_str(data).expect("event json");
            let origin = event["data"]["origin"]["id"].as_str().map(String::from);
            match event["event"].as_str() {
                Some("start-task") => task = origin,
                Some("log") if task.is_some() && origin == task => {
                    check.payload(event["data"]["payload"].as_str().unwrap())
                }
                Some("error") => check.errors.push(event["data"]["message"].to_string()),
                Some("status") => check.status = event["data"]["status"].as_str().map(Into::into),
                _ => {}
            }
        }
    }
    panic!("the event stream of build {build} ended without `end`: {check:?}");
}

/// Lines `seq` prints for about 200 MB (numbers 1..=23M, 8.6 bytes a line on average);
/// `CONCOURSE_TEST_LOG_LINES` sets another count (115000000 is about 1 GB: the figure in
/// BENCHMARKS.md, a few minutes too long for every CI run).
fn lines() -> u64 {
    std::env::var("CONCOURSE_TEST_LOG_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(23_000_000)
}
/// Clients replaying the finished build's log at once.
const REPLAYS: usize = 4;
/// How far above its idle RSS the node may go.
const BOUND_KB: u64 = 100 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_printing_200mb_keeps_web_memory_bounded_and_its_log_whole() {
    let backend = Backend::postgres("big_log").unwrap_or(Backend::Embedded);
    // A web node and a worker process apart, so the figure is the web node's alone. Default
    // heartbeats: a worker busy streaming 200 MB on a loaded machine must not be "stalled".
    let key = worker_builds_support::Key::new();
    let server = Server::start_with(backend, &["--tsa-authorized-keys", &key.public()]);
    let token = server.token(USER, PASS).await;
    let work = tempfile::tempdir().expect("temp dir");
    let tsa_pub = work.path().join("tsa.pub");
    std::fs::write(&tsa_pub, worker_builds_support::tsa_public_key(&server)).expect("tsa key");
    let mut worker = std::process::Command::new(bin());
    worker
        .args([
            "worker",
            "--name",
            "w",
            "--runtime",
            "process",
            "--work-dir",
        ])
        .arg(work.path().join("w"))
        .args(["--tsa-host", &server.tsa_addr, "--tsa-public-key"])
        .arg(&tsa_pub)
        .args(["--tsa-worker-private-key", &key.private()])
        .args(["--bind-ip", "127.0.0.1", "--bind-port", "0"])
        .args(["--baggageclaim-bind-ip", "127.0.0.1"])
        .args(["--baggageclaim-bind-port", "0"]);
    let _worker = worker_builds_support::spawn_worker("w", worker);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get(&server, &token, "/api/v1/workers")
        .await
        .as_array()
        .is_some_and(|ws| {
            ws.iter()
                .any(|w| w["name"] == "w" && w["state"] == "running")
        })
    {
        assert!(Instant::now() < deadline, "worker w did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fly = Fly::new();
    fly.login(&server, "t");
    let pipeline = format!(
        "jobs:\n- name: big\n  plan:\n  - task: print\n    config:\n      platform: linux\n      \
         run: {{path: seq, args: ['1', '{}']}}\n",
        lines()
    );
    set_pipeline(&fly, "t", "p", &pipeline);
    let (idle, _) = memory_kb(server.pid());

    let build = trigger(&server, &token, "big").await;
    // One client follows the build live; then several replay the whole log at once.
    let live = read_numbered_log(&server, &token, build).await;
    let replays =
        futures::future::join_all((0..REPLAYS).map(|_| read_numbered_log(&server, &token, build)))
            .await;
    let (_, peak) = memory_kb(server.pid());
    eprintln!(
        "web RSS: idle {} MB, peak {} MB (+{} MB) after {} MB of log",
        idle / 1024,
        peak / 1024,
        (peak - idle) / 1024,
        live.bytes / 1_000_000
    );
    for (who, seen) in std::iter::once(("live", &live)).chain(replays.iter().map(|r| ("replay", r)))
    {
        assert_eq!(seen.status.as_deref(), Some("succeeded"), "{who}: {seen:?}");
        assert_eq!(seen.next, lines(), "{who}: every line arrived");
        assert!(
            seen.partial.is_empty(),
            "{who}: nothing after the last line"
        );
    }
    assert!(
        peak <= idle + BOUND_KB,
        "web RSS peaked at {} MB, {} MB above idle",
        peak / 1024,
        (peak - idle) / 1024
    );
}

/// A TCP proxy to PostgreSQL that the test can cut (every connection closed, new ones
/// accepted and closed at once) and restore: a database restart as the web node sees it.
struct Proxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(to: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            cut: Default::default(),
            open: Default::default(),
        };
        let (cut, open) = (proxy.cut.clone(), proxy.open.clone());
        // Threads, not tasks: the proxy must keep working while the test's runtime is
        // blocked dropping the schema guard through it.
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = std::net::TcpStream::connect(&to) else {
                    continue;
                };
                let mut conns = open.lock().unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                conns.extend([client, server]);
            }
        });
        proxy
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_never_401_and_passes() {
    let Some(mut config) = concourse::db::testing::require_postgres("db_blip") else {
        return;
    };
    let proxy = Proxy::start(format!("{}:{}", config.host, config.port));
    config.host = "127.0.0.1".into();
    config.port = proxy.port;
    let backend = Backend::Postgres(std::sync::Arc::new(
        concourse::db::testing::SchemaGuard::new(config),
    ));
    let server = Server::start(backend);
    let token = server.token(USER, PASS).await;
    let client = reqwest::Client::new();
    let user = || async {
        client
            .get(server.api("/api/v1/user"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("GET /api/v1/user")
    };
    assert_eq!(user().await.status(), 200, "before the cut");

    proxy.cut();
    for _ in 0..3 {
        let resp = user().await;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(
            status, 503,
            "a valid token while the database is away: {body}"
        );
        assert!(body.contains("database unavailable"), "{body}");
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = user().await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "while reconnecting: 503 or 200, never 401");
        assert!(
            Instant::now() < deadline,
            "no 200 within 60s of the database's return"
        );
    }
    drop(server);
}

/// A `concourse web` started by hand (to read its log as it starts), SIGKILLed when dropped.
struct Web(std::process::Child);

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn web_waits_for_its_ports_to_be_released() {
    use std::io::BufRead;
    let api = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let tsa = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (api_port, tsa_port) = (
        api.local_addr().unwrap().port(),
        tsa.local_addr().unwrap().port(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(bin())
        .args([
            "web",
            "--bind-ip",
            "127.0.0.1",
            "--tsa-bind-ip",
            "127.0.0.1",
        ])
        .args(["--bind-port", &api_port.to_string()])
        .args(["--tsa-bind-port", &tsa_port.to_string()])
        .args([
            "--add-local-user",
            "test:test",
            "--main-team-local-user",
            "test",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("CONCOURSE_POSTGRES_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("concourse web");
    let stderr = child.stderr.take().unwrap();
    let _web = Web(child);
    let mut lines = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok);
    let mut saw = |needles: &[&str]| {
        lines
            .by_ref()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("web exited without logging {needles:?}"))
    };
    // The API port is held: web waits. Released, it is taken; then the TSA's, likewise.
    let retrying = "address in use; retrying";
    saw(&[retrying, &format!(":{api_port}")]);
    drop(api);
    saw(&[retrying, &format!(":{tsa_port}")]);
    drop(tsa);
    let line = saw(&["concourse web listening on "]);
    assert!(line.ends_with(&format!(":{api_port}")), "{line}");
    let info = reqwest::blocking::get(format!("http://127.0.0.1:{api_port}/api/v1/info"))
        .expect("GET /api/v1/info");
    assert_eq!(info.status(), 200);
}

#[test]
fn web_gives_up_on_a_port_held_too_long_naming_it() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(bin())
        .args(["web", "--bind-ip", "127.0.0.1", "--bind-port", &port])
        .args(["--tsa-bind-ip", "127.0.0.1", "--tsa-bind-port", "0"])
        .args([
            "--add-local-user",
            "test:test",
            "--main-team-local-user",
            "test",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("CONCOURSE_POSTGRES_HOST")
        .output()
        .expect("concourse web");
    assert!(!out.status.success(), "web cannot run without its port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("still in use"),
        "{err}"
    );
}

async fn eventually(server: &Server, token: &str, build: i64, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = get(server, token, &format!("/api/v1/builds/{build}")).await;
        if done(&b) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "build {build} never got there: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_keeping_one_build_log_reaps_the_older_ones() {
    let server = Server::quickstart_with(Backend::Embedded, &["--gc-interval", "1s"]);
    let fly = Fly::new();
    fly.login(&server, "t");
    set_pipeline(
        &fly,
        "t",
        "p",
        "jobs:\n- name: j\n  build_log_retention: {builds: 1}\n  plan:\n  - task: t\n    \
         config:\n      platform: linux\n      \
         image_resource: {type: mock, source: {mirror_self: true}}\n      \
         run: {path: sh, args: [-c, 'echo said-$((6*7))']}\n",
    );
    let token = server.token(USER, PASS).await;
    let finished = |b: &Value| b["status"] == "succeeded";
    let first = trigger(&server, &token, "j").await;
    eventually(&server, &token, first, finished).await;
    assert!(common::events_text(&server, &token, first)
        .await
        .contains("said-42"));
    let second = trigger(&server, &token, "j").await;
    eventually(&server, &token, second, finished).await;

    // The collector reaps the first build's log: its events hold no log, and it says so.
    eventually(&server, &token, first, |b| {
        b["reap_time"].as_i64().unwrap_or(0) > 0
    })
    .await;
    let reaped = common::events_text(&server, &token, first).await;
    assert!(!reaped.contains("said-42"), "{reaped}");
    assert!(
        reaped.contains("event: end"),
        "the stream still ends: {reaped}"
    );
    let kept = get(&server, &token, &format!("/api/v1/builds/{second}")).await;
    assert!(kept.get("reap_time").is_none(), "{kept}");
    // Lists say it too, as upstream's build JSON does everywhere.
    let list = get(
        &server,
        &token,
        "/api/v1/teams/main/pipelines/p/jobs/j/builds",
    )
    .await;
    let listed: Vec<i64> = list
        .as_array()
        .expect("builds")
        .iter()
        .filter(|b| b["reap_time"].as_i64().unwrap_or(0) > 0)
        .filter_map(|b| b["id"].as_i64())
        .collect();
    assert_eq!(listed, vec![first], "{list}");
    assert!(common::events_text(&server, &token, second)
        .await
        .contains("said-42"));
}
