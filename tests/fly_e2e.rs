//! fly, run as its own process, against a real `concourse web`: the commands of the
//! foundation issue, with upstream's messages.

mod common;

use common::{stderr, stdout, Backend, Fly, Server};
use serde_json::Value;
use std::path::Path;

const T: &str = "e2e";

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn setup(backend: Backend) -> (Server, Fly) {
    let s = Server::start(backend);
    let fly = Fly::new();
    fly.login(&s, T);
    (s, fly)
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn embedded() {
                super::$name(Backend::Embedded)
            }
            #[test]
            fn postgres() {
                if let Some(b) = Backend::postgres(concat!("fly_e2e::", stringify!($name))) {
                    super::$name(b)
                }
            }
        }
    )*};
}

on_both_stores!(pipeline_commands_work_end_to_end);

fn pipeline_commands_work_end_to_end(b: Backend) {
    let (_s, fly) = setup(b);
    let file = example("hello-world.yml");
    let out = fly.ok(&["-t", T, "set-pipeline", "-n", "-p", "hello", "-c", &file]);
    assert!(out.contains("pipeline created!"), "{out}");
    assert!(out.contains("the pipeline is currently paused"), "{out}");

    let out = fly.ok(&["-t", T, "set-pipeline", "-n", "-p", "hello", "-c", &file]);
    assert!(out.contains("no changes to apply"), "{out}");

    let got: Value =
        serde_json::from_str(&fly.ok(&["-t", T, "get-pipeline", "-p", "hello", "--json"]))
            .expect("json config");
    let text = std::fs::read(&file).expect("example");
    let expected =
        concourse::config::to_json(&concourse::config::parse_pipeline(&text).expect("parses"));
    assert_eq!(got, expected);
    let yaml = fly.ok(&["-t", T, "get-pipeline", "-p", "hello"]);
    let reparsed =
        concourse::config::parse_pipeline(yaml.as_bytes()).expect("get-pipeline YAML parses");
    assert_eq!(concourse::config::to_json(&reparsed), expected);

    let out = fly.ok(&["-t", T, "pipelines"]);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("hello")),
        "{out}"
    );
    assert_eq!(
        fly.ok(&["-t", T, "unpause-pipeline", "-p", "hello"]).trim(),
        "unpaused 'hello'"
    );
    assert_eq!(
        fly.ok(&["-t", T, "pause-pipeline", "-p", "hello"]).trim(),
        "paused 'hello'"
    );
    assert_eq!(
        fly.ok(&["-t", T, "expose-pipeline", "-p", "hello"]).trim(),
        "exposed 'hello'"
    );
    assert_eq!(
        fly.ok(&["-t", T, "hide-pipeline", "-p", "hello"]).trim(),
        "hid 'hello'"
    );

    let jobs = fly.ok(&["-t", T, "jobs", "-p", "hello"]);
    let cols: Vec<&str> = jobs
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(cols, vec!["hello-world-job", "no", "n/a", "n/a"], "{jobs}");
    assert_eq!(
        fly.ok(&["-t", T, "pause-job", "-j", "hello/hello-world-job"])
            .trim(),
        "paused 'hello-world-job'"
    );
    let jobs: Value =
        serde_json::from_str(&fly.ok(&["-t", T, "jobs", "-p", "hello", "--json"])).expect("json");
    assert_eq!(jobs[0]["paused"], true);

    let out = fly.ok(&["-t", T, "rename-pipeline", "-o", "hello", "-n", "greetings"]);
    assert!(
        out.contains("pipeline successfully renamed to 'greetings'"),
        "{out}"
    );
    let out = fly.run(&["-t", T, "pause-pipeline", "-p", "hello"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pipeline 'hello' not found"),
        "{}",
        stderr(&out)
    );

    let out = fly.ok(&["-t", T, "destroy-pipeline", "-n", "-p", "greetings"]);
    assert!(out.contains("`greetings` deleted"), "{out}");
    let out = fly.run(&["-t", T, "get-pipeline", "-p", "greetings"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pipeline not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_pipeline_is_refused_by_server_and_nothing_changes() {
    let (_s, fly) = setup(Backend::Embedded);
    let dir = tempfile::tempdir().expect("temp");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "resources:\n- name: unused\n  type: mock\njobs:\n- name: j\n  plan: []\n",
    )
    .expect("write");
    let out = fly.run(&[
        "-t",
        T,
        "set-pipeline",
        "-n",
        "-p",
        "bad",
        "-c",
        bad.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("resource 'unused' is not used"), "{err}");
    let out = fly.ok(&["-t", T, "pipelines", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        serde_json::json!([])
    );
}

#[test]
fn targets_status_and_logout() {
    let (s, fly) = setup(Backend::Embedded);
    let out = fly.ok(&["targets"]);
    assert!(out.contains(T) && out.contains(&s.url), "{out}");
    assert!(fly
        .ok(&["-t", T, "status"])
        .contains("logged in successfully"));
    assert!(fly
        .ok(&["-t", T, "logout"])
        .contains("logged out of target: e2e"));
    let out = fly.run(&["-t", T, "status"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("logged out"), "{}", stderr(&out));
    let out = fly.run(&["-t", T, "pipelines"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not authorized"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn validate_and_format_work_offline() {
    let fly = Fly::new();
    let out = fly.ok(&["validate-pipeline", "-c", &example("hello-world.yml")]);
    assert!(out.contains("looks good"), "{out}");
    let dir = tempfile::tempdir().expect("temp");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "jobs: []\n").expect("write");
    let out = fly.run(&["validate-pipeline", "-c", bad.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("configuration invalid"),
        "{}",
        stderr(&out)
    );
    let formatted = fly.ok(&["format-pipeline", "-c", &example("hello-world.yml")]);
    let a = concourse::config::parse_pipeline(formatted.as_bytes()).expect("formatted parses");
    let b = concourse::config::parse_pipeline(
        &std::fs::read(example("hello-world.yml")).expect("read"),
    )
    .expect("parses");
    assert_eq!(a, b);
}

#[test]
fn wrong_password_fails_login() {
    let s = Server::start(Backend::Embedded);
    let fly = Fly::new();
    let out = fly.run(&["-t", T, "login", "-c", &s.url, "-u", "test", "-p", "wrong"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Invalid username or password"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn trigger_abort_and_watch_a_build() {
    let (_s, fly) = setup(Backend::Embedded);
    fly.ok(&[
        "-t",
        T,
        "set-pipeline",
        "-n",
        "-p",
        "hello",
        "-c",
        &example("hello-world.yml"),
    ]);
    let out = fly.ok(&["-t", T, "trigger-job", "-j", "hello/hello-world-job"]);
    assert_eq!(out.trim(), "started hello/hello-world-job #1");
    let out = fly.ok(&[
        "-t",
        T,
        "abort-build",
        "-j",
        "hello/hello-world-job",
        "-b",
        "1",
    ]);
    assert_eq!(out.trim(), "build successfully aborted");
    let watched = fly.run(&["-t", T, "watch", "-j", "hello/hello-world-job"]);
    assert_eq!(
        watched.status.code(),
        Some(3),
        "aborted builds exit 3: {}",
        stderr(&watched)
    );
    assert_eq!(stdout(&watched).trim(), "aborted");
    for args in [
        vec!["-t", T, "builds", "-j", "hello/hello-world-job"],
        vec!["-t", T, "builds"],
        vec!["-t", T, "builds", "-p", "hello"],
    ] {
        let out = fly.ok(&args);
        let cols: Vec<&str> = out
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            cols.get(1..3),
            Some(&["hello/hello-world-job/1", "aborted"][..]),
            "{args:?}: {out}"
        );
        assert_eq!(cols.last(), Some(&"test"), "created by: {out}");
    }
    let out = fly.run(&["-t", T, "abort-build", "-b", "999"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("build does not exist"),
        "{}",
        stderr(&out)
    );
    let out = fly.run(&["-t", T, "trigger-job", "-j", "hello/nope"]);
    assert!(!out.status.success());
}
