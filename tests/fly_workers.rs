//! `fly workers`, `prune-worker` and `land-worker` against a real `concourse web`, with
//! workers put straight into its store (no beacon needed to have stalled or outdated ones).

mod common;

use common::{stderr, stdout, Backend, Fly, Server};
use concourse::proto::worker::{Worker, WorkerState};
use serde_json::Value;

const T: &str = "ws";

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
                if let Some(b) = Backend::postgres(concat!("fly_workers::", stringify!($name))) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

on_both_stores!(workers_are_listed_pruned_and_landed);

fn worker(name: &str, team: &str, version: &str, state: Option<WorkerState>) -> Worker {
    Worker {
        name: name.into(),
        garden_addr: format!("10.0.0.1:{}", 7777),
        baggageclaim_url: "http://10.0.0.1:7788".into(),
        platform: "linux".into(),
        team: team.into(),
        version: version.into(),
        start_time: chrono::Utc::now().timestamp() - 3 * 86400,
        state,
        ..Worker::default()
    }
}

async fn workers_are_listed_pruned_and_landed(b: Backend) {
    let s = Server::start(b);
    let fly = Fly::new();
    fly.login(&s, T);
    let store = s.store().await;
    let now = chrono::Utc::now().timestamp();
    let mut alpha = worker("alpha", "", "3.0", None);
    alpha.active_containers = 2;
    alpha.tags = Some(vec!["a".into(), "b".into()]);
    for w in [
        worker("gamma", "", "3.0", Some(WorkerState::Stalled)),
        worker("beta", "main", "2.0", None),
        alpha,
    ] {
        store
            .register_worker(&w, None, now)
            .await
            .expect("register");
    }

    // Off a TTY: one table, running then outdated then stalled, each sorted by name.
    assert_eq!(
        fly.ok(&["-t", T, "workers"]),
        "alpha  2  linux  a, b  none  running  3.0  3d\n\
         beta   0  linux  none  main  running  2.0  3d\n\
         gamma  0  linux  none  none  stalled  3.0  3d\n"
    );
    let details = fly.ok(&["-t", T, "--print-table-headers", "workers", "-d"]);
    let mut lines = details.lines();
    assert_eq!(
        lines.next().map(str::trim_end),
        Some("name   containers  platform  tags  team  state    version  age  garden address  baggageclaim url      active tasks  resource types")
    );
    assert_eq!(
        lines.next().map(str::trim_end),
        Some("alpha  2           linux     a, b  none  running  3.0      3d   10.0.0.1:7777   http://10.0.0.1:7788  0             none")
    );
    let json: Value = serde_json::from_str(&fly.ok(&["-t", T, "workers", "--json"])).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(3));
    assert_eq!(json[0]["name"], "alpha");
    assert_eq!(json[0]["addr"], "10.0.0.1:7777");
    assert_eq!(json[2]["state"], "stalled");

    let out = fly.run(&["-t", T, "prune-worker"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Either a worker name or --all-stalled are required\n"
    );
    let out = fly.run(&["-t", T, "prune-worker", "-w", "alpha"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: cannot prune running worker\n");
    assert_eq!(
        fly.ok(&["-t", T, "prune-worker", "--all-stalled"]),
        "pruned 'gamma'\n"
    );
    assert_eq!(
        fly.ok(&["-t", T, "pw", "-a"]),
        "WARNING: No stalled workers found.\n"
    );
    assert!(store.worker("gamma").await.expect("worker").is_none());

    assert_eq!(
        fly.ok(&["-t", T, "land-worker", "-w", "beta"]),
        "landed 'beta'\n"
    );
    let beta = store.worker("beta").await.expect("worker").expect("beta");
    assert_eq!(beta.state, WorkerState::Landing);
    assert_eq!(fly.ok(&["-t", T, "pw", "-w", "beta"]), "pruned 'beta'\n");
    let out = fly.run(&["-t", T, "land-worker", "-w", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: resource not found\n");
    assert_eq!(stdout(&out), "");
}
