//! Statements of build log reaping, shared by both backends.

use super::Dialect;

const FINISHED: &str = "status IN ('succeeded', 'failed', 'errored', 'aborted')";

/// A job's builds whose log is still kept, newest first as its builds are listed.
pub(crate) const UNREAPED_JOB_BUILDS: &str = concat!(
    build_select!(),
    " WHERE b.job_id = $1 AND b.reap_time IS NULL \
     ORDER BY COALESCE(b.rerun_of, b.id) DESC, b.id DESC"
);

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
