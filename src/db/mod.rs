//! The store: every SQL statement of the system lives under this module.
//!
//! Callers see domain verbs on the [`Store`] trait. Two backends implement it: PostgreSQL
//! (the system of record for multi-node deployments) and an embedded single-file SQLite
//! store (the default, so `concourse quickstart` needs nothing installed). Both pass the
//! same conformance suite (tests/store_conformance.rs).

pub mod model;

pub use model::*;

use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The pipeline config changed since the client read it (optimistic concurrency).
    #[error("comparison with existing config failed during save")]
    ConfigVersionConflict,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Domain verbs of the ATC's state. Every state transition is one guarded statement or one
/// transaction, so two web nodes sharing a database cannot both make it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- teams -------------------------------------------------------------------------
    /// Creates the team, or replaces its auth. Returns the team and whether it was created.
    async fn upsert_team(&self, name: &str, auth: &TeamAuth, admin: bool) -> Result<(TeamRow, bool)>;
    async fn team(&self, name: &str) -> Result<Option<TeamRow>>;
    async fn teams(&self) -> Result<Vec<TeamRow>>;
    /// False when no team has the old name.
    async fn rename_team(&self, old: &str, new: &str) -> Result<bool>;
    /// Destroys the team with everything it owns. False when it does not exist.
    async fn destroy_team(&self, name: &str) -> Result<bool>;

    // --- users and access tokens ----------------------------------------------------------
    async fn save_access_token(&self, token: &str, claims: &Value, expires_at: i64) -> Result<()>;
    async fn access_token(&self, token: &str) -> Result<Option<Value>>;
    async fn delete_access_token(&self, token: &str) -> Result<()>;
    /// Removes tokens whose expiry is before `now`; returns how many.
    async fn delete_expired_access_tokens(&self, now: i64) -> Result<u64>;
    async fn record_user_login(&self, user: &UserLogin) -> Result<()>;
    async fn users_since(&self, since: i64) -> Result<Vec<UserRow>>;

    // --- pipelines -------------------------------------------------------------------------
    /// Saves a pipeline config with its jobs and resources.
    ///
    /// For an existing pipeline the save only applies when the stored config version equals
    /// `expected_version` (else [`StoreError::ConfigVersionConflict`]); every save takes the
    /// next value of one global sequence as the new version. A new pipeline starts paused
    /// unless `SavePipeline::paused_on_create` is false. Re-saving clears `archived`.
    async fn save_pipeline(&self, save: &SavePipeline) -> Result<SavedPipeline>;
    async fn pipeline(&self, team: &str, name: &str, instance_vars: Option<&Value>) -> Result<Option<PipelineRow>>;
    async fn pipeline_by_id(&self, id: i64) -> Result<Option<PipelineRow>>;
    /// A team's pipelines in their `ordering`; all teams' (by team name, then ordering) when `team` is None.
    async fn pipelines(&self, team: Option<&str>) -> Result<Vec<PipelineRow>>;
    /// The stored config and its version; None for unknown or archived pipelines.
    async fn pipeline_config(&self, pipeline_id: i64) -> Result<Option<(Value, i64)>>;
    async fn set_pipeline_paused(&self, pipeline_id: i64, paused: bool, by: &str, at: i64) -> Result<()>;
    async fn set_pipeline_public(&self, pipeline_id: i64, public: bool) -> Result<()>;
    /// Renames every pipeline of the instance group `old` of the team. False when none exists.
    async fn rename_pipeline(&self, team_id: i64, old: &str, new: &str) -> Result<bool>;
    /// Orders the team's pipelines: the named ones first in the given order, then the rest.
    /// An unknown name is [`StoreError::NotFound`] and changes nothing.
    async fn order_pipelines(&self, team_id: i64, names: &[String]) -> Result<()>;
    /// Archives: pauses (by `automatic-pipeline-archiver` when `by` says so), drops the
    /// config (version back to 0) and deactivates its jobs and resources.
    async fn archive_pipeline(&self, pipeline_id: i64, by: &str, at: i64) -> Result<()>;
    /// Destroys the pipeline and its jobs, resources, builds and events.
    async fn destroy_pipeline(&self, pipeline_id: i64) -> Result<()>;

    // --- jobs and resources ------------------------------------------------------------------
    /// Active jobs of a pipeline in config order.
    async fn jobs(&self, pipeline_id: i64) -> Result<Vec<JobRow>>;
    async fn job(&self, pipeline_id: i64, name: &str) -> Result<Option<JobRow>>;
    async fn set_job_paused(&self, job_id: i64, paused: bool, by: &str, at: i64) -> Result<()>;
    /// Active resources of a pipeline in config order.
    async fn resources(&self, pipeline_id: i64) -> Result<Vec<ResourceRow>>;

    // --- builds and their events ---------------------------------------------------------------
    async fn create_build(&self, new: &NewBuild) -> Result<BuildRow>;
    async fn build(&self, id: i64) -> Result<Option<BuildRow>>;
    /// Latest builds of a job, newest first (`COALESCE(rerun_of, id) DESC, id DESC`).
    async fn job_builds(&self, job_id: i64, page: &Page) -> Result<Vec<BuildRow>>;
    async fn finish_build(&self, id: i64, status: BuildStatus, at: i64) -> Result<()>;
    /// Appends events in one round trip, assigning consecutive event ids after the last one.
    /// Returns the id of the last appended event.
    async fn append_build_events(&self, build_id: i64, events: &[Value]) -> Result<i64>;
    /// Events with id greater than `after`, oldest first, at most `limit`.
    async fn build_events(&self, build_id: i64, after: i64, limit: i64) -> Result<Vec<(i64, Value)>>;

    // --- workers -----------------------------------------------------------------------------
    async fn save_worker(&self, worker: &WorkerRow) -> Result<()>;
    async fn workers(&self) -> Result<Vec<WorkerRow>>;
    async fn delete_worker(&self, name: &str) -> Result<bool>;
}

/// Where the PostgreSQL store lives (upstream's `--postgres-*` flags).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostgresConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    /// `disable`, `require`, `verify-ca`, `verify-full` (upstream's values).
    pub sslmode: String,
    /// Unix socket directory; overrides host/port when set.
    pub socket: Option<String>,
    /// Schema to use (`search_path`); tests give each run its own. None = `public`.
    pub schema: Option<String>,
}

/// Connects to PostgreSQL, applies migrations (under an advisory lock) and returns the store.
pub async fn connect_postgres(_config: &PostgresConfig) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    unimplemented!("db::connect_postgres")
}

/// Opens (creating if needed) the embedded single-file store at `path` and applies migrations.
pub async fn open_embedded(_path: &std::path::Path) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    unimplemented!("db::open_embedded")
}
