//! What steps run on: worker placement, artifacts (volumes), containers and processes.
//! Workers are reached only through the `proto` traits, via the [`WorkerConnector`] the
//! role wired in.

use super::events::Origin;
use crate::db::{Store, WorkerRow, WorkerState};
use crate::proto::baggageclaim::{Baggageclaim, Encoding, Strategy, VolumeRequest};
use crate::proto::event::{self as ev, BuildEvent};
use crate::proto::garden::{BindMount, BindMountMode, ContainerSpec, Garden};
use crate::proto::worker::{Worker, WorkerConnector};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why a step did not finish normally.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    /// Infrastructure or configuration trouble: the build errors.
    Errored(String),
    /// Aborted or timed out (see [`Cancel::reason`]).
    Interrupted,
}

pub type StepResult = Result<bool, Fail>;

pub fn errored(msg: impl std::fmt::Display) -> Fail {
    Fail::Errored(msg.to_string())
}

/// Cancellation of a step: the build's abort, or the nearest enclosing timeout.
#[derive(Clone, Default)]
pub struct Cancel {
    pub token: CancellationToken,
    timed_out: Arc<AtomicBool>,
    timer: Option<Arc<Timer>>,
}

/// Held by every `Cancel` under a timeout: when the last goes (the step ended), the
/// timer's task ends too instead of sleeping out the timeout (checks default to an hour).
struct Timer {
    _done: tokio_util::sync::DropGuard,
    /// The enclosing timeout's, which must keep running while this one lives.
    _outer: Option<Arc<Timer>>,
}

impl Cancel {
    pub fn new(token: CancellationToken) -> Cancel {
        Cancel {
            token,
            ..Cancel::default()
        }
    }
    /// A child that siblings can cancel together (fail_fast) under the same timeout.
    pub fn group(&self) -> Cancel {
        Cancel {
            token: self.token.child_token(),
            timed_out: self.timed_out.clone(),
            timer: self.timer.clone(),
        }
    }
    /// A timeout that began at `started_ms` (Unix ms, from the build's journal): what is
    /// left of `d`, or timed out at once when the deadline passed (during a restart).
    pub fn child_with_deadline(&self, started_ms: i64, d: Duration) -> Cancel {
        let elapsed = super::journal::now_ms().saturating_sub(started_ms).max(0) as u128;
        match d.as_millis().checked_sub(elapsed) {
            Some(left) if left > 0 => self.child_with_timeout(Duration::from_millis(left as u64)),
            _ => {
                let c = self.group();
                let c = Cancel {
                    timed_out: Arc::default(),
                    ..c
                };
                c.timed_out.store(true, Ordering::SeqCst);
                c.token.cancel();
                c
            }
        }
    }

    pub fn child_with_timeout(&self, d: Duration) -> Cancel {
        let done = CancellationToken::new();
        let c = Cancel {
            token: self.token.child_token(),
            timed_out: Arc::default(),
            timer: Some(Arc::new(Timer {
                _done: done.clone().drop_guard(),
                _outer: self.timer.clone(),
            })),
        };
        let (token, flag) = (c.token.clone(), c.timed_out.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = done.cancelled() => {}
                _ = tokio::time::sleep(d) => {
                    flag.store(true, Ordering::SeqCst);
                    token.cancel();
                }
            }
        });
        c
    }
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
    /// The `error` event message for an interrupted step.
    pub fn reason(&self) -> &'static str {
        if self.timed_out() {
            "timeout exceeded"
        } else {
            "interrupted"
        }
    }
}

#[cfg(test)]
mod cancel_tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_that_passed_times_out_at_once_and_one_ahead_waits() {
        let now = super::super::journal::now_ms();
        let passed = Cancel::default().child_with_deadline(now - 5_000, Duration::from_secs(2));
        assert!(passed.is_cancelled() && passed.timed_out());
        assert_eq!(passed.reason(), "timeout exceeded");
        let ahead = Cancel::default().child_with_deadline(now - 1_000, Duration::from_secs(3600));
        assert!(!ahead.is_cancelled() && !ahead.timed_out());
        let soon = Cancel::default().child_with_deadline(now - 1_000, Duration::from_millis(1_050));
        tokio::time::timeout(Duration::from_secs(30), soon.token.cancelled())
            .await
            .expect("what was left of the timeout ran out");
        assert!(soon.timed_out());
    }

    #[tokio::test]
    async fn a_timeout_fires_while_its_step_runs_and_its_timer_ends_with_the_step() {
        let outer = Cancel::default().child_with_timeout(Duration::from_millis(20));
        let inner = outer.group();
        drop(outer);
        // The group lives on, so the enclosing timeout still fires for it.
        tokio::time::timeout(Duration::from_secs(30), inner.token.cancelled())
            .await
            .expect("the timeout fired");
        assert!(inner.timed_out());

        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let step = Cancel::default().child_with_timeout(Duration::from_secs(3600));
        assert_eq!(metrics.num_alive_tasks(), before + 1, "the timer's task");
        drop(step);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while metrics.num_alive_tasks() > before {
            assert!(
                std::time::Instant::now() < deadline,
                "the timer outlived its step"
            );
            tokio::task::yield_now().await;
        }
    }
}

/// A worker as steps use it.
#[derive(Clone)]
pub struct WorkerClient {
    pub name: String,
    pub garden: Arc<dyn Garden>,
    pub bc: Arc<dyn Baggageclaim>,
    pub payload: Worker,
    /// Where the worker's state is (a running step watches it for a stall).
    pub store: Arc<dyn Store>,
    /// Its kept check containers as this node sees them (shared by this node's clients
    /// of the worker).
    pub kept: Arc<super::kept::Kept>,
}

impl WorkerClient {
    /// The command that runs base resource type `type_` on this worker, if it has it.
    pub fn base_type(&self, type_: &str) -> Option<&crate::proto::worker::WorkerResourceType> {
        self.payload
            .resource_types
            .iter()
            .find(|t| t.type_ == type_)
    }
}

/// A step's output: a volume on a worker.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    pub worker: String,
    pub handle: String,
}

/// Where a step may run.
#[derive(Default)]
pub struct Placement<'a> {
    pub team: &'a str,
    pub tags: &'a [String],
    /// A base resource type the worker must provide.
    pub base_type: Option<&'a str>,
    /// Artifacts the step mounts (volume locality prefers their worker).
    pub inputs: Vec<&'a Artifact>,
    /// A platform the worker must have (`fly execute` uploads); None = any.
    pub platform: Option<&'a str>,
    /// A task step (`limit-active-tasks` counts only those).
    pub task: bool,
}

/// Shared by every build of this node.
pub struct Runtime {
    pub store: Arc<dyn Store>,
    connector: Arc<dyn WorkerConnector>,
    pub external_url: String,
    clients: Mutex<HashMap<String, (String, String, WorkerClient)>>,
    /// Signing keys of `idtoken` var sources.
    pub idtoken: crate::atc::idtoken::Signer,
    /// The container placement strategy chain.
    pub placer: super::placement::Placer,
    /// Held while finding or creating a kept check container, one turn per worker and
    /// config: checks of other configs find or make theirs meanwhile.
    pub check_containers: super::turns::Turns,
    /// Whether builds replace secret values in their events with `((redacted))`.
    pub redact_secrets: bool,
    /// `--enable-global-resources`: resources of the same config (type and source) share
    /// one scope, its versions and its checks, across pipelines and teams.
    pub global_resources: bool,
    /// Credential managers: `((var))`s that no var source defines.
    pub creds: crate::atc::creds::Creds,
    /// Every build, check and teardown the engine runs in the background: owned here so
    /// shutdown can see what is still running.
    pub tasks: tokio_util::task::TaskTracker,
    /// Recent checks of tasks' images, which builds may reuse.
    pub image_checks: super::image_checks::ImageChecks,
}

impl Runtime {
    pub fn new(
        store: Arc<dyn Store>,
        connector: Arc<dyn WorkerConnector>,
        external_url: String,
    ) -> Runtime {
        Runtime {
            store,
            connector,
            external_url,
            clients: Mutex::default(),
            idtoken: Default::default(),
            placer: Default::default(),
            redact_secrets: true,
            global_resources: false,
            creds: Default::default(),
            check_containers: Default::default(),
            tasks: Default::default(),
            image_checks: Default::default(),
        }
    }

    fn client(&self, w: &Worker) -> WorkerClient {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((addr, bc, c)) = clients.get(&w.name) {
            if *addr == w.garden_addr && *bc == w.baggageclaim_url {
                let mut c = c.clone();
                c.payload = w.clone();
                return c;
            }
        }
        let (garden, bc) = self.connector.connect(w);
        let c = WorkerClient {
            name: w.name.clone(),
            garden,
            bc,
            payload: w.clone(),
            store: self.store.clone(),
            kept: Default::default(),
        };
        clients.insert(
            w.name.clone(),
            (w.garden_addr.clone(), w.baggageclaim_url.clone(), c.clone()),
        );
        c
    }

    /// A registered worker by name, whatever its state (artifacts live on it).
    pub async fn worker(&self, name: &str) -> Result<WorkerClient, Fail> {
        match self.store.worker(name).await {
            Ok(Some(w)) if w.state != WorkerState::Stalled => Ok(self.client(&w.worker)),
            Ok(Some(_)) => Err(errored(format!("worker {name} is stalled"))),
            Ok(None) => Err(errored(format!("worker {name} disappeared"))),
            Err(e) => Err(errored(e)),
        }
    }

    /// A worker a resumed step re-attaches to: it may be re-registering with the node that
    /// just adopted the build, so it is waited for while it does not answer, up to
    /// `patience` (then the step errors as for a lost worker).
    pub async fn worker_back(
        &self,
        name: &str,
        patience: Duration,
        cancel: &Cancel,
    ) -> Result<WorkerClient, Fail> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let last = match self.worker(name).await {
                // Bounded: an address left from the worker's last registration may now
                // belong to a listener that never answers, and must not eat the patience.
                Ok(w) => match tokio::time::timeout(PING_TIMEOUT, w.garden.ping()).await {
                    Ok(Ok(())) => return Ok(w),
                    Ok(Err(e)) => errored(super::liveness::worker_error(name, "reconnecting", e)),
                    Err(_) => errored(format!("worker {name} did not answer a ping")),
                },
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(last);
            }
            tokio::select! {
                _ = cancel.token.cancelled() => return Err(Fail::Interrupted),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Every worker that can answer (not stalled, with a Garden address), or only those
    /// whose containers `team` may see (global ones and its own).
    async fn answering(&self, team: Option<&str>) -> Result<Vec<WorkerClient>, Fail> {
        let all = self.store.workers().await.map_err(errored)?;
        Ok(all
            .iter()
            .filter(|w| w.state != WorkerState::Stalled && !w.worker.garden_addr.is_empty())
            .filter(|w| team.is_none_or(|t| w.worker.team.is_empty() || w.worker.team == t))
            .map(|w| self.client(&w.worker))
            .collect())
    }

    pub async fn live_workers(&self) -> Result<Vec<WorkerClient>, Fail> {
        self.answering(None).await
    }

    pub async fn team_workers(&self, team: &str) -> Result<Vec<WorkerClient>, Fail> {
        self.answering(Some(team)).await
    }

    /// Running workers that satisfy the placement.
    async fn candidates(&self, p: &Placement<'_>) -> Result<Vec<WorkerClient>, Fail> {
        let all = self.store.workers().await.map_err(errored)?;
        let fits = |w: &Worker| {
            let tags = w.tags.clone().unwrap_or_default();
            let tags_ok = if p.tags.is_empty() {
                tags.is_empty()
            } else {
                p.tags.iter().all(|t| tags.contains(t))
            };
            let type_ok = p
                .base_type
                .is_none_or(|bt| w.resource_types.iter().any(|t| t.type_ == bt));
            let platform_ok = p.platform.is_none_or(|pl| w.platform == pl);
            tags_ok && type_ok && platform_ok && !w.garden_addr.is_empty()
        };
        let running: Vec<&Worker> = all
            .iter()
            .filter(|w| w.state == WorkerState::Running)
            .map(|w| &w.worker)
            .filter(|w| fits(w))
            .collect();
        // A team's builds run on its own workers and on global ones; a team worker runs
        // nothing else.
        Ok(running
            .into_iter()
            .filter(|w| w.team.is_empty() || w.team == p.team)
            .map(|w| self.client(w))
            .collect())
    }

    /// The worker with the fewest containers that fits now, if any (no waiting: an
    /// upload has a client on the line).
    pub async fn pick_now(&self, p: &Placement<'_>) -> Result<Option<WorkerClient>, Fail> {
        let mut workers = self.candidates(p).await?;
        workers.sort_by_key(|w| w.payload.active_containers);
        Ok(workers.into_iter().next())
    }

    /// Picks a worker (volume locality, then fewest containers), waiting while none fits.
    pub async fn select(
        &self,
        p: &Placement<'_>,
        origin: &Origin,
        cancel: &Cancel,
    ) -> Result<WorkerClient, Fail> {
        let mut waited = false;
        loop {
            let workers = self.candidates(p).await?;
            if let Some(w) = self.placer.choose(workers, &p.inputs, p.task) {
                return Ok(w);
            }
            if !waited {
                origin.emit(BuildEvent::WaitingForWorker(Default::default()));
                waited = true;
            }
            tokio::select! {
                _ = cancel.token.cancelled() => return Err(Fail::Interrupted),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// What one build created on workers, destroyed after it ends (see `Engine::start` for
/// how long a finished build stays interceptible).
#[derive(Default)]
pub struct Cleanup {
    containers: Mutex<Vec<(WorkerClient, String)>>,
    volumes: Mutex<Vec<(WorkerClient, String)>>,
    /// What was added since the build's journal last took it (see [`Cleanup::take_fresh`]).
    fresh: Mutex<Vec<super::journal::Held>>,
    /// Labels of every volume the build creates (its team).
    pub volume_labels: crate::proto::baggageclaim::Properties,
}

/// How long a failed build keeps its containers and volumes for `fly intercept`; a job's
/// build gives them up earlier when the job's next build finishes (as upstream).
pub const INTERCEPT_GRACE: Duration = Duration::from_secs(300);

impl Cleanup {
    pub fn new(team_id: i64) -> Cleanup {
        Cleanup {
            volume_labels: super::labels::volume(team_id),
            ..Default::default()
        }
    }
    pub fn container(&self, w: &WorkerClient, handle: &str) {
        self.restore(w, handle, false);
        self.note(w, handle, false);
    }
    pub fn volume(&self, w: &WorkerClient, handle: &str) {
        self.restore(w, handle, true);
        self.note(w, handle, true);
    }
    fn note(&self, w: &WorkerClient, handle: &str, volume: bool) {
        self.lock_fresh().push(super::journal::Held {
            worker: w.name.clone(),
            handle: handle.to_string(),
            volume,
        });
    }
    fn lock_fresh(&self) -> std::sync::MutexGuard<'_, Vec<super::journal::Held>> {
        self.fresh.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Takes over a container or volume a resumed build's journal names.
    pub fn restore(&self, w: &WorkerClient, handle: &str, volume: bool) {
        let list = if volume {
            &self.volumes
        } else {
            &self.containers
        };
        list.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((w.clone(), handle.to_string()));
    }
    /// What was added since the last call, for the build's journal.
    pub fn take_fresh(&self) -> Vec<super::journal::Held> {
        std::mem::take(&mut *self.lock_fresh())
    }
    /// Keeps a volume (it became a cache).
    pub fn keep_volume(&self, handle: &str) {
        self.volumes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, h)| h != handle);
        self.lock_fresh().retain(|h| h.handle != handle);
    }
    pub async fn run(&self) {
        let containers =
            std::mem::take(&mut *self.containers.lock().unwrap_or_else(|e| e.into_inner()));
        let volumes = std::mem::take(&mut *self.volumes.lock().unwrap_or_else(|e| e.into_inner()));
        // A stalled or partitioned worker may never answer: skip it, or give up on it after
        // one slow call, so the build still finishes. What it held stays on the worker.
        let mut skip = std::collections::HashSet::new();
        let mut checked = std::collections::HashSet::new();
        for w in containers.iter().chain(&volumes).map(|(w, _)| w) {
            if !checked.insert(w.name.clone()) {
                continue;
            }
            let lost = matches!(
                w.store.worker(&w.name).await,
                Ok(None)
                    | Ok(Some(WorkerRow {
                        state: WorkerState::Stalled,
                        ..
                    }))
            );
            if lost {
                skip.insert(w.name.clone());
            }
        }
        for (w, h) in containers {
            if skip.contains(&w.name) {
                continue;
            }
            match tokio::time::timeout(CLEANUP_TIMEOUT, w.garden.destroy(&h)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(container = %h, error = %e, "destroying container"),
                Err(_) => {
                    tracing::info!(worker = %w.name, "worker not answering; skipping its cleanup");
                    skip.insert(w.name.clone());
                }
            }
        }
        // Children (COW copies) were created after their parents: destroy newest first.
        for (w, h) in volumes.into_iter().rev() {
            if skip.contains(&w.name) {
                continue;
            }
            match tokio::time::timeout(CLEANUP_TIMEOUT, w.bc.destroy_volume(&h)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(volume = %h, error = %e, "destroying volume"),
                Err(_) => {
                    tracing::info!(worker = %w.name, "worker not answering; skipping its cleanup");
                    skip.insert(w.name.clone());
                }
            }
        }
    }
}

/// How long a build's cleanup waits on one call to a worker.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one ping of a returning worker may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A random handle for a container or volume (32 hex digits).
pub fn new_handle() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A fresh empty volume on `w`, destroyed with the build.
pub async fn empty_volume(
    w: &WorkerClient,
    cleanup: &Cleanup,
    privileged: bool,
) -> Result<crate::proto::baggageclaim::Volume, Fail> {
    let mut req = VolumeRequest::new(new_handle(), Strategy::Empty);
    req.privileged = privileged;
    req.properties = cleanup.volume_labels.clone();
    let v =
        w.bc.create_volume(req)
            .await
            .map_err(|e| errored(super::liveness::worker_error(&w.name, "creating volume", e)))?;
    cleanup.volume(w, &v.handle);
    Ok(v)
}

/// A writable copy of `artifact` on worker `w`: a COW child when it lives there, else
/// streamed over from its worker.
pub async fn mount_copy(
    rt: &Runtime,
    artifact: &Artifact,
    w: &WorkerClient,
    cleanup: &Cleanup,
    origin: &Origin,
) -> Result<crate::proto::baggageclaim::Volume, Fail> {
    if artifact.worker == w.name {
        let mut req = VolumeRequest::new(
            new_handle(),
            Strategy::Cow {
                volume: artifact.handle.clone(),
            },
        );
        req.properties = cleanup.volume_labels.clone();
        let v =
            w.bc.create_volume(req)
                .await
                .map_err(|e| errored(format!("copying volume {}: {e}", artifact.handle)))?;
        cleanup.volume(w, &v.handle);
        return Ok(v);
    }
    let source = rt.worker(&artifact.worker).await?;
    origin.emit(BuildEvent::StreamingVolume(ev::StreamingVolume {
        volume: artifact.handle.clone(),
        source_worker: source.name.clone(),
        dest_worker: w.name.clone(),
        ..Default::default()
    }));
    let v = empty_volume(w, cleanup, false).await?;
    let span = tracing::info_span!(
        "stream-volume",
        volume = %artifact.handle,
        source_worker = %source.name,
        dest_worker = %w.name
    );
    async {
        let stream = source
            .bc
            .stream_out(&artifact.handle, ".", Encoding::Zstd)
            .await
            .map_err(|e| errored(format!("streaming volume {} out: {e}", artifact.handle)))?;
        w.bc.stream_in(&v.handle, ".", Encoding::Zstd, None, stream)
            .await
            .map_err(|e| errored(format!("streaming volume {} in: {e}", artifact.handle)))
    }
    .instrument(span)
    .await?;
    Ok(v)
}

/// Mounts a volume read-write at `dst` in a container.
pub fn bind(volume_path: &str, dst: &str) -> BindMount {
    BindMount {
        src_path: volume_path.to_string(),
        dst_path: dst.to_string(),
        mode: BindMountMode::ReadWrite,
        origin: 0,
    }
}

/// A container created on `w` for a build, destroyed with it.
pub async fn create_container(
    w: &WorkerClient,
    spec: ContainerSpec,
    cleanup: &Cleanup,
    origin: &Origin,
    cancel: &Cancel,
) -> Result<String, Fail> {
    let handle = create_untracked(w, spec, origin, cancel).await?;
    cleanup.container(w, &handle);
    Ok(handle)
}

/// A container no build cleans up (kept check containers; their collector does). A worker
/// at its container cap gets room first by giving up its least recently used kept check
/// container; with none to give up, the step waits (`waiting-for-worker`) for a container
/// to go rather than erroring, until it is cancelled.
pub async fn create_untracked(
    w: &WorkerClient,
    mut spec: ContainerSpec,
    origin: &Origin,
    cancel: &Cancel,
) -> Result<String, Fail> {
    if spec.handle.is_empty() {
        spec.handle = new_handle();
    }
    let span = tracing::info_span!("create-container", worker = %w.name, handle = %spec.handle);
    create_on_room(w, spec, origin, cancel)
        .instrument(span)
        .await
}

async fn create_on_room(
    w: &WorkerClient,
    spec: ContainerSpec,
    origin: &Origin,
    cancel: &Cancel,
) -> Result<String, Fail> {
    let mut waited = false;
    loop {
        let e = match w.garden.create(spec.clone()).await {
            Ok(handle) => return Ok(handle),
            Err(e) => e,
        };
        if !e.to_string().contains(AT_CAP) {
            return Err(errored(super::liveness::worker_error(
                &w.name,
                "creating container",
                e,
            )));
        }
        if w.kept.evict(&w.name, &*w.garden).await {
            continue;
        }
        if !waited {
            tracing::info!(worker = %w.name, "worker at its container limit: waiting for room");
            origin.emit(BuildEvent::WaitingForWorker(Default::default()));
            waited = true;
        }
        tokio::select! {
            _ = cancel.token.cancelled() => return Err(Fail::Interrupted),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// What Garden says when a worker has as many containers as it may (`--max-containers`).
const AT_CAP: &str = "max containers reached";
