//! Garbage collection components: the worker collector (worker-protocols.md §3.6), kept
//! check containers, and the automatic archiving of child pipelines.

mod containers;
mod pipelines;
mod workers;

pub use containers::{collect_check_containers, run_container_collector};
pub use pipelines::{archive_children_not_set_by, archive_orphaned_children};

pub use workers::{collect_workers, run_worker_collector};

/// Runs `pass` every `interval` until `shutdown` fires, logging failures as `what`.
pub(crate) async fn every<F, Fut, E>(
    interval: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
    what: &str,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut ticks = tokio::time::interval(interval.max(std::time::Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = pass().await {
            tracing::warn!(error = %e, "{what} failed");
        }
    }
}
