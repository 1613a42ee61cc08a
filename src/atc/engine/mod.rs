//! The build engine: runs a started build's plan on workers, streams its events and
//! finishes it with upstream's statuses. The scheduler decides *when* (scheduler/).

pub mod across;
pub mod events;
pub mod exec;
pub mod image_checks;
pub mod journal;
pub mod kept;
pub mod labels;
pub mod liveness;
pub mod placement;
pub mod plan;
pub mod process;
pub mod redact;
pub mod resource;
pub mod runtime;
pub mod set_pipeline;
pub mod steps;
pub mod task;
pub mod turns;

use crate::db::{BuildRow, BuildStart, BuildStatus, Store};
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
    /// What this node changed since the scheduler's last pass (see [`Hints`]).
    pub hints: Arc<Mutex<Hints>>,
    pub hub: Hub,
    running: Arc<Mutex<HashMap<i64, CancellationToken>>>,
}

/// What changed since the scheduler last read the store, as far as this node knows: a
/// pass woken for a few pipelines re-reads only theirs (a busy node finishes builds many
/// times a second, and re-reading every pipeline's marks each time was most of a `passed`
/// chain's hop at 400 pipelines). Anything else is read within a second all the same.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Hints {
    /// Unknown: read everything.
    pub everything: bool,
    pub pipelines: std::collections::HashSet<i64>,
    /// Resource config scopes whose versions moved: every pipeline with a resource on one.
    pub scopes: std::collections::HashSet<i64>,
}

impl Handle {
    /// Asks the scheduler for a pass now, reading everything (a pipeline changed).
    pub fn wake(&self) {
        self.hint(|h| h.everything = true);
        self.wake.notify_one();
    }
    /// Asks the scheduler for a pass now over what `hint` says changed.
    pub fn wake_for(&self, hint: impl FnOnce(&mut Hints)) {
        self.hint(hint);
        self.wake.notify_one();
    }
    /// Records a change for the next pass without asking for one.
    pub fn hint(&self, hint: impl FnOnce(&mut Hints)) {
        hint(&mut self.hints.lock().unwrap_or_else(|e| e.into_inner()));
    }
    /// What changed since the last call.
    pub fn take_hints(&self) -> Hints {
        std::mem::take(&mut self.hints.lock().unwrap_or_else(|e| e.into_inner()))
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
/// How long a web node owns the builds it runs without renewing: another node resumes
/// them within this (plus one [`OWNERSHIP_INTERVAL`]) of its death.
pub const BUILD_LEASE_TTL: i64 = 10;
/// How often a node renews its builds and looks for builds no live node owns.
pub const OWNERSHIP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Engine {
    pub rt: Arc<Runtime>,
    pub handle: Handle,
    ids: Ids,
    /// Per job: its latest finished build still keeping its containers, and how to end that.
    interceptible: std::sync::Mutex<HashMap<i64, (i64, CancellationToken)>>,
    /// Fired when the node drains: no build starts after it, and finished builds clean up
    /// at once instead of staying interceptible.
    draining: CancellationToken,
    /// This process as the owner of the builds it runs (a restarted node is a new owner).
    holder: String,
    /// Per running build: stops running it here without ending it (another node resumes).
    detach: Mutex<HashMap<i64, CancellationToken>>,
}

impl Engine {
    /// `holder` names this node as the owner of its builds; a node restarted with the same
    /// holder takes its builds back at once instead of waiting for its old hold to lapse.
    pub fn new(rt: Arc<Runtime>, handle: Handle, holder: String) -> Arc<Engine> {
        Arc::new(Engine {
            rt,
            handle,
            ids: Ids::default(),
            interceptible: Default::default(),
            draining: CancellationToken::new(),
            holder,
            detach: Mutex::default(),
        })
    }

    /// Drains this node (SIGTERM of web): no new build starts here; running ones get until
    /// `grace` to finish. Then, with `hand_over`, this node lets go of them without ending
    /// them, and whichever node runs next (another, or this one restarted) resumes them
    /// from their journal; without (quickstart, whose worker stops with it) they are
    /// aborted: their hooks run, their containers go. Returns once every build, check and
    /// teardown task has ended, or 10s after that.
    pub async fn drain(
        &self,
        grace: std::time::Duration,
        force: &CancellationToken,
        hand_over: bool,
    ) {
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
        let left = self.handle.running();
        if hand_over && !left.is_empty() {
            tracing::info!(builds = ?left, "draining: handing running builds over");
            for id in &left {
                if let Some(t) = self.lock_detach().get(id) {
                    t.cancel();
                }
            }
            if let Err(e) = self.store().release_builds(&self.holder, &left).await {
                tracing::warn!(error = %e, "handing builds over; they resume once their lease lapses");
            }
        }
        for id in left.into_iter().filter(|_| !hand_over) {
            let message = "the web node running this build shut down before it finished \
                           (--shutdown-grace-period)";
            self.build_error(id, message).flush().await;
            self.handle.abort(id);
        }
        self.rt.tasks.close();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(10), self.rt.tasks.wait()).await;
    }

    /// Writes a build-level `error` event (no origin) to a build this node does not run
    /// (or no longer runs); the caller adds what follows and flushes.
    fn build_error(&self, id: i64, message: &str) -> Events {
        let events = Events::start(self.store().clone(), self.handle.hub.clone(), id);
        events.emit(BuildEvent::Error(ev::Error {
            message: message.into(),
            origin: Default::default(),
            time: crate::clock::now(),
        }));
        events
    }

    fn lock_detach(&self) -> std::sync::MutexGuard<'_, HashMap<i64, CancellationToken>> {
        self.detach.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.rt.store
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Every [`OWNERSHIP_INTERVAL`]: renews this node's hold on the builds it runs, and
    /// adopts and resumes started builds whose owner lapsed (it died, or handed them over).
    pub async fn keep_builds(self: Arc<Self>, shutdown: CancellationToken) {
        crate::atc::periodic::Periodic::every("build ownership", OWNERSHIP_INTERVAL)
            .run(shutdown, |_| async {
                let now = crate::clock::now();
                let expires = now + BUILD_LEASE_TTL;
                // Builds this node had claimed before the renewal asks: one claimed while it
                // runs is not missing from its answer by mistake.
                let claimed: Vec<i64> = self.lock_detach().keys().copied().collect();
                let held = self.store().renew_builds(&self.holder, expires).await?;
                for id in claimed {
                    if held.contains(&id) {
                        continue;
                    }
                    // Not ours and still started: this node could not renew it in time and
                    // another adopted it. Only one may run it: stop here without ending it.
                    let adopted = matches!(
                        self.store().build(id).await?,
                        Some(BuildRow {
                            status: BuildStatus::Started,
                            ..
                        })
                    );
                    if adopted {
                        if let Some(t) = self.lock_detach().get(&id) {
                            tracing::warn!(build_id = id, "another web node adopted this build");
                            t.cancel();
                        }
                    }
                }
                if self.draining.is_cancelled() {
                    return Ok(());
                }
                // Builds lapsed elsewhere, and this node's own from before a restart (held
                // but not running here: a build starting here is in `running` before it is
                // claimed).
                let mut adoptable = self.store().orphaned_builds(now).await?;
                adoptable.extend(held);
                for id in adoptable {
                    if self.handle.is_running(id)
                        || !self
                            .store()
                            .claim_build(id, &self.holder, expires, now)
                            .await?
                    {
                        continue;
                    }
                    if let Err(e) = self.resume(id).await {
                        tracing::warn!(build_id = id, error = %e, "resuming build");
                    }
                }
                Ok::<_, crate::db::StoreError>(())
            })
            .await
    }

    /// Resumes a started build this node just adopted: its plan is replayed against its
    /// journal (see `journal`). A build whose plan cannot be read is ended errored.
    async fn resume(self: &Arc<Self>, id: i64) -> anyhow::Result<()> {
        let Some(row) = self.store().build(id).await? else {
            return Ok(());
        };
        let Some(plan) = row.plan.clone().and_then(BuildPlan::from_stored) else {
            let message = "build interrupted: its plan could not be read to resume it";
            let events = self.build_error(id, message);
            let now = crate::clock::now();
            events.status("errored", now);
            events.flush().await;
            self.store()
                .finish_build(id, BuildStatus::Errored, now)
                .await?;
            return Ok(());
        };
        let journal = journal::Journal::load(self.store().clone(), id).await?;
        tracing::info!(
            build_id = id,
            "resuming build adopted from a lapsed web node"
        );
        let at = row.start_time;
        crate::atc::metrics::metrics().build_resumed();
        self.launch(row, plan, journal, CancellationToken::new(), at, true);
        Ok(())
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
                        tracing::info!(
                            build_id = id,
                            "aborting: requested through another web node"
                        );
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
        let at = crate::clock::now();
        let start = BuildStart {
            at,
            plan: serde_json::to_value(&plan)?,
            holder: self.holder.clone(),
            expires: at + BUILD_LEASE_TTL,
        };
        // Running here before it is ours, so the ownership loop never adopts it as a
        // leftover of this node.
        let token = CancellationToken::new();
        self.handle.lock().insert(row.id, token.clone());
        let started = self.store().start_build(row.id, &start).await;
        if !matches!(started, Ok(true)) {
            self.handle.lock().remove(&row.id);
            return Ok(started?);
        }
        let journal = journal::Journal::fresh(self.store().clone(), row.id);
        crate::atc::metrics::metrics().build_started();
        self.launch(row, plan, journal, token, at, false);
        Ok(true)
    }

    /// Runs a started build here in the background, to its end or until it is detached.
    fn launch(
        self: &Arc<Self>,
        row: BuildRow,
        plan: BuildPlan,
        journal: journal::Journal,
        token: CancellationToken,
        at: i64,
        resumed: bool,
    ) {
        if journal.aborted() {
            // Aborted before the resume: it goes on aborting (its hooks run).
            token.cancel();
        }
        let detach = CancellationToken::new();
        self.handle.lock().insert(row.id, token.clone());
        self.lock_detach().insert(row.id, detach.clone());
        let engine = self.clone();
        // Every line logged about this build carries the same keys, in text and JSON.
        // A trace of its own (it is started from the scheduler's or the API's span).
        let span = tracing::info_span!(
            parent: None,
            "build",
            build_id = row.id,
            team = %row.team_name,
            pipeline = %row.pipeline_name,
            job = %row.job_name
        );
        let task = async move {
            let id = row.id;
            let job_pipeline = row.job_id.and(row.pipeline_id);
            let run = engine.run(row, plan, journal, token, at, resumed);
            let finished = tokio::select! {
                r = run => Some(r),
                _ = detach.cancelled() => None,
            };
            engine.handle.lock().remove(&id);
            engine.lock_detach().remove(&id);
            // A job's build moved its own pipeline (versions it put are read within a
            // second by other pipelines sharing them); anything else, who knows.
            match (job_pipeline, &finished) {
                (Some(p), Some(_)) => engine.handle.wake_for(|h| {
                    h.pipelines.insert(p);
                }),
                _ => engine.handle.wake(),
            }
            let Some((status, build)) = finished else {
                // Handed over: what it holds on workers is the next owner's.
                return;
            };
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
        journal: journal::Journal,
        token: CancellationToken,
        at: i64,
        resumed: bool,
    ) -> (BuildStatus, Arc<Build>) {
        let mut events = Events::start(self.store().clone(), self.handle.hub.clone(), row.id);
        if !self.rt.redact_secrets {
            events = events.without_redaction();
        }
        if !resumed {
            events.status("started", at);
        }
        let (status, build) = self
            .run_plan(row.clone(), plan, events.clone(), journal, token)
            .await;
        let end = crate::clock::now();
        events.status(status.as_str(), end);
        events.flush().await;
        if let Err(e) = self.store().finish_build(row.id, status, end).await {
            tracing::warn!(build_id = row.id, error = %e, "finishing build");
        }
        crate::atc::metrics::metrics().build_finished(&row, status, (end - at).max(0) as f64);
        // Event streams send `end` once the build is finished in the store: wake them now
        // rather than at their next poll.
        self.handle.hub.notify(row.id);
        if let Err(e) =
            crate::atc::gc::archive_children_not_set_by(self.store().as_ref(), &row, status).await
        {
            tracing::warn!(build_id = row.id, error = %e, "archiving child pipelines");
        }
        tracing::info!(
            build_id = row.id,
            status = status.as_str(),
            "build finished"
        );
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
        let (status, build) = self
            .run_plan(row, plan, events, journal::Journal::off(), token)
            .await;
        build.cleanup.run().await;
        status
    }

    /// Runs a plan to its end; what it created on workers is left to the caller to clean.
    async fn run_plan(
        &self,
        row: BuildRow,
        plan: BuildPlan,
        events: Events,
        journal: journal::Journal,
        token: CancellationToken,
    ) -> (BuildStatus, Arc<Build>) {
        let cleanup = Cleanup::new(row.team_id);
        // A resumed build cleans up what its earlier owners made, too.
        for h in journal.held() {
            if let Ok(w) = self.rt.worker(&h.worker).await {
                cleanup.restore(&w, &h.handle, h.volume);
            }
        }
        let build = Arc::new(Build {
            rt: self.rt.clone(),
            cleanup,
            row,
            plan,
            events,
            results: Mutex::default(),
            journal,
        });
        let algs = exec::idtoken_algorithms(&build.plan);
        if !algs.is_empty() {
            // Interpolation signs synchronously, so the keys are loaded (or made) up front.
            if let Err(e) = self.rt.idtoken.ensure(self.store().as_ref(), &algs).await {
                tracing::warn!(build_id = build.row.id, error = %e, "idtoken signing keys");
            }
        }
        let scope = Arc::new(Scope::default());
        let cancel = Cancel::new(token);
        let root = build.plan.plan.clone();
        // An abort is journaled, so a resume goes on aborting.
        let mark_abort = async {
            cancel.token.cancelled().await;
            build.journal.mark_aborted().await;
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            r = build.exec(&scope, &root, &cancel) => r,
            _ = mark_abort => unreachable!("pending"),
        };
        let status = match result {
            Ok(true) => BuildStatus::Succeeded,
            Ok(false) => BuildStatus::Failed,
            Err(Fail::Errored(_)) => BuildStatus::Errored,
            Err(Fail::Interrupted) => BuildStatus::Aborted,
        };
        (status, build)
    }
}
