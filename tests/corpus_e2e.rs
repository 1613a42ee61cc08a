//! Every upstream corpus pipeline that upstream accepts goes through `fly set-pipeline`
//! into a real server and comes back unchanged through `fly get-pipeline`: once on
//! `concourse quickstart` with the embedded store, once on `concourse web` with PostgreSQL.

mod common;

use common::{corpus_dir, stderr, Backend, Fly, Server};
use serde_json::Value;
use std::path::PathBuf;

const T: &str = "corpus";

/// Task files, ytt templates and var files are not pipelines.
fn is_pipeline(rel: &str) -> bool {
    !(rel.starts_with("examples/tasks/")
        || rel.starts_with("examples/templates/")
        || rel == "clearlinux.yml"
        || rel == "http-proxy-task.yml"
        || rel == "examples/vars-file.yml")
}

/// The vars testflight passes for each fixture (as fly flags).
fn vars(rel: &str) -> Vec<&'static str> {
    match rel {
        "archive-pipeline-1.yml" | "archive-pipeline-3.yml" => vec!["-v", "pipeline_name=child"],
        "set-pipeline.yml" => vec!["-v", "pipeline_name=child", "-v", "team_name=main"],
        "image-resource-test.yml" | "input-mapping-test.yml" => vec!["-v", "task_content=hello"],
        "task_vars.yml" => vec![
            "-v",
            "task_content=hello",
            "-v",
            "task_unwrap_content=world",
        ],
        "image-resource-with-params.yml" | "matrix.yml" => vec!["-v", "initial_version=v1"],
        "many-inputs.yml" | "serial-groups-inputs-updated.yml" => {
            vec!["-v", "hash-1=h1", "-v", "hash-2=h2"]
        }
        "pinned-resource-simple-trigger.yml" => vec![
            "-v",
            "hash=h",
            "-y",
            "pinned_resource_version={version: v1}",
            "-y",
            "version_config=every",
        ],
        "pinned-version.yml" => vec!["-v", "hash=h", "-v", "pinned_version=v3"],
        "reconfiguring.yml" => vec!["-v", "force_version=guid1"],
        "resource-check-timeouts.yml" => vec!["-v", "check_delay=1s"],
        "resource-check.yml" => vec!["-v", "check_failure=", "-v", "unique_version=u1"],
        "resource-gc-get-and-task.yml" | "resource-with-params.yml" => {
            vec!["-v", "unique_version=u1"]
        }
        "resource-types-privileged.yml" => vec!["-y", "privileged=true", "-v", "unique_config=c1"],
        "examples/pipeline-vars.yml" => vec![
            "-v",
            "first=initial",
            "-v",
            "number=9000",
            "-v",
            "hello=HAL",
        ],
        f if f.ends_with(".yml") => vec!["-v", "hash=h"],
        _ => vec![],
    }
}

fn corpus() -> Vec<(String, PathBuf)> {
    let root = corpus_dir();
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read corpus").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml") {
                let rel = path
                    .strip_prefix(&root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                if is_pipeline(&rel) {
                    out.push((rel, path));
                }
            }
        }
    }
    out.sort();
    out
}

fn round_trip_all(server: &Server) {
    let fly = Fly::new();
    fly.login(server, T);
    let mut failures = Vec::new();
    let export_dir = tempfile::tempdir().expect("temp");
    for (i, (rel, path)) in corpus().iter().enumerate() {
        let name = format!("p{i}");
        let file = path.to_string_lossy().into_owned();
        let mut args = vec!["-t", T, "set-pipeline", "-n", "-p", &name, "-c", &file];
        args.extend(vars(rel));
        let out = fly.run(&args);
        if !out.status.success() {
            failures.push(format!("{rel}: set-pipeline failed: {}", stderr(&out)));
            continue;
        }
        // Setting it again from the same file changes nothing.
        let out = fly.ok(&args);
        if !out.contains("no changes to apply") {
            failures.push(format!("{rel}: second set-pipeline saw changes:\n{out}"));
        }
        // The exported YAML sets the very same config.
        let out = fly.run(&["-t", T, "get-pipeline", "-p", &name]);
        if !out.status.success() {
            failures.push(format!("{rel}: get-pipeline failed: {}", stderr(&out)));
            continue;
        }
        let yaml = common::stdout(&out);
        let exported = export_dir.path().join(format!("{name}.yml"));
        std::fs::write(&exported, &yaml).expect("write export");
        let out = fly.ok(&[
            "-t",
            T,
            "set-pipeline",
            "-n",
            "-p",
            &name,
            "-c",
            &exported.to_string_lossy(),
        ]);
        if !out.contains("no changes to apply") {
            failures.push(format!(
                "{rel}: re-setting the exported config saw changes:\n{out}"
            ));
        }
        let json: Value =
            serde_json::from_str(&fly.ok(&["-t", T, "get-pipeline", "-p", &name, "--json"]))
                .expect("json config");
        if json["jobs"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!("{rel}: get-pipeline --json has no jobs"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus pipelines did not round-trip:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_round_trips_through_quickstart_on_the_embedded_store() {
    let server = Server::quickstart(Backend::Embedded);
    round_trip_all(&server);
}

#[test]
fn corpus_round_trips_through_web_on_postgres() {
    let Some(backend) = Backend::postgres("corpus_e2e::web_on_postgres") else {
        return;
    };
    let server = Server::start(backend);
    round_trip_all(&server);
}
