//! Container placement strategies (upstream's `--container-placement-strategy`): a chain
//! of filters over the workers that fit a step, each keeping the best; the step runs on
//! a random one of what is left. `limit-*` strategies may leave none: the step waits.

use super::runtime::{Artifact, WorkerClient};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Workers holding the most of the step's inputs.
    VolumeLocality,
    /// Workers with the fewest containers.
    FewestBuildContainers,
    Random,
    /// Only for tasks: workers running fewer than this many tasks.
    LimitActiveTasks(i64),
    LimitActiveContainers(i64),
    LimitActiveVolumes(i64),
}

/// The chain in use, and the tasks this node runs per worker (for `limit-active-tasks`).
#[derive(Debug, Clone)]
pub struct Placer {
    chain: Vec<Strategy>,
    tasks: Arc<Mutex<HashMap<String, i64>>>,
}

impl Default for Placer {
    fn default() -> Self {
        Placer {
            chain: vec![Strategy::VolumeLocality],
            tasks: Arc::default(),
        }
    }
}

/// Limits of the `limit-*` strategies (`--max-active-*-per-worker`; 0 = unset).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub tasks: i64,
    pub containers: i64,
    pub volumes: i64,
}

impl Placer {
    /// From the flag's comma-separated names, like upstream's validation.
    pub fn parse(names: &[String], limits: Limits) -> Result<Placer, String> {
        let mut chain = Vec::new();
        for name in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
            let need = |n: i64, flag: &str| {
                if n > 0 {
                    Ok(n)
                } else {
                    Err(format!(
                        "{name} requires {flag} to be set to a positive number"
                    ))
                }
            };
            chain.push(match name {
                "" => continue,
                "volume-locality" => Strategy::VolumeLocality,
                "fewest-build-containers" => Strategy::FewestBuildContainers,
                "random" => Strategy::Random,
                "limit-active-tasks" => {
                    Strategy::LimitActiveTasks(need(limits.tasks, "--max-active-tasks-per-worker")?)
                }
                "limit-active-containers" => Strategy::LimitActiveContainers(need(
                    limits.containers,
                    "--max-active-containers-per-worker",
                )?),
                "limit-active-volumes" => Strategy::LimitActiveVolumes(need(
                    limits.volumes,
                    "--max-active-volumes-per-worker",
                )?),
                other => return Err(format!("invalid container placement strategy: {other}")),
            });
        }
        if chain.is_empty() {
            chain.push(Strategy::VolumeLocality);
        }
        Ok(Placer {
            chain,
            tasks: Arc::default(),
        })
    }

    /// The worker for a step among `workers` (all fit it), or None to wait.
    pub fn choose(
        &self,
        mut workers: Vec<WorkerClient>,
        inputs: &[&Artifact],
        task: bool,
    ) -> Option<WorkerClient> {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for s in &self.chain {
            let score = |w: &WorkerClient| -> Option<i64> {
                match *s {
                    Strategy::VolumeLocality => {
                        Some(-(inputs.iter().filter(|a| a.worker == w.name).count() as i64))
                    }
                    Strategy::FewestBuildContainers => Some(w.payload.active_containers),
                    Strategy::Random => Some(0),
                    Strategy::LimitActiveTasks(max) => {
                        let n = tasks.get(&w.name).copied().unwrap_or(0);
                        (!task || n < max).then_some(0)
                    }
                    Strategy::LimitActiveContainers(max) => {
                        (w.payload.active_containers < max).then_some(0)
                    }
                    Strategy::LimitActiveVolumes(max) => {
                        (w.payload.active_volumes < max).then_some(0)
                    }
                }
            };
            let scored: Vec<(i64, WorkerClient)> = workers
                .into_iter()
                .filter_map(|w| score(&w).map(|s| (s, w)))
                .collect();
            let best = scored.iter().map(|(s, _)| *s).min()?;
            workers = scored
                .into_iter()
                .filter(|(s, _)| *s == best)
                .map(|(_, w)| w)
                .collect();
        }
        if workers.is_empty() {
            return None;
        }
        // Ties go to a random worker, so builds spread over every worker.
        let pick = (rand::random::<u32>() as usize) % workers.len();
        Some(workers.swap_remove(pick))
    }

    /// Counts a task on `worker` until the guard drops.
    pub fn task_started(&self, worker: &str) -> TaskGuard {
        *self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(worker.to_string())
            .or_default() += 1;
        TaskGuard {
            tasks: self.tasks.clone(),
            worker: worker.to_string(),
        }
    }
}

pub struct TaskGuard {
    tasks: Arc<Mutex<HashMap<String, i64>>>,
    worker: String,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(n) = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&self.worker)
        {
            *n -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            tasks: 1,
            containers: 5,
            volumes: 0,
        }
    }

    #[test]
    fn names_parse_like_upstream() {
        let p = Placer::parse(
            &[
                "volume-locality,fewest-build-containers".into(),
                "limit-active-tasks".into(),
            ],
            limits(),
        )
        .expect("valid");
        assert_eq!(
            p.chain,
            [
                Strategy::VolumeLocality,
                Strategy::FewestBuildContainers,
                Strategy::LimitActiveTasks(1)
            ]
        );
        assert_eq!(
            Placer::parse(&[], limits()).expect("default").chain,
            [Strategy::VolumeLocality]
        );
        assert_eq!(
            Placer::parse(&["nearest".into()], limits()).unwrap_err(),
            "invalid container placement strategy: nearest"
        );
        assert!(Placer::parse(&["limit-active-volumes".into()], limits())
            .unwrap_err()
            .contains("--max-active-volumes-per-worker"));
    }
}
