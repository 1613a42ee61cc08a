//! Which pipelines have something new to schedule. A pipeline's outcome depends only on
//! its config, its jobs and resources (pauses, builds, pins, checks, the versions of their
//! scopes: the store's scheduling marks) and its pending and running builds; when none of that moved since the pipeline was last
//! scheduled, scheduling it again would decide the same, so the pass skips it. All of it
//! is read from the store, so a change made through another web node counts the same.

use crate::db::{BuildRow, JobMark, PipelineRow, ResourceMark};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Every pipeline is scheduled at least this often whatever the marks say: the safety net
/// for a change that reaches none of them. `CONCOURSE_SCHEDULER_FULL_PASS_SECONDS` changes
/// it (tests set it high to show that changes alone are enough).
fn every_pipeline_at_least() -> Duration {
    let secs = std::env::var("CONCOURSE_SCHEDULER_FULL_PASS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// What a pipeline was scheduled on.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    config_version: i64,
    jobs: Vec<JobMark>,
    resources: Vec<ResourceMark>,
    pending: Vec<i64>,
    started: Vec<i64>,
}

impl Mark {
    pub fn new(
        p: &PipelineRow,
        jobs: &[JobMark],
        resources: &[ResourceMark],
        pending: &[&BuildRow],
        started: &[&BuildRow],
    ) -> Mark {
        Mark::of_ids(
            p,
            jobs,
            resources,
            pending.iter().map(|b| b.id).collect(),
            started.iter().map(|b| b.id).collect(),
        )
    }

    fn of_ids(
        p: &PipelineRow,
        jobs: &[JobMark],
        resources: &[ResourceMark],
        mut pending: Vec<i64>,
        mut started: Vec<i64>,
    ) -> Mark {
        pending.sort_unstable();
        started.sort_unstable();
        Mark {
            config_version: p.config_version,
            jobs: jobs.to_vec(),
            resources: resources.to_vec(),
            pending,
            started,
        }
    }
}

pub struct Changes {
    scheduled: HashMap<i64, Mark>,
    last_full: Option<Instant>,
    full_every: Duration,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            scheduled: HashMap::new(),
            last_full: None,
            full_every: every_pipeline_at_least(),
        }
    }
}

impl Changes {
    /// Starts a pass over `live` pipelines (others are forgotten); true when this pass
    /// schedules every pipeline regardless.
    pub fn begin(&mut self, live: &HashSet<i64>) -> bool {
        self.scheduled.retain(|id, _| live.contains(id));
        let full = self
            .last_full
            .is_none_or(|at| at.elapsed() >= self.full_every);
        if full {
            self.last_full = Some(Instant::now());
        }
        full
    }

    /// Whether pipeline `id` has moved since it was scheduled on `mark`.
    pub fn changed(&self, id: i64, mark: &Mark) -> bool {
        self.scheduled.get(&id) != Some(mark)
    }

    /// Pipeline `id` was scheduled on `mark`.
    pub fn scheduled(&mut self, id: i64, mark: Mark) {
        self.scheduled.insert(id, mark);
    }

    /// Scheduling `id` failed: try again next pass.
    pub fn failed(&mut self, id: i64) {
        self.scheduled.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(version: i64) -> PipelineRow {
        PipelineRow {
            id: 1,
            config_version: version,
            ..Default::default()
        }
    }

    #[test]
    fn a_pipeline_is_scheduled_again_only_when_something_moved() {
        let mut c = Changes::default();
        assert!(c.begin(&HashSet::from([1])), "the first pass is full");
        let resource = ResourceMark {
            id: 5,
            ..Default::default()
        };
        let mark = Mark::of_ids(
            &pipeline(1),
            &[],
            std::slice::from_ref(&resource),
            vec![],
            vec![],
        );
        assert!(c.changed(1, &mark), "never scheduled");
        c.scheduled(1, mark.clone());
        assert!(!c.begin(&HashSet::from([1])));
        assert!(!c.changed(1, &mark));

        let moved = [
            Mark::of_ids(
                &pipeline(2),
                &[],
                std::slice::from_ref(&resource),
                vec![],
                vec![],
            ),
            Mark::of_ids(
                &pipeline(1),
                &[],
                std::slice::from_ref(&resource),
                vec![9],
                vec![],
            ),
            Mark::of_ids(
                &pipeline(1),
                &[],
                std::slice::from_ref(&resource),
                vec![],
                vec![9],
            ),
            Mark::of_ids(
                &pipeline(1),
                &[],
                &[ResourceMark {
                    versions_changed: 1,
                    ..resource.clone()
                }],
                vec![],
                vec![],
            ),
            Mark::of_ids(
                &pipeline(1),
                &[JobMark {
                    paused: true,
                    ..Default::default()
                }],
                std::slice::from_ref(&resource),
                vec![],
                vec![],
            ),
        ];
        for m in &moved {
            assert!(c.changed(1, m), "{m:?}");
        }
        c.failed(1);
        assert!(c.changed(1, &mark), "a failed pipeline is tried again");
        c.scheduled(1, mark.clone());
        c.begin(&HashSet::new());
        assert!(c.changed(1, &mark), "a pipeline gone and back is new");
    }
}
