//! One-off builds (`fly execute`): `POST T/builds` and `POST P/builds` take upstream's plan
//! JSON and start the build at once; `GET J/inputs` gives a job's next inputs so
//! `fly execute -j` can run a task against them.

use super::atc_plan;
use super::builds::build_json;
use super::error::{ApiError, ApiResult};
use super::scope::{JobScope, PipelineScope, TeamScope};
use super::{json, AppState};
use crate::atc::auth::Requester;
use crate::atc::engine::plan::{pipeline_configs, BuildPlan};
use crate::atc::engine::Engine;
use crate::clock::now;
use crate::db::{NewBuild, PipelineRow, TeamRow};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json as j, Value};
use std::sync::Arc;

fn engine(state: &AppState) -> ApiResult<&Arc<Engine>> {
    state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, "no build engine".into()))
}

pub(crate) async fn pipeline_config(
    state: &AppState,
    p: &PipelineRow,
) -> ApiResult<crate::config::Config> {
    let (config, _) = state
        .store
        .pipeline_config(p.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    crate::atc::scheduler::pipeline_config(&config)
        .map_err(|e| ApiError::Internal(format!("pipeline config: {e}")))
}

/// Validates the plan first, so a bad one creates nothing.
async fn start(
    state: &AppState,
    req: &Requester,
    team: &TeamRow,
    pipeline: Option<&PipelineRow>,
    body: &[u8],
) -> ApiResult<Response> {
    let engine = engine(state)?;
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    let base = match pipeline {
        Some(p) => pipeline_configs(&pipeline_config(state, p).await?),
        None => BuildPlan::default(),
    };
    let plan = atc_plan::translate(&body, base, engine.ids()).map_err(ApiError::bad_request)?;
    let row = state
        .store
        .create_build(&NewBuild {
            team_id: team.id,
            pipeline_id: pipeline.map(|p| p.id),
            created_by: req.display_user_id(),
            at: now(),
            ..Default::default()
        })
        .await?;
    engine
        .start(row.clone(), plan)
        .await
        .map_err(|e| ApiError::Internal(format!("starting build {}: {e}", row.id)))?;
    let row = state.store.build(row.id).await?.unwrap_or(row);
    Ok((StatusCode::CREATED, json(&build_json(&row))).into_response())
}

/// `POST T/builds`.
pub async fn create_team_build(
    State(state): State<AppState>,
    TeamScope { req, team }: TeamScope,
    body: Bytes,
) -> ApiResult<Response> {
    start(&state, &req, &team, None, &body).await
}

/// `POST P/builds`: the build may use the pipeline's resources, types and var sources.
pub async fn create_pipeline_build(
    State(state): State<AppState>,
    t: PipelineScope,
    body: Bytes,
) -> ApiResult<Response> {
    if t.pipeline.archived {
        return Err(ApiError::archived());
    }
    start(&state, &t.req, &t.team, Some(&t.pipeline), &body).await
}

/// `GET J/inputs`: upstream's BuildInput list for the job's next build; 404 while the
/// inputs do not resolve.
pub async fn job_inputs(State(state): State<AppState>, t: JobScope) -> ApiResult<Response> {
    let config = pipeline_config(&state, &t.pipeline).await?;
    let job = config.job(&t.job.name).ok_or_else(ApiError::not_found)?;
    let versions = crate::atc::scheduler::next_inputs(engine(&state)?, &t.pipeline, &config, job)
        .await
        .map_err(|e| ApiError::Internal(format!("resolving inputs: {e}")))?
        .ok_or_else(ApiError::not_found)?;
    let mut inputs = Vec::new();
    for g in job.inputs() {
        let resource = g.resource_name();
        let r = config.resource(resource).ok_or_else(ApiError::not_found)?;
        let version = versions.get(&g.name).ok_or_else(ApiError::not_found)?;
        let tags = if g.tags.is_empty() { &r.tags } else { &g.tags };
        inputs.push(j!({
            "name": g.name,
            "resource": resource,
            "type": r.type_,
            "source": r.source.clone().map(Value::Object).unwrap_or(j!({})),
            "params": g.params,
            "version": version,
            "tags": tags,
        }));
    }
    Ok(json(&inputs))
}
