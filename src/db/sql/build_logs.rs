//! Statements of build log reaping, shared by both backends.

use super::Dialect;

const FINISHED: &str = "status IN ('succeeded', 'failed', 'errored', 'aborted')";

/// A job's builds whose log is still kept, newest first as its builds are listed.
pub(crate) const UNREAPED_JOB_BUILDS: &str = concat!(
    build_select!(),
    " WHERE b.job_id = $1 AND b.reap_time IS NULL \
     ORDER BY COALESCE(b.rerun_of, b.id) DESC, b.id DESC"
);

/// The active, unpaused jobs of unpaused, unarchived pipelines, as `rows::job_row` decodes
/// them: all of them when `$1`, else only those whose config names a retention (without
/// the web node's retention flags the others keep every log, and one statement over the
/// node beats one per pipeline every pass).
pub(crate) fn retained_jobs(d: Dialect) -> String {
    d.stmt(&format!(
        "{} JOIN pipelines p ON p.id = j.pipeline_id \
         WHERE j.active AND NOT j.paused AND NOT p.paused AND NOT p.archived \
         AND ($1 OR j.config -> 'build_log_retention' IS NOT NULL \
         OR j.config -> 'build_logs_to_retain' IS NOT NULL) ORDER BY j.pipeline_id, j.id",
        super::JOB_SELECT
    ))
}

pub(crate) const BUILD_REAP_TIME: &str = "SELECT reap_time FROM builds WHERE id = $1";

/// Deletes the events of the finished, unreaped builds among `$1`.
pub(crate) fn delete_events(d: Dialect) -> String {
    d.stmt(&format!(
        "DELETE FROM build_events WHERE build_id IN \
         (SELECT id FROM builds WHERE {} AND {FINISHED} AND reap_time IS NULL)",
        d.in_ids("id", "$1")
    ))
}

/// Marks the finished, unreaped builds among `$1` reaped at `$2`.
pub(crate) fn mark_reaped(d: Dialect) -> String {
    d.stmt(&format!(
        "UPDATE builds SET reap_time = $2 WHERE {} AND {FINISHED} AND reap_time IS NULL",
        d.in_ids("id", "$1")
    ))
}
