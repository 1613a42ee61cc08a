//! Build statements: creating, rerunning and finishing builds, their events, and the
//! builds page.

use super::{build_select_without_plan, Dialect, BUILD_SELECT};
use crate::db::{BuildsOf, PagePlan};

pub(crate) struct BuildSql {
    pub by_id: String,
    /// `$1` job, `$2` build name.
    pub of_job: String,
    /// Any of the statuses bound as one list at `$1`, by id.
    pub with_status: String,
    /// `with_status` for pending and started statuses only: the partial index on unfinished
    /// builds serves it, where `with_status` reads every build ever run (check builds too).
    pub with_unfinished_status: String,
    /// The job's next build number and its pipeline.
    pub next_job_number: String,
    /// The next one-off build name.
    pub next_one_off: String,
    pub insert: String,
    /// Recomputes job `$1`'s next build: its oldest pending or started build.
    pub update_next_build: String,
    /// The original of build `$1` (itself unless it is a rerun), locked.
    pub rerun_original: String,
    pub rerun_number: String,
    pub insert_rerun: String,
    /// The build's status and job, locked.
    pub finishing: String,
    pub finish: String,
    /// The job's latest finished build and its status, locked.
    pub job_latest: String,
    pub job_finished: String,
    pub set_comment: String,
    pub start: String,
    pub request_abort: String,
    /// Of the ids bound at `$1`, the builds still running and not asked to abort.
    pub still_running: String,
    pub events: String,
    pub last_event: String,
}

impl BuildSql {
    /// The statement answering builds in `statuses`.
    pub(crate) fn with_status(&self, statuses: &[crate::db::BuildStatus]) -> &str {
        if statuses.iter().all(|s| !s.is_finished()) {
            &self.with_unfinished_status
        } else {
            &self.with_status
        }
    }

    pub(crate) fn new(d: Dialect) -> Self {
        let s = |sql: String| d.stmt(&sql);
        BuildSql {
            by_id: s(format!("{BUILD_SELECT} WHERE b.id = $1")),
            of_job: s(format!(
                "{BUILD_SELECT} WHERE b.job_id = $1 AND b.name = $2"
            )),
            with_status: s(format!(
                "{} WHERE {} ORDER BY b.id",
                build_select_without_plan(),
                d.in_ids("b.status", "$1")
            )),
            with_unfinished_status: s(format!(
                "{} WHERE {} AND b.status IN ('pending', 'started') ORDER BY b.id",
                build_select_without_plan(),
                d.in_ids("b.status", "$1")
            )),
            next_job_number: s("UPDATE jobs SET build_number_seq = build_number_seq + 1 \
                 WHERE id = $1 RETURNING build_number_seq, pipeline_id"
                .into()),
            next_one_off: d.next_value("one_off_name"),
            insert: s(
                "INSERT INTO builds (team_id, job_id, pipeline_id, name, status, plan, \
                 created_by, create_time, resource_id) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING id"
                    .into(),
            ),
            update_next_build: s(
                "UPDATE jobs SET next_build_id = (SELECT MIN(id) FROM builds \
                 WHERE job_id = $1 AND status IN ('pending', 'started')) WHERE id = $1"
                    .into(),
            ),
            rerun_original: s(format!(
                "SELECT o.id, o.name, o.team_id, o.job_id, o.pipeline_id FROM builds b \
                 JOIN builds o ON o.id = COALESCE(b.rerun_of, b.id) WHERE b.id = $1{}",
                d.lock(" FOR UPDATE OF o")
            )),
            rerun_number: s(
                "SELECT COALESCE(MAX(rerun_number), 0) + 1 FROM builds WHERE rerun_of = $1".into(),
            ),
            insert_rerun: s(
                "INSERT INTO builds (team_id, job_id, pipeline_id, name, status, \
                 created_by, create_time, rerun_of, rerun_number) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING id"
                    .into(),
            ),
            finishing: s(format!(
                "SELECT status, job_id FROM builds WHERE id = $1{}",
                d.lock(" FOR UPDATE")
            )),
            finish: s("UPDATE builds SET status = $2, end_time = $3 WHERE id = $1".into()),
            job_latest: s(format!(
                "SELECT j.latest_completed_build_id, b.status FROM jobs j \
                 LEFT JOIN builds b ON b.id = j.latest_completed_build_id WHERE j.id = $1{}",
                d.lock(" FOR UPDATE OF j")
            )),
            job_finished: s("UPDATE jobs SET latest_completed_build_id = $2, \
                 transition_build_id = CASE WHEN $3 THEN $2 ELSE transition_build_id END \
                 WHERE id = $1"
                .into()),
            set_comment: s("UPDATE builds SET comment = $2 WHERE id = $1".into()),
            // Owned by its starter from the start: no node can adopt it in between.
            start: s(
                "UPDATE builds SET status = 'started', start_time = $2, plan = $3, \
                 owner = $4, owner_expires = $5 WHERE id = $1 AND status = 'pending'"
                    .into(),
            ),
            request_abort: s(
                "UPDATE builds SET abort_requested = true WHERE id = $1 AND status = 'started'"
                    .into(),
            ),
            still_running: s(format!(
                "SELECT id FROM builds WHERE {} AND status IN ('pending', 'started') \
                 AND NOT abort_requested",
                d.in_ids("id", "$1")
            )),
            events: s("SELECT event_id, payload FROM build_events \
                 WHERE build_id = $1 AND event_id > $2 ORDER BY event_id LIMIT $3"
                .into()),
            last_event: s(
                "SELECT COALESCE(MAX(event_id), 0) FROM build_events WHERE build_id = $1".into(),
            ),
        }
    }
}

/// Builds that took (`outputs`: put) a resource version, newest first; the version is
/// matched by its hash within the resource.
pub(crate) fn version_builds(d: Dialect, outputs: bool) -> String {
    let table = if outputs {
        "build_outputs"
    } else {
        "build_inputs"
    };
    d.stmt(&format!(
        "{BUILD_SELECT} WHERE b.id IN (SELECT x.build_id FROM {table} x \
         JOIN resource_config_versions v ON v.version_sha256 = x.version_sha256 \
         WHERE x.resource_id = $1 AND v.id = $2) ORDER BY b.id DESC"
    ))
}

/// Builds of a job, pipeline or team: reruns listed next to their original.
const ORDER_DESC: &str = "COALESCE(b.rerun_of, b.id) DESC, b.id DESC";
const ORDER_ASC: &str = "COALESCE(b.rerun_of, b.id) ASC, b.id ASC";

/// The WHERE fragment selecting a scope's builds (`$1` is the scope id), and its DESC/ASC
/// ordering; all builds are ordered by id alone.
fn builds_scope(of: BuildsOf) -> (&'static str, Option<i64>, &'static str, &'static str) {
    match of {
        BuildsOf::Job(id) => ("b.job_id = $1", Some(id), ORDER_DESC, ORDER_ASC),
        BuildsOf::Pipeline(id) => ("b.pipeline_id = $1", Some(id), ORDER_DESC, ORDER_ASC),
        BuildsOf::Team(id) => ("b.team_id = $1", Some(id), ORDER_DESC, ORDER_ASC),
        BuildsOf::All => ("1 = 1", None, "b.id DESC", "b.id ASC"),
    }
}

/// A query over one scope of builds.
pub(crate) struct BuildsQuery {
    pub sql: String,
    /// Values for the placeholders, in order.
    pub params: Vec<i64>,
}

impl BuildsQuery {
    fn scoped(of: BuildsOf) -> (String, Vec<i64>) {
        let (filter, id, _, _) = builds_scope(of);
        (
            format!("{BUILD_SELECT} WHERE {filter}"),
            id.into_iter().collect(),
        )
    }

    /// The page itself.
    pub fn page(d: Dialect, of: BuildsOf, plan: &PagePlan) -> Self {
        let (_, _, desc, asc) = builds_scope(of);
        let (mut sql, mut params) = Self::scoped(of);
        if let Some(min) = plan.min_id {
            params.push(min);
            sql += &format!(" AND b.id >= ${}", params.len());
        }
        if let Some(max) = plan.max_id {
            params.push(max);
            sql += &format!(" AND b.id <= ${}", params.len());
        }
        params.push(plan.limit);
        sql += &format!(
            " ORDER BY {} LIMIT ${}",
            if plan.ascending { asc } else { desc },
            params.len()
        );
        BuildsQuery {
            sql: d.stmt(&sql),
            params,
        }
    }

    /// The id of the build just older (`older`) or newer than `id` in the scope's order.
    pub fn neighbour(d: Dialect, of: BuildsOf, id: i64, older: bool) -> Self {
        Self::first_id(d, of, "b.id", if older { "<" } else { ">" }, id, !older)
    }

    /// The build id a `timestamps` bound stands for: the oldest build started at or after
    /// `from`, or the newest started at or before `to`.
    pub fn at_time(d: Dialect, of: BuildsOf, time: i64, from: bool) -> Self {
        Self::first_id(
            d,
            of,
            "b.start_time",
            if from { ">=" } else { "<=" },
            time,
            from,
        )
    }

    /// The id of the first build in the scope's order (`ascending` or not) whose `col`
    /// compares by `op` to `value`.
    fn first_id(
        d: Dialect,
        of: BuildsOf,
        col: &str,
        op: &str,
        value: i64,
        ascending: bool,
    ) -> Self {
        let (_, _, desc, asc) = builds_scope(of);
        let (sql, mut params) = Self::scoped(of);
        params.push(value);
        let sql = format!(
            "SELECT q.id FROM ({sql} AND {col} {op} ${} ORDER BY {} LIMIT 1) q",
            params.len(),
            if ascending { asc } else { desc }
        );
        BuildsQuery {
            sql: d.stmt(&sql),
            params,
        }
    }
}
