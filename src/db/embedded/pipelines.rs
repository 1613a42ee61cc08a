//! Pipelines with their jobs and resources: config saves, ordering, archiving.

use super::is_unique_violation;
use super::rows::{first, pipeline_row, tuple};
use crate::db::sql::{Dialect, PipelineSql};
use crate::db::*;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::sync::LazyLock;

pub(super) static SQL: LazyLock<PipelineSql> = LazyLock::new(|| PipelineSql::new(Dialect::Sqlite));

/// `instance_vars` is canonical JSON text (see `canonical_json`), so text equality compares it.
pub(super) fn find_pipeline(
    conn: &Connection,
    team: &str,
    name: &str,
    instance_vars: Option<&str>,
) -> Result<Option<PipelineRow>> {
    Ok(conn
        .prepare_cached(&SQL.by_name)?
        .query_row(params![team, name, instance_vars], pipeline_row)
        .optional()?)
}

pub(super) fn find_pipeline_by_id(conn: &Connection, id: i64) -> Result<Option<PipelineRow>> {
    Ok(conn
        .prepare_cached(&SQL.by_id)?
        .query_row([id], pipeline_row)
        .optional()?)
}

pub(super) fn list_pipelines(conn: &Connection, team: Option<&str>) -> Result<Vec<PipelineRow>> {
    match team {
        Some(team) => pipeline_rows(conn, &SQL.of_team, [team]),
        None => pipeline_rows(conn, &SQL.all, []),
    }
}

/// The pipelines statement `sql` answers (one of [`SQL`]'s listings) for `params`.
pub(super) fn pipeline_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<PipelineRow>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params, pipeline_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn save_pipeline(conn: &mut Connection, save: &SavePipeline) -> Result<SavedPipeline> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let team = tx
        .query_row(&SQL.team_exists, [save.team_id], |_| Ok(()))
        .optional()?;
    if team.is_none() {
        return Err(StoreError::NotFound(format!("team {}", save.team_id)));
    }
    let vars = save.instance_vars.as_ref().map(canonical_json);
    let config = save.config.to_string();
    let existing: Option<(i64, i64)> = tx
        .query_row(&SQL.current, params![save.team_id, save.name, vars], tuple)
        .optional()?;
    let parent_job = stored_id(save.parent_job_id);
    let parent_build = stored_id(save.parent_build_id);
    let at = stored_time(save.at);
    let version: i64 = tx.query_row(&SQL.next_config_version, [], first)?;
    let (pipeline_id, created) = match existing {
        Some((id, current)) => {
            if current != save.expected_version {
                return Err(StoreError::ConfigVersionConflict);
            }
            tx.execute(
                &SQL.update_config,
                params![id, config, version, at, parent_job, parent_build],
            )?;
            (id, false)
        }
        None => {
            let inserted = tx.query_row(
                &SQL.insert,
                params![
                    save.team_id,
                    save.name,
                    vars,
                    config,
                    version,
                    save.paused_on_create,
                    parent_job,
                    parent_build,
                    at
                ],
                first,
            );
            match inserted {
                Ok(id) => (id, true),
                Err(e) if is_unique_violation(&e) => return Err(StoreError::ConfigVersionConflict),
                Err(e) => return Err(e.into()),
            }
        }
    };
    save_jobs(&tx, pipeline_id, save)?;
    save_resources(&tx, pipeline_id, save)?;
    let pipeline = tx.query_row(&SQL.by_id, [pipeline_id], pipeline_row)?;
    tx.commit()?;
    Ok(SavedPipeline { pipeline, created })
}

fn existing_names(tx: &Transaction, sql: &str, pipeline_id: i64) -> Result<Vec<(i64, String)>> {
    Ok(tx
        .prepare_cached(sql)?
        .query_map([pipeline_id], tuple)?
        .collect::<Result<_, _>>()?)
}

/// The kept ids as the JSON list `retire_*` binds.
fn id_list(ids: &[i64]) -> String {
    Value::from(ids).to_string()
}

fn save_jobs(tx: &Transaction, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing = existing_names(tx, &SQL.job_names, pipeline_id)?;
    let mut update = tx.prepare_cached(&SQL.update_job)?;
    let mut insert = tx.prepare_cached(&SQL.insert_job)?;
    let mut kept = Vec::with_capacity(save.jobs.len());
    for (ordering, job) in (0_i64..).zip(&save.jobs) {
        let groups = groups_of(save, &job.name).to_string();
        let config = job.config.to_string();
        let id = match claim_existing(&existing, &kept, &job.name, job.old_name.as_deref()) {
            Some(id) => {
                update.execute(params![id, job.name, config, ordering, groups])?;
                id
            }
            None => insert.query_row(
                params![pipeline_id, job.name, config, ordering, groups],
                first,
            )?,
        };
        kept.push(id);
    }
    tx.execute(&SQL.retire_jobs, params![pipeline_id, id_list(&kept)])?;
    Ok(())
}

fn save_resources(tx: &Transaction, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing = existing_names(tx, &SQL.resource_names, pipeline_id)?;
    let mut update = tx.prepare_cached(&SQL.update_resource)?;
    let mut insert = tx.prepare_cached(&SQL.insert_resource)?;
    let mut kept = Vec::with_capacity(save.resources.len());
    for (ordering, r) in (0_i64..).zip(&save.resources) {
        let config = r.config.to_string();
        let id = match claim_existing(&existing, &kept, &r.name, r.old_name.as_deref()) {
            Some(id) => {
                update.execute(params![id, r.name, r.type_, config, ordering])?;
                id
            }
            None => insert.query_row(
                params![pipeline_id, r.name, r.type_, config, ordering],
                first,
            )?,
        };
        kept.push(id);
    }
    tx.execute(&SQL.retire_resources, params![pipeline_id, id_list(&kept)])?;
    Ok(())
}

pub(super) fn order_pipelines(conn: &mut Connection, team_id: i64, names: &[String]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Vec<String> = tx
        .prepare_cached(&SQL.groups)?
        .query_map([team_id], first)?
        .collect::<Result<_, _>>()?;
    {
        let mut update = tx.prepare_cached(&SQL.set_ordering)?;
        for (name, order) in new_ordering(&current, names)? {
            update.execute(params![team_id, name, order])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn order_instances(
    conn: &mut Connection,
    team_id: i64,
    name: &str,
    wanted: &[Option<Value>],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Vec<(i64, Option<Value>)> = tx
        .prepare_cached(&SQL.instances)?
        .query_map(params![team_id, name], tuple)?
        .collect::<Result<_, _>>()?;
    {
        let mut update = tx.prepare_cached(&SQL.set_secondary_ordering)?;
        for (id, order) in new_instance_ordering(name, &current, wanted)? {
            update.execute(params![id, order])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn archive_pipeline(
    conn: &mut Connection,
    pipeline_id: i64,
    by: &str,
    at: i64,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(&SQL.archive, params![pipeline_id, by, stored_time(at)])?;
    found(n as u64, || format!("pipeline {pipeline_id}"))?;
    tx.execute(&SQL.archive_jobs, [pipeline_id])?;
    tx.execute(&SQL.archive_resources, [pipeline_id])?;
    tx.commit()?;
    Ok(())
}
