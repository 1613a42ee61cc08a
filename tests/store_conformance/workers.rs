//! Worker registration, heartbeats and the lifecycle transitions (worker-protocols.md §3.5–3.6).

use super::*;
use std::time::Duration;

pub fn payload(name: &str, team: &str) -> Worker {
    Worker {
        garden_addr: "127.0.0.1:7777".into(),
        baggageclaim_url: "http://127.0.0.1:7788".into(),
        platform: "linux".into(),
        name: name.into(),
        team: team.into(),
        version: "3.0".into(),
        ..Worker::default()
    }
}

const TTL: Option<Duration> = Some(Duration::from_secs(30));

async fn state_of(store: &Arc<dyn Store>, name: &str) -> Option<WorkerState> {
    store.worker(name).await.unwrap().map(|w| w.state)
}

pub async fn workers_register_by_name_and_keep_their_team(h: &Harness) {
    let store = &h.store;
    let main = team(store, "main").await;
    team(store, "other").await;

    let b = store
        .register_worker(&payload("b", ""), TTL, 100)
        .await
        .unwrap();
    assert_eq!(b.state, WorkerState::Running);
    assert_eq!(b.worker.state, Some(WorkerState::Running));
    assert_eq!(b.expires_at, 130);
    assert_eq!(b.team_id, None);
    let a = store
        .register_worker(&payload("a", "main"), None, 100)
        .await
        .unwrap();
    assert_eq!(a.team_id, Some(main.id));
    assert_eq!(a.expires_at, 0, "no ttl never expires");

    let names: Vec<String> = store
        .workers()
        .await
        .unwrap()
        .iter()
        .map(|w| w.name().to_string())
        .collect();
    assert_eq!(names, vec!["a", "b"]);

    for (name, team) in [("b", "main"), ("a", ""), ("a", "other")] {
        let err = store
            .register_worker(&payload(name, team), TTL, 100)
            .await
            .expect_err("a name taken by another team");
        assert!(
            matches!(&err, StoreError::Conflict(m) if m == WORKER_TEAM_CONFLICT),
            "{err}"
        );
    }
    assert_eq!(
        store.worker("b").await.unwrap().unwrap().team_id,
        None,
        "unchanged"
    );
    assert!(matches!(
        store
            .register_worker(&payload("c", "missing"), TTL, 100)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.worker("c").await.unwrap().is_none());

    // Re-registering replaces the payload and resets a draining worker to running.
    store.land_worker("b").await.unwrap().expect("known");
    let mut changed = payload("b", "");
    changed.platform = "darwin".into();
    let again = store
        .register_worker(&changed, Some(Duration::from_millis(1500)), 200)
        .await
        .unwrap();
    assert_eq!(again.state, WorkerState::Running);
    assert_eq!(again.worker.platform, "darwin");
    assert_eq!(again.expires_at, 202, "ttl rounded up to whole seconds");
}

pub async fn heartbeats_update_counters_and_keep_draining_states(h: &Harness) {
    let store = &h.store;
    store
        .register_worker(&payload("w", ""), TTL, 100)
        .await
        .unwrap();
    let beat = store
        .heartbeat_worker("w", 3, 4, TTL, 110)
        .await
        .unwrap()
        .expect("known worker");
    assert_eq!(beat.expires_at, 140);
    assert_eq!(beat.worker.active_containers, 3);
    assert_eq!(beat.worker.active_volumes, 4);
    assert_eq!(beat.worker.garden_addr, "127.0.0.1:7777", "payload kept");
    assert!(store
        .heartbeat_worker("gone", 0, 0, TTL, 110)
        .await
        .unwrap()
        .is_none());

    // A stalled worker recovers on its next heartbeat.
    assert_eq!(
        store.stall_unresponsive_workers(141).await.unwrap(),
        vec!["w"]
    );
    assert_eq!(state_of(store, "w").await, Some(WorkerState::Stalled));
    let beat = store
        .heartbeat_worker("w", 0, 0, TTL, 150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(beat.state, WorkerState::Running);

    store.land_worker("w").await.unwrap();
    let beat = store
        .heartbeat_worker("w", 0, 0, TTL, 160)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(beat.state, WorkerState::Landing);
    store.retire_worker("w").await.unwrap();
    let beat = store
        .heartbeat_worker("w", 0, 0, TTL, 170)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(beat.state, WorkerState::Retiring);
}

pub async fn unresponsive_workers_stall_once_and_ephemeral_ones_are_deleted(h: &Harness) {
    let store = &h.store;
    store
        .register_worker(&payload("late", ""), TTL, 100)
        .await
        .unwrap();
    store
        .register_worker(&payload("fresh", ""), TTL, 200)
        .await
        .unwrap();
    store
        .register_worker(&payload("forever", ""), None, 0)
        .await
        .unwrap();
    let mut ephemeral = payload("eph", "");
    ephemeral.ephemeral = true;
    store.register_worker(&ephemeral, TTL, 100).await.unwrap();
    store
        .register_worker(&payload("landing", ""), TTL, 100)
        .await
        .unwrap();
    store.land_worker("landing").await.unwrap();

    assert_eq!(
        store.stall_unresponsive_workers(131).await.unwrap(),
        vec!["late"]
    );
    let stalled = store.worker("late").await.unwrap().unwrap();
    assert_eq!(stalled.state, WorkerState::Stalled);
    assert_eq!(stalled.expires_at, 0, "expiry cleared");
    assert!(
        store
            .stall_unresponsive_workers(131)
            .await
            .unwrap()
            .is_empty(),
        "once"
    );
    assert_eq!(
        state_of(store, "eph").await,
        Some(WorkerState::Running),
        "ephemeral never stalls"
    );
    assert_eq!(state_of(store, "landing").await, Some(WorkerState::Landing));

    // A second web node racing on the same transition gets nothing.
    let other = h.reopen().await;
    assert!(other
        .stall_unresponsive_workers(131)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        store.delete_expired_ephemeral_workers(131).await.unwrap(),
        vec!["eph"]
    );
    assert!(store.worker("eph").await.unwrap().is_none());
    assert!(store
        .delete_expired_ephemeral_workers(131)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(state_of(store, "fresh").await, Some(WorkerState::Running));
}

pub async fn landing_retiring_pruning_and_deleting(h: &Harness) {
    let store = &h.store;
    store
        .register_worker(&payload("w", ""), TTL, 100)
        .await
        .unwrap();
    assert!(store.land_worker("missing").await.unwrap().is_none());
    assert!(store.retire_worker("missing").await.unwrap().is_none());
    assert_eq!(
        store.land_worker("w").await.unwrap().unwrap().state,
        WorkerState::Landing
    );
    assert_eq!(
        store.retire_worker("w").await.unwrap().unwrap().state,
        WorkerState::Retiring
    );

    store
        .register_worker(&payload("running", ""), TTL, 100)
        .await
        .unwrap();
    let err = store.prune_worker("running").await.expect_err("running");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m == PRUNE_RUNNING_WORKER),
        "{err}"
    );
    assert!(
        store.worker("running").await.unwrap().is_some(),
        "still there"
    );
    assert!(store.prune_worker("w").await.unwrap());
    assert!(!store.prune_worker("w").await.unwrap());

    assert!(store.delete_worker("running").await.unwrap());
    assert!(!store.delete_worker("running").await.unwrap());
    assert!(store.workers().await.unwrap().is_empty());
}

pub async fn drained_landing_workers_land_and_retiring_ones_go(h: &Harness) {
    let store = &h.store;
    for name in ["landing", "retiring", "running"] {
        store
            .register_worker(&payload(name, ""), TTL, 100)
            .await
            .unwrap();
    }
    store.land_worker("landing").await.unwrap();
    store.retire_worker("retiring").await.unwrap();

    // Only a worker in the matching state moves: the drain check is the caller's.
    assert!(!store.land_drained_worker("running").await.unwrap());
    assert!(!store.land_drained_worker("retiring").await.unwrap());
    assert!(!store.delete_retired_worker("landing").await.unwrap());
    assert!(!store.delete_retired_worker("ghost").await.unwrap());
    assert!(store.land_drained_worker("landing").await.unwrap());
    let landed = store.worker("landing").await.unwrap().unwrap();
    assert_eq!(landed.state, WorkerState::Landed);
    assert_eq!(landed.worker.garden_addr, "", "addresses cleared");
    assert_eq!(landed.worker.baggageclaim_url, "");
    assert!(!store.land_drained_worker("landing").await.unwrap(), "once");
    // A landed worker stays landed when asked to land again, and re-registering revives it.
    assert_eq!(
        store.land_worker("landing").await.unwrap().unwrap().state,
        WorkerState::Landed
    );
    let back = store
        .register_worker(&payload("landing", ""), TTL, 200)
        .await
        .unwrap();
    assert_eq!(back.state, WorkerState::Running);
    assert_eq!(back.worker.garden_addr, "127.0.0.1:7777");

    assert!(store.delete_retired_worker("retiring").await.unwrap());
    assert!(store.worker("retiring").await.unwrap().is_none());
    assert_eq!(state_of(store, "running").await, Some(WorkerState::Running));
}
