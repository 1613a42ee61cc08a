//! Browser login for local users (`/sky/login`) and the page that hands a token to fly's
//! local listener (`/fly_success`, the end of `fly login` without `-u/-p`).

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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;background:#273747;color:#fff;display:flex;justify-content:center;padding-top:10vh}}\
         form,div.box{{background:#1e2b38;padding:2em;min-width:20em}}input{{display:block;width:100%;margin:.5em 0 1em;padding:.5em}}\
         .err{{color:#ed4b35}}</style></head><body>{body}</body></html>"
    )
}

fn login_form(redirect: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"err\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Log in - Concourse",
        &format!(
            "<form method=\"post\" action=\"/sky/login\"><h2>Username/Password</h2>{err}\
             <label>username<input name=\"login\" autofocus></label>\
             <label>password<input name=\"password\" type=\"password\"></label>\
             <input type=\"hidden\" name=\"redirect_uri\" value=\"{}\">\
             <button type=\"submit\">login</button></form>",
            escape(redirect)
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

/// Hands `<type> <token>` to fly listening on 127.0.0.1:fly_port, then tells the user.
pub async fn fly_success(State(state): State<AppState>, parts: Parts) -> Response {
    let q = query(&parts);
    let port: Option<u16> = q.get("fly_port").and_then(|p| p.parse().ok());
    if q.get("noop").is_some_and(|v| v == "true") {
        return Html(page("Concourse", "<div class=\"box\"><h2>login successful!</h2><p>return to fly OR go back to the Concourse dashboard</p></div>")).into_response();
    }
    let Some(port) = port else {
        return (StatusCode::BAD_REQUEST, "missing fly_port").into_response();
    };
    let Some(token) = logged_in(&state, &parts).await else {
        let back = url::form_urlencoded::byte_serialize(
            format!("/fly_success?fly_port={port}").as_bytes(),
        )
        .collect::<String>();
        return (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/sky/login?redirect_uri={back}"))],
        )
            .into_response();
    };
    let token_js = serde_json::to_string(&token)
        .unwrap_or_default()
        .replace('<', "\\u003c");
    Html(page(
        "Concourse",
        &format!(
            "<div class=\"box\"><h2 id=\"msg\">sending token to fly...</h2></div><script>\
             fetch('http://127.0.0.1:{port}/?token=' + encodeURIComponent({token_js}), {{mode: 'no-cors'}})\
             .then(function() {{ document.getElementById('msg').textContent = 'you have successfully logged in!'; }})\
             .catch(function() {{ document.getElementById('msg').textContent = 'could not reach fly; copy this token into it: ' + {token_js}; }});\
             </script>"
        ),
    ))
    .into_response()
}
