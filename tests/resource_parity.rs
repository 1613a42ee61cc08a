//! Resource protocol parity on a real quickstart (`--worker-runtime process`): requests to
//! resource scripts omit a missing version, custom types' `in`/`out` get a directory that
//! exists on the host, and a failed check of an input errors the build it blocks instead
//! of leaving it pending.

mod common;
mod worker_support;

use common::{git, Backend, Fly, Server};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn pipeline_server() -> (Server, Fly) {
    let server = Server::quickstart_with(Backend::Embedded, &["--worker-runtime", "process"]);
    let fly = Fly::new();
    fly.login(&server, "qs");
    (server, fly)
}

fn set_pipeline(fly: &Fly, dir: &Path, yaml: &str) {
    let file = dir.join("pipeline.yml");
    std::fs::write(&file, yaml).expect("write pipeline");
    let file = file.to_string_lossy();
    fly.ok(&["-t", "qs", "set-pipeline", "-n", "-p", "p", "-c", &file]);
    fly.ok(&["-t", "qs", "unpause-pipeline", "-p", "p"]);
    fly.ok(&["-t", "qs", "expose-pipeline", "-p", "p"]);
}

/// Triggers `p/j` and waits (at most `limit`) for the build to finish: its JSON and events.
async fn trigger_and_wait(server: &Server, fly: &Fly, limit: Duration) -> (Value, String) {
    fly.ok(&["-t", "qs", "trigger-job", "-j", "p/j"]);
    let builds: Value = reqwest::get(server.api("/api/v1/teams/main/pipelines/p/jobs/j/builds"))
        .await
        .expect("builds")
        .json()
        .await
        .expect("builds json");
    let id = builds[0]["id"].as_i64().expect("a build");
    let start = Instant::now();
    let build = loop {
        let b: Value = reqwest::get(server.api(&format!("/api/v1/builds/{id}")))
            .await
            .expect("build")
            .json()
            .await
            .expect("build json");
        if !matches!(b["status"].as_str(), Some("pending" | "started")) {
            break b;
        }
        assert!(
            start.elapsed() < limit,
            "build still {} after {limit:?}",
            b["status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let events = tokio::time::timeout(Duration::from_secs(30), async {
        reqwest::get(server.api(&format!("/api/v1/builds/{id}/events")))
            .await
            .expect("events")
            .text()
            .await
            .expect("events body")
    })
    .await
    .expect("the finished build's event stream ends");
    (build, events)
}

fn event_data(events: &str, event: &str) -> Vec<Value> {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|e| e["event"] == event)
        .map(|e| e["data"].clone())
        .collect()
}

/// As upstream: a build whose input's check fails stays pending, and says why (its
/// preparation names the input; the check's own build carries the error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_input_check_is_named_by_the_pending_build() {
    let (server, fly) = pipeline_server();
    let dir = tempfile::tempdir().expect("temp");
    set_pipeline(
        &fly,
        dir.path(),
        r#"
resources:
- name: clock
  type: time
  source: {interval: bogus}
jobs:
- name: j
  public: true
  plan:
  - get: clock
"#,
    );
    let check = fly.run(&["-t", "qs", "check-resource", "-r", "p/clock"]);
    let out = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success() && out.contains("bogus"), "{out}");
    fly.ok(&["-t", "qs", "trigger-job", "-j", "p/j"]);
    let client = reqwest::Client::new();
    let token = server.token("test", "test").await;
    let get = |path: String| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .expect("get")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let prep = worker_support::eventually(Duration::from_secs(60), "the preparation", || {
        let server = &server;
        async move {
            let builds = get(server.api("/api/v1/teams/main/pipelines/p/jobs/j/builds")).await;
            let id = builds.get(0)?.get("id")?.as_i64()?;
            let prep = get(server.api(&format!("/api/v1/builds/{id}/preparation"))).await;
            prep["missing_input_reasons"]
                .get("clock")
                .is_some()
                .then_some(prep)
        }
    })
    .await;
    assert_eq!(prep["inputs_satisfied"], "BLOCKING", "{prep}");
}

/// A git repository holding an image whose `/opt/resource` scripts record what they get
/// under `log`.
fn script_image(repo: &Path, log: &Path) {
    let log = log.display();
    let scripts = [
        (
            "check",
            format!(
                "#!/bin/sh\nset -e\ncat > \"{log}/check-$$.json\"\necho '[{{\"v\":\"1\"}}]'\n"
            ),
        ),
        (
            "in",
            format!(
                "#!/bin/sh\nset -e\n[ -d \"$1\" ] || {{ echo \"no such directory: $1\" >&2; exit 1; }}\n\
                 cat > \"{log}/in-$$.json\"\necho \"$1\" >> \"{log}/in-dirs\"\n\
                 echo fetched > \"$1/file\"\necho '{{\"version\":{{\"v\":\"1\"}}}}'\n"
            ),
        ),
        (
            "out",
            format!(
                "#!/bin/sh\nset -e\n[ -d \"$1\" ] || {{ echo \"no such directory: $1\" >&2; exit 1; }}\n\
                 [ -f \"$1/r/file\" ] || {{ echo \"no input at $1/r\" >&2; exit 1; }}\n\
                 cat > \"{log}/out.json\"\necho \"$1\" > \"{log}/out-dir\"\n\
                 echo '{{\"version\":{{\"v\":\"2\"}}}}'\n"
            ),
        ),
    ];
    commit_image(repo, &scripts);
}

/// Commits `files` (name, contents) as an image's executable `/opt/resource` files.
fn commit_image(repo: &Path, files: &[(&str, String)]) {
    let bin = repo.join("rootfs/opt/resource");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for (name, body) in files {
        let path = bin.join(name);
        std::fs::write(&path, body).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "image"]);
}

fn json_files(dir: &Path, prefix: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read log dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(prefix) && name.ends_with(".json") {
            let text = std::fs::read_to_string(e.path()).expect("read");
            out.push(serde_json::from_str(&text).expect("request is JSON"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_type_scripts_get_host_directories_and_no_null_version() {
    let dir = tempfile::tempdir().expect("temp");
    let repo = dir.path().join("image");
    let log = dir.path().join("log");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::create_dir_all(&log).expect("mkdir");
    script_image(&repo, &log);

    let (server, fly) = pipeline_server();
    set_pipeline(
        &fly,
        dir.path(),
        &format!(
            r#"
resource_types:
- name: scripted
  type: git
  source: {{uri: "{}", branch: main}}
resources:
- name: r
  type: scripted
  source: {{a: 1}}
jobs:
- name: j
  public: true
  plan:
  - get: r
  - put: r
    inputs: [r]
"#,
            repo.display()
        ),
    );
    let (build, events) = trigger_and_wait(&server, &fly, Duration::from_secs(120)).await;
    assert_eq!(build["status"], "succeeded", "{build}\n{events}");

    let checks = json_files(&log, "check-");
    assert!(!checks.is_empty(), "check ran");
    for req in &checks {
        assert_eq!(req["source"], serde_json::json!({"a": 1}), "{req}");
        if let Some(v) = req.get("version") {
            assert!(
                v.is_object(),
                "version is omitted or an object, never null: {req}"
            );
        }
    }
    assert!(
        checks.iter().any(|r| r.get("version").is_none()),
        "the first check omits the version: {checks:?}"
    );
    let ins = json_files(&log, "in-");
    assert!(ins.len() >= 2, "get and put's implicit get: {ins:?}");
    for req in &ins {
        assert!(req["version"].is_object(), "{req}");
        assert_eq!(req["params"], serde_json::json!({}), "{req}");
    }
    let out: Value =
        serde_json::from_str(&std::fs::read_to_string(log.join("out.json")).expect("out ran"))
            .expect("json");
    assert_eq!(out["params"], serde_json::json!({}), "{out}");
    assert!(out.get("version").is_none(), "{out}");
    for d in std::fs::read_to_string(log.join("in-dirs"))
        .expect("in dirs")
        .lines()
        .chain(
            std::fs::read_to_string(log.join("out-dir"))
                .expect("out dir")
                .lines(),
        )
    {
        assert!(!d.starts_with("/tmp/build/"), "a host directory, not {d}");
    }
}

/// A minimal resource written with PyPI's `concoursetools`, which reads the version of a
/// check request with `.items()` (so a `null` version crashes it).
const CONCOURSETOOLS_RESOURCE: &str = r#"
from dataclasses import dataclass

from concoursetools import ConcourseResource
from concoursetools.version import TypedVersion


@dataclass
class Counter(TypedVersion):
    n: int


class Resource(ConcourseResource[Counter]):
    def __init__(self, start: int = 1):
        super().__init__(Counter)
        self.start = start

    def fetch_new_versions(self, previous_version=None):
        if previous_version is None:
            return [Counter(self.start)]
        return [previous_version]

    def download_version(self, version, destination_dir, build_metadata, **params):
        (destination_dir / "n").write_text(str(version.n))
        return version, {"team": build_metadata.BUILD_TEAM_NAME}

    def publish_new_version(self, sources_dir, build_metadata, **params):
        n = int((sources_dir / params["from"] / "n").read_text())
        return Counter(n + 1), {}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concoursetools_resource_type_checks_gets_and_puts() {
    let dir = tempfile::tempdir().expect("temp");
    let Some(python) = common::python::venv_with(dir.path(), "concoursetools") else {
        return;
    };
    let repo = dir.path().join("image");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let main = |method: &str| {
        format!(
            "#!{}\nimport os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n\
             from counter import Resource\nResource.{method}()\n",
            python.display()
        )
    };
    commit_image(
        &repo,
        &[
            ("counter.py", CONCOURSETOOLS_RESOURCE.to_string()),
            ("check", main("check_main")),
            ("in", main("in_main")),
            ("out", main("out_main")),
        ],
    );

    let (server, fly) = pipeline_server();
    set_pipeline(
        &fly,
        dir.path(),
        &format!(
            r#"
resource_types:
- name: counter
  type: git
  source: {{uri: "{}", branch: main}}
resources:
- name: c
  type: counter
  source: {{start: 41}}
jobs:
- name: j
  public: true
  plan:
  - get: c
  - put: c
    params: {{from: c}}
"#,
            repo.display()
        ),
    );
    let (build, events) = trigger_and_wait(&server, &fly, Duration::from_secs(120)).await;
    assert_eq!(build["status"], "succeeded", "{build}\n{events}");
    let gets: Vec<Value> = event_data(&events, "finish-get");
    assert!(
        gets.iter()
            .any(|g| g["version"] == serde_json::json!({"n": "41"})),
        "{events}"
    );
    let puts: Vec<Value> = event_data(&events, "finish-put");
    assert!(
        puts.iter()
            .any(|p| p["version"] == serde_json::json!({"n": "42"})),
        "{events}"
    );
}
