//! Worker artifacts (`fly execute` uploads and one-off build outputs) on the embedded store.

use super::super::sql::{self, sqlite};
use super::super::*;
use super::rows::artifact_row;
use super::{is_foreign_key_violation, EmbeddedStore};
use rusqlite::{params, OptionalExtension};

fn not_found(e: rusqlite::Error, what: String) -> StoreError {
    if is_foreign_key_violation(&e) {
        StoreError::NotFound(what)
    } else {
        e.into()
    }
}

#[async_trait]
impl ArtifactStore for EmbeddedStore {
    async fn create_artifact(&self, new: &NewArtifact) -> Result<ArtifactRow> {
        let new = new.clone();
        self.call(move |conn| {
            let sql = sqlite(sql::ARTIFACT_INSERT);
            conn.prepare_cached(&sql)?
                .query_row(
                    params![
                        new.team_id,
                        new.build_id,
                        new.name,
                        new.worker_name,
                        new.volume_handle,
                        new.created_at
                    ],
                    artifact_row,
                )
                .map_err(|e| not_found(e, "team or build".into()))
        })
        .await
    }

    async fn artifact(&self, team_id: i64, id: i64) -> Result<Option<ArtifactRow>> {
        self.call(move |conn| {
            let sql = sqlite(sql::ARTIFACT_BY_ID);
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![id, team_id], artifact_row)
                .optional()?)
        })
        .await
    }

    async fn build_artifacts(&self, build_id: i64) -> Result<Vec<ArtifactRow>> {
        self.call(move |conn| {
            let sql = sqlite(sql::ARTIFACTS_OF_BUILD);
            let rows = conn
                .prepare_cached(&sql)?
                .query_map([build_id], artifact_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn set_artifact_build(&self, id: i64, build_id: i64, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn| {
            let n = conn
                .execute(&sqlite(sql::ARTIFACT_ATTACH), params![id, build_id, name])
                .map_err(|e| not_found(e, format!("build {build_id}")))?;
            Ok(n == 1)
        })
        .await
    }
}
