//! Browser login through the same URLs and redirects as upstream's Dex (spec auth.md §7.1),
//! so clients that script the browser flow (concoursepy and friends) log in unchanged:
//! `/sky/login` → `/sky/issuer/auth` → `/sky/issuer/auth/local` → the form at
//! `/sky/issuer/auth/local/login` → `/sky/callback` → the page asked for, with the cookies.
//!
//! One connector (local users), so the chooser and the approval screen are skipped as
//! upstream skips them. The state carries the page to return to and a random value the
//! authorization code is bound to; a tampered state can only name another same-origin
//! page, since the callback sanitises it again.

use super::login::{logged_in, login_form_at, query, retry_after, safe_redirect};
use super::{AppState, ClientAddr};
use crate::atc::auth::{random_hex, AuthError, WEB_CLIENT_ID};
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;

/// How long a login may take between `/sky/login` and the callback.
const STATE_TTL: i64 = 3600;

fn redirect(status: StatusCode, to: String) -> Response {
    (status, [(header::LOCATION, to)]).into_response()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

fn new_state(redirect_uri: &str) -> String {
    let state = json!({
        "redirect_uri": redirect_uri,
        "entropy": random_hex(),
        "ts": crate::clock::now(),
    });
    URL_SAFE_NO_PAD.encode(state.to_string())
}

/// The page to return to, if `state` is one of ours and not expired.
fn read_state(state: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(state).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let ts = v.get("ts")?.as_i64()?;
    if crate::clock::now() - ts > STATE_TTL {
        return None;
    }
    let uri = v.get("redirect_uri")?.as_str()?.to_string();
    Some(safe_redirect(Some(&uri)))
}

/// `GET /sky/login?redirect_uri=R`: already logged in → R; else into the issuer's flow.
pub async fn start(State(state): State<AppState>, parts: Parts) -> Response {
    let target = safe_redirect(query(&parts).get("redirect_uri"));
    if logged_in(&state, &parts).await.is_some() {
        return redirect(StatusCode::FOUND, target);
    }
    let callback = format!("{}/sky/callback", state.external_url.trim_end_matches('/'));
    let q = encode(&[
        ("access_type", "offline"),
        ("client_id", WEB_CLIENT_ID),
        ("redirect_uri", &callback),
        ("response_type", "code"),
        ("scope", "openid profile email federated:id groups"),
        ("state", &new_state(&target)),
    ]);
    redirect(
        StatusCode::TEMPORARY_REDIRECT,
        format!("/sky/issuer/auth?{q}"),
    )
}

/// `GET /sky/issuer/auth`: one connector, so straight to it.
pub async fn issuer_auth(parts: Parts) -> Response {
    let q = parts.uri.query().unwrap_or_default();
    redirect(StatusCode::FOUND, format!("/sky/issuer/auth/local?{q}"))
}

/// `GET /sky/issuer/auth/local`: the connector's login form for this request.
pub async fn connector(parts: Parts) -> Response {
    let q = query(&parts);
    match q.get("state").filter(|s| read_state(s).is_some()) {
        Some(s) => redirect(StatusCode::FOUND, form_url(s)),
        None => bad_state(),
    }
}

/// The form's own URL. State only (upstream adds an empty `back=`): scripts that take the
/// action attribute verbatim, HTML escaping and all, still post to a URL that works.
fn form_url(state: &str) -> String {
    format!(
        "/sky/issuer/auth/local/login?{}",
        encode(&[("state", state)])
    )
}

fn bad_state() -> Response {
    (StatusCode::BAD_REQUEST, "invalid state token").into_response()
}

/// `GET /sky/issuer/auth/local/login?state=S`: the form.
pub async fn form(parts: Parts) -> Response {
    let q = query(&parts);
    match q.get("state").filter(|s| read_state(s).is_some()) {
        Some(s) => Html(login_form_at(&form_url(s), None, None)).into_response(),
        None => bad_state(),
    }
}

/// `POST /sky/issuer/auth/local/login?state=S` (`login`, `password`): on success 303 to
/// the callback with a one-time code; wrong credentials re-render the form (200, as Dex).
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    parts: Parts,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let q = query(&parts);
    let Some(login_state) = q.get("state").filter(|s| read_state(s).is_some()) else {
        return bad_state();
    };
    let action = form_url(login_state);
    let user = form.get("login").map(String::as_str).unwrap_or_default();
    let pass = form.get("password").map(String::as_str).unwrap_or_default();
    match state
        .auth
        .password_grant(user, pass, WEB_CLIENT_ID, from)
        .await
    {
        Ok(issued) => match state.auth.code_for(&issued.token, login_state).await {
            Ok(code) => redirect(
                StatusCode::SEE_OTHER,
                format!(
                    "{}/sky/callback?{}",
                    state.external_url.trim_end_matches('/'),
                    encode(&[("code", &code), ("state", login_state)])
                ),
            ),
            Err(e) => {
                tracing::error!(error = %e, "browser login: saving the code");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        Err(AuthError::TooManyAttempts(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after(wait))],
            Html(login_form_at(
                &action,
                None,
                Some("too many failed logins: wait a minute and try again"),
            )),
        )
            .into_response(),
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "browser login");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        // Dex's wording, which scripted clients look for.
        Err(_) => Html(login_form_at(
            &action,
            None,
            Some("invalid username and password"),
        ))
        .into_response(),
    }
}

/// `GET /sky/callback?code=C&state=S`: the cookies, then the page the login started from
/// with the CSRF token in its query.
pub async fn callback(State(state): State<AppState>, parts: Parts) -> Response {
    let q = query(&parts);
    if let Some(e) = q.get("error") {
        return (StatusCode::BAD_REQUEST, e.clone()).into_response();
    }
    let (Some(code), Some(login_state)) = (q.get("code"), q.get("state")) else {
        return bad_state();
    };
    let Some(target) = read_state(login_state) else {
        return bad_state();
    };
    let Some(token) = state.auth.redeem_code(code, login_state).await else {
        return (StatusCode::UNAUTHORIZED, "invalid or expired code").into_response();
    };
    let csrf = random_hex();
    let sep = if target.contains('?') { '&' } else { '?' };
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, format!("{target}{sep}csrf_token={csrf}"))],
        state.cookies.set(&token, &csrf, state.auth.duration()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_carry_a_same_origin_page_and_expire() {
        let s = new_state("/teams/main/pipelines/p");
        assert_eq!(read_state(&s).as_deref(), Some("/teams/main/pipelines/p"));
        assert!(
            !form_url(&s).contains('&'),
            "one parameter: {}",
            form_url(&s)
        );
        let old = URL_SAFE_NO_PAD.encode(
            json!({"redirect_uri": "/", "entropy": "x", "ts": crate::clock::now() - STATE_TTL - 1})
                .to_string(),
        );
        assert_eq!(read_state(&old), None);
        let forged = URL_SAFE_NO_PAD.encode(
            json!({"redirect_uri": "//evil.example", "ts": crate::clock::now()}).to_string(),
        );
        assert_eq!(read_state(&forged).as_deref(), Some("/"));
        assert_eq!(read_state("not-a-state"), None);
    }
}
