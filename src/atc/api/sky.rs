//! The token endpoint fly logs in through (`POST /sky/issuer/token`, the OAuth2 password
//! grant with client `fly:Zmx5`), logout, and upstream's legacy redirects.

use super::{cookie, AppState, ClientAddr};
use crate::atc::auth::{AuthError, FLY_CLIENT_ID, FLY_CLIENT_SECRET};
use crate::proto::api::TokenResponse;
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Client credentials from HTTP Basic (client_secret_basic) or the form (client_secret_post).
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
    {
        let decoded = STANDARD.decode(basic.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let unescape = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

pub async fn token(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some((client_id, secret)) = client_credentials(&headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        );
    };
    if client_id != FLY_CLIENT_ID || secret != FLY_CLIENT_SECRET {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("password") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required param: grant_type.",
            )
        }
    }
    let scopes: Vec<&str> = form
        .get("scope")
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    if !scopes.contains(&"openid") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required scope(s) [\"openid\"].",
        );
    }
    let known = [
        "openid",
        "profile",
        "email",
        "federated:id",
        "groups",
        "offline_access",
    ];
    let unknown: Vec<&str> = scopes
        .iter()
        .copied()
        .filter(|s| !known.contains(s))
        .collect();
    if !unknown.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("Unrecognized scope(s) {unknown:?}"),
        );
    }
    let username = form.get("username").map(String::as_str).unwrap_or_default();
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    match state
        .auth
        .password_grant(username, password, &client_id, from)
        .await
    {
        Ok(issued) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            axum::Json(TokenResponse {
                access_token: issued.token,
                token_type: "bearer".into(),
                expires_in: issued.expires_in,
                id_token: None,
            }),
        )
            .into_response(),
        Err(AuthError::InvalidCredentials) => oauth_error(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Invalid username or password",
        ),
        Err(AuthError::TooManyAttempts(wait)) => {
            let mut resp = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "access_denied",
                "Too many failed logins; try again later",
            );
            if let Ok(v) = super::login::retry_after(wait).parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(AuthError::InvalidClient) => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        ),
        Err(AuthError::Connector(e)) => {
            tracing::error!(error = %e, "password grant: the identity provider failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the identity provider could not check the password; see the web node's log",
            )
        }
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "issuing token");
            oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "")
        }
    }
}

/// Revokes the token in the `skymarshal_auth` cookie (fly sends it there on logout).
pub async fn logout(State(state): State<AppState>, parts: Parts) -> Response {
    if let Some(value) = cookie(&parts, "skymarshal_auth") {
        let value = percent_encoding::percent_decode_str(&value)
            .decode_utf8_lossy()
            .into_owned();
        if let Err(e) = state.auth.revoke(&value).await {
            tracing::error!(error = %e, "revoking token");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    (StatusCode::OK, state.cookies.clear()).into_response()
}

/// `GET /login[?fly_port=N]` → `/sky/login`, keeping the query (fly's browser flow).
pub async fn legacy_login(parts: Parts) -> Response {
    let query = parts.uri.query().unwrap_or_default();
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let target = match params.get("fly_port") {
        Some(port) => format!(
            "/sky/login?redirect_uri={}",
            url::form_urlencoded::byte_serialize(
                format!("/fly_success?fly_port={port}").as_bytes()
            )
            .collect::<String>()
        ),
        None if query.is_empty() => "/sky/login".to_string(),
        None => format!("/sky/login?{query}"),
    };
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

pub async fn legacy_logout() -> Response {
    Redirect::permanent("/sky/logout").into_response()
}
