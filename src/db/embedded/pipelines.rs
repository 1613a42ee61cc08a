//! Pipelines with their jobs and resources: config saves, ordering, archiving.

use super::{is_unique_violation, next_value, pipeline_row};
use crate::db::sql::{PIPELINE_ORDER, PIPELINE_SELECT};
use crate::db::*;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// `instance_vars` is canonical JSON text (see `canonical_json`), so `IS` compares it.
pub(super) fn find_pipeline(
    conn: &Connection,
    team: &str,
    name: &str,
    instance_vars: Option<&str>,
) -> Result<Option<PipelineRow>> {
    Ok(conn
        .query_row(
            &format!(
                "{PIPELINE_SELECT} WHERE t.name = ?1 AND p.name = ?2 AND p.instance_vars IS ?3"
            ),
            params![team, name, instance_vars],
            pipeline_row,
        )
        .optional()?)
}

pub(super) fn find_pipeline_by_id(conn: &Connection, id: i64) -> Result<Option<PipelineRow>> {
    Ok(conn
        .query_row(
            &format!("{PIPELINE_SELECT} WHERE p.id = ?1"),
            [id],
            pipeline_row,
        )
        .optional()?)
}

pub(super) fn list_pipelines(conn: &Connection, team: Option<&str>) -> Result<Vec<PipelineRow>> {
    let rows = match team {
        Some(team) => conn
            .prepare(&format!(
                "{PIPELINE_SELECT} WHERE t.name = ?1 ORDER BY {PIPELINE_ORDER}"
            ))?
            .query_map([team], pipeline_row)?
            .collect::<Result<_, _>>()?,
        None => conn
            .prepare(&format!(
                "{PIPELINE_SELECT} ORDER BY t.name, {PIPELINE_ORDER}"
            ))?
            .query_map([], pipeline_row)?
            .collect::<Result<_, _>>()?,
    };
    Ok(rows)
}

pub(super) fn save_pipeline(conn: &mut Connection, save: &SavePipeline) -> Result<SavedPipeline> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let team = tx
        .query_row("SELECT 1 FROM teams WHERE id = ?1", [save.team_id], |_| {
            Ok(())
        })
        .optional()?;
    if team.is_none() {
        return Err(StoreError::NotFound(format!("team {}", save.team_id)));
    }
    let vars = save.instance_vars.as_ref().map(canonical_json);
    let config = save.config.to_string();
    let existing: Option<(i64, i64)> = tx
        .query_row(
            "SELECT id, config_version FROM pipelines WHERE team_id = ?1 AND name = ?2 AND instance_vars IS ?3",
            params![save.team_id, save.name, vars],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let parent_job = stored_id(save.parent_job_id);
    let parent_build = stored_id(save.parent_build_id);
    let at = stored_time(save.at);
    let version = next_value(&tx, "config_version_seq")?;
    let (pipeline_id, created) = match existing {
        Some((id, current)) => {
            if current != save.expected_version {
                return Err(StoreError::ConfigVersionConflict);
            }
            tx.execute(
                "UPDATE pipelines SET config = ?2, config_version = ?3, archived = false, last_updated = ?4, \
                 parent_job_id = ?5, parent_build_id = ?6 WHERE id = ?1",
                params![id, config, version, at, parent_job, parent_build],
            )?;
            (id, false)
        }
        None => {
            // A new instance joins its group's place in the team's order; a new group goes last.
            let inserted = tx.query_row(
                "INSERT INTO pipelines (team_id, name, instance_vars, config, config_version, paused, \
                 ordering, secondary_ordering, parent_job_id, parent_build_id, last_updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
                 COALESCE((SELECT MIN(ordering) FROM pipelines WHERE team_id = ?1 AND name = ?2), \
                          (SELECT COALESCE(MAX(ordering), 0) + 1 FROM pipelines WHERE team_id = ?1)), \
                 (SELECT COALESCE(MAX(secondary_ordering), 0) + 1 FROM pipelines WHERE team_id = ?1 AND name = ?2), \
                 ?7, ?8, ?9) RETURNING id",
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
                |r| r.get(0),
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
    let pipeline = tx.query_row(
        &format!("{PIPELINE_SELECT} WHERE p.id = ?1"),
        [pipeline_id],
        pipeline_row,
    )?;
    tx.commit()?;
    Ok(SavedPipeline { pipeline, created })
}

fn existing_names(tx: &Transaction, table: &str, pipeline_id: i64) -> Result<Vec<(i64, String)>> {
    Ok(tx
        .prepare(&format!(
            "SELECT id, name FROM {table} WHERE pipeline_id = ?1"
        ))?
        .query_map([pipeline_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// Jobs start inactive; the ones in the config are re-activated as they are matched.
fn save_jobs(tx: &Transaction, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing = existing_names(tx, "jobs", pipeline_id)?;
    tx.execute(
        "UPDATE jobs SET active = false WHERE pipeline_id = ?1",
        [pipeline_id],
    )?;
    let mut update = tx.prepare(
        "UPDATE jobs SET name = ?2, config = ?3, active = true, ordering = ?4, groups = ?5 WHERE id = ?1",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO jobs (pipeline_id, name, config, ordering, groups) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?;
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
                |r| r.get(0),
            )?,
        };
        kept.push(id);
    }
    Ok(())
}

fn save_resources(tx: &Transaction, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing = existing_names(tx, "resources", pipeline_id)?;
    tx.execute(
        "UPDATE resources SET active = false WHERE pipeline_id = ?1",
        [pipeline_id],
    )?;
    let mut update = tx.prepare(
        "UPDATE resources SET name = ?2, type = ?3, config = ?4, active = true, ordering = ?5 WHERE id = ?1",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO resources (pipeline_id, name, type, config, ordering) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?;
    let mut kept = Vec::with_capacity(save.resources.len());
    for (ordering, resource) in (0_i64..).zip(&save.resources) {
        let config = resource.config.to_string();
        let id = match claim_existing(
            &existing,
            &kept,
            &resource.name,
            resource.old_name.as_deref(),
        ) {
            Some(id) => {
                update.execute(params![id, resource.name, resource.type_, config, ordering])?;
                id
            }
            None => insert.query_row(
                params![pipeline_id, resource.name, resource.type_, config, ordering],
                |r| r.get(0),
            )?,
        };
        kept.push(id);
    }
    Ok(())
}

pub(super) fn order_pipelines(conn: &mut Connection, team_id: i64, names: &[String]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Vec<String> = tx
        .prepare("SELECT name FROM pipelines WHERE team_id = ?1 GROUP BY name ORDER BY MIN(ordering), MIN(id)")?
        .query_map([team_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let ordering = new_ordering(&current, names)?;
    {
        let mut update =
            tx.prepare("UPDATE pipelines SET ordering = ?3 WHERE team_id = ?1 AND name = ?2")?;
        for (name, order) in ordering {
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
        .prepare(
            "SELECT id, instance_vars FROM pipelines WHERE team_id = ?1 AND name = ?2 \
             ORDER BY secondary_ordering, id",
        )?
        .query_map(params![team_id, name], |r| {
            Ok((r.get(0)?, super::rows::json_opt(r, 1)?))
        })?
        .collect::<Result<_, _>>()?;
    let ordering = new_instance_ordering(name, &current, wanted)?;
    {
        let mut update =
            tx.prepare("UPDATE pipelines SET secondary_ordering = ?2 WHERE id = ?1")?;
        for (id, order) in ordering {
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
    let n = tx.execute(
        "UPDATE pipelines SET archived = true, paused = true, paused_by = ?2, paused_at = ?3, \
         config = NULL, config_version = 0, last_updated = ?3 WHERE id = ?1",
        params![pipeline_id, by, stored_time(at)],
    )?;
    found(n as u64, || format!("pipeline {pipeline_id}"))?;
    tx.execute(
        "UPDATE jobs SET active = false, config = NULL WHERE pipeline_id = ?1",
        [pipeline_id],
    )?;
    tx.execute(
        "UPDATE resources SET active = false, config = NULL WHERE pipeline_id = ?1",
        [pipeline_id],
    )?;
    tx.commit()?;
    Ok(())
}
