//! Built-in base resource types, run as their own processes (`concourse resource TYPE
//! ACTION [DIR]`) exactly as a worker runs them: JSON on stdin, JSON on stdout.

mod common;

use common::git;

use serde_json::{json, Value};
use std::path::Path;

fn commit(repo: &Path, file: &str, msg: &str) -> String {
    let path = repo.join(file);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(&path, msg).expect("write");
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", msg]);
    git(repo, &["rev-parse", "HEAD"])
}

fn refs(versions: &Value) -> Vec<String> {
    versions
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["ref"].as_str().expect("ref").to_string())
        .collect()
}

#[test]
fn git_check_in_out_against_real_repositories() {
    let tmp = tempfile::tempdir().expect("temp");
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let c1 = commit(&repo, "a.txt", "first");
    let c2 = commit(&repo, "docs/readme", "docs only");
    let c3 = commit(&repo, "src/lib.rs", "code");
    let _skipped = commit(&repo, "src/lib.rs", "wip [ci skip]");
    let uri = repo.to_str().expect("utf8");

    let src = json!({"uri": uri, "branch": "main"});
    let latest = common::resource("git", "check", None, &json!({"source": src})).expect("check");
    assert_eq!(
        refs(&latest),
        vec![c3.clone()],
        "no version: newest non-skipped commit only"
    );
    let from = common::resource(
        "git",
        "check",
        None,
        &json!({"source": src, "version": {"ref": c1}}),
    )
    .expect("check");
    assert_eq!(
        refs(&from),
        vec![c1.clone(), c2.clone(), c3.clone()],
        "oldest first, from the given one"
    );
    let paths = common::resource("git", "check", None, &json!({"source": {"uri": uri, "branch": "main", "paths": ["src/*"]}, "version": {"ref": c1}})).expect("check");
    assert_eq!(refs(&paths), vec![c1.clone(), c3.clone()]);
    let ignore = common::resource("git", "check", None, &json!({"source": {"uri": uri, "branch": "main", "ignore_paths": ["docs"]}, "version": {"ref": c1}})).expect("check");
    assert_eq!(refs(&ignore), vec![c1.clone(), c3.clone()]);
    let unknown = common::resource(
        "git",
        "check",
        None,
        &json!({"source": src, "version": {"ref": "0000000000000000000000000000000000000000"}}),
    )
    .expect("check");
    assert_eq!(
        refs(&unknown),
        vec![c3.clone()],
        "an unknown ref behaves as no version"
    );
    let err = common::resource(
        "git",
        "check",
        None,
        &json!({"source": {"uri": uri, "bogus": 1}}),
    )
    .expect_err("unknown key");
    assert!(err.contains("Found unknown keys in source"), "{err}");

    git(&repo, &["tag", "v1.0.0", &c1]);
    git(&repo, &["tag", "v1.1.0", &c2]);
    git(&repo, &["tag", "other", &c3]);
    let tags = common::resource(
        "git",
        "check",
        None,
        &json!({"source": {"uri": uri, "tag_filter": "v*"}}),
    )
    .expect("check");
    assert_eq!(tags.as_array().map(Vec::len), Some(1));
    assert_eq!(tags[0]["commit"], c2.as_str());

    let dest = tmp.path().join("get");
    std::fs::create_dir(&dest).expect("mkdir");
    let got = common::resource(
        "git",
        "in",
        Some(&dest),
        &json!({"source": src, "version": {"ref": c2}}),
    )
    .expect("in");
    assert_eq!(got["version"]["ref"], c2.as_str());
    assert_eq!(
        std::fs::read_to_string(dest.join(".git/commit")).expect("commit file"),
        c2
    );
    assert_eq!(
        std::fs::read_to_string(dest.join(".git/commit_message"))
            .expect("message")
            .trim(),
        "docs only"
    );
    assert!(
        dest.join("docs/readme").exists() && !dest.join("src/lib.rs").exists(),
        "checked out at the ref"
    );
    let meta = got["metadata"].as_array().expect("metadata");
    assert!(meta
        .iter()
        .any(|m| m["name"] == "author" && m["value"] == "Ada"));

    // out: push a new commit from an input to a bare remote.
    let remote = tmp.path().join("remote.git");
    git(
        tmp.path(),
        &["clone", "-q", "--bare", uri, remote.to_str().expect("utf8")],
    );
    let put_dir = tmp.path().join("put");
    std::fs::create_dir(&put_dir).expect("mkdir");
    git(
        &put_dir,
        &["clone", "-q", remote.to_str().expect("utf8"), "repo"],
    );
    let new = commit(&put_dir.join("repo"), "new.txt", "from a build");
    let pushed = common::resource("git", "out", Some(&put_dir), &json!({"source": {"uri": remote.to_str(), "branch": "main"}, "params": {"repository": "repo"}})).expect("out");
    assert_eq!(pushed["version"]["ref"], new.as_str());
    assert_eq!(git(&remote, &["rev-parse", "refs/heads/main"]), new);
}

#[test]
fn mock_and_time_speak_the_protocol_from_the_binary() {
    let v = common::resource(
        "mock",
        "check",
        None,
        &json!({"source": {"initial_version": "one"}}),
    )
    .expect("check");
    assert_eq!(v, json!([{"version": "one"}]));
    let err = common::resource(
        "mock",
        "check",
        None,
        &json!({"source": {"check_failure": "super broken"}}),
    )
    .expect_err("fails");
    assert!(err.contains("super broken"));
    let v = common::resource(
        "time",
        "check",
        None,
        &json!({"source": {"interval": "1m"}}),
    )
    .expect("check");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let err = common::resource("nope", "check", None, &json!({})).expect_err("unknown type");
    assert!(err.contains("unknown base resource type 'nope'"));
}
