//! Workers going away while builds run (issue 15): landing and retiring wait for the
//! builds on the worker, a killed worker is stalled within seconds, and a worker restarted
//! after a kill -9 reaps what its earlier run left (processes, mounts, cgroups, volume
//! copies). Real `concourse web` and `concourse worker` processes.

mod common;
mod worker_builds_support;

use common::Backend;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use worker_builds_support::{Cluster, WorkerProc, MAIN};

mod reap_support;

fn backend(test: &str) -> Backend {
    Backend::postgres(test).unwrap_or(Backend::Embedded)
}

const DEADLINE: Duration = Duration::from_secs(60);

/// A job whose task prints a marker, then waits until `gate` exists: the test decides when
/// the build may end.
fn gated_pipeline(gate: &Path) -> String {
    format!(
        "jobs:
- name: gated
  plan:
  - task: t
    config:
      platform: linux
      run:
        path: sh
        args: [-c, 'echo waiting-$((6*7)); while [ ! -e {} ]; do sleep 0.1; done; echo released']
",
        gate.display()
    )
}

fn set_pipeline(c: &Cluster, yaml: &str) {
    let file = c.work.path().join("gated.yml");
    std::fs::write(&file, yaml).expect("write pipeline");
    let file = file.to_string_lossy().into_owned();
    c.fly
        .ok(&["-t", MAIN, "set-pipeline", "-n", "-p", "p", "-c", &file]);
    c.fly.ok(&["-t", MAIN, "unpause-pipeline", "-p", "p"]);
}

/// Waits until worker `name` is in `state` and has heartbeated `beats` more times in it
/// (its expiry moved on): each of those heartbeats looked at whether it is drained.
async fn heartbeats_while(
    store: &dyn concourse::db::Store,
    name: &str,
    state: concourse::db::WorkerState,
    beats: usize,
) {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let row = store
            .worker(name)
            .await
            .expect("store")
            .expect("worker row");
        assert!(
            row.state == state || seen.is_empty(),
            "worker {name} left {state:?} while its build ran: now {:?}",
            row.state
        );
        if row.state == state {
            seen.insert(row.expires_at);
        }
        if seen.len() > beats {
            return;
        }
        assert!(Instant::now() < deadline, "worker {name} never heartbeated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_exit(w: &mut WorkerProc) {
    let deadline = Instant::now() + DEADLINE;
    while !w.exited() {
        assert!(Instant::now() < deadline, "worker {} never exited", w.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lands (through `concourse land-worker`) or retires (SIGUSR2) a worker mid-build: it
/// stays until the build is done, the build succeeds, then the worker leaves and exits.
async fn drains_for_the_build(c: &Cluster, name: &str, retire: bool) {
    use concourse::db::WorkerState;
    let mut worker = c.start_worker(name, &[]);
    c.eventually_state(name, "running").await;
    let gate = c.work.path().join(format!("{name}.gate"));
    set_pipeline(c, &gated_pipeline(&gate));
    let build = c.trigger(MAIN, "gated").await;
    c.events_until(build, &["waiting-42"], DEADLINE).await;

    if retire {
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(worker.pid() as i32, libc::SIGUSR2) }, 0);
    } else {
        let out = std::process::Command::new(common::bin())
            .args([
                "land-worker",
                "--name",
                name,
                "--tsa-host",
                &c.server.tsa_addr,
            ])
            .args([
                "--tsa-public-key",
                &c.work.path().join("tsa.pub").to_string_lossy(),
            ])
            .args(["--tsa-worker-private-key", &c.key.private()])
            .output()
            .expect("land-worker");
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let state = if retire {
        WorkerState::Retiring
    } else {
        WorkerState::Landing
    };
    // Three heartbeats (each asking the worker for its containers) see the build hold it.
    let store = c.server.store().await;
    heartbeats_while(store.as_ref(), name, state, 3).await;
    assert_eq!(
        c.get(&format!("/api/v1/builds/{build}")).await["status"],
        "started"
    );

    std::fs::write(&gate, b"").expect("open the gate");
    assert_eq!(c.finished(build, DEADLINE).await, "succeeded");
    let events = c.events_until(build, &["released"], DEADLINE).await;
    assert!(!events.contains("\"event\":\"error\""), "{events}");
    wait_exit(&mut worker).await;
    let row = c.worker(name).await;
    if retire {
        assert!(row.is_none(), "a retired worker is deleted: {row:?}");
    } else {
        assert_eq!(row.expect("landed row")["state"], "landed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_and_retiring_workers_wait_for_their_running_builds() {
    let c = Cluster::start(backend("worker_durability_drain"), &[]).await;
    drains_for_the_build(&c, "lander", false).await;
    drains_for_the_build(&c, "retiree", true).await;
}

/// With the default timings (heartbeat 3 s, TTL 6 s, GC interval 30 s) a killed worker
/// is `stalled` within one TTL and about 2 s (expiries are whole seconds, checked every
/// second). Killed just after registering, the worst case. Prints the time; no assertion
/// on it (a loaded machine is slower).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_stalled_within_seconds_by_default() {
    let c = Cluster::start_as_given(backend("worker_durability_stall"), &[]).await;
    let mut w = c.start_worker("victim", &[]);
    c.eventually_state("victim", "running").await;
    let killed = Instant::now();
    w.kill();
    c.eventually_state("victim", "stalled").await;
    eprintln!(
        "worker-loss detection: kill -9 -> stalled in {:.1}s (heartbeat 3s, TTL 6s)",
        killed.elapsed().as_secs_f64()
    );
}

/// kill -9 of a worker with a container running a process on a volume copy, then a
/// restart on the same work dir: the process, the container's mounts and cgroups and the
/// copy are gone; the copy's parent volume stays.
async fn restart_reaps(runtime: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let work = dir.path().join("work");
    let image = dir.path().join("image");
    let mut guard = reap_support::Leftovers::new(&work);
    // Its own handle: the two runtimes' tests run at once and cgroups are host-wide.
    let handle = format!("reap-{runtime}");
    guard.handles.push(handle.clone());
    let (rootfs, extra) = if runtime == "linux" {
        reap_support::busybox_rootfs(&image);
        let flag = ["--allowed-raw-rootfs", &image.to_string_lossy()].map(String::from);
        (format!("raw://{}", image.display()), flag.to_vec())
    } else {
        (String::new(), Vec::new())
    };
    let mut w = reap_support::Worker::start(&work, runtime, &extra);
    let (pids, copy) = w.container_with_process(&handle, &rootfs, dir.path()).await;
    guard.pids.extend(pids.iter().copied());
    assert!(
        reap_support::mounts_under(&work)
            .iter()
            .any(|m| m.contains(&copy)),
        "the copy is an overlay mount while it is in use"
    );
    w.kill();
    for pid in &pids {
        assert!(
            reap_support::alive(*pid),
            "process {pid} outlives the killed worker"
        );
    }

    let w = reap_support::Worker::start(&work, runtime, &extra);
    // Reaping signals the leftovers before the worker listens; a loaded machine may take a
    // moment to deliver SIGKILL to every process of the container.
    let deadline = Instant::now() + Duration::from_secs(20);
    for pid in &pids {
        while reap_support::alive(*pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!reap_support::alive(*pid), "process {pid} was reaped");
    }
    assert_eq!(reap_support::mounts_under(&work), Vec::<String>::new());
    assert_eq!(reap_support::cgroups_of(&handle), Vec::<PathBuf>::new());
    assert!(!work.join("containers").join(&handle).exists());
    let volumes = w.volume_handles().await;
    assert_eq!(
        volumes,
        vec!["parent".to_string()],
        "only the copy is reaped"
    );
    drop(w);
    guard.check_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_runtime_worker_reaps_its_killed_run() {
    if !reap_support::root_or_skip("process runtime reaping") {
        return;
    }
    restart_reaps("process").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_linux_runtime_worker_reaps_its_killed_run() {
    if !reap_support::root_or_skip("linux runtime reaping") || !reap_support::busybox() {
        return;
    }
    restart_reaps("linux").await;
}
