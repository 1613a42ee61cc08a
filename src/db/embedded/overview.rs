//! Many pipelines' jobs, resources and builds in three statements (the dashboard). The id
//! lists travel as one JSON array parameter, expanded by `json_each`.

use super::super::*;
use super::{build_row, job_row, resource_row, EmbeddedStore};
use crate::db::sql::{BUILD_SELECT, JOB_SELECT, RESOURCE_SELECT};

#[async_trait]
impl OverviewStore for EmbeddedStore {
    async fn pipelines_overview(&self, pipeline_ids: &[i64]) -> Result<Overview> {
        let ids = serde_json::to_string(pipeline_ids)
            .map_err(|e| StoreError::Invalid(format!("encoding ids: {e}")))?;
        self.call(move |conn| {
            let jobs: Vec<JobRow> = conn
                .prepare_cached(&format!(
                    "{JOB_SELECT} WHERE j.pipeline_id IN (SELECT value FROM json_each(?1)) \
                     AND j.active ORDER BY j.pipeline_id, j.ordering, j.id"
                ))?
                .query_map([&ids], job_row)?
                .collect::<Result<_, _>>()?;
            let resources: Vec<ResourceRow> = conn
                .prepare_cached(&format!(
                    "{RESOURCE_SELECT} WHERE r.pipeline_id IN (SELECT value FROM json_each(?1)) \
                     AND r.active ORDER BY r.pipeline_id, r.ordering, r.id"
                ))?
                .query_map([&ids], resource_row)?
                .collect::<Result<_, _>>()?;
            let build_ids = serde_json::to_string(&referenced_builds(&jobs, &resources))
                .map_err(|e| StoreError::Invalid(format!("encoding ids: {e}")))?;
            let builds = conn
                .prepare_cached(&format!(
                    "{BUILD_SELECT} WHERE b.id IN (SELECT value FROM json_each(?1)) ORDER BY b.id"
                ))?
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
}
