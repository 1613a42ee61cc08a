//! Build logs in bounded pages, on PostgreSQL.

use super::super::sql;
use super::super::*;
use super::cached::Cached;
use super::{build_row, PgStore};
use crate::db::sql::Dialect;

/// Rows fetched per round trip of a page's cursor: a page stops within one fetch of its
/// byte cap, so at most this many events are read past it.
const FETCH_ROWS: i32 = 32;

#[async_trait]
impl BuildLogStore for PgStore {
    async fn build_events_page(
        &self,
        build_id: i64,
        after: i64,
        max_events: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Value)>> {
        let limit = if max_events <= 0 {
            i64::MAX
        } else {
            max_events
        };
        let mut client = self.pool.get().await?;
        // A portal (it needs a transaction) fetches the page in small pieces, so a page of
        // big events is never read whole just to keep its first few.
        let tx = client.build_transaction().read_only(true).start().await?;
        let statement = tx.prepare_cached(&super::builds::SQL.events).await?;
        let portal = tx.bind(&statement, &[&build_id, &after, &limit]).await?;
        let (mut page, mut bytes) = (Vec::new(), 0);
        'fetch: loop {
            let rows = tx.query_portal(&portal, FETCH_ROWS).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let (id, event): (i64, Value) = (row.try_get(0)?, row.try_get(1)?);
                bytes += approx_size(&event);
                page.push((id, event));
                if bytes >= max_bytes {
                    break 'fetch;
                }
            }
        }
        tx.commit().await?;
        Ok(page)
    }

    async fn reap_build_logs(&self, build_ids: &[i64], at: i64) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ids = build_ids.to_vec();
        tx.execute_cached(&sql::delete_events(Dialect::Postgres), &[&ids])
            .await?;
        let reaped = tx
            .execute_cached(&sql::mark_reaped(Dialect::Postgres), &[&ids, &at])
            .await?;
        tx.commit().await?;
        Ok(reaped)
    }

    async fn unreaped_job_builds(&self, job_id: i64) -> Result<Vec<BuildRow>> {
        let client = self.pool.get().await?;
        let rows = client
            .query_cached(sql::UNREAPED_JOB_BUILDS, &[&job_id])
            .await?;
        rows.iter().map(build_row).collect()
    }

    async fn retained_jobs(&self, every_job: bool) -> Result<Vec<JobRow>> {
        let client = self.pool.get().await?;
        let rows = client
            .query_cached(&sql::retained_jobs(Dialect::Postgres), &[&every_job])
            .await?;
        rows.iter().map(super::job_row).collect()
    }

    async fn build_reap_time(&self, build_id: i64) -> Result<Option<i64>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(sql::BUILD_REAP_TIME, &[&build_id])
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.flatten())
    }
}
