//! Worker registration and lifecycle on the embedded store. Each transition is one guarded
//! statement, as on PostgreSQL.

use super::super::sql::{Dialect, WorkerSql};
use super::super::*;
use super::rows::worker_row;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::sync::LazyLock;

static SQL: LazyLock<WorkerSql> = LazyLock::new(|| WorkerSql::new(Dialect::Sqlite));

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
            tx.query_row(&SQL.team_id, [&worker.team], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("team {}", worker.team)))?,
        )
    };
    let state = worker.state.unwrap_or(WorkerState::Running);
    let row = one(
        &tx,
        &SQL.register,
        params![
            worker.name,
            team_id,
            payload.to_string(),
            state.as_str(),
            expires_at
        ],
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
        &SQL.heartbeat,
        params![name, expires_at, active_containers, active_volumes],
    )
}

pub(super) fn worker(conn: &mut Connection, name: &str) -> Result<Option<WorkerRow>> {
    one(conn, &SQL.by_name, [name])
}

pub(super) fn workers(conn: &mut Connection) -> Result<Vec<WorkerRow>> {
    Ok(conn
        .prepare_cached(&SQL.all)?
        .query_map([], worker_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn land_worker(conn: &mut Connection, name: &str) -> Result<Option<WorkerRow>> {
    one(conn, &SQL.land, [name])
}

pub(super) fn retire_worker(conn: &mut Connection, name: &str) -> Result<Option<WorkerRow>> {
    one(conn, &SQL.retire, [name])
}

pub(super) fn prune_worker(conn: &mut Connection, name: &str) -> Result<bool> {
    if conn.execute(&SQL.prune, [name])? > 0 {
        return Ok(true);
    }
    match worker(conn, name)? {
        Some(_) => Err(StoreError::Invalid(PRUNE_RUNNING_WORKER.into())),
        None => Ok(false),
    }
}

pub(super) fn delete_worker(conn: &mut Connection, name: &str) -> Result<bool> {
    Ok(conn.execute(&SQL.delete, [name])? > 0)
}

pub(super) fn stall_unresponsive_workers(conn: &mut Connection, now: i64) -> Result<Vec<String>> {
    names(conn, &SQL.stall, [now])
}

pub(super) fn delete_expired_ephemeral_workers(
    conn: &mut Connection,
    now: i64,
) -> Result<Vec<String>> {
    names(conn, &SQL.delete_expired_ephemeral, [now])
}

pub(super) fn land_drained_worker(conn: &mut Connection, name: &str) -> Result<bool> {
    Ok(conn.execute(&SQL.land_drained, [name])? > 0)
}

pub(super) fn delete_retired_worker(conn: &mut Connection, name: &str) -> Result<bool> {
    Ok(conn.execute(&SQL.delete_retired, [name])? > 0)
}
