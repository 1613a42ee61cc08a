//! Build logs read in bounded pages. A supertrait of [`Store`](super::Store), so each
//! backend keeps these in its own `build_logs.rs`.

use super::{BuildRow, JobRow, Result};
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
pub trait BuildLogStore {
    /// Events with id greater than `after`, oldest first: at most `max_events`, and no more
    /// once they hold `max_bytes` (by [`approx_size`]); at least one when any is there. A
    /// reader of a huge log holds one bounded page at a time, however big its events are.
    async fn build_events_page(
        &self,
        build_id: i64,
        after: i64,
        max_events: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Value)>>;

    /// Reaps the logs of the finished builds among `build_ids` not reaped yet: their events
    /// are deleted and their `reap_time` set to `at`, in one transaction. Others (running,
    /// unknown, reaped already) are left alone. Returns how many were reaped.
    async fn reap_build_logs(&self, build_ids: &[i64], at: i64) -> Result<u64>;
    /// A job's builds whose logs are kept (not reaped), newest first as its builds list.
    async fn unreaped_job_builds(&self, job_id: i64) -> Result<Vec<BuildRow>>;
    /// The jobs whose builds the log collector looks at: the active, unpaused jobs of
    /// unpaused, unarchived pipelines; with `every_job` false only those whose config sets
    /// `build_log_retention` or `build_logs_to_retain`.
    async fn retained_jobs(&self, every_job: bool) -> Result<Vec<JobRow>>;
    /// When the build's log was reaped; None when it is kept or there is no such build.
    async fn build_reap_time(&self, build_id: i64) -> Result<Option<i64>>;
}

/// Roughly the bytes a JSON value holds: its text plus a little per node.
pub fn approx_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 8,
        Value::Array(a) => a.iter().map(approx_size).sum::<usize>() + 8,
        Value::Object(o) => {
            o.iter()
                .map(|(k, v)| k.len() + approx_size(v))
                .sum::<usize>()
                + 8
        }
        _ => 8,
    }
}
