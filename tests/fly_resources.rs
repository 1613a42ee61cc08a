//! fly's resource commands and `rerun-build` against a real `concourse web`, on both
//! stores. Versions are seeded straight into the server's store, as a check saves them.

mod common;

use common::{stderr, stdout, Backend, Fly, Server};
use concourse::db::{NewVersion, Page};
use serde_json::{json, Value};

const T: &str = "rs";

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = Backend::postgres(concat!("fly_resources::", stringify!($name))) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

on_both_stores!(
    resources_and_versions_are_listed_pinned_and_toggled,
    builds_are_rerun
);

const PIPELINE: &str = "
resources:
- name: repo
  type: mock
  source: {}
- name: pinned
  type: mock
  version: {ref: cfg, path: x}
  source: {}
jobs:
- name: build
  plan:
  - get: repo
  - get: pinned
";

/// A server with pipeline `p` set through fly.
fn setup(b: Backend) -> (Server, Fly, tempfile::TempDir) {
    let s = Server::start(b);
    let fly = Fly::new();
    fly.login(&s, T);
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write");
    fly.ok(&[
        "-t",
        T,
        "set-pipeline",
        "-n",
        "-p",
        "p",
        "-c",
        &file.to_string_lossy(),
    ]);
    (s, fly, dir)
}

/// Saves `refs` (oldest first) as the versions of `resource`; returns their ids, newest first.
async fn seed(s: &Server, resource: &str, refs: &[&str]) -> Vec<i64> {
    let store = s.store().await;
    let pipeline = store
        .pipeline("main", "p", None)
        .await
        .expect("pipeline")
        .expect("p");
    let r = store
        .resource(pipeline.id, resource)
        .await
        .expect("resource")
        .expect("known");
    let scope = store
        .resource_scope("mock", &format!("fly:{resource}"), Some(r.id))
        .await
        .expect("scope");
    store.set_resource_scope(r.id, scope).await.expect("scope");
    let versions: Vec<NewVersion> = refs
        .iter()
        .map(|v| NewVersion {
            version: json!({ "ref": v }),
            metadata: json!([{"name": "n", "value": v}]),
        })
        .collect();
    store.save_versions(scope, &versions).await.expect("save");
    let all = Page {
        limit: 0,
        ..Page::default()
    };
    store
        .versions(scope, &all)
        .await
        .expect("versions")
        .iter()
        .map(|v| v.id)
        .collect()
}

async fn resources_and_versions_are_listed_pinned_and_toggled(b: Backend) {
    let (s, fly, _dir) = setup(b);
    let ids = seed(&s, "repo", &["v1", "v2", "v3"]).await;
    let fly_ok = |args: &[&str]| {
        let mut all = vec!["-t", T];
        all.extend_from_slice(args);
        fly.ok(&all)
    };
    let fly_run = |args: &[&str]| {
        let mut all = vec!["-t", T];
        all.extend_from_slice(args);
        fly.run(&all)
    };

    assert_eq!(
        fly_ok(&["resources", "-p", "p"]),
        "repo    mock  n/a             n/a\npinned  mock  path:x,ref:cfg  n/a\n"
    );
    let json: Value = serde_json::from_str(&fly_ok(&["rs", "-p", "p", "--json"])).expect("json");
    assert_eq!(
        json[1]["pinned_version"],
        json!({"path": "x", "ref": "cfg"})
    );
    assert_eq!(json[1]["pinned_in_config"], true);

    let table = |rows: &[(i64, &str, &str)]| -> String {
        let width = rows
            .iter()
            .map(|r| r.0.to_string().len())
            .max()
            .unwrap_or(0);
        let enabled = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(id, v, e)| format!("{id:<width$}  ref:{v}  {e:<enabled$}\n"))
            .collect()
    };
    assert_eq!(
        fly_ok(&["resource-versions", "-r", "p/repo"]),
        table(&[
            (ids[0], "v3", "yes"),
            (ids[1], "v2", "yes"),
            (ids[2], "v1", "yes")
        ])
    );
    assert_eq!(
        fly_ok(&["rvs", "-r", "p/repo", "-c", "1"]),
        table(&[(ids[0], "v3", "yes")])
    );
    let json: Value =
        serde_json::from_str(&fly_ok(&["rvs", "-r", "p/repo", "--json"])).expect("json");
    assert_eq!(
        json[2],
        json!({"id": ids[2], "metadata": [{"name": "n", "value": "v1"}], "version": {"ref": "v1"}, "enabled": true})
    );

    assert_eq!(
        fly_ok(&[
            "pin-resource",
            "-r",
            "p/repo",
            "-v",
            "ref:v2",
            "-c",
            "hold it"
        ]),
        "pinned 'p/repo' with version {\"ref\":\"v2\"}\npin comment 'hold it' is saved\n"
    );
    let json: Value = serde_json::from_str(&fly_ok(&["rs", "-p", "p", "--json"])).expect("json");
    assert_eq!(json[0]["pinned_version"], json!({"ref": "v2"}));
    assert_eq!(json[0]["pin_comment"], "hold it");
    let out = fly_run(&["pin-resource", "-r", "p/repo"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: the required flag `-v, --version' was not specified\n"
    );
    let out = fly_run(&["pr", "-r", "p/repo", "-v", "ref:nope"]);
    assert_eq!(
        stderr(&out),
        "error: could not find version matching {\"ref\":\"nope\"}\n"
    );
    let out = fly_run(&["pr", "-r", "p/nope", "-v", "ref:v1"]);
    assert_eq!(
        stderr(&out),
        "error: could not find version matching {\"ref\":\"v1\"}\n"
    );
    assert_eq!(
        fly_ok(&["unpin-resource", "-r", "p/repo"]),
        "unpinned 'p/repo'\n"
    );
    let out = fly_run(&["ur", "-r", "p/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "could not find resource 'p/nope'\n\n");

    assert_eq!(
        fly_ok(&["disable-resource-version", "-r", "p/repo", "-v", "ref:v3"]),
        "disabled 'p/repo' with version {\"ref\":\"v3\"}\n"
    );
    assert_eq!(
        fly_ok(&["rvs", "-r", "p/repo", "-c", "1"]),
        table(&[(ids[0], "v3", "no")])
    );
    assert_eq!(
        fly_ok(&["drv", "-r", "p/repo", "-v", "ref:v3"]),
        "disabled 'p/repo' with version {\"ref\":\"v3\"}\n",
        "already disabled: nothing to do, same message"
    );
    assert_eq!(
        fly_ok(&["enable-resource-version", "-r", "p/repo", "-v", "ref:v3"]),
        "enabled 'p/repo' with version {\"ref\":\"v3\"}\n"
    );
    assert_eq!(
        fly_ok(&["rvs", "-r", "p/repo", "-c", "1"]),
        table(&[(ids[0], "v3", "yes")])
    );
    let out = fly_run(&["erv", "-r", "p/repo"]);
    assert_eq!(
        stderr(&out),
        "error: the required flag '-v, --version' was not specified\n"
    );
    assert_eq!(stdout(&out), "");
}

async fn builds_are_rerun(b: Backend) {
    let (_s, fly, _dir) = setup(b);
    assert_eq!(
        fly.ok(&["-t", T, "trigger-job", "-j", "p/build"]),
        "started p/build #1\n"
    );
    assert_eq!(
        fly.ok(&["-t", T, "rerun-build", "-j", "p/build", "-b", "1"]),
        "started p/build #1.1\n"
    );
    assert_eq!(
        fly.ok(&["-t", T, "rb", "-j", "p/build", "-b", "1"]),
        "started p/build #1.2\n"
    );
    let out = fly.run(&["-t", T, "rerun-build", "-j", "p/build", "-b", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: resource not found\n");
    let out = fly.run(&["-t", T, "rerun-build", "-j", "p/build"]);
    assert_eq!(
        stderr(&out),
        "error: the required flag '-b, --build' was not specified\n"
    );
}
