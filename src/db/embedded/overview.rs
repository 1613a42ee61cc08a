//! Many pipelines' jobs, resources and builds in three statements (the dashboard). The id
//! lists travel as one JSON array parameter, expanded by `json_each`.

use super::super::*;
use super::rows::{job_mark, resource_mark};
use super::{build_row, job_row, resource_row, EmbeddedStore};
use crate::db::sql::{Dialect, OverviewSql};
use std::sync::LazyLock;

static SQL: LazyLock<OverviewSql> = LazyLock::new(|| OverviewSql::new(Dialect::Sqlite));

#[async_trait]
impl OverviewStore for EmbeddedStore {
    /// SQLite's `PRAGMA data_version` on a connection that never writes: it moves with
    /// every commit of any other connection, this process's writer or another process's.
    async fn data_version(&self) -> Result<String> {
        super::on_connection(&self.version, (), |conn| {
            let v: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            Ok(v.to_string())
        })
        .await
    }

    async fn tables_version(&self, tables: &[&str]) -> Result<String> {
        let names = serde_json::to_string(tables)
            .map_err(|e| StoreError::Invalid(format!("encoding table names: {e}")))?;
        let want = tables.len();
        super::on_connection(&self.version, (), move |conn| {
            let counts: Vec<(String, i64)> = conn
                .prepare_cached(
                    "SELECT name, version FROM table_versions \
                     WHERE name IN (SELECT value FROM json_each(?1)) ORDER BY name",
                )?
                .query_map([&names], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // A table without a counter would never move the version: refuse, not cache.
            if counts.len() != want {
                return Err(StoreError::Invalid(format!(
                    "no change counter for one of the tables {names}"
                )));
            }
            Ok(counts
                .iter()
                .map(|(name, v)| format!("{name}:{v}"))
                .collect::<Vec<_>>()
                .join(" "))
        })
        .await
    }

    async fn pipelines_overview(&self, pipeline_ids: &[i64]) -> Result<Overview> {
        let ids = serde_json::to_string(pipeline_ids)
            .map_err(|e| StoreError::Invalid(format!("encoding ids: {e}")))?;
        self.read(move |conn| {
            let jobs: Vec<JobRow> = conn
                .prepare_cached(&SQL.jobs)?
                .query_map([&ids], job_row)?
                .collect::<Result<_, _>>()?;
            let resources: Vec<ResourceRow> = conn
                .prepare_cached(&SQL.resources)?
                .query_map([&ids], resource_row)?
                .collect::<Result<_, _>>()?;
            let build_ids = serde_json::to_string(&referenced_builds(&jobs, &resources))
                .map_err(|e| StoreError::Invalid(format!("encoding ids: {e}")))?;
            let builds = conn
                .prepare_cached(&SQL.builds)?
                .query_map([&build_ids], build_row)?
                .collect::<Result<_, _>>()?;
            Ok(Overview {
                jobs,
                resources,
                builds,
            })
        })
        .await
    }

    async fn scheduling_marks(&self, pipeline_ids: &[i64]) -> Result<SchedulingMarks> {
        let ids = serde_json::to_string(pipeline_ids)
            .map_err(|e| StoreError::Invalid(format!("encoding ids: {e}")))?;
        self.read(move |conn| {
            Ok(SchedulingMarks {
                jobs: conn
                    .prepare_cached(&SQL.job_marks)?
                    .query_map([&ids], job_mark)?
                    .collect::<Result<_, _>>()?,
                resources: conn
                    .prepare_cached(&SQL.resource_marks)?
                    .query_map([&ids], resource_mark)?
                    .collect::<Result<_, _>>()?,
            })
        })
        .await
    }
}
