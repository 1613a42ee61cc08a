//! Saving a parsed pipeline config: shared by `PUT .../config` and the `set_pipeline` step.

use crate::config::{self, Config};
use crate::db::{JobConfigRow, ResourceConfigRow, SavePipeline};

/// Who set a pipeline: a set_pipeline step's job and build (zero for `fly set-pipeline`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Parent {
    pub job_id: i64,
    pub build_id: i64,
}

/// The store request for saving `parsed` as `team_id`'s pipeline `name`. Pipelines set
/// through the API start paused; those set by a step do not.
pub fn save_request(
    parsed: &Config,
    team_id: i64,
    name: &str,
    instance_vars: Option<serde_json::Value>,
    expected_version: i64,
    parent: Parent,
) -> SavePipeline {
    SavePipeline {
        team_id,
        name: name.to_string(),
        instance_vars,
        expected_version,
        jobs: parsed
            .jobs
            .iter()
            .map(|j| JobConfigRow {
                name: j.name.clone(),
                old_name: non_empty(&j.old_name),
                config: serde_json::to_value(j).unwrap_or_default(),
            })
            .collect(),
        resources: parsed
            .resources
            .iter()
            .map(|r| ResourceConfigRow {
                name: r.name.clone(),
                old_name: non_empty(&r.old_name),
                type_: r.type_.clone(),
                config: serde_json::to_value(r).unwrap_or_default(),
            })
            .collect(),
        job_groups: job_groups(parsed),
        config: config::to_json(parsed),
        paused_on_create: parent.build_id == 0,
        parent_job_id: parent.job_id,
        parent_build_id: parent.build_id,
        at: crate::clock::now(),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Which groups each job belongs to (a group's `jobs` are globs).
fn job_groups(config: &Config) -> Vec<(String, Vec<String>)> {
    config
        .jobs
        .iter()
        .map(|job| {
            let groups = config
                .groups
                .iter()
                .filter(|g| {
                    g.jobs
                        .iter()
                        .any(|pat| config::glob_match(pat, &job.name).unwrap_or(false))
                })
                .map(|g| g.name.clone())
                .collect();
            (job.name.clone(), groups)
        })
        .collect()
}
