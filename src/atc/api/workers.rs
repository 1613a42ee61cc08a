//! Worker routes (atc-api.md §3.8): listing for users, registration and heartbeats for the
//! TSA (system tokens), land/retire/prune for the worker's team, delete for the system.

use super::error::{ApiError, ApiResult};
use super::scope::{Authorized, WorkerScope};
use super::{json, AppState};
use crate::clock::now;
use crate::config::parse_duration;
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
            Some(text) => parse_duration(text)
                .ok()
                .map(Some)
                .ok_or_else(|| ApiError::bad_request("malformed ttl")),
        }
    }
}

/// `anyteam`: global workers plus those of teams the requester belongs to (admins: all).
pub async fn list(
    State(state): State<AppState>,
    Authorized(req): Authorized,
) -> ApiResult<Response> {
    let member_of = req.member_team_ids();
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
    _: Authorized,
    Query(query): Query<TtlQuery>,
    bytes: Bytes,
) -> ApiResult<Response> {
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
    _: Authorized,
    Path(name): Path<String>,
    Query(query): Query<TtlQuery>,
    bytes: Bytes,
) -> ApiResult<Response> {
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
    WorkerScope { worker: row, .. }: WorkerScope,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
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
    WorkerScope { worker: row, .. }: WorkerScope,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
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
    _: WorkerScope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
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
    _: Authorized,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let Some(row) = state.store.worker(&name).await? else {
        return Ok(StatusCode::OK.into_response());
    };
    same_team(&row, &body::<TeamBody>(&bytes)?.team)?;
    state.store.delete_worker(&name).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    //! The system-only routes, driven through the router with a system token (as the TSA
    //! of another deployment would call them); user access is covered over HTTP in
    //! tests/workers_api.rs.

    use super::super::{router, AppState};
    use crate::atc::auth::{Auth, TSA_CLIENT_ID};
    use crate::clock::now;
    use crate::db::{self, TeamAuth};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use tower::ServiceExt;

    const SYSTEM: &str = "system-token";

    async fn app() -> (axum::Router, Arc<dyn db::Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = db::open_embedded(&dir.path().join("concourse.db"))
            .await
            .expect("store");
        store
            .upsert_team("main", &TeamAuth::new(), true)
            .await
            .expect("main team");
        store
            .save_access_token(
                SYSTEM,
                &json!({"sub": "tsa", "aud": TSA_CLIENT_ID, "exp": now() + 3600}),
                now() + 3600,
            )
            .await
            .expect("token");
        let state = AppState {
            store: store.clone(),
            auth: Arc::new(Auth::new(
                store.clone(),
                vec![],
                std::time::Duration::from_secs(60),
            )),
            info: Default::default(),
            external_url: "http://localhost".into(),
            cli_artifacts_dir: None,
            builds: Default::default(),
            engine: None,
            web_headers: Default::default(),
            streams: Default::default(),
            cookies: Default::default(),
            intercept_idle_timeout: None,
            shutdown: Default::default(),
            rbac: Default::default(),
            job_shapes: Default::default(),
            listings: Default::default(),
        };
        (router(state), store, dir)
    }

    async fn send(
        app: &axum::Router,
        method: Method,
        uri: &str,
        body: Value,
    ) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Authorization", format!("Bearer {SYSTEM}"))
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn registration_is_validated_with_upstreams_messages_and_stores_nothing_on_error() {
        let (app, store, _dir) = app().await;
        let cases = [
            (
                "/api/v1/workers",
                json!({"name": "w"}),
                "missing garden address",
            ),
            (
                "/api/v1/workers",
                json!({"addr": "1.2.3.4:7777", "version": "3.0-dev"}),
                "invalid worker version, only numeric characters are allowed",
            ),
            (
                "/api/v1/workers?ttl=soon",
                json!({"addr": "1.2.3.4:7777"}),
                "malformed ttl",
            ),
            (
                "/api/v1/workers",
                json!({"addr": "1.2.3.4:7777", "team": "nope"}),
                "team nope not found",
            ),
        ];
        for (uri, body, message) in cases {
            let (status, text) = send(&app, Method::POST, uri, body).await;
            assert_eq!((status, text.as_str()), (StatusCode::BAD_REQUEST, message));
        }
        assert!(store.workers().await.expect("workers").is_empty());

        let (status, _) = send(
            &app,
            Method::POST,
            "/api/v1/workers?ttl=1m0s",
            json!({"addr": "1.2.3.4:7777", "version": "3.0"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let row = store
            .worker("1.2.3.4:7777")
            .await
            .expect("read")
            .expect("named after addr");
        assert!(
            (59..=61).contains(&(row.expires_at - now())),
            "ttl in Go syntax"
        );

        let (status, text) = send(
            &app,
            Method::POST,
            "/api/v1/workers",
            json!({"addr": "1.2.3.4:7777", "team": "main"}),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            text,
            "worker already exists and is either global or owned by another team"
        );
    }

    #[tokio::test]
    async fn heartbeats_answer_the_worker_or_404_and_delete_checks_the_team() {
        let (app, _store, _dir) = app().await;
        let (status, _) = send(
            &app,
            Method::PUT,
            "/api/v1/workers/w/heartbeat?ttl=30s",
            json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        send(
            &app,
            Method::POST,
            "/api/v1/workers?ttl=30s",
            json!({"addr": "1.2.3.4:7777", "name": "w"}),
        )
        .await;
        let (status, text) = send(
            &app,
            Method::PUT,
            "/api/v1/workers/w/heartbeat?ttl=30s",
            json!({"active_containers": 4, "active_volumes": 5}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let worker: Value = serde_json::from_str(&text).expect("worker JSON");
        assert_eq!(worker["state"], "running");
        assert_eq!(worker["active_containers"], 4);
        assert_eq!(worker["active_volumes"], 5);

        let (status, _) = send(
            &app,
            Method::DELETE,
            "/api/v1/workers/w",
            json!({"team": "main"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = send(
            &app,
            Method::DELETE,
            "/api/v1/workers/w",
            json!({"team": ""}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = send(&app, Method::PUT, "/api/v1/workers/w/heartbeat", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
