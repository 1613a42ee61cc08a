//! Pipelines with their jobs and resources: config saves, ordering, archiving.

use super::cached::Cached;
use super::{is_unique_violation, PgStore};
use crate::db::rows::{first, pipeline_row, tuple};
use crate::db::sql::{Dialect, PipelineSql};
use crate::db::*;
use deadpool_postgres::Transaction;
use std::sync::LazyLock;

pub(super) static SQL: LazyLock<PipelineSql> =
    LazyLock::new(|| PipelineSql::new(Dialect::Postgres));

impl PgStore {
    pub(super) async fn find_pipeline(
        &self,
        team: &str,
        name: &str,
        instance_vars: Option<&Value>,
    ) -> Result<Option<PipelineRow>> {
        let client = self.pool.get().await?;
        super::opt(
            &client,
            &SQL.by_name,
            &[&team, &name, &instance_vars],
            pipeline_row,
        )
        .await
    }

    pub(super) async fn find_pipeline_by_id(&self, id: i64) -> Result<Option<PipelineRow>> {
        let client = self.pool.get().await?;
        super::opt(&client, &SQL.by_id, &[&id], pipeline_row).await
    }

    pub(super) async fn list_pipelines(&self, team: Option<&str>) -> Result<Vec<PipelineRow>> {
        let client = self.pool.get().await?;
        match team {
            Some(team) => super::all(&client, &SQL.of_team, &[&team], pipeline_row).await,
            None => super::all(&client, &SQL.all, &[], pipeline_row).await,
        }
    }

    pub(super) async fn save_pipeline_tx(&self, save: &SavePipeline) -> Result<SavedPipeline> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if tx
            .query_opt_cached(&SQL.team_exists, &[&save.team_id])
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound(format!("team {}", save.team_id)));
        }
        let existing: Option<(i64, i64)> = super::opt(
            &tx,
            &SQL.current,
            &[&save.team_id, &save.name, &save.instance_vars],
            tuple,
        )
        .await?;
        let parent_job = stored_id(save.parent_job_id);
        let parent_build = stored_id(save.parent_build_id);
        let at = stored_time(save.at);
        let version: i64 = first(&tx.query_one_cached(&SQL.next_config_version, &[]).await?)?;
        let (pipeline_id, created) = match existing {
            Some((id, current)) => {
                if current != save.expected_version {
                    return Err(StoreError::ConfigVersionConflict);
                }
                tx.execute_cached(
                    &SQL.update_config,
                    &[&id, &save.config, &version, &at, &parent_job, &parent_build],
                )
                .await?;
                (id, false)
            }
            None => {
                let inserted = tx
                    .query_one_cached(
                        &SQL.insert,
                        &[
                            &save.team_id,
                            &save.name,
                            &save.instance_vars,
                            &save.config,
                            &version,
                            &save.paused_on_create,
                            &parent_job,
                            &parent_build,
                            &at,
                        ],
                    )
                    .await;
                match inserted {
                    Ok(row) => (first(&row)?, true),
                    // Another save created it since we looked: the caller's view is stale.
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::ConfigVersionConflict)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        save_jobs(&tx, pipeline_id, save).await?;
        save_resources(&tx, pipeline_id, save).await?;
        let pipeline = pipeline_row(&tx.query_one_cached(&SQL.by_id, &[&pipeline_id]).await?)?;
        tx.commit().await?;
        Ok(SavedPipeline { pipeline, created })
    }

    pub(super) async fn order_pipelines_tx(&self, team_id: i64, names: &[String]) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Lock the team's pipelines, then read the groups in their current order.
        tx.execute_cached(
            "SELECT 1 FROM pipelines WHERE team_id = $1 FOR UPDATE",
            &[&team_id],
        )
        .await?;
        let current: Vec<String> = super::all(&tx, &SQL.groups, &[&team_id], first).await?;
        let update = tx.prepare_cached(&SQL.set_ordering).await?;
        for (name, order) in new_ordering(&current, names)? {
            tx.execute(&update, &[&team_id, &name, &order]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn order_instances_tx(
        &self,
        team_id: i64,
        name: &str,
        wanted: &[Option<Value>],
    ) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Locked, so a concurrent reorder or new instance waits for this one.
        let current: Vec<(i64, Option<Value>)> =
            super::all(&tx, &SQL.instances, &[&team_id, &name], tuple).await?;
        let update = tx.prepare_cached(&SQL.set_secondary_ordering).await?;
        for (id, order) in new_instance_ordering(name, &current, wanted)? {
            tx.execute(&update, &[&id, &order]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn archive_pipeline_tx(
        &self,
        pipeline_id: i64,
        by: &str,
        at: i64,
    ) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute_cached(&SQL.archive, &[&pipeline_id, &by, &stored_time(at)])
            .await?;
        found(n, || format!("pipeline {pipeline_id}"))?;
        tx.execute_cached(&SQL.archive_jobs, &[&pipeline_id])
            .await?;
        tx.execute_cached(&SQL.archive_resources, &[&pipeline_id])
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn save_jobs(tx: &Transaction<'_>, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing: Vec<(i64, String)> =
        super::all(tx, &SQL.job_names, &[&pipeline_id], tuple).await?;
    let update = tx.prepare_cached(&SQL.update_job).await?;
    let insert = tx.prepare_cached(&SQL.insert_job).await?;
    let mut kept = Vec::with_capacity(save.jobs.len());
    for (ordering, job) in (0_i64..).zip(&save.jobs) {
        let groups = groups_of(save, &job.name);
        let id = match claim_existing(&existing, &kept, &job.name, job.old_name.as_deref()) {
            Some(id) => {
                tx.execute(&update, &[&id, &job.name, &job.config, &ordering, &groups])
                    .await?;
                id
            }
            None => first(
                &tx.query_one(
                    &insert,
                    &[&pipeline_id, &job.name, &job.config, &ordering, &groups],
                )
                .await?,
            )?,
        };
        kept.push(id);
    }
    tx.execute_cached(&SQL.retire_jobs, &[&pipeline_id, &kept])
        .await?;
    Ok(())
}

async fn save_resources(tx: &Transaction<'_>, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing: Vec<(i64, String)> =
        super::all(tx, &SQL.resource_names, &[&pipeline_id], tuple).await?;
    let update = tx.prepare_cached(&SQL.update_resource).await?;
    let insert = tx.prepare_cached(&SQL.insert_resource).await?;
    let mut kept = Vec::with_capacity(save.resources.len());
    for (ordering, r) in (0_i64..).zip(&save.resources) {
        let id = match claim_existing(&existing, &kept, &r.name, r.old_name.as_deref()) {
            Some(id) => {
                tx.execute(&update, &[&id, &r.name, &r.type_, &r.config, &ordering])
                    .await?;
                id
            }
            None => first(
                &tx.query_one(
                    &insert,
                    &[&pipeline_id, &r.name, &r.type_, &r.config, &ordering],
                )
                .await?,
            )?,
        };
        kept.push(id);
    }
    tx.execute_cached(&SQL.retire_resources, &[&pipeline_id, &kept])
        .await?;
    Ok(())
}
