//! Many pipelines' jobs, resources and builds in three statements (the dashboard).

use super::{build_row, job_row, resource_row, PgStore};
use crate::db::sql::{BUILD_SELECT, JOB_SELECT, RESOURCE_SELECT};
use crate::db::*;

#[async_trait]
impl OverviewStore for PgStore {
    async fn pipelines_overview(&self, pipeline_ids: &[i64]) -> Result<Overview> {
        let client = self.pool.get().await?;
        let ids = pipeline_ids.to_vec();
        let jobs: Vec<JobRow> = client
            .query(
                &format!(
                    "{JOB_SELECT} WHERE j.pipeline_id = ANY($1) AND j.active \
                     ORDER BY j.pipeline_id, j.ordering, j.id"
                ),
                &[&ids],
            )
            .await?
            .iter()
            .map(job_row)
            .collect::<Result<_>>()?;
        let resources: Vec<ResourceRow> = client
            .query(
                &format!(
                    "{RESOURCE_SELECT} WHERE r.pipeline_id = ANY($1) AND r.active \
                     ORDER BY r.pipeline_id, r.ordering, r.id"
                ),
                &[&ids],
            )
            .await?
            .iter()
            .map(resource_row)
            .collect::<Result<_>>()?;
        let build_ids = crate::db::referenced_builds(&jobs, &resources);
        let builds = client
            .query(
                &format!("{BUILD_SELECT} WHERE b.id = ANY($1) ORDER BY b.id"),
                &[&build_ids],
            )
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
}
