//! Browser login for local users (`/sky/login`). The page that hands a token to fly's local
//! listener (`/fly_success`) is one of the web UI's (`atc::ui`).

use super::{cookie, AppState};
use crate::atc::auth::{AuthError, WEB_CLIENT_ID};
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Response};
use rand::RngCore;
use std::collections::HashMap;

fn query(parts: &Parts) -> HashMap<String, String> {
    url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Only same-site paths: anything else would make the login page an open redirect.
fn safe_redirect(uri: Option<&String>) -> String {
    match uri {
        Some(u) if u.starts_with('/') && !u.starts_with("//") && !u.contains('\\') => u.clone(),
        _ => "/".into(),
    }
}

/// Styled by the UI's stylesheet: the security policy allows no inline style.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"{}\"></head><body class=\"login-page\">{body}</body></html>",
        crate::atc::ui::assets::url("app.css")
    )
}

fn login_form(redirect: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"err\">{}</p>", crate::atc::ui::escape_html(e)))
        .unwrap_or_default();
    page(
        "Log in - Concourse",
        &format!(
            "<form class=\"login-box\" method=\"post\" action=\"/sky/login\"><h1>concourse</h1><h2>Username/Password</h2>{err}\
             <label>username<input name=\"login\" autofocus></label>\
             <label>password<input name=\"password\" type=\"password\"></label>\
             <input type=\"hidden\" name=\"redirect_uri\" value=\"{}\">\
             <button type=\"submit\">login</button></form>",
            crate::atc::ui::escape_html(redirect)
        ),
    )
}

async fn logged_in(state: &AppState, parts: &Parts) -> Option<String> {
    let value = cookie(parts, "skymarshal_auth")?;
    state
        .auth
        .verify(Some(&value))
        .await
        .ok()
        .flatten()
        .map(|_| value)
}

pub async fn login_page(State(state): State<AppState>, parts: Parts) -> Response {
    let redirect = safe_redirect(query(&parts).get("redirect_uri"));
    if logged_in(&state, &parts).await.is_some() {
        return (StatusCode::FOUND, [(header::LOCATION, redirect)]).into_response();
    }
    Html(login_form(&redirect, None)).into_response()
}

pub async fn login_submit(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let redirect = safe_redirect(form.get("redirect_uri"));
    let user = form.get("login").map(String::as_str).unwrap_or_default();
    let pass = form.get("password").map(String::as_str).unwrap_or_default();
    match state.auth.password_grant(user, pass, WEB_CLIENT_ID).await {
        Ok(issued) => {
            let mut csrf = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut csrf);
            let csrf: String = csrf.iter().map(|b| format!("{b:02x}")).collect();
            let sep = if redirect.contains('?') { '&' } else { '?' };
            let max_age = state.auth.duration().as_secs();
            (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{redirect}{sep}csrf_token={csrf}"))],
                AppendHeaders([
                    (header::SET_COOKIE, format!("skymarshal_auth=\"bearer {}\"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax", issued.token)),
                    (header::SET_COOKIE, format!("skymarshal_csrf={csrf}; Path=/; Max-Age={max_age}; SameSite=Lax")),
                ]),
            )
                .into_response()
        }
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "browser login");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            Html(login_form(&redirect, Some("invalid username or password"))),
        )
            .into_response(),
    }
}
