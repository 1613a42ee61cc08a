//! Coordination of several web nodes on PostgreSQL: leases and cross-node aborts.

use super::super::sql;
use super::super::*;
use super::cached::Cached;
use super::PgStore;

#[async_trait]
impl ClusterStore for PgStore {
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool> {
        let expires_at = worker_expiry(Some(ttl), now);
        let client = self.pool.get().await?;
        let rows = client
            .query_cached(sql::LEASE_TAKE, &[&name, &holder, &expires_at, &now])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute_cached(sql::LEASE_RELEASE, &[&name, &holder])
            .await?
            > 0)
    }

    async fn request_build_abort(&self, build_id: i64) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute_cached(&super::builds::SQL.request_abort, &[&build_id])
            .await?
            > 0)
    }

    async fn builds_to_stop(&self, ids: &[i64]) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let keep: Vec<i64> = client
            .query_cached(&super::builds::SQL.still_running, &[&ids])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !keep.contains(id))
            .collect())
    }
}
