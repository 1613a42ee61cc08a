//! The ATC HTTP API (shared/spec/atc-api.md): routes, access checks, JSON shapes.
//! One file per concern; handlers load what they need through the helpers in `access`.

pub mod access;
pub mod admin;
pub mod artifacts;
pub mod atc_plan;
pub mod builds;
pub mod caches;
pub mod causality;
pub mod checks;
pub mod config;
pub mod containers;
pub mod dex;
pub mod error;
pub mod hijack;
pub mod info;
pub mod jobs;
pub mod login;
pub mod oneoff;
pub mod pipelines;
pub mod preparation;
pub mod resources;
pub mod session;
pub mod sky;
pub mod status;
pub mod streams;
pub mod teams;
pub mod versions;
pub mod wellknown;
pub mod workers;

use crate::atc::auth::{Auth, Requester};
use crate::atc::ui;
use crate::db::Store;
use crate::proto::api::{Info, API_VERSION};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use error::ApiError;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a handler may reach. Components are trait objects so `web` and
/// `quickstart` differ only in what they inject.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub auth: Arc<Auth>,
    pub info: Info,
    pub external_url: String,
    pub cli_artifacts_dir: Option<PathBuf>,
    /// Wakes the scheduler, aborts running builds, follows live events.
    pub builds: crate::atc::engine::Handle,
    /// The engine (check builds); None in API-only tests.
    pub engine: Option<Arc<crate::atc::engine::Engine>>,
    /// Headers every response carries (`--x-frame-options`, `--content-security-policy`).
    pub web_headers: Arc<ui::WebHeaders>,
    /// Open build-event streams, capped in total and per client.
    pub streams: Arc<streams::StreamLimits>,
    /// How the browser session's cookies are written (`--cookie-secure`).
    pub cookies: session::SessionCookies,
    /// `--intercept-idle-timeout`: an intercept session with neither input nor output for
    /// this long is closed; None = never.
    pub intercept_idle_timeout: Option<std::time::Duration>,
    /// Fires when the node stops: long-lived responses (event streams) end at once rather
    /// than hold the shutdown up.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The TCP peer's address, when the server was served with connect info (tests that
/// drive the router directly have none).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A JSON body the way Go's encoder writes it: one object and a trailing newline.
pub fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => ApiError::Internal(format!("encoding response: {e}")).into_response(),
    }
}

impl FromRequestParts<AppState> for Requester {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = auth_header(parts);
        csrf_check(parts)?;
        let claims = state
            .auth
            .verify(header.as_deref())
            .await
            .map_err(|_| ApiError::unauthorized())?;
        let teams = state.store.teams().await?;
        Ok(Requester::new(claims, teams))
    }
}

/// The `Authorization` header, or the browser's `skymarshal_auth` cookie in its place.
pub fn auth_header(parts: &Parts) -> Option<String> {
    if let Some(h) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    {
        return Some(h.to_string());
    }
    cookie(parts, "skymarshal_auth")
}

/// A browser authenticated by cookie must echo the CSRF cookie in `X-Csrf-Token` on
/// anything but reads; requests with an explicit `Authorization` header are not browsers.
fn csrf_check(parts: &Parts) -> Result<(), ApiError> {
    use axum::http::Method;
    if parts.headers.contains_key(header::AUTHORIZATION)
        || cookie(parts, "skymarshal_auth").is_none()
    {
        return Ok(());
    }
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = parts
        .headers
        .get("X-Csrf-Token")
        .and_then(|h| h.to_str().ok());
    match (sent, cookie(parts, "skymarshal_csrf")) {
        (Some(sent), Some(expected))
            if !expected.is_empty() && crate::atc::auth::secrets_match(sent, &expected) =>
        {
            Ok(())
        }
        _ => Err(ApiError::unauthorized()),
    }
}

pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    session::cookie(&parts.headers, name)
}

async fn version_header(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert("X-Concourse-Version", HeaderValue::from_static(API_VERSION));
    resp
}

pub fn router(state: AppState) -> Router {
    let team = "/api/v1/teams/{team_name}";
    let pipeline = "/api/v1/teams/{team_name}/pipelines/{pipeline_name}";
    let job = "/api/v1/teams/{team_name}/pipelines/{pipeline_name}/jobs/{job_name}";
    let resource = "/api/v1/teams/{team_name}/pipelines/{pipeline_name}/resources/{resource_name}";
    let version = format!("{resource}/versions/{{version_id}}");
    let api = Router::new()
        .route("/api/v1/info", get(info::info))
        .route("/api/v1/user", get(info::user))
        .route(
            "/api/v1/wall",
            get(admin::wall)
                .put(admin::set_wall)
                .delete(admin::clear_wall),
        )
        .route(
            "/api/v1/log-level",
            get(admin::get_log_level).put(admin::set_log_level),
        )
        .route("/api/v1/info/creds", get(admin::info_creds))
        .route("/api/v1/users", get(admin::users))
        .route("/api/v1/containers/destroying", get(admin::destroying))
        .route("/api/v1/containers/report", put(admin::report))
        .route("/api/v1/volumes/destroying", get(admin::destroying))
        .route("/api/v1/volumes/report", put(admin::report))
        .route(&format!("{team}/cc.xml"), get(status::cc_xml))
        .route(&format!("{pipeline}/badge"), get(status::pipeline_badge))
        .route(&format!("{job}/badge"), get(status::job_badge))
        .route(
            "/api/v1/pipelines/{pipeline_name}/jobs/{job_name}/badge",
            get(status::main_job_badge),
        )
        .route(&format!("{job}/schedule"), put(status::schedule_job))
        .route(
            &format!("{pipeline}/versions-db"),
            get(causality::versions_db),
        )
        .route(&format!("{version}/input_to"), get(causality::input_to))
        .route(&format!("{version}/output_of"), get(causality::output_of))
        .route(&format!("{version}/upstream"), get(causality::upstream))
        .route(&format!("{version}/downstream"), get(causality::downstream))
        // Upstream's name for `downstream` until v7.4 split causality in two directions.
        .route(&format!("{version}/causality"), get(causality::downstream))
        .route(
            &format!("{resource}/cache"),
            delete(caches::clear_resource_cache),
        )
        .route(
            &format!("{pipeline}/resource-types/{{resource_type_name}}/cache"),
            delete(caches::clear_resource_type_cache),
        )
        .route("/api/v1/cli", get(info::cli))
        .route(
            "/api/v1/workers",
            get(workers::list).post(workers::register),
        )
        .route("/api/v1/workers/{worker_name}", delete(workers::delete))
        .route(
            "/api/v1/workers/{worker_name}/heartbeat",
            put(workers::heartbeat),
        )
        .route("/api/v1/workers/{worker_name}/land", put(workers::land))
        .route("/api/v1/workers/{worker_name}/retire", put(workers::retire))
        .route("/api/v1/workers/{worker_name}/prune", put(workers::prune))
        .route("/api/v1/teams", get(teams::list))
        .route(team, get(teams::get).put(teams::set).delete(teams::destroy))
        .route(&format!("{team}/rename"), put(teams::rename))
        .route("/api/v1/pipelines", get(pipelines::list_all))
        .route(&format!("{team}/pipelines"), get(pipelines::list_team))
        .route(&format!("{team}/pipelines/ordering"), put(pipelines::order))
        .route(pipeline, get(pipelines::get).delete(pipelines::destroy))
        .route(
            &format!("{pipeline}/config"),
            get(config::get).put(config::save),
        )
        .route(&format!("{pipeline}/pause"), put(pipelines::pause))
        .route(&format!("{pipeline}/unpause"), put(pipelines::unpause))
        .route(&format!("{pipeline}/expose"), put(pipelines::expose))
        .route(&format!("{pipeline}/hide"), put(pipelines::hide))
        .route(&format!("{pipeline}/archive"), put(pipelines::archive))
        .route(&format!("{pipeline}/rename"), put(pipelines::rename))
        .route(
            &format!("{pipeline}/ordering"),
            put(pipelines::order_instances),
        )
        .route("/api/v1/jobs", get(jobs::list_all))
        .route(&format!("{pipeline}/jobs"), get(jobs::list))
        .route(job, get(jobs::get))
        .route(
            &format!("{job}/builds"),
            get(builds::list_job).post(builds::trigger),
        )
        .route(
            &format!("{job}/builds/{{build_name}}"),
            get(builds::get_job_build).post(builds::rerun),
        )
        .route(&format!("{job}/inputs"), get(oneoff::job_inputs))
        .route(
            &format!("{pipeline}/builds"),
            get(builds::list_pipeline).post(oneoff::create_pipeline_build),
        )
        .route(
            &format!("{team}/builds"),
            get(builds::list_team).post(oneoff::create_team_build),
        )
        .route(&format!("{team}/artifacts"), post(artifacts::create))
        .route(
            &format!("{team}/artifacts/{{artifact_id}}"),
            get(artifacts::get),
        )
        .route(
            "/api/v1/builds/{build_id}/artifacts",
            get(artifacts::list_build),
        )
        .route("/api/v1/builds", get(builds::list_all))
        .route("/api/v1/builds/{build_id}", get(builds::get))
        .route("/api/v1/builds/{build_id}/abort", put(builds::abort))
        .route("/api/v1/builds/{build_id}/comment", put(builds::comment))
        .route("/api/v1/builds/{build_id}/events", get(builds::events))
        .route("/api/v1/builds/{build_id}/plan", get(builds::plan))
        .route(
            "/api/v1/builds/{build_id}/preparation",
            get(preparation::preparation),
        )
        .route("/api/v1/builds/{build_id}/log", get(ui::api::raw_log))
        .route("/api/v1/dashboard", get(ui::api::dashboard))
        .route(&format!("{pipeline}/graph"), get(ui::api::graph))
        .route(
            &format!("{pipeline}/resources/{{resource_name}}/check"),
            post(checks::resource),
        )
        .route(
            &format!("{pipeline}/resources/{{resource_name}}/check/webhook"),
            post(checks::webhook),
        )
        .route(
            &format!("{pipeline}/resource-types/{{resource_type_name}}/check"),
            post(checks::resource_type),
        )
        .route(
            &format!("{pipeline}/prototypes/{{prototype_name}}/check"),
            post(checks::prototype),
        )
        .route(
            "/api/v1/builds/{build_id}/resources",
            get(resources::build_resources),
        )
        .route("/api/v1/resources", get(resources::list_all))
        .route(&format!("{pipeline}/resources"), get(resources::list))
        .route(resource, get(resources::get))
        .route(
            &format!("{pipeline}/resource-types"),
            get(resources::resource_types),
        )
        .route(&format!("{resource}/versions"), get(versions::list))
        .route(&version, get(versions::get))
        .route(&format!("{version}/enable"), put(versions::enable))
        .route(&format!("{version}/disable"), put(versions::disable))
        .route(&format!("{version}/pin"), put(versions::pin))
        .route(&format!("{resource}/unpin"), put(versions::unpin))
        .route(
            &format!("{resource}/pin_comment"),
            put(versions::pin_comment),
        )
        .route(&format!("{team}/containers"), get(containers::list))
        .route(&format!("{team}/containers/{{id}}"), get(containers::get))
        .route(
            &format!("{team}/containers/{{id}}/hijack"),
            get(hijack::hijack),
        )
        .route(&format!("{team}/volumes"), get(containers::list_volumes))
        .route(
            &format!("{job}/tasks/{{step_name}}/cache"),
            delete(containers::clear_task_cache),
        )
        .route(&format!("{job}/pause"), put(jobs::pause))
        .route(&format!("{job}/unpause"), put(jobs::unpause))
        .layer(axum::middleware::from_fn(version_header));
    Router::new()
        .merge(api)
        .route("/sky/issuer/token", post(sky::token))
        .route("/sky/logout", get(sky::logout))
        .route("/sky/login", get(dex::start).post(login::login_submit))
        .route("/sky/issuer/auth", get(dex::issuer_auth))
        .route("/sky/issuer/auth/local", get(dex::connector))
        .route(
            "/sky/issuer/auth/local/login",
            get(dex::form).post(dex::submit),
        )
        .route("/sky/callback", get(dex::callback))
        .route(
            "/.well-known/openid-configuration",
            get(wellknown::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/login", get(sky::legacy_login))
        .route("/logout", get(sky::legacy_logout))
        .merge(ui::router())
        .fallback(ui::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.cookies,
            session::clear_on_unauthorized,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.web_headers.clone(),
            ui::security_headers,
        ))
        .with_state(state)
}
