//! Executes a plan tree: composite nodes here, leaf steps in `steps`. Outcomes follow
//! build-events.md §7: a step succeeds or fails (`Ok(bool)`), or errors / is interrupted
//! (`Err(Fail)`); every leaf that errors or is interrupted writes one `error` event.

use super::events::{Events, Origin};
use super::journal::{Journal, LocalVar, Outcome, StepEntry};
use super::plan::{BuildPlan, HookNode, Node, Plan};
use super::runtime::{errored, Artifact, Cancel, Cleanup, Fail, Runtime, StepResult};
use crate::atc::idtoken::token::TokenSubject;
use crate::config::idtoken::{parse_idtoken_config, IdTokenConfig, IdTokenProblem};
use crate::config::vars::{Reference, Variables, VarsError};
use crate::db::BuildRow;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

/// One running build.
pub struct Build {
    pub rt: Arc<Runtime>,
    pub row: BuildRow,
    pub plan: BuildPlan,
    pub events: Events,
    pub cleanup: Cleanup,
    /// Versions produced by puts, by plan id (for the implicit get's `version_from`).
    pub results: Mutex<HashMap<String, Value>>,
    /// What has been done so far, kept in the store (see `journal`).
    pub journal: Journal,
}

tokio::task_local! {
    /// The retry attempt the running step belongs to (unset outside `attempts:`).
    static ATTEMPT: String;
}

/// The current step's attempt label: empty outside a retry.
pub fn attempt() -> String {
    ATTEMPT.try_with(|a| a.clone()).unwrap_or_default()
}

/// Artifacts and local vars (`load_var`, across values). Across substeps get a child scope.
#[derive(Default)]
pub struct Scope {
    parent: Option<Arc<Scope>>,
    artifacts: Mutex<HashMap<String, Artifact>>,
    vars: Mutex<Map<String, Value>>,
    /// Local vars whose values are redacted wherever they are interpolated.
    secret_vars: Mutex<std::collections::HashSet<String>>,
    /// `BUILD_STATUS` inside hooks.
    pub status: Mutex<Option<&'static str>>,
}

impl Scope {
    pub fn child(parent: &Arc<Scope>) -> Arc<Scope> {
        Arc::new(Scope {
            parent: Some(parent.clone()),
            ..Default::default()
        })
    }
    pub fn artifact(&self, name: &str) -> Option<Artifact> {
        if let Some(a) = self.lock_artifacts().get(name) {
            return Some(a.clone());
        }
        self.parent.as_ref().and_then(|p| p.artifact(name))
    }
    pub fn set_artifact(&self, name: &str, a: Artifact) {
        self.lock_artifacts().insert(name.to_string(), a);
    }
    /// Every artifact visible here (inner scopes shadow outer ones).
    pub fn all_artifacts(&self) -> HashMap<String, Artifact> {
        let mut out = self
            .parent
            .as_ref()
            .map(|p| p.all_artifacts())
            .unwrap_or_default();
        out.extend(self.lock_artifacts().clone());
        out
    }
    fn lock_artifacts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Artifact>> {
        self.artifacts.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set_var(&self, name: &str, v: Value) {
        self.vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), v);
    }
    /// Marks a local var as secret (`load_var` without `reveal`).
    pub fn set_secret(&self, name: &str) {
        self.secret_vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
    }
    fn is_secret(&self, name: &str) -> bool {
        if self
            .vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
        {
            return self
                .secret_vars
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(name);
        }
        self.parent.as_ref().is_some_and(|p| p.is_secret(name))
    }
    fn var(&self, name: &str) -> Option<Value> {
        if let Some(v) = self
            .vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.var(name))
    }
    /// Moves what a step left in this (its own) scope into `into`, and returns it for the
    /// build's journal.
    fn lift_into(&self, into: &Scope) -> (Vec<(String, Artifact)>, Vec<LocalVar>) {
        let artifacts: Vec<(String, Artifact)> = self.lock_artifacts().drain().collect();
        for (name, a) in &artifacts {
            into.set_artifact(name, a.clone());
        }
        let vars: Map<String, Value> =
            std::mem::take(&mut *self.vars.lock().unwrap_or_else(|e| e.into_inner()));
        let secret = self.secret_vars.lock().unwrap_or_else(|e| e.into_inner());
        let vars: Vec<LocalVar> = vars
            .into_iter()
            .map(|(name, value)| LocalVar {
                secret: secret.contains(&name),
                name,
                value,
            })
            .collect();
        drop(secret);
        for v in &vars {
            into.restore_var(v);
        }
        (artifacts, vars)
    }

    fn restore_var(&self, v: &LocalVar) {
        self.set_var(&v.name, v.value.clone());
        if v.secret {
            self.set_secret(&v.name);
        }
    }

    pub fn build_status(&self) -> Option<&'static str> {
        if let Some(s) = *self.status.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some(s);
        }
        self.parent.as_ref().and_then(|p| p.build_status())
    }
}

/// Local vars: `((.:name.field))`.
impl Variables for Scope {
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError> {
        if r.source != "." {
            return Ok(None);
        }
        match self.var(&r.path) {
            None => Ok(None),
            Some(v) => crate::config::vars::traverse(v, &r.to_string(), &r.fields).map(Some),
        }
    }
}

/// A var source's settings, read when the build interpolates.
enum Source {
    /// `dummy`: `((source:name))` from the source's `vars`.
    Dummy(Map<String, Value>),
    /// `idtoken`: `((source:token))` is a JWT about this build's pipeline.
    IdToken(Result<IdTokenConfig, String>),
}

/// The plan's `var_sources` of the types the engine resolves (`dummy`, `idtoken`).
pub struct VarSources<'a> {
    sources: Vec<(String, Source)>,
    /// The build the vars are for (an `idtoken` is about it); None outside a build.
    build: Option<&'a Build>,
    /// Values handed out, so every lookup of a var during one interpolation (including the
    /// one that collects values to redact) sees the same token.
    given: Mutex<HashMap<String, Value>>,
    /// Values fetched from credential managers for this interpolation, by identifier.
    fetched: HashMap<String, Value>,
}

impl<'a> VarSources<'a> {
    pub fn of(build: &'a Build) -> VarSources<'a> {
        VarSources {
            build: Some(build),
            ..VarSources::outside_build(&build.plan.var_sources)
        }
    }

    /// A pipeline's var sources (as in [`BuildPlan::var_sources`]) resolved outside any
    /// build, e.g. for a resource's `webhook_token`: `dummy` vars resolve; an `idtoken`
    /// var fails, as it names no build to be about.
    pub fn outside_build(var_sources: &[Value]) -> VarSources<'static> {
        let sources = var_sources
            .iter()
            .filter_map(|v| {
                let name = v.get("name")?.as_str()?.to_string();
                let config = v.get("config").unwrap_or(&Value::Null);
                let source = match v.get("type")?.as_str()? {
                    "dummy" => Source::Dummy(config.get("vars")?.as_object()?.clone()),
                    "idtoken" => Source::IdToken(parse_idtoken_config(config).map_err(|p| {
                        let (IdTokenProblem::Create(why) | IdTokenProblem::Invalid(why)) = p;
                        why
                    })),
                    _ => return None,
                };
                Some((name, source))
            })
            .collect();
        VarSources {
            sources,
            build: None,
            given: Mutex::default(),
            fetched: HashMap::new(),
        }
    }

    /// With values already fetched from credential managers (see [`crate::atc::creds`]).
    pub fn with_fetched(self, fetched: HashMap<String, Value>) -> VarSources<'a> {
        VarSources { fetched, ..self }
    }

    fn token(&self, config: &IdTokenConfig) -> Result<Value, VarsError> {
        let Some(build) = self.build else {
            return Err(VarsError::Source(
                "idtoken vars are only available in builds".into(),
            ));
        };
        let row = &build.row;
        let who = TokenSubject {
            team: row.team_name.clone(),
            pipeline: row.pipeline_name.clone(),
            instance_vars: row
                .pipeline_instance_vars
                .as_ref()
                .and_then(|v| v.as_object().cloned()),
            job: row.job_name.clone(),
        };
        let rt = &build.rt;
        rt.idtoken
            .token(config, &rt.external_url, &who, crate::clock::now())
            .map(Value::String)
            .map_err(|e| VarsError::Source(e.to_string()))
    }
}

/// The algorithms of a plan's `idtoken` var sources (their keys must exist before it runs).
pub fn idtoken_algorithms(plan: &BuildPlan) -> Vec<crate::config::idtoken::Algorithm> {
    let mut algs: Vec<_> = plan
        .var_sources
        .iter()
        .filter(|v| v.get("type").and_then(Value::as_str) == Some("idtoken"))
        .filter_map(|v| parse_idtoken_config(v.get("config").unwrap_or(&Value::Null)).ok())
        .map(|c| c.algorithm)
        .collect();
    algs.dedup();
    algs
}

impl Variables for VarSources<'_> {
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError> {
        if let Some(v) = self.fetched.get(&r.identifier()) {
            return crate::config::vars::traverse(v.clone(), &r.to_string(), &r.fields).map(Some);
        }
        let Some((_, source)) = self.sources.iter().find(|(name, _)| *name == r.source) else {
            return Ok(None);
        };
        let value = match source {
            Source::Dummy(vars) => match vars.get(&r.path) {
                None => return Ok(None),
                Some(v) => v.clone(),
            },
            Source::IdToken(_) if r.path != "token" => {
                return Err(VarsError::Source(
                    "idtoken credential provider only supports the field 'token'".into(),
                ))
            }
            Source::IdToken(Err(why)) => return Err(VarsError::Source(why.clone())),
            Source::IdToken(Ok(config)) => {
                let mut given = self.given.lock().unwrap_or_else(|e| e.into_inner());
                match given.get(&r.source) {
                    Some(v) => v.clone(),
                    None => {
                        let v = self.token(config)?;
                        given.insert(r.source.clone(), v.clone());
                        v
                    }
                }
            }
        };
        crate::config::vars::traverse(value, &r.to_string(), &r.fields).map(Some)
    }
}

impl Build {
    /// Interpolates a step's config with local vars and var sources; every var must
    /// resolve. Values that came from var sources are redacted from the log from now on.
    /// A leaf step of the plan with its `((vars))` resolved: interpolated as JSON, so a
    /// var may stand anywhere in it, and read back into its type.
    pub async fn interpolate_leaf<T>(&self, scope: &Scope, leaf: &T) -> Result<T, Fail>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let value = serde_json::to_value(leaf).map_err(errored)?;
        let value = self.interpolate(scope, &value).await?;
        serde_json::from_value(value)
            .map_err(|e| errored(format!("invalid step after interpolation: {e}")))
    }

    pub async fn interpolate(&self, scope: &Scope, config: &Value) -> Result<Value, Fail> {
        self.interpolate_with(scope, config, true).await
    }

    /// As [`Build::interpolate`]; `track` false leaves the values out of redaction (across
    /// values are shown in the log as upstream does). Credential-manager vars are fetched
    /// first, as interpolation itself cannot wait.
    pub async fn interpolate_with(
        &self,
        scope: &Scope,
        config: &Value,
        track: bool,
    ) -> Result<Value, Fail> {
        let owner = crate::atc::creds::Owner {
            team: &self.row.team_name,
            pipeline: &self.row.pipeline_name,
        };
        let fetched = self
            .rt
            .creds
            .fetch(&self.plan.var_sources, &owner, config)
            .await
            .map_err(errored)?;
        let sources = VarSources::of(self).with_fetched(fetched);
        let vars = crate::config::vars::MultiVars(vec![scope, &sources]);
        let mut tracker = crate::config::vars::Tracker::default();
        let out = crate::config::vars::interpolate_tracked(config, &vars, true, &mut tracker)
            .map_err(errored)?;
        let mut secrets = Vec::new();
        for id in tracker.used.iter().filter(|_| track) {
            if let Ok(r) = Reference::parse(id) {
                if r.source == "." && scope.is_secret(&r.path) {
                    if let Ok(Some(v)) = scope.get(&r) {
                        collect_strings(&v, &mut secrets);
                    }
                } else if r.source != "." {
                    if let Ok(Some(v)) = sources.get(&r) {
                        collect_strings(&v, &mut secrets);
                    }
                }
            }
        }
        self.events.add_secrets(secrets);
        Ok(out)
    }

    pub fn origin(&self, plan: &Plan) -> Origin {
        self.events.origin(&plan.id)
    }

    /// Executes a node.
    pub fn exec<'a>(
        self: &'a Arc<Self>,
        scope: &'a Arc<Scope>,
        plan: &'a Plan,
        cancel: &'a Cancel,
    ) -> BoxFuture<'a, StepResult> {
        async move {
            match &plan.node {
                Node::Get(_)
                | Node::Put(_)
                | Node::Task(_)
                | Node::SetPipeline(_)
                | Node::LoadVar(_)
                | Node::Run(_)
                | Node::Check(_)
                | Node::ArtifactInput(_)
                | Node::ArtifactOutput(_) => self.leaf(scope, plan, cancel).await,
                Node::Do(steps) => {
                    for s in steps {
                        if !self.exec(scope, s, cancel).await? {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }
                Node::InParallel(p) => {
                    self.in_parallel(scope, &p.steps, p.limit, p.fail_fast, cancel)
                        .await
                }
                Node::Across(a) => super::across::run(self, scope, plan, a, cancel).await,
                Node::Try(t) => match self.exec(scope, &t.step, cancel).await {
                    Err(Fail::Interrupted) if cancel.is_cancelled() => Err(Fail::Interrupted),
                    _ => Ok(true),
                },
                Node::Timeout(t) => {
                    let duration = crate::config::parse_duration(&t.duration)
                        .map_err(|e| errored(format!("invalid timeout '{}': {e}", t.duration)))?;
                    // A deadline: it counts from the first start, across resumes.
                    let started = self.journal.timer_started(&plan.id).await;
                    let inner = cancel.child_with_deadline(started, duration);
                    let r = self.exec(scope, &t.step, &inner).await;
                    let timed_out = inner.timed_out() && !cancel.is_cancelled();
                    inner.token.cancel();
                    match r {
                        Err(Fail::Interrupted) if timed_out => Ok(false),
                        other => other,
                    }
                }
                Node::Retry(attempts) => {
                    let mut last = Ok(false);
                    let outer = attempt();
                    for (i, a) in attempts.iter().enumerate() {
                        // Containers of each attempt are labelled with it (`1`, or `2.1`
                        // within an outer retry) for `fly intercept --attempt`.
                        let n = if outer.is_empty() {
                            (i + 1).to_string()
                        } else {
                            format!("{outer}.{}", i + 1)
                        };
                        last = ATTEMPT.scope(n, self.exec(scope, a, cancel)).await;
                        match last {
                            Ok(true) => return Ok(true),
                            Err(Fail::Interrupted) if cancel.is_cancelled() => return last,
                            _ => {}
                        }
                    }
                    last
                }
                Node::OnSuccess(h) => {
                    let r = self.exec(scope, &h.step, cancel).await?;
                    if !r {
                        return Ok(false);
                    }
                    self.hook(scope, h, "succeeded", cancel).await
                }
                Node::OnFailure(h) => {
                    let r = self.exec(scope, &h.step, cancel).await?;
                    if r {
                        return Ok(true);
                    }
                    self.hook(scope, h, "failed", cancel).await?;
                    Ok(false)
                }
                Node::OnError(h) => match self.exec(scope, &h.step, cancel).await {
                    Err(Fail::Errored(m)) => {
                        let _ = self.hook(scope, h, "errored", cancel).await;
                        Err(Fail::Errored(m))
                    }
                    other => other,
                },
                Node::OnAbort(h) => match self.exec(scope, &h.step, cancel).await {
                    Err(Fail::Interrupted) if cancel.is_cancelled() && !cancel.timed_out() => {
                        // The build was aborted: the hook still runs, uninterrupted.
                        let _ = self.hook(scope, h, "aborted", &Cancel::default()).await;
                        Err(Fail::Interrupted)
                    }
                    other => other,
                },
                Node::Ensure(h) => {
                    let r = self.exec(scope, &h.step, cancel).await;
                    let hook_cancel = if cancel.is_cancelled() {
                        Cancel::default()
                    } else {
                        cancel.clone()
                    };
                    let status = match &r {
                        Ok(true) => "succeeded",
                        Ok(false) => "failed",
                        Err(Fail::Errored(_)) => "errored",
                        Err(Fail::Interrupted) => "aborted",
                    };
                    let h = self.hook(scope, h, status, &hook_cancel).await;
                    match (r, h) {
                        (Err(e), _) => Err(e),
                        (Ok(a), Ok(b)) => Ok(a && b),
                        (Ok(_), Err(e)) => Err(e),
                    }
                }
            }
        }
        .boxed()
    }

    /// Runs a leaf step, or replays it when the journal has it finished (a resumed build).
    /// Its outcome and what it left go to the journal.
    async fn leaf(
        self: &Arc<Self>,
        scope: &Arc<Scope>,
        plan: &Plan,
        cancel: &Cancel,
    ) -> StepResult {
        if let Some(done) = self.journal.finished(&plan.id) {
            return self.replay(scope, plan, done).await;
        }
        if cancel.is_cancelled() {
            return Err(Fail::Interrupted);
        }
        let origin = self.origin(plan);
        // A get/put/task `timeout:` bounds the step itself, from its first start; running
        // out of time fails it (not errors it), as upstream.
        let limit = plan.node.step_timeout();
        let inner = match limit {
            Some(t) => {
                let d = crate::config::parse_duration(t)
                    .map_err(|e| errored(format!("invalid timeout '{t}': {e}")))?;
                let started = self.journal.step_started(&plan.id).await;
                cancel.child_with_deadline(started, d)
            }
            None => cancel.clone(),
        };
        let own = Scope::child(scope);
        let (kind, name) = plan.node.step().unwrap_or(("step", ""));
        let span = tracing::info_span!("step", otel.name = kind, step = name, plan_id = %plan.id);
        let mut r = super::steps::run(self, &own, plan, &inner)
            .instrument(span)
            .await;
        let (artifacts, vars) = own.lift_into(scope);
        match &r {
            Err(Fail::Errored(msg)) => origin.error(msg),
            Err(Fail::Interrupted) => origin.error(inner.reason()),
            Ok(_) => {}
        }
        if limit.is_some() {
            let timed_out = inner.timed_out() && !cancel.is_cancelled();
            inner.token.cancel();
            if timed_out && r == Err(Fail::Interrupted) {
                r = Ok(false);
            }
        }
        if self.journal.is_on() {
            let mut entry = self.journal.step(&plan.id).unwrap_or_default();
            entry.outcome = Some(Outcome::of(&r));
            entry.artifacts = artifacts;
            entry.vars = vars;
            entry.result = self.lock_results().get(&plan.id).cloned();
            entry.held.extend(self.cleanup.take_fresh());
            self.journal
                .note_step(&plan.id, &entry, &origin.events)
                .await;
        }
        r
    }

    /// A step that finished before the build was resumed: what it left is put back and it
    /// answers as it did, without running or logging anything again.
    async fn replay(&self, scope: &Arc<Scope>, plan: &Plan, done: StepEntry) -> StepResult {
        for (name, a) in done.artifacts {
            scope.set_artifact(&name, a);
        }
        for v in &done.vars {
            scope.restore_var(v);
        }
        if let Some(version) = done.result {
            self.lock_results().insert(plan.id.clone(), version);
        }
        // The secrets its config used stay redacted in the output that follows.
        super::steps::track_secrets(self, scope, plan).await;
        done.outcome.map_or(Ok(false), |o| o.result())
    }

    fn lock_results(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn hook(
        self: &Arc<Self>,
        scope: &Arc<Scope>,
        h: &HookNode,
        status: &'static str,
        cancel: &Cancel,
    ) -> StepResult {
        let hook_scope = Scope::child(scope);
        *hook_scope.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        // Artifacts produced by the hook stay visible to what follows, as upstream.
        let r = self.exec(&hook_scope, &h.hook, cancel).await;
        for (name, a) in hook_scope.lock_artifacts().drain() {
            scope.set_artifact(&name, a);
        }
        r
    }

    async fn in_parallel(
        self: &Arc<Self>,
        scope: &Arc<Scope>,
        steps: &[Plan],
        limit: i64,
        fail_fast: bool,
        cancel: &Cancel,
    ) -> StepResult {
        let limit = if limit > 0 {
            limit as usize
        } else {
            steps.len().max(1)
        };
        let group = cancel.group();
        let sem = Arc::new(tokio::sync::Semaphore::new(limit));
        let runs = steps.iter().map(|s| {
            let (sem, group) = (sem.clone(), group.clone());
            async move {
                let _permit = sem.acquire().await;
                let r = self.exec(scope, s, &group).await;
                if fail_fast && !matches!(r, Ok(true)) {
                    group.token.cancel();
                }
                r
            }
        });
        let results = futures::future::join_all(runs).await;
        let mut ok = true;
        let mut err = None;
        for r in results {
            match r {
                Ok(b) => ok &= b,
                // Siblings cancelled by fail_fast count as failed, not aborted.
                Err(Fail::Interrupted) if !cancel.is_cancelled() => ok = false,
                Err(e) => err = err.or(Some(e)),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(ok),
        }
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(m) => m.values().for_each(|v| collect_strings(v, out)),
        Value::Number(n) => out.push(n.to_string()),
        _ => {}
    }
}
