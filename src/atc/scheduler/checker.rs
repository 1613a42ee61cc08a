//! Resource checking: periodic checks on each resource's `check_every` (default 1m,
//! `never` opts out), and check builds for `fly check-resource` / `check-resource-type`
//! and the API's prototype checks.

use super::configs::Configs;
use crate::atc::engine::events::Events;
use crate::atc::engine::plan::{pipeline_configs_with, BuildPlan, CheckNode, Node, Plan};
use crate::atc::engine::Engine;
use crate::config::{CheckEvery, Config};
use crate::db::{BuildRow, BuildStatus, NewBuild, PipelineRow, ResourceMark};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Upstream's default check interval (1m): the one image checks are reused within.
pub const DEFAULT_INTERVAL: Duration = crate::atc::engine::image_checks::INTERVAL;

/// What periodic checks need of a config: each resource checked on a timer, with its
/// interval (`check_every: never` ones are left out).
pub type CheckTimes = Arc<[(String, Duration)]>;

pub fn check_times(config: &Config) -> CheckTimes {
    config
        .resources
        .iter()
        .filter_map(|rc| {
            let interval = match rc.check_every {
                Some(CheckEvery::Never) => return None,
                Some(c) => c.interval().unwrap_or(DEFAULT_INTERVAL),
                None => DEFAULT_INTERVAL,
            };
            Some((rc.name.clone(), interval))
        })
        .collect()
}

/// What the last failed check of each resource (by id) said, for the build that cannot
/// start without it (see `scheduler::failed_input_check`). Kept only on the node that ran
/// the check; a succeeded check clears it.
static CHECK_ERRORS: LazyLock<Mutex<HashMap<i64, String>>> = LazyLock::new(Default::default);

/// The output of resource `id`'s last check, when it failed on this node.
pub fn last_check_error(id: i64) -> Option<String> {
    CHECK_ERRORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned()
}

/// Remembers which resources are being checked, so a slow check is not started twice, and
/// which resource config scopes were checked when: resources of the same config (their
/// type and source, in any pipeline) share a scope and its versions, so one check serves
/// them all.
#[derive(Default)]
pub struct Checker {
    inflight: Arc<Mutex<HashSet<i64>>>,
    scopes: Arc<Mutex<Scopes>>,
}

/// Shared scopes: being checked, and the time of each one's last good check.
#[derive(Default)]
struct Scopes {
    inflight: HashSet<i64>,
    checked: HashMap<i64, i64>,
}

impl Checker {
    /// Starts the checks that are due in one pipeline (whose resources are `rows`), in the
    /// background. Answers when the next one falls due as these rows stand (Unix seconds;
    /// now or earlier while one is due, `i64::MAX` when none ever will be).
    pub async fn periodic(
        &self,
        engine: &Arc<Engine>,
        configs: &Configs,
        p: &PipelineRow,
        checks: &CheckTimes,
        rows: &[ResourceMark],
    ) -> i64 {
        let now = crate::clock::now();
        let mut next = i64::MAX;
        for (name, interval) in checks.iter() {
            let Some(row) = rows.iter().find(|r| &r.name == name) else {
                continue;
            };
            let due = row.last_checked.saturating_add(interval.as_secs() as i64);
            next = next.min(due);
            if now < due {
                continue;
            }
            if let Some(scope) = row.scope_id {
                let checked = {
                    let scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
                    if scopes.inflight.contains(&scope) {
                        // Another resource of the same config is being checked now.
                        continue;
                    }
                    scopes.checked.get(&scope).copied()
                };
                if let Some(at) = checked.filter(|at| now - at < interval.as_secs() as i64) {
                    // Checked for another resource of the same config within this one's
                    // interval: its versions are this one's too.
                    let _ = engine
                        .store()
                        .record_resource_check(row.id, at, None, true)
                        .await;
                    engine.handle.hint(|h| {
                        h.pipelines.insert(p.id);
                    });
                    crate::atc::metrics::metrics().resource_check_shared();
                    continue;
                }
            }
            if self
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&row.id)
            {
                continue;
            }
            // The whole config is needed only now, to plan the check. (Passes run one at a
            // time, so nothing else starts this resource's check meanwhile.)
            let config = match configs.get(engine.store(), p).await {
                Ok(Some(config)) => config,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(pipeline = %p.name, error = %e, "loading config to check");
                    continue;
                }
            };
            self.inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(row.id);
            if let Some(scope) = row.scope_id {
                let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
                scopes.inflight.insert(scope);
            }
            let (inflight, scopes, id, scope) = (
                self.inflight.clone(),
                self.scopes.clone(),
                row.id,
                row.scope_id,
            );
            spawn_check(engine, p, &config, name, (id, scope), move |status| {
                inflight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(scope) = scope {
                    let mut scopes = scopes.lock().unwrap_or_else(|e| e.into_inner());
                    scopes.inflight.remove(&scope);
                    // Only a good check serves others: a failed one is each resource's own.
                    if status == BuildStatus::Succeeded {
                        scopes.checked.insert(scope, crate::clock::now());
                    } else {
                        scopes.checked.remove(&scope);
                    }
                }
            });
        }
        next
    }
}

/// Runs a check of resource `name` (id and config scope `resource`) as an unstored build
/// in the background; `done` runs with its status when it has finished, then the scheduler
/// is woken for the pipelines sharing the scope.
fn spawn_check(
    engine: &Arc<Engine>,
    p: &PipelineRow,
    config: &Config,
    name: &str,
    resource: (i64, Option<i64>),
    done: impl FnOnce(BuildStatus) + Send + 'static,
) {
    let (id, scope, pipeline) = (resource.0, resource.1, p.id);
    let plan = check_plan(engine, config, name, "resource", None, Some(id));
    let (engine, build) = (engine.clone(), periodic_row(p));
    let (tasks, span) = (
        engine.rt.tasks.clone(),
        tracing::info_span!(parent: None, "check", resource_id = id),
    );
    let task = async move {
        let (events, said) = Events::collect(4096);
        let status = engine
            .execute(build, plan, events.clone(), CancellationToken::new())
            .await;
        events.flush().await;
        tracing::debug!(resource = id, status = status.as_str(), "check");
        {
            let mut errors = CHECK_ERRORS.lock().unwrap_or_else(|e| e.into_inner());
            if status == BuildStatus::Succeeded {
                errors.remove(&id);
            } else {
                let text = said.lock().unwrap_or_else(|e| e.into_inner()).clone();
                errors.insert(id, text.trim().to_string());
            }
        }
        done(status);
        match scope {
            Some(scope) => engine.handle.wake_for(|h| {
                h.pipelines.insert(pipeline);
                h.scopes.insert(scope);
            }),
            // A first check finds the resource its scope, which may be others' too.
            None => engine.handle.wake(),
        }
    };
    tasks.spawn(task.instrument(span));
}

/// Checks `names` now, whatever their `check_every` (even `never`): a manually triggered
/// build waits for its inputs' checks, so it runs on the pipeline's current config.
pub async fn check_now(engine: &Arc<Engine>, p: &PipelineRow, config: &Config, names: &[String]) {
    let Ok(rows) = engine.store().resources(p.id).await else {
        return;
    };
    for name in names {
        let Some(row) = rows.iter().find(|r| &r.name == name) else {
            continue;
        };
        spawn_check(engine, p, config, name, (row.id, row.scope_id), |_| {});
    }
}

fn check_plan(
    engine: &Engine,
    config: &Config,
    name: &str,
    kind: &str,
    from: Option<Value>,
    resource_id: Option<i64>,
) -> BuildPlan {
    BuildPlan {
        plan: Plan {
            id: engine.ids().next(),
            node: Node::Check(CheckNode {
                name: name.to_string(),
                kind: kind.to_string(),
                from_version: from,
                resource_id,
            }),
        },
        // A resource's check reads its own config (and the types); a type's, the types.
        ..pipeline_configs_with(config, |r| kind == "resource" && r.name == name)
    }
}

/// The build a periodic check runs as: it is not stored (id 0) and keeps no log.
fn periodic_row(p: &PipelineRow) -> BuildRow {
    BuildRow {
        id: 0,
        team_id: p.team_id,
        team_name: p.team_name.clone(),
        name: "check".into(),
        status: BuildStatus::Started,
        job_id: None,
        job_name: String::new(),
        pipeline_id: Some(p.id),
        pipeline_name: p.name.clone(),
        pipeline_instance_vars: p.instance_vars.clone(),
        resource_name: String::new(),
        plan: None,
        created_by: String::new(),
        comment: String::new(),
        create_time: 0,
        start_time: 0,
        end_time: 0,
        rerun_of: None,
        rerun_number: 0,
        reap_time: 0,
    }
}

/// Creates and starts a check build of a pipeline's resource (`kind` = `resource`),
/// resource type (`resource_type`) or prototype (`prototype`). None when the pipeline has
/// no such thing.
pub async fn check_build(
    engine: &Arc<Engine>,
    p: &PipelineRow,
    name: &str,
    kind: &str,
    from: Option<Value>,
    created_by: &str,
) -> anyhow::Result<Option<BuildRow>> {
    let store = engine.store();
    let Some((config_json, _)) = store.pipeline_config(p.id).await? else {
        return Ok(None);
    };
    let config = super::pipeline_config(&config_json)?;
    let resource_id = match kind {
        "resource" => {
            if config.resource(name).is_none() {
                return Ok(None);
            }
            store.resource(p.id, name).await?.map(|r| r.id)
        }
        "prototype" if config.prototypes.iter().any(|t| t.name == name) => None,
        "resource_type" if config.resource_type(name).is_some() => None,
        _ => return Ok(None),
    };
    let row = store
        .create_build(&NewBuild {
            team_id: p.team_id,
            job_id: None,
            pipeline_id: Some(p.id),
            resource_id,
            created_by: created_by.to_string(),
            at: crate::clock::now(),
            ..Default::default()
        })
        .await?;
    let mut plan = check_plan(engine, &config, name, kind, from, resource_id);
    if kind == "prototype" {
        plan.prototypes = config
            .prototypes
            .iter()
            .filter(|t| t.name == name)
            .cloned()
            .collect();
    }
    engine.start(row.clone(), plan).await?;
    Ok(store.build(row.id).await?.or(Some(row)))
}
