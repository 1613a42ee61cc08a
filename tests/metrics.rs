//! `--prometheus-bind-ip/--prometheus-bind-port`: `/metrics` parses with Prometheus' own
//! Python client's text parser, and its counters move by exactly what happened between two
//! scrapes: builds by status and job, their durations, API responses by route, checks,
//! scheduling passes, workers. And structured logs: every line about a build carries the
//! same keys, in JSON (`--log-format json`) as in text.

mod common;

use common::{Backend, Fly, Server};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const PIPELINE: &str = r#"
resources:
- name: r
  type: mock
  source: {initial_version: v1}
jobs:
- name: ok
  plan:
  - get: r
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: "true"}
- name: bad
  plan:
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: "false"}
"#;

/// A sample's labels, sorted.
type LabelSet = Vec<(String, String)>;
/// Samples of one scrape, by name and sorted labels, as `prometheus_client` parses them.
type Samples = HashMap<(String, LabelSet), f64>;

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, sorted(s.labels.items()), s.value])
print(json.dumps(out))
"#;

/// Whether Python's `prometheus_client` is there; in CI (where .ci/run installs it) its
/// absence fails the test.
fn parser_installed() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus_client is required in CI (pip install prometheus_client)"
        );
        eprintln!("skipped: pip install prometheus_client to run it");
    }
    ok
}

async fn scrape(s: &Server) -> Samples {
    let text = reqwest::get(format!("http://{}/metrics", s.metrics_addr))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let mut py = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    py.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = py.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics ({}):\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, LabelSet, f64)> = serde_json::from_slice(&out.stdout).expect("json");
    rows.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    samples.get(&(name.to_string(), l)).copied().unwrap_or(0.0)
}

/// quickstart (embedded store) serving `/metrics` on an ephemeral loopback port, with `extra`.
fn with_metrics(extra: &[&str]) -> Server {
    let mut args = vec![
        "--prometheus-bind-ip",
        "127.0.0.1",
        "--prometheus-bind-port",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::quickstart_with(Backend::Embedded, &args)
}

async fn run_job(s: &Server, token: &str, job: &str) -> String {
    let id = common::trigger_job(s, token, "p", job).await;
    common::build_finished(s, token, id, Duration::from_secs(120)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_happened_and_parse_as_prometheus_text() {
    if !parser_installed() {
        return;
    }
    let s = with_metrics(&[]);
    assert!(!s.metrics_addr.is_empty(), "the metrics address is printed");
    let fly = Fly::new();
    fly.login(&s, "m");
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    fly.ok(&[
        "-t",
        "m",
        "set-pipeline",
        "-n",
        "-p",
        "p",
        "-c",
        file.to_str().expect("utf-8"),
    ]);
    fly.ok(&["-t", "m", "unpause-pipeline", "-p", "p"]);
    let token = s.token("test", "test").await;

    let before = scrape(&s).await;
    assert_eq!(run_job(&s, &token, "ok").await, "succeeded");
    assert_eq!(run_job(&s, &token, "ok").await, "succeeded");
    assert_eq!(run_job(&s, &token, "bad").await, "failed");
    for _ in 0..3 {
        reqwest::get(s.api("/api/v1/info")).await.expect("info");
    }
    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        get(&after, name, labels) - get(&before, name, labels)
    };
    assert_eq!(delta("concourse_builds_started_total", &[]), 3.0);
    assert_eq!(delta("concourse_builds_finished_total", &[]), 3.0);
    assert_eq!(delta("concourse_builds_succeeded_total", &[]), 2.0);
    assert_eq!(delta("concourse_builds_failed_total", &[]), 1.0);
    assert_eq!(delta("concourse_builds_errored_total", &[]), 0.0);
    let job = |job, status| {
        [
            ("team", "main"),
            ("pipeline", "p"),
            ("job", job),
            ("status", status),
        ]
    };
    assert_eq!(
        delta("concourse_builds_finished_total", &job("ok", "succeeded")),
        2.0,
        "a labelled counter family is exposed with the _total suffix by the parser"
    );
    assert_eq!(
        delta("concourse_builds_finished_total", &job("bad", "failed")),
        1.0
    );
    let team_pipeline = [("team", "main"), ("pipeline", "p")];
    assert_eq!(
        delta("concourse_builds_duration_seconds_count", &team_pipeline),
        3.0
    );
    let info = [
        ("method", "GET"),
        ("route", "/api/v1/info"),
        ("status", "200"),
    ];
    assert_eq!(
        delta("concourse_http_responses_duration_seconds_count", &info),
        3.0
    );
    assert!(get(&after, "concourse_resource_checks_total", &team_pipeline) >= 1.0);
    assert!(get(&after, "concourse_scheduling_total", &[("pipeline", "p")]) >= 1.0);
    assert_eq!(
        get(
            &after,
            "concourse_workers_registered",
            &[("state", "running")]
        ),
        1.0
    );
    assert_eq!(
        get(&after, "concourse_locks_held", &[("type", "scheduler")]),
        1.0,
        "this node schedules"
    );
    assert!(get(&after, "concourse_db_connections", &[("dbname", "main")]) >= 1.0);
    assert!(
        delta("concourse_db_queries_total", &[]) > 0.0,
        "three builds ran statements"
    );
    assert!(
        after
            .keys()
            .any(|(n, l)| n == "concourse_workers_containers"
                && l.iter().any(|(k, _)| k == "worker")),
        "a container gauge per worker"
    );
    // No series is labelled with a build id or a version.
    for (name, labels) in after.keys() {
        for (k, _) in labels {
            assert!(
                [
                    "team", "pipeline", "job", "status", "method", "route", "le", "worker",
                    "platform", "tags", "state", "type", "dbname"
                ]
                .contains(&k.as_str()),
                "{name} has an unbounded label {k}"
            );
        }
    }
}

/// The keys a JSON log line carries, its event's fields and its spans' together.
fn keys(line: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut take = |v: &Value| {
        if let Some(o) = v.as_object() {
            out.extend(o.keys().cloned());
        }
    };
    take(&line["fields"]);
    take(&line["span"]);
    for s in line["spans"].as_array().into_iter().flatten() {
        take(s);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_log_line_about_a_build_carries_its_keys() {
    for format in ["json", "text"] {
        let s = Server::quickstart_with(Backend::Embedded, &["--log-format", format]);
        let fly = Fly::new();
        fly.login(&s, "logs");
        let dir = tempfile::tempdir().expect("temp");
        let file = dir.path().join("p.yml");
        std::fs::write(&file, PIPELINE).expect("write");
        let path = file.to_str().expect("utf-8");
        fly.ok(&["-t", "logs", "set-pipeline", "-n", "-p", "p", "-c", path]);
        fly.ok(&["-t", "logs", "unpause-pipeline", "-p", "p"]);
        let token = s.token("test", "test").await;
        assert_eq!(run_job(&s, &token, "bad").await, "failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let finished = loop {
            let lines = s.log.lock().expect("log").clone();
            if let Some(l) = lines.iter().find(|l| l.contains("build finished")) {
                break l.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no `build finished` line"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let want = ["build_id", "team", "pipeline", "job"];
        if format == "json" {
            let line: serde_json::Value = serde_json::from_str(&finished).expect("a JSON line");
            let found = keys(&line);
            for k in want {
                assert!(found.iter().any(|x| x == k), "{k} missing: {finished}");
            }
            let lines = s.log.lock().expect("log").clone();
            let worker = lines
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|l| l["fields"]["message"] == "in-process worker registered")
                .expect("the worker's registration");
            assert!(keys(&worker).iter().any(|k| k == "worker"), "{worker}");
        } else {
            for k in want {
                assert!(
                    finished.contains(&format!("{k}=")),
                    "{k} missing: {finished}"
                );
            }
            assert!(finished.contains("team=main") && finished.contains("job=bad"));
        }
    }
}

/// With `--enable-global-resources`, two pipelines whose resource has the same type and
/// source share its config's versions, and one check serves both: the other is recorded as
/// checked with it, not run again.
#[tokio::test(flavor = "multi_thread")]
async fn identical_resource_configs_across_pipelines_are_checked_once() {
    if !parser_installed() {
        return;
    }
    // Global resources: resources of the same config share one scope across pipelines.
    let s = with_metrics(&["--enable-global-resources"]);
    let fly = Fly::new();
    fly.login(&s, "shared");
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(
        &file,
        "resources:\n- {name: r, type: mock, check_every: 1s, source: {initial_version: same}}\n\
         jobs:\n- name: j\n  plan: [{get: r}]\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8");
    for p in ["p1", "p2"] {
        fly.ok(&["-t", "shared", "set-pipeline", "-n", "-p", p, "-c", path]);
        fly.ok(&["-t", "shared", "unpause-pipeline", "-p", p]);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let samples = loop {
        let samples = scrape(&s).await;
        if get(&samples, "concourse_resource_checks_shared_total", &[]) >= 3.0 {
            break samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no check was ever shared"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let ran = |p| {
        get(
            &samples,
            "concourse_resource_checks_total",
            &[("team", "main"), ("pipeline", p)],
        )
    };
    let (a, b) = (ran("p1"), ran("p2"));
    assert!(
        a.min(b) <= 2.0,
        "one pipeline's resource rides on the other's checks: {a} and {b}"
    );
    // Both resources show the shared checks and the shared versions.
    let token = s.token("test", "test").await;
    for p in ["p1", "p2"] {
        let r: Value = reqwest::Client::new()
            .get(s.api(&format!(
                "/api/v1/teams/main/pipelines/{p}/resources/r/versions"
            )))
            .bearer_auth(&token)
            .send()
            .await
            .expect("versions")
            .json()
            .await
            .expect("json");
        assert!(r.as_array().is_some_and(|v| !v.is_empty()), "{p}: {r}");
    }
}
