//! Builds on real `concourse worker` processes registered over SSH with `concourse web`
//! (the workers issue's "done when" list): two workers sharing builds, an external worker
//! in its own network namespace reached only through the TSA tunnel, a killed worker,
//! worker keys and team workers, and a web restart mid-build. PostgreSQL when configured,
//! else the embedded store.

mod common;
mod worker_builds_support;

use common::{stdout, Backend};
use std::time::{Duration, Instant};
use worker_builds_support::{assert_whole_once, netns, Cluster, Key, COUNTING, MAIN, SLEEPING};

fn backend(test: &str) -> Backend {
    Backend::postgres(test).unwrap_or(Backend::Embedded)
}

/// The `message` of the first `error` event in an event stream.
fn error_message(events: &str) -> String {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .find(|e| e["event"] == "error")
        .and_then(|e| e["data"]["message"].as_str().map(String::from))
        .unwrap_or_default()
}

/// The last event of a finished build's stream: everything before it is complete.
const END: &str = "event: end";

const BUILD_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_both_run_a_pipelines_builds() {
    let c = Cluster::start(backend("worker_builds_two"), &[]).await;
    // One tunnelled through the TSA, one registered at its own address.
    let _w1 = c.start_worker("w1", &[]);
    let _w2 = c.start_worker("w2", &["--peer-address", "127.0.0.1"]);
    let w1 = c.eventually_state("w1", "running").await;
    let w2 = c.eventually_state("w2", "running").await;

    let list = c.fly.ok(&["-t", MAIN, "workers"]);
    assert!(list.contains("w1") && list.contains("w2"), "{list}");
    assert!(list.contains("running"), "{list}");
    let detail = c.fly.ok(&["-t", MAIN, "workers", "-d"]);
    for w in [&w1, &w2] {
        let addr = w["addr"].as_str().expect("addr");
        let bc = w["baggageclaim_url"].as_str().expect("url");
        assert!(detail.contains(addr), "{addr} missing from\n{detail}");
        assert!(detail.contains(bc), "{bc} missing from\n{detail}");
    }

    c.set_pipeline(MAIN);
    // Placement spreads ties at random: 16 builds all on one worker is a 1-in-32768 fluke.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..16 {
        seen.insert(c.run_job(MAIN, "p/quick"));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["w1", "w2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_worker_in_its_own_netns_runs_builds_through_the_tunnel() {
    if !worker_builds_support::root_or_skip("netns worker test") {
        return;
    }
    assert!(
        netns::tools_present() || std::env::var("CI").as_deref() != Ok("true"),
        "ip and iptables are required in CI"
    );
    if !netns::tools_present() {
        eprintln!("skipping the netns worker test: ip or iptables is not installed");
        return;
    }
    // Before the web node: its TSA listens on the host end of the veth pair.
    let ns = netns::NetNs::create();
    let c = Cluster::start(
        backend("worker_builds_netns"),
        &["--tsa-bind-ip", &ns.host_ip],
    )
    .await;
    let tsa_port = c.server.tsa_addr.rsplit(':').next().expect("port");
    let tsa_host = format!("{}:{tsa_port}", ns.host_ip);
    let mut cmd = ns.exec();
    cmd.arg(common::bin())
        .args(c.worker_args("ext", &tsa_host, &c.key))
        // Loopback inside the namespace: nothing outside can reach these servers.
        .args(["--bind-ip", "127.0.0.1", "--bind-port", "7777"])
        .args(["--baggageclaim-bind-ip", "127.0.0.1"])
        .args(["--baggageclaim-bind-port", "7788"]);
    let _worker = worker_builds_support::spawn_worker("ext", cmd);
    let w = c.eventually_state("ext", "running").await;

    // Registered with forward-worker: its addresses are tunnel ends on the web node.
    let addr = w["addr"].as_str().expect("addr");
    let bc = w["baggageclaim_url"].as_str().expect("url");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(bc.starts_with("http://127.0.0.1:"), "{bc}");
    // The web node's side cannot open a connection to the worker's own address.
    for port in [7777, 7788, 22] {
        let target = format!("{}:{port}", ns.ns_ip);
        let attempt = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(&target),
        )
        .await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "the host reached {target} directly"
        );
    }

    c.set_pipeline(MAIN);
    assert_eq!(c.run_job(MAIN, "p/quick"), "ext");

    // A partition (no RST, no FIN: the tunnel just goes quiet) stalls the worker, and the
    // build on it errors naming it instead of waiting on the silent stream.
    let build = c.trigger(MAIN, "sleepy").await;
    c.events_until(build, &[SLEEPING], BUILD_DEADLINE).await;
    ns.partition();
    c.eventually_state("ext", "stalled").await;
    assert_eq!(c.finished(build, BUILD_DEADLINE).await, "errored");
    let events = c.events_until(build, &[END], BUILD_DEADLINE).await;
    let message = error_message(&events);
    assert_eq!(
        message, "worker ext stalled (it stopped heartbeating)",
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_stalls_errors_its_build_and_comes_back() {
    let c = Cluster::start(backend("worker_builds_kill"), &[]).await;
    let mut workers = [c.start_worker("w1", &[]), c.start_worker("w2", &[])];
    c.eventually_state("w1", "running").await;
    c.eventually_state("w2", "running").await;
    c.set_pipeline(MAIN);

    let build = c.trigger(MAIN, "sleepy").await;
    let text = c
        .events_until(build, &["selected_worker", SLEEPING], BUILD_DEADLINE)
        .await;
    let victim = worker_builds_support::selected_worker(&text).expect("selected worker");
    let survivor = if victim == "w1" { "w2" } else { "w1" };
    let at = workers
        .iter()
        .position(|w| w.name == victim)
        .expect("victim");
    let killed = Instant::now();
    workers[at].kill();

    // TTL is two heartbeats (2 s), collected every second.
    c.eventually_state(&victim, "stalled").await;
    let stalled_after = killed.elapsed();
    assert!(stalled_after < Duration::from_secs(10), "{stalled_after:?}");
    assert_eq!(c.finished(build, BUILD_DEADLINE).await, "errored");
    let events = c.events_until(build, &[END], BUILD_DEADLINE).await;
    let message = error_message(&events);
    assert!(
        message.contains(&format!("worker {victim}")),
        "the error names {victim}: {message:?}\n{events}"
    );
    eprintln!(
        "build on killed worker {victim} errored after {:?}: {message}",
        killed.elapsed()
    );

    assert_eq!(c.run_job(MAIN, "p/quick"), survivor);

    workers[at] = c.start_worker(&victim, &[]);
    c.eventually_state(&victim, "running").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_keys_are_refused_and_team_workers_run_only_their_teams_builds() {
    let team_key = Key::new();
    let team_keys = format!("team-a:{}", team_key.public());
    let c = Cluster::start(
        backend("worker_builds_teams"),
        &["--tsa-team-authorized-keys", &team_keys],
    )
    .await;

    let stranger = Key::new();
    let refused = c.start_worker_with("stranger", &stranger, &[]);
    refused.wait_for_log("not authorized", Duration::from_secs(30));
    assert!(c.worker("stranger").await.is_none());
    drop(refused);

    c.fly.ok(&[
        "-t",
        MAIN,
        "set-team",
        "-n",
        "team-a",
        "--local-user",
        "test",
        "--non-interactive",
    ]);
    c.fly.ok(&[
        "-t",
        "a",
        "login",
        "-c",
        &c.server.url,
        "-n",
        "team-a",
        "-u",
        common::USER,
        "-p",
        common::PASS,
    ]);
    let _team_worker = c.start_worker_with("team-w", &team_key, &["--team", "team-a"]);
    let w = c.eventually_state("team-w", "running").await;
    assert_eq!(w["team"], "team-a");

    c.set_pipeline("a");
    c.set_pipeline(MAIN);
    assert_eq!(c.run_job("a", "p/quick"), "team-w");

    // Main's build has no worker while only team-a's is registered...
    let build = c.trigger(MAIN, "quick").await;
    c.events_until(build, &["waiting-for-worker"], BUILD_DEADLINE)
        .await;
    let b = c.get(&format!("/api/v1/builds/{build}")).await;
    assert_eq!(b["status"], "started", "{b}");
    // ...and runs as soon as a global one is.
    let _global = c.start_worker("global-w", &[]);
    assert_eq!(c.finished(build, BUILD_DEADLINE).await, "succeeded");
    let text = c
        .events_until(build, &["selected_worker"], BUILD_DEADLINE)
        .await;
    assert_eq!(
        worker_builds_support::selected_worker(&text).as_deref(),
        Some("global-w")
    );
}

/// kill -9 of the web node mid-build, and a restart: the build is not lost. The restarted
/// node adopts it once its owner's lease lapses, replays the steps that finished (they do
/// not run again), re-attaches to the running task's process on the worker and streams the
/// rest of its output, each line exactly once, then runs the rest of the plan with the
/// task's output. The worker reconnects to the restarted TSA and takes new builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_killed_mid_build_resumes_it_after_restart_and_the_worker_reregisters() {
    let c = Cluster::start(backend("worker_builds_restart"), &[]).await;
    let _w = c.start_worker("w1", &[]);
    let before = c.eventually_state("w1", "running").await;
    c.set_pipeline(MAIN);
    let build = c.trigger(MAIN, "resumable").await;
    c.events_until(build, &[COUNTING], BUILD_DEADLINE).await;

    let c = c.restart_web().await;

    assert_eq!(c.finished(build, BUILD_DEADLINE).await, "succeeded");
    let events = c.events_until(build, &[END], BUILD_DEADLINE).await;
    assert_whole_once(&events);
    // A new tunnel: the re-registered worker has a new address on the new node.
    let old = before["addr"].clone();
    c.eventually_worker("w1", "running", |w| w["addr"] != old)
        .await;
    let out = c.trigger_and_watch(MAIN, "p/quick");
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));
}

/// SIGTERM of `concourse web` (not quickstart) past its `--shutdown-grace-period` hands
/// the running build over instead of ending it: the task keeps running on the worker, and
/// the restarted node resumes the build at once (the lease was let go, nothing to wait out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_web_hands_its_running_build_over_to_the_next_node() {
    let mut c = Cluster::start(
        backend("worker_builds_handover"),
        &["--shutdown-grace-period", "1s"],
    )
    .await;
    let _w = c.start_worker("w1", &[]);
    c.eventually_state("w1", "running").await;
    c.set_pipeline(MAIN);
    let build = c.trigger(MAIN, "resumable").await;
    c.events_until(build, &[COUNTING], BUILD_DEADLINE).await;

    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(c.server.pid() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + BUILD_DEADLINE;
    while !c.server.exited() {
        assert!(Instant::now() < deadline, "web never exited after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = c.restart_web().await;

    // Past a resumed task's patience for its worker: a lost worker shows as its error.
    assert_eq!(c.finished(build, 2 * BUILD_DEADLINE).await, "succeeded");
    let events = c.events_until(build, &[END], BUILD_DEADLINE).await;
    assert_whole_once(&events);
}

/// A step's `timeout` is a deadline: it counts from the step's start across a web restart.
/// The task would end on its own 16s after it started; its 8s timeout passed while no web
/// node ran the build (the restarted node, under a new id, waits 8–10s for the killed one's
/// hold to lapse), so the node that resumes it kills the process at once and the step
/// fails. A timeout counted afresh from the resume would have let it succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_counts_from_the_step_start_across_a_web_restart() {
    let c = Cluster::start(backend("worker_builds_deadline"), &[]).await;
    let _w = c.start_worker("w1", &[]);
    c.eventually_state("w1", "running").await;
    c.set_pipeline(MAIN);
    let build = c.trigger(MAIN, "deadline").await;
    c.events_until(build, &["slow-42"], BUILD_DEADLINE).await;

    // As a new node: it waits out the dead node's hold on the build before resuming it.
    std::fs::remove_file(c.server.dir.path().join("data/node-id")).expect("node-id");
    let c = c.restart_web().await;

    assert_eq!(c.finished(build, BUILD_DEADLINE).await, "failed");
    let events = c.events_until(build, &[END], BUILD_DEADLINE).await;
    assert_eq!(error_message(&events), "timeout exceeded", "{events}");
}
