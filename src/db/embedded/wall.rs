//! The wall message and the builds around a resource version, on the embedded store.

use super::super::sql::{self, sqlite};
use super::super::*;
use super::{build_row, EmbeddedStore};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl WallStore for EmbeddedStore {
    async fn wall(&self) -> Result<Option<WallRow>> {
        self.call(|conn| {
            Ok(conn
                .query_row(sql::WALL, [], super::rows::wall_row)
                .optional()?)
        })
        .await
    }

    async fn set_wall(&self, wall: &WallRow) -> Result<()> {
        let wall = wall.clone();
        self.call(move |conn| {
            conn.execute(
                &sqlite(sql::WALL_SET),
                params![wall.message, wall.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn clear_wall(&self) -> Result<()> {
        self.call(|conn| {
            conn.execute(sql::WALL_CLEAR, [])?;
            Ok(())
        })
        .await
    }

    async fn version_builds(
        &self,
        resource_id: i64,
        version_id: i64,
        outputs: bool,
    ) -> Result<Vec<BuildRow>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&sql::version_builds(sql::Dialect::Sqlite, outputs))?;
            let rows = stmt
                .query_map([resource_id, version_id], build_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}
