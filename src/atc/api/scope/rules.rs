//! Access classes of atc-api.md §1.3, and loading of the team / pipeline / build a route
//! names. The scope extractors call these as the route's rule in `policy::ROUTES` says;
//! errors come in the order upstream checks them.

use super::super::error::{ApiError, ApiResult};
use super::super::AppState;
use crate::atc::auth::{Requester, Role};
use crate::db::{BuildRow, PipelineRow, TeamRow, WorkerRow};
use serde_json::Value;

/// `authn`: any valid token.
pub(super) fn authenticated(req: &Requester) -> ApiResult<()> {
    if req.is_authenticated() {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

/// `admin`: owner of the main team.
pub(super) fn admin(req: &Requester) -> ApiResult<()> {
    authenticated(req)?;
    if req.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The TSA (a token of its client).
pub(super) fn system(req: &Requester) -> ApiResult<()> {
    authenticated(req)?;
    if req.is_system() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// `anyteam`: a role on some team, or admin, or the system.
pub(super) fn any_team(req: &Requester) -> ApiResult<()> {
    authenticated(req)?;
    if req.is_admin() || req.is_system() || !req.member_team_ids().is_empty() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// `team`: at least `role` on the named team (or admin). Auth is checked before existence,
/// like upstream, so strangers learn nothing about which teams exist.
pub(super) fn team(req: &Requester, name: &str, role: Role) -> ApiResult<TeamRow> {
    authenticated(req)?;
    match req.team(name).cloned() {
        Some(t) if req.has_role(&t, role) => Ok(t),
        Some(_) => Err(ApiError::forbidden()),
        None if req.is_admin() => Err(ApiError::not_found()),
        None => Err(ApiError::forbidden()),
    }
}

/// `PUT /teams/:team`: an owner of the existing team (or admin); only admins create.
/// The existing team, if any.
pub(super) fn team_upsert(req: &Requester, name: &str) -> ApiResult<Option<TeamRow>> {
    authenticated(req)?;
    let existing = req.team(name).cloned();
    match &existing {
        Some(t) if req.has_role(t, Role::Owner) => Ok(existing),
        None if req.is_admin() => Ok(None),
        _ => Err(ApiError::forbidden()),
    }
}

/// Instance vars from the query (`proto::instance_vars`); malformed ones are a 400.
pub fn instance_vars(query: Option<&str>) -> ApiResult<Option<Value>> {
    let Some(query) = query else { return Ok(None) };
    let vars = crate::proto::instance_vars::from_query(query).map_err(ApiError::bad_request)?;
    Ok(vars.map(Value::Object))
}

/// A pipeline route's target: its team and the pipeline itself.
pub(super) struct Target {
    pub(super) team: TeamRow,
    pub(super) pipeline: PipelineRow,
}

async fn find_pipeline(
    state: &AppState,
    req: &Requester,
    team: &str,
    name: &str,
    query: Option<&str>,
) -> ApiResult<Option<Target>> {
    let vars = instance_vars(query)?;
    let Some(team_row) = req.team(team).cloned() else {
        return Ok(None);
    };
    let pipeline = state.store.pipeline(team, name, vars.as_ref()).await?;
    Ok(pipeline.map(|pipeline| Target {
        team: team_row,
        pipeline,
    }))
}

/// `pipe`: the pipeline is public, or the requester holds `role` on its team.
/// Unknown team or pipeline → 404 first.
pub(super) async fn pipeline_read(
    state: &AppState,
    req: &Requester,
    team: &str,
    name: &str,
    query: Option<&str>,
) -> ApiResult<Target> {
    let target = find_pipeline(state, req, team, name, query)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if target.pipeline.public || req.has_role(&target.team, Role::Viewer) {
        return Ok(target);
    }
    authenticated(req)?;
    Err(ApiError::forbidden())
}

/// Upstream's reject-archived wrapper: writes to an archived pipeline answer 409 before
/// the auth check (atc-api.md §1.3). An unknown pipeline passes on to the handler's own
/// checks, so strangers still get 401/403 rather than 404.
async fn reject_archived(
    state: &AppState,
    team: &str,
    name: &str,
    query: Option<&str>,
) -> ApiResult<()> {
    let vars = instance_vars(query)?;
    match state.store.pipeline(team, name, vars.as_ref()).await? {
        Some(p) if p.archived => Err(ApiError::archived()),
        _ => Ok(()),
    }
}

/// [`pipeline_write`] for the routes upstream refuses on archived pipelines: the 409
/// comes first, then the role, then the pipeline must exist.
pub(super) async fn pipeline_write_unarchived(
    state: &AppState,
    req: &Requester,
    team_name: &str,
    name: &str,
    query: Option<&str>,
    role: Role,
) -> ApiResult<Target> {
    reject_archived(state, team_name, name, query).await?;
    let t = pipeline_write(state, req, team_name, name, query, role).await?;
    // Archived in between: still refuse.
    if t.pipeline.archived {
        return Err(ApiError::archived());
    }
    Ok(t)
}

/// `team` access on a pipeline route: the role first, then the pipeline must exist.
pub(super) async fn pipeline_write(
    state: &AppState,
    req: &Requester,
    team_name: &str,
    name: &str,
    query: Option<&str>,
    role: Role,
) -> ApiResult<Target> {
    let team_row = team(req, team_name, role)?;
    let vars = instance_vars(query)?;
    let pipeline = state
        .store
        .pipeline(team_name, name, vars.as_ref())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Target {
        team: team_row,
        pipeline,
    })
}

/// `worker` access: the worker exists (404), and the requester is the system, an admin or
/// holds `role` on the worker's team (global workers: system and admins only).
pub(super) async fn worker(
    state: &AppState,
    req: &Requester,
    name: &str,
    role: Role,
) -> ApiResult<WorkerRow> {
    authenticated(req)?;
    let row = state
        .store
        .worker(name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if req.is_system() || req.is_admin() {
        return Ok(row);
    }
    let member = row.team_id.is_some_and(|id| {
        req.teams()
            .iter()
            .any(|t| t.id == id && req.has_role(t, role))
    });
    if member {
        Ok(row)
    } else {
        Err(ApiError::forbidden())
    }
}

/// A job of the pipeline by name; 404 when the pipeline has no such (active) job.
pub(super) async fn job(
    state: &AppState,
    pipeline_id: i64,
    name: &str,
) -> ApiResult<crate::db::JobRow> {
    state
        .store
        .job(pipeline_id, name)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// An active resource of the pipeline by name; 404 when there is none.
pub(super) async fn resource(
    state: &AppState,
    pipeline_id: i64,
    name: &str,
) -> ApiResult<crate::db::ResourceRow> {
    state
        .store
        .resource(pipeline_id, name)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// `build-r` (`public_job_only` false) and `build-rj` (true): a viewer of the build's team,
/// or a build of a public pipeline (for `build-rj`, of a job that is `public: true`).
pub(super) async fn build_read(
    state: &AppState,
    req: &Requester,
    id: i64,
    public_job_only: bool,
) -> ApiResult<BuildRow> {
    let b = state
        .store
        .build(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if let Some(team) = req.teams().iter().find(|t| t.id == b.team_id) {
        if req.has_role(team, Role::Viewer) {
            return Ok(b);
        }
    }
    if let Some(pid) = b.pipeline_id {
        let public_pipeline = state
            .store
            .pipeline_by_id(pid)
            .await?
            .is_some_and(|p| p.public);
        let public_job =
            match (public_job_only, b.job_id) {
                (false, _) => true,
                (true, Some(_)) => match state.store.pipeline_by_id(pid).await? {
                    Some(p) => state.store.job(p.id, &b.job_name).await?.is_some_and(|j| {
                        j.config.get("public").and_then(Value::as_bool) == Some(true)
                    }),
                    None => false,
                },
                (true, None) => false,
            };
        if public_pipeline && public_job {
            return Ok(b);
        }
    }
    authenticated(req)?;
    Err(ApiError::forbidden())
}

/// `build-w`: at least `role` on the build's team. Auth before existence.
pub(super) async fn build_role(
    state: &AppState,
    req: &Requester,
    id: i64,
    role: Role,
) -> ApiResult<BuildRow> {
    authenticated(req)?;
    let b = state
        .store
        .build(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let team = req
        .teams()
        .iter()
        .find(|t| t.id == b.team_id)
        .ok_or_else(ApiError::forbidden)?;
    if !req.has_role(team, role) {
        return Err(ApiError::forbidden());
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instance_vars_merge_object_and_dotted_forms() {
        let q = "vars=%7B%22a%22%3A1%7D&vars.b.c=%22x%22";
        assert_eq!(
            instance_vars(Some(q)).expect("parses"),
            Some(json!({"a": 1, "b": {"c": "x"}}))
        );
        assert_eq!(instance_vars(Some("limit=3")).expect("parses"), None);
        assert_eq!(instance_vars(None).expect("parses"), None);
    }

    #[test]
    fn malformed_instance_vars_are_a_bad_request() {
        for q in ["vars=nope", "vars=%5B1%5D", "vars.a=%7B"] {
            match instance_vars(Some(q)) {
                Err(ApiError::Status(s, _)) => assert_eq!(s, axum::http::StatusCode::BAD_REQUEST),
                other => panic!("{q}: expected 400, got {other:?}"),
            }
        }
    }
}
