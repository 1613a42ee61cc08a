//! The store: every SQL statement of the system lives under this module.
//!
//! Callers see domain verbs on the [`Store`] trait. Two backends implement it: PostgreSQL
//! (the system of record for multi-node deployments) and an embedded single-file SQLite
//! store (the default, so `concourse quickstart` needs nothing installed). Both pass the
//! same conformance suite (tests/store_conformance.rs).

mod build_logs;
mod build_rules;
mod embedded;
mod migrations;
pub mod model;
mod ordering;
mod parts;
mod postgres;
mod rows;
mod sql;
pub mod testing;
mod version_rules;

pub use build_logs::*;
pub(crate) use build_rules::{
    check_finished, check_unfinished, job_finished, not_a_job_build, RerunOf,
};
pub use model::*;
pub(crate) use ordering::{new_instance_ordering, new_ordering};
pub use parts::*;
pub(crate) use version_rules::{has_metadata, stored_metadata, VersionWindow};

use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

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
    /// The database cannot be reached now (restarting, connection lost): worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Domain verbs of the ATC's state. Every state transition is one guarded statement or one
/// transaction, so two web nodes sharing a database cannot both make it.
#[async_trait]
pub trait Store:
    ArtifactStore
    + BuildLogStore
    + SigningKeyStore
    + ClusterStore
    + JournalStore
    + OverviewStore
    + WallStore
    + Send
    + Sync
    + 'static
{
    /// Connections to the database open now, for `concourse_db_connections`.
    fn connections(&self) -> usize;
    /// Statements run since the store opened, for `concourse_db_queries_total`.
    fn queries(&self) -> u64;

    // --- teams -------------------------------------------------------------------------
    /// Creates the team, or replaces its auth (`admin` only applies on creation). Returns the
    /// team and whether it was created.
    async fn upsert_team(
        &self,
        name: &str,
        auth: &TeamAuth,
        admin: bool,
    ) -> Result<(TeamRow, bool)>;
    async fn team(&self, name: &str) -> Result<Option<TeamRow>>;
    /// All teams by name.
    async fn teams(&self) -> Result<Vec<TeamRow>>;
    /// False when no team has the old name; [`StoreError::Conflict`] when `new` is taken.
    async fn rename_team(&self, old: &str, new: &str) -> Result<bool>;
    /// Destroys the team with everything it owns. False when it does not exist.
    async fn destroy_team(&self, name: &str) -> Result<bool>;

    // --- users and access tokens ----------------------------------------------------------
    /// Stores (or replaces) a token with its claims and expiry (Unix seconds).
    async fn save_access_token(&self, token: &str, claims: &Value, expires_at: i64) -> Result<()>;
    async fn access_token(&self, token: &str) -> Result<Option<Value>>;
    async fn delete_access_token(&self, token: &str) -> Result<()>;
    /// Removes tokens whose expiry is before `now`; returns how many.
    async fn delete_expired_access_tokens(&self, now: i64) -> Result<u64>;
    /// One row per (username, connector): a later login updates `sub` and `last_login`.
    async fn record_user_login(&self, user: &UserLogin) -> Result<()>;
    /// Users whose last login is at or after `since`, most recent first.
    async fn users_since(&self, since: i64) -> Result<Vec<UserRow>>;

    // --- pipelines -------------------------------------------------------------------------
    /// Saves a pipeline config with its jobs and resources.
    ///
    /// For an existing pipeline the save only applies when the stored config version equals
    /// `expected_version` (else [`StoreError::ConfigVersionConflict`]); every save takes the
    /// next value of one global sequence as the new version. A new pipeline starts paused
    /// unless `SavePipeline::paused_on_create` is false, ordered after the team's other
    /// pipelines (an instance joins its group's place). Re-saving clears `archived` and keeps
    /// `paused`. Jobs and resources are matched to existing rows by name, then `old_name`
    /// (keeping ids and history); those missing from the config become inactive, and come
    /// back with their ids when re-added. A concurrent creation of the same pipeline is also
    /// a [`StoreError::ConfigVersionConflict`]; an unknown team is [`StoreError::NotFound`].
    async fn save_pipeline(&self, save: &SavePipeline) -> Result<SavedPipeline>;
    /// By team name, name and instance vars (None = the non-instanced pipeline; key order
    /// of the vars does not matter). Archived pipelines are found too.
    async fn pipeline(
        &self,
        team: &str,
        name: &str,
        instance_vars: Option<&Value>,
    ) -> Result<Option<PipelineRow>>;
    async fn pipeline_by_id(&self, id: i64) -> Result<Option<PipelineRow>>;
    /// A team's pipelines in their `ordering`; all teams' (by team name, then ordering) when `team` is None.
    async fn pipelines(&self, team: Option<&str>) -> Result<Vec<PipelineRow>>;
    /// Every team's unarchived pipelines in the order of [`Store::pipelines`], without
    /// `groups`, `display` and `user_data` (Null): for the scheduler and collectors.
    async fn live_pipelines(&self) -> Result<Vec<PipelineRow>>;
    /// The unarchived pipelines job `job_id`'s `set_pipeline` steps set.
    async fn pipelines_set_by(&self, job_id: i64) -> Result<Vec<PipelineRow>>;
    /// The stored config and its version; None for unknown or archived pipelines.
    async fn pipeline_config(&self, pipeline_id: i64) -> Result<Option<(Value, i64)>>;
    /// Pausing records `by` and `at`; unpausing clears them. [`StoreError::NotFound`] for an
    /// unknown pipeline (likewise for `set_pipeline_public`).
    async fn set_pipeline_paused(
        &self,
        pipeline_id: i64,
        paused: bool,
        by: &str,
        at: i64,
    ) -> Result<()>;
    async fn set_pipeline_public(&self, pipeline_id: i64, public: bool) -> Result<()>;
    /// Renames every pipeline of the instance group `old` of the team. False when none exists;
    /// [`StoreError::Conflict`] when that would collide with an existing pipeline.
    async fn rename_pipeline(&self, team_id: i64, old: &str, new: &str) -> Result<bool>;
    /// Orders the team's pipelines: the named ones first in the given order, then the rest.
    /// An unknown name is [`StoreError::NotFound`] and changes nothing.
    async fn order_pipelines(&self, team_id: i64, names: &[String]) -> Result<()>;
    /// Orders the instances of the team's pipeline group `name` within it (upstream's
    /// `secondary_ordering`): those with the given instance vars first in the given order
    /// (None is the group's non-instanced pipeline; key order does not matter), then the
    /// rest in their current order. Vars matching no instance are [`StoreError::NotFound`]
    /// and change nothing.
    async fn order_instances(
        &self,
        team_id: i64,
        name: &str,
        instance_vars: &[Option<Value>],
    ) -> Result<()>;
    /// Archives: pauses (by `automatic-pipeline-archiver` when `by` says so), drops the
    /// config (version back to 0) and deactivates its jobs and resources, clearing their
    /// configs. The pipeline stays listed. [`StoreError::NotFound`] for an unknown pipeline.
    async fn archive_pipeline(&self, pipeline_id: i64, by: &str, at: i64) -> Result<()>;
    /// Destroys the pipeline and its jobs, resources, builds and events.
    /// [`StoreError::NotFound`] for an unknown pipeline.
    async fn destroy_pipeline(&self, pipeline_id: i64) -> Result<()>;

    // --- jobs and resources ------------------------------------------------------------------
    /// Active jobs of a pipeline in config order.
    async fn jobs(&self, pipeline_id: i64) -> Result<Vec<JobRow>>;
    /// An active job by name (a job removed from the config is not found).
    async fn job(&self, pipeline_id: i64, name: &str) -> Result<Option<JobRow>>;
    /// As [`Store::set_pipeline_paused`], for a job.
    async fn set_job_paused(&self, job_id: i64, paused: bool, by: &str, at: i64) -> Result<()>;
    /// Active resources of a pipeline in config order.
    async fn resources(&self, pipeline_id: i64) -> Result<Vec<ResourceRow>>;
    /// An active resource by name.
    async fn resource(&self, pipeline_id: i64, name: &str) -> Result<Option<ResourceRow>>;

    // --- builds and their events ---------------------------------------------------------------
    /// Creates a pending build named as [`NewBuild`] says (a job build takes its job's
    /// pipeline) and makes it its job's next build when it is the oldest unfinished one.
    /// [`StoreError::NotFound`] for an unknown job, team or pipeline.
    async fn create_build(&self, new: &NewBuild) -> Result<BuildRow>;
    async fn build(&self, id: i64) -> Result<Option<BuildRow>>;
    /// A job's build by name (`"3"`, or `"3.1"` for a rerun).
    async fn job_build(&self, job_id: i64, name: &str) -> Result<Option<BuildRow>>;
    /// Creates a pending rerun of a job build: named `<original>.<n>` with the next rerun
    /// number of the original (a rerun of a rerun reruns the original), listed next to it.
    /// [`StoreError::NotFound`] for an unknown build, [`StoreError::Invalid`] for a build of
    /// no job.
    async fn rerun_build(&self, build_id: i64, created_by: &str, at: i64) -> Result<BuildRow>;
    /// Sets the build's comment. [`StoreError::NotFound`] for an unknown build.
    async fn set_build_comment(&self, build_id: i64, comment: &str) -> Result<()>;
    /// Latest builds of a job, newest first (`COALESCE(rerun_of, id) DESC, id DESC`).
    /// Shorthand for [`Store::builds_page`] without the neighbouring pages.
    async fn job_builds(&self, job_id: i64, page: &Page) -> Result<Vec<BuildRow>> {
        Ok(self.builds_page(BuildsOf::Job(job_id), page).await?.builds)
    }
    /// One page of builds (atc-api.md §1.4), newest first: `COALESCE(rerun_of, id) DESC,
    /// id DESC` for a job's, pipeline's or team's builds, `id DESC` for all builds.
    ///
    /// `from`/`to` are inclusive build ids; only `from` selects the `limit` builds just above
    /// it (ascending, then reversed). With `timestamps` they are Unix seconds compared with
    /// `start_time` and no neighbouring pages are given. `from > to` is
    /// [`StoreError::Invalid`]; a `limit` of 0 or less means 100.
    async fn builds_page(&self, of: BuildsOf, page: &Page) -> Result<BuildsPage>;
    /// Moves a pending build to started, with its plan and owner, in one statement. False
    /// (and nothing changed) when the build is not pending (already started, finished or
    /// unknown): only one node can start a build.
    async fn start_build(&self, id: i64, start: &BuildStart) -> Result<bool>;
    /// Finishes a pending or started build with a finished `status` (else
    /// [`StoreError::Invalid`]) and updates its job's finished/next/transition builds.
    /// [`StoreError::NotFound`] for an unknown build, [`StoreError::Conflict`] when it has
    /// already finished (two nodes cannot both finish it).
    async fn finish_build(&self, id: i64, status: BuildStatus, at: i64) -> Result<()>;
    /// Appends events in one round trip, assigning consecutive event ids after the last one.
    /// Returns the id of the last appended event (the current last id when `events` is
    /// empty; 0 when there is none). One writer per build (its owner): a concurrent append
    /// to the same build fails with [`StoreError::Conflict`] rather than interleaving.
    async fn append_build_events(&self, build_id: i64, events: &[Value]) -> Result<i64>;
    /// Events with id greater than `after`, oldest first, at most `limit` (all when `limit`
    /// is 0 or less).
    async fn build_events(
        &self,
        build_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Value)>>;

    // --- workers -----------------------------------------------------------------------------
    /// Registers a worker (upsert by name): `expires_at = at + ttl` (None = never expires),
    /// state `running` (a re-registration resets `landing`/`retiring`; the payload's own
    /// `state` wins when set). The payload's `team` must exist ([`StoreError::NotFound`]), and
    /// an existing row must belong to the same team (global with global), else
    /// [`StoreError::Conflict`] with upstream's message ([`WORKER_TEAM_CONFLICT`]).
    async fn register_worker(
        &self,
        worker: &Worker,
        ttl: Option<Duration>,
        at: i64,
    ) -> Result<WorkerRow>;
    /// Records a heartbeat: new expiry and counters; `landing`/`landed`/`retiring` are
    /// kept, anything else becomes `running`. None when the worker is gone.
    async fn heartbeat_worker(
        &self,
        name: &str,
        active_containers: i64,
        active_volumes: i64,
        ttl: Option<Duration>,
        at: i64,
    ) -> Result<Option<WorkerRow>>;
    async fn worker(&self, name: &str) -> Result<Option<WorkerRow>>;
    /// All workers by name.
    async fn workers(&self) -> Result<Vec<WorkerRow>>;
    /// Marks the worker `landing` (a `landed` worker stays `landed`). None when unknown.
    async fn land_worker(&self, name: &str) -> Result<Option<WorkerRow>>;
    /// Marks the worker `retiring`. None when unknown.
    async fn retire_worker(&self, name: &str) -> Result<Option<WorkerRow>>;
    /// Deletes a worker that is not running. False when unknown; a running worker is
    /// [`StoreError::Invalid`] (`cannot prune running worker`) and stays.
    async fn prune_worker(&self, name: &str) -> Result<bool>;
    /// Deletes the worker whatever its state. False when no worker has the name.
    async fn delete_worker(&self, name: &str) -> Result<bool>;
    /// One guarded statement: non-ephemeral `running` workers whose expiry is before `now`
    /// become `stalled` (expiry cleared). Returns their names.
    async fn stall_unresponsive_workers(&self, now: i64) -> Result<Vec<String>>;
    /// One guarded statement: deletes ephemeral workers whose expiry is before `now`, in any
    /// state. Returns their names.
    async fn delete_expired_ephemeral_workers(&self, now: i64) -> Result<Vec<String>>;
    /// One guarded statement: worker `name`, found drained by the caller (no container of
    /// an unfinished build that holds it, asked of the worker), becomes `landed` with its
    /// addresses cleared if it is still `landing`. False when it was not.
    async fn land_drained_worker(&self, name: &str) -> Result<bool>;
    /// One guarded statement: worker `name`, found drained, is deleted if it is still
    /// `retiring`. False when it was not.
    async fn delete_retired_worker(&self, name: &str) -> Result<bool>;

    // --- resource versions (checker, scheduler, resources API) ------------------------------
    /// The scope that holds versions for one resource config. `config_key` identifies the
    /// config (type chain + canonical source); `owner` is the resource the scope belongs to,
    /// or None for a scope shared by every user of the key (resource types, global
    /// resources). Finds or creates `resource_configs(base_type, config_key)` and its scope.
    async fn resource_scope(
        &self,
        base_type: &str,
        config_key: &str,
        owner: Option<i64>,
    ) -> Result<i64>;
    /// Points a resource at a scope (its versions are that scope's from now on).
    async fn set_resource_scope(&self, resource_id: i64, scope_id: i64) -> Result<()>;
    /// Saves check results given oldest first, in one transaction. When at least one is
    /// new to the scope, all of them get fresh check orders in list order (the last becomes
    /// the latest), as upstream; known ones take new metadata when it is non-empty.
    /// Returns how many were new.
    async fn save_versions(&self, scope_id: i64, versions: &[NewVersion]) -> Result<usize>;
    /// Versions of a scope newest first (check_order DESC), enabled and disabled. `page.from`
    /// / `page.to` are version ids (inclusive bounds on their check_order, like builds' ids);
    /// `limit` <= 0 means all.
    async fn versions(&self, scope_id: i64, page: &Page) -> Result<Vec<VersionRow>>;
    async fn version(&self, version_id: i64) -> Result<Option<VersionRow>>;
    /// A scope's version equal to `version` (compared as canonical JSON).
    async fn find_version(&self, scope_id: i64, version: &Value) -> Result<Option<VersionRow>>;
    /// False when the version is unknown.
    async fn set_version_enabled(&self, version_id: i64, enabled: bool) -> Result<bool>;
    /// Pins a resource to `version` (None unpins and clears the comment). The comment is
    /// kept when `comment` is None.
    async fn pin_resource(
        &self,
        resource_id: i64,
        version: Option<&Value>,
        comment: Option<&str>,
    ) -> Result<()>;
    /// Records a finished check of a resource: `last_checked = at`, the check build and
    /// whether it succeeded (what `fly resources` shows).
    async fn record_resource_check(
        &self,
        resource_id: i64,
        at: i64,
        build_id: Option<i64>,
        succeeded: bool,
    ) -> Result<()>;
    /// What the scheduler needs for one pipeline, in one snapshot.
    async fn scheduling_snapshot(&self, pipeline_id: i64) -> Result<SchedulingSnapshot>;

    // --- build inputs, outputs, plans, lifecycle ------------------------------------------------
    /// Replaces the build's inputs.
    async fn save_build_inputs(&self, build_id: i64, inputs: &[BuildInputRow]) -> Result<()>;
    async fn build_inputs(&self, build_id: i64) -> Result<Vec<BuildInputRow>>;
    /// The inputs of each of the pipeline's jobs' latest builds (newest by [`Store::job_builds`]'
    /// order, any status) as (job id, input), by job then name: what the scheduler compares a
    /// job's resolved trigger versions with, in one read for the whole pipeline.
    async fn latest_build_inputs(&self, pipeline_id: i64) -> Result<Vec<(i64, BuildInputRow)>>;
    /// Records a put's version as the build's output, and saves it into the resource's
    /// current scope as a new version (newest) when it is not there yet, with `metadata`.
    async fn save_build_output(&self, build_id: i64, output: &BuildOutputRow) -> Result<()>;
    async fn build_outputs(&self, build_id: i64) -> Result<Vec<BuildOutputRow>>;
    /// Builds in any of `statuses`, oldest (lowest id) first, without their plans (`None`;
    /// [`Store::build`] reads one).
    async fn builds_with_status(&self, statuses: &[BuildStatus]) -> Result<Vec<BuildRow>>;
}

/// Every build a job or resource of the overview points at.
pub(crate) fn referenced_builds(jobs: &[JobRow], resources: &[ResourceRow]) -> Vec<i64> {
    let mut ids: Vec<i64> = jobs
        .iter()
        .flat_map(|j| [j.next_build_id, j.finished_build_id, j.transition_build_id])
        .chain(resources.iter().map(|r| r.check_build_id))
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Identity of a version within its scope: sha256 of its canonical JSON.
pub(crate) fn version_sha256(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(canonical_json(v).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Groups build inputs/outputs rows `(build, job, status, resource, version)` into the
/// snapshot (both backends).
/// One build input or output as the snapshot queries return it:
/// (build, job, status, resource, version id).
pub(crate) type IoRow = (i64, i64, String, i64, i64);

pub(crate) fn assemble_snapshot(
    versions: Vec<(i64, i64)>,
    succeeded: Vec<(i64, i64)>,
    inputs: &[IoRow],
    outputs: &[IoRow],
) -> SchedulingSnapshot {
    use std::collections::HashMap;
    let mut ins: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let mut outs: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let mut used = Vec::new();
    for (b, j, _, r, v) in inputs {
        ins.entry(*b).or_default().push((*r, *v));
        used.push((*j, *r, *v));
    }
    for (b, _, _, r, v) in outputs {
        outs.entry(*b).or_default().push((*r, *v));
    }
    SchedulingSnapshot {
        versions,
        successful_builds: succeeded
            .into_iter()
            .map(|(b, j)| SuccessfulBuild {
                job_id: j,
                build_id: b,
                inputs: ins.remove(&b).unwrap_or_default(),
                outputs: outs.remove(&b).unwrap_or_default(),
            })
            .collect(),
        used_versions: used,
    }
}

/// Upstream's message when a worker name is taken by another team's (or a global) worker.
pub const WORKER_TEAM_CONFLICT: &str =
    "worker already exists and is either global or owned by another team";
/// Upstream's message when pruning a running worker.
pub const PRUNE_RUNNING_WORKER: &str = "cannot prune running worker";

/// The stored expiry of a registration at `at` with `ttl`: 0 (never) without a TTL,
/// otherwise rounded up to whole seconds so a short TTL never expires immediately.
pub(crate) fn worker_expiry(ttl: Option<Duration>, at: i64) -> i64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            at.saturating_add(i64::try_from(secs.max(1)).unwrap_or(i64::MAX))
        }
    }
}

/// The payload as stored: no state (the row has it), name and tags normalised.
pub(crate) fn stored_worker_payload(worker: &Worker) -> Result<Value> {
    let mut stored = worker.clone();
    stored.state = None;
    serde_json::to_value(&stored).map_err(|e| StoreError::Invalid(format!("worker payload: {e}")))
}

/// A worker row from its columns.
pub(crate) fn worker_from_columns(
    payload: Value,
    team_id: Option<i64>,
    state: &str,
    expires_at: i64,
) -> Result<WorkerRow> {
    let state: WorkerState = state.parse().map_err(StoreError::Backend)?;
    let mut worker: Worker = serde_json::from_value(payload)
        .map_err(|e| StoreError::Backend(format!("stored worker payload: {e}")))?;
    worker.state = Some(state);
    Ok(WorkerRow {
        worker,
        team_id,
        state,
        expires_at,
    })
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
///
/// Only `sslmode=disable` is supported; TLS to PostgreSQL is not implemented yet. When
/// `schema` is set it is created if missing and every pooled connection uses it as its
/// `search_path`.
pub async fn connect_postgres(
    config: &PostgresConfig,
) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(
        postgres::PgStore::connect(config).await?,
    ))
}

/// Opens (creating if needed) the embedded single-file store at `path` and applies migrations.
pub async fn open_embedded(path: &std::path::Path) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(
        embedded::EmbeddedStore::open(path).await?,
    ))
}

/// The newest migration version of each backend (`concourse migrate --supported-db-version`).
pub fn supported_db_version() -> i64 {
    migrations::POSTGRES.last().map_or(0, |m| m.version)
}

/// JSON with object keys sorted recursively: the embedded store compares instance vars as
/// text, so `{"b":1,"a":2}` and `{"a":2,"b":1}` must serialize alike (jsonb does this in
/// PostgreSQL).
pub(crate) fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// `NotFound(what)` when a guarded statement touched no row.
pub(crate) fn found(rows: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}

/// The groups of each job, as stored in `jobs.groups`.
pub(crate) fn groups_of(save: &SavePipeline, job: &str) -> Value {
    let groups = save
        .job_groups
        .iter()
        .find(|(name, _)| name == job)
        .map(|(_, groups)| groups.clone())
        .unwrap_or_default();
    Value::from(groups)
}

/// Matches the rows of a config being saved to existing rows: by name, then by `old_name`
/// (a rename keeps the id), each existing row claimed at most once. None means "insert".
pub(crate) fn claim_existing(
    existing: &[(i64, String)],
    claimed: &[i64],
    name: &str,
    old_name: Option<&str>,
) -> Option<i64> {
    let free = |wanted: &str| {
        existing
            .iter()
            .find(|(id, n)| n == wanted && !claimed.contains(id))
            .map(|(id, _)| *id)
    };
    free(name).or_else(|| old_name.and_then(free))
}

/// A Unix time as stored: 0 ("never") is NULL.
pub(crate) fn stored_time(at: i64) -> Option<i64> {
    (at != 0).then_some(at)
}

/// An id as stored: 0 ("none") is NULL.
pub(crate) fn stored_id(id: i64) -> Option<i64> {
    (id != 0).then_some(id)
}

/// Which id range and direction one page of builds needs, once `timestamps` bounds have
/// been turned into build ids by the backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PagePlan {
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
    /// Query ascending and reverse the result (a page anchored at its lower bound).
    pub ascending: bool,
    pub limit: i64,
}

pub(crate) const DEFAULT_PAGE_LIMIT: i64 = 100;

impl PagePlan {
    /// The plan for id bounds (`from`/`to` inclusive).
    pub fn new(from: Option<i64>, to: Option<i64>, limit: i64) -> Result<Self> {
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(StoreError::Invalid("invalid range boundaries".into()));
            }
        }
        Ok(PagePlan {
            min_id: from,
            max_id: to,
            ascending: from.is_some(),
            limit: if limit <= 0 {
                DEFAULT_PAGE_LIMIT
            } else {
                limit
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn canonical_json_ignores_key_order_at_every_depth() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"p": 2, "q": 1}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"p":2,"q":1}]},"b":1}"#
        );
    }

    proptest! {
        #[test]
        fn canonical_json_round_trips(keys in proptest::collection::vec("[a-z]{1,4}", 0..6), n in any::<i64>()) {
            let value = Value::Object(keys.iter().map(|k| (k.clone(), json!([n, k]))).collect());
            let text = canonical_json(&value);
            let parsed: Value = serde_json::from_str(&text).expect("canonical JSON parses");
            prop_assert_eq!(&parsed, &value);
            prop_assert_eq!(canonical_json(&parsed), text);
        }
    }

    #[test]
    fn rows_are_claimed_by_name_then_old_name_once_each() {
        let existing = vec![(1, "a".to_string()), (2, "b".to_string())];
        assert_eq!(claim_existing(&existing, &[], "a", None), Some(1));
        assert_eq!(claim_existing(&existing, &[], "c", Some("b")), Some(2));
        assert_eq!(
            claim_existing(&existing, &[2], "c", Some("b")),
            None,
            "b was claimed already"
        );
        assert_eq!(claim_existing(&existing, &[], "c", Some("z")), None);
    }

    #[test]
    fn page_plans_follow_the_pagination_rules() {
        let only_from = PagePlan::new(Some(3), None, 0).expect("valid");
        assert!(only_from.ascending);
        assert_eq!(only_from.limit, DEFAULT_PAGE_LIMIT);
        assert!(!PagePlan::new(None, Some(3), 5).expect("valid").ascending);
        assert!(matches!(
            PagePlan::new(Some(4), Some(3), 5),
            Err(StoreError::Invalid(_))
        ));
    }
}
