//! Builds and their events.

use super::{build_row, is_foreign_key_violation, is_unique_violation, placeholder, PgStore};
use crate::db::sql::{BuildsQuery, BUILD_SELECT};
use crate::db::*;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

/// Recomputes a job's next build: its oldest pending or started build.
const UPDATE_NEXT_BUILD: &str = "UPDATE jobs SET next_build_id = \
     (SELECT MIN(id) FROM builds WHERE job_id = $1 AND status IN ('pending', 'started')) WHERE id = $1";

impl PgStore {
    pub(super) async fn create_build_tx(&self, new: &NewBuild) -> Result<BuildRow> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (name, pipeline_id) = match new.job_id {
            Some(job_id) => {
                let row = tx
                    .query_opt(
                        "UPDATE jobs SET build_number_seq = build_number_seq + 1 WHERE id = $1 \
                         RETURNING build_number_seq, pipeline_id",
                        &[&job_id],
                    )
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
                (
                    row.try_get::<_, i64>(0)?.to_string(),
                    Some(row.try_get::<_, i64>(1)?),
                )
            }
            None => {
                let row = tx.query_one("SELECT nextval('one_off_name')", &[]).await?;
                (row.try_get::<_, i64>(0)?.to_string(), new.pipeline_id)
            }
        };
        let created_by = (!new.created_by.is_empty()).then_some(new.created_by.as_str());
        let inserted = tx
            .query_one(
                "INSERT INTO builds (team_id, job_id, pipeline_id, name, status, plan, created_by, create_time, \
                 resource_id) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING id",
                &[&new.team_id, &new.job_id, &pipeline_id, &name, &new.plan, &created_by, &new.at, &new.resource_id],
            )
            .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NotFound(format!(
                    "team {} or pipeline of the build",
                    new.team_id
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(job_id) = new.job_id {
            tx.execute(UPDATE_NEXT_BUILD, &[&job_id]).await?;
        }
        let row = tx
            .query_one(&format!("{BUILD_SELECT} WHERE b.id = $1"), &[&id])
            .await?;
        let build = build_row(&row)?;
        tx.commit().await?;
        Ok(build)
    }

    pub(super) async fn rerun_build_tx(
        &self,
        build_id: i64,
        created_by: &str,
        at: i64,
    ) -> Result<BuildRow> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT o.id, o.name, o.team_id, o.job_id, o.pipeline_id FROM builds b \
                 JOIN builds o ON o.id = COALESCE(b.rerun_of, b.id) WHERE b.id = $1 FOR UPDATE OF o",
                &[&build_id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("build {build_id}")))?;
        let original: i64 = row.try_get(0)?;
        let original_name: String = row.try_get(1)?;
        let team_id: i64 = row.try_get(2)?;
        let pipeline_id: Option<i64> = row.try_get(4)?;
        let Some(job_id) = row.try_get::<_, Option<i64>>(3)? else {
            return Err(StoreError::Invalid(format!(
                "build {build_id} is not a job build"
            )));
        };
        let number: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(rerun_number), 0) + 1 FROM builds WHERE rerun_of = $1",
                &[&original],
            )
            .await?
            .try_get(0)?;
        let created_by = (!created_by.is_empty()).then_some(created_by);
        let id: i64 = tx
            .query_one(
                "INSERT INTO builds (team_id, job_id, pipeline_id, name, status, created_by, create_time, \
                 rerun_of, rerun_number) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING id",
                &[
                    &team_id,
                    &job_id,
                    &pipeline_id,
                    &format!("{original_name}.{number}"),
                    &created_by,
                    &at,
                    &original,
                    &number,
                ],
            )
            .await?
            .try_get(0)?;
        tx.execute(UPDATE_NEXT_BUILD, &[&job_id]).await?;
        let row = tx
            .query_one(&format!("{BUILD_SELECT} WHERE b.id = $1"), &[&id])
            .await?;
        let build = build_row(&row)?;
        tx.commit().await?;
        Ok(build)
    }

    pub(super) async fn finish_build_tx(
        &self,
        id: i64,
        status: BuildStatus,
        at: i64,
    ) -> Result<()> {
        if !status.is_finished() {
            return Err(StoreError::Invalid(format!(
                "{} is not a finished build status",
                status.as_str()
            )));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT status, job_id FROM builds WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("build {id}")))?;
        let current: String = row.try_get(0)?;
        let job_id: Option<i64> = row.try_get(1)?;
        if BuildStatus::parse(&current).is_none_or(BuildStatus::is_finished) {
            return Err(StoreError::Conflict(format!("build {id} already finished")));
        }
        tx.execute(
            "UPDATE builds SET status = $2, end_time = $3 WHERE id = $1",
            &[&id, &status.as_str(), &at],
        )
        .await?;
        if let Some(job_id) = job_id {
            update_job_finished(&tx, job_id, id, status).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn builds_page_tx(&self, of: BuildsOf, page: &Page) -> Result<BuildsPage> {
        let mut client = self.pool.get().await?;
        // One snapshot for the page and its neighbours.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let (from, to) = if page.timestamps {
            let from = match page.from {
                Some(t) => {
                    match first_id(&tx, BuildsQuery::at_time(of, t, true, placeholder)).await? {
                        Some(id) => Some(id),
                        None => return Ok(BuildsPage::default()),
                    }
                }
                None => None,
            };
            let to = match page.to {
                Some(t) => {
                    match first_id(&tx, BuildsQuery::at_time(of, t, false, placeholder)).await? {
                        Some(id) => Some(id),
                        None => return Ok(BuildsPage::default()),
                    }
                }
                None => None,
            };
            (from, to)
        } else {
            (page.from, page.to)
        };
        let plan = PagePlan::new(from, to, page.limit)?;
        let query = BuildsQuery::page(of, &plan, placeholder);
        let rows = tx.query(&query.sql, &params(&query.params)).await?;
        let mut builds = rows.iter().map(build_row).collect::<Result<Vec<_>>>()?;
        if plan.ascending {
            builds.reverse();
        }
        let mut result = BuildsPage {
            builds,
            older: None,
            newer: None,
        };
        if page.timestamps {
            return Ok(result);
        }
        if let (Some(newest), Some(oldest)) = (result.builds.first(), result.builds.last()) {
            let older = first_id(
                &tx,
                BuildsQuery::neighbour(of, oldest.id, true, placeholder),
            )
            .await?;
            let newer = first_id(
                &tx,
                BuildsQuery::neighbour(of, newest.id, false, placeholder),
            )
            .await?;
            result.older = older.map(|id| Page {
                to: Some(id),
                limit: plan.limit,
                ..Page::default()
            });
            result.newer = newer.map(|id| Page {
                from: Some(id),
                limit: plan.limit,
                ..Page::default()
            });
        }
        Ok(result)
    }

    pub(super) async fn append_build_events_batch(
        &self,
        build_id: i64,
        events: &[Value],
    ) -> Result<i64> {
        let client = self.pool.get().await?;
        if events.is_empty() {
            let row = client
                .query_one(
                    "SELECT COALESCE(MAX(event_id), 0) FROM build_events WHERE build_id = $1",
                    &[&build_id],
                )
                .await?;
            return Ok(row.try_get(0)?);
        }
        // One statement for the whole batch: ids continue from the build's last event.
        let statement = client
            .prepare_cached(
                "INSERT INTO build_events (build_id, event_id, payload) \
                 SELECT $1, last.id + e.n, e.payload \
                 FROM (SELECT COALESCE(MAX(event_id), 0) AS id FROM build_events WHERE build_id = $1) last, \
                 UNNEST($2::jsonb[]) WITH ORDINALITY AS e(payload, n) \
                 RETURNING event_id",
            )
            .await?;
        match client.query(&statement, &[&build_id, &events]).await {
            Ok(rows) => rows
                .iter()
                .map(|r| r.try_get::<_, i64>(0))
                .try_fold(0, |max, id| id.map(|id| max.max(id)))
                .map_err(Into::into),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::NotFound(format!("build {build_id}")))
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "concurrent event append to build {build_id}"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// Marks `build_id` as the job's latest finished build when it is the newest to finish,
/// and as its transition build when the status changed from the previous one.
async fn update_job_finished(
    tx: &Transaction<'_>,
    job_id: i64,
    build_id: i64,
    status: BuildStatus,
) -> Result<()> {
    let row = tx
        .query_one(
            "SELECT j.latest_completed_build_id, b.status FROM jobs j \
             LEFT JOIN builds b ON b.id = j.latest_completed_build_id WHERE j.id = $1 FOR UPDATE OF j",
            &[&job_id],
        )
        .await?;
    let latest: Option<i64> = row.try_get(0)?;
    let latest_status: Option<String> = row.try_get(1)?;
    if latest.is_none_or(|latest| build_id > latest) {
        let transition = latest_status.as_deref() != Some(status.as_str());
        tx.execute(
            "UPDATE jobs SET latest_completed_build_id = $2, \
             transition_build_id = CASE WHEN $3 THEN $2 ELSE transition_build_id END WHERE id = $1",
            &[&job_id, &build_id, &transition],
        )
        .await?;
    }
    tx.execute(UPDATE_NEXT_BUILD, &[&job_id]).await?;
    Ok(())
}

fn params(values: &[i64]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

async fn first_id(tx: &Transaction<'_>, query: BuildsQuery) -> Result<Option<i64>> {
    let row = tx.query_opt(&query.sql, &params(&query.params)).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}
