//! The ATC HTTP API (shared/spec/atc-api.md): routes, access checks, JSON shapes.
//! One file per concern. Who may call a route is `policy::ROUTES`; handlers get their
//! checked team / pipeline / job / build through the extractors in `scope`.

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
pub mod etag;
pub mod hijack;
pub mod info;
pub mod jobs;
pub mod listings;
pub mod login;
pub mod oneoff;
pub mod pipelines;
pub mod policy;
pub mod preparation;
pub mod rbac;
pub mod resources;
pub mod scope;
pub mod session;
pub mod sky;
pub mod status;
pub mod streams;
pub mod teams;
pub mod versions;
pub mod wellknown;
pub mod workers;

use crate::atc::auth::{retry_unavailable, Auth, Requester, TokenError};
use crate::atc::ui;
use crate::db::Store;
use crate::proto::api::{Info, API_VERSION};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
    /// `--config-rbac`: the roles actions need, where changed.
    pub rbac: Arc<rbac::Rbac>,
    /// Jobs' inputs and outputs, derived once per pipeline config version.
    pub job_shapes: Arc<jobs::JobShapes>,
    /// Bodies of the large listings, kept while the data is unchanged.
    pub listings: Arc<listings::Listings>,
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

/// The bare caller is only for routes that check nothing up front (`Open`, `Visible`,
/// `WebhookToken`, and routes outside the policy such as the UI's); every other route
/// gets its caller from its scope (`scope`), which enforces the rule.
impl FromRequestParts<AppState> for Requester {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use policy::Access::{Open, Visible, WebhookToken};
        match parts.extensions.get::<&'static policy::RouteRule>() {
            Some(rule) if !matches!(rule.access, Open | Visible | WebhookToken) => {
                Err(ApiError::Internal(format!(
                    "{} {}: {:?} needs its scope, not a bare Requester",
                    rule.method, rule.path, rule.access
                )))
            }
            _ => requester(parts, state).await,
        }
    }
}

/// The caller: 401 for a bad token, or for a browser's write without its CSRF token.
pub(crate) async fn requester(parts: &Parts, state: &AppState) -> Result<Requester, ApiError> {
    let header = auth_header(parts);
    csrf_check(parts)?;
    // The token and the teams side by side: two statements, one wait.
    let (claims, teams) = tokio::join!(
        state.auth.verify(header.as_deref()),
        retry_unavailable(|| state.store.teams())
    );
    let claims = match claims {
        Ok(claims) => claims,
        Err(TokenError::Invalid) => return Err(ApiError::unauthorized()),
        // A database blip is a 503, never a 401 to a valid token.
        Err(TokenError::Store(e)) => return Err(e.into()),
    };
    Ok(Requester::new(claims, teams?))
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

/// Every route with its handler; [`policy::Routes`] pairs each with its rule in
/// [`policy::ROUTES`]. The API routes come first, then the login endpoints beside them.
pub(crate) fn routes() -> (Router<AppState>, Router<AppState>) {
    use policy::{at_build, at_job, at_pipeline, at_resource, at_team, at_version};
    let api = policy::Routes::default()
        .get("/api/v1/info", info::info)
        .get("/api/v1/user", info::user)
        .get("/api/v1/wall", admin::wall)
        .put("/api/v1/wall", admin::set_wall)
        .delete("/api/v1/wall", admin::clear_wall)
        .get("/api/v1/log-level", admin::get_log_level)
        .put("/api/v1/log-level", admin::set_log_level)
        .get("/api/v1/info/creds", admin::info_creds)
        .get("/api/v1/users", admin::users)
        .get("/api/v1/containers/destroying", admin::destroying)
        .put("/api/v1/containers/report", admin::report)
        .get("/api/v1/volumes/destroying", admin::destroying)
        .put("/api/v1/volumes/report", admin::report)
        .get(at_team!("/cc.xml"), status::cc_xml)
        .get(at_pipeline!("/badge"), status::pipeline_badge)
        .get(at_job!("/badge"), status::job_badge)
        .get(
            "/api/v1/pipelines/{pipeline_name}/jobs/{job_name}/badge",
            status::main_job_badge,
        )
        .put(at_job!("/schedule"), status::schedule_job)
        .get(at_pipeline!("/versions-db"), causality::versions_db)
        .get(at_version!("/input_to"), causality::input_to)
        .get(at_version!("/output_of"), causality::output_of)
        .get(at_version!("/upstream"), causality::upstream)
        .get(at_version!("/downstream"), causality::downstream)
        // Upstream's name for `downstream` until v7.4 split causality in two directions.
        .get(at_version!("/causality"), causality::downstream)
        .delete(at_resource!("/cache"), caches::clear_resource_cache)
        .delete(
            at_pipeline!("/resource-types/{resource_type_name}/cache"),
            caches::clear_resource_type_cache,
        )
        .get("/api/v1/cli", info::cli)
        .get("/api/v1/workers", workers::list)
        .post("/api/v1/workers", workers::register)
        .delete("/api/v1/workers/{worker_name}", workers::delete)
        .put(
            "/api/v1/workers/{worker_name}/heartbeat",
            workers::heartbeat,
        )
        .put("/api/v1/workers/{worker_name}/land", workers::land)
        .put("/api/v1/workers/{worker_name}/retire", workers::retire)
        .put("/api/v1/workers/{worker_name}/prune", workers::prune)
        .get("/api/v1/teams", teams::list)
        .get(at_team!(""), teams::get)
        .put(at_team!(""), teams::set)
        .delete(at_team!(""), teams::destroy)
        .put(at_team!("/rename"), teams::rename)
        .get("/api/v1/pipelines", pipelines::list_all)
        .get(at_team!("/pipelines"), pipelines::list_team)
        .put(at_team!("/pipelines/ordering"), pipelines::order)
        .get(at_pipeline!(""), pipelines::get)
        .delete(at_pipeline!(""), pipelines::destroy)
        .get(at_pipeline!("/config"), config::get)
        .put(at_pipeline!("/config"), config::save)
        .put(at_pipeline!("/pause"), pipelines::pause)
        .put(at_pipeline!("/unpause"), pipelines::unpause)
        .put(at_pipeline!("/expose"), pipelines::expose)
        .put(at_pipeline!("/hide"), pipelines::hide)
        .put(at_pipeline!("/archive"), pipelines::archive)
        .put(at_pipeline!("/rename"), pipelines::rename)
        .put(at_pipeline!("/ordering"), pipelines::order_instances)
        .get("/api/v1/jobs", jobs::list_all)
        .get(at_pipeline!("/jobs"), jobs::list)
        .get(at_job!(""), jobs::get)
        .get(at_job!("/builds"), builds::list_job)
        .post(at_job!("/builds"), builds::trigger)
        .get(at_job!("/builds/{build_name}"), builds::get_job_build)
        .post(at_job!("/builds/{build_name}"), builds::rerun)
        .get(at_job!("/inputs"), oneoff::job_inputs)
        .get(at_pipeline!("/builds"), builds::list_pipeline)
        .post(at_pipeline!("/builds"), oneoff::create_pipeline_build)
        .get(at_team!("/builds"), builds::list_team)
        .post(at_team!("/builds"), oneoff::create_team_build)
        .post(at_team!("/artifacts"), artifacts::create)
        .get(at_team!("/artifacts/{artifact_id}"), artifacts::get)
        .get(at_build!("/artifacts"), artifacts::list_build)
        .get("/api/v1/builds", builds::list_all)
        .get(at_build!(""), builds::get)
        .put(at_build!("/abort"), builds::abort)
        .put(at_build!("/comment"), builds::comment)
        .get(at_build!("/events"), builds::events)
        .get(at_build!("/plan"), builds::plan)
        .get(at_build!("/preparation"), preparation::preparation)
        .get(at_build!("/log"), ui::api::raw_log)
        .get("/api/v1/dashboard", ui::api::dashboard)
        .get(at_pipeline!("/graph"), ui::api::graph)
        .post(at_resource!("/check"), checks::resource)
        .post(at_resource!("/check/webhook"), checks::webhook)
        .post(
            at_pipeline!("/resource-types/{resource_type_name}/check"),
            checks::resource_type,
        )
        .post(
            at_pipeline!("/prototypes/{prototype_name}/check"),
            checks::prototype,
        )
        .get(at_build!("/resources"), resources::build_resources)
        .get("/api/v1/resources", resources::list_all)
        .get(at_pipeline!("/resources"), resources::list)
        .get(at_resource!(""), resources::get)
        .get(at_pipeline!("/resource-types"), resources::resource_types)
        .get(at_resource!("/versions"), versions::list)
        .get(at_version!(""), versions::get)
        .put(at_version!("/enable"), versions::enable)
        .put(at_version!("/disable"), versions::disable)
        .put(at_version!("/pin"), versions::pin)
        .put(at_resource!("/unpin"), versions::unpin)
        .put(at_resource!("/pin_comment"), versions::pin_comment)
        .get(at_team!("/containers"), containers::list)
        .get(at_team!("/containers/{id}"), containers::get)
        .get(at_team!("/containers/{id}/hijack"), hijack::hijack)
        .get(at_team!("/volumes"), containers::list_volumes)
        .delete(
            at_job!("/tasks/{step_name}/cache"),
            containers::clear_task_cache,
        )
        .put(at_job!("/pause"), jobs::pause)
        .put(at_job!("/unpause"), jobs::unpause);
    let login = policy::Routes::default()
        .post("/sky/issuer/token", sky::token)
        .get("/sky/logout", sky::logout)
        .get("/sky/login", dex::start)
        .post("/sky/login", login::login_submit)
        .get("/sky/issuer/auth", dex::issuer_auth)
        .get("/sky/issuer/auth/{connector}", dex::connector)
        .get("/sky/issuer/auth/{connector}/login", dex::form)
        .post("/sky/issuer/auth/{connector}/login", dex::submit)
        .get("/sky/callback", dex::callback)
        .get("/sky/issuer/callback", dex::oidc_return)
        .get(
            "/.well-known/openid-configuration",
            wellknown::openid_configuration,
        )
        .get("/.well-known/jwks.json", wellknown::jwks)
        .get("/login", sky::legacy_login)
        .get("/logout", sky::legacy_logout);
    let [api, login] = policy::Routes::finish([api, login]);
    (api, login)
}

/// `concourse_http_responses_duration_seconds`, by the matched route's template (requests
/// no route matched count as `other`, so paths never become labels).
async fn response_time(
    matched: Option<axum::extract::MatchedPath>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let began = std::time::Instant::now();
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let route = matched.as_ref().map_or("other", |m| m.as_str());
    crate::atc::metrics::metrics().http_response(
        &method,
        route,
        resp.status().as_u16(),
        began.elapsed(),
    );
    resp
}

pub fn router(state: AppState) -> Router {
    use tower_http::compression::Predicate as _;
    let (api, login) = routes();
    Router::new()
        .merge(
            api.layer(axum::middleware::from_fn(version_header))
                .layer(axum::middleware::from_fn(etag::conditional))
                // Large answers (the dashboard's lists) gzipped for clients that accept it;
                // event streams never (the default predicate leaves SSE alone).
                .layer(
                    tower_http::compression::CompressionLayer::new().compress_when(
                        tower_http::compression::predicate::DefaultPredicate::new()
                            .and(tower_http::compression::predicate::SizeAbove::new(1024)),
                    ),
                ),
        )
        .merge(login)
        .merge(ui::router())
        .fallback(ui::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.cookies,
            session::clear_on_unauthorized,
        ))
        .layer(axum::middleware::from_fn(response_time))
        .layer(axum::middleware::from_fn_with_state(
            state.web_headers.clone(),
            ui::security_headers,
        ))
        .with_state(state)
}
