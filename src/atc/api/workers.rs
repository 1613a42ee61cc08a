//! Worker routes (atc-api.md §3.8): listing for users, registration and heartbeats for the
//! TSA (system tokens), land/retire/prune for the worker's team, delete for the system.

use super::access;
use super::error::{ApiError, ApiResult};
use super::{json, AppState};
use crate::atc::auth::{now, parse_go_duration, Requester, Role};
use crate::db::{StoreError, WorkerRow, PRUNE_RUNNING_WORKER, WORKER_TEAM_CONFLICT};
use crate::proto::worker::Worker;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct TtlQuery {
    ttl: Option<String>,
}

impl TtlQuery {
    /// None = no TTL (the worker never expires).
    fn ttl(&self) -> ApiResult<Option<Duration>> {
        match self.ttl.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => parse_go_duration(text)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request("malformed ttl")),
        }
    }
}

/// `anyteam`: global workers plus those of teams the requester belongs to (admins: all).
pub async fn list(State(state): State<AppState>, req: Requester) -> ApiResult<Response> {
    access::authenticated(&req)?;
    let member_of: Vec<i64> = req
        .teams()
        .iter()
        .filter(|t| !req.roles_on(t).is_empty())
        .map(|t| t.id)
        .collect();
    if !req.is_admin() && !req.is_system() && member_of.is_empty() {
        return Err(ApiError::forbidden());
    }
    let workers: Vec<Worker> = state
        .store
        .workers()
        .await?
        .into_iter()
        .filter(|w| {
            req.is_admin() || req.is_system() || w.team_id.is_none_or(|t| member_of.contains(&t))
        })
        .map(|w| w.worker)
        .collect();
    Ok(json(&workers))
}

fn system(req: &Requester) -> ApiResult<()> {
    access::authenticated(req)?;
    if req.is_system() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))
}

/// `POST /api/v1/workers?ttl=`: system only.
pub async fn register(
    State(state): State<AppState>,
    req: Requester,
    Query(query): Query<TtlQuery>,
    bytes: Bytes,
) -> ApiResult<Response> {
    system(&req)?;
    let ttl = query.ttl()?;
    let mut worker: Worker = body(&bytes)?;
    worker
        .prepare_registration()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    match state.store.register_worker(&worker, ttl, now()).await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(StoreError::NotFound(what)) => Err(ApiError::bad_request(format!("{what} not found"))),
        Err(StoreError::Conflict(m)) if m == WORKER_TEAM_CONFLICT => {
            Err(ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR, m))
        }
        Err(e) => Err(e.into()),
    }
}

/// `PUT /api/v1/workers/:name/heartbeat?ttl=`: system only; 404 once the worker is gone.
pub async fn heartbeat(
    State(state): State<AppState>,
    req: Requester,
    Path(name): Path<String>,
    Query(query): Query<TtlQuery>,
    bytes: Bytes,
) -> ApiResult<Response> {
    system(&req)?;
    let ttl = query.ttl()?;
    let beat: Worker = body(&bytes)?;
    let row = state
        .store
        .heartbeat_worker(
            &name,
            beat.active_containers,
            beat.active_volumes,
            ttl,
            now(),
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(json(&row.worker))
}

#[derive(Debug, Default, Deserialize)]
pub struct TeamBody {
    #[serde(default)]
    team: String,
}

/// `worker` access: the worker exists (404), and the requester is the system, an admin or
/// a member of the worker's team (global workers: system and admins only).
async fn worker_access(state: &AppState, req: &Requester, name: &str) -> ApiResult<WorkerRow> {
    access::authenticated(req)?;
    let row = state
        .store
        .worker(name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if req.is_system() || req.is_admin() {
        return Ok(row);
    }
    let member = row.team_id.is_some_and(|id| {
        req.teams()
            .iter()
            .any(|t| t.id == id && req.has_role(t, Role::Member))
    });
    if member {
        Ok(row)
    } else {
        Err(ApiError::forbidden())
    }
}

/// The body's `team` must name the worker's team (empty for a global worker).
fn same_team(row: &WorkerRow, claimed: &str) -> ApiResult<()> {
    if row.worker.team == claimed {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "worker {} does not belong to team '{claimed}'",
            row.name()
        )))
    }
}

pub async fn land(
    State(state): State<AppState>,
    req: Requester,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let row = worker_access(&state, &req, &name).await?;
    same_team(&row, &body::<TeamBody>(&bytes)?.team)?;
    state
        .store
        .land_worker(&name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(StatusCode::OK.into_response())
}

pub async fn retire(
    State(state): State<AppState>,
    req: Requester,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let row = worker_access(&state, &req, &name).await?;
    same_team(&row, &body::<TeamBody>(&bytes)?.team)?;
    state
        .store
        .retire_worker(&name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(StatusCode::OK.into_response())
}

pub async fn prune(
    State(state): State<AppState>,
    req: Requester,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    worker_access(&state, &req, &name).await?;
    match state.store.prune_worker(&name).await {
        Ok(true) => Ok(StatusCode::OK.into_response()),
        Ok(false) => Err(ApiError::not_found()),
        Err(StoreError::Invalid(m)) if m == PRUNE_RUNNING_WORKER => Ok((
            StatusCode::BAD_REQUEST,
            json(&serde_json::json!({ "stderr": m })),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /api/v1/workers/:name`: system only; the body's team must match.
pub async fn delete(
    State(state): State<AppState>,
    req: Requester,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    system(&req)?;
    let Some(row) = state.store.worker(&name).await? else {
        return Ok(StatusCode::OK.into_response());
    };
    same_team(&row, &body::<TeamBody>(&bytes)?.team)?;
    state.store.delete_worker(&name).await?;
    Ok(StatusCode::OK.into_response())
}
