//! Pipelines with their jobs and resources: config saves, ordering, archiving.

use super::{is_unique_violation, pipeline_row, PgStore};
use crate::db::sql::{PIPELINE_ORDER, PIPELINE_SELECT};
use crate::db::*;
use deadpool_postgres::Transaction;

impl PgStore {
    pub(super) async fn find_pipeline(
        &self,
        team: &str,
        name: &str,
        instance_vars: Option<&Value>,
    ) -> Result<Option<PipelineRow>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "{PIPELINE_SELECT} WHERE t.name = $1 AND p.name = $2 \
                     AND p.instance_vars IS NOT DISTINCT FROM $3"
                ),
                &[&team, &name, &instance_vars],
            )
            .await?;
        row.as_ref().map(pipeline_row).transpose()
    }

    pub(super) async fn find_pipeline_by_id(&self, id: i64) -> Result<Option<PipelineRow>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("{PIPELINE_SELECT} WHERE p.id = $1"), &[&id])
            .await?;
        row.as_ref().map(pipeline_row).transpose()
    }

    pub(super) async fn list_pipelines(&self, team: Option<&str>) -> Result<Vec<PipelineRow>> {
        let client = self.pool.get().await?;
        let rows = match team {
            Some(team) => {
                client
                    .query(
                        &format!("{PIPELINE_SELECT} WHERE t.name = $1 ORDER BY {PIPELINE_ORDER}"),
                        &[&team],
                    )
                    .await?
            }
            None => {
                client
                    .query(
                        &format!(
                            "{PIPELINE_SELECT} ORDER BY t.name COLLATE \"C\", {PIPELINE_ORDER}"
                        ),
                        &[],
                    )
                    .await?
            }
        };
        rows.iter().map(pipeline_row).collect()
    }

    pub(super) async fn save_pipeline_tx(&self, save: &SavePipeline) -> Result<SavedPipeline> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let team = tx
            .query_opt("SELECT 1 FROM teams WHERE id = $1", &[&save.team_id])
            .await?;
        if team.is_none() {
            return Err(StoreError::NotFound(format!("team {}", save.team_id)));
        }
        let existing = tx
            .query_opt(
                "SELECT id, config_version FROM pipelines \
                 WHERE team_id = $1 AND name = $2 AND instance_vars IS NOT DISTINCT FROM $3 FOR UPDATE",
                &[&save.team_id, &save.name, &save.instance_vars],
            )
            .await?;
        let parent_job = stored_id(save.parent_job_id);
        let parent_build = stored_id(save.parent_build_id);
        let at = stored_time(save.at);
        let (pipeline_id, created) = match existing {
            Some(row) => {
                let id: i64 = row.try_get(0)?;
                let version: i64 = row.try_get(1)?;
                if version != save.expected_version {
                    return Err(StoreError::ConfigVersionConflict);
                }
                tx.execute(
                    "UPDATE pipelines SET config = $2, config_version = nextval('config_version_seq'), \
                     archived = false, last_updated = $3, parent_job_id = $4, parent_build_id = $5 \
                     WHERE id = $1",
                    &[&id, &save.config, &at, &parent_job, &parent_build],
                )
                .await?;
                (id, false)
            }
            None => {
                // A new instance joins its group's place in the team's order; a new group
                // goes last.
                let inserted = tx
                    .query_one(
                        "INSERT INTO pipelines (team_id, name, instance_vars, config, config_version, \
                         paused, ordering, secondary_ordering, parent_job_id, parent_build_id, last_updated) \
                         VALUES ($1, $2, $3, $4, nextval('config_version_seq'), $5, \
                         COALESCE((SELECT MIN(ordering) FROM pipelines WHERE team_id = $1 AND name = $2), \
                                  (SELECT COALESCE(MAX(ordering), 0) + 1 FROM pipelines WHERE team_id = $1)), \
                         (SELECT COALESCE(MAX(secondary_ordering), 0) + 1 FROM pipelines \
                          WHERE team_id = $1 AND name = $2), \
                         $6, $7, $8) RETURNING id",
                        &[
                            &save.team_id,
                            &save.name,
                            &save.instance_vars,
                            &save.config,
                            &save.paused_on_create,
                            &parent_job,
                            &parent_build,
                            &at,
                        ],
                    )
                    .await;
                match inserted {
                    Ok(row) => (row.try_get(0)?, true),
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
        let row = tx
            .query_one(
                &format!("{PIPELINE_SELECT} WHERE p.id = $1"),
                &[&pipeline_id],
            )
            .await?;
        let pipeline = pipeline_row(&row)?;
        tx.commit().await?;
        Ok(SavedPipeline { pipeline, created })
    }

    pub(super) async fn order_pipelines_tx(&self, team_id: i64, names: &[String]) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Lock the team's pipelines, then read the groups in their current order.
        tx.execute(
            "SELECT 1 FROM pipelines WHERE team_id = $1 FOR UPDATE",
            &[&team_id],
        )
        .await?;
        let current: Vec<String> = tx
            .query(
                "SELECT name FROM pipelines WHERE team_id = $1 GROUP BY name ORDER BY MIN(ordering), MIN(id)",
                &[&team_id],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let ordering = new_ordering(&current, names)?;
        let (group_names, orders): (Vec<String>, Vec<i64>) = ordering.into_iter().unzip();
        tx.execute(
            "UPDATE pipelines p SET ordering = v.ordering \
             FROM UNNEST($2::text[], $3::bigint[]) AS v(name, ordering) \
             WHERE p.team_id = $1 AND p.name = v.name",
            &[&team_id, &group_names, &orders],
        )
        .await?;
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
        let current: Vec<(i64, Option<Value>)> = tx
            .query(
                "SELECT id, instance_vars FROM pipelines WHERE team_id = $1 AND name = $2 \
                 ORDER BY secondary_ordering, id FOR UPDATE",
                &[&team_id, &name],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<std::result::Result<_, tokio_postgres::Error>>()?;
        let ordering = new_instance_ordering(name, &current, wanted)?;
        let (ids, orders): (Vec<i64>, Vec<i64>) = ordering.into_iter().unzip();
        tx.execute(
            "UPDATE pipelines p SET secondary_ordering = v.ordering \
             FROM UNNEST($1::bigint[], $2::bigint[]) AS v(id, ordering) WHERE p.id = v.id",
            &[&ids, &orders],
        )
        .await?;
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
            .execute(
                "UPDATE pipelines SET archived = true, paused = true, paused_by = $2, paused_at = $3, \
                 config = NULL, config_version = 0, last_updated = $3 WHERE id = $1",
                &[&pipeline_id, &by, &stored_time(at)],
            )
            .await?;
        found(n, || format!("pipeline {pipeline_id}"))?;
        tx.execute(
            "UPDATE jobs SET active = false, config = NULL WHERE pipeline_id = $1",
            &[&pipeline_id],
        )
        .await?;
        tx.execute(
            "UPDATE resources SET active = false, config = NULL WHERE pipeline_id = $1",
            &[&pipeline_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn existing_names(
    tx: &Transaction<'_>,
    table: &str,
    pipeline_id: i64,
) -> Result<Vec<(i64, String)>> {
    let rows = tx
        .query(
            &format!("SELECT id, name FROM {table} WHERE pipeline_id = $1"),
            &[&pipeline_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, _>>()?)
}

async fn save_jobs(tx: &Transaction<'_>, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing = existing_names(tx, "jobs", pipeline_id).await?;
    let update = tx
        .prepare_cached(
            "UPDATE jobs SET name = $2, config = $3, active = true, ordering = $4, groups = $5 WHERE id = $1",
        )
        .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO jobs (pipeline_id, name, config, ordering, groups) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .await?;
    let mut kept = Vec::with_capacity(save.jobs.len());
    for (ordering, job) in (0_i64..).zip(&save.jobs) {
        let groups = groups_of(save, &job.name);
        let id = match claim_existing(&existing, &kept, &job.name, job.old_name.as_deref()) {
            Some(id) => {
                tx.execute(&update, &[&id, &job.name, &job.config, &ordering, &groups])
                    .await?;
                id
            }
            None => tx
                .query_one(
                    &insert,
                    &[&pipeline_id, &job.name, &job.config, &ordering, &groups],
                )
                .await?
                .try_get(0)?,
        };
        kept.push(id);
    }
    tx.execute(
        "UPDATE jobs SET active = false WHERE pipeline_id = $1 AND NOT (id = ANY($2))",
        &[&pipeline_id, &kept],
    )
    .await?;
    Ok(())
}

async fn save_resources(tx: &Transaction<'_>, pipeline_id: i64, save: &SavePipeline) -> Result<()> {
    let existing = existing_names(tx, "resources", pipeline_id).await?;
    let update = tx
        .prepare_cached(
            "UPDATE resources SET name = $2, type = $3, config = $4, active = true, ordering = $5 WHERE id = $1",
        )
        .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO resources (pipeline_id, name, type, config, ordering) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .await?;
    let mut kept = Vec::with_capacity(save.resources.len());
    for (ordering, resource) in (0_i64..).zip(&save.resources) {
        let id = match claim_existing(
            &existing,
            &kept,
            &resource.name,
            resource.old_name.as_deref(),
        ) {
            Some(id) => {
                tx.execute(
                    &update,
                    &[
                        &id,
                        &resource.name,
                        &resource.type_,
                        &resource.config,
                        &ordering,
                    ],
                )
                .await?;
                id
            }
            None => tx
                .query_one(
                    &insert,
                    &[
                        &pipeline_id,
                        &resource.name,
                        &resource.type_,
                        &resource.config,
                        &ordering,
                    ],
                )
                .await?
                .try_get(0)?,
        };
        kept.push(id);
    }
    tx.execute(
        "UPDATE resources SET active = false WHERE pipeline_id = $1 AND NOT (id = ANY($2))",
        &[&pipeline_id, &kept],
    )
    .await?;
    Ok(())
}
