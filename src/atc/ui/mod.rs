//! The web UI (shared/spec/web-ui.md): one HTML shell for every page route, filled per
//! request with the meta tags the scripts read, the built-in assets, and the few API
//! extensions the pages need (documented in `api`). Rendering rules that can be plain Rust
//! live here: `status` (dashboard), `layout` (pipeline graph), `ansi` (build logs).

pub mod ansi;
pub mod api;
pub mod assets;
pub mod layout;
pub mod status;

use crate::atc::api::{auth_header, cookie, AppState};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;

/// Upstream's defaults (`--x-frame-options`, `--content-security-policy`), tightened: the
/// pages need no inline script or style, and talk only to this server (and to fly's local
/// listener on 127.0.0.1 for the login hand-off).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self' http://127.0.0.1:*; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Response headers of every page and API response, from the web node's flags.
#[derive(Debug, Clone)]
pub struct WebHeaders {
    pub x_frame_options: Option<HeaderValue>,
    pub content_security_policy: Option<HeaderValue>,
}

impl WebHeaders {
    /// Empty values send no header; anything else must be a valid header value.
    pub fn new(x_frame_options: &str, csp: &str) -> anyhow::Result<WebHeaders> {
        let value = |flag: &str, v: &str| -> anyhow::Result<Option<HeaderValue>> {
            if v.is_empty() {
                return Ok(None);
            }
            HeaderValue::from_str(v)
                .map(Some)
                .map_err(|_| anyhow::anyhow!("invalid {flag}: {v:?}"))
        };
        Ok(WebHeaders {
            x_frame_options: value("--x-frame-options", x_frame_options)?,
            content_security_policy: value("--content-security-policy", csp)?,
        })
    }
}

impl Default for WebHeaders {
    fn default() -> Self {
        WebHeaders::new("deny", CONTENT_SECURITY_POLICY).expect("valid defaults")
    }
}

pub async fn security_headers(
    State(headers): State<std::sync::Arc<WebHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Some(v) = &headers.x_frame_options {
        h.insert("X-Frame-Options", v.clone());
    }
    if let Some(v) = &headers.content_security_policy {
        h.insert(header::CONTENT_SECURITY_POLICY, v.clone());
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/public/{*path}", get(public))
        .route("/robots.txt", get(robots))
        .route("/fly_success", get(fly_success))
}

async fn robots() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User-agent: *\nDisallow: /\n",
    )
        .into_response()
}

async fn public(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    if let Some(dir) = assets::dev_dir() {
        return match (assets::get(&path), assets::from_dir(&dir, &path)) {
            (Some(a), Some(body)) => {
                ([(header::CONTENT_TYPE, a.content_type)], body).into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    match assets::get(&path) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Text for HTML (attributes included): the shell's meta tags and the login form.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn query(parts: &Parts) -> HashMap<String, String> {
    url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The shell: `csrf-token` from the login redirect's query, `auth-token` only where the
/// page hands it on (fly's login), feature flags as `/api/v1/info` reports them.
pub fn shell(state: &AppState, csrf: &str, auth_token: &str) -> Response {
    let flags = serde_json::to_string(&state.info.feature_flags).unwrap_or_default();
    let body = assets::INDEX
        .replace("{{csrf_token}}", &escape_html(csrf))
        .replace("{{auth_token}}", &escape_html(auth_token))
        .replace("{{feature_flags}}", &escape_html(&flags))
        .replace("{{cluster_name}}", &escape_html(&state.info.cluster_name))
        .replace("{{app_css}}", &assets::url("app.css"))
        .replace("{{app_js}}", &assets::url("app.js"))
        .replace("{{favicon}}", &assets::url("favicon.svg"));
    ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

/// Every path that is not the API nor auth gets the shell (the pages route client-side
/// and render "not found" themselves); API-like paths keep a plain 404.
pub async fn fallback(State(state): State<AppState>, parts: Parts) -> Response {
    let path = parts.uri.path();
    let api_like = ["/api/", "/sky/", "/auth/", "/.well-known/", "/public/"]
        .iter()
        .any(|p| path.starts_with(p));
    if api_like || parts.method != axum::http::Method::GET {
        return StatusCode::NOT_FOUND.into_response();
    }
    let csrf = query(&parts).remove("csrf_token").unwrap_or_default();
    shell(&state, &csrf, "")
}

/// `/fly_success?fly_port=N`: the end of `fly login` in a browser. The page sends the
/// token to fly's local listener (or offers it to copy); a visitor who is not logged in
/// is sent through the login form first.
async fn fly_success(State(state): State<AppState>, parts: Parts) -> Response {
    let q = query(&parts);
    let token = match cookie(&parts, "skymarshal_auth") {
        Some(_) => match auth_header(&parts) {
            Some(h) if state.auth.verify(Some(&h)).await.ok().flatten().is_some() => h,
            _ => String::new(),
        },
        None => String::new(),
    };
    if token.is_empty() && q.get("noop").is_none_or(|v| v != "true") {
        let back = format!("/fly_success?{}", parts.uri.query().unwrap_or_default());
        let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        return (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/sky/login?redirect_uri={back}"))],
        )
            .into_response();
    }
    let csrf = q.get("csrf_token").cloned().unwrap_or_default();
    shell(&state, &csrf, &token)
}
