//! Worker registration and lifecycle on the embedded store. Each transition is one guarded
//! statement, as on PostgreSQL.

use super::super::sql::{WORKER_COLUMNS, WORKER_SELECT};
use super::super::*;
use super::rows::worker_row;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

fn one(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<WorkerRow>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, worker_row)
        .optional()?)
}

fn names(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>> {
    let mut names: Vec<String> = conn
        .prepare_cached(sql)?
        .query_map(params, |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

pub(super) fn register_worker(
    conn: &mut Connection,
    worker: &Worker,
    payload: &Value,
    expires_at: i64,
) -> Result<WorkerRow> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let team_id: Option<i64> = if worker.team.is_empty() {
        None
    } else {
        Some(
            tx.query_row(
                "SELECT id FROM teams WHERE name = ?1",
                [&worker.team],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("team {}", worker.team)))?,
        )
    };
    let state = worker.state.unwrap_or(WorkerState::Running);
    let row = one(
        &tx,
        &format!(
            "INSERT INTO workers (name, team_id, payload, state, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (name) DO UPDATE SET payload = excluded.payload, state = excluded.state, \
             expires_at = excluded.expires_at WHERE workers.team_id IS excluded.team_id \
             RETURNING {WORKER_COLUMNS}"
        ),
        params![worker.name, team_id, payload.to_string(), state.as_str(), expires_at],
    )?
    .ok_or_else(|| StoreError::Conflict(WORKER_TEAM_CONFLICT.into()))?;
    tx.commit()?;
    Ok(row)
}

pub(super) fn heartbeat_worker(
    conn: &mut Connection,
    name: &str,
    active_containers: i64,
    active_volumes: i64,
    expires_at: i64,
) -> Result<Option<WorkerRow>> {
    one(
        conn,
        &format!(
            "UPDATE workers SET expires_at = ?2, \
             state = CASE WHEN state IN ('landing', 'landed', 'retiring') THEN state ELSE 'running' END, \
             payload = json_set(payload, '$.active_containers', ?3, '$.active_volumes', ?4) \
             WHERE name = ?1 RETURNING {WORKER_COLUMNS}"
        ),
        params![name, expires_at, active_containers, active_volumes],
    )
}

pub(super) fn worker(conn: &mut Connection, name: &str) -> Result<Option<WorkerRow>> {
    one(conn, &format!("{WORKER_SELECT} WHERE name = ?1"), [name])
}

pub(super) fn workers(conn: &mut Connection) -> Result<Vec<WorkerRow>> {
    Ok(conn
        .prepare_cached(&format!("{WORKER_SELECT} ORDER BY name"))?
        .query_map([], worker_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn land_worker(conn: &mut Connection, name: &str) -> Result<Option<WorkerRow>> {
    one(
        conn,
        &format!(
            "UPDATE workers SET state = CASE WHEN state = 'landed' THEN 'landed' ELSE 'landing' END \
             WHERE name = ?1 RETURNING {WORKER_COLUMNS}"
        ),
        [name],
    )
}

pub(super) fn retire_worker(conn: &mut Connection, name: &str) -> Result<Option<WorkerRow>> {
    one(
        conn,
        &format!(
            "UPDATE workers SET state = 'retiring' WHERE name = ?1 RETURNING {WORKER_COLUMNS}"
        ),
        [name],
    )
}

pub(super) fn prune_worker(conn: &mut Connection, name: &str) -> Result<bool> {
    if conn.execute(
        "DELETE FROM workers WHERE name = ?1 AND state <> 'running'",
        [name],
    )? > 0
    {
        return Ok(true);
    }
    match worker(conn, name)? {
        Some(_) => Err(StoreError::Invalid(PRUNE_RUNNING_WORKER.into())),
        None => Ok(false),
    }
}

pub(super) fn delete_worker(conn: &mut Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM workers WHERE name = ?1", [name])? > 0)
}

pub(super) fn stall_unresponsive_workers(conn: &mut Connection, now: i64) -> Result<Vec<String>> {
    names(
        conn,
        "UPDATE workers SET state = 'stalled', expires_at = 0 \
         WHERE state = 'running' AND expires_at <> 0 AND expires_at < ?1 \
         AND NOT coalesce(json_extract(payload, '$.ephemeral'), 0) RETURNING name",
        [now],
    )
}

pub(super) fn delete_expired_ephemeral_workers(
    conn: &mut Connection,
    now: i64,
) -> Result<Vec<String>> {
    names(
        conn,
        "DELETE FROM workers WHERE expires_at <> 0 AND expires_at < ?1 \
         AND coalesce(json_extract(payload, '$.ephemeral'), 0) RETURNING name",
        [now],
    )
}

/// No container of an unfinished build that holds the worker: one-off builds and builds of
/// jobs that are not `interruptible`.
const DRAINED: &str = "NOT EXISTS (SELECT 1 FROM containers c JOIN builds b ON b.id = c.build_id \
     LEFT JOIN jobs j ON j.id = b.job_id \
     WHERE c.worker_name = workers.name AND b.status IN ('pending', 'started') \
     AND (j.id IS NULL OR NOT coalesce(json_extract(j.config, '$.interruptible'), 0)))";

pub(super) fn land_drained_workers(conn: &mut Connection) -> Result<Vec<String>> {
    names(
        conn,
        &format!(
            "UPDATE workers SET state = 'landed', \
             payload = json_set(payload, '$.addr', '', '$.baggageclaim_url', '') \
             WHERE state = 'landing' AND {DRAINED} RETURNING name"
        ),
        [],
    )
}

pub(super) fn delete_drained_retiring_workers(conn: &mut Connection) -> Result<Vec<String>> {
    names(
        conn,
        &format!("DELETE FROM workers WHERE state = 'retiring' AND {DRAINED} RETURNING name"),
        [],
    )
}
