//! Browser login through the same URLs and redirects as upstream's Dex (spec auth.md §7.1),
//! so clients that script the browser flow (concoursepy and friends) log in unchanged:
//! `/sky/login` → `/sky/issuer/auth` → `/sky/issuer/auth/local` → the form at
//! `/sky/issuer/auth/local/login` → `/sky/callback` → the page asked for, with the cookies.
//!
//! With one connector (local users, LDAP or OIDC) the chooser is skipped as upstream skips
//! it; with several, `/sky/issuer/auth` lists them. Password connectors have their form at
//! `/sky/issuer/auth/{connector}/login`; OIDC sends the browser to the provider, which
//! returns it to `/sky/issuer/callback`. There is no approval screen. The state carries the page to return to and a random value the
//! authorization code is bound to; a tampered state can only name another same-origin
//! page, since the callback sanitises it again.

use super::login::{logged_in, login_form_at, page, query, retry_after, safe_redirect, FormLabels};
use super::{AppState, ClientAddr};
use crate::atc::auth::{self, random_hex, AuthError, WEB_CLIENT_ID};
use axum::extract::{Form, Path, State};
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

/// `GET /sky/issuer/auth`: with one connector straight to it, as Dex skips its chooser;
/// with several, Dex's chooser: a link per connector, carrying the request's query.
pub async fn issuer_auth(State(state): State<AppState>, parts: Parts) -> Response {
    let q = parts.uri.query().unwrap_or_default();
    let connectors = state.auth.connectors();
    if connectors.len() <= 1 {
        let id = connectors.first().map_or(auth::LOCAL, |(id, _)| *id);
        return redirect(StatusCode::FOUND, format!("/sky/issuer/auth/{id}?{q}"));
    }
    let esc = crate::atc::ui::escape_html;
    let links: String = connectors
        .iter()
        .map(|(id, name)| {
            format!(
                "<li><a class=\"connector\" href=\"{}\">Log in with {}</a></li>",
                esc(&format!("/sky/issuer/auth/{id}?{q}")),
                esc(name)
            )
        })
        .collect();
    Html(page(
        "Log in - Concourse",
        &format!(
            "<div class=\"login-box\"><h1>concourse</h1><h2>Log in to concourse</h2>\
             <ul class=\"connectors\">{links}</ul></div>"
        ),
    ))
    .into_response()
}

/// The form's labels for a configured connector; `None` for an unknown one.
fn labels(state: &AppState, connector: &str) -> Option<(String, String)> {
    let prompt = state.auth.username_prompt(connector)?;
    let heading = state
        .auth
        .connectors()
        .into_iter()
        .find(|(id, _)| *id == connector)
        .map_or_else(|| "Username/Password".to_string(), |(_, name)| name);
    Some((heading, prompt))
}

fn no_connector(connector: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("connector '{connector}' is not configured"),
    )
        .into_response()
}

/// Where the OIDC provider sends the browser back (Dex's callback URL, which the provider's
/// client registration must list).
fn oidc_callback(state: &AppState) -> String {
    format!(
        "{}/sky/issuer/callback",
        state.external_url.trim_end_matches('/')
    )
}

/// The identity provider failed (unreachable, refused us): not the user's fault.
fn provider_failed(e: &str) -> Response {
    tracing::error!(error = %e, connector = auth::oidc::OIDC, "browser login: the identity provider failed");
    (
        StatusCode::BAD_GATEWAY,
        format!("the identity provider failed: {e}"),
    )
        .into_response()
}

/// `GET /sky/issuer/auth/oidc?state=S`: off to the provider, with PKCE; the verifier and
/// nonce ride in a cookie scoped to the callback.
async fn oidc_redirect(state: &AppState, login_state: &str) -> Response {
    let Some(oidc) = state.auth.oidc() else {
        return no_connector(auth::oidc::OIDC);
    };
    match oidc.start(&oidc_callback(state), login_state).await {
        Ok((to, pending)) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, to),
                (
                    header::SET_COOKIE,
                    state.cookies.oidc_login(Some(&pending.to_cookie())),
                ),
            ],
        )
            .into_response(),
        Err(e) => provider_failed(&e),
    }
}

/// `GET /sky/issuer/callback?code=C&state=S`: the provider vouched for the user; the code
/// is redeemed and the id token checked, then on to `/sky/callback` as after a form login.
pub async fn oidc_return(State(state): State<AppState>, parts: Parts) -> Response {
    let Some(oidc) = state.auth.oidc() else {
        return no_connector(auth::oidc::OIDC);
    };
    let q = query(&parts);
    if let Some(e) = q.get("error") {
        let why = q.get("error_description").unwrap_or(e);
        return (StatusCode::BAD_REQUEST, format!("login refused: {why}")).into_response();
    }
    let (Some(code), Some(login_state)) = (q.get("code"), q.get("state")) else {
        return bad_state();
    };
    if read_state(login_state).is_none() {
        return bad_state();
    }
    let pending = super::session::cookie(&parts.headers, super::session::OIDC_COOKIE)
        .and_then(|c| auth::oidc::Pending::from_cookie(&c));
    let Some(pending) = pending else {
        return (
            StatusCode::BAD_REQUEST,
            "no login in progress in this browser (it expires after 10 minutes)",
        )
            .into_response();
    };
    let ident = match oidc.finish(code, &oidc_callback(&state), &pending).await {
        Ok(ident) => ident,
        Err(e) => return provider_failed(&e),
    };
    let issued = state
        .auth
        .issue_for(&ident, auth::oidc::OIDC, WEB_CLIENT_ID)
        .await;
    let code = match issued {
        Ok(issued) => state
            .auth
            .code_for(&issued.token, login_state)
            .await
            .map_err(AuthError::from),
        Err(e) => Err(e),
    };
    match code {
        Ok(code) => (
            StatusCode::SEE_OTHER,
            [
                (
                    header::LOCATION,
                    format!(
                        "{}/sky/callback?{}",
                        state.external_url.trim_end_matches('/'),
                        encode(&[("code", &code), ("state", login_state)])
                    ),
                ),
                (header::SET_COOKIE, state.cookies.oidc_login(None)),
            ],
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "browser login: issuing the token");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /sky/issuer/auth/{connector}`: the connector's login form for this request (OIDC:
/// the provider's login).
pub async fn connector(
    State(state): State<AppState>,
    Path(connector): Path<String>,
    parts: Parts,
) -> Response {
    if connector == auth::oidc::OIDC && state.auth.oidc().is_some() {
        let q = query(&parts);
        return match q.get("state").filter(|s| read_state(s).is_some()) {
            Some(s) => oidc_redirect(&state, s).await,
            None => bad_state(),
        };
    }
    if labels(&state, &connector).is_none() {
        return no_connector(&connector);
    }
    let q = query(&parts);
    match q.get("state").filter(|s| read_state(s).is_some()) {
        Some(s) => redirect(StatusCode::FOUND, form_url(&connector, s)),
        None => bad_state(),
    }
}

/// The form's own URL. State only (upstream adds an empty `back=`): scripts that take the
/// action attribute verbatim, HTML escaping and all, still post to a URL that works.
fn form_url(connector: &str, state: &str) -> String {
    format!(
        "/sky/issuer/auth/{connector}/login?{}",
        encode(&[("state", state)])
    )
}

fn bad_state() -> Response {
    (StatusCode::BAD_REQUEST, "invalid state token").into_response()
}

fn render_form(action: &str, heading: &str, prompt: &str, error: Option<&str>) -> Html<String> {
    Html(login_form_at(
        action,
        None,
        error,
        &FormLabels { heading, prompt },
    ))
}

/// `GET /sky/issuer/auth/{connector}/login?state=S`: the form.
pub async fn form(
    State(state): State<AppState>,
    Path(connector): Path<String>,
    parts: Parts,
) -> Response {
    let Some((heading, prompt)) = labels(&state, &connector) else {
        return no_connector(&connector);
    };
    let q = query(&parts);
    match q.get("state").filter(|s| read_state(s).is_some()) {
        Some(s) => render_form(&form_url(&connector, s), &heading, &prompt, None).into_response(),
        None => bad_state(),
    }
}

/// `POST /sky/issuer/auth/{connector}/login?state=S` (`login`, `password`): on success 303
/// to the callback with a one-time code; wrong credentials re-render the form (200, as Dex).
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    Path(connector): Path<String>,
    parts: Parts,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some((heading, prompt)) = labels(&state, &connector) else {
        return no_connector(&connector);
    };
    let q = query(&parts);
    let Some(login_state) = q.get("state").filter(|s| read_state(s).is_some()) else {
        return bad_state();
    };
    let action = form_url(&connector, login_state);
    let rerender = |error| render_form(&action, &heading, &prompt, Some(error));
    let user = form.get("login").map(String::as_str).unwrap_or_default();
    let pass = form.get("password").map(String::as_str).unwrap_or_default();
    match state
        .auth
        .login(&connector, user, pass, WEB_CLIENT_ID, from)
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
            rerender("too many failed logins: wait a minute and try again"),
        )
            .into_response(),
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "browser login");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(AuthError::Connector(e)) => {
            tracing::error!(error = %e, connector, "browser login: the identity provider failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                rerender("the identity provider could not check the password"),
            )
                .into_response()
        }
        // Dex's wording, which scripted clients look for.
        Err(_) => rerender("invalid username and password").into_response(),
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
            !form_url("local", &s).contains('&'),
            "one parameter: {}",
            form_url("local", &s)
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
