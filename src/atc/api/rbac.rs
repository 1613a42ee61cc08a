//! `--config-rbac`: which role an action needs, changed per action (auth.md §9.3). The file
//! maps a role to upstream action names; each named action needs that role from then on.
//! Actions are upstream's route names, tied here to our routes; an action whose access is
//! not one role on a team (admin-only, open, the reads that exposed pipelines open to
//! everyone) cannot be changed, and saying so stops the node at start.

use super::policy::{at_build, at_job, at_pipeline, at_resource, at_team, at_version};
use super::policy::{Access, RouteRule};
use crate::atc::auth::Role;
use std::collections::HashMap;

/// Upstream's action names of the routes whose required role can be changed.
#[rustfmt::skip]
const ACTIONS: &[(&str, &str, &str)] = &[
    ("GetTeam", "GET", at_team!("")),
    ("RenameTeam", "PUT", at_team!("/rename")),
    ("ListTeamBuilds", "GET", at_team!("/builds")),
    ("CreateBuild", "POST", at_team!("/builds")),
    ("CreateArtifact", "POST", at_team!("/artifacts")),
    ("GetArtifact", "GET", at_team!("/artifacts/{artifact_id}")),
    ("ListContainers", "GET", at_team!("/containers")),
    ("GetContainer", "GET", at_team!("/containers/{id}")),
    ("HijackContainer", "GET", at_team!("/containers/{id}/hijack")),
    ("ListVolumes", "GET", at_team!("/volumes")),
    ("OrderPipelines", "PUT", at_team!("/pipelines/ordering")),
    ("DeletePipeline", "DELETE", at_pipeline!("")),
    ("GetConfig", "GET", at_pipeline!("/config")),
    ("SaveConfig", "PUT", at_pipeline!("/config")),
    ("PausePipeline", "PUT", at_pipeline!("/pause")),
    ("UnpausePipeline", "PUT", at_pipeline!("/unpause")),
    ("ExposePipeline", "PUT", at_pipeline!("/expose")),
    ("HidePipeline", "PUT", at_pipeline!("/hide")),
    ("ArchivePipeline", "PUT", at_pipeline!("/archive")),
    ("RenamePipeline", "PUT", at_pipeline!("/rename")),
    ("GetVersionsDB", "GET", at_pipeline!("/versions-db")),
    ("CreatePipelineBuild", "POST", at_pipeline!("/builds")),
    ("CreateJobBuild", "POST", at_job!("/builds")),
    ("RerunJobBuild", "POST", at_job!("/builds/{build_name}")),
    ("ListJobInputs", "GET", at_job!("/inputs")),
    ("PauseJob", "PUT", at_job!("/pause")),
    ("UnpauseJob", "PUT", at_job!("/unpause")),
    ("ScheduleJob", "PUT", at_job!("/schedule")),
    ("ClearTaskCache", "DELETE", at_job!("/tasks/{step_name}/cache")),
    ("AbortBuild", "PUT", at_build!("/abort")),
    ("SetBuildComment", "PUT", at_build!("/comment")),
    ("CheckResource", "POST", at_resource!("/check")),
    ("CheckResourceType", "POST", at_pipeline!("/resource-types/{resource_type_name}/check")),
    ("CheckPrototype", "POST", at_pipeline!("/prototypes/{prototype_name}/check")),
    ("ClearResourceCache", "DELETE", at_resource!("/cache")),
    ("EnableResourceVersion", "PUT", at_version!("/enable")),
    ("DisableResourceVersion", "PUT", at_version!("/disable")),
    ("PinResourceVersion", "PUT", at_version!("/pin")),
    ("UnpinResource", "PUT", at_resource!("/unpin")),
    ("SetPinCommentOnResource", "PUT", at_resource!("/pin_comment")),
    ("LandWorker", "PUT", "/api/v1/workers/{worker_name}/land"),
    ("RetireWorker", "PUT", "/api/v1/workers/{worker_name}/retire"),
    ("PruneWorker", "PUT", "/api/v1/workers/{worker_name}/prune"),
    ("ListDestroyingContainers", "GET", "/api/v1/containers/destroying"),
    ("ReportWorkerContainers", "PUT", "/api/v1/containers/report"),
    ("ListDestroyingVolumes", "GET", "/api/v1/volumes/destroying"),
    ("ReportWorkerVolumes", "PUT", "/api/v1/volumes/report"),
];

/// Upstream actions whose access is more than a role on a team: known, not changeable.
const FIXED: &[&str] = &[
    "SetTeam",
    "DestroyTeam",
    "ListTeams",
    "GetPipeline",
    "ListPipelines",
    "ListAllPipelines",
    "ListJobs",
    "ListAllJobs",
    "GetJob",
    "ListJobBuilds",
    "GetJobBuild",
    "JobBadge",
    "MainJobBadge",
    "PipelineBadge",
    "ListPipelineBuilds",
    "ListBuilds",
    "GetBuild",
    "BuildResources",
    "GetBuildPlan",
    "BuildEvents",
    "GetBuildPreparation",
    "ListBuildArtifacts",
    "ListResources",
    "ListAllResources",
    "GetResource",
    "ListResourceTypes",
    "ListResourceVersions",
    "GetResourceVersion",
    "ListBuildsWithVersionAsInput",
    "ListBuildsWithVersionAsOutput",
    "GetCC",
    "GetInfo",
    "GetUser",
    "ListWorkers",
    "RegisterWorker",
    "HeartbeatWorker",
    "DeleteWorker",
    "CheckResourceWebHook",
    "SetWall",
    "ClearWall",
    "GetWall",
    "GetLogLevel",
    "SetLogLevel",
    "GetInfoCreds",
    "ListActiveUsersSince",
    "DownloadCLI",
];

/// The required-role changes of `--config-rbac`, by route.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rbac(HashMap<(&'static str, &'static str), Role>);

impl Rbac {
    /// Reads a `--config-rbac` file's text: `role: [Action, ...]` per line of the map.
    pub fn parse(text: &str) -> anyhow::Result<Rbac> {
        let fail = |why: String| anyhow::anyhow!("failed to customize roles: {why}");
        let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| fail(e.to_string()))?;
        let mut out = HashMap::new();
        let Some(doc) = docs.first() else {
            return Ok(Rbac(out));
        };
        let map = doc
            .as_hash()
            .ok_or_else(|| fail("expected a map of role to actions".into()))?;
        for (role, actions) in map {
            let name = role.as_str().unwrap_or_default();
            let role = Role::parse(name).ok_or_else(|| fail(format!("unknown role {name}")))?;
            let actions = actions
                .as_vec()
                .ok_or_else(|| fail(format!("role {name}: expected a list of actions")))?;
            for action in actions {
                let action = action.as_str().unwrap_or_default();
                let Some((_, method, path)) = ACTIONS.iter().find(|(a, _, _)| *a == action) else {
                    if FIXED.contains(&action) {
                        return Err(fail(format!(
                            "action {action} cannot be customized (its access is not a role on a team)"
                        )));
                    }
                    return Err(fail(format!("unknown action {action}")));
                };
                out.insert((*method, *path), role);
            }
        }
        Ok(Rbac(out))
    }

    /// The access `rule` requires, with its role changed if the file says so.
    pub fn access(&self, rule: &RouteRule) -> Access {
        let Some(role) = self.0.get(&(rule.method, rule.path)).copied() else {
            return rule.access;
        };
        match rule.access {
            Access::TeamRole(_) => Access::TeamRole(role),
            Access::Intercept(_) => Access::Intercept(role),
            Access::PipelineRole(_) => Access::PipelineRole(role),
            Access::PipelineRoleUnarchived(_) => Access::PipelineRoleUnarchived(role),
            Access::BuildRole(_) => Access::BuildRole(role),
            Access::WorkerRole(_) => Access::WorkerRole(role),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atc::api::policy::ROUTES;

    #[test]
    fn every_action_is_a_route_whose_access_is_a_role() {
        for (name, method, path) in ACTIONS {
            let rule = ROUTES
                .iter()
                .find(|r| r.method == *method && r.path == *path)
                .unwrap_or_else(|| panic!("{name}: no route {method} {path}"));
            let to = |role| Rbac(HashMap::from([((*method, *path), role)])).access(rule);
            assert_ne!(
                to(Role::Owner),
                to(Role::Viewer),
                "{name}: its role can change"
            );
        }
    }

    #[test]
    fn roles_change_per_action_and_mistakes_are_named() {
        let rbac = Rbac::parse(
            "viewer: [ListContainers, GetContainer]\nmember: [PausePipeline, UnpausePipeline]\n",
        )
        .expect("upstream's example");
        let pause = ROUTES
            .iter()
            .find(|r| r.path.ends_with("/pause") && r.path.contains("{pipeline_name}"))
            .filter(|r| !r.path.contains("jobs"))
            .expect("pause");
        assert_eq!(
            rbac.access(pause),
            Access::PipelineRoleUnarchived(Role::Member)
        );
        let hijack = ROUTES
            .iter()
            .find(|r| r.path.ends_with("/hijack"))
            .expect("hijack");
        assert_eq!(rbac.access(hijack), hijack.access, "unchanged");
        for (text, why) in [
            ("admin: [GetTeam]", "unknown role admin"),
            ("viewer: [MakeCoffee]", "unknown action MakeCoffee"),
            ("viewer: [GetPipeline]", "cannot be customized"),
            ("- viewer", "expected a map"),
            ("viewer: GetTeam", "expected a list"),
        ] {
            let e = Rbac::parse(text).expect_err(text).to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.starts_with("failed to customize roles: "), "{e}");
        }
        assert_eq!(Rbac::parse("").expect("empty"), Rbac::default());
    }
}
