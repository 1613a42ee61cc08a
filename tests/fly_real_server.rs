//! fly against a real `concourse web`: the flows the fake ATC of `fly_cli.rs` cannot
//! cover (instanced pipelines, the set-pipeline diff, teams, archiving, target edits).

mod common;

use common::{stderr, stdout, Backend, Fly, Server};
use serde_json::Value;

const T: &str = "real";

const PIPELINE: &str = "resources:
- name: r
  type: mock
  source: {mirror_self: true}
jobs:
- name: j
  plan:
  - get: r
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: ((cmd)), args: [hi]}
";

fn setup() -> (Server, Fly, tempfile::TempDir) {
    let s = Server::start(Backend::Embedded);
    let fly = Fly::new();
    fly.login(&s, T);
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("p.yml"), PIPELINE).expect("write");
    (s, fly, dir)
}

#[test]
fn instanced_pipelines_are_set_diffed_and_addressed_by_their_vars() {
    let (s, fly, dir) = setup();
    let file = dir.path().join("p.yml").to_string_lossy().into_owned();
    let sp = |cmd: &str, extra: &[&str]| {
        let mut args = vec![
            "-t",
            T,
            "set-pipeline",
            "-p",
            "inst",
            "-c",
            &file,
            "-i",
            "branch=main",
        ];
        args.extend(["-v", cmd]);
        args.extend(extra);
        fly.run(&args)
    };
    let out = sp("cmd=echo", &["-n"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("job j has been added:\n+ name: j\n"),
        "{text}"
    );
    assert!(
        text.contains("pipeline name: inst\npipeline instance vars:\n  branch: main\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("you can view your pipeline here: {}/teams/main/pipelines/inst?vars.branch=%22main%22\n", s.url)),
        "{text}"
    );
    assert!(
        text.contains("    fly -t real unpause-pipeline -p inst/branch:main\n"),
        "{text}"
    );

    let out = sp("cmd=printf", &["--dry-run"]);
    let text = stdout(&out);
    assert!(text.contains("job j has changed:\n"), "{text}");
    assert!(
        text.contains("-       path: echo\n+       path: printf\n"),
        "{text}"
    );
    assert!(text.ends_with("Dry-run mode was set, exiting.\n"), "{text}");
    assert!(stdout(&sp("cmd=echo", &["-n"])).contains("no changes to apply"));

    let out = fly.ok(&["-t", T, "pipelines"]);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("inst/branch:main")),
        "{out}"
    );
    assert_eq!(
        fly.ok(&["-t", T, "unpause-pipeline", "-p", "inst/branch:main"]),
        "unpaused 'inst/branch:main'\n"
    );
    let jobs: Value =
        serde_json::from_str(&fly.ok(&["-t", T, "jobs", "-p", "inst/branch:main", "--json"]))
            .expect("json");
    assert_eq!(jobs[0]["name"], "j");
    let out = fly.run(&["-t", T, "pause-pipeline", "-p", "inst/branch:other"]);
    assert_eq!(stderr(&out), "pipeline 'inst/branch:other' not found\n\n");
    let out = fly.ok(&["-t", T, "destroy-pipeline", "-n", "-p", "inst/branch:main"]);
    assert!(out.ends_with("`inst/branch:main` deleted\n"), "{out}");
}

#[test]
fn pipelines_can_be_ordered_and_archived() {
    let (_s, fly, dir) = setup();
    let file = dir.path().join("p.yml").to_string_lossy().into_owned();
    for name in ["b", "a"] {
        fly.ok(&[
            "-t",
            T,
            "set-pipeline",
            "-n",
            "-p",
            name,
            "-c",
            &file,
            "-v",
            "cmd=echo",
        ]);
    }
    assert_eq!(
        fly.ok(&["-t", T, "order-pipelines", "-a"]),
        "ordered pipelines \n  - a \n  - b \n"
    );
    let names: Vec<String> = fly
        .ok(&["-t", T, "pipelines"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        fly.ok(&["-t", T, "archive-pipeline", "-n", "-p", "a"]),
        "archived 'a'\n"
    );
    assert!(!fly.ok(&["-t", T, "pipelines"]).contains(" a "));
    let all = fly.ok(&[
        "-t",
        T,
        "--print-table-headers",
        "pipelines",
        "--include-archived",
    ]);
    assert!(
        all.starts_with("id  name  paused  public  archived  last updated"),
        "{all}"
    );
    let out = fly.run(&["-t", T, "get-pipeline", "-p", "a"]);
    assert_eq!(stderr(&out), "error: pipeline not found\n");
}

#[test]
fn teams_can_be_set_listed_renamed_and_destroyed() {
    let (_s, fly, _dir) = setup();
    let out = fly.ok(&[
        "-t",
        T,
        "set-team",
        "-n",
        "dev",
        "--local-user",
        "dev",
        "--non-interactive",
    ]);
    assert!(
        out.starts_with(
            "setting team: dev\n\nrole owner:\n  users:\n  - local:dev\n\n  groups:\n    none\n"
        ),
        "{out}"
    );
    assert!(out.contains("team created\n"), "{out}");
    assert_eq!(fly.ok(&["-t", T, "teams"]), "dev \nmain\n");
    assert_eq!(
        fly.ok(&["-t", T, "teams", "-d"]),
        "dev/owner   local:dev   none\nmain/owner  local:test  none\n"
    );
    let team: Value =
        serde_json::from_str(&fly.ok(&["-t", T, "get-team", "-n", "dev", "--json"])).expect("json");
    assert_eq!(team["auth"]["owner"]["users"][0], "local:dev");
    assert_eq!(
        fly.ok(&["-t", T, "rename-team", "-o", "dev", "-n", "ops"]),
        "Team successfully renamed to ops\n"
    );
    assert!(fly
        .ok(&["-t", T, "destroy-team", "-n", "ops", "--non-interactive"])
        .ends_with("`ops` deleted\n"));
    assert_eq!(fly.ok(&["-t", T, "userinfo"]), "test  main/owner\n");
    let out = fly.run(&["-t", T, "set-team", "-n", "x", "--non-interactive"]);
    assert_eq!(
        stderr(&out),
        "error: auth config for the team does not have users and groups configured\n"
    );
}

#[test]
fn targets_can_be_edited_logged_out_and_deleted() {
    let (s, fly, _dir) = setup();
    fly.login(&s, "other");
    assert_eq!(
        fly.ok(&[
            "-t",
            "other",
            "edit-target",
            "--target-name",
            "renamed",
            "-n",
            "dev"
        ]),
        "Updated target: other\n"
    );
    let targets = fly.ok(&["targets"]);
    assert!(
        targets.contains(&format!("renamed  {}  dev ", s.url)),
        "{targets}"
    );
    assert_eq!(
        fly.ok(&["logout", "-a"]),
        "logged out of target: real\nlogged out of target: renamed\nlogged out of all targets\n"
    );
    assert!(fly
        .ok(&["targets"])
        .lines()
        .all(|l| l.trim_end().ends_with("n/a")));
    assert_eq!(
        fly.ok(&["-t", "renamed", "delete-target"]),
        "deleted target: renamed\n"
    );
    assert_eq!(
        fly.ok(&["-t", T, "delete-target", "-a"]),
        "deleted all targets\n"
    );
    assert_eq!(fly.ok(&["targets"]), "");
    let out = fly.run(&["logout"]);
    assert_eq!(
        stderr(&out),
        "error: must specify either --target or --all\n"
    );
}
