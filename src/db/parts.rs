//! The [`Store`](super::Store)'s supertraits: concerns each backend keeps in a file of its
//! own (`artifacts.rs`, `signing_keys.rs`, `leases.rs`, `journal.rs`, `wall.rs`,
//! `overview.rs`), with their row types.

use super::{BuildRow, JobRow, ResourceRow, Result};
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

// === worker artifacts (`fly execute`) ======================================================
// A supertrait of [`Store`], so each backend keeps these in its own `artifacts.rs`.

/// A volume on a worker that `fly execute` uploaded (an input) or a one-off build
/// registered for download (an output, `build_id` and `name` set).
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRow {
    pub id: i64,
    pub team_id: i64,
    pub build_id: Option<i64>,
    pub name: String,
    pub worker_name: String,
    pub volume_handle: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewArtifact {
    pub team_id: i64,
    pub build_id: Option<i64>,
    pub name: String,
    pub worker_name: String,
    pub volume_handle: String,
    pub created_at: i64,
}

#[async_trait]
pub trait ArtifactStore {
    /// [`StoreError::NotFound`] when the team (or the build) does not exist.
    async fn create_artifact(&self, new: &NewArtifact) -> Result<ArtifactRow>;
    /// The artifact if it belongs to the team.
    async fn artifact(&self, team_id: i64, id: i64) -> Result<Option<ArtifactRow>>;
    /// A build's artifacts by id.
    async fn build_artifacts(&self, build_id: i64) -> Result<Vec<ArtifactRow>>;
    /// Attaches an artifact to a build under `name`. False when there is no such artifact.
    async fn set_artifact_build(&self, id: i64, build_id: i64, name: &str) -> Result<bool>;
}

// === idtoken signing keys ==================================================================
// A supertrait of [`Store`], so each backend keeps these in its own `signing_keys.rs`.

/// A private signing key of the `idtoken` var source. `jwk` is the private JWK (with `kid`
/// and `alg`); `kty` is `RSA` or `EC`. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub kty: String,
    pub jwk: Value,
    pub created_at: i64,
}

#[async_trait]
pub trait SigningKeyStore {
    /// [`StoreError::Conflict`] when the kid exists already.
    async fn create_signing_key(&self, key: &SigningKeyRow) -> Result<()>;
    /// Every key, oldest first (ties by kid).
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    /// False when there is no such key.
    async fn delete_signing_key(&self, kid: &str) -> Result<bool>;
}

// === several web nodes on one database ======================================================
// A supertrait of [`Store`], so each backend keeps these in its own `leases.rs`.

#[async_trait]
pub trait ClusterStore {
    /// Takes the lease `name` for `holder` until `now + ttl` (Unix seconds; the TTL rounds up
    /// to whole seconds) when it is free, expired (`expires_at < now`) or already held by
    /// `holder` (a renewal). One statement, so concurrent nodes cannot both get it.
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool>;
    /// Gives the lease up if `holder` has it (a clean shutdown hands over at once).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool>;
    /// Asks the node running a started build to abort it. False when it is not started.
    async fn request_build_abort(&self, build_id: i64) -> Result<bool>;
    /// Of `ids` (builds a node runs), those it should stop: finished by someone else, asked
    /// to abort, or deleted. One query however many builds a node runs.
    async fn builds_to_stop(&self, ids: &[i64]) -> Result<Vec<i64>>;
}

// === builds that outlive their web node =====================================================
// A supertrait of [`Store`], so each backend keeps these in its own `journal.rs`.

/// One journal entry to write with a batch of events: its key and JSON data.
pub type JournalEntry = (String, Value);

#[async_trait]
pub trait JournalStore {
    /// Takes started build `build_id` for `holder` until `expires` (Unix seconds) when it is
    /// unowned, lapsed before `now`, or already `holder`'s. One statement: one node wins.
    /// (Other nodes only try builds [`JournalStore::orphaned_builds`] lists, which a just
    /// started, still unowned build is not.)
    async fn claim_build(
        &self,
        build_id: i64,
        holder: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool>;
    /// Extends every started build `holder` owns to `expires`; returns their ids (a build
    /// another node adopted meanwhile is missing).
    async fn renew_builds(&self, holder: &str, expires: i64) -> Result<Vec<i64>>;
    /// Started builds whose owner lapsed before `now`, oldest first.
    async fn orphaned_builds(&self, now: i64) -> Result<Vec<i64>>;
    /// Lets go of `holder`'s builds among `ids` at once, for another node to adopt.
    async fn release_builds(&self, holder: &str, ids: &[i64]) -> Result<()>;
    /// Writes (or replaces) journal entries of a build, in one transaction.
    async fn put_journal(&self, build_id: i64, entries: &[JournalEntry]) -> Result<()>;
    /// Every journal entry of a build.
    async fn journal(&self, build_id: i64) -> Result<Vec<JournalEntry>>;
    /// [`Store::append_build_events`] that also writes `entries` in the same transaction
    /// (how far each output stream is in the log is exact however the node dies).
    async fn append_build_events_journaled(
        &self,
        build_id: i64,
        events: &[Value],
        entries: &[JournalEntry],
    ) -> Result<i64>;
}

// === the wall message and version causality (API) ==========================================
// A supertrait of [`Store`], so each backend keeps these in its own `wall.rs`.

/// The wall message; `expires_at` in Unix seconds, None = shown until cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct WallRow {
    pub message: String,
    pub expires_at: Option<i64>,
}

#[async_trait]
pub trait WallStore {
    /// The stored wall message, expired or not (callers compare `expires_at`).
    async fn wall(&self) -> Result<Option<WallRow>>;
    /// Replaces the wall message.
    async fn set_wall(&self, wall: &WallRow) -> Result<()>;
    async fn clear_wall(&self) -> Result<()>;
    /// Builds that used the version `version_id` of the resource as an input (`outputs`
    /// false) or produced it (`outputs` true), newest (highest id) first.
    async fn version_builds(
        &self,
        resource_id: i64,
        version_id: i64,
        outputs: bool,
    ) -> Result<Vec<BuildRow>>;
}

// === many pipelines at once (the dashboard) ==================================================
// A supertrait of [`Store`], so each backend keeps these in its own `overview.rs`.

/// Active jobs and resources of several pipelines, with every build they point at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overview {
    /// Ordered by pipeline, then as [`Store::jobs`] orders them; their `config` is not
    /// loaded (Null).
    pub jobs: Vec<JobRow>,
    /// Ordered by pipeline, then as [`Store::resources`] orders them.
    pub resources: Vec<ResourceRow>,
    /// The jobs' next, finished and transition builds and the resources' last check builds.
    pub builds: Vec<BuildRow>,
}

/// What can change about an active job between two scheduling passes (its config changes
/// only with its pipeline's config version).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobMark {
    pub id: i64,
    pub pipeline_id: i64,
    pub paused: bool,
    pub next_build_id: Option<i64>,
    pub finished_build_id: Option<i64>,
}

/// What can change about an active resource between two scheduling passes, and what the
/// checker needs to know when it is due.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceMark {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    pub last_checked: i64,
    /// As JSON text.
    pub pinned_version: Option<String>,
    pub scope_id: Option<i64>,
    /// Its scope's resource config (`resource::config_key`).
    pub config: Option<String>,
    pub check_failed: bool,
    /// Its scope's change count: moves whenever the versions it can use change.
    pub versions_changed: i64,
}

/// [`JobMark`]s and [`ResourceMark`]s of several pipelines, each ordered by pipeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchedulingMarks {
    pub jobs: Vec<JobMark>,
    pub resources: Vec<ResourceMark>,
}

#[async_trait]
pub trait OverviewStore {
    /// What [`Store::jobs`], [`Store::resources`] and [`Store::build`] would answer for every
    /// pipeline of `pipeline_ids`, in three statements however many pipelines there are.
    async fn pipelines_overview(&self, pipeline_ids: &[i64]) -> Result<Overview>;
    /// The scheduler's marks of every pipeline of `pipeline_ids`, in two small statements.
    async fn scheduling_marks(&self, pipeline_ids: &[i64]) -> Result<SchedulingMarks>;
    /// A token of everything committed so far: read before two reads, an equal token means
    /// nothing was committed in between, so the second read would see what the first did.
    /// (It may change without a change to the data; never the other way round.)
    async fn data_version(&self) -> Result<String>;
    /// Like [`OverviewStore::data_version`], but it need move only with commits that
    /// changed one of `tables` (what a cached listing reads), so a check's or a heartbeat's
    /// commit leaves a jobs listing standing. The embedded store keeps a change counter per
    /// table (`table_versions`, bumped by triggers in the changing transaction); PostgreSQL
    /// answers its `data_version`.
    async fn tables_version(&self, tables: &[&str]) -> Result<String>;
}
