//! Resource config scopes and versions, build inputs/outputs and plans.

use super::super::*;
use super::builds;
use super::rows::{
    build_input_row, build_output_row, build_row, first, latest_input, tuple, version_row,
};
use crate::db::sql::{Dialect, ResourceSql};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::sync::LazyLock;

static SQL: LazyLock<ResourceSql> = LazyLock::new(|| ResourceSql::new(Dialect::Sqlite));

pub(super) fn resource_scope(
    conn: &mut Connection,
    base_type: &str,
    key: &str,
    owner: Option<i64>,
) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(&SQL.insert_config, params![base_type, key])?;
    let config: i64 = tx.query_row(&SQL.config_id, params![base_type, key], first)?;
    let existing: Option<i64> = tx
        .query_row(&SQL.scope, params![config, owner], first)
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => tx.query_row(&SQL.insert_scope, params![config, owner], first)?,
    };
    tx.commit()?;
    Ok(id)
}

pub(super) fn set_resource_scope(conn: &Connection, resource: i64, scope: i64) -> Result<()> {
    let n = conn.execute(&SQL.set_scope, params![resource, scope])?;
    found(n as u64, || format!("resource {resource}"))
}

pub(super) fn save_versions(
    conn: &mut Connection,
    scope: i64,
    versions: &[NewVersion],
) -> Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut new = 0;
    for v in versions {
        let sha = version_sha256(&v.version);
        let meta = stored_metadata(&v.metadata).to_string();
        let inserted: Option<i64> = tx
            .prepare_cached(&SQL.insert_version)?
            .query_row(params![scope, v.version.to_string(), sha, meta], first)
            .optional()?;
        if inserted.is_some() {
            new += 1;
        } else if has_metadata(&v.metadata) {
            tx.execute(&SQL.set_version_metadata, params![scope, sha, meta])?;
        }
    }
    // Like upstream: when anything was new, the returned list's order becomes the newest
    // part of the history, so its last element is the latest version.
    if new > 0 {
        let max: i64 = tx.query_row(&SQL.max_check_order, [scope], first)?;
        for (order, v) in (max + 1..).zip(versions) {
            tx.execute(
                &SQL.set_check_order,
                params![scope, version_sha256(&v.version), order],
            )?;
        }
        tx.execute(&SQL.versions_changed, [scope])?;
    }
    tx.commit()?;
    Ok(new)
}

fn order_of(conn: &Connection, id: Option<i64>) -> Result<Option<i64>> {
    let Some(id) = id else { return Ok(None) };
    Ok(conn.query_row(&SQL.check_order, [id], first).optional()?)
}

pub(super) fn versions(conn: &Connection, scope: i64, page: &Page) -> Result<Vec<VersionRow>> {
    let window = VersionWindow::new(page, order_of(conn, page.from)?, order_of(conn, page.to)?);
    let rows = if window.anchored_at_from {
        conn.prepare_cached(&SQL.versions_from)?
            .query_map(params![scope, window.from, window.limit], version_row)?
            .collect::<Result<_, _>>()?
    } else {
        conn.prepare_cached(&SQL.versions_between)?
            .query_map(
                params![scope, window.to, window.from, window.limit],
                version_row,
            )?
            .collect::<Result<_, _>>()?
    };
    Ok(window.newest_first(rows))
}

pub(super) fn version(conn: &Connection, id: i64) -> Result<Option<VersionRow>> {
    Ok(conn.query_row(&SQL.version, [id], version_row).optional()?)
}

pub(super) fn find_version(conn: &Connection, scope: i64, v: &Value) -> Result<Option<VersionRow>> {
    Ok(conn
        .query_row(
            &SQL.version_by_sha,
            params![scope, version_sha256(v)],
            version_row,
        )
        .optional()?)
}

pub(super) fn set_version_enabled(conn: &mut Connection, id: i64, enabled: bool) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx.execute(&SQL.set_version_enabled, params![id, enabled])? > 0;
    tx.execute(&SQL.version_changed, [id])?;
    tx.commit()?;
    Ok(found)
}

pub(super) fn pin_resource(
    conn: &Connection,
    resource: i64,
    version: Option<&Value>,
    comment: Option<&str>,
) -> Result<()> {
    let n = match version {
        Some(v) => conn.execute(&SQL.pin, params![resource, v.to_string(), comment])?,
        None => conn.execute(&SQL.unpin, [resource])?,
    };
    found(n as u64, || format!("resource {resource}"))
}

pub(super) fn record_resource_check(
    conn: &Connection,
    resource: i64,
    at: i64,
    build: Option<i64>,
    succeeded: bool,
) -> Result<()> {
    conn.execute(&SQL.record_check, params![resource, at, build, !succeeded])?;
    Ok(())
}

pub(super) fn scheduling_snapshot(conn: &Connection, pipeline: i64) -> Result<SchedulingSnapshot> {
    fn all<T: crate::db::rows::Tuple>(
        conn: &Connection,
        sql: &str,
        pipeline: i64,
    ) -> Result<Vec<T>> {
        Ok(conn
            .prepare_cached(sql)?
            .query_map([pipeline], tuple)?
            .collect::<Result<_, _>>()?)
    }
    let versions = all(conn, &SQL.snapshot_versions, pipeline)?;
    let inputs: Vec<IoRow> = all(conn, &SQL.snapshot_inputs, pipeline)?;
    let outputs: Vec<IoRow> = all(conn, &SQL.snapshot_outputs, pipeline)?;
    let succeeded = all(conn, &SQL.snapshot_succeeded, pipeline)?;
    Ok(assemble_snapshot(versions, succeeded, &inputs, &outputs))
}

pub(super) fn save_build_inputs(
    conn: &mut Connection,
    build: i64,
    inputs: &[BuildInputRow],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(&SQL.delete_inputs, [build])?;
    {
        let mut insert = tx.prepare_cached(&SQL.insert_input)?;
        for i in inputs {
            insert.execute(params![
                build,
                i.name,
                i.resource_id,
                i.version.to_string(),
                version_sha256(&i.version),
                i.first_occurrence
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn build_inputs(conn: &Connection, build: i64) -> Result<Vec<BuildInputRow>> {
    Ok(conn
        .prepare_cached(&SQL.inputs)?
        .query_map([build], build_input_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn latest_build_inputs(
    conn: &Connection,
    pipeline: i64,
) -> Result<Vec<(i64, BuildInputRow)>> {
    Ok(conn
        .prepare_cached(&SQL.latest_inputs)?
        .query_map([pipeline], latest_input)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn save_build_output(
    conn: &mut Connection,
    build: i64,
    o: &BuildOutputRow,
) -> Result<()> {
    let scope: Option<i64> = conn
        .query_row(&SQL.scope_of_resource, [o.resource_id], first)
        .optional()?
        .flatten();
    if let Some(scope) = scope {
        if find_version(conn, scope, &o.version)?.is_none() {
            save_versions(conn, scope, &[o.as_version()])?;
        }
    }
    conn.execute(
        &SQL.insert_output,
        params![
            build,
            o.name,
            o.resource_id,
            o.version.to_string(),
            version_sha256(&o.version)
        ],
    )?;
    Ok(())
}

pub(super) fn build_outputs(conn: &Connection, build: i64) -> Result<Vec<BuildOutputRow>> {
    Ok(conn
        .prepare_cached(&SQL.outputs)?
        .query_map([build], build_output_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn builds_with_status(
    conn: &Connection,
    statuses: &[BuildStatus],
) -> Result<Vec<BuildRow>> {
    let list = Value::from(statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    Ok(conn
        .prepare_cached(builds::SQL.with_status(statuses))?
        .query_map([list.to_string()], build_row)?
        .collect::<Result<_, _>>()?)
}
