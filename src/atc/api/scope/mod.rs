//! Typed scopes: extractors that load what a route names (its team, pipeline, job,
//! resource or build) and enforce the access its rule in `policy::ROUTES` requires, so a
//! handler starts with checked rows. The rule comes with the matched route (the router
//! attaches it); a scope asked to enforce a rule it cannot is a bug, answered with a 500.
//! The checks themselves, and the loading of the rows they need, are in `rules`.

mod rules;

use super::error::ApiError;
use super::policy::{Access, RouteRule};
use super::AppState;
use crate::atc::auth::Requester;
use crate::db::{BuildRow, JobRow, PipelineRow, ResourceRow, TeamRow, WorkerRow};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
pub use rules::instance_vars;
use rules::Target;
use std::collections::HashMap;

type Rejection = Response;

fn reject(e: ApiError) -> Response {
    e.into_response()
}

/// The caller, after the route's rule for routes that load nothing: `Open`, `Visible`,
/// `WebhookToken` (the handler checks the token), `Authenticated`, `AnyTeam`, `System`
/// and `Admin`.
pub struct Authorized(pub Requester);

/// A route on a team: `TeamRole`, `Intercept`.
pub struct TeamScope {
    pub req: Requester,
    pub team: TeamRow,
}

/// `PUT /teams/:team` (`TeamUpsert`): the team if it exists already.
pub struct TeamUpsert {
    pub req: Requester,
    pub existing: Option<TeamRow>,
}

/// A route on a pipeline: `PipelineRead`, `PipelineRole`, `PipelineRoleUnarchived`.
pub struct PipelineScope {
    pub req: Requester,
    pub team: TeamRow,
    pub pipeline: PipelineRow,
}

/// A pipeline route on one of its (active) jobs; 404 when there is no such job.
pub struct JobScope {
    pub req: Requester,
    pub team: TeamRow,
    pub pipeline: PipelineRow,
    pub job: JobRow,
}

/// A pipeline route on one of its (active) resources; 404 when there is none.
pub struct ResourceScope {
    pub req: Requester,
    pub team: TeamRow,
    pub pipeline: PipelineRow,
    pub resource: ResourceRow,
}

/// A route on a worker (`WorkerRole`) named in its path or the query's `worker_name`; 404
/// for an unknown worker, after the token.
pub struct WorkerScope {
    pub req: Requester,
    pub worker: WorkerRow,
}

/// A route on a build: `BuildRead`, `BuildReadPublicJob`, `BuildRole`. A build id that
/// is not a number is a 400 before the access check.
pub struct BuildScope {
    pub req: Requester,
    pub build: BuildRow,
}

fn rule(parts: &Parts) -> Result<&'static RouteRule, ApiError> {
    parts
        .extensions
        .get::<&'static RouteRule>()
        .copied()
        .ok_or_else(|| ApiError::Internal(format!("{}: no route rule", parts.uri)))
}

fn misfit(rule: &RouteRule, scope: &str) -> Rejection {
    reject(ApiError::Internal(format!(
        "{} {}: a {scope} cannot enforce {:?}",
        rule.method, rule.path, rule.access
    )))
}

/// The caller (401 for a bad token or CSRF header), then the path's parameters.
async fn caller(
    parts: &mut Parts,
    state: &AppState,
) -> Result<(Requester, HashMap<String, String>), Rejection> {
    let req = super::requester(parts, state).await.map_err(reject)?;
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((req, params))
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::Internal(format!("route has no {{{name}}}")))
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let rule = rule(parts).map_err(reject)?;
        let req = super::requester(parts, state).await.map_err(reject)?;
        match state.rbac.access(rule) {
            Access::Open | Access::Visible | Access::WebhookToken => Ok(()),
            Access::Authenticated => rules::authenticated(&req),
            Access::AnyTeam => rules::any_team(&req),
            Access::System => rules::system(&req),
            Access::Admin => rules::admin(&req),
            _ => return Err(misfit(rule, "plain Authorized")),
        }
        .map_err(reject)?;
        Ok(Authorized(req))
    }
}

impl FromRequestParts<AppState> for TeamScope {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let rule = rule(parts).map_err(reject)?;
        let (req, params) = caller(parts, state).await?;
        let role = match state.rbac.access(rule) {
            Access::TeamRole(role) => role,
            Access::Intercept(role) => {
                if !super::hijack::origin_allowed(&parts.headers, &state.external_url) {
                    tracing::warn!(origin = ?parts.headers.get(axum::http::header::ORIGIN),
                        "intercept from another origin refused");
                    return Err(reject(ApiError::forbidden()));
                }
                role
            }
            _ => return Err(misfit(rule, "TeamScope")),
        };
        let team = rules::team(&req, param(&params, "team_name").map_err(reject)?, role)
            .map_err(reject)?;
        Ok(TeamScope { req, team })
    }
}

impl FromRequestParts<AppState> for TeamUpsert {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let rule = rule(parts).map_err(reject)?;
        let (req, params) = caller(parts, state).await?;
        if rule.access != Access::TeamUpsert {
            return Err(misfit(rule, "TeamUpsert"));
        }
        let name = param(&params, "team_name").map_err(reject)?;
        let existing = rules::team_upsert(&req, name).map_err(reject)?;
        Ok(TeamUpsert { req, existing })
    }
}

/// The pipeline the path and the query's instance vars name, checked as `rule` says.
async fn pipeline_target(
    parts: &mut Parts,
    state: &AppState,
    scope: &str,
) -> Result<(Requester, Target, HashMap<String, String>), Rejection> {
    let rule = rule(parts).map_err(reject)?;
    let (req, params) = caller(parts, state).await?;
    let (team, name) = (
        param(&params, "team_name").map_err(reject)?,
        param(&params, "pipeline_name").map_err(reject)?,
    );
    let q = parts.uri.query();
    let target = match state.rbac.access(rule) {
        Access::PipelineRead => rules::pipeline_read(state, &req, team, name, q).await,
        Access::PipelineRole(role) => rules::pipeline_write(state, &req, team, name, q, role).await,
        Access::PipelineRoleUnarchived(role) => {
            rules::pipeline_write_unarchived(state, &req, team, name, q, role).await
        }
        _ => return Err(misfit(rule, scope)),
    }
    .map_err(reject)?;
    Ok((req, target, params))
}

impl FromRequestParts<AppState> for PipelineScope {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let (req, Target { team, pipeline }, _) =
            pipeline_target(parts, state, "PipelineScope").await?;
        Ok(PipelineScope {
            req,
            team,
            pipeline,
        })
    }
}

impl FromRequestParts<AppState> for JobScope {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let (req, Target { team, pipeline }, params) =
            pipeline_target(parts, state, "JobScope").await?;
        let job = rules::job(
            state,
            pipeline.id,
            param(&params, "job_name").map_err(reject)?,
        )
        .await
        .map_err(reject)?;
        Ok(JobScope {
            req,
            team,
            pipeline,
            job,
        })
    }
}

impl FromRequestParts<AppState> for ResourceScope {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let (req, Target { team, pipeline }, params) =
            pipeline_target(parts, state, "ResourceScope").await?;
        let resource = rules::resource(
            state,
            pipeline.id,
            param(&params, "resource_name").map_err(reject)?,
        )
        .await
        .map_err(reject)?;
        Ok(ResourceScope {
            req,
            team,
            pipeline,
            resource,
        })
    }
}

impl FromRequestParts<AppState> for BuildScope {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let rule = rule(parts).map_err(reject)?;
        let (req, params) = caller(parts, state).await?;
        let id =
            super::builds::build_id(param(&params, "build_id").map_err(reject)?).map_err(reject)?;
        let build = match state.rbac.access(rule) {
            Access::BuildRead => rules::build_read(state, &req, id, false).await,
            Access::BuildReadPublicJob => rules::build_read(state, &req, id, true).await,
            Access::BuildRole(role) => rules::build_role(state, &req, id, role).await,
            _ => return Err(misfit(rule, "BuildScope")),
        }
        .map_err(reject)?;
        Ok(BuildScope { req, build })
    }
}

impl FromRequestParts<AppState> for WorkerScope {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let rule = rule(parts).map_err(reject)?;
        let (req, params) = caller(parts, state).await?;
        let Access::WorkerRole(role) = state.rbac.access(rule) else {
            return Err(misfit(rule, "WorkerScope"));
        };
        let name = match params.get("worker_name") {
            Some(name) => name.clone(),
            None => match query_worker_name(parts) {
                Some(name) => name,
                // Upstream answers a missing name with 400 on the `destroying` lists and
                // 404 on the reports, after the token.
                None => {
                    rules::authenticated(&req).map_err(reject)?;
                    return Err(reject(if parts.method == axum::http::Method::GET {
                        ApiError::bad_request("missing worker_name")
                    } else {
                        ApiError::not_found()
                    }));
                }
            },
        };
        let worker = rules::worker(state, &req, &name, role)
            .await
            .map_err(reject)?;
        Ok(WorkerScope { req, worker })
    }
}

/// The query's (last, non-empty) `worker_name`.
fn query_worker_name(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "worker_name")
        .last()
        .map(|(_, v)| v.into_owned())
        .filter(|n| !n.is_empty())
}
