//! `fly containers`, `volumes`, `intercept` and `clear-task-cache` against a real
//! `concourse quickstart` (its in-process worker runs the builds), on both stores.

mod common;

use common::{corpus_dir, stderr, stdout, Backend, Fly, Server};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const T: &str = "ic";

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
                if let Some(b) = Backend::postgres(concat!("fly_intercept::", stringify!($name))) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

on_both_stores!(intercept_a_running_task, clear_task_cache);

/// Runs fly (killed after `secs`) with `input` on stdin.
fn fly_with(fly: &Fly, secs: u32, input: &str, args: &[&str]) -> Output {
    let mut child = Command::new("timeout")
        .arg(secs.to_string())
        .arg(common::bin())
        .arg("fly")
        .args(args)
        .env("HOME", fly.home.path())
        .env_remove("FLY_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running fly");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("writing stdin");
    drop(stdin);
    child.wait_with_output().expect("fly output")
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// Polls `fly args` until `cond` holds on its stdout (60 s).
fn eventually(fly: &Fly, args: &[&str], cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = fly_with(fly, 10, "", args);
        last = both(&out);
        if cond(&stdout(&out)) {
            return stdout(&out);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("timed out waiting on fly {args:?}; last output:\n{last}");
}

fn set_pipeline(fly: &Fly, p: &str, config: &std::path::Path) {
    let path = config.to_string_lossy().to_string();
    fly.ok(&["-t", T, "set-pipeline", "-n", "-p", p, "-c", &path]);
    fly.ok(&["-t", T, "unpause-pipeline", "-p", p]);
}

/// A task like wait-for-intercept.yml whose PATH has `sh` but no `bash`.
const NO_BASH: &str = r#"
jobs:
- name: nobash
  plan:
  - task: no-bash
    config:
      platform: linux
      image_resource:
        type: mock
        source: {mirror_self: true}
      params:
        PATH: /only-sh
      run:
        path: /bin/sh
        args:
        - -c
        - |
          /bin/mkdir -p /only-sh && /bin/ln -sf /bin/sh /only-sh/sh
          until test -f /tmp/stop-waiting; do /bin/sleep 1; done
          echo done
"#;

async fn intercept_a_running_task(b: Backend) {
    let s = Server::quickstart(b);
    let fly = Fly::new();
    fly.login(&s, T);
    set_pipeline(&fly, "w", &corpus_dir().join("wait-for-intercept.yml"));
    fly.ok(&["-t", T, "trigger-job", "-j", "w/wait"]);

    // The running task's container, with upstream's columns.
    // (Its image's check and get containers carry the step name too, type check/get.)
    let listed = eventually(&fly, &["-t", T, "containers"], |o| {
        o.contains("task  wait-for-intercept")
    });
    let row: Vec<&str> = listed
        .lines()
        .find(|l| l.contains("task  wait-for-intercept"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(row.len(), 9, "containers row: {listed}");
    let handle = row[0].to_string();
    assert_eq!(row[2..5], ["w", "wait", "1"], "containers row: {listed}");
    assert_eq!(row[6..], ["task", "wait-for-intercept", "n/a"], "{listed}");
    let json = fly.ok(&["-t", T, "containers", "--json"]);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("containers json");
    let c = parsed
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == handle.as_str()))
        .expect("container in json");
    assert_eq!(c["type"], "task");
    assert_eq!(c["user"], "root");
    assert!(c["working_directory"]
        .as_str()
        .is_some_and(|d| d.starts_with("/tmp/build/")));

    // Its volumes: the image copy it runs on, labelled with the container.
    let volumes = fly.ok(&["-t", T, "volumes"]);
    assert!(
        volumes
            .lines()
            .any(|l| l.contains("container") && l.contains(&handle)),
        "volumes:\n{volumes}"
    );
    assert!(fly
        .ok(&["-t", T, "volumes", "-d"])
        .contains(&format!("container:{handle},path:/")));

    // The API refuses a malformed numeric filter.
    let token = s.token(common::USER, common::PASS).await;
    let resp = reqwest::Client::new()
        .get(s.api("/api/v1/teams/main/containers?build_id=abc"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET containers");
    assert_eq!(resp.status(), 400);
    let resp = reqwest::Client::new()
        .get(s.api(&format!("/api/v1/teams/main/containers/{handle}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET container");
    assert_eq!(resp.status(), 200);

    // Another team sees none of main's containers.
    fly.ok(&[
        "-t",
        T,
        "set-team",
        "-n",
        "other",
        "--local-user",
        "dev",
        "--non-interactive",
    ]);
    fly.ok(&[
        "-t", "other", "login", "-c", &s.url, "-u", "dev", "-p", "dev", "-n", "other",
    ]);
    let out = fly_with(
        &fly,
        30,
        "",
        &["-t", "other", "intercept", "-j", "w/wait", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("no containers matched your search parameters!"),
        "{}",
        both(&out)
    );
    let out = fly_with(
        &fly,
        30,
        "",
        &["-t", "other", "hijack", "--handle", &handle],
    );
    assert!(
        stderr(&out).contains("no containers matched the given handle id!"),
        "{}",
        both(&out)
    );

    // A command's output and exit status come back.
    let out = fly_with(
        &fly,
        30,
        "",
        &[
            "-t",
            T,
            "i",
            "-j",
            "w/wait",
            "-s",
            "wait-for-intercept",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 4",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", both(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");

    // Non-TTY stdin streams into the default shell.
    let out = fly_with(
        &fly,
        30,
        "echo from $0\n",
        &["-t", T, "intercept", "-j", "w/wait"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "from bash\n");

    // Ending the wait through intercept ends the build.
    let out = fly_with(
        &fly,
        30,
        "",
        &[
            "-t",
            T,
            "intercept",
            "-j",
            "w/wait",
            "-s",
            "wait-for-intercept",
            "--",
            "touch",
            "/tmp/stop-waiting",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = fly_with(&fly, 60, "", &["-t", T, "watch", "-j", "w/wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("done"), "{}", both(&out));

    // No bash in the container: fly says so and retries with sh, replaying stdin.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nobash.yml");
    std::fs::write(&config, NO_BASH).expect("writing pipeline");
    set_pipeline(&fly, "nb", &config);
    fly.ok(&["-t", T, "trigger-job", "-j", "nb/nobash"]);
    eventually(&fly, &["-t", T, "containers"], |o| {
        o.contains("task  no-bash")
    });
    let out = fly_with(
        &fly,
        30,
        "echo via $0; /usr/bin/touch /tmp/stop-waiting\n",
        &["-t", T, "intercept", "-j", "nb/nobash"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("Couldn't find \"bash\" on container, retrying with \"sh\""),
        "{}",
        both(&out)
    );
    assert_eq!(stdout(&out), "via sh\n");
    let out = fly_with(&fly, 60, "", &["-t", T, "watch", "-j", "nb/nobash"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

async fn clear_task_cache(b: Backend) {
    let s = Server::quickstart(b);
    let fly = Fly::new();
    fly.login(&s, T);
    set_pipeline(&fly, "c", &corpus_dir().join("clear-task-cache.yml"));
    let run = |want: &str| {
        let out = fly_with(
            &fly,
            120,
            "",
            &["-t", T, "trigger-job", "-j", "c/clear-task-cache", "-w"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", both(&out));
        assert!(stdout(&out).contains(want), "want {want}:\n{}", both(&out));
    };
    run("created-cache-file");
    run("the-cached-file-already-exists");
    let volumes = fly.ok(&["-t", T, "volumes"]);
    assert!(
        volumes.contains("task-cache  c/clear-task-cache/some-task"),
        "volumes:\n{volumes}"
    );
    let out = fly.ok(&[
        "-t",
        T,
        "clear-task-cache",
        "-j",
        "c/clear-task-cache",
        "-s",
        "some-task",
        "-n",
    ]);
    assert!(out.ends_with("1 caches removed\n"), "{out}");
    run("created-cache-file");
    // Declining the confirmation removes nothing.
    let out = fly_with(
        &fly,
        30,
        "n\n",
        &[
            "-t",
            T,
            "ctc",
            "-j",
            "c/clear-task-cache",
            "-s",
            "some-task",
        ],
    );
    assert!(stdout(&out).contains("bailing out"), "{}", both(&out));
    let out = fly.ok(&[
        "-t",
        T,
        "clear-task-cache",
        "-j",
        "c/clear-task-cache",
        "-s",
        "some-task",
        "-c",
        "elsewhere",
        "-n",
    ]);
    assert!(out.ends_with("0 caches removed\n"), "{out}");
}

/// `--intercept-idle-timeout`: output keeps a session open; silence closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercept_sessions_idle_past_the_timeout_are_closed() {
    let s = Server::quickstart_with(Backend::Embedded, &["--intercept-idle-timeout", "2s"]);
    let fly = Fly::new();
    fly.login(&s, T);
    set_pipeline(&fly, "w", &corpus_dir().join("wait-for-intercept.yml"));
    fly.ok(&["-t", T, "trigger-job", "-j", "w/wait"]);
    eventually(&fly, &["-t", T, "containers"], |o| {
        o.contains("task  wait-for-intercept")
    });
    let intercept = |cmd: &[&str]| {
        let mut args = vec![
            "-t",
            T,
            "intercept",
            "-j",
            "w/wait",
            "-s",
            "wait-for-intercept",
            "--",
        ];
        args.extend_from_slice(cmd);
        let started = Instant::now();
        let out = fly_with(&fly, 60, "", &args);
        (out, started.elapsed())
    };

    let (out, took) = intercept(&["sh", "-c", "for i in 1 2 3 4; do echo $i; sleep 1; done"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "1\n2\n3\n4\n");
    assert!(took >= Duration::from_secs(3), "ran for {took:?}");

    let (out, took) = intercept(&["sleep", "30"]);
    assert_eq!(out.status.code(), Some(255), "{}", both(&out));
    assert!(stderr(&out).contains("idle timeout"), "{}", both(&out));
    assert!(took < Duration::from_secs(20), "closed after {took:?}");
}
