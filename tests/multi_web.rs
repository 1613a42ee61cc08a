//! Two `concourse web` processes on one PostgreSQL database behave like one ATC: a worker
//! registered through either TSA serves both, one node schedules (the `scheduler` lease) so
//! each new trigger version gets one build, an abort received by the node not running a
//! build stops it there, listings answered by one node show another's changes at once,
//! and when the scheduling node dies the other takes over.
//! PostgreSQL only: skips (with the reason printed) without CONCOURSE_TEST_POSTGRES_HOST,
//! fails in CI.

mod common;
// Only its `Leftovers` guard is used here.
#[allow(dead_code)]
mod reap_support;
mod worker_builds_support;

use common::{Backend, Server};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use worker_builds_support::{
    assert_whole_once, selected_worker, spawn_worker, tsa_public_key, Cluster, WorkerProc,
    COUNTING, FAST, MAIN,
};

/// fly target of the second node.
const NODE2: &str = "node2";

/// A `trigger: true` mock resource checked only on request (each `check-resource -f` makes
/// one new version), a sleeper with an `ensure` hook, and a quick job.
const PIPELINE: &str = "resources:
- name: r
  type: mock
  check_every: never
  source: {no_initial_version: true}
jobs:
- name: triggered
  plan:
  - get: r
    trigger: true
- name: sleepy
  plan:
  - task: t
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo sleeping-$((6*7)); sleep 120']}
  ensure:
    task: cleanup
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo ensure-ran-$((1+1))']}
- name: quick
  plan:
  - task: t
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo quick-$((2+3))']}
";

/// A client of the test's PostgreSQL schema, and the schema's name.
async fn pg(backend: &Backend) -> Option<(tokio_postgres::Client, String)> {
    let Backend::Postgres(guard) = backend else {
        return None;
    };
    let config = guard.config();
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host)
        .port(config.port)
        .user(&config.user)
        .dbname(&config.database);
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let schema = config.schema.clone().expect("a test schema");
    Some((client, schema))
}

/// The pid in the `scheduler` lease's holder (`<pid>-<random>`), if anyone holds it.
async fn scheduler_pid(backend: &Backend) -> Option<u32> {
    let (client, schema) = pg(backend).await?;
    let row = client
        .query_opt(
            &format!("SELECT holder FROM {schema}.leases WHERE name = 'scheduler'"),
            &[],
        )
        .await
        .expect("reading the lease")?;
    let holder: String = row.get(0);
    holder.split('-').next()?.parse().ok()
}

/// Waits until a node with one of `pids` holds the scheduler lease; returns its pid.
async fn eventual_scheduler(backend: &Backend, pids: &[u32], within: Duration) -> u32 {
    let deadline = Instant::now() + within;
    loop {
        let pid = scheduler_pid(backend).await;
        if let Some(pid) = pid.filter(|p| pids.contains(p)) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "none of {pids:?} took the lease; holder {pid:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `triggered` job's builds as seen through `server`.
async fn triggered_builds(server: &Server, token: &str) -> Vec<Value> {
    let builds = common::get_json(
        server,
        token,
        "/api/v1/teams/main/pipelines/p/jobs/triggered/builds",
    )
    .await;
    builds.as_array().cloned().unwrap_or_default()
}

/// Makes version `v` of `r` through fly target `target`, then waits until the job has
/// `want` builds and checks that no further build comes within a few scheduling passes.
async fn one_build_per_version(c: &Cluster, via: &Server, target: &str, v: &str, want: usize) {
    c.fly.ok(&[
        "-t",
        target,
        "check-resource",
        "-r",
        "p/r",
        "-f",
        &format!("version:{v}"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while triggered_builds(via, &c.token).await.len() < want {
        assert!(Instant::now() < deadline, "version {v} triggered no build");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both nodes pass every second: three seconds would show a duplicate.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let builds = triggered_builds(via, &c.token).await;
    assert_eq!(
        builds.len(),
        want,
        "exactly one build per version ({v}): {builds:#?}"
    );
}

/// A second web node on the cluster's database, authorizing the cluster's worker key.
fn second_node(c: &Cluster) -> Server {
    let public = c.key.public();
    let mut args = vec!["--tsa-authorized-keys", &public];
    args.extend_from_slice(FAST);
    Server::start_with(c.server.backend.clone(), &args)
}

/// `concourse worker` registering through `node`'s TSA only.
fn worker_via(c: &Cluster, node: &Server, name: &str) -> WorkerProc {
    let tsa_pub = c.work.path().join(format!("{name}-tsa.pub"));
    std::fs::write(&tsa_pub, tsa_public_key(node)).expect("write");
    let mut args = c.worker_args(name, &node.tsa_addr, &c.key);
    let at = args
        .iter()
        .position(|a| a == "--tsa-public-key")
        .expect("flag");
    args[at + 1] = tsa_pub.to_string_lossy().into_owned();
    let mut cmd = Command::new(common::bin());
    cmd.args(args)
        .args(["--bind-ip", "127.0.0.1", "--bind-port", "0"])
        .args(["--baggageclaim-bind-ip", "127.0.0.1"])
        .args(["--baggageclaim-bind-port", "0"]);
    spawn_worker(name, cmd)
}

async fn worker_running_on(server: &Server, token: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = common::get_json(server, token, "/api/v1/workers").await;
        let w = all
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["name"] == name).cloned());
        if w.as_ref().is_some_and(|w| w["state"] == "running") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not running via {}: {w:?}",
            server.url
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_web_nodes_on_one_database_act_as_one() {
    let Some(backend) = Backend::postgres("two_web_nodes_on_one_database_act_as_one") else {
        return;
    };
    let mut c = Cluster::start(backend.clone(), &[]).await;
    let mut node2 = Some(second_node(&c));
    let n2 = node2.as_ref().expect("node 2");
    c.fly.login(n2, NODE2);

    // (a) One worker, registered through the second node's TSA, serves both.
    let _worker = worker_via(&c, n2, "w");
    worker_running_on(n2, &c.token, "w").await;
    worker_running_on(&c.server, &c.token, "w").await;

    let file = c.work.path().join("p.yml");
    std::fs::write(&file, PIPELINE).expect("write pipeline");
    let file = file.to_string_lossy().into_owned();
    c.fly
        .ok(&["-t", MAIN, "set-pipeline", "-n", "-p", "p", "-c", &file]);
    c.fly.ok(&["-t", MAIN, "unpause-pipeline", "-p", "p"]);

    // (b) Each new version of a trigger resource gets one build, whichever node was asked.
    one_build_per_version(&c, &c.server, MAIN, "v1", 1).await;
    one_build_per_version(&c, n2, NODE2, "v2", 2).await;

    // (c) A build triggered through node 1 runs on the worker (registered via node 2).
    let quick = c.trigger("main", "quick").await;
    let events = c
        .events_until(
            quick,
            &["quick-5", "selected_worker"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(selected_worker(&events).as_deref(), Some("w"), "{events}");
    assert_eq!(
        c.finished(quick, Duration::from_secs(60)).await,
        "succeeded"
    );

    // (c') Listings are never stale across nodes: node 1 has answered them (and kept the
    // bodies); a job paused through node 2 is paused in node 1's very next answers.
    let paused = |jobs: &Value| {
        jobs.as_array()
            .and_then(|js| js.iter().find(|j| j["name"] == "quick"))
            .map(|j| j["paused"] == true)
    };
    let listings = ["/api/v1/jobs", "/api/v1/teams/main/pipelines/p/jobs"];
    for path in listings {
        assert_eq!(
            paused(&common::get_json(&c.server, &c.token, path).await),
            Some(false)
        );
        assert_eq!(
            paused(&common::get_json(&c.server, &c.token, path).await),
            Some(false)
        );
    }
    c.fly.ok(&["-t", NODE2, "pause-job", "-j", "p/quick"]);
    for path in listings {
        assert_eq!(
            paused(&common::get_json(&c.server, &c.token, path).await),
            Some(true),
            "{path}"
        );
    }
    c.fly.ok(&["-t", NODE2, "unpause-job", "-j", "p/quick"]);

    // (d) A build aborted through the node that does not run it (the scheduler starts
    // pending builds, so the lease holder runs it) stops promptly, with its hook.
    let pids = [c.server.pid(), n2.pid()];
    let leader = eventual_scheduler(&backend, &pids, Duration::from_secs(10)).await;
    let other = if leader == c.server.pid() {
        n2
    } else {
        &c.server
    };
    let sleepy = c.trigger("main", "sleepy").await;
    c.events_until(sleepy, &["sleeping-42"], Duration::from_secs(60))
        .await;
    let aborted_at = Instant::now();
    let resp = reqwest::Client::new()
        .put(other.api(&format!("/api/v1/builds/{sleepy}/abort")))
        .bearer_auth(&c.token)
        .send()
        .await
        .expect("abort");
    assert_eq!(resp.status(), 204);
    assert_eq!(c.finished(sleepy, Duration::from_secs(30)).await, "aborted");
    let took = aborted_at.elapsed();
    assert!(took < Duration::from_secs(15), "abort took {took:?}");
    let events = c
        .events_until(
            sleepy,
            &["ensure-ran-2", "event: end"],
            Duration::from_secs(30),
        )
        .await;
    let statuses = events.matches("\"event\":\"status\"").count();
    assert_eq!(statuses, 2, "started, then aborted once:\n{events}");

    // (e) Killing the scheduling node hands scheduling to the other one.
    let mut node2 = node2.take().expect("node 2");
    if leader == c.server.pid() {
        // The worker and fly target of node 2 carry on; node 2 accepts node 1's token
        // (tokens live in the database).
        c.server.kill();
        eventual_scheduler(&backend, &[node2.pid()], Duration::from_secs(20)).await;
        one_build_per_version(&c, &node2, NODE2, "v3", 3).await;
    } else {
        node2.kill();
        // The worker registered through node 2's TSA only: bring it back through node 1.
        drop(_worker);
        let _worker = worker_via(&c, &c.server, "w");
        eventual_scheduler(&backend, &[c.server.pid()], Duration::from_secs(20)).await;
        one_build_per_version(&c, &c.server, MAIN, "v3", 3).await;
    }
}

/// The owner of a build: a web node's id (kept in its data directory's `node-id`).
async fn build_owner(backend: &Backend, build: i64) -> Option<String> {
    let (client, schema) = pg(backend).await?;
    let row = client
        .query_opt(
            &format!("SELECT owner FROM {schema}.builds WHERE id = $1"),
            &[&build],
        )
        .await
        .expect("reading the owner")?;
    row.get(0)
}

fn node_id(server: &Server) -> String {
    std::fs::read_to_string(server.dir.path().join("data/node-id")).expect("node-id")
}

/// kill -9 of the web node running a build, in a cluster of two: the other node adopts the
/// build once the dead node's hold on it lapses, and resumes it where it was: the task's
/// process on the worker (which reconnects through the surviving node's TSA) is re-attached,
/// every line of its output is in the log once, and the plan goes on to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_outlives_the_web_node_running_it() {
    let Some(backend) = Backend::postgres("a_build_outlives_the_web_node_running_it") else {
        return;
    };
    let mut c = Cluster::start(backend.clone(), &[]).await;
    let mut node2 = second_node(&c);
    // One worker that knows both TSAs (and both host keys).
    let keys = c.work.path().join("both-tsa.pub");
    let both = format!(
        "{}\n{}\n",
        tsa_public_key(&c.server),
        tsa_public_key(&node2)
    );
    std::fs::write(&keys, both).expect("write");
    let hosts = format!("{},{}", c.server.tsa_addr, node2.tsa_addr);
    let mut args = c.worker_args("w", &hosts, &c.key);
    let at = args
        .iter()
        .position(|a| a == "--tsa-public-key")
        .expect("flag");
    args[at + 1] = keys.to_string_lossy().into_owned();
    let mut cmd = Command::new(common::bin());
    cmd.args(args)
        .args(["--bind-ip", "127.0.0.1", "--bind-port", "0"])
        .args(["--baggageclaim-bind-ip", "127.0.0.1"])
        .args(["--baggageclaim-bind-port", "0"]);
    // Dropped after the worker: what its killed process leaves mounted goes with the test.
    // (A build resumed through another node can leave a copy-on-write input volume behind:
    // its cleanup skips a worker that is re-registering; see the closing note.)
    let _leftovers = reap_support::Leftovers::new(c.work.path());
    let _worker = spawn_worker("w", cmd);
    worker_running_on(&c.server, &c.token, "w").await;

    c.set_pipeline(MAIN);
    let build = c.trigger("main", "resumable").await;
    c.events_until(build, &[COUNTING], Duration::from_secs(60))
        .await;
    let owner = build_owner(&backend, build).await.expect("an owner");
    // Keep the survivor as the cluster's server, so its API is the one asked from now on.
    if owner == node_id(&c.server) {
        std::mem::swap(&mut c.server, &mut node2);
    }
    assert_eq!(node_id(&node2), owner, "the owner is one of the two nodes");
    node2.kill();

    assert_eq!(
        c.finished(build, Duration::from_secs(90)).await,
        "succeeded"
    );
    let events = c
        .events_until(build, &["event: end"], Duration::from_secs(30))
        .await;
    assert_whole_once(&events);
    assert_eq!(build_owner(&backend, build).await, Some(node_id(&c.server)));
}
