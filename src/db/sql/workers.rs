//! Worker statements, built once per dialect (the JSON edits differ).

use super::Dialect;

const COLUMNS: &str = "name, team_id, payload, state, expires_at";

/// Decoded by `rows::worker_row`.
pub(crate) const WORKER_SELECT: &str =
    "SELECT name, team_id, payload, state, expires_at FROM workers";

pub(crate) struct WorkerSql {
    pub team_id: String,
    pub register: String,
    pub heartbeat: String,
    pub by_name: String,
    pub all: String,
    pub land: String,
    pub retire: String,
    pub prune: String,
    pub delete: String,
    pub stall: String,
    pub delete_expired_ephemeral: String,
    pub land_drained: String,
    pub delete_retired: String,
}

impl WorkerSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let ephemeral = d.json_flag("payload", "ephemeral");
        let counts = d.json_merge(
            "payload",
            &d.json_object(&[
                ("active_containers", "CAST($3 AS BIGINT)"),
                ("active_volumes", "CAST($4 AS BIGINT)"),
            ]),
        );
        let unreachable = d.json_merge(
            "payload",
            &d.json_object(&[("addr", "''"), ("baggageclaim_url", "''")]),
        );
        let s = |sql: String| d.stmt(&sql);
        WorkerSql {
            team_id: s("SELECT id FROM teams WHERE name = $1".into()),
            // The conditional DO UPDATE returns no row when the name belongs to another
            // team's (or a global) worker: the check and the write are one statement.
            register: s(format!(
                "INSERT INTO workers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET payload = excluded.payload, \
                 state = excluded.state, expires_at = excluded.expires_at \
                 WHERE workers.team_id IS NOT DISTINCT FROM excluded.team_id \
                 RETURNING {COLUMNS}"
            )),
            heartbeat: s(format!(
                "UPDATE workers SET expires_at = $2, \
                 state = CASE WHEN state IN ('landing', 'landed', 'retiring') THEN state \
                 ELSE 'running' END, payload = {counts} \
                 WHERE name = $1 RETURNING {COLUMNS}"
            )),
            by_name: s(format!("{WORKER_SELECT} WHERE name = $1")),
            all: s(format!("{WORKER_SELECT} ORDER BY name COLLATE \"C\"")),
            land: s(format!(
                "UPDATE workers SET state = CASE WHEN state = 'landed' THEN 'landed' \
                 ELSE 'landing' END WHERE name = $1 RETURNING {COLUMNS}"
            )),
            retire: s(format!(
                "UPDATE workers SET state = 'retiring' WHERE name = $1 RETURNING {COLUMNS}"
            )),
            prune: s("DELETE FROM workers WHERE name = $1 AND state <> 'running'".into()),
            delete: s("DELETE FROM workers WHERE name = $1".into()),
            stall: s(format!(
                "UPDATE workers SET state = 'stalled', expires_at = 0 \
                 WHERE state = 'running' AND expires_at <> 0 AND expires_at < $1 \
                 AND NOT {ephemeral} RETURNING name"
            )),
            delete_expired_ephemeral: s(format!(
                "DELETE FROM workers WHERE expires_at <> 0 AND expires_at < $1 \
                 AND {ephemeral} RETURNING name"
            )),
            // Whether the worker is drained is asked of the worker itself (its containers),
            // not of the database: these only make the transition, if the state still holds.
            land_drained: s(format!(
                "UPDATE workers SET state = 'landed', payload = {unreachable} \
                 WHERE name = $1 AND state = 'landing'"
            )),
            delete_retired: s("DELETE FROM workers WHERE name = $1 AND state = 'retiring'".into()),
        }
    }
}
