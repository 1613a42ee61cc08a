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
        assert!(store.start_build(b.id, &starting(1000)).await.unwrap());
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

/// Build ownership: a started build belongs to its starter, then to its claimer while
/// renewed; once lapsed (or released) one node adopts it.
pub async fn started_builds_are_owned_renewed_and_adopted_once_lapsed(h: &Harness) {
    let store = &h.store;
    let other = h.reopen().await;
    let (team, _, job) = pipeline_with_job(store).await;
    let b = job_build(store, &team, &job).await;
    let start = BuildStart {
        holder: "a".into(),
        expires: 1010,
        ..starting(1000)
    };
    assert!(store.start_build(b.id, &start).await.unwrap());
    assert!(
        store.orphaned_builds(1009).await.unwrap().is_empty(),
        "a started build is its starter's"
    );
    assert!(!other.claim_build(b.id, "b", 1011, 1001).await.unwrap());
    assert!(store.claim_build(b.id, "a", 1010, 1000).await.unwrap());
    assert!(!other.claim_build(b.id, "b", 1012, 1002).await.unwrap());
    assert_eq!(store.renew_builds("a", 1020).await.unwrap(), vec![b.id]);
    assert!(other.renew_builds("b", 1020).await.unwrap().is_empty());
    assert!(store.orphaned_builds(1015).await.unwrap().is_empty());
    // `a` died: its lease lapses and exactly one node adopts the build.
    assert_eq!(other.orphaned_builds(1021).await.unwrap(), vec![b.id]);
    let (x, y) = tokio::join!(
        other.claim_build(b.id, "b", 1031, 1021),
        store.claim_build(b.id, "c", 1031, 1021)
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one node adopts it");
    // A hand-over lets go at once.
    let holder = if store.renew_builds("b", 1040).await.unwrap().is_empty() {
        "c"
    } else {
        "b"
    };
    store.release_builds(holder, &[b.id]).await.unwrap();
    assert!(
        store.renew_builds(holder, 1060).await.unwrap().is_empty(),
        "a renewal after the hand-over does not take it back"
    );
    assert_eq!(other.orphaned_builds(1022).await.unwrap(), vec![b.id]);
    // Finished builds are nobody's.
    store
        .finish_build(b.id, BuildStatus::Succeeded, 1050)
        .await
        .unwrap();
    assert!(store.orphaned_builds(2000).await.unwrap().is_empty());
    assert!(!store.claim_build(b.id, "a", 2010, 2000).await.unwrap());
}

/// The journal: entries by key, replaced on write, and written with events atomically.
pub async fn journal_entries_are_replaced_by_key_and_ride_with_events(h: &Harness) {
    let store = &h.store;
    let (team, _, job) = pipeline_with_job(store).await;
    let b = job_build(store, &team, &job).await;
    let e = |k: &str, v: serde_json::Value| (k.to_string(), v);
    store
        .put_journal(
            b.id,
            &[
                e("step:1", json!({"outcome": "succeeded"})),
                e("x", json!(1)),
            ],
        )
        .await
        .unwrap();
    store.put_journal(b.id, &[e("x", json!(2))]).await.unwrap();
    let last = store
        .append_build_events_journaled(
            b.id,
            &[json!({"event": "log", "data": {}})],
            &[e("out:2:stdout", json!(42))],
        )
        .await
        .unwrap();
    assert_eq!(last, 1);
    let mut got = h.reopen().await.journal(b.id).await.unwrap();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            e("out:2:stdout", json!(42)),
            e("step:1", json!({"outcome": "succeeded"})),
            e("x", json!(2)),
        ]
    );
    assert!(matches!(
        store.put_journal(999_999, &[e("x", json!(1))]).await,
        Err(StoreError::NotFound(_))
    ));
    // A key put twice in one batch: the later put stands. Ids go on from the last event.
    let last = store
        .append_build_events_journaled(
            b.id,
            &[json!({"event": "log"}), json!({"event": "log"})],
            &[e("x", json!(3)), e("y", json!(1)), e("x", json!(4))],
        )
        .await
        .unwrap();
    assert_eq!(last, 3);
    let got = store.journal(b.id).await.unwrap();
    assert!(got.contains(&e("x", json!(4))) && got.contains(&e("y", json!(1))));
    assert_eq!(got.len(), 4);
    // Nothing of a batch for a build that is not there is kept.
    assert!(matches!(
        store
            .append_build_events_journaled(999_999, &[json!({"event": "log"})], &[e("x", json!(1))])
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.journal(999_999).await.unwrap().is_empty());
    assert!(store.build_events(999_999, 0, 0).await.unwrap().is_empty());
}
