//! `POST .../resources/:r/check` and `.../resource-types/:t/check`: a check build that
//! `fly check-resource` then follows (atc-api.md §3.6).

use super::access;
use super::builds::build_json;
use super::error::{ApiError, ApiResult};
use super::{json, AppState};
use crate::atc::auth::{Requester, Role};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The path of a check route: team, pipeline and resource (type) name.
type Names = (String, String, String);

async fn check(
    state: AppState,
    req: Requester,
    (team, pipeline, name): Names,
    kind: &str,
    query: Option<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = access::pipeline_write(
        &state,
        &req,
        &team,
        &pipeline,
        query.as_deref(),
        Role::PipelineOperator,
    )
    .await?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    let from = body.get("from").filter(|v| !v.is_null()).cloned();
    let engine = state.engine.as_ref().ok_or_else(|| {
        ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, "no build engine".into())
    })?;
    let build = crate::atc::scheduler::checker::check_build(
        engine,
        &t.pipeline,
        &name,
        kind,
        from,
        &req.display_user_id(),
    )
    .await
    .map_err(|e| ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, json(&build_json(&build))).into_response())
}

pub async fn resource(
    State(state): State<AppState>,
    req: Requester,
    Path(names): Path<Names>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    check(state, req, names, "resource", q, body).await
}

pub async fn resource_type(
    State(state): State<AppState>,
    req: Requester,
    Path(names): Path<Names>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    check(state, req, names, "resource_type", q, body).await
}

/// `POST R/check/webhook?webhook_token=T`: no login; the token must equal the resource's
/// `webhook_token`. 201 with the check build.
pub async fn webhook(
    State(state): State<AppState>,
    Path((team, pipeline, name)): Path<Names>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let token = pairs
        .iter()
        .find(|(k, _)| k == "webhook_token")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ApiError::bad_request("missing webhook_token"))?;
    let vars = access::instance_vars(q.as_deref())?;
    let p = state
        .store
        .pipeline(&team, &pipeline, vars.as_ref())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let r = state
        .store
        .resource(p.id, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let expected = r
        .config
        .get("webhook_token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if expected.is_empty() || !crate::atc::auth::secrets_match(expected, &token) {
        return Err(ApiError::unauthorized());
    }
    let engine = state.engine.as_ref().ok_or_else(|| {
        ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, "no build engine".into())
    })?;
    let build =
        crate::atc::scheduler::checker::check_build(engine, &p, &name, "resource", None, "webhook")
            .await
            .map_err(|e| ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, json(&build_json(&build))).into_response())
}
