//! Build logs in bounded pages, on the embedded store.

use super::super::sql::{self, sqlite};
use super::super::*;
use super::{build_row, EmbeddedStore};
use crate::db::sql::Dialect;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl BuildLogStore for EmbeddedStore {
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
        self.call(move |conn| {
            let mut statement = conn.prepare_cached(&super::builds::SQL.events)?;
            let mut rows = statement.query([build_id, after, limit])?;
            let (mut page, mut bytes) = (Vec::new(), 0);
            // Rows are stepped one by one: the rest of the log is never read.
            while let Some(row) = rows.next()? {
                let event = super::rows::lift(crate::db::rows::SqlRow::col(row, 1))?;
                bytes += approx_size(&event);
                page.push((row.get(0)?, event));
                if bytes >= max_bytes {
                    break;
                }
            }
            Ok(page)
        })
        .await
    }

    async fn reap_build_logs(&self, build_ids: &[i64], at: i64) -> Result<u64> {
        let ids = serde_json::to_string(build_ids)
            .map_err(|e| StoreError::Invalid(format!("encoding ids: {e}")))?;
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(&sql::delete_events(Dialect::Sqlite), [&ids])?;
            let reaped = tx.execute(&sql::mark_reaped(Dialect::Sqlite), params![ids, at])?;
            tx.commit()?;
            Ok(reaped as u64)
        })
        .await
    }

    async fn unreaped_job_builds(&self, job_id: i64) -> Result<Vec<BuildRow>> {
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(&sqlite(sql::UNREAPED_JOB_BUILDS))?
                .query_map([job_id], build_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn retained_jobs(&self, every_job: bool) -> Result<Vec<JobRow>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&sql::retained_jobs(Dialect::Sqlite))?
                .query_map([every_job], super::job_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn build_reap_time(&self, build_id: i64) -> Result<Option<i64>> {
        self.call(move |conn| {
            Ok(conn
                .query_row(&sqlite(sql::BUILD_REAP_TIME), [build_id], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .optional()?
                .flatten())
        })
        .await
    }
}
