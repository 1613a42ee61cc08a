//! Every pipeline of the shared corpus (upstream testflight fixtures and concourse/examples)
//! gets the verdict upstream gives it, and every accepted one survives JSON and YAML
//! round-trips unchanged.

use concourse::config::{
    parse_pipeline, parse_task_config, render_template, to_json, to_yaml, validate_pipeline,
    StaticVars,
};
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pipelines");
    assert!(
        dir.join("INDEX.md").is_file(),
        "pipeline corpus not found at {} — the shared corpus must be checked out next to the crate",
        dir.display()
    );
    dir
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

enum Kind {
    Pipeline,
    TaskFile,
    YttTemplate,
    VarFile,
}

fn kind(rel: &str) -> Kind {
    if rel.starts_with("examples/tasks/") || rel == "clearlinux.yml" || rel == "http-proxy-task.yml"
    {
        Kind::TaskFile
    } else if rel.starts_with("examples/templates/") {
        Kind::YttTemplate
    } else if rel == "examples/vars-file.yml" {
        Kind::VarFile
    } else {
        Kind::Pipeline
    }
}

/// The vars the upstream tests pass with `fly set-pipeline` (UUIDs fixed here), one set per
/// variant the tests use.
fn var_variants(rel: &str, dir: &Path) -> Vec<StaticVars> {
    let mut base = StaticVars::builder();
    for v in [
        "hash=3f2a9c1e-hash",
        "hash-1=3f2a9c1e-hash-1",
        "hash-2=3f2a9c1e-hash-2",
        "unique_version=5b8e-unique",
        "initial_version=first-version",
        "force_version=guid1",
        "check_failure=super broken",
        "check_delay=1s",
        "pinned_version=v3",
        "unique_config=7c9d-config",
        "pipeline_name=child-pipeline",
        "team_name=main",
        "task_content=platform: linux",
        "task_unwrap_content=platform: linux",
    ] {
        base.var(v).unwrap();
    }
    match rel {
        "resource-types-privileged.yml" => ["privileged=true", "privileged=false"]
            .iter()
            .map(|p| {
                let mut b = base.clone();
                b.yaml_var(p).unwrap();
                b.build()
            })
            .collect(),
        "pinned-resource-simple-trigger.yml" => [
            "version_config=latest",
            "version_config=every",
            "version_config=null",
        ]
        .iter()
        .map(|vc| {
            let mut b = base.clone();
            b.yaml_var("pinned_resource_version={version: v1}").unwrap();
            b.yaml_var(vc).unwrap();
            b.build()
        })
        .collect(),
        "examples/pipeline-vars.yml" => {
            let mut b = base.clone();
            b.var_file(&std::fs::read(dir.join("examples/vars-file.yml")).unwrap())
                .unwrap();
            vec![b.build()]
        }
        _ => vec![base.build()],
    }
}

fn check_round_trips(rel: &str, rendered: &[u8]) {
    let config = parse_pipeline(rendered).unwrap();
    let json = to_json(&config);
    let from_json = parse_pipeline(&serde_json::to_vec(&json).unwrap())
        .unwrap_or_else(|e| panic!("{rel}: JSON output does not parse: {e}"));
    assert_eq!(
        from_json, config,
        "{rel}: parse → to_json → parse changed the config"
    );
    assert_eq!(to_json(&from_json), json, "{rel}: to_json is not stable");
    let yaml = to_yaml(&json);
    let from_yaml = parse_pipeline(yaml.as_bytes())
        .unwrap_or_else(|e| panic!("{rel}: YAML output does not parse: {e}\n{yaml}"));
    assert_eq!(
        from_yaml, config,
        "{rel}: to_yaml → parse changed the config\n{yaml}"
    );
}

#[test]
fn every_corpus_file_gets_upstreams_verdict_and_round_trips() {
    let dir = corpus_dir();
    let mut files = vec![];
    yaml_files(&dir, &mut files);
    assert!(
        files.len() > 80,
        "corpus looks incomplete: {} files",
        files.len()
    );
    let mut accepted = 0;
    for path in &files {
        let rel = path
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let doc = std::fs::read(path).unwrap();
        match kind(&rel) {
            Kind::TaskFile => {
                let rendered = render_template(&doc, &StaticVars::default()).unwrap();
                parse_task_config(&rendered)
                    .unwrap_or_else(|e| panic!("{rel}: task file rejected: {e}"));
            }
            Kind::VarFile => {
                StaticVars::builder()
                    .var_file(&doc)
                    .unwrap_or_else(|e| panic!("{rel}: {e}"));
            }
            Kind::YttTemplate => {
                // ytt templates are not pipelines until rendered: upstream refuses them.
                let verdict = render_template(&doc, &StaticVars::default())
                    .and_then(|r| parse_pipeline(&r))
                    .map(|c| validate_pipeline(&c));
                if let Ok(v) = verdict {
                    assert!(
                        !v.errors.is_empty(),
                        "{rel}: an unrendered ytt template was accepted"
                    );
                }
            }
            Kind::Pipeline => {
                for vars in var_variants(&rel, &dir) {
                    let rendered = render_template(&doc, &vars)
                        .unwrap_or_else(|e| panic!("{rel}: render failed: {e}"));
                    let config = parse_pipeline(&rendered).unwrap_or_else(|e| {
                        panic!(
                            "{rel}: rejected at parse: {e}\n{}",
                            String::from_utf8_lossy(&rendered)
                        )
                    });
                    let validation = validate_pipeline(&config);
                    assert!(
                        validation.errors.is_empty(),
                        "{rel}: rejected: {:?}",
                        validation.errors
                    );
                    // The document as written (before fly renders it) also round-trips.
                    check_round_trips(&rel, &rendered);
                    accepted += 1;
                }
            }
        }
    }
    assert!(accepted >= 80, "only {accepted} pipelines were checked");
}

#[test]
fn unrendered_typed_vars_are_rejected_like_upstream() {
    let doc = std::fs::read(corpus_dir().join("resource-types-privileged.yml")).unwrap();
    let err = parse_pipeline(&doc).unwrap_err();
    assert_eq!(
        err.message,
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field ResourceType.resource_types.privileged of type bool"
    );
    assert_eq!(err.line, Some(5));
}
