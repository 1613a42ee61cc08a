//! Pipelines: listing, pause/unpause, expose/hide, archive, rename, ordering, destroy.

use super::error::{ApiError, ApiResult};
use super::scope::{PipelineScope, TeamScope};
use super::{json, AppState};
use crate::atc::auth::Requester;
use crate::clock::now;
use crate::db::PipelineRow;
use crate::proto::api::{DisplayConfig, GroupConfig, Pipeline, RenameRequest, SaveConfigResponse};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub fn pipeline_json(p: &PipelineRow) -> Pipeline {
    let groups: Vec<GroupConfig> = serde_json::from_value(p.groups.clone()).unwrap_or_default();
    let display: Option<DisplayConfig> = serde_json::from_value(p.display.clone()).ok().flatten();
    Pipeline {
        id: p.id,
        name: p.name.clone(),
        instance_vars: p.instance_vars.clone(),
        paused: p.paused,
        paused_by: p.paused_by.clone(),
        paused_at: p.paused_at,
        public: p.public,
        archived: p.archived,
        groups,
        team_name: p.team_name.clone(),
        display,
        user_data: (!p.user_data.is_null()).then(|| p.user_data.clone()),
        parent_build_id: p.parent_build_id,
        parent_job_id: p.parent_job_id,
        last_updated: p.last_updated,
    }
}

/// Pipelines the requester may see: admins all; members their teams'; everyone public ones.
fn visible(req: &Requester, rows: Vec<PipelineRow>) -> Vec<Pipeline> {
    let admin = req.is_admin();
    let member = req.member_team_ids();
    rows.iter()
        .filter(|p| admin || p.public || member.contains(&p.team_id))
        .map(pipeline_json)
        .collect()
}

pub async fn list_all(State(state): State<AppState>, req: Requester) -> ApiResult<Response> {
    let rows = state.store.pipelines(None).await?;
    // Members' own teams first (by team, then ordering), then other teams' public ones.
    let member = req.member_team_ids();
    let (mut mine, others): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|p| member.contains(&p.team_id));
    mine.extend(others);
    Ok(json(&visible(&req, mine)))
}

pub async fn list_team(
    State(state): State<AppState>,
    req: Requester,
    Path(team): Path<String>,
) -> ApiResult<Response> {
    if state.store.team(&team).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let rows = state.store.pipelines(Some(&team)).await?;
    Ok(json(&visible(&req, rows)))
}

pub async fn get(s: PipelineScope) -> ApiResult<Response> {
    Ok(json(&pipeline_json(&s.pipeline)))
}

pub async fn destroy(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    state.store.destroy_pipeline(s.pipeline.id).await?;
    archive_children(&state).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_paused(state: AppState, s: PipelineScope, paused: bool) -> ApiResult<Response> {
    let by = s.req.display_user_id();
    state
        .store
        .set_pipeline_paused(s.pipeline.id, paused, &by, now())
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn pause(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    set_paused(state, s, true).await
}

pub async fn unpause(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    set_paused(state, s, false).await
}

async fn set_public(state: AppState, s: PipelineScope, public: bool) -> ApiResult<Response> {
    state
        .store
        .set_pipeline_public(s.pipeline.id, public)
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn expose(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    set_public(state, s, true).await
}

pub async fn hide(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    set_public(state, s, false).await
}

pub async fn archive(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    let by = s.req.display_user_id();
    state
        .store
        .archive_pipeline(s.pipeline.id, &by, now())
        .await?;
    archive_children(&state).await;
    Ok(StatusCode::OK.into_response())
}

/// Children set by a pipeline's jobs go with it (the GC would get there later).
pub async fn archive_children(state: &AppState) {
    if let Err(e) = crate::atc::gc::archive_orphaned_children(state.store.as_ref()).await {
        tracing::warn!(error = %e, "archiving child pipelines");
    }
}

pub async fn rename(
    State(state): State<AppState>,
    s: TeamScope,
    Path((_, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let rename: RenameRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    if rename.name.is_empty() {
        return Err(ApiError::config_errors(
            vec!["pipeline: identifier cannot be an empty string".into()],
            vec![],
        ));
    }
    if !state
        .store
        .rename_pipeline(s.team.id, &name, &rename.name)
        .await?
    {
        return Err(ApiError::not_found());
    }
    let warnings = crate::config::identifier_warning("pipeline", &rename.name)
        .into_iter()
        .collect();
    Ok(json(&SaveConfigResponse {
        errors: vec![],
        warnings,
    }))
}

pub async fn order(
    State(state): State<AppState>,
    s: TeamScope,
    body: Bytes,
) -> ApiResult<Response> {
    let names: Vec<String> = serde_json::from_slice::<Vec<Value>>(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?
        .into_iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| ApiError::bad_request("pipeline names must be strings"))
        })
        .collect::<ApiResult<_>>()?;
    state
        .store
        .order_pipelines(s.team.id, &names)
        .await
        .map_err(|e| match e {
            crate::db::StoreError::NotFound(what) => {
                let name = what.strip_prefix("pipeline ").unwrap_or(&what);
                ApiError::bad_request(format!("pipeline '{name}' not found"))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT P/ordering`: orders the instances of the group `P` (upstream's
/// `OrderPipelinesWithinGroup`). The body lists instance vars objects; `{}` or null is the
/// group's non-instanced pipeline. Vars of no instance are a 400 naming them, like
/// upstream, and change nothing.
pub async fn order_instances(
    State(state): State<AppState>,
    s: TeamScope,
    Path((_, group)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let team_row = s.team;
    let vars: Vec<Option<Value>> = serde_json::from_slice::<Vec<Value>>(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Object(m) if m.is_empty() => Ok(None),
            Value::Object(m) => Ok(Some(Value::Object(m))),
            _ => Err(ApiError::bad_request("instance vars must be objects")),
        })
        .collect::<ApiResult<_>>()?;
    match state
        .store
        .order_instances(team_row.id, &group, &vars)
        .await
    {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(crate::db::StoreError::NotFound(_)) => {
            // Name the first vars that match no instance, in upstream's wording.
            for v in &vars {
                let found = state
                    .store
                    .pipeline(&team_row.name, &group, v.as_ref())
                    .await?;
                if found.is_none() {
                    let shown = crate::config::refs::PipelineRef::from_api(&group, v.as_ref());
                    return Err(ApiError::bad_request(format!(
                        "pipeline '{}' not found",
                        shown.display()
                    )));
                }
            }
            Err(ApiError::bad_request(format!(
                "pipeline '{group}' not found"
            )))
        }
        Err(e) => Err(e.into()),
    }
}
