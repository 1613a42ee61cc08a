//! The wall message and the builds around a resource version, on the embedded store.

use super::super::sql::{self, sqlite, BUILD_SELECT};
use super::super::*;
use super::{build_row, EmbeddedStore};
use rusqlite::{params, OptionalExtension};

/// `outputs` picks the table; the version is matched by its hash within the resource.
fn version_builds_sql(outputs: bool) -> String {
    let table = if outputs {
        "build_outputs"
    } else {
        "build_inputs"
    };
    format!(
        "{BUILD_SELECT} WHERE b.id IN (SELECT x.build_id FROM {table} x \
         JOIN resource_config_versions v ON v.version_sha256 = x.version_sha256 \
         WHERE x.resource_id = ?1 AND v.id = ?2) ORDER BY b.id DESC"
    )
}

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
            let mut stmt = conn.prepare(&version_builds_sql(outputs))?;
            let rows = stmt
                .query_map([resource_id, version_id], build_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}
