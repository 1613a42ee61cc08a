//! SELECT lists shared by both backends. Only column lists and joins live here: placeholders
//! differ (`$1` in PostgreSQL, `?1` in SQLite). `->` extracts JSON in both dialects.

/// Decoded by each backend's `pipeline_row`, in this column order.
pub(crate) const PIPELINE_SELECT: &str =
    "SELECT p.id, p.team_id, t.name, p.name, p.instance_vars, \
     p.paused, COALESCE(p.paused_by, ''), COALESCE(p.paused_at, 0), p.public, p.archived, \
     p.ordering, p.config_version, p.config -> 'groups', p.config -> 'display', \
     p.config -> 'user_data', COALESCE(p.parent_job_id, 0), COALESCE(p.parent_build_id, 0), \
     COALESCE(p.last_updated, 0) \
     FROM pipelines p JOIN teams t ON t.id = p.team_id";

pub(crate) const PIPELINE_ORDER: &str = "p.ordering, p.secondary_ordering, p.id";

/// Decoded by each backend's `job_row`.
pub(crate) const JOB_SELECT: &str = "SELECT j.id, j.pipeline_id, j.name, j.config, j.paused, \
     COALESCE(j.paused_by, ''), COALESCE(j.paused_at, 0), j.has_new_inputs, j.groups, \
     j.first_logged_build_id, j.next_build_id, j.latest_completed_build_id, j.transition_build_id \
     FROM jobs j";

/// Decoded by each backend's `resource_row`.
pub(crate) const RESOURCE_SELECT: &str = "SELECT r.id, r.pipeline_id, r.name, r.type, r.config, \
     COALESCE(r.last_checked, 0), r.pinned_version, COALESCE(r.pin_comment, ''), \
     r.resource_config_scope_id, r.check_build_id, r.check_failed FROM resources r";

/// Decoded by each backend's `build_row`.
pub(crate) const BUILD_SELECT: &str =
    "SELECT b.id, b.team_id, t.name, b.name, b.status, b.job_id, \
     COALESCE(j.name, ''), b.pipeline_id, COALESCE(p.name, ''), p.instance_vars, \
     COALESCE(r.name, ''), b.plan, COALESCE(b.created_by, ''), COALESCE(b.comment, ''), \
     b.create_time, COALESCE(b.start_time, 0), COALESCE(b.end_time, 0), b.rerun_of, b.rerun_number \
     FROM builds b JOIN teams t ON t.id = b.team_id \
     LEFT JOIN jobs j ON j.id = b.job_id \
     LEFT JOIN pipelines p ON p.id = b.pipeline_id \
     LEFT JOIN resources r ON r.id = b.resource_id";

/// Builds of a job, pipeline or team: reruns listed next to their original.
pub(crate) const BUILD_ORDER_DESC: &str = "COALESCE(b.rerun_of, b.id) DESC, b.id DESC";
pub(crate) const BUILD_ORDER_ASC: &str = "COALESCE(b.rerun_of, b.id) ASC, b.id ASC";
/// All builds: by id alone.
pub(crate) const BUILD_ORDER_ID_DESC: &str = "b.id DESC";
pub(crate) const BUILD_ORDER_ID_ASC: &str = "b.id ASC";

pub(crate) const WORKER_COLUMNS: &str = "name, team_id, payload, state, expires_at";
pub(crate) const WORKER_SELECT: &str =
    "SELECT name, team_id, payload, state, expires_at FROM workers";

pub(crate) const USER_SELECT: &str = "SELECT id, username, connector, sub, last_login FROM users";

use super::{BuildsOf, PagePlan};

/// The WHERE fragment selecting a scope's builds (`{n}` is the scope id's placeholder
/// number), and its DESC/ASC ordering.
pub(crate) fn builds_scope(
    of: BuildsOf,
) -> (&'static str, Option<i64>, &'static str, &'static str) {
    match of {
        BuildsOf::Job(id) => (
            "b.job_id = {n}",
            Some(id),
            BUILD_ORDER_DESC,
            BUILD_ORDER_ASC,
        ),
        BuildsOf::Pipeline(id) => (
            "b.pipeline_id = {n}",
            Some(id),
            BUILD_ORDER_DESC,
            BUILD_ORDER_ASC,
        ),
        BuildsOf::Team(id) => (
            "b.team_id = {n}",
            Some(id),
            BUILD_ORDER_DESC,
            BUILD_ORDER_ASC,
        ),
        BuildsOf::All => ("1 = 1", None, BUILD_ORDER_ID_DESC, BUILD_ORDER_ID_ASC),
    }
}

/// A query over one scope of builds with placeholders numbered by `placeholder(n)`.
pub(crate) struct BuildsQuery {
    pub sql: String,
    /// Values for the placeholders, in order.
    pub params: Vec<i64>,
}

impl BuildsQuery {
    fn scoped(of: BuildsOf, placeholder: fn(usize) -> String) -> (String, Vec<i64>) {
        let (filter, id, _, _) = builds_scope(of);
        let mut params = Vec::new();
        let filter = match id {
            Some(id) => {
                params.push(id);
                filter.replace("{n}", &placeholder(1))
            }
            None => filter.to_string(),
        };
        (format!("{BUILD_SELECT} WHERE {filter}"), params)
    }

    /// The page itself.
    pub fn page(of: BuildsOf, plan: &PagePlan, placeholder: fn(usize) -> String) -> Self {
        let (_, _, desc, asc) = builds_scope(of);
        let (mut sql, mut params) = Self::scoped(of, placeholder);
        if let Some(min) = plan.min_id {
            params.push(min);
            sql += &format!(" AND b.id >= {}", placeholder(params.len()));
        }
        if let Some(max) = plan.max_id {
            params.push(max);
            sql += &format!(" AND b.id <= {}", placeholder(params.len()));
        }
        params.push(plan.limit);
        sql += &format!(
            " ORDER BY {} LIMIT {}",
            if plan.ascending { asc } else { desc },
            placeholder(params.len())
        );
        BuildsQuery { sql, params }
    }

    /// The id of the build just older (`older`) or newer than `id` in the scope's order.
    pub fn neighbour(of: BuildsOf, id: i64, older: bool, placeholder: fn(usize) -> String) -> Self {
        let (_, _, desc, asc) = builds_scope(of);
        let (sql, mut params) = Self::scoped(of, placeholder);
        params.push(id);
        let sql = format!(
            "SELECT q.id FROM ({sql} AND b.id {} {} ORDER BY {} LIMIT 1) q",
            if older { "<" } else { ">" },
            placeholder(params.len()),
            if older { desc } else { asc }
        );
        BuildsQuery { sql, params }
    }

    /// The build id a `timestamps` bound stands for: the oldest build started at or after
    /// `from`, or the newest started at or before `to`.
    pub fn at_time(of: BuildsOf, time: i64, from: bool, placeholder: fn(usize) -> String) -> Self {
        let (_, _, desc, asc) = builds_scope(of);
        let (sql, mut params) = Self::scoped(of, placeholder);
        params.push(time);
        let sql = format!(
            "SELECT q.id FROM ({sql} AND b.start_time {} {} ORDER BY {} LIMIT 1) q",
            if from { ">=" } else { "<=" },
            placeholder(params.len()),
            if from { asc } else { desc }
        );
        BuildsQuery { sql, params }
    }
}
