//! Secrets from var sources never reach a build's events (auth.md §11.3): not in the log,
//! not in the task config shadow of `initialize-task`/`start-task`, not in `error`
//! messages, and not as their base64 or URL-encoded forms. A public job's events are
//! readable anonymously, so a leak here is a leak to the world.

mod common;

use base64::Engine as _;
use common::{Backend, Fly, Server};

const SECRET: &str = "hunter2 s3cr3t/x";
const MULTI_LINE: [&str; 2] = ["first-secret-line", "second-secret-line"];

fn pipeline(b64: &str, url: &str) -> String {
    format!(
        r#"
var_sources:
- name: vault
  type: dummy
  config:
    vars:
      token: "{SECRET}"
      multi: "{}\n{}\n"
jobs:
- name: leak
  public: true
  plan:
  - task: echo
    config:
      platform: linux
      run:
        path: sh
        args:
        - -c
        - |
          echo "plain: $0"
          echo "multi: $1"
          echo "base64: {b64}"
          echo "url: {url}"
          printf %s "$0" | base64
        - ((vault:token))
        - ((vault:multi))
  # Errors with `missing image artifact source: <the secret>`.
  - task: broken
    image: ((vault:token))
    config:
      platform: linux
      run: {{path: "true"}}
"#,
        MULTI_LINE[0], MULTI_LINE[1]
    )
}

/// Runs the `leak` job on a quickstart started with `flags`; returns the build's event
/// stream, read anonymously as anyone may read a public job's build, and fly's output.
async fn leak_build(flags: &[&str]) -> (String, String) {
    let mut args = vec!["--worker-runtime", "process"];
    args.extend_from_slice(flags);
    let server = Server::quickstart_with(Backend::Embedded, &args);
    let fly = Fly::new();
    fly.login(&server, "qs");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pipeline.yml");
    std::fs::write(&file, pipeline(&base64_form(), &url_form())).expect("write pipeline");
    let file = file.to_string_lossy();
    fly.ok(&["-t", "qs", "set-pipeline", "-n", "-p", "p", "-c", &file]);
    fly.ok(&["-t", "qs", "unpause-pipeline", "-p", "p"]);
    fly.ok(&["-t", "qs", "expose-pipeline", "-p", "p"]);
    let out = fly.run(&["-t", "qs", "trigger-job", "-j", "p/leak", "-w"]);

    let builds: serde_json::Value =
        reqwest::get(server.api("/api/v1/teams/main/pipelines/p/jobs/leak/builds"))
            .await
            .expect("builds")
            .json()
            .await
            .expect("builds json");
    let id = builds[0]["id"].as_i64().expect("a build");
    let events = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        reqwest::get(server.api(&format!("/api/v1/builds/{id}/events")))
            .await
            .expect("events")
            .text()
            .await
            .expect("events body")
    })
    .await
    .expect("the finished build's event stream ends");
    assert!(events.contains("event: end"), "{events}");
    (events, common::stdout(&out))
}

fn base64_form() -> String {
    base64::engine::general_purpose::STANDARD.encode(SECRET)
}

fn url_form() -> String {
    url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect()
}

/// Whether some `event` in the stream has `((redacted))` in its data.
fn redacted_in(events: &str, event: &str) -> bool {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter(|e| e["event"] == event)
        .any(|e| e["data"].to_string().contains("((redacted))"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_used_in_task_args_are_redacted_from_the_build_events() {
    // Upstream's opt-in flag is accepted and changes nothing: redaction is on anyway.
    let (events, fly_out) = leak_build(&["--enable-redact-secrets"]).await;
    assert!(fly_out.contains("plain: ((redacted))"), "{fly_out}");

    let percent = percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    for leak in [
        SECRET,
        &base64_form(),
        &url_form(),
        &percent,
        MULTI_LINE[0],
        MULTI_LINE[1],
        "s3cr3t",
    ] {
        assert!(!events.contains(leak), "{leak:?} leaked:\n{events}");
    }
    for event in ["initialize-task", "start-task", "log", "error"] {
        assert!(redacted_in(&events, event), "{event}:\n{events}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_redact_secrets_shows_the_values() {
    let (events, _) = leak_build(&["--disable-redact-secrets"]).await;
    assert!(events.contains(SECRET), "{events}");
    assert!(!events.contains("((redacted))"), "{events}");
}
