//! Build ownership and the build journal on PostgreSQL.

use super::super::sql::{Dialect, JournalSql};
use super::super::*;
use super::cached::Cached;
use super::PgStore;
use crate::db::rows::{first, tuple};
use std::sync::LazyLock;

pub(super) static SQL: LazyLock<JournalSql> = LazyLock::new(|| JournalSql::new(Dialect::Postgres));

#[async_trait]
impl JournalStore for PgStore {
    async fn claim_build(
        &self,
        build_id: i64,
        holder: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute_cached(&SQL.claim, &[&build_id, &holder, &expires, &now])
            .await?
            > 0)
    }

    async fn renew_builds(&self, holder: &str, expires: i64) -> Result<Vec<i64>> {
        let client = self.pool.get().await?;
        super::all(&client, &SQL.renew, &[&holder, &expires], first).await
    }

    async fn orphaned_builds(&self, now: i64) -> Result<Vec<i64>> {
        let client = self.pool.get().await?;
        super::all(&client, &SQL.orphans, &[&now], first).await
    }

    async fn release_builds(&self, holder: &str, ids: &[i64]) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute_cached(&SQL.release, &[&holder, &ids])
            .await?;
        Ok(())
    }

    async fn put_journal(&self, build_id: i64, entries: &[JournalEntry]) -> Result<()> {
        self.append_build_events_batch(build_id, &[], entries)
            .await
            .map(|_| ())
    }

    async fn journal(&self, build_id: i64) -> Result<Vec<JournalEntry>> {
        let client = self.pool.get().await?;
        super::all(&client, &SQL.entries, &[&build_id], tuple).await
    }

    async fn append_build_events_journaled(
        &self,
        build_id: i64,
        events: &[Value],
        entries: &[JournalEntry],
    ) -> Result<i64> {
        self.append_build_events_batch(build_id, events, entries)
            .await
    }
}
