//! Worker artifacts (`fly execute` uploads and one-off build outputs) on PostgreSQL.

use super::super::sql;
use super::super::*;
use super::cached::Cached;
use super::{is_foreign_key_violation, PgStore};
use crate::db::rows::artifact_row;

#[async_trait]
impl ArtifactStore for PgStore {
    async fn create_artifact(&self, new: &NewArtifact) -> Result<ArtifactRow> {
        let client = self.pool.get().await?;
        let sql = sql::ARTIFACT_INSERT;
        let row = client
            .query_one_cached(
                sql,
                &[
                    &new.team_id,
                    &new.build_id,
                    &new.name,
                    &new.worker_name,
                    &new.volume_handle,
                    &new.created_at,
                ],
            )
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound("team or build".into())
                } else {
                    e.into()
                }
            })?;
        artifact_row(&row)
    }

    async fn artifact(&self, team_id: i64, id: i64) -> Result<Option<ArtifactRow>> {
        let client = self.pool.get().await?;
        let sql = sql::ARTIFACT_BY_ID;
        client
            .query_opt_cached(sql, &[&id, &team_id])
            .await?
            .as_ref()
            .map(artifact_row)
            .transpose()
    }

    async fn build_artifacts(&self, build_id: i64) -> Result<Vec<ArtifactRow>> {
        let client = self.pool.get().await?;
        let sql = sql::ARTIFACTS_OF_BUILD;
        client
            .query_cached(sql, &[&build_id])
            .await?
            .iter()
            .map(artifact_row)
            .collect()
    }

    async fn set_artifact_build(&self, id: i64, build_id: i64, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(sql::ARTIFACT_ATTACH, &[&id, &build_id, &name])
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("build {build_id}"))
                } else {
                    e.into()
                }
            })?;
        Ok(n == 1)
    }
}
