//! Teams: list, get, set (create / replace auth), rename, destroy.

use super::error::{ApiError, ApiResult};
use super::scope::{Authorized, TeamScope, TeamUpsert};
use super::{json, AppState};
use crate::atc::auth::Requester;
use crate::db::TeamRow;
use crate::proto::api::{RenameRequest, SaveConfigResponse, Team, TeamAuth};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json as j;

fn team_json(t: &TeamRow) -> Team {
    Team {
        id: t.id,
        name: t.name.clone(),
        auth: Some(t.auth.clone()),
    }
}

/// Upstream's validation of a team's auth config, with its messages.
pub fn validate_auth(auth: &TeamAuth) -> Result<(), String> {
    if auth.is_empty() {
        return Err("auth config for the team must not be empty".into());
    }
    if auth
        .values()
        .any(|r| r.users.is_empty() && r.groups.is_empty())
    {
        return Err("auth config for the team does not have users and groups configured".into());
    }
    Ok(())
}

pub async fn list(State(_): State<AppState>, req: Requester) -> Response {
    let teams: Vec<Team> = req
        .teams()
        .iter()
        .filter(|t| req.is_admin() || !req.roles_on(t).is_empty())
        .map(team_json)
        .collect();
    json(&teams)
}

pub async fn get(s: TeamScope) -> ApiResult<Response> {
    Ok(json(&team_json(&s.team)))
}

/// `PUT /api/v1/teams/:team`: owners replace their team's auth; only admins create teams.
pub async fn set(
    State(state): State<AppState>,
    TeamUpsert { existing, .. }: TeamUpsert,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team: Team = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed team: {e}")))?;
    let auth = team.auth.unwrap_or_default();
    validate_auth(&auth).map_err(ApiError::bad_request)?;
    let mut warnings = Vec::new();
    if let Some(w) = crate::config::identifier_warning("team", &name) {
        warnings.push(w);
    }
    let admin = existing.as_ref().is_some_and(|t| t.admin);
    let (row, created) = state.store.upsert_team(&name, &auth, admin).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut body = j!({"team": team_json(&row)});
    if !warnings.is_empty() {
        body["warnings"] = serde_json::to_value(&warnings).unwrap_or_default();
    }
    Ok((status, json(&body)).into_response())
}

pub async fn rename(
    State(state): State<AppState>,
    _: TeamScope,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let rename: RenameRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    if rename.name.is_empty() {
        return Err(ApiError::config_errors(
            vec!["team: identifier cannot be an empty string".into()],
            vec![],
        ));
    }
    if !state.store.rename_team(&name, &rename.name).await? {
        return Err(ApiError::not_found());
    }
    let warnings = crate::config::identifier_warning("team", &rename.name)
        .into_iter()
        .collect();
    Ok(json(&SaveConfigResponse {
        errors: vec![],
        warnings,
    }))
}

pub async fn destroy(
    State(state): State<AppState>,
    Authorized(req): Authorized,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let team = state
        .store
        .team(&name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if team.admin && req.teams().iter().filter(|t| t.admin).count() <= 1 {
        return Err(ApiError::forbidden());
    }
    state.store.destroy_team(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
