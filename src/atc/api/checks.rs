//! `POST .../resources/:r/check`, `.../resource-types/:t/check` and
//! `.../prototypes/:p/check`: a check build that `fly check-resource` then follows
//! (atc-api.md §3.6).

use super::builds::build_json;
use super::error::{ApiError, ApiResult};
use super::scope;
use super::scope::PipelineScope;
use super::{json, AppState};
use crate::atc::engine::exec::VarSources;
use crate::db::PipelineRow;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The path of a check route: team, pipeline and resource (type) name.
type Names = (String, String, String);

async fn check(
    state: AppState,
    s: PipelineScope,
    name: String,
    kind: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    let from = body.get("from").filter(|v| !v.is_null()).cloned();
    let engine = state.engine.as_ref().ok_or_else(|| {
        ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, "no build engine".into())
    })?;
    let build = crate::atc::scheduler::checker::check_build(
        engine,
        &s.pipeline,
        &name,
        kind,
        from,
        &s.req.display_user_id(),
    )
    .await
    .map_err(|e| ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, json(&build_json(&build))).into_response())
}

pub async fn resource(
    State(state): State<AppState>,
    s: PipelineScope,
    Path((_, _, name)): Path<Names>,
    body: Bytes,
) -> ApiResult<Response> {
    check(state, s, name, "resource", body).await
}

pub async fn resource_type(
    State(state): State<AppState>,
    s: PipelineScope,
    Path((_, _, name)): Path<Names>,
    body: Bytes,
) -> ApiResult<Response> {
    check(state, s, name, "resource_type", body).await
}

/// Upstream's `CheckPrototype`: the prototype's type checked with its source, its versions
/// kept like a resource type's. Nothing runs prototypes here (`run` steps are refused), but
/// the check itself is the same as upstream's.
pub async fn prototype(
    State(state): State<AppState>,
    s: PipelineScope,
    Path((_, _, name)): Path<Names>,
    body: Bytes,
) -> ApiResult<Response> {
    check(state, s, name, "prototype", body).await
}

/// `POST R/check/webhook?webhook_token=T`: no login; the token must equal the resource's
/// `webhook_token` once interpolated with the pipeline's vars (compared in constant time).
/// 201 with the check build. Like upstream, an archived pipeline is not refused with 409
/// here: archiving cleared the resource's config, so no token matches (401).
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
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing webhook_token"))?;
    let vars = scope::instance_vars(q.as_deref())?;
    let p = state
        .store
        .pipeline(&team, &pipeline, vars.as_ref())
        .await?
        .ok_or_else(ApiError::not_found)?;
    if p.archived {
        tracing::info!(team = %team, pipeline = %p.name, resource = %name,
            "webhook refused: the pipeline is archived");
        return Err(ApiError::unauthorized());
    }
    let r = state
        .store
        .resource(p.id, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let raw = r
        .config
        .get("webhook_token")
        .cloned()
        .unwrap_or(Value::Null);
    let expected = match expected_token(&state, &p, &raw).await {
        Ok(t) => t,
        Err(why) => {
            // The reason stays in the log: the caller is not logged in.
            tracing::info!(team = %team, pipeline = %p.name, resource = %name, reason = %why,
                "webhook refused: the resource's webhook_token did not evaluate");
            return Err(ApiError::unauthorized());
        }
    };
    if expected.is_empty() || !crate::atc::auth::secrets_match(&expected, &token) {
        tracing::info!(team = %team, pipeline = %p.name, resource = %name,
            "webhook refused: invalid token");
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

/// The resource's `webhook_token` evaluated as upstream does: `((source:var))` from the
/// pipeline's var sources, `((var))` from the cluster's credential manager. Instance vars were substituted when the
/// pipeline was set, as for the rest of its config. Empty when the resource has none.
async fn expected_token(state: &AppState, p: &PipelineRow, raw: &Value) -> Result<String, String> {
    let raw = match raw {
        Value::Null => return Ok(String::new()),
        Value::String(s) if !s.contains("((") => return Ok(s.clone()),
        Value::String(_) => raw,
        _ => return Err("webhook_token is not a string".into()),
    };
    let config = match state.store.pipeline_config(p.id).await {
        Ok(Some((c, _))) => c,
        Ok(None) => return Err("the pipeline has no config".into()),
        Err(e) => return Err(format!("loading the pipeline config: {e}")),
    };
    let config = crate::atc::scheduler::pipeline_config(&config).map_err(|e| e.to_string())?;
    let sources = crate::atc::engine::plan::pipeline_configs(&config).var_sources;
    let fetched = match &state.engine {
        Some(engine) => {
            let owner = crate::atc::creds::Owner {
                team: &p.team_name,
                pipeline: &p.name,
            };
            engine.rt.creds.fetch(&sources, &owner, raw).await?
        }
        None => Default::default(),
    };
    let vars = VarSources::outside_build(&sources).with_fetched(fetched);
    match crate::config::vars::interpolate(raw, &vars, true) {
        Ok(Value::String(s)) => Ok(s),
        Ok(_) => Err("webhook_token did not evaluate to a string".into()),
        Err(e) => Err(e.to_string()),
    }
}
