//! The browser session's cookies (auth.md §7.2): `skymarshal_auth` carries the token,
//! `skymarshal_csrf` the value writes must echo. Set at login, cleared at logout and on
//! any 401, so a browser holding a dead token stops sending it.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{AppendHeaders, Response};
use std::time::Duration;

pub const AUTH_COOKIE: &str = "skymarshal_auth";
pub const CSRF_COOKIE: &str = "skymarshal_csrf";
/// An OIDC login in flight (ours; Dex keeps this server-side).
pub const OIDC_COOKIE: &str = "concourse_oidc_login";

type SetCookies = AppendHeaders<[(HeaderName, String); 2]>;

/// How the session cookies are written; `secure` is `--cookie-secure` (browsers then send
/// them over HTTPS only).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCookies {
    pub secure: bool,
}

impl SessionCookies {
    fn secure_attr(&self) -> &'static str {
        if self.secure {
            "; Secure"
        } else {
            ""
        }
    }

    /// Both cookies for a fresh login, both `HttpOnly` (the UI learns the CSRF value from
    /// the redirect's `csrf_token` query, auth.md §7.2); `AppendHeaders` because an array of headers would
    /// replace the first `Set-Cookie` with the second.
    /// The cookie that carries an OIDC login's PKCE verifier and nonce to the callback
    /// (and only there); `value` None clears it.
    pub fn oidc_login(&self, value: Option<&str>) -> String {
        let secure = self.secure_attr();
        match value {
            Some(v) => format!(
                "{OIDC_COOKIE}={v}; Path=/sky/issuer/callback; Max-Age=600; HttpOnly; SameSite=Lax{secure}"
            ),
            None => format!("{OIDC_COOKIE}=; Path=/sky/issuer/callback; Max-Age=0; HttpOnly{secure}"),
        }
    }

    pub fn set(&self, token: &str, csrf: &str, max_age: Duration) -> SetCookies {
        let (age, secure) = (max_age.as_secs(), self.secure_attr());
        AppendHeaders([
            (
                header::SET_COOKIE,
                format!("{AUTH_COOKIE}=\"bearer {token}\"; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}"),
            ),
            (
                header::SET_COOKIE,
                format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}"),
            ),
        ])
    }

    fn clearing(&self) -> [String; 2] {
        let secure = self.secure_attr();
        [
            format!("{AUTH_COOKIE}=; Path=/; Max-Age=0; HttpOnly{secure}"),
            format!("{CSRF_COOKIE}=; Path=/; Max-Age=0{secure}"),
        ]
    }

    /// Both cookies expired at once.
    pub fn clear(&self) -> SetCookies {
        let [auth, csrf] = self.clearing();
        AppendHeaders([(header::SET_COOKIE, auth), (header::SET_COOKIE, csrf)])
    }
}

/// A cookie's value (surrounding quotes removed) from a request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// Middleware: a 401 to a request that carried the auth cookie also clears both cookies.
pub async fn clear_on_unauthorized(
    State(cookies): State<SessionCookies>,
    req: Request,
    next: Next,
) -> Response {
    let had_cookie = cookie(req.headers(), AUTH_COOKIE).is_some();
    let mut resp = next.run(req).await;
    if had_cookie && resp.status() == StatusCode::UNAUTHORIZED {
        for value in cookies.clearing() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    resp
}
