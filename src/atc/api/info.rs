//! Info, user and the fly binary download (the wall is in `admin.rs`).

use super::error::{ApiError, ApiResult};
use super::scope::Authorized;
use super::{json, AppState};
use crate::proto::api::UserInfo;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

pub async fn info(State(state): State<AppState>) -> Response {
    json(&state.info)
}

pub async fn user(Authorized(req): Authorized) -> ApiResult<Response> {
    Ok(json(&UserInfo {
        sub: req.sub(),
        name: req.name(),
        user_id: req.user_id(),
        user_name: req.user_name(),
        email: req.email(),
        is_admin: req.is_admin(),
        is_system: req.is_system(),
        teams: req.team_roles(),
        connector: req.connector(),
        display_user_id: req.display_user_id(),
    }))
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /api/v1/cli?arch=&platform=`: this binary is fly, so it serves itself for its own
/// platform; other platforms come from `--cli-artifacts-dir` (`fly-<platform>-<arch>`).
pub async fn cli(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let platform = q.get("platform").cloned().unwrap_or_default();
    let arch = q.get("arch").cloned().unwrap_or_default();
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if !valid(&platform) || !valid(&arch) {
        return Err(ApiError::bad_request("invalid platform or arch"));
    }
    let path = if platform == std::env::consts::OS && arch == go_arch() {
        std::env::current_exe()
            .map_err(|e| ApiError::Internal(format!("locating own executable: {e}")))?
    } else {
        match &state.cli_artifacts_dir {
            Some(dir) => dir.join(format!("fly-{platform}-{arch}")),
            None => return Err(ApiError::not_found()),
        }
    };
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found())?;
    let filename = if platform == "windows" {
        "fly.exe"
    } else {
        "fly"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename={filename}"),
            ),
        ],
        bytes,
    )
        .into_response())
}
