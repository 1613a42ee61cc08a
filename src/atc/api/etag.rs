//! Conditional GETs of the API: a JSON answer carries a weak `ETag` (a hash of its body),
//! and a request whose `If-None-Match` names it gets `304 Not Modified` without the body.
//! Dashboards poll `/api/v1/jobs` and friends every few seconds; most polls change nothing.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest body hashed; a bigger one is passed on without an `ETag`.
const MAX_HASHED: usize = 64 << 20;

pub async fn conditional(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let asked = req.headers().get(header::IF_NONE_MATCH).cloned();
    let resp = next.run(req).await;
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if resp.status() != StatusCode::OK || !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // A cached listing (see `listings`) carries its tag already: no body to hash.
    if let Some(etag) = parts.headers.get(header::ETAG) {
        let hit = matches(asked.as_ref(), etag.to_str().unwrap_or(""));
        return if hit {
            not_modified(parts)
        } else {
            Response::from_parts(parts, body)
        };
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_HASHED).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = tag_of(&bytes);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, v);
    }
    if matches(asked.as_ref(), &etag) {
        return not_modified(parts);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A body's weak tag: the first half of its SHA-256.
pub fn tag_of(bytes: &[u8]) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
    let tag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{tag}\"")
}

fn matches(asked: Option<&HeaderValue>, etag: &str) -> bool {
    asked
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| same_tag(t.trim(), etag)))
}

fn not_modified(mut parts: axum::http::response::Parts) -> Response {
    parts.status = StatusCode::NOT_MODIFIED;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::empty())
}

/// Weak comparison (RFC 9110 §8.8.3.2): the `W/` prefix is ignored; `*` matches any.
fn same_tag(asked: &str, ours: &str) -> bool {
    asked == "*" || asked.trim_start_matches("W/") == ours.trim_start_matches("W/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_compare_weakly() {
        assert!(same_tag("W/\"ab\"", "W/\"ab\""));
        assert!(same_tag("\"ab\"", "W/\"ab\""));
        assert!(same_tag("*", "W/\"ab\""));
        assert!(!same_tag("W/\"ac\"", "W/\"ab\""));
    }
}
