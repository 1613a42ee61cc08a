//! Who may call which route: one table, [`ROUTES`], read by the router (every route it
//! registers must have a rule, and every rule a route), by the scope extractors (which
//! enforce the matched route's rule) and by the route-matrix test (tests/authz.rs).
//! The classes are atc-api.md §1.3's, as upstream's accessor applies them.

use super::AppState;
use crate::atc::auth::Role;
use axum::handler::Handler;
use axum::routing::MethodFilter;
use axum::{Extension, Router};
use Access::*;
use Role::{Member, Owner, PipelineOperator as Operator, Viewer};

/// What a route requires of its caller. Unless a class says otherwise, an anonymous
/// caller gets 401 and an authenticated one without the role 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Open,
    /// Anyone; the answer holds only what the caller may see (lists, the dashboard,
    /// cc.xml), so there is nothing to refuse up front.
    Visible,
    /// `authn`: any valid token.
    Authenticated,
    /// `anyteam`: a role on some team (or admin, or the system).
    AnyTeam,
    /// The TSA registering and heartbeating workers.
    System,
    /// An owner of the admin team `main`.
    Admin,
    /// `team`: at least the role on the path's team (or admin). The role is checked
    /// before the team's existence, and only admins learn of a 404.
    TeamRole(Role),
    /// `PUT /teams/:team`: owners replace their own team's auth; only admins create teams.
    TeamUpsert,
    /// Intercepting a container: the request must come from our own origin (403 first),
    /// then as `TeamRole`.
    Intercept(Role),
    /// `pipe`: an exposed pipeline, or a viewer of its team. Unknown team or pipeline →
    /// 404 before the access check.
    PipelineRead,
    /// `team` on a pipeline route: the role first, then the pipeline must exist.
    PipelineRole(Role),
    /// As `PipelineRole`, but an archived pipeline answers 409 before the role check
    /// (upstream's reject-archived wrapper).
    PipelineRoleUnarchived(Role),
    /// `build-r`: a viewer of the build's team, or any build of an exposed pipeline.
    BuildRead,
    /// `build-rj`: as `BuildRead`, but outsiders also need the build's job to be
    /// `public: true` (events, plan, artifacts and the like; never check or one-off builds).
    BuildReadPublicJob,
    /// `build-w`: the role on the build's team.
    BuildRole(Role),
    /// `worker`: the system, an admin, or the role on a team worker's team. The worker is
    /// named in the path, or in the query's `worker_name`.
    WorkerRole(Role),
    /// No login: the resource's `webhook_token` in the query (401 when it does not match).
    WebhookToken,
}

/// One route and the access it requires.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteRule {
    pub method: &'static str,
    /// The route template as registered with axum (`{param}` placeholders).
    pub path: &'static str,
    pub access: Access,
}

macro_rules! at_team {
    ($rest:literal) => {
        concat!("/api/v1/teams/{team_name}", $rest)
    };
}
macro_rules! at_pipeline {
    ($rest:literal) => {
        concat!("/api/v1/teams/{team_name}/pipelines/{pipeline_name}", $rest)
    };
}
macro_rules! at_job {
    ($rest:literal) => {
        concat!(
            "/api/v1/teams/{team_name}/pipelines/{pipeline_name}/jobs/{job_name}",
            $rest
        )
    };
}
macro_rules! at_resource {
    ($rest:literal) => {
        concat!(
            "/api/v1/teams/{team_name}/pipelines/{pipeline_name}/resources/{resource_name}",
            $rest
        )
    };
}
macro_rules! at_version {
    ($rest:literal) => {
        concat!(
            "/api/v1/teams/{team_name}/pipelines/{pipeline_name}/resources/{resource_name}/versions/{version_id}",
            $rest
        )
    };
}
macro_rules! at_build {
    ($rest:literal) => {
        concat!("/api/v1/builds/{build_id}", $rest)
    };
}
pub(crate) use {at_build, at_job, at_pipeline, at_resource, at_team, at_version};

const fn rule(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
    }
}

/// Every route of the API (and of the login endpoints beside it) with its access.
#[rustfmt::skip]
pub const ROUTES: &[RouteRule] = &[
    // info, user, wall, log level, users, creds, cli
    rule("GET", "/api/v1/info", Open),
    rule("GET", "/api/v1/user", Authenticated),
    rule("GET", "/api/v1/wall", Open),
    rule("PUT", "/api/v1/wall", Admin),
    rule("DELETE", "/api/v1/wall", Admin),
    rule("GET", "/api/v1/log-level", Admin),
    rule("PUT", "/api/v1/log-level", Admin),
    rule("GET", "/api/v1/info/creds", Admin),
    rule("GET", "/api/v1/users", Admin),
    rule("GET", "/api/v1/cli", Open),
    // workers and what they report
    rule("GET", "/api/v1/workers", AnyTeam),
    rule("POST", "/api/v1/workers", System),
    rule("DELETE", "/api/v1/workers/{worker_name}", System),
    rule("PUT", "/api/v1/workers/{worker_name}/heartbeat", System),
    rule("PUT", "/api/v1/workers/{worker_name}/land", WorkerRole(Member)),
    rule("PUT", "/api/v1/workers/{worker_name}/retire", WorkerRole(Member)),
    rule("PUT", "/api/v1/workers/{worker_name}/prune", WorkerRole(Member)),
    rule("GET", "/api/v1/containers/destroying", WorkerRole(Viewer)),
    rule("PUT", "/api/v1/containers/report", WorkerRole(Member)),
    rule("GET", "/api/v1/volumes/destroying", WorkerRole(Viewer)),
    rule("PUT", "/api/v1/volumes/report", WorkerRole(Member)),
    // teams
    rule("GET", "/api/v1/teams", Visible),
    rule("GET", at_team!(""), TeamRole(Viewer)),
    rule("PUT", at_team!(""), TeamUpsert),
    rule("DELETE", at_team!(""), Admin),
    rule("PUT", at_team!("/rename"), TeamRole(Owner)),
    rule("GET", at_team!("/cc.xml"), Visible),
    rule("GET", at_team!("/builds"), TeamRole(Viewer)),
    rule("POST", at_team!("/builds"), TeamRole(Member)),
    rule("POST", at_team!("/artifacts"), TeamRole(Member)),
    rule("GET", at_team!("/artifacts/{artifact_id}"), TeamRole(Member)),
    rule("GET", at_team!("/containers"), TeamRole(Viewer)),
    rule("GET", at_team!("/containers/{id}"), TeamRole(Viewer)),
    rule("GET", at_team!("/containers/{id}/hijack"), Intercept(Member)),
    rule("GET", at_team!("/volumes"), TeamRole(Viewer)),
    // pipelines and their config
    rule("GET", "/api/v1/pipelines", Visible),
    rule("GET", at_team!("/pipelines"), Visible),
    rule("PUT", at_team!("/pipelines/ordering"), TeamRole(Member)),
    rule("GET", at_pipeline!(""), PipelineRead),
    rule("DELETE", at_pipeline!(""), PipelineRole(Member)),
    rule("GET", at_pipeline!("/config"), PipelineRole(Viewer)),
    // Saving may create the pipeline: the team's role is all there is to check.
    rule("PUT", at_pipeline!("/config"), TeamRole(Member)),
    rule("PUT", at_pipeline!("/pause"), PipelineRoleUnarchived(Operator)),
    rule("PUT", at_pipeline!("/unpause"), PipelineRoleUnarchived(Operator)),
    rule("PUT", at_pipeline!("/expose"), PipelineRole(Member)),
    rule("PUT", at_pipeline!("/hide"), PipelineRole(Member)),
    rule("PUT", at_pipeline!("/archive"), PipelineRole(Member)),
    // Renaming answers 404 for an unknown pipeline after the team's role.
    rule("PUT", at_pipeline!("/rename"), TeamRole(Member)),
    rule("PUT", at_pipeline!("/ordering"), TeamRole(Member)),
    rule("GET", at_pipeline!("/graph"), PipelineRead),
    rule("GET", at_pipeline!("/badge"), PipelineRead),
    rule("GET", at_pipeline!("/versions-db"), PipelineRole(Viewer)),
    rule("GET", at_pipeline!("/builds"), PipelineRead),
    // A one-off build of an archived pipeline is refused (409) after the role check.
    rule("POST", at_pipeline!("/builds"), PipelineRole(Member)),
    // jobs
    rule("GET", "/api/v1/jobs", Visible),
    rule("GET", "/api/v1/dashboard", Visible),
    rule("GET", at_pipeline!("/jobs"), PipelineRead),
    rule("GET", at_job!(""), PipelineRead),
    rule("GET", at_job!("/badge"), PipelineRead),
    // The pre-teams badge address: a redirect to team main's.
    rule("GET", "/api/v1/pipelines/{pipeline_name}/jobs/{job_name}/badge", Open),
    rule("GET", at_job!("/builds"), PipelineRead),
    rule("POST", at_job!("/builds"), PipelineRoleUnarchived(Operator)),
    rule("GET", at_job!("/builds/{build_name}"), PipelineRead),
    rule("POST", at_job!("/builds/{build_name}"), PipelineRoleUnarchived(Operator)),
    rule("GET", at_job!("/inputs"), PipelineRole(Viewer)),
    rule("PUT", at_job!("/pause"), PipelineRole(Operator)),
    rule("PUT", at_job!("/unpause"), PipelineRole(Operator)),
    rule("PUT", at_job!("/schedule"), PipelineRoleUnarchived(Operator)),
    rule("DELETE", at_job!("/tasks/{step_name}/cache"), PipelineRole(Operator)),
    // builds
    rule("GET", "/api/v1/builds", Visible),
    rule("GET", at_build!(""), BuildRead),
    rule("GET", at_build!("/resources"), BuildRead),
    rule("GET", at_build!("/plan"), BuildReadPublicJob),
    rule("GET", at_build!("/events"), BuildReadPublicJob),
    rule("GET", at_build!("/preparation"), BuildReadPublicJob),
    rule("GET", at_build!("/artifacts"), BuildReadPublicJob),
    rule("GET", at_build!("/log"), BuildReadPublicJob),
    rule("PUT", at_build!("/abort"), BuildRole(Operator)),
    rule("PUT", at_build!("/comment"), BuildRole(Operator)),
    // resources, resource types, checks, caches
    rule("GET", "/api/v1/resources", Visible),
    rule("GET", at_pipeline!("/resources"), PipelineRead),
    rule("GET", at_resource!(""), PipelineRead),
    rule("GET", at_pipeline!("/resource-types"), PipelineRead),
    rule("POST", at_resource!("/check"), PipelineRoleUnarchived(Operator)),
    rule("POST", at_resource!("/check/webhook"), WebhookToken),
    rule("POST", at_pipeline!("/resource-types/{resource_type_name}/check"), PipelineRoleUnarchived(Operator)),
    rule("POST", at_pipeline!("/prototypes/{prototype_name}/check"), PipelineRoleUnarchived(Operator)),
    rule("DELETE", at_resource!("/cache"), PipelineRole(Operator)),
    rule("DELETE", at_pipeline!("/resource-types/{resource_type_name}/cache"), PipelineRole(Operator)),
    // versions and causality
    rule("GET", at_resource!("/versions"), PipelineRead),
    rule("GET", at_version!(""), PipelineRead),
    rule("PUT", at_version!("/enable"), PipelineRoleUnarchived(Operator)),
    rule("PUT", at_version!("/disable"), PipelineRoleUnarchived(Operator)),
    rule("PUT", at_version!("/pin"), PipelineRoleUnarchived(Operator)),
    rule("PUT", at_resource!("/unpin"), PipelineRoleUnarchived(Operator)),
    rule("PUT", at_resource!("/pin_comment"), PipelineRoleUnarchived(Operator)),
    rule("GET", at_version!("/input_to"), PipelineRead),
    rule("GET", at_version!("/output_of"), PipelineRead),
    // Then 403 for everyone while `--enable-resource-causality` is off.
    rule("GET", at_version!("/upstream"), PipelineRead),
    rule("GET", at_version!("/downstream"), PipelineRead),
    rule("GET", at_version!("/causality"), PipelineRead),
    // login and token endpoints: the credentials are in the request itself
    rule("POST", "/sky/issuer/token", Open),
    rule("GET", "/sky/logout", Open),
    rule("GET", "/sky/login", Open),
    rule("POST", "/sky/login", Open),
    rule("GET", "/sky/issuer/auth", Open),
    rule("GET", "/sky/issuer/auth/{connector}", Open),
    rule("GET", "/sky/issuer/auth/{connector}/login", Open),
    rule("POST", "/sky/issuer/auth/{connector}/login", Open),
    rule("GET", "/sky/callback", Open),
    rule("GET", "/sky/issuer/callback", Open),
    rule("GET", "/.well-known/openid-configuration", Open),
    rule("GET", "/.well-known/jwks.json", Open),
    rule("GET", "/login", Open),
    rule("GET", "/logout", Open),
];

/// The rule of a route, by method and template.
pub fn lookup(method: &str, path: &str) -> Option<&'static RouteRule> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Registers routes only together with their rule, which it attaches to the route for
/// the scope extractors; [`Routes::finish`] insists every rule got its route.
pub struct Routes {
    router: Router<AppState>,
    added: Vec<&'static RouteRule>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            added: Vec::new(),
        }
    }
}

impl Routes {
    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("GET", path, h)
    }
    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("PUT", path, h)
    }
    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("POST", path, h)
    }
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("DELETE", path, h)
    }

    fn on<H: Handler<T, AppState>, T: 'static>(mut self, method: &str, path: &str, h: H) -> Self {
        let Some(rule) = lookup(method, path) else {
            panic!("route {method} {path} has no rule in policy::ROUTES");
        };
        let filter = match method {
            "GET" => MethodFilter::GET,
            "PUT" => MethodFilter::PUT,
            "POST" => MethodFilter::POST,
            _ => MethodFilter::DELETE,
        };
        let route = axum::routing::on(filter, h).route_layer(Extension(rule));
        self.router = self.router.route(path, route);
        self.added.push(rule);
        self
    }

    /// The routes of every builder, merged; panics when a rule has no route.
    pub fn finish<const N: usize>(parts: [Routes; N]) -> [Router<AppState>; N] {
        let added: Vec<&RouteRule> = parts.iter().flat_map(|p| p.added.clone()).collect();
        let missing: Vec<String> = ROUTES
            .iter()
            .filter(|r| !added.contains(r))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            missing.is_empty(),
            "policy::ROUTES has rules without a route: {missing:?}"
        );
        parts.map(|p| p.router)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_has_one_rule() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} has two rules",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn the_router_and_the_table_agree() {
        // Building the routes panics on a route without a rule or a rule without a route.
        let _ = super::super::routes();
    }
}
