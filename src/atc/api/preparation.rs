//! `GET /api/v1/builds/:id/preparation`: what a pending build waits for (upstream's
//! `BuildPreparation`), for the build page's "preparing build" checklist.

use super::error::{ApiError, ApiResult};
use super::scope::BuildScope;
use super::{json, AppState};
use crate::db::BuildStatus;
use axum::extract::State;
use axum::response::Response;
use serde_json::{json as j, Map, Value};

const BLOCKING: &str = "BLOCKING";
const NOT_BLOCKING: &str = "NOT_BLOCKING";

fn status(blocking: bool) -> &'static str {
    if blocking {
        BLOCKING
    } else {
        NOT_BLOCKING
    }
}

pub async fn preparation(State(state): State<AppState>, s: BuildScope) -> ApiResult<Response> {
    let (id, build) = (s.build.id, s.build);
    let mut out = j!({
        "build_id": id,
        "paused_pipeline": NOT_BLOCKING,
        "paused_job": NOT_BLOCKING,
        "max_running_builds": NOT_BLOCKING,
        "inputs": {},
        "inputs_satisfied": NOT_BLOCKING,
        "missing_input_reasons": {},
    });
    // Only a pending job build waits for anything.
    let (Some(pipeline_id), BuildStatus::Pending) = (build.pipeline_id, build.status) else {
        return Ok(json(&out));
    };
    let Some(pipeline) = state.store.pipeline_by_id(pipeline_id).await? else {
        return Ok(json(&out));
    };
    let Some(job_row) = state.store.job(pipeline_id, &build.job_name).await? else {
        return Ok(json(&out));
    };
    out["paused_pipeline"] = status(pipeline.paused).into();
    out["paused_job"] = status(job_row.paused).into();
    let config = super::oneoff::pipeline_config(&state, &pipeline).await?;
    let (Some(job), Some(engine)) = (config.job(&build.job_name), state.engine.as_ref()) else {
        return Ok(json(&out));
    };
    let Some(prep) = crate::atc::scheduler::preparation(engine, &pipeline, &config, job, &build)
        .await
        .map_err(|e| ApiError::Internal(format!("preparing build: {e}")))?
    else {
        return Ok(json(&out));
    };
    let inputs: Map<String, Value> = prep
        .discovered
        .iter()
        .map(|(name, checked)| (name.clone(), status(!checked).into()))
        .collect();
    out["inputs"] = Value::Object(inputs);
    out["inputs_satisfied"] = status(!prep.missing.is_empty()).into();
    out["missing_input_reasons"] = j!(prep.missing);
    out["max_running_builds"] = status(prep.max_in_flight_reached).into();
    Ok(json(&out))
}
