//! The build engine: runs a started build's plan on workers, streams its events and
//! finishes it with upstream's statuses. The scheduler decides *when* (scheduler/).

pub mod across;
pub mod events;
pub mod exec;
pub mod labels;
pub mod liveness;
pub mod placement;
pub mod plan;
pub mod redact;
pub mod resource;
pub mod runtime;
pub mod set_pipeline;
pub mod steps;
pub mod task;

use crate::db::{BuildRow, BuildStatus, Store};
use crate::proto::event::{self as ev, BuildEvent};
use events::{Events, Hub};
use exec::{Build, Scope};
use plan::{BuildPlan, Ids};
use runtime::{Cancel, Cleanup, Fail, Runtime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the API needs from the engine: wake the scheduler, abort a running build, follow
/// live events. Cheap to clone; exists without an engine (tests of the API alone).
#[derive(Clone, Default)]
pub struct Handle {
    pub wake: Arc<Notify>,
    pub hub: Hub,
    running: Arc<Mutex<HashMap<i64, CancellationToken>>>,
}

impl Handle {
    /// Asks the scheduler for a pass now (a build was triggered, a pipeline changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
    /// Aborts a build running on this node. False when it is not running here.
    pub fn abort(&self, build_id: i64) -> bool {
        match self.lock().get(&build_id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
    pub fn is_running(&self, build_id: i64) -> bool {
        self.lock().contains_key(&build_id)
    }
    /// Ids of the builds running on this node.
    pub fn running(&self) -> Vec<i64> {
        self.lock().keys().copied().collect()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, CancellationToken>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often a node looks for aborts of its builds received by other web nodes.
pub const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Engine {
    pub rt: Arc<Runtime>,
    pub handle: Handle,
    ids: Ids,
    /// Per job: its latest finished build still keeping its containers, and how to end that.
    interceptible: std::sync::Mutex<HashMap<i64, (i64, CancellationToken)>>,
    /// Fired when the node drains: no build starts after it, and finished builds clean up
    /// at once instead of staying interceptible.
    draining: CancellationToken,
}

impl Engine {
    pub fn new(rt: Arc<Runtime>, handle: Handle) -> Arc<Engine> {
        Arc::new(Engine {
            rt,
            handle,
            ids: Ids::default(),
            interceptible: Default::default(),
            draining: CancellationToken::new(),
        })
    }

    /// Drains this node (SIGTERM of web): no new build starts here; running ones get until
    /// `grace` to finish, then are aborted (their hooks run, their containers go). Returns
    /// once every build, check and teardown task has ended, or 10s after the abort.
    pub async fn drain(&self, grace: std::time::Duration, force: &CancellationToken) {
        self.draining.cancel();
        let running = self.handle.running().len();
        if running > 0 {
            tracing::info!(
                builds = running,
                ?grace,
                "draining: waiting for running builds"
            );
        }
        let all_done = async {
            while !self.handle.running().is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = all_done => {}
            _ = tokio::time::sleep(grace) => {}
            _ = force.cancelled() => {}
        }
        for id in self.handle.running() {
            let events = Events::start(self.store().clone(), self.handle.hub.clone(), id);
            events.emit(BuildEvent::Error(ev::Error {
                message: "the web node running this build shut down before it finished \
                          (--shutdown-grace-period)"
                    .into(),
                origin: Default::default(),
                time: crate::clock::now(),
            }));
            events.flush().await;
            self.handle.abort(id);
        }
        self.rt.tasks.close();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(10), self.rt.tasks.wait()).await;
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.rt.store
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Builds left `started` by a node that died cannot be resumed here: end them errored
    /// so none stays running forever.
    pub async fn recover(&self) {
        let Ok(started) = self
            .store()
            .builds_with_status(&[BuildStatus::Started])
            .await
        else {
            return;
        };
        for b in started {
            if self.handle.is_running(b.id) {
                continue;
            }
            let events = Events::start(self.store().clone(), self.handle.hub.clone(), b.id);
            let now = crate::clock::now();
            // A build-level error: no origin.
            events.emit(BuildEvent::Error(ev::Error {
                message: "build interrupted: the web node running it restarted".into(),
                origin: Default::default(),
                time: now,
            }));
            events.status("errored", now);
            events.flush().await;
            let _ = self
                .store()
                .finish_build(b.id, BuildStatus::Errored, now)
                .await;
        }
    }

    /// Stops, every [`WATCH_INTERVAL`], the builds running here that another web node was
    /// asked to abort (or finished, or deleted). Cancelling the token is exactly the local
    /// abort path, so `on_abort`/`ensure` hooks run and the build finishes `aborted`.
    pub async fn watch_remote_aborts(self: Arc<Self>, shutdown: CancellationToken) {
        crate::atc::periodic::Periodic::every("remote abort watch", WATCH_INTERVAL)
            .run(shutdown, |_| async {
                let running = self.handle.running();
                if running.is_empty() {
                    return Ok(());
                }
                for id in self.store().builds_to_stop(&running).await? {
                    if self.handle.abort(id) {
                        tracing::info!(build = id, "aborting: requested through another web node");
                    }
                }
                Ok::<_, crate::db::StoreError>(())
            })
            .await
    }

    /// Starts a pending build with `plan`. False when another node started it first.
    pub async fn start(self: &Arc<Self>, row: BuildRow, plan: BuildPlan) -> anyhow::Result<bool> {
        if self.draining.is_cancelled() {
            anyhow::bail!("this web node is shutting down");
        }
        let plan_json = serde_json::to_value(&plan)?;
        self.store().save_build_plan(row.id, &plan_json).await?;
        let at = crate::clock::now();
        if !self.store().start_build(row.id, at).await? {
            return Ok(false);
        }
        let token = CancellationToken::new();
        self.handle.lock().insert(row.id, token.clone());
        let engine = self.clone();
        let span = tracing::info_span!("build", id = row.id);
        let task = async move {
            let id = row.id;
            let (status, build) = engine.run(row, plan, token, at).await;
            engine.handle.lock().remove(&id);
            engine.handle.wake();
            // Containers and volumes go after the build has finished, as upstream's GC
            // removes them after the fact: unmounting them is not part of the build. A
            // failed or errored build's stay for `fly intercept`: for INTERCEPT_GRACE, or
            // until the job's next build finishes (succeeded ones go at once, which keeps
            // a busy worker under its container limit).
            if matches!(status, BuildStatus::Failed | BuildStatus::Errored) {
                engine.interceptible(&build).await;
            } else if let Some(job) = build.row.job_id {
                engine.release_interceptible(job);
            }
            build.cleanup.run().await;
        };
        self.rt.tasks.spawn(task.instrument(span));
        Ok(true)
    }

    /// Waits while a finished failed build stays interceptible: INTERCEPT_GRACE, cut short
    /// when a later build of the same job finishes.
    async fn interceptible(&self, build: &Build) {
        let done = CancellationToken::new();
        if let Some(job) = build.row.job_id {
            let mut latest = self.interceptible.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, previous)) = latest.insert(job, (build.row.id, done.clone())) {
                previous.cancel();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(runtime::INTERCEPT_GRACE) => {}
            _ = done.cancelled() => {}
            _ = self.draining.cancelled() => {}
        }
        if let Some(job) = build.row.job_id {
            let mut latest = self.interceptible.lock().unwrap_or_else(|e| e.into_inner());
            if latest.get(&job).is_some_and(|(id, _)| *id == build.row.id) {
                latest.remove(&job);
            }
        }
    }

    /// A later build of `job` finished: the previous one's containers may go.
    fn release_interceptible(&self, job: i64) {
        let mut latest = self.interceptible.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, previous)) = latest.remove(&job) {
            previous.cancel();
        }
    }

    /// Runs a started build to its end status; returns it for the cleanup.
    async fn run(
        &self,
        row: BuildRow,
        plan: BuildPlan,
        token: CancellationToken,
        at: i64,
    ) -> (BuildStatus, Arc<Build>) {
        let mut events = Events::start(self.store().clone(), self.handle.hub.clone(), row.id);
        if !self.rt.redact_secrets {
            events = events.without_redaction();
        }
        events.status("started", at);
        let (status, build) = self
            .run_plan(row.clone(), plan, events.clone(), token)
            .await;
        let end = crate::clock::now();
        events.status(status.as_str(), end);
        events.flush().await;
        if let Err(e) = self.store().finish_build(row.id, status, end).await {
            tracing::warn!(build = row.id, error = %e, "finishing build");
        }
        // Event streams send `end` once the build is finished in the store: wake them now
        // rather than at their next poll.
        self.handle.hub.notify(row.id);
        if let Err(e) =
            crate::atc::gc::archive_children_not_set_by(self.store().as_ref(), &row, status).await
        {
            tracing::warn!(build = row.id, error = %e, "archiving child pipelines");
        }
        tracing::info!(build = row.id, status = status.as_str(), "build finished");
        (status, build)
    }

    /// Runs a plan to its end and cleans up after it (periodic checks, with a discarding
    /// sink).
    pub async fn execute(
        &self,
        row: BuildRow,
        plan: BuildPlan,
        events: Events,
        token: CancellationToken,
    ) -> BuildStatus {
        let (status, build) = self.run_plan(row, plan, events, token).await;
        build.cleanup.run().await;
        status
    }

    /// Runs a plan to its end; what it created on workers is left to the caller to clean.
    async fn run_plan(
        &self,
        row: BuildRow,
        plan: BuildPlan,
        events: Events,
        token: CancellationToken,
    ) -> (BuildStatus, Arc<Build>) {
        let build = Arc::new(Build {
            rt: self.rt.clone(),
            cleanup: Cleanup::new(row.team_id),
            row,
            plan,
            events,
            results: Mutex::default(),
        });
        let algs = exec::idtoken_algorithms(&build.plan);
        if !algs.is_empty() {
            // Interpolation signs synchronously, so the keys are loaded (or made) up front.
            if let Err(e) = self.rt.idtoken.ensure(self.store().as_ref(), &algs).await {
                tracing::warn!(build = build.row.id, error = %e, "idtoken signing keys");
            }
        }
        let scope = Arc::new(Scope::default());
        let cancel = Cancel::new(token);
        let root = build.plan.plan.clone();
        let result = build.exec(&scope, &root, &cancel).await;
        let status = match result {
            Ok(true) => BuildStatus::Succeeded,
            Ok(false) => BuildStatus::Failed,
            Err(Fail::Errored(_)) => BuildStatus::Errored,
            Err(Fail::Interrupted) => BuildStatus::Aborted,
        };
        (status, build)
    }
}
