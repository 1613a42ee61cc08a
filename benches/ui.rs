//! Web UI speed, in headless Chromium against a real `concourse quickstart` (process
//! runtime, embedded store): the dashboard with 500 pipelines x 10 jobs (first paint, and
//! the server CPU one refresh costs, against upstream's four-request refresh in the same
//! run), a 200-job pipeline's graph, and a finished build with 100,000 log lines (time to
//! usable, DOM size, JS heap, searching it). `cargo bench --bench ui`; needs Debian's
//! chromium + chromium-driver. Figures go to BENCHMARKS.md.

#[allow(dead_code)]
#[path = "../tests/common/webdriver.rs"]
mod webdriver;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use webdriver::Browser;

const RUNS: usize = 5;

struct Quickstart {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn quickstart() -> Quickstart {
    let dir = tempfile::tempdir().expect("temp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_concourse"))
        .args(["quickstart", "--bind-ip", "127.0.0.1", "--bind-port", "0"])
        .args(["--tsa-bind-ip", "127.0.0.1", "--tsa-bind-port", "0"])
        .args([
            "--add-local-user",
            "test:test",
            "--main-team-local-user",
            "test",
        ])
        .args(["--worker-runtime", "process", "--log-level", "error"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--worker-work-dir")
        .arg(dir.path().join("work"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("quickstart");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("quickstart exited").expect("read");
        if let Some(addr) = line.strip_prefix("concourse web listening on ") {
            break format!("http://{}", addr.trim());
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Quickstart {
        child,
        url,
        _dir: dir,
    }
}

fn token(http: &reqwest::blocking::Client, url: &str) -> String {
    let v: Value = http
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
    v["access_token"].as_str().expect("token").to_string()
}

fn put_pipeline(http: &reqwest::blocking::Client, url: &str, token: &str, name: &str, yaml: &str) {
    let r = http
        .put(format!("{url}/api/v1/teams/main/pipelines/{name}/config"))
        .bearer_auth(token)
        .header("Content-Type", "application/x-yaml")
        .body(yaml.to_string())
        .send()
        .expect("set pipeline");
    let status = r.status();
    assert!(
        status.is_success(),
        "{name}: {status} {}",
        r.text().unwrap_or_default()
    );
    http.put(format!("{url}/api/v1/teams/main/pipelines/{name}/unpause"))
        .bearer_auth(token)
        .send()
        .expect("unpause");
}

/// `jobs` jobs in chains of `chain` joined by `passed` on one resource each.
fn chained_pipeline(jobs: usize, chain: usize) -> String {
    let mut y = String::from("resources:\n");
    for c in 0..jobs.div_ceil(chain) {
        y += &format!("- name: r{c}\n  type: mock\n  check_every: never\n  source: {{no_initial_version: true}}\n");
    }
    y += "jobs:\n";
    for j in 0..jobs {
        let (c, k) = (j / chain, j % chain);
        let passed = if k == 0 {
            String::new()
        } else {
            format!(", passed: [job-{c}-{}]", k - 1)
        };
        y += &format!("- name: job-{c}-{k}\n  plan:\n  - {{get: r{c}{passed}}}\n");
    }
    y
}

/// CPU seconds the server process has used (utime + stime from /proc).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Milliseconds from navigation start to the page's `performance.mark(name)`.
fn time_to_mark(b: &Browser, url: &str, mark: &str) -> f64 {
    b.goto("about:blank");
    b.js("localStorage.clear()", json!([]));
    b.goto(url);
    b.wait(mark, || {
        b.js(
            "const m = performance.getEntriesByName(arguments[0]); return m.length ? m[0].startTime : null",
            json!([mark]),
        )
        .as_f64()
    })
}

fn main() {
    if !webdriver::available("ui bench") {
        return;
    }
    let qs = quickstart();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let url = qs.url.clone();
    let token = token(&http, &url);

    // 500 pipelines x 10 jobs (chains of 5), one build in every tenth.
    let ten = chained_pipeline(10, 5);
    for i in 0..500 {
        put_pipeline(&http, &url, &token, &format!("p{i:03}"), &ten);
    }
    let browser = Browser::start();
    browser.login(&url, "test", "test");

    // The browser leaves the dashboard first: its own polling would count as server CPU.
    browser.goto("about:blank");
    let pid = qs.child.id();
    // Median of 5 batches of 10 refreshes: CPU ticks are 10 ms, so batches, not requests.
    let refresh_cpu = |paths: &[&str]| {
        let batches: Vec<f64> = (0..5)
            .map(|_| {
                let before = cpu_seconds(pid);
                for _ in 0..10 {
                    for p in paths {
                        let r = http
                            .get(format!("{url}{p}"))
                            .bearer_auth(&token)
                            .send()
                            .expect("get");
                        assert!(r.status().is_success());
                        r.bytes().expect("body");
                    }
                }
                (cpu_seconds(pid) - before) / 10.0 * 1000.0
            })
            .collect();
        median(batches)
    };
    let ours = refresh_cpu(&["/api/v1/dashboard", "/api/v1/teams"]);
    let upstream = refresh_cpu(&[
        "/api/v1/teams",
        "/api/v1/pipelines",
        "/api/v1/jobs",
        "/api/v1/resources",
    ]);
    let size = http
        .get(format!("{url}/api/v1/dashboard"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .len();
    let paints: Vec<f64> = (0..RUNS)
        .map(|_| time_to_mark(&browser, &format!("{url}/"), "dashboard-drawn"))
        .collect();
    let cards = browser.js(
        "return document.querySelectorAll('[data-testid=pipeline-card]').length",
        json!([]),
    );
    println!("dashboard, 500 pipelines x 10 jobs ({cards} cards):");
    println!(
        "  first paint with data: median {:.0} ms (min {:.0}, max {:.0})",
        median(paints.clone()),
        paints.iter().cloned().fold(f64::MAX, f64::min),
        paints.iter().cloned().fold(0.0, f64::max)
    );
    println!("  server CPU per refresh: {ours:.1} ms (/dashboard + /teams, {size} bytes) vs {upstream:.1} ms for upstream's /teams + /pipelines + /jobs + /resources: {:.2}x", upstream / ours);

    // A 200-job pipeline's graph.
    put_pipeline(&http, &url, &token, "big", &chained_pipeline(200, 10));
    let graph: Vec<f64> = (0..RUNS)
        .map(|_| {
            time_to_mark(
                &browser,
                &format!("{url}/teams/main/pipelines/big"),
                "graph-drawn",
            )
        })
        .collect();
    let nodes = browser.js(
        "return document.querySelectorAll('[data-testid=job-node]').length",
        json!([]),
    );
    println!(
        "pipeline graph, 200 jobs ({nodes} job nodes): drawn at median {:.0} ms",
        median(graph)
    );

    // A finished build with 100,000 log lines.
    let log = "jobs:\n- name: noisy\n  plan:\n  - task: print\n    config:\n      platform: linux\n      run: {path: sh, args: [-c, 'seq 1 100000']}\n";
    put_pipeline(&http, &url, &token, "log", log);
    let build: Value = http
        .post(format!(
            "{url}/api/v1/teams/main/pipelines/log/jobs/noisy/builds"
        ))
        .bearer_auth(&token)
        .send()
        .and_then(|r| r.json())
        .expect("trigger");
    let id = build["id"].as_i64().unwrap();
    let started = Instant::now();
    loop {
        let b: Value = http
            .get(format!("{url}/api/v1/builds/{id}"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if b["status"] == "succeeded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "build did not finish: {b}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let plan: Value = http
        .get(format!("{url}/api/v1/builds/{id}/plan"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let task = plan["plan"]["do"][0]["id"]
        .as_str()
        .unwrap_or(plan["plan"]["id"].as_str().unwrap())
        .to_string();
    let page = format!("{url}/teams/main/pipelines/log/jobs/noisy/builds/1#L{task}:100000");
    let usable: Vec<f64> = (0..RUNS)
        .map(|_| time_to_mark(&browser, &page, "log-complete"))
        .collect();
    let last_line = browser.find(".log-line[data-line='100000']");
    let dom = browser.js(
        "return document.getElementsByTagName('*').length",
        json!([]),
    );
    let heap = browser.js(
        "return performance.memory ? performance.memory.usedJSHeapSize : null",
        json!([]),
    );
    let search = browser.find("[data-testid=log-search]");
    let t = Instant::now();
    browser.type_into(&search, "99999\u{E007}");
    browser.wait("search hit", || {
        let count = browser.js(
            "return document.querySelector('.search-count').textContent",
            json!([]),
        );
        count
            .as_str()
            .filter(|c| c.contains(" of "))
            .map(String::from)
    });
    let search_ms = t.elapsed().as_secs_f64() * 1000.0;
    let _ = last_line;
    println!(
        "build page, 100,000 log lines: usable (every line loaded, scrolled to the last) at median {:.0} ms; {dom} DOM elements; JS heap {:.1} MB; search for \"99999\" answered in {search_ms:.0} ms (including WebDriver typing)",
        median(usable),
        heap.as_f64().unwrap_or(0.0) / 1e6
    );

    // Live: a task prints its wall clock (ms) every 200 ms; the page notes when each line
    // appears (same machine, same clock), from print to pixels.
    let ticker = "jobs:\n- name: ticker\n  plan:\n  - task: tick\n    config:\n      platform: linux\n      run: {path: sh, args: [-c, 'sleep 2; for i in $(seq 1 20); do echo tick $(date +%s%3N); sleep 0.2; done']}\n";
    put_pipeline(&http, &url, &token, "ticker", ticker);
    http.post(format!(
        "{url}/api/v1/teams/main/pipelines/ticker/jobs/ticker/builds"
    ))
    .bearer_auth(&token)
    .send()
    .expect("trigger");
    browser.goto(&format!(
        "{url}/teams/main/pipelines/ticker/jobs/ticker/builds/1"
    ));
    browser.find("[data-testid=step]");
    browser.js(
        "window.__lat = []; window.__seen = new Set(); new MutationObserver(() => { for (const l of document.querySelectorAll('.log-line')) { \
           const m = l.textContent.match(/tick (\\d+)/); if (m && !__seen.has(m[1])) { __seen.add(m[1]); __lat.push(Date.now() - Number(m[1])); } } \
         }).observe(document.body, {subtree: true, childList: true});",
        json!([]),
    );
    let lat: Vec<f64> = browser.wait("20 ticks", || {
        let v = browser.js("return window.__lat", json!([]));
        let a: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
        (a.len() >= 18).then_some(a)
    });
    println!(
        "live log line, task print to page: median {:.0} ms, max {:.0} ms over {} lines",
        median(lat.clone()),
        lat.iter().cloned().fold(0.0, f64::max),
        lat.len()
    );

    let index = http.get(format!("{url}/")).send().unwrap().text().unwrap();
    let mut total = 0;
    for asset in ["app.js", "app.css"] {
        let src = index
            .split(&format!("/public/{asset}?id="))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        total += http
            .get(format!("{url}/public/{asset}?id={src}"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .len();
    }
    println!(
        "JS + CSS shipped per page: {:.1} KB before compression",
        total as f64 / 1024.0
    );
}
