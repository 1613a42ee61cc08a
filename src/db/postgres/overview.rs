//! Many pipelines' jobs, resources and builds in three statements (the dashboard).

use super::super::rows::{job_mark, resource_mark};
use super::cached::Cached;
use super::{build_row, job_row, resource_row, PgStore};
use crate::db::sql::{Dialect, OverviewSql};
use std::sync::LazyLock;

static SQL: LazyLock<OverviewSql> = LazyLock::new(|| OverviewSql::new(Dialect::Postgres));
use crate::db::*;

#[async_trait]
impl OverviewStore for PgStore {
    /// The snapshot's `xmin:xmax:in-progress` list: any commit (of this database or another
    /// of the cluster, from any web node) removes an id from the list or raises `xmax`.
    async fn data_version(&self) -> Result<String> {
        let client = self.pool.get().await?;
        let row = client
            .query_one_cached("SELECT pg_current_snapshot()::text", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// A counter row per table would make every transaction writing one of them wait for
    /// the others' commits (and deadlock writers taking two in opposite orders).
    async fn tables_version(&self, _tables: &[&str]) -> Result<String> {
        self.data_version().await
    }

    async fn pipelines_overview(&self, pipeline_ids: &[i64]) -> Result<Overview> {
        let client = self.pool.get().await?;
        let ids = pipeline_ids.to_vec();
        let p: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
        // Sent together: the connection pipelines them.
        let (jobs, resources) = tokio::try_join!(
            client.query_cached(&SQL.jobs, &p),
            client.query_cached(&SQL.resources, &p)
        )?;
        let jobs: Vec<JobRow> = jobs.iter().map(job_row).collect::<Result<_>>()?;
        let resources: Vec<ResourceRow> =
            resources.iter().map(resource_row).collect::<Result<_>>()?;
        let build_ids = crate::db::referenced_builds(&jobs, &resources);
        let builds = client
            .query_cached(&SQL.builds, &[&build_ids])
            .await?
            .iter()
            .map(build_row)
            .collect::<Result<_>>()?;
        Ok(Overview {
            jobs,
            resources,
            builds,
        })
    }

    async fn scheduling_marks(&self, pipeline_ids: &[i64]) -> Result<SchedulingMarks> {
        let client = self.pool.get().await?;
        let ids = pipeline_ids.to_vec();
        let p: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
        // Sent together: the connection pipelines them.
        let (jobs, resources) = tokio::try_join!(
            client.query_cached(&SQL.job_marks, &p),
            client.query_cached(&SQL.resource_marks, &p)
        )?;
        Ok(SchedulingMarks {
            jobs: jobs.iter().map(job_mark).collect::<Result<_>>()?,
            resources: resources.iter().map(resource_mark).collect::<Result<_>>()?,
        })
    }
}
