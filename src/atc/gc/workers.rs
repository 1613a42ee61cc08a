//! The worker collector (worker-protocols.md §3.6): every GC interval, expired ephemeral
//! workers are deleted, unresponsive ones stalled, drained retiring ones deleted and drained
//! landing ones landed, each as one guarded statement so web nodes may race freely.

use crate::clock::now;
use crate::db::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    let retired = store.delete_drained_retiring_workers().await?;
    if !retired.is_empty() {
        tracing::info!(workers = ?retired, "deleted retired workers");
    }
    let landed = store.land_drained_workers().await?;
    if !landed.is_empty() {
        tracing::info!(workers = ?landed, "landed workers");
    }
    Ok(())
}

/// Runs [`collect_workers`] (and the child pipeline archiver) every `interval` until
/// `shutdown` fires.
pub async fn run_worker_collector(
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    crate::atc::periodic::Periodic::every("worker collector", interval)
        .run(shutdown, |_| {
            let store = store.clone();
            async move {
                collect_workers(store.as_ref(), now()).await?;
                super::archive_orphaned_children(store.as_ref()).await
            }
        })
        .await
}
