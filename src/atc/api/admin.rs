//! Admin and worker-facing odds and ends (atc-api.md §3.1, §3.9): the wall message, the
//! log level, credential managers, recently active users, and the `destroying` lists and
//! reports of workers' containers and volumes.

use super::error::{ApiError, ApiResult};
use super::scope::{Authorized, WorkerScope};
use super::{json, AppState};
use crate::clock::now;
use crate::db::WallRow;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json as j;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

// --- wall ---------------------------------------------------------------------------------

/// `atc.Wall`: `TTL` is a Go duration (nanoseconds); both omitted when empty.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Wall {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(rename = "TTL", default, skip_serializing_if = "is_zero")]
    pub ttl: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

const NANOS: i64 = 1_000_000_000;

/// `GET /api/v1/wall`: the message with the time it has left; `{}` when none or expired.
pub async fn wall(State(state): State<AppState>) -> ApiResult<Response> {
    let wall = match state.store.wall().await? {
        Some(WallRow {
            message,
            expires_at: None,
        }) => Wall { message, ttl: 0 },
        Some(WallRow {
            message,
            expires_at: Some(at),
        }) if at > now() => Wall {
            message,
            ttl: (at - now()).saturating_mul(NANOS),
        },
        _ => Wall::default(),
    };
    Ok(json(&wall))
}

/// `PUT /api/v1/wall` (admin): `{"message": ..., "TTL": ns}`; a TTL of 0 never expires.
pub async fn set_wall(
    State(state): State<AppState>,
    _: Authorized,
    body: Bytes,
) -> ApiResult<Response> {
    let wall: Wall = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed wall: {e}")))?;
    if wall.message.is_empty() {
        return Err(ApiError::bad_request("message cannot be empty"));
    }
    // Rounded up to whole seconds, so a short TTL still shows.
    let expires_at = (wall.ttl > 0).then(|| now() + (wall.ttl + NANOS - 1) / NANOS);
    state
        .store
        .set_wall(&WallRow {
            message: wall.message,
            expires_at,
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /api/v1/wall` (admin).
pub async fn clear_wall(State(state): State<AppState>, _: Authorized) -> ApiResult<Response> {
    state.store.clear_wall().await?;
    Ok(StatusCode::OK.into_response())
}

// --- log level ----------------------------------------------------------------------------

type Apply = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The process's log level and how to change it (installed by the tracing setup; absent
/// in tests that build the router alone, where only the recorded level changes).
struct LogLevel {
    level: String,
    apply: Option<Apply>,
}

fn log_level() -> &'static Mutex<LogLevel> {
    static LEVEL: OnceLock<Mutex<LogLevel>> = OnceLock::new();
    LEVEL.get_or_init(|| {
        Mutex::new(LogLevel {
            level: "info".into(),
            apply: None,
        })
    })
}

/// Called once by the tracing setup with the starting level and a function that applies
/// a new one (`debug|info|error|fatal`).
pub fn install_log_level(level: &str, apply: impl Fn(&str) -> bool + Send + Sync + 'static) {
    let mut l = log_level().lock().unwrap_or_else(|e| e.into_inner());
    l.level = level.to_string();
    l.apply = Some(Box::new(apply));
}

const LEVELS: [&str; 4] = ["debug", "info", "error", "fatal"];

/// `GET /api/v1/log-level` (admin): plain text.
pub async fn get_log_level(_: Authorized) -> ApiResult<Response> {
    let level = log_level()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .level
        .clone();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], level).into_response())
}

/// `PUT /api/v1/log-level` (admin): body `debug|info|error|fatal`, else 400.
pub async fn set_log_level(_: Authorized, body: Bytes) -> ApiResult<Response> {
    let wanted = String::from_utf8_lossy(&body).trim().to_string();
    if !LEVELS.contains(&wanted.as_str()) {
        return Err(ApiError::bad_request(format!(
            "unknown log level '{wanted}'"
        )));
    }
    let mut l = log_level().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(apply) = &l.apply {
        if !apply(&wanted) {
            return Err(ApiError::Internal("applying the log level".into()));
        }
    }
    l.level = wanted;
    Ok(StatusCode::OK.into_response())
}

// --- credentials, users ---------------------------------------------------------------------

/// `GET /api/v1/info/creds` (admin): the cluster credential managers and their
/// non-secret config. None are configured here (pipelines' `var_sources` are per
/// pipeline), so the object is empty, as upstream answers then.
pub async fn info_creds(State(st): State<AppState>, _: Authorized) -> ApiResult<Response> {
    let cluster = st.engine.as_ref().and_then(|e| e.rt.creds.cluster.clone());
    Ok(json(&match cluster {
        Some(vault) => j!({ "vault": vault.info().await }),
        None => j!({}),
    }))
}

/// `atc.User`.
#[derive(Debug, Serialize)]
struct User {
    #[serde(skip_serializing_if = "is_zero")]
    id: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    connector: String,
    #[serde(skip_serializing_if = "is_zero")]
    last_login: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    sub: String,
}

/// Unix seconds of midnight UTC of a `YYYY-MM-DD` date.
fn parse_since(s: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// `GET /api/v1/users[?since=YYYY-MM-DD]` (admin): users who logged in since then
/// (default: the last two months), most recent first.
pub async fn users(
    State(state): State<AppState>,
    _: Authorized,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let since = match q.get("since").filter(|s| !s.is_empty()) {
        None => now() - 61 * 24 * 3600,
        Some(s) => match parse_since(s) {
            Some(t) => t,
            None => {
                return Ok((
                    StatusCode::BAD_REQUEST,
                    json(&j!({"error": "wrong date format (yyyy-mm-dd)"})),
                )
                    .into_response())
            }
        },
    };
    let users: Vec<User> = state
        .store
        .users_since(since)
        .await?
        .into_iter()
        .map(|u| User {
            id: u.id,
            username: u.username,
            connector: u.connector,
            last_login: u.last_login,
            sub: u.sub,
        })
        .collect();
    Ok(json(&users))
}

// --- workers' containers and volumes ----------------------------------------------------------

/// `GET /api/v1/{containers,volumes}/destroying?worker_name=w`: handles the worker should
/// destroy. This ATC keeps no container or volume table: it destroys what it no longer
/// needs through the worker's Garden/Baggageclaim API itself, so nothing is ever left
/// waiting for the worker and the list is empty.
pub async fn destroying(_: WorkerScope) -> ApiResult<Response> {
    Ok(json(&Vec::<String>::new()))
}

/// `PUT /api/v1/{containers,volumes}/report?worker_name=w` with `["handle", ...]`: what
/// the worker has. Without tables there is nothing to reconcile; the body is still checked.
pub async fn report(_: WorkerScope, body: Bytes) -> ApiResult<Response> {
    serde_json::from_slice::<Vec<String>>(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed handles: {e}")))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_date() {
        assert_eq!(parse_since("1970-01-02"), Some(86400));
        assert_eq!(parse_since("2020-13-01"), None);
        assert_eq!(parse_since("yesterday"), None);
    }

    #[test]
    fn wall_json_is_upstreams() {
        let w = Wall {
            message: "hi".into(),
            ttl: 5 * NANOS,
        };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            j!({"message": "hi", "TTL": 5_000_000_000i64})
        );
        assert_eq!(serde_json::to_value(Wall::default()).unwrap(), j!({}));
    }
}
