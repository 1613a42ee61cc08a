//! JSON shapes of the ATC HTTP API (shared/spec/atc-api.md §2), with upstream's field
//! names and `omitempty` rules so upstream fly and the web UI decode them unchanged.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The upstream release whose API we speak. Released fly binaries refuse to talk to a
/// server whose major.minor differs from their own, so this must be a real release.
pub const API_VERSION: &str = "8.2.5";
/// Worker protocol version advertised in `/api/v1/info`.
pub const WORKER_VERSION: &str = "3.0";

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct FeatureFlags {
    pub global_resources: bool,
    pub build_rerun: bool,
    pub cache_streamed_volumes: bool,
    pub resource_causality: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Info {
    pub version: String,
    pub worker_version: String,
    #[serde(default)]
    pub feature_flags: FeatureFlags,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Our own build version; upstream clients ignore unknown fields.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub concourse_rs_version: String,
}

/// Role name → who holds it (`{"users": [...], "groups": [...]}`).
pub type TeamAuth = BTreeMap<String, RoleAuth>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RoleAuth {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Team {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<TeamAuth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct UserInfo {
    pub sub: String,
    pub name: String,
    pub user_id: String,
    pub user_name: String,
    pub email: String,
    pub is_admin: bool,
    pub is_system: bool,
    pub teams: BTreeMap<String, Vec<String>>,
    pub connector: String,
    pub display_user_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GroupConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct DisplayConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub background_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub background_filter: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Pipeline {
    pub id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_vars: Option<Value>,
    pub paused: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub paused_by: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paused_at: i64,
    pub public: bool,
    pub archived: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupConfig>,
    pub team_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<DisplayConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Value>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parent_build_id: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parent_job_id: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_updated: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RerunOf {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Build {
    pub id: i64,
    pub team_name: String,
    pub name: String,
    pub status: String,
    pub api_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pipeline_id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pipeline_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reap_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rerun_number: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<RerunOf>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct JobInput {
    pub name: String,
    pub resource: String,
    #[serde(default)]
    pub trigger: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct JobOutput {
    pub name: String,
    pub resource: String,
}

/// `GET .../jobs/:job`. `next_build` and `finished_build` are always present (null when none).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub team_name: String,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub paused_by: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paused_at: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_new_inputs: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_logged_build_id: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_manual_trigger: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_reruns: bool,
    pub next_build: Option<Build>,
    pub finished_build: Option<Build>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_build: Option<Build>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<JobInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<JobOutput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BuildSummary {
    pub id: i64,
    pub name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end_time: i64,
    pub team_name: String,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_name: String,
}

/// Element of `GET .../jobs` and `/api/v1/jobs` (the dashboard shape).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct JobSummary {
    pub id: i64,
    pub name: String,
    pub team_name: String,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub paused_by: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paused_at: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_new_inputs: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_build: Option<BuildSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_build: Option<BuildSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_build: Option<BuildSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<JobInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<JobOutput>,
}

/// A warning returned with a saved config (`{"type": ..., "message": ...}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ConfigWarning {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SaveConfigResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ConfigWarning>,
}

/// `GET .../config`: the stored config, re-encoded as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ConfigResponse {
    pub config: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RenameRequest {
    pub name: String,
}

/// Response of `POST /sky/issuer/token`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    #[serde(default)]
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Header carrying the optimistic-concurrency version of a pipeline config.
pub const CONFIG_VERSION_HEADER: &str = "X-Concourse-Config-Version";
