//! Resource config scopes and versions, build inputs/outputs and plans: SQLite statements.

use super::super::*;
use super::build_row;
use super::rows::{build_input_row, build_output_row, version_row};
use crate::db::sql::BUILD_SELECT;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

const VERSION_SELECT: &str =
    "SELECT id, resource_config_scope_id, version, metadata, enabled, check_order \
     FROM resource_config_versions";

pub(super) fn resource_scope(
    conn: &mut Connection,
    base_type: &str,
    key: &str,
    owner: Option<i64>,
) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO resource_configs (base_resource_type, source_hash) VALUES (?1, ?2) \
         ON CONFLICT (base_resource_type, source_hash) DO NOTHING",
        params![base_type, key],
    )?;
    let config: i64 = tx.query_row(
        "SELECT id FROM resource_configs WHERE base_resource_type = ?1 AND source_hash = ?2",
        params![base_type, key],
        |r| r.get(0),
    )?;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM resource_config_scopes WHERE resource_config_id = ?1 AND resource_id IS ?2 \
             ORDER BY id LIMIT 1",
            params![config, owner],
            |r| r.get(0),
        )
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            tx.execute(
                "INSERT INTO resource_config_scopes (resource_config_id, resource_id) VALUES (?1, ?2)",
                params![config, owner],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.commit()?;
    Ok(id)
}

pub(super) fn set_resource_scope(conn: &Connection, resource: i64, scope: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE resources SET resource_config_scope_id = ?2 WHERE id = ?1",
        params![resource, scope],
    )?;
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
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM resource_config_versions WHERE resource_config_scope_id = ?1 AND version_sha256 = ?2",
                params![scope, sha],
                |r| r.get(0),
            )
            .optional()?;
        let has_meta = v.metadata.as_array().is_some_and(|a| !a.is_empty());
        match exists {
            Some(id) => {
                if has_meta {
                    tx.execute(
                        "UPDATE resource_config_versions SET metadata = ?2 WHERE id = ?1",
                        params![id, v.metadata.to_string()],
                    )?;
                }
            }
            None => {
                new += 1;
                let meta = if has_meta {
                    v.metadata.clone()
                } else {
                    Value::Array(vec![])
                };
                tx.execute(
                    "INSERT INTO resource_config_versions \
                     (resource_config_scope_id, version, version_sha256, metadata, check_order) \
                     VALUES (?1, ?2, ?3, ?4, 0)",
                    params![scope, v.version.to_string(), sha, meta.to_string()],
                )?;
            }
        }
    }
    // Like upstream: when anything was new, the returned list's order becomes the newest
    // part of the history, so its last element is the latest version.
    if new > 0 {
        let max: i64 = tx.query_row(
            "SELECT COALESCE(MAX(check_order), 0) FROM resource_config_versions WHERE resource_config_scope_id = ?1",
            params![scope],
            |r| r.get(0),
        )?;
        for (i, v) in versions.iter().enumerate() {
            tx.execute(
                "UPDATE resource_config_versions SET check_order = ?3 \
                 WHERE resource_config_scope_id = ?1 AND version_sha256 = ?2",
                params![scope, version_sha256(&v.version), max + 1 + i as i64],
            )?;
        }
    }
    tx.commit()?;
    Ok(new)
}

fn order_of(conn: &Connection, id: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT check_order FROM resource_config_versions WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?)
}

pub(super) fn versions(conn: &Connection, scope: i64, page: &Page) -> Result<Vec<VersionRow>> {
    let limit = if page.limit <= 0 {
        i64::MAX
    } else {
        page.limit
    };
    let to = match page.to {
        Some(id) => order_of(conn, id)?.unwrap_or(i64::MAX),
        None => i64::MAX,
    };
    if let (Some(from), None) = (page.from, page.to) {
        let from = order_of(conn, from)?.unwrap_or(i64::MIN);
        let mut rows: Vec<VersionRow> = conn
            .prepare_cached(&format!(
                "{VERSION_SELECT} WHERE resource_config_scope_id = ?1 AND check_order >= ?2 \
                 ORDER BY check_order ASC LIMIT ?3"
            ))?
            .query_map(params![scope, from, limit], version_row)?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        return Ok(rows);
    }
    let from = match page.from {
        Some(id) => order_of(conn, id)?.unwrap_or(i64::MIN),
        None => i64::MIN,
    };
    Ok(conn
        .prepare_cached(&format!(
            "{VERSION_SELECT} WHERE resource_config_scope_id = ?1 AND check_order <= ?2 AND check_order >= ?3 \
             ORDER BY check_order DESC LIMIT ?4"
        ))?
        .query_map(params![scope, to, from, limit], version_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn version(conn: &Connection, id: i64) -> Result<Option<VersionRow>> {
    Ok(conn
        .query_row(
            &format!("{VERSION_SELECT} WHERE id = ?1"),
            params![id],
            version_row,
        )
        .optional()?)
}

pub(super) fn find_version(conn: &Connection, scope: i64, v: &Value) -> Result<Option<VersionRow>> {
    Ok(conn
        .query_row(
            &format!(
                "{VERSION_SELECT} WHERE resource_config_scope_id = ?1 AND version_sha256 = ?2"
            ),
            params![scope, version_sha256(v)],
            version_row,
        )
        .optional()?)
}

pub(super) fn set_version_enabled(conn: &Connection, id: i64, enabled: bool) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE resource_config_versions SET enabled = ?2 WHERE id = ?1",
        params![id, enabled],
    )? > 0)
}

pub(super) fn pin_resource(
    conn: &Connection,
    resource: i64,
    version: Option<&Value>,
    comment: Option<&str>,
) -> Result<()> {
    let n = match version {
        Some(v) => conn.execute(
            "UPDATE resources SET pinned_version = ?2, pin_comment = COALESCE(?3, pin_comment) WHERE id = ?1",
            params![resource, v.to_string(), comment],
        )?,
        None => conn.execute(
            "UPDATE resources SET pinned_version = NULL, pin_comment = NULL WHERE id = ?1",
            params![resource],
        )?,
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
    conn.execute(
        "UPDATE resources SET last_checked = ?2, check_build_id = COALESCE(?3, check_build_id), \
         check_failed = ?4 WHERE id = ?1",
        params![resource, at, build, !succeeded],
    )?;
    Ok(())
}

pub(super) fn scheduling_snapshot(conn: &Connection, pipeline: i64) -> Result<SchedulingSnapshot> {
    let versions = conn
        .prepare_cached(
            "SELECT r.id, v.id FROM resources r \
             JOIN resource_config_versions v ON v.resource_config_scope_id = r.resource_config_scope_id \
             WHERE r.pipeline_id = ?1 AND r.active AND v.enabled ORDER BY r.id, v.check_order",
        )?
        .query_map(params![pipeline], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<(i64, i64)>, _>>()?;
    // Inputs and outputs of the pipeline's job builds, mapped to current-scope versions.
    let io = |table: &str| -> Result<Vec<IoRow>> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT b.id, b.job_id, b.status, io.resource_id, v.id FROM {table} io \
                 JOIN builds b ON b.id = io.build_id \
                 JOIN resources r ON r.id = io.resource_id \
                 JOIN resource_config_versions v ON v.resource_config_scope_id = r.resource_config_scope_id \
                   AND v.version_sha256 = io.version_sha256 \
                 WHERE b.pipeline_id = ?1 AND b.job_id IS NOT NULL ORDER BY b.id"
            ))?
            .query_map(params![pipeline], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?)
    };
    let inputs = io("build_inputs")?;
    let outputs = io("build_outputs")?;
    let succeeded: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, job_id FROM builds WHERE pipeline_id = ?1 AND job_id IS NOT NULL \
             AND status = 'succeeded' ORDER BY id",
        )?
        .query_map(params![pipeline], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(crate::db::assemble_snapshot(
        versions, succeeded, &inputs, &outputs,
    ))
}

pub(super) fn save_build_inputs(
    conn: &mut Connection,
    build: i64,
    inputs: &[BuildInputRow],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM build_inputs WHERE build_id = ?1",
        params![build],
    )?;
    for i in inputs {
        tx.execute(
            "INSERT INTO build_inputs (build_id, name, resource_id, version, version_sha256, first_occurrence) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![build, i.name, i.resource_id, i.version.to_string(), version_sha256(&i.version), i.first_occurrence],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn build_inputs(conn: &Connection, build: i64) -> Result<Vec<BuildInputRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT name, resource_id, version, first_occurrence FROM build_inputs WHERE build_id = ?1 ORDER BY name",
        )?
        .query_map(params![build], build_input_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn save_build_output(
    conn: &mut Connection,
    build: i64,
    o: &BuildOutputRow,
) -> Result<()> {
    let sha = version_sha256(&o.version);
    let scope: Option<i64> = conn
        .query_row(
            "SELECT resource_config_scope_id FROM resources WHERE id = ?1",
            params![o.resource_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if let Some(scope) = scope {
        let known: Option<i64> = conn
            .query_row(
                "SELECT id FROM resource_config_versions WHERE resource_config_scope_id = ?1 AND version_sha256 = ?2",
                params![scope, sha],
                |r| r.get(0),
            )
            .optional()?;
        if known.is_none() {
            save_versions(
                conn,
                scope,
                &[NewVersion {
                    version: o.version.clone(),
                    metadata: o.metadata.clone(),
                }],
            )?;
        }
    }
    conn.execute(
        "INSERT INTO build_outputs (build_id, name, resource_id, version, version_sha256) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![build, o.name, o.resource_id, o.version.to_string(), sha],
    )?;
    Ok(())
}

pub(super) fn build_outputs(conn: &Connection, build: i64) -> Result<Vec<BuildOutputRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT o.name, o.resource_id, o.version, v.metadata FROM build_outputs o \
             JOIN resources r ON r.id = o.resource_id \
             LEFT JOIN resource_config_versions v ON v.resource_config_scope_id = r.resource_config_scope_id \
               AND v.version_sha256 = o.version_sha256 \
             WHERE o.build_id = ?1 ORDER BY o.name",
        )?
        .query_map(params![build], build_output_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn save_build_plan(conn: &Connection, build: i64, plan: &Value) -> Result<()> {
    let n = conn.execute(
        "UPDATE builds SET plan = ?2 WHERE id = ?1",
        params![build, plan.to_string()],
    )?;
    found(n as u64, || format!("build {build}"))
}

pub(super) fn builds_with_status(
    conn: &Connection,
    statuses: &[BuildStatus],
) -> Result<Vec<BuildRow>> {
    let list: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    Ok(conn
        .prepare(&format!(
            "{BUILD_SELECT} WHERE b.status IN ({}) ORDER BY b.id",
            list.join(", ")
        ))?
        .query_map([], build_row)?
        .collect::<Result<_, _>>()?)
}
