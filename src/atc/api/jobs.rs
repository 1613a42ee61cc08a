//! Jobs: the dashboard list, a pipeline's jobs, one job, pause/unpause.

use super::builds::build_json;
use super::error::ApiResult;
use super::scope::{JobScope, PipelineScope};
use super::{json, listings, AppState};
use crate::atc::auth::Requester;
use crate::clock::now;
use crate::db::{BuildRow, JobRow, PipelineRow};
use crate::proto::api::{BuildSummary, Job, JobInput, JobOutput, JobSummary};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Inputs (every `get` anywhere in the plan, hooks included) and outputs (every `put`).
pub fn inputs_outputs(job_config: &Value) -> (Vec<JobInput>, Vec<JobOutput>) {
    fn walk(v: &Value, inputs: &mut Vec<JobInput>, outputs: &mut Vec<JobOutput>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(name)) = m.get("get") {
                    let resource = m
                        .get("resource")
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_string();
                    let passed = m
                        .get("passed")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                    let trigger = m.get("trigger").and_then(Value::as_bool).unwrap_or(false);
                    inputs.push(JobInput {
                        name: name.clone(),
                        resource,
                        trigger,
                        passed,
                    });
                }
                if let Some(Value::String(name)) = m.get("put") {
                    let resource = m
                        .get("resource")
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_string();
                    outputs.push(JobOutput {
                        name: name.clone(),
                        resource,
                    });
                }
                for (k, child) in m {
                    // Task configs and params hold user data, never steps.
                    if !matches!(
                        k.as_str(),
                        "config" | "params" | "get_params" | "source" | "vars"
                    ) {
                        walk(child, inputs, outputs);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, inputs, outputs)),
            _ => {}
        }
    }
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    walk(job_config, &mut inputs, &mut outputs);
    (inputs, outputs)
}

pub(crate) fn summary(b: &BuildRow) -> BuildSummary {
    BuildSummary {
        id: b.id,
        name: b.name.clone(),
        status: b.status.as_str().into(),
        start_time: b.start_time,
        end_time: b.end_time,
        team_name: b.team_name.clone(),
        pipeline_id: b.pipeline_id.unwrap_or(0),
        pipeline_name: b.pipeline_name.clone(),
        pipeline_instance_vars: b.pipeline_instance_vars.clone(),
        job_name: b.job_name.clone(),
    }
}

async fn load_build(state: &AppState, id: Option<i64>) -> ApiResult<Option<BuildRow>> {
    match id {
        Some(id) => Ok(state.store.build(id).await?),
        None => Ok(None),
    }
}

/// A job's inputs and outputs.
type Shape = (Vec<JobInput>, Vec<JobOutput>);

/// Each pipeline's jobs' inputs and outputs by job id, derived from the jobs' configs once
/// per pipeline config version (a job's config changes only with its pipeline's), so that
/// listing jobs reads no configs: decoding 2,000 of them was most of `GET /api/v1/jobs`.
#[derive(Default)]
pub struct JobShapes(std::sync::Mutex<HashMap<i64, PipelineShapes>>);

struct PipelineShapes {
    config_version: i64,
    used: std::time::Instant,
    jobs: Arc<HashMap<i64, Shape>>,
}

/// Pipelines not listed for this long are forgotten (deleted ones among them).
const SHAPES_UNUSED: std::time::Duration = std::time::Duration::from_secs(600);

impl JobShapes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, PipelineShapes>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shapes of `p`'s jobs, or None when they were derived from another config version
    /// or lack one of `job_ids`.
    fn cached(&self, p: &PipelineRow, job_ids: &[i64]) -> Option<Arc<HashMap<i64, Shape>>> {
        let mut cache = self.lock();
        let entry = cache.get_mut(&p.id)?;
        if entry.config_version != p.config_version
            || !job_ids.iter().all(|id| entry.jobs.contains_key(id))
        {
            return None;
        }
        entry.used = std::time::Instant::now();
        Some(entry.jobs.clone())
    }

    async fn of(
        &self,
        state: &AppState,
        p: &PipelineRow,
        job_ids: &[i64],
    ) -> ApiResult<Arc<HashMap<i64, Shape>>> {
        if let Some(jobs) = self.cached(p, job_ids) {
            return Ok(jobs);
        }
        let jobs: Arc<HashMap<i64, Shape>> = Arc::new(
            state
                .store
                .jobs(p.id)
                .await?
                .iter()
                .map(|j| (j.id, inputs_outputs(&j.config)))
                .collect(),
        );
        let now = std::time::Instant::now();
        let mut cache = self.lock();
        cache.retain(|_, e| now.duration_since(e.used) < SHAPES_UNUSED);
        cache.insert(
            p.id,
            PipelineShapes {
                config_version: p.config_version,
                used: now,
                jobs: jobs.clone(),
            },
        );
        Ok(jobs)
    }
}

/// A job's summary with its builds looked up in `builds` (loaded in bulk by the caller)
/// and its inputs and outputs in `shapes`.
pub(crate) fn summary_from(
    p: &PipelineRow,
    j: &JobRow,
    builds: &HashMap<i64, &BuildRow>,
    shapes: &HashMap<i64, Shape>,
) -> JobSummary {
    let (inputs, outputs) = shapes.get(&j.id).cloned().unwrap_or_default();
    let build = |id: Option<i64>| id.and_then(|id| builds.get(&id)).map(|b| summary(b));
    JobSummary {
        id: j.id,
        name: j.name.clone(),
        team_name: p.team_name.clone(),
        pipeline_id: p.id,
        pipeline_name: p.name.clone(),
        pipeline_instance_vars: p.instance_vars.clone(),
        paused: j.paused,
        paused_by: j.paused_by.clone(),
        paused_at: j.paused_at,
        has_new_inputs: j.has_new_inputs,
        groups: j.groups.clone(),
        next_build: build(j.next_build_id),
        finished_build: build(j.finished_build_id),
        transition_build: build(j.transition_build_id),
        inputs,
        outputs,
    }
}

/// Every job of `pipelines` as the dashboard lists them, in a few store reads.
pub(crate) async fn summaries_of(
    state: &AppState,
    pipelines: &[PipelineRow],
) -> ApiResult<(Vec<JobSummary>, crate::db::Overview)> {
    let ids: Vec<i64> = pipelines.iter().map(|p| p.id).collect();
    let overview = state.store.pipelines_overview(&ids).await?;
    let builds: HashMap<i64, &BuildRow> = overview.builds.iter().map(|b| (b.id, b)).collect();
    let mut out = Vec::with_capacity(overview.jobs.len());
    // Pipelines in the caller's order, each with its jobs in theirs.
    let mut jobs_of: HashMap<i64, Vec<&JobRow>> = HashMap::new();
    for j in &overview.jobs {
        jobs_of.entry(j.pipeline_id).or_default().push(j);
    }
    for p in pipelines {
        let Some(jobs) = jobs_of.get(&p.id) else {
            continue;
        };
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let shapes = state.job_shapes.of(state, p, &ids).await?;
        for j in jobs {
            out.push(summary_from(p, j, &builds, &shapes));
        }
    }
    Ok((out, overview))
}

async fn job_detail(state: &AppState, p: &PipelineRow, j: &JobRow) -> ApiResult<Job> {
    let (inputs, outputs) = inputs_outputs(&j.config);
    let flag = |k: &str| j.config.get(k).and_then(Value::as_bool).unwrap_or(false);
    Ok(Job {
        id: j.id,
        name: j.name.clone(),
        team_name: p.team_name.clone(),
        pipeline_id: p.id,
        pipeline_name: p.name.clone(),
        pipeline_instance_vars: p.instance_vars.clone(),
        paused: j.paused,
        paused_by: j.paused_by.clone(),
        paused_at: j.paused_at,
        has_new_inputs: j.has_new_inputs,
        groups: j.groups.clone(),
        first_logged_build_id: j.first_logged_build_id,
        disable_manual_trigger: flag("disable_manual_trigger"),
        disable_reruns: flag("disable_reruns"),
        next_build: load_build(state, j.next_build_id)
            .await?
            .as_ref()
            .map(build_json),
        finished_build: load_build(state, j.finished_build_id)
            .await?
            .as_ref()
            .map(build_json),
        transition_build: load_build(state, j.transition_build_id)
            .await?
            .as_ref()
            .map(build_json),
        inputs,
        outputs,
    })
}

pub async fn list_all(State(state): State<AppState>, req: Requester) -> ApiResult<Response> {
    let admin = req.is_admin();
    let member = req.member_team_ids();
    let key = format!("jobs {}", listings::visibility(admin, &member));
    let build = || async {
        let visible: Vec<PipelineRow> = state
            .store
            .pipelines(None)
            .await?
            .into_iter()
            .filter(|p| !p.archived && (admin || p.public || member.contains(&p.team_id)))
            .collect();
        Ok(summaries_of(&state, &visible).await?.0)
    };
    (state.listings)
        .answer(&*state.store, key, listings::JOBS, build)
        .await
}

pub async fn list(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    let key = format!("pipeline jobs {}", s.pipeline.id);
    let pipelines = [s.pipeline];
    let build = || async { Ok(summaries_of(&state, &pipelines).await?.0) };
    (state.listings)
        .answer(&*state.store, key, listings::JOBS, build)
        .await
}

pub async fn get(State(state): State<AppState>, s: JobScope) -> ApiResult<Response> {
    Ok(json(&job_detail(&state, &s.pipeline, &s.job).await?))
}

async fn set_paused(state: AppState, s: JobScope, paused: bool) -> ApiResult<Response> {
    let by = s.req.display_user_id();
    state
        .store
        .set_job_paused(s.job.id, paused, &by, now())
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn pause(State(state): State<AppState>, s: JobScope) -> ApiResult<Response> {
    set_paused(state, s, true).await
}

pub async fn unpause(State(state): State<AppState>, s: JobScope) -> ApiResult<Response> {
    set_paused(state, s, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_are_every_get_and_outputs_every_put() {
        let job = json!({"name": "j", "plan": [
            {"in_parallel": [{"get": "a", "trigger": true}, {"get": "b", "resource": "r", "passed": ["up"]}]},
            {"task": "t", "config": {"inputs": [{"name": "get"}]}},
            {"put": "out", "params": {"get": "x"}},
        ], "ensure": {"get": "c"}});
        let (inputs, outputs) = inputs_outputs(&job);
        let names: Vec<_> = inputs
            .iter()
            .map(|i| (i.name.as_str(), i.resource.as_str(), i.trigger))
            .collect();
        assert_eq!(
            names,
            vec![("a", "a", true), ("b", "r", false), ("c", "c", false)]
        );
        assert_eq!(inputs.len(), 3);
        assert_eq!(
            inputs
                .iter()
                .find(|i| i.name == "b")
                .map(|i| i.passed.clone()),
            Some(vec!["up".to_string()])
        );
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].resource, "out");
    }
}
