//! The scheduler: decides which versions each job's next build uses (`resolve`), creates
//! builds for new trigger versions, starts pending builds when their inputs resolve and
//! `serial` / `serial_groups` / `max_in_flight` allow, and runs periodic resource checks.

mod changes;
pub mod checker;
mod configs;
pub mod resolve;
mod snapshot;

use crate::atc::engine::plan::{job_plan, BuildPlan};
use crate::atc::engine::Engine;
use crate::config::{Config, JobConfig, VersionConfig};
use crate::db::{BuildInputRow, BuildRow, BuildStatus, NewBuild, PipelineRow, ResourceRow};
use resolve::{InputConfig, VersionChoice, VersionsDb};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Scheduling passes run at least this often (and whenever something wakes them).
const INTERVAL: Duration = Duration::from_secs(1);

/// The lease naming the one web node that schedules when several share a database.
const LEASE: &str = "scheduler";
/// Another node takes over within this time plus one [`INTERVAL`] of the holder's death.
const LEASE_TTL: Duration = Duration::from_secs(5);

pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let checker = checker::Checker::default();
    let configs = configs::Configs::default();
    let changes = std::sync::Mutex::new(changes::Changes::default());
    let versions = Versions::default();
    let last = std::sync::Mutex::new(None);
    let store = engine.store().clone();
    crate::atc::periodic::Periodic::every("scheduler", INTERVAL)
        .or_when(engine.handle.wake.clone())
        .leased(store, LEASE, LEASE_TTL)
        .run(shutdown, |_| {
            let (engine, checker, configs, changes) = (&engine, &checker, &configs, &changes);
            let (last, versions) = (&last, &versions);
            async move { pass(engine, checker, configs, changes, last, versions).await }
        })
        .await
}

/// A pipeline's parsed config, from its stored JSON.
pub fn pipeline_config(config: &Value) -> anyhow::Result<Config> {
    let mut parsed = crate::config::parse_pipeline(&serde_json::to_vec(config)?)?;
    // Lines of one-line JSON say nothing, and the map was most of a cached config's memory.
    parsed.source_lines = Default::default();
    Ok(parsed)
}

/// One pass: starts the checks that are due and schedules every unpaused pipeline that
/// changed since it was last scheduled (and a few that have not, now and then). A constant
/// number of statements however many pipelines there are (one when nothing was committed
/// since the last pass), plus the work of the changed ones.
async fn pass(
    engine: &Arc<Engine>,
    checker: &checker::Checker,
    configs: &configs::Configs,
    changes: &std::sync::Mutex<changes::Changes>,
    last: &std::sync::Mutex<Option<Arc<snapshot::Snapshot>>>,
    versions: &Versions,
) -> anyhow::Result<()> {
    let store = engine.store();
    let hints = engine.handle.take_hints();
    configs.forget_unused(std::time::Instant::now());
    let (snap, read) = snapshot::read(store, configs, last, hints).await?;
    let forced = lock(changes).begin(&snap.pipelines.iter().map(|p| p.id).collect());
    let quiet = &snap.quiet_until;
    if !read && forced.is_empty() && crate::clock::now() < quiet.load(Ordering::Relaxed) {
        // Nothing committed, nothing failed, no check due: an idle node's pass.
        return Ok(());
    }
    let (mut next_check, mut settled) = (i64::MAX, true);
    for p in snap.pipelines.iter() {
        let Some(checks) = configs.check_times(store, p).await? else {
            continue;
        };
        let Some(marks) = snap.marks.get(&p.id) else {
            continue;
        };
        let resources = &marks.resources;
        let due = checker.periodic(engine, configs, p, &checks, resources);
        next_check = next_check.min(due.await);
        // Unread since the last pass, nothing moved: only what that pass left unscheduled
        // (never scheduled, or failed) and the safety net's picks are due.
        if !read && !forced.contains(&p.id) && lock(changes).knows(p.id) {
            continue;
        }
        let pending: Vec<&BuildRow> = snap
            .pending
            .iter()
            .filter(|b| b.pipeline_id == Some(p.id))
            .collect();
        let started: Vec<&BuildRow> = snap
            .started
            .iter()
            .filter(|b| b.pipeline_id == Some(p.id))
            .collect();
        let mark = changes::Mark::new(p, marks, &pending, &started);
        if !forced.contains(&p.id) && !lock(changes).changed(p.id, &mark) {
            continue;
        }
        let Some(config) = configs.get(store, p).await? else {
            continue;
        };
        let began = std::time::Instant::now();
        let span = tracing::info_span!(
            parent: None,
            "schedule",
            team = %p.team_name,
            pipeline = %p.name
        );
        let scheduled = schedule_pipeline(engine, p, &config, &pending, &started, versions);
        match scheduled.instrument(span).await {
            Ok(()) => {
                lock(changes).scheduled(p.id, mark);
                // What it committed is read back next pass (that pass may be partial).
                engine.handle.hint(|h| {
                    h.pipelines.insert(p.id);
                });
            }
            Err(e) => {
                tracing::warn!(pipeline = %p.name, error = %e, "scheduling pipeline");
                lock(changes).failed(p.id);
                settled = false;
            }
        }
        crate::atc::metrics::metrics().pipeline_scheduled(&p.name, began.elapsed());
    }
    // A failure is retried next pass, as before this snapshot could be quiet.
    let until = if settled { next_check } else { i64::MIN };
    quiet.store(until, Ordering::Relaxed);
    // One-off and check builds are started when created; nothing else to do for them.
    Ok(())
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct PipelineState {
    db: VersionsDb,
    resources: HashMap<String, ResourceRow>,
    /// Version id → version JSON, of the versions resolved so far (see `fetch`).
    versions: HashMap<i64, Value>,
    /// Version id → position in its resource's history.
    order: HashMap<i64, usize>,
    used: HashSet<(i64, i64, i64)>,
    /// Job id → its latest build's input versions by name, read at the pass's first need:
    /// one statement for the pipeline, where a read of each job's latest build and of its
    /// inputs grew with the jobs that resolve.
    latest_inputs: Option<HashMap<i64, HashMap<String, Value>>>,
}

async fn load(engine: &Engine, p: &PipelineRow) -> anyhow::Result<PipelineState> {
    let store = engine.store();
    let (snap, resources) =
        tokio::try_join!(store.scheduling_snapshot(p.id), store.resources(p.id))?;
    let mut db = VersionsDb::default();
    let mut order = HashMap::new();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &(r, v) in &snap.versions {
        db.add_version(r, v);
        let n = counts.entry(r).or_default();
        order.insert(v, *n);
        *n += 1;
    }
    for b in &snap.successful_builds {
        db.add_successful_build(b.job_id, b.build_id, &b.inputs, &b.outputs);
    }
    Ok(PipelineState {
        db,
        resources: resources.into_iter().map(|r| (r.name.clone(), r)).collect(),
        versions: HashMap::new(),
        order,
        used: snap.used_versions.into_iter().collect(),
        latest_inputs: None,
    })
}

impl PipelineState {
    /// Reads the JSON of the resolved versions not read yet. Only those: every version of
    /// every resource was a statement per resource at each scheduling, each as long as
    /// the resource's history. `kept` carries them from pass to pass.
    async fn fetch(
        &mut self,
        store: &Arc<dyn crate::db::Store>,
        resolved: &[resolve::ResolvedInput],
        kept: Option<&Versions>,
    ) -> anyhow::Result<()> {
        for r in resolved {
            if self.versions.contains_key(&r.version) {
                continue;
            }
            if let Some(v) = kept.and_then(|k| k.get(r.version)) {
                self.versions.insert(r.version, v);
            } else if let Some(v) = store.version(r.version).await? {
                if let Some(k) = kept {
                    k.put(r.version, &v.version);
                }
                self.versions.insert(r.version, v.version);
            }
        }
        Ok(())
    }

    /// Fills `latest_inputs`, once a pass.
    async fn read_latest_inputs(
        &mut self,
        store: &Arc<dyn crate::db::Store>,
        pipeline: i64,
    ) -> anyhow::Result<()> {
        if self.latest_inputs.is_none() {
            let mut by_job: HashMap<i64, HashMap<String, Value>> = HashMap::new();
            for (j, i) in store.latest_build_inputs(pipeline).await? {
                by_job.entry(j).or_default().insert(i.name, i.version);
            }
            self.latest_inputs = Some(by_job);
        }
        Ok(())
    }
}

/// Versions' JSON by id, kept across passes: a version's JSON never changes and its id is
/// never reused, and each pass read every version its jobs resolved to again (a statement
/// each). Emptied when full, so it stays small.
#[derive(Default)]
pub(crate) struct Versions(std::sync::Mutex<HashMap<i64, Value>>);

const VERSIONS_KEPT: usize = 2048;

impl Versions {
    fn get(&self, id: i64) -> Option<Value> {
        lock(&self.0).get(&id).cloned()
    }

    fn put(&self, id: i64, version: &Value) {
        let mut kept = lock(&self.0);
        if kept.len() >= VERSIONS_KEPT {
            kept.clear();
        }
        kept.insert(id, version.clone());
    }
}

/// The resolver's view of a job's inputs.
async fn input_configs(
    engine: &Engine,
    st: &PipelineState,
    config: &Config,
    job: &JobConfig,
    job_ids: &HashMap<String, i64>,
    job_id: i64,
) -> anyhow::Result<Option<Vec<(InputConfig, bool)>>> {
    let mut out = Vec::new();
    for g in job.inputs() {
        let res_name = if g.resource.is_empty() {
            &g.name
        } else {
            &g.resource
        };
        let Some(r) = st.resources.get(res_name) else {
            return Ok(None);
        };
        let pin = config
            .resource(res_name)
            .filter(|rc| !rc.version.is_empty())
            .map(|rc| serde_json::json!(rc.version))
            .or_else(|| r.pinned_version.clone());
        let pinned = match (&g.version, pin) {
            (_, Some(v)) => Some(v),
            (Some(VersionConfig::Pinned(v)), None) => Some(serde_json::json!(v)),
            _ => None,
        };
        let version = match pinned {
            Some(v) => {
                let id = match r.scope_id {
                    Some(scope) => engine.store().find_version(scope, &v).await?.map(|v| v.id),
                    None => None,
                };
                VersionChoice::Pinned(id)
            }
            None if matches!(g.version, Some(VersionConfig::Every)) => VersionChoice::Every,
            None => VersionChoice::Latest,
        };
        let last_used = st
            .used
            .iter()
            .filter(|(j, res, _)| *j == job_id && *res == r.id)
            .map(|(_, _, v)| *v)
            .max_by_key(|v| st.order.get(v).copied().unwrap_or(0));
        out.push((
            InputConfig {
                name: g.name.clone(),
                resource: r.id,
                version,
                passed: g
                    .passed
                    .iter()
                    .filter_map(|j| job_ids.get(j).copied())
                    .collect(),
                last_used,
            },
            g.trigger,
        ));
    }
    Ok(Some(out))
}

async fn schedule_pipeline(
    engine: &Arc<Engine>,
    p: &PipelineRow,
    config: &Config,
    pending: &[&BuildRow],
    started: &[&BuildRow],
    kept: &Versions,
) -> anyhow::Result<()> {
    let store = engine.store();
    let (jobs, mut st) = tokio::try_join!(
        async { Ok::<_, anyhow::Error>(store.jobs(p.id).await?) },
        load(engine, p)
    )?;
    let job_ids: HashMap<String, i64> = jobs.iter().map(|j| (j.name.clone(), j.id)).collect();
    // Running builds per serial group and per job, so limits hold within this pass.
    let mut running: HashMap<i64, usize> = HashMap::new();
    for b in started {
        if let Some(j) = b.job_id {
            *running.entry(j).or_default() += 1;
        }
    }
    for row in &jobs {
        let Some(job) = config.job(&row.name) else {
            continue;
        };
        let Some(inputs) = input_configs(engine, &st, config, job, &job_ids, row.id).await? else {
            continue;
        };
        let resolved = resolve::resolve(
            &st.db,
            &inputs.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
        );
        if let Ok(resolved) = &resolved {
            st.fetch(store, resolved, Some(kept)).await?;
        }
        let mut pending_here: Vec<BuildRow> = pending
            .iter()
            .filter(|b| b.job_id == Some(row.id))
            .map(|b| (*b).clone())
            .collect();
        // New trigger versions make a build (not while the pipeline or job is paused).
        if let Ok(resolved) = &resolved {
            if !p.paused && !row.paused && pending_here.is_empty() {
                let triggers: Vec<&resolve::ResolvedInput> = resolved
                    .iter()
                    .filter(|r| inputs.iter().any(|(i, t)| *t && i.name == r.name))
                    .collect();
                if !triggers.is_empty() {
                    st.read_latest_inputs(store, p.id).await?;
                    let previous = st.latest_inputs.as_ref().and_then(|l| l.get(&row.id));
                    let new = triggers.iter().any(|r| {
                        previous.and_then(|prev| prev.get(&r.name)) != st.versions.get(&r.version)
                    });
                    if new {
                        let b = store
                            .create_build(&NewBuild {
                                team_id: p.team_id,
                                job_id: Some(row.id),
                                pipeline_id: Some(p.id),
                                at: crate::clock::now(),
                                ..Default::default()
                            })
                            .await?;
                        pending_here.push(b);
                    }
                }
            }
        }
        if pending_here.is_empty() || p.paused || row.paused {
            continue;
        }
        let limit = max_in_flight(job);
        for b in pending_here {
            let in_flight = in_flight(&running, config, job, &job_ids);
            if limit.is_some_and(|l| in_flight >= l) {
                break;
            }
            // A manually triggered build waits until its inputs were checked after it was
            // created (the trigger asked for those checks), like upstream.
            let manual = !b.created_by.is_empty() && b.rerun_of.is_none();
            if manual
                && inputs.iter().any(|(i, _)| {
                    st.resources
                        .values()
                        .any(|r| r.id == i.resource && r.last_checked < b.create_time)
                })
            {
                break;
            }
            let versions: BTreeMap<String, Value> = if let Some(original) = b.rerun_of {
                store
                    .build_inputs(original)
                    .await?
                    .into_iter()
                    .map(|i| (i.name, i.version))
                    .collect()
            } else {
                match &resolved {
                    Ok(r) => r
                        .iter()
                        .filter_map(|i| {
                            Some((i.name.clone(), st.versions.get(&i.version)?.clone()))
                        })
                        .collect(),
                    Err(_) => break,
                }
            };
            let rows: Vec<BuildInputRow> = inputs
                .iter()
                .filter_map(|(i, _)| {
                    let version = versions.get(&i.name)?.clone();
                    let vid = resolved
                        .as_ref()
                        .ok()
                        .and_then(|r| r.iter().find(|x| x.name == i.name).map(|x| x.version));
                    Some(BuildInputRow {
                        name: i.name.clone(),
                        resource_id: i.resource,
                        version,
                        first_occurrence: vid
                            .is_some_and(|v| !st.used.contains(&(row.id, i.resource, v))),
                    })
                })
                .collect();
            store.save_build_inputs(b.id, &rows).await?;
            let plan: BuildPlan = job_plan(engine.ids(), config, job, &versions);
            if engine.start(b, plan).await? {
                *running.entry(row.id).or_default() += 1;
            }
        }
    }
    Ok(())
}

/// The pipeline's scheduling state and the resolver's view of `job`'s inputs (with the
/// pipeline's job ids by name); None when the job or one of its resources is gone.
async fn job_inputs(
    engine: &Engine,
    p: &PipelineRow,
    config: &Config,
    job: &JobConfig,
) -> anyhow::Result<
    Option<(
        PipelineState,
        Vec<(InputConfig, bool)>,
        HashMap<String, i64>,
    )>,
> {
    let jobs = engine.store().jobs(p.id).await?;
    let job_ids: HashMap<String, i64> = jobs.iter().map(|j| (j.name.clone(), j.id)).collect();
    let Some(&job_id) = job_ids.get(&job.name) else {
        return Ok(None);
    };
    let st = load(engine, p).await?;
    let inputs = input_configs(engine, &st, config, job, &job_ids, job_id).await?;
    Ok(inputs.map(|inputs| (st, inputs, job_ids)))
}

/// The versions (by input name) the job's next build would use, for `GET J/inputs`;
/// None while they do not resolve.
pub async fn next_inputs(
    engine: &Engine,
    p: &PipelineRow,
    config: &Config,
    job: &JobConfig,
) -> anyhow::Result<Option<BTreeMap<String, Value>>> {
    let Some((mut st, inputs, _)) = job_inputs(engine, p, config, job).await? else {
        return Ok(None);
    };
    let inputs: Vec<InputConfig> = inputs.into_iter().map(|(i, _)| i).collect();
    let Ok(resolved) = resolve::resolve(&st.db, &inputs) else {
        return Ok(None);
    };
    st.fetch(engine.store(), &resolved, None).await?;
    Ok(resolved
        .iter()
        .map(|i| Some((i.name.clone(), st.versions.get(&i.version)?.clone())))
        .collect())
}

/// Why a pending build of `job` waits, as upstream's build preparation reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preparation {
    /// Input name → whether its resource was checked since the build was created (a
    /// manually triggered build waits for those checks).
    pub discovered: BTreeMap<String, bool>,
    /// Input name → why no version satisfies it (empty when the inputs resolve).
    pub missing: BTreeMap<String, String>,
    pub max_in_flight_reached: bool,
}

pub async fn preparation(
    engine: &Engine,
    p: &PipelineRow,
    config: &Config,
    job: &JobConfig,
    build: &BuildRow,
) -> anyhow::Result<Option<Preparation>> {
    let store = engine.store();
    let Some((st, inputs, job_ids)) = job_inputs(engine, p, config, job).await? else {
        return Ok(None);
    };
    let manual = !build.created_by.is_empty() && build.rerun_of.is_none();
    let mut prep = Preparation::default();
    for (i, _) in &inputs {
        let checked = st
            .resources
            .values()
            .find(|r| r.id == i.resource)
            .is_some_and(|r| {
                r.last_checked > 0 && (!manual || r.last_checked >= build.create_time)
            });
        prep.discovered.insert(i.name.clone(), checked);
    }
    let configs: Vec<InputConfig> = inputs.into_iter().map(|(i, _)| i).collect();
    if let Err(failures) = resolve::resolve(&st.db, &configs) {
        for (name, why) in failures {
            let resource = configs.iter().find(|c| c.name == name).map(|c| c.resource);
            let pinned = st
                .resources
                .values()
                .find(|r| Some(r.id) == resource)
                .and_then(|r| {
                    let in_config = config.resource(&r.name).filter(|rc| !rc.version.is_empty());
                    in_config
                        .map(|rc| serde_json::json!(rc.version))
                        .or_else(|| r.pinned_version.clone())
                })
                .map(|v| v.to_string());
            prep.missing.insert(name, why.message(pinned.as_deref()));
        }
    }
    let mut running: HashMap<i64, usize> = HashMap::new();
    for b in store.builds_with_status(&[BuildStatus::Started]).await? {
        if let Some(j) = b.job_id {
            *running.entry(j).or_default() += 1;
        }
    }
    prep.max_in_flight_reached =
        max_in_flight(job).is_some_and(|l| in_flight(&running, config, job, &job_ids) >= l);
    Ok(Some(prep))
}

/// `max_in_flight` of a job: 1 for serial jobs and serial groups.
fn max_in_flight(job: &JobConfig) -> Option<usize> {
    if job.serial || !job.serial_groups.is_empty() {
        return Some(if job.raw_max_in_flight > 0 {
            job.raw_max_in_flight as usize
        } else {
            1
        });
    }
    (job.raw_max_in_flight > 0).then_some(job.raw_max_in_flight as usize)
}

/// Builds running in the job, or in any job sharing one of its serial groups.
fn in_flight(
    running: &HashMap<i64, usize>,
    config: &Config,
    job: &JobConfig,
    job_ids: &HashMap<String, i64>,
) -> usize {
    if job.serial_groups.is_empty() {
        return job_ids
            .get(&job.name)
            .and_then(|id| running.get(id))
            .copied()
            .unwrap_or(0);
    }
    config
        .jobs
        .iter()
        .filter(|j| {
            j.serial_groups
                .iter()
                .any(|g| job.serial_groups.contains(g))
        })
        .filter_map(|j| job_ids.get(&j.name).and_then(|id| running.get(id)))
        .sum()
}
