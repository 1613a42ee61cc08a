//! The wall message and the builds around a resource version, on PostgreSQL.

use super::super::sql::{self};
use super::super::*;
use super::cached::Cached;
use super::{build_row, PgStore};

#[async_trait]
impl WallStore for PgStore {
    async fn wall(&self) -> Result<Option<WallRow>> {
        let client = self.pool.get().await?;
        let row = client.query_opt_cached(sql::WALL, &[]).await?;
        row.as_ref().map(crate::db::rows::wall_row).transpose()
    }

    async fn set_wall(&self, wall: &WallRow) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute_cached(sql::WALL_SET, &[&wall.message, &wall.expires_at])
            .await?;
        Ok(())
    }

    async fn clear_wall(&self) -> Result<()> {
        let client = self.pool.get().await?;
        client.execute_cached(sql::WALL_CLEAR, &[]).await?;
        Ok(())
    }

    async fn version_builds(
        &self,
        resource_id: i64,
        version_id: i64,
        outputs: bool,
    ) -> Result<Vec<BuildRow>> {
        let client = self.pool.get().await?;
        client
            .query_cached(
                &sql::version_builds(sql::Dialect::Postgres, outputs),
                &[&resource_id, &version_id],
            )
            .await?
            .iter()
            .map(build_row)
            .collect()
    }
}
