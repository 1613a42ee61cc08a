//! Landing and retiring (worker-protocols.md §3.6): a landing or retiring worker takes no
//! new containers (placement only picks `running` workers) and leaves once no container of
//! an unfinished build holds it, as upstream: one-off builds and builds of jobs that are not
//! `interruptible`. The ATC keeps no container table, so the truth is asked of the worker:
//! its Garden's containers and the `concourse:build-id` the engine labels them with.

use crate::db::{Store, WorkerRow, WorkerState};
use crate::proto::garden::{Garden, Properties, BUILD_ID};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The builds with a container on the worker behind `garden` that keep it from leaving.
pub async fn holding_builds(garden: &dyn Garden, store: &dyn Store) -> Result<Vec<i64>, String> {
    let handles = garden
        .list(Properties::new())
        .await
        .map_err(|e| format!("listing containers: {e}"))?;
    if handles.is_empty() {
        return Ok(Vec::new());
    }
    let infos = garden
        .bulk_info(&handles)
        .await
        .map_err(|e| format!("reading containers: {e}"))?;
    let builds: BTreeSet<i64> = infos
        .values()
        .filter_map(|e| e.info.properties.get(BUILD_ID)?.parse().ok())
        .collect();
    let mut holding = Vec::new();
    for id in builds {
        let build = store.build(id).await.map_err(|e| e.to_string())?;
        let Some(b) = build.filter(|b| !b.status.is_finished()) else {
            continue;
        };
        let interruptible = match (b.pipeline_id, b.job_id) {
            (Some(pipeline), Some(_)) => store
                .job(pipeline, &b.job_name)
                .await
                .map_err(|e| e.to_string())?
                .is_some_and(|j| j.config["interruptible"] == true),
            _ => false,
        };
        if !interruptible {
            holding.push(id);
        }
    }
    Ok(holding)
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The landing worker is now `landed`.
    Landed,
    /// The retiring worker's row is gone.
    Retired,
}

/// One worker's drain, watched at every heartbeat of its registration. A re-registration
/// resets landing and retiring to `running` (§3.5), so what it remembers lives as long as
/// the registration.
#[derive(Debug)]
pub struct Drain {
    /// Give up waiting for builds after this long (None: wait for ever).
    timeout: Option<Duration>,
    since: Option<Instant>,
    /// Drained at the previous look: a worker leaves only when two looks in a row (a
    /// heartbeat apart) see it drained, so a build placed on it just before it began to
    /// land has time to create its container.
    drained_once: bool,
}

impl Drain {
    pub fn new(timeout: Option<Duration>) -> Drain {
        Drain {
            timeout,
            since: None,
            drained_once: false,
        }
    }

    /// After a heartbeat returned `row`: when it is landing or retiring and drained (or
    /// past the timeout), makes the transition. Errors reaching the worker or the store
    /// leave it draining; the next heartbeat looks again.
    pub async fn look(
        &mut self,
        row: &WorkerRow,
        garden: &dyn Garden,
        store: &dyn Store,
    ) -> Option<Drained> {
        if !matches!(row.state, WorkerState::Landing | WorkerState::Retiring) {
            self.since = None;
            self.drained_once = false;
            return None;
        }
        let name = row.worker.name.as_str();
        let since = *self.since.get_or_insert_with(Instant::now);
        let timed_out = self.timeout.is_some_and(|t| since.elapsed() >= t);
        let drained = match holding_builds(garden, store).await {
            Ok(builds) if builds.is_empty() => true,
            Ok(builds) => {
                tracing::info!(worker = %name, ?builds, "draining: builds still run here");
                false
            }
            Err(e) => {
                tracing::info!(worker = %name, error = %e, "draining: cannot tell yet");
                false
            }
        };
        let go = if drained {
            std::mem::replace(&mut self.drained_once, true)
        } else {
            self.drained_once = false;
            false
        };
        if !go && !timed_out {
            return None;
        }
        if timed_out && !go {
            tracing::warn!(worker = %name, "drain timeout passed; leaving with builds still running");
        }
        let done = match row.state {
            WorkerState::Landing => store
                .land_drained_worker(name)
                .await
                .map(|ok| ok.then_some(Drained::Landed)),
            _ => store
                .delete_retired_worker(name)
                .await
                .map(|ok| ok.then_some(Drained::Retired)),
        };
        match done {
            Ok(done) => {
                if let Some(d) = done {
                    tracing::info!(worker = %name, outcome = ?d, "worker drained");
                }
                done
            }
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "draining: store failed");
                None
            }
        }
    }
}
