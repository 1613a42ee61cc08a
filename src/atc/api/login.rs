//! The local users' login form, and its older single-step submission (`POST /sky/login`);
//! the Dex-shaped flow around it is `dex`. The page that hands a token to fly's local
//! listener (`/fly_success`) is one of the web UI's (`atc::ui`).

use super::{cookie, AppState, ClientAddr};
use crate::atc::auth::{AuthError, WEB_CLIENT_ID};
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;

pub(super) fn query(parts: &Parts) -> HashMap<String, String> {
    url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Only same-origin paths: anything else would make the login page an open redirect that
/// carries the CSRF token off-site. Browsers drop tab, CR and LF from URLs and read `\`
/// as `/`, so `/\t/evil.example` or `/\evil.example` would mean `//evil.example`.
pub(super) fn safe_redirect(uri: Option<&String>) -> String {
    let Some(u) = uri else {
        return "/".into();
    };
    let as_browsed: String = u
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let same_origin = u.starts_with('/')
        && !as_browsed.starts_with("//")
        && !as_browsed.starts_with("/\\")
        && !u.chars().any(|c| c.is_control() || c == '\\');
    if same_origin {
        u.clone()
    } else {
        "/".into()
    }
}

/// Styled by the UI's stylesheet: the security policy allows no inline style.
pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"{}\"></head><body class=\"login-page\">{body}</body></html>",
        crate::atc::ui::assets::url("app.css")
    )
}

fn login_form(redirect: &str, error: Option<&str>) -> String {
    login_form_at("/sky/login", Some(redirect), error, &FormLabels::LOCAL)
}

/// What a connector's form says: its heading and the username field's label.
pub(super) struct FormLabels<'a> {
    pub heading: &'a str,
    pub prompt: &'a str,
}

impl FormLabels<'_> {
    pub const LOCAL: FormLabels<'static> = FormLabels {
        heading: "Username/Password",
        prompt: "username",
    };
}

/// The username/password form posting to `action` (with `redirect` as a field when the
/// page to return to is not carried by the action's URL).
pub(super) fn login_form_at(
    action: &str,
    redirect: Option<&str>,
    error: Option<&str>,
    labels: &FormLabels,
) -> String {
    let esc = crate::atc::ui::escape_html;
    let err = error
        .map(|e| format!("<p class=\"err\">{}</p>", esc(e)))
        .unwrap_or_default();
    let redirect = redirect
        .map(|r| {
            format!(
                "<input type=\"hidden\" name=\"redirect_uri\" value=\"{}\">",
                esc(r)
            )
        })
        .unwrap_or_default();
    page(
        "Log in - Concourse",
        &format!(
            "<form class=\"login-box\" method=\"post\" action=\"{}\"><h1>concourse</h1><h2>{}</h2>{err}\
             <label>{}<input name=\"login\" autofocus></label>\
             <label>password<input name=\"password\" type=\"password\"></label>\
             {redirect}<button type=\"submit\">login</button></form>",
            esc(action),
            esc(labels.heading),
            esc(labels.prompt),
        ),
    )
}

pub(super) async fn logged_in(state: &AppState, parts: &Parts) -> Option<String> {
    let value = cookie(parts, "skymarshal_auth")?;
    state
        .auth
        .verify(Some(&value))
        .await
        .ok()
        .flatten()
        .map(|_| value)
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let redirect = safe_redirect(form.get("redirect_uri"));
    let user = form.get("login").map(String::as_str).unwrap_or_default();
    let pass = form.get("password").map(String::as_str).unwrap_or_default();
    match state
        .auth
        .password_grant(user, pass, WEB_CLIENT_ID, from)
        .await
    {
        Ok(issued) => {
            let csrf = crate::atc::auth::random_hex();
            let sep = if redirect.contains('?') { '&' } else { '?' };
            (
                StatusCode::FOUND,
                [(
                    header::LOCATION,
                    format!("{redirect}{sep}csrf_token={csrf}"),
                )],
                state
                    .cookies
                    .set(&issued.token, &csrf, state.auth.duration()),
            )
                .into_response()
        }
        Err(AuthError::TooManyAttempts(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after(wait))],
            Html(login_form(
                &redirect,
                Some("too many failed logins: wait a minute and try again"),
            )),
        )
            .into_response(),
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "browser login");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(AuthError::Connector(e)) => {
            tracing::error!(error = %e, "browser login: the identity provider failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(login_form(
                    &redirect,
                    Some("the identity provider could not check the password"),
                )),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            Html(login_form(&redirect, Some("invalid username or password"))),
        )
            .into_response(),
    }
}

/// `Retry-After` in whole seconds, rounded up so a client waiting that long gets in.
pub(crate) fn retry_after(wait: std::time::Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    #[test]
    fn only_same_origin_paths_are_redirect_targets() {
        let r = |u: &str| safe_redirect(Some(&u.to_string()));
        for ok in [
            "/",
            "/teams/main/pipelines/p?x=1",
            "/fly_success?fly_port=1",
        ] {
            assert_eq!(r(ok), ok);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            "/a\\b",
            "/a\u{7f}b",
            "evil.example",
            "",
        ] {
            assert_eq!(r(bad), "/", "{bad:?}");
        }
        assert_eq!(safe_redirect(None), "/");
    }
}
