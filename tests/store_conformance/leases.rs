//! Coordination of several web nodes: leases and aborts of builds another node runs.

use super::*;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(5);

pub async fn a_lease_is_renewed_by_its_holder_and_taken_over_after_expiry(h: &Harness) {
    let store = &h.store;
    // Another web node on the same database.
    let other = h.reopen().await;
    assert!(store
        .try_acquire_lease("scheduler", "a", TTL, 100)
        .await
        .unwrap());
    assert!(
        !other
            .try_acquire_lease("scheduler", "b", TTL, 101)
            .await
            .unwrap(),
        "held by a until 105"
    );
    assert!(
        store
            .try_acquire_lease("scheduler", "a", TTL, 104)
            .await
            .unwrap(),
        "a renews until 109"
    );
    assert!(!other
        .try_acquire_lease("scheduler", "b", TTL, 108)
        .await
        .unwrap());
    assert!(!other
        .try_acquire_lease("scheduler", "b", TTL, 109)
        .await
        .unwrap());
    assert!(
        other
            .try_acquire_lease("scheduler", "b", TTL, 110)
            .await
            .unwrap(),
        "expired: b takes over"
    );
    assert!(
        !store
            .try_acquire_lease("scheduler", "a", TTL, 111)
            .await
            .unwrap(),
        "a lost it"
    );
    assert!(
        store
            .try_acquire_lease("other", "a", TTL, 111)
            .await
            .unwrap(),
        "leases are independent"
    );

    assert!(
        !store.release_lease("scheduler", "a").await.unwrap(),
        "not a's"
    );
    assert!(other.release_lease("scheduler", "b").await.unwrap());
    assert!(
        store
            .try_acquire_lease("scheduler", "a", TTL, 112)
            .await
            .unwrap(),
        "released: free at once"
    );
}

pub async fn concurrent_nodes_never_both_get_a_lease(h: &Harness) {
    let other = h.reopen().await;
    for round in 0..20 {
        let name = format!("lease-{round}");
        let (a, b) = tokio::join!(
            h.store.try_acquire_lease(&name, "a", TTL, 100),
            other.try_acquire_lease(&name, "b", TTL, 100)
        );
        assert!(a.unwrap() ^ b.unwrap(), "exactly one node holds {name}");
    }
}

pub async fn builds_to_stop_are_those_finished_aborted_or_deleted(h: &Harness) {
    let store = &h.store;
    let (team, _, job) = pipeline_with_job(store).await;
    let running = job_build(store, &team, &job).await;
    let aborted = job_build(store, &team, &job).await;
    let finished = job_build(store, &team, &job).await;
    let pending = job_build(store, &team, &job).await;
    for b in [&running, &aborted, &finished] {
        assert!(store.start_build(b.id, 1000).await.unwrap());
    }
    assert!(store.builds_to_stop(&[]).await.unwrap().is_empty());
    let all = [running.id, aborted.id, finished.id, 999_999];
    assert_eq!(store.builds_to_stop(&all).await.unwrap(), vec![999_999]);

    assert!(store.request_build_abort(aborted.id).await.unwrap());
    assert!(
        !store.request_build_abort(pending.id).await.unwrap(),
        "only a started build is asked to abort"
    );
    store
        .finish_build(finished.id, BuildStatus::Failed, 1100)
        .await
        .unwrap();
    let other = h.reopen().await;
    let mut stop = other.builds_to_stop(&all).await.unwrap();
    stop.sort();
    assert_eq!(stop, vec![aborted.id, finished.id, 999_999]);
    // The request changes nothing else: the node running the build finishes it.
    let b = store.build(aborted.id).await.unwrap().unwrap();
    assert_eq!(b.status, BuildStatus::Started);
    assert!(!store.request_build_abort(finished.id).await.unwrap());
}
