//! Properties the engine puts on every container and volume it creates. The ATC keeps no
//! container or volume tables: the API lists them live from the workers and filters on
//! these properties (Garden `list` and Baggageclaim `list_volumes` match property subsets).

use crate::db::BuildRow;
use crate::proto::garden::Properties;

pub const TEAM_ID: &str = "concourse:team-id";
pub const TYPE: &str = "concourse:type";
pub use crate::proto::garden::BUILD_ID;
pub const BUILD_NAME: &str = "concourse:build-name";
pub const PIPELINE_ID: &str = "concourse:pipeline-id";
pub const PIPELINE_NAME: &str = "concourse:pipeline-name";
/// The pipeline's instance vars as JSON (absent for a plain pipeline).
pub const PIPELINE_VARS: &str = "concourse:pipeline-instance-vars";
pub const JOB_ID: &str = "concourse:job-id";
pub const JOB_NAME: &str = "concourse:job-name";
pub const STEP_NAME: &str = "concourse:step-name";
pub const ATTEMPT: &str = "concourse:attempt";
pub const RESOURCE_NAME: &str = "concourse:resource-name";
/// The type a resource container runs (set by the resource code, not here).
pub const RESOURCE_TYPE: &str = "concourse:resource-type";
/// The pipeline resource type a check container checks.
pub const RESOURCE_TYPE_NAME: &str = "concourse:resource-type-name";
pub const USER: &str = "concourse:user";
pub const WORKING_DIRECTORY: &str = "concourse:working-directory";
/// On a volume: the container it is mounted in, and where.
pub const CONTAINER: &str = "concourse:container";
pub const PATH: &str = "concourse:path";
/// On an uploaded artifact volume (`fly execute` inputs).
pub const ARTIFACT: &str = "concourse:artifact";
/// On a resource cache volume: the fetched version (JSON).
pub const VERSION: &str = "concourse:version";
/// On a get's call and the resource cache it makes: the pipeline resource (or custom
/// resource type) the cache belongs to, so `DELETE R/cache` and `RT/cache` find it.
pub const CACHE_RESOURCE: &str = "concourse:cache-resource";
pub const CACHE_RESOURCE_TYPE: &str = "concourse:cache-resource-type";

/// On a kept check container: what it checks (its reuse key: the team's resource config),
/// that resource config (`resource::config_key`), and when it expires (Unix seconds)
/// unless used again.
pub const CHECK_KEY: &str = "concourse:check-key";
pub const CHECK_CONFIG: &str = "concourse:check-config";
pub const EXPIRES: &str = "concourse:expires";
/// How long an unused check container is kept.
const CHECK_CONTAINER_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The `EXPIRES` of a check container used now.
pub fn check_container_expires() -> i64 {
    crate::clock::now() + CHECK_CONTAINER_TTL.as_secs() as i64
}

/// A container's `EXPIRES` (Unix seconds), when it has a readable one.
pub fn expires_of(properties: &crate::proto::garden::Properties) -> Option<i64> {
    properties.get(EXPIRES)?.parse().ok()
}

/// On a container that fetches an image (a task's or a custom type's): not one of the
/// step's own, so it is removed once the image is there.
pub const IMAGE_FETCH: &str = "concourse:image-fetch";

/// `labels` marked as an image fetch.
pub fn image_fetch(mut labels: Properties) -> Properties {
    labels.insert(IMAGE_FETCH.to_string(), "true".to_string());
    labels
}

/// What a container runs, besides the build it belongs to.
#[derive(Debug, Clone, Default)]
pub struct Step<'a> {
    /// `get`, `put`, `task`, `check` or `run`.
    pub type_: &'a str,
    pub name: &'a str,
    pub attempt: &'a str,
    /// The resource a check container checks.
    pub resource: &'a str,
    /// The resource type a check container checks.
    pub resource_type: &'a str,
}

/// The labels of a container created by `row` for `step`. User and working directory are
/// added where the process is known ([`with_process`]).
pub fn container(row: &BuildRow, step: &Step) -> Properties {
    let mut p = Properties::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            p.insert(k.to_string(), v);
        }
    };
    put(TEAM_ID, row.team_id.to_string());
    put(TYPE, step.type_.to_string());
    // Periodic checks run with a build row of id 0: they belong to no build.
    if row.id > 0 {
        put(BUILD_ID, row.id.to_string());
        put(BUILD_NAME, row.name.clone());
    }
    if let Some(id) = row.pipeline_id {
        put(PIPELINE_ID, id.to_string());
        put(PIPELINE_NAME, row.pipeline_name.clone());
        if let Some(vars) = row.pipeline_instance_vars.as_ref().filter(|v| !v.is_null()) {
            put(PIPELINE_VARS, vars.to_string());
        }
    }
    // A check container is the resource's, not the job's.
    if step.type_ != "check" {
        if let Some(id) = row.job_id {
            put(JOB_ID, id.to_string());
            put(JOB_NAME, row.job_name.clone());
        }
        put(STEP_NAME, step.name.to_string());
    }
    put(ATTEMPT, step.attempt.to_string());
    put(RESOURCE_NAME, step.resource.to_string());
    put(RESOURCE_TYPE_NAME, step.resource_type.to_string());
    p
}

/// Adds the process's user and working directory (what `fly intercept` starts its shell as).
pub fn with_process(mut p: Properties, user: &str, dir: &str) -> Properties {
    if !user.is_empty() {
        p.insert(USER.into(), user.into());
    }
    if !dir.is_empty() {
        p.insert(WORKING_DIRECTORY.into(), dir.into());
    }
    p
}

/// The labels every volume of a build carries: its team (the API lists volumes by team).
pub fn volume(team_id: i64) -> Properties {
    Properties::from([(TEAM_ID.to_string(), team_id.to_string())])
}

/// Labels a build's volumes with the container they are mounted in: `(volume handle,
/// mount path)` pairs. Best effort: a label that fails only leaves `fly volumes` vaguer.
pub async fn mounted_in(
    w: &super::runtime::WorkerClient,
    container: &str,
    mounts: &[(String, String)],
) {
    for (handle, path) in mounts {
        let _ = w.bc.set_property(handle, CONTAINER, container).await;
        let _ = w.bc.set_property(handle, PATH, path).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> BuildRow {
        BuildRow {
            id: 7,
            team_id: 2,
            team_name: "main".into(),
            name: "3".into(),
            job_id: Some(4),
            job_name: "j".into(),
            pipeline_id: Some(5),
            pipeline_name: "p".into(),
            pipeline_instance_vars: Some(json!({"b": "x"})),
            status: crate::db::BuildStatus::Started,
            resource_name: String::new(),
            plan: None,
            created_by: String::new(),
            comment: String::new(),
            create_time: 0,
            start_time: 0,
            end_time: 0,
            rerun_of: None,
            rerun_number: 0,
            reap_time: 0,
        }
    }

    #[test]
    fn step_containers_carry_the_build_and_job() {
        let p = container(
            &row(),
            &Step {
                type_: "task",
                name: "t",
                ..Default::default()
            },
        );
        assert_eq!(p[TEAM_ID], "2");
        assert_eq!(p[BUILD_ID], "7");
        assert_eq!(p[BUILD_NAME], "3");
        assert_eq!(p[JOB_NAME], "j");
        assert_eq!(p[STEP_NAME], "t");
        assert_eq!(p[PIPELINE_VARS], r#"{"b":"x"}"#);
        assert!(!p.contains_key(ATTEMPT));
    }

    #[test]
    fn check_containers_belong_to_the_resource() {
        let mut r = row();
        r.id = 0;
        let p = container(
            &r,
            &Step {
                type_: "check",
                name: "res",
                resource: "res",
                ..Default::default()
            },
        );
        assert_eq!(p[RESOURCE_NAME], "res");
        assert!(!p.contains_key(JOB_ID));
        assert!(!p.contains_key(BUILD_ID));
        assert!(!p.contains_key(STEP_NAME));
    }
}
