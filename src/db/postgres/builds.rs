//! Builds and their events.

use super::cached::Cached;
use super::{is_foreign_key_violation, is_unique_violation, PgStore};
use crate::db::rows::{build_row, first, tuple};
use crate::db::sql::{BuildSql, BuildsQuery, Dialect};
use crate::db::*;
use deadpool_postgres::Transaction;
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;

pub(super) static SQL: LazyLock<BuildSql> = LazyLock::new(|| BuildSql::new(Dialect::Postgres));

/// Build `$1`'s events `$2` (ids continue from its last) and journal entries `$3` (keys)
/// and `$4` (data); yields the build's last event id. The statement's parts see one
/// snapshot, so `last` is the id before this statement's events.
const APPEND: &str = "WITH journal AS (\
       INSERT INTO build_journal (build_id, key, data) \
       SELECT $1, j.key, j.data FROM UNNEST($3::text[], $4::jsonb[]) AS j(key, data) \
       ON CONFLICT (build_id, key) DO UPDATE SET data = excluded.data), \
     last AS (SELECT COALESCE(MAX(event_id), 0) AS id FROM build_events WHERE build_id = $1), \
     added AS (\
       INSERT INTO build_events (build_id, event_id, payload) \
       SELECT $1, last.id + e.n, e.payload \
       FROM last, UNNEST($2::jsonb[]) WITH ORDINALITY AS e(payload, n) \
       RETURNING event_id) \
     SELECT COALESCE((SELECT MAX(event_id) FROM added), (SELECT id FROM last))";

impl PgStore {
    pub(super) async fn create_build_tx(&self, new: &NewBuild) -> Result<BuildRow> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (number, pipeline_id) = match new.job_id {
            Some(job_id) => {
                let (number, pipeline): (i64, i64) =
                    super::opt(&tx, &SQL.next_job_number, &[&job_id], tuple)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
                (number, Some(pipeline))
            }
            None => (
                first(&tx.query_one_cached(&SQL.next_one_off, &[]).await?)?,
                new.pipeline_id,
            ),
        };
        let name = number.to_string();
        let created_by = (!new.created_by.is_empty()).then_some(new.created_by.as_str());
        let inserted = tx
            .query_one_cached(
                &SQL.insert,
                &[
                    &new.team_id,
                    &new.job_id,
                    &pipeline_id,
                    &name,
                    &new.plan,
                    &created_by,
                    &new.at,
                    &new.resource_id,
                ],
            )
            .await;
        let id: i64 = match inserted {
            Ok(row) => first(&row)?,
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NotFound(format!(
                    "team {} or pipeline of the build",
                    new.team_id
                )))
            }
            Err(e) => return Err(e.into()),
        };
        // The job's next build and the new row do not depend on each other: sent together.
        let next = async {
            if let Some(job_id) = new.job_id {
                tx.execute_cached(&SQL.update_next_build, &[&job_id])
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        let by_id: [&(dyn ToSql + Sync); 1] = [&id];
        let (_, row) = tokio::try_join!(next, tx.query_one_cached(&SQL.by_id, &by_id))?;
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
        let (original, original_name, team_id, job_id, pipeline_id): RerunOf =
            super::opt(&tx, &SQL.rerun_original, &[&build_id], tuple)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("build {build_id}")))?;
        let job_id = job_id.ok_or_else(|| not_a_job_build(build_id))?;
        let number: i64 = first(&tx.query_one_cached(&SQL.rerun_number, &[&original]).await?)?;
        let created_by = (!created_by.is_empty()).then_some(created_by);
        let row = tx
            .query_one_cached(
                &SQL.insert_rerun,
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
            .await?;
        let id: i64 = first(&row)?;
        tx.execute_cached(&SQL.update_next_build, &[&job_id])
            .await?;
        let build = build_row(&tx.query_one_cached(&SQL.by_id, &[&id]).await?)?;
        tx.commit().await?;
        Ok(build)
    }

    pub(super) async fn finish_build_tx(
        &self,
        id: i64,
        status: BuildStatus,
        at: i64,
    ) -> Result<()> {
        check_finished(status)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (current, job_id): (String, Option<i64>) =
            super::opt(&tx, &SQL.finishing, &[&id], tuple)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("build {id}")))?;
        check_unfinished(id, &current)?;
        let finish = async {
            tx.execute_cached(&SQL.finish, &[&id, &status.as_str(), &at])
                .await
                .map_err(StoreError::from)
        };
        let Some(job_id) = job_id else {
            finish.await?;
            tx.commit().await?;
            return Ok(());
        };
        // Statements that do not read each other's writes go out together (the job's last
        // finished build is another build; its next one is read after this one finished).
        let job: [&(dyn ToSql + Sync); 1] = [&job_id];
        let (_, latest) = tokio::try_join!(finish, super::opt(&tx, &SQL.job_latest, &job, tuple))?;
        let (latest, latest_status): (Option<i64>, Option<String>) =
            latest.ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
        let finished = async {
            if let Some(transition) = job_finished(latest, latest_status, id, status) {
                tx.execute_cached(&SQL.job_finished, &[&job_id, &id, &transition])
                    .await?;
            }
            Ok::<_, StoreError>(())
        };
        let next = async {
            tx.execute_cached(&SQL.update_next_build, &[&job_id])
                .await
                .map_err(StoreError::from)
        };
        tokio::try_join!(finished, next)?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of a job's builds without its neighbours: one statement, no transaction (the
    /// scheduler asks for a job's latest build on every pass that could trigger it).
    pub(super) async fn job_builds_page(&self, job_id: i64, page: &Page) -> Result<Vec<BuildRow>> {
        if page.timestamps {
            return Ok(self
                .builds_page_tx(BuildsOf::Job(job_id), page)
                .await?
                .builds);
        }
        let plan = PagePlan::new(page.from, page.to, page.limit)?;
        let client = self.pool.get().await?;
        Ok(page_rows(&client, BuildsOf::Job(job_id), &plan)
            .await?
            .builds)
    }

    pub(super) async fn builds_page_tx(&self, of: BuildsOf, page: &Page) -> Result<BuildsPage> {
        const D: Dialect = Dialect::Postgres;
        let mut client = self.pool.get().await?;
        // One snapshot for the page and its neighbours.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let (mut from, mut to) = (page.from, page.to);
        if page.timestamps {
            for (bound, is_from) in [(&mut from, true), (&mut to, false)] {
                if let Some(t) = *bound {
                    *bound = first_id(&tx, BuildsQuery::at_time(D, of, t, is_from)).await?;
                    if bound.is_none() {
                        return Ok(BuildsPage::default());
                    }
                }
            }
        }
        let plan = PagePlan::new(from, to, page.limit)?;
        let mut result = page_rows(&tx, of, &plan).await?;
        if page.timestamps {
            return Ok(result);
        }
        if let Some((newest, oldest)) = result.ends() {
            let older = first_id(&tx, BuildsQuery::neighbour(D, of, oldest, true)).await?;
            let newer = first_id(&tx, BuildsQuery::neighbour(D, of, newest, false)).await?;
            plan.link(&mut result, older, newer);
        }
        Ok(result)
    }

    /// Appends `events` (ids continuing from the build's last) and puts `entries` into its
    /// journal, atomically, in one statement (no transaction's extra round trips: a build
    /// appends a dozen times). Returns the build's last event id.
    pub(super) async fn append_build_events_batch(
        &self,
        build_id: i64,
        events: &[Value],
        entries: &[JournalEntry],
    ) -> Result<i64> {
        let client = self.pool.get().await?;
        if events.is_empty() && entries.is_empty() {
            return first(
                &client
                    .query_one_cached(&SQL.last_event, &[&build_id])
                    .await?,
            );
        }
        // One upsert may not touch a row twice: of a key put twice, the last put stands.
        let mut keys: Vec<&str> = Vec::with_capacity(entries.len());
        let mut data: Vec<&Value> = Vec::with_capacity(entries.len());
        for (key, value) in entries.iter().rev() {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
                data.push(value);
            }
        }
        match client
            .query_one_cached(APPEND, &[&build_id, &events, &keys, &data])
            .await
        {
            Ok(row) => first(&row),
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

/// The builds of `of` that `plan` bounds, as a page without its neighbours.
async fn page_rows(
    c: &impl deadpool_postgres::GenericClient,
    of: BuildsOf,
    plan: &PagePlan,
) -> Result<BuildsPage> {
    let query = BuildsQuery::page(Dialect::Postgres, of, plan);
    let builds = super::all(c, &query.sql, &params(&query.params), build_row).await?;
    Ok(plan.page(builds))
}

fn params(values: &[i64]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

async fn first_id(tx: &Transaction<'_>, query: BuildsQuery) -> Result<Option<i64>> {
    super::opt(tx, &query.sql, &params(&query.params), first).await
}
