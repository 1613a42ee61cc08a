//! Pipeline statements: lookups, config saves with their jobs and resources, ordering,
//! archiving.

use super::{Dialect, JOB_SELECT, PIPELINE_SELECT};

const ORDER: &str = "p.ordering, p.secondary_ordering, p.id";

pub(crate) struct PipelineSql {
    /// `$1` team name, `$2` name, `$3` instance vars (NULL for none).
    pub by_name: String,
    pub by_id: String,
    pub of_team: String,
    pub all: String,
    /// Unarchived pipelines of all teams without their config's groups, display and user
    /// data: extracting those from every config was most of listing them.
    pub live: String,
    /// The unarchived pipelines job `$1` set.
    pub set_by: String,
    pub team_exists: String,
    /// The id and config version of `$1` team's pipeline `$2` with vars `$3`, locked.
    pub current: String,
    pub next_config_version: String,
    pub update_config: String,
    /// A new instance joins its group's place in the team's order; a new group goes last.
    pub insert: String,
    pub job_names: String,
    pub update_job: String,
    pub insert_job: String,
    /// Deactivates `$1`'s jobs but the ids bound as one list at `$2`.
    pub retire_jobs: String,
    pub resource_names: String,
    pub update_resource: String,
    pub insert_resource: String,
    pub retire_resources: String,
    /// The team's pipeline names (groups of instances) in their order.
    pub groups: String,
    pub set_ordering: String,
    /// A group's instances in their order, locked.
    pub instances: String,
    pub set_secondary_ordering: String,
    pub archive: String,
    pub archive_jobs: String,
    pub archive_resources: String,
    pub jobs: String,
    pub job: String,
}

impl PipelineSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let s = |sql: String| d.stmt(&sql);
        let names = |table: &str| {
            s(format!(
                "SELECT id, name FROM {table} WHERE pipeline_id = $1"
            ))
        };
        let retire = |table: &str| {
            s(format!(
                "UPDATE {table} SET active = false WHERE pipeline_id = $1 AND NOT ({})",
                d.in_ids("id", "$2")
            ))
        };
        let archive_rows = |table: &str| {
            s(format!(
                "UPDATE {table} SET active = false, config = NULL WHERE pipeline_id = $1"
            ))
        };
        PipelineSql {
            by_name: s(format!(
                "{PIPELINE_SELECT} WHERE t.name = $1 AND p.name = $2 \
                 AND p.instance_vars IS NOT DISTINCT FROM $3"
            )),
            by_id: s(format!("{PIPELINE_SELECT} WHERE p.id = $1")),
            of_team: s(format!(
                "{PIPELINE_SELECT} WHERE t.name = $1 ORDER BY {ORDER}"
            )),
            all: s(format!(
                "{PIPELINE_SELECT} ORDER BY t.name COLLATE \"C\", {ORDER}"
            )),
            set_by: s(format!(
                "{PIPELINE_SELECT} WHERE p.parent_job_id = $1 AND NOT p.archived ORDER BY p.id"
            )),
            live: s(format!(
                "{} WHERE NOT p.archived ORDER BY t.name COLLATE \"C\", {ORDER}",
                PIPELINE_SELECT
                    .replacen("p.config -> 'groups'", "CAST(NULL AS jsonb)", 1)
                    .replacen("p.config -> 'display'", "CAST(NULL AS jsonb)", 1)
                    .replacen("p.config -> 'user_data'", "CAST(NULL AS jsonb)", 1)
            )),
            team_exists: s("SELECT 1 FROM teams WHERE id = $1".into()),
            current: s(format!(
                "SELECT id, config_version FROM pipelines WHERE team_id = $1 AND name = $2 \
                 AND instance_vars IS NOT DISTINCT FROM $3{}",
                d.lock(" FOR UPDATE")
            )),
            next_config_version: d.next_value("config_version_seq"),
            update_config: s("UPDATE pipelines SET config = $2, config_version = $3, \
                 archived = false, last_updated = $4, parent_job_id = $5, parent_build_id = $6 \
                 WHERE id = $1"
                .into()),
            insert: s(
                "INSERT INTO pipelines (team_id, name, instance_vars, config, \
                 config_version, paused, ordering, secondary_ordering, parent_job_id, \
                 parent_build_id, last_updated) VALUES ($1, $2, $3, $4, $5, $6, \
                 COALESCE((SELECT MIN(ordering) FROM pipelines WHERE team_id = $1 AND name = $2), \
                 (SELECT COALESCE(MAX(ordering), 0) + 1 FROM pipelines WHERE team_id = $1)), \
                 (SELECT COALESCE(MAX(secondary_ordering), 0) + 1 FROM pipelines \
                 WHERE team_id = $1 AND name = $2), $7, $8, $9) RETURNING id"
                    .into(),
            ),
            job_names: names("jobs"),
            update_job: s("UPDATE jobs SET name = $2, config = $3, active = true, \
                 ordering = $4, groups = $5 WHERE id = $1"
                .into()),
            insert_job: s(
                "INSERT INTO jobs (pipeline_id, name, config, ordering, groups) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id"
                    .into(),
            ),
            retire_jobs: retire("jobs"),
            resource_names: names("resources"),
            update_resource: {
                // A resource whose type or source changed has other versions to find: its
                // old scope and check time no longer speak for it, and its next periodic
                // check is due at once. (SET expressions read the row before the update.)
                let same = match d {
                    Dialect::Postgres => {
                        "type = $3 AND config->'source' IS NOT DISTINCT FROM $4::jsonb->'source'"
                    }
                    Dialect::Sqlite => "type = $3 AND config->'source' IS $4->'source'",
                };
                s(format!(
                    "UPDATE resources SET \
                     resource_config_scope_id = CASE WHEN {same} THEN resource_config_scope_id END, \
                     last_checked = CASE WHEN {same} THEN last_checked END, \
                     name = $2, type = $3, config = $4, active = true, ordering = $5 WHERE id = $1"
                ))
            },
            insert_resource: s("INSERT INTO resources (pipeline_id, name, type, config, \
                 ordering) VALUES ($1, $2, $3, $4, $5) RETURNING id"
                .into()),
            retire_resources: retire("resources"),
            groups: s(
                "SELECT name FROM pipelines WHERE team_id = $1 GROUP BY name \
                 ORDER BY MIN(ordering), MIN(id)"
                    .into(),
            ),
            set_ordering: s(
                "UPDATE pipelines SET ordering = $3 WHERE team_id = $1 AND name = $2".into(),
            ),
            instances: s(format!(
                "SELECT id, instance_vars FROM pipelines WHERE team_id = $1 AND name = $2 \
                 ORDER BY secondary_ordering, id{}",
                d.lock(" FOR UPDATE")
            )),
            set_secondary_ordering: s(
                "UPDATE pipelines SET secondary_ordering = $2 WHERE id = $1".into()
            ),
            archive: s(
                "UPDATE pipelines SET archived = true, paused = true, paused_by = $2, \
                 paused_at = $3, config = NULL, config_version = 0, last_updated = $3 \
                 WHERE id = $1"
                    .into(),
            ),
            archive_jobs: archive_rows("jobs"),
            archive_resources: archive_rows("resources"),
            jobs: s(format!(
                "{JOB_SELECT} WHERE j.pipeline_id = $1 AND j.active ORDER BY j.ordering, j.id"
            )),
            job: s(format!(
                "{JOB_SELECT} WHERE j.pipeline_id = $1 AND j.name = $2 AND j.active"
            )),
        }
    }
}
