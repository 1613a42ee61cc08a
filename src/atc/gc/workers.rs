//! The worker collector (worker-protocols.md §3.6): expired ephemeral workers are deleted
//! and unresponsive ones stalled, each as one guarded statement so web nodes may race
//! freely. Landing and retiring workers are finished where their heartbeat is (the TSA, or
//! quickstart's in-process worker), which can ask the worker whether builds still hold it.

use crate::clock::now;
use crate::db::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often expiries are looked at, whatever the GC interval: a silent worker is stalled
/// at most this long after its TTL ran out (the steps on it watch for that).
pub const EXPIRY_CHECK: Duration = Duration::from_secs(1);

/// One collection at `now`: ephemeral workers first, so they are deleted rather than stalled.
pub async fn collect_workers(store: &dyn Store, now: i64) -> crate::db::Result<()> {
    let deleted = store.delete_expired_ephemeral_workers(now).await?;
    if !deleted.is_empty() {
        tracing::info!(workers = ?deleted, "deleted expired ephemeral workers");
    }
    let stalled = store.stall_unresponsive_workers(now).await?;
    if !stalled.is_empty() {
        tracing::info!(workers = ?stalled, "stalled unresponsive workers");
    }
    Ok(())
}

/// Runs [`collect_workers`] every [`EXPIRY_CHECK`] (or `interval` when shorter) and the
/// child pipeline archiver every `interval`, until `shutdown` fires.
pub async fn run_worker_collector(
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let workers = crate::atc::periodic::Periodic::every(
        "worker collector",
        interval.min(EXPIRY_CHECK),
    )
    .run(shutdown.clone(), |_| {
        let store = store.clone();
        async move { collect_workers(store.as_ref(), now()).await }
    });
    let archiver = crate::atc::periodic::Periodic::every("child pipeline archiver", interval).run(
        shutdown,
        |_| {
            let store = store.clone();
            async move { super::archive_orphaned_children(store.as_ref()).await }
        },
    );
    tokio::join!(workers, archiver);
}
