//! Statement text shared by both backends, written once in PostgreSQL's placeholder syntax
//! (`$1`); the embedded store rewrites it with [`sqlite`]. What else differs is kept out of
//! shared text: `ON CONFLICT ... DO UPDATE`, `RETURNING`, `->`, `true`/`false` and
//! `CAST(.. AS ..)` mean the same in both; `COLLATE "C"` (byte order, what SQLite compares
//! by anyway) is dropped for SQLite. JSON parameters are bound per backend (jsonb values in
//! PostgreSQL, TEXT in SQLite).

mod builds;
mod journal;
mod pipelines;
mod resources;
mod workers;

pub(crate) use builds::{version_builds, BuildSql, BuildsQuery};
pub(crate) use journal::JournalSql;
pub(crate) use pipelines::PipelineSql;
pub(crate) use resources::ResourceSql;
pub(crate) use workers::WorkerSql;

/// What differs between the backends' SQL beyond placeholders: JSON edits and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// Shared statement text in this dialect's placeholder syntax.
    pub(crate) fn stmt(self, stmt: &str) -> String {
        match self {
            Dialect::Postgres => stmt.to_string(),
            Dialect::Sqlite => sqlite(stmt),
        }
    }

    /// Whether the boolean `key` of the JSON column `col` is true (false when absent).
    pub(crate) fn json_flag(self, col: &str, key: &str) -> String {
        match self {
            Dialect::Postgres => format!("coalesce(({col}->>'{key}')::boolean, false)"),
            Dialect::Sqlite => format!("coalesce(json_extract({col}, '$.{key}'), 0)"),
        }
    }

    /// A JSON object of `(key, SQL expression)` pairs.
    pub(crate) fn json_object(self, pairs: &[(&str, &str)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        match self {
            Dialect::Postgres => format!("jsonb_build_object({})", args.join(", ")),
            Dialect::Sqlite => format!("json_object({})", args.join(", ")),
        }
    }

    /// Whether `expr` is one of the values (ids, names) bound at `param` as one list: a
    /// PostgreSQL array, or in SQLite a JSON array (TEXT).
    pub(crate) fn in_ids(self, expr: &str, param: &str) -> String {
        match self {
            Dialect::Postgres => format!("{expr} = ANY({param})"),
            Dialect::Sqlite => format!("{expr} IN (SELECT value FROM json_each({param}))"),
        }
    }

    /// A row-lock `clause` such as ` FOR UPDATE`; SQLite has none (its write transactions
    /// begin IMMEDIATE, which locks the whole file).
    pub(crate) fn lock(self, clause: &'static str) -> &'static str {
        match self {
            Dialect::Postgres => clause,
            Dialect::Sqlite => "",
        }
    }

    /// A statement returning the next value of `sequence` (a PostgreSQL sequence; a row of
    /// the `sequences` table in SQLite).
    pub(crate) fn next_value(self, sequence: &str) -> String {
        match self {
            Dialect::Postgres => format!("SELECT nextval('{sequence}')"),
            Dialect::Sqlite => format!(
                "UPDATE sequences SET value = value + 1 WHERE name = '{sequence}' RETURNING value"
            ),
        }
    }

    /// The JSON object column `col` with the top-level keys of `obj` set.
    pub(crate) fn json_merge(self, col: &str, obj: &str) -> String {
        match self {
            Dialect::Postgres => format!("({col} || {obj})"),
            Dialect::Sqlite => format!("json_patch({col}, {obj})"),
        }
    }
}

/// `stmt` with `$N` placeholders as SQLite's `?N`. SQLite reads `$1` as a *named*
/// parameter numbered by first appearance, so `$2 .. $1` would bind out of order.
/// Quoted text (e.g. JSON paths like `'$.addr'`) is left alone.
pub(crate) fn sqlite(stmt: &str) -> String {
    let stmt = stmt.replace(" COLLATE \"C\"", "");
    let mut out = String::with_capacity(stmt.len());
    let mut quoted = false;
    let mut chars = stmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        } else if c == '$' && !quoted && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('?');
            continue;
        }
        out.push(c);
    }
    out
}

// --- teams, tokens, users ---------------------------------------------------------------
/// Creates a team or replaces its auth. PostgreSQL also returns whether the row is new
/// (`xmax = 0` holds for a freshly inserted row only); on SQLite the caller looks first
/// ([`TEAM_EXISTS`]) in the same write transaction.
pub(crate) fn team_upsert(d: Dialect) -> String {
    let created = match d {
        Dialect::Postgres => ", (xmax = 0)",
        Dialect::Sqlite => "",
    };
    d.stmt(&format!(
        "INSERT INTO teams (name, auth, admin) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET auth = excluded.auth \
         RETURNING id, name, admin, auth{created}"
    ))
}
pub(crate) const TEAM_EXISTS: &str = "SELECT 1 FROM teams WHERE name = $1";
pub(crate) const TEAM_BY_NAME: &str = "SELECT id, name, admin, auth FROM teams WHERE name = $1";
pub(crate) const TEAMS: &str =
    "SELECT id, name, admin, auth FROM teams ORDER BY name COLLATE \"C\"";
pub(crate) const TEAM_RENAME: &str = "UPDATE teams SET name = $2 WHERE name = $1";
pub(crate) const TEAM_DELETE: &str = "DELETE FROM teams WHERE name = $1";
pub(crate) const TOKEN_SAVE: &str =
    "INSERT INTO access_tokens (token, claims, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (token) DO UPDATE SET claims = excluded.claims, expires_at = excluded.expires_at";
pub(crate) const TOKEN_CLAIMS: &str = "SELECT claims FROM access_tokens WHERE token = $1";
pub(crate) const TOKEN_DELETE: &str = "DELETE FROM access_tokens WHERE token = $1";
pub(crate) const TOKENS_EXPIRED_DELETE: &str = "DELETE FROM access_tokens WHERE expires_at < $1";
pub(crate) const USER_LOGIN: &str =
    "INSERT INTO users (username, connector, sub, last_login) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (username, connector) DO UPDATE SET sub = excluded.sub, \
     last_login = excluded.last_login";
pub(crate) const USERS_SINCE: &str = "SELECT id, username, connector, sub, last_login FROM users \
     WHERE last_login >= $1 ORDER BY last_login DESC, id";

// --- pipelines ----------------------------------------------------------------------------
pub(crate) const PIPELINE_CONFIG: &str = "SELECT config, config_version FROM pipelines \
     WHERE id = $1 AND NOT archived AND config IS NOT NULL";
pub(crate) const PIPELINE_SET_PAUSED: &str = "UPDATE pipelines SET paused = $2, \
     paused_by = CASE WHEN $2 THEN CAST($3 AS TEXT) END, \
     paused_at = CASE WHEN $2 THEN CAST($4 AS BIGINT) END WHERE id = $1";
pub(crate) const PIPELINE_SET_PUBLIC: &str = "UPDATE pipelines SET public = $2 WHERE id = $1";
pub(crate) const PIPELINE_RENAME: &str =
    "UPDATE pipelines SET name = $3 WHERE team_id = $1 AND name = $2";
pub(crate) const PIPELINE_DELETE: &str = "DELETE FROM pipelines WHERE id = $1";

// --- artifacts ----------------------------------------------------------------------------
/// Decoded by `rows::artifact_row`.
pub(crate) const ARTIFACT_INSERT: &str =
    "INSERT INTO worker_artifacts (team_id, build_id, name, worker_name, volume_handle, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     RETURNING id, team_id, build_id, name, worker_name, volume_handle, created_at";
pub(crate) const ARTIFACT_BY_ID: &str =
    "SELECT id, team_id, build_id, name, worker_name, volume_handle, created_at \
     FROM worker_artifacts WHERE id = $1 AND team_id = $2";
pub(crate) const ARTIFACTS_OF_BUILD: &str =
    "SELECT id, team_id, build_id, name, worker_name, volume_handle, created_at \
     FROM worker_artifacts WHERE build_id = $1 ORDER BY id";
pub(crate) const ARTIFACT_ATTACH: &str =
    "UPDATE worker_artifacts SET build_id = $2, name = $3 WHERE id = $1";

// --- signing keys and the wall ------------------------------------------------------------
pub(crate) const SIGNING_KEY_INSERT: &str =
    "INSERT INTO signing_keys (kid, kty, jwk, created_at) VALUES ($1, $2, $3, $4)";
/// Decoded by `rows::signing_key_row`.
pub(crate) const SIGNING_KEYS: &str =
    "SELECT kid, kty, jwk, created_at FROM signing_keys ORDER BY created_at, kid";
pub(crate) const SIGNING_KEY_DELETE: &str = "DELETE FROM signing_keys WHERE kid = $1";
/// Decoded by `rows::wall_row`.
pub(crate) const WALL: &str = "SELECT message, expires_at FROM wall WHERE id = 1";
pub(crate) const WALL_SET: &str = "INSERT INTO wall (id, message, expires_at) VALUES (1, $1, $2) \
     ON CONFLICT (id) DO UPDATE SET message = excluded.message, expires_at = excluded.expires_at";
pub(crate) const WALL_CLEAR: &str = "DELETE FROM wall";

/// Decoded by `rows::pipeline_row`, in this column order.
pub(crate) const PIPELINE_SELECT: &str =
    "SELECT p.id, p.team_id, t.name, p.name, p.instance_vars, \
     p.paused, COALESCE(p.paused_by, ''), COALESCE(p.paused_at, 0), p.public, p.archived, \
     p.ordering, p.config_version, p.config -> 'groups', p.config -> 'display', \
     p.config -> 'user_data', COALESCE(p.parent_job_id, 0), COALESCE(p.parent_build_id, 0), \
     COALESCE(p.last_updated, 0) \
     FROM pipelines p JOIN teams t ON t.id = p.team_id";

/// Decoded by `rows::job_row`.
pub(crate) const JOB_SELECT: &str = "SELECT j.id, j.pipeline_id, j.name, j.config, j.paused, \
     COALESCE(j.paused_by, ''), COALESCE(j.paused_at, 0), j.has_new_inputs, j.groups, \
     j.first_logged_build_id, j.next_build_id, j.latest_completed_build_id, j.transition_build_id \
     FROM jobs j";

/// Decoded by `rows::resource_row`.
/// A macro as well as a const, so statements built on it stay `const` (`concat!`).
macro_rules! resource_select {
    () => {
        "SELECT r.id, r.pipeline_id, r.name, r.type, r.config, \
     COALESCE(r.last_checked, 0), r.pinned_version, COALESCE(r.pin_comment, ''), \
     r.resource_config_scope_id, r.check_build_id, r.check_failed FROM resources r"
    };
}
pub(crate) const RESOURCE_SELECT: &str = resource_select!();

/// Decoded by `rows::build_row` (a macro too, so statements can `concat!` onto it).
macro_rules! build_select {
    () => {
        "SELECT b.id, b.team_id, t.name, b.name, b.status, b.job_id, \
     COALESCE(j.name, ''), b.pipeline_id, COALESCE(p.name, ''), p.instance_vars, \
     COALESCE(r.name, ''), b.plan, COALESCE(b.created_by, ''), COALESCE(b.comment, ''), \
     b.create_time, COALESCE(b.start_time, 0), COALESCE(b.end_time, 0), b.rerun_of, b.rerun_number, \
     COALESCE(b.reap_time, 0) \
     FROM builds b JOIN teams t ON t.id = b.team_id \
     LEFT JOIN jobs j ON j.id = b.job_id \
     LEFT JOIN pipelines p ON p.id = b.pipeline_id \
     LEFT JOIN resources r ON r.id = b.resource_id"
    };
}
pub(crate) const BUILD_SELECT: &str = build_select!();

/// [`BUILD_SELECT`] with a NULL plan, for lists of builds that never read theirs (the
/// dashboard's, the scheduler's): a plan is kilobytes of JSON to decode per build.
pub(crate) fn build_select_without_plan() -> String {
    BUILD_SELECT.replacen("b.plan", "CAST(NULL AS jsonb)", 1)
}

// After `build_select!`, which it uses.
mod build_logs;
pub(crate) use build_logs::*;

// --- jobs, resources, builds, leases ------------------------------------------------------
pub(crate) const JOB_SET_PAUSED: &str = "UPDATE jobs SET paused = $2, \
     paused_by = CASE WHEN $2 THEN CAST($3 AS TEXT) END, \
     paused_at = CASE WHEN $2 THEN CAST($4 AS BIGINT) END WHERE id = $1";
pub(crate) const RESOURCES_OF_PIPELINE: &str = concat!(
    resource_select!(),
    " WHERE r.pipeline_id = $1 AND r.active ORDER BY r.ordering, r.id"
);
pub(crate) const RESOURCE_BY_NAME: &str = concat!(
    resource_select!(),
    " WHERE r.pipeline_id = $1 AND r.name = $2 AND r.active"
);
/// A row comes back only when this holder has the lease afterwards: the upsert's WHERE
/// makes take-over and renewal one atomic decision.
pub(crate) const LEASE_TAKE: &str = "INSERT INTO leases (name, holder, expires_at) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
     expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at < $4 RETURNING holder";
pub(crate) const LEASE_RELEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

/// The dashboard's jobs, resources and builds of a list of pipelines (or builds), each
/// statement binding one id list.
pub(crate) struct OverviewSql {
    pub jobs: String,
    pub resources: String,
    pub builds: String,
    /// Decoded by `rows::job_mark`.
    pub job_marks: String,
    /// Decoded by `rows::resource_mark`.
    pub resource_marks: String,
}

impl OverviewSql {
    pub(crate) fn new(d: Dialect) -> Self {
        OverviewSql {
            // Without the jobs' configs: decoding 2,000 of them was most of a listing's
            // time, and what the listing derives from them is kept per config version.
            jobs: d.stmt(&format!(
                "{} WHERE {} AND j.active ORDER BY j.pipeline_id, j.ordering, j.id",
                JOB_SELECT.replacen("j.config", "CAST(NULL AS jsonb)", 1),
                d.in_ids("j.pipeline_id", "$1")
            )),
            resources: d.stmt(&format!(
                "{RESOURCE_SELECT} WHERE {} AND r.active ORDER BY r.pipeline_id, r.ordering, r.id",
                d.in_ids("r.pipeline_id", "$1")
            )),
            builds: d.stmt(&format!(
                "{} WHERE {} ORDER BY b.id",
                build_select_without_plan(),
                d.in_ids("b.id", "$1")
            )),
            job_marks: d.stmt(&format!(
                "SELECT j.id, j.pipeline_id, j.paused, j.next_build_id, \
                 j.latest_completed_build_id FROM jobs j WHERE {} AND j.active \
                 ORDER BY j.pipeline_id, j.id",
                d.in_ids("j.pipeline_id", "$1")
            )),
            resource_marks: d.stmt(&format!(
                "SELECT r.id, r.pipeline_id, r.name, COALESCE(r.last_checked, 0), \
                 CAST(r.pinned_version AS TEXT), r.resource_config_scope_id, r.check_failed, \
                 COALESCE(rs.versions_changed, 0), rc.source_hash FROM resources r \
                 LEFT JOIN resource_config_scopes rs ON rs.id = r.resource_config_scope_id \
                 LEFT JOIN resource_configs rc ON rc.id = rs.resource_config_id \
                 WHERE {} AND r.active ORDER BY r.pipeline_id, r.id",
                d.in_ids("r.pipeline_id", "$1")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_placeholders() {
        assert_eq!(
            super::sqlite("UPDATE t SET a = $2, p = json_set(p, '$.x', $1) WHERE id = $10"),
            "UPDATE t SET a = ?2, p = json_set(p, '$.x', ?1) WHERE id = ?10"
        );
        assert_eq!(
            super::sqlite("SELECT name FROM t ORDER BY name COLLATE \"C\""),
            "SELECT name FROM t ORDER BY name"
        );
    }
}
