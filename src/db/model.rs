//! Rows the store hands out and takes in. Plain data; API shapes live in `proto::api`.

use serde_json::Value;

pub use crate::proto::api::TeamAuth;
pub use crate::proto::worker::{Worker, WorkerState};

#[derive(Debug, Clone, PartialEq)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub auth: TeamAuth,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserLogin {
    pub username: String,
    pub connector: String,
    pub sub: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub connector: String,
    pub sub: String,
    pub last_login: i64,
}

/// One job of a config being saved. Jobs are matched to existing rows by `name`, then by
/// `old_name` (a rename keeps the id, history and build numbers).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobConfigRow {
    pub name: String,
    pub old_name: Option<String>,
    /// The job's config as JSON.
    pub config: Value,
}

/// One resource of a config being saved, matched like [`JobConfigRow`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceConfigRow {
    pub name: String,
    pub old_name: Option<String>,
    pub type_: String,
    pub config: Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavePipeline {
    pub team_id: i64,
    pub name: String,
    /// None for a non-instanced pipeline.
    pub instance_vars: Option<Value>,
    /// The whole config as JSON (what `GET .../config` returns).
    pub config: Value,
    /// Required for an existing pipeline; ignored when creating.
    pub expected_version: i64,
    pub jobs: Vec<JobConfigRow>,
    pub resources: Vec<ResourceConfigRow>,
    /// Group names each job belongs to are derived by the caller into `JobRow::groups`.
    pub job_groups: Vec<(String, Vec<String>)>,
    /// Pipelines made through the API start paused; those made by a set_pipeline step do not.
    pub paused_on_create: bool,
    pub parent_job_id: i64,
    pub parent_build_id: i64,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SavedPipeline {
    pub pipeline: PipelineRow,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineRow {
    pub id: i64,
    pub team_id: i64,
    pub team_name: String,
    pub name: String,
    pub instance_vars: Option<Value>,
    pub paused: bool,
    pub paused_by: String,
    pub paused_at: i64,
    pub public: bool,
    pub archived: bool,
    pub ordering: i64,
    pub config_version: i64,
    /// Groups and display, as stored in the config (empty when archived).
    pub groups: Value,
    pub display: Value,
    pub user_data: Value,
    pub parent_job_id: i64,
    pub parent_build_id: i64,
    pub last_updated: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobRow {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    pub config: Value,
    pub paused: bool,
    pub paused_by: String,
    pub paused_at: i64,
    pub has_new_inputs: bool,
    pub groups: Vec<String>,
    pub first_logged_build_id: i64,
    pub next_build_id: Option<i64>,
    pub finished_build_id: Option<i64>,
    pub transition_build_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceRow {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    pub type_: String,
    pub config: Value,
    pub last_checked: i64,
    pub pinned_version: Option<Value>,
    pub pin_comment: String,
    /// The resource config scope holding its versions (None until first checked).
    pub scope_id: Option<i64>,
    /// The last manual check build.
    pub check_build_id: Option<i64>,
    /// Whether the last check failed.
    pub check_failed: bool,
}

/// Build statuses, with upstream's names on the wire and in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildStatus {
    Pending,
    Started,
    Succeeded,
    Failed,
    Errored,
    Aborted,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Started => "started",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Errored => "errored",
            BuildStatus::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => BuildStatus::Pending,
            "started" => BuildStatus::Started,
            "succeeded" => BuildStatus::Succeeded,
            "failed" => BuildStatus::Failed,
            "errored" => BuildStatus::Errored,
            "aborted" => BuildStatus::Aborted,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, BuildStatus::Pending | BuildStatus::Started)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewBuild {
    pub team_id: i64,
    /// Job builds get the job's next build number as name; one-off builds the next value
    /// of a global one-off counter.
    pub job_id: Option<i64>,
    pub pipeline_id: Option<i64>,
    pub created_by: String,
    pub plan: Option<Value>,
    pub at: i64,
    /// A check build of this resource (named like one-off builds).
    pub resource_id: Option<i64>,
}

/// How a pending build starts: with its plan, owned by the node that runs it (`holder`,
/// until `expires`, then renewed by it or adopted by another).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildStart {
    pub at: i64,
    pub plan: Value,
    pub holder: String,
    pub expires: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildRow {
    pub id: i64,
    pub team_id: i64,
    pub team_name: String,
    pub name: String,
    pub status: BuildStatus,
    pub job_id: Option<i64>,
    pub job_name: String,
    pub pipeline_id: Option<i64>,
    pub pipeline_name: String,
    pub pipeline_instance_vars: Option<Value>,
    pub resource_name: String,
    pub plan: Option<Value>,
    pub created_by: String,
    pub comment: String,
    pub create_time: i64,
    pub start_time: i64,
    pub end_time: i64,
    pub rerun_of: Option<i64>,
    pub rerun_number: i64,
    /// When its log was reaped (0: kept).
    pub reap_time: i64,
}

/// Pagination of builds/versions (atc-api.md §1.4): ids unless `timestamps`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
    pub timestamps: bool,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    /// The payload as registered, with `state` filled in from the row and the latest
    /// `active_containers`/`active_volumes` (the API's Worker JSON).
    pub worker: Worker,
    /// None for a global worker.
    pub team_id: Option<i64>,
    pub state: WorkerState,
    /// Unix seconds after which the worker counts as unresponsive; 0 = never.
    pub expires_at: i64,
}

impl WorkerRow {
    pub fn name(&self) -> &str {
        &self.worker.name
    }
}

/// Whose builds a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildsOf {
    Job(i64),
    Pipeline(i64),
    Team(i64),
    /// Every build, ordered by id alone.
    All,
}

/// One page of builds with its neighbours (the `Link` header's `next`/`previous`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildsPage {
    /// Newest first.
    pub builds: Vec<BuildRow>,
    /// The older page: `to` = the id of the next-older build, same limit.
    pub older: Option<Page>,
    /// The newer page: `from` = the id of the next-newer build, same limit.
    pub newer: Option<Page>,
}

/// A version reported by a check (or a put), with its metadata (`[{name,value}]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewVersion {
    pub version: Value,
    pub metadata: Value,
}

/// A saved version of a resource config scope.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub id: i64,
    pub scope_id: i64,
    pub version: Value,
    /// `[{"name":..,"value":..}]`.
    pub metadata: Value,
    pub enabled: bool,
    pub check_order: i64,
}

/// One input of a build: the version it used of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInputRow {
    pub name: String,
    pub resource_id: i64,
    pub version: Value,
    /// True when no earlier build of the job used this version of the resource.
    pub first_occurrence: bool,
}

/// One output of a build: a version a put produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutputRow {
    pub name: String,
    pub resource_id: i64,
    pub version: Value,
    pub metadata: Value,
}

/// A pipeline's versions and successful job builds, as the resolver needs them. Version
/// ids are `resource_config_versions.id` of each resource's current scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchedulingSnapshot {
    /// (resource id, version id) of every enabled version of each active resource's
    /// current scope, oldest (lowest check_order) first.
    pub versions: Vec<(i64, i64)>,
    /// Successful builds of the pipeline's jobs, oldest first.
    pub successful_builds: Vec<SuccessfulBuild>,
    /// For each job: the versions its builds (any status) used as inputs, per resource,
    /// as (job id, resource id, version id), so `version: every` knows what was used.
    pub used_versions: Vec<(i64, i64, i64)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SuccessfulBuild {
    pub job_id: i64,
    pub build_id: i64,
    /// (resource id, version id); inputs/outputs whose version is not in the resource's
    /// current scope are left out.
    pub inputs: Vec<(i64, i64)>,
    pub outputs: Vec<(i64, i64)>,
}
