//! Which pipelines have something new to schedule. A pipeline's outcome depends only on
//! its config, its jobs and resources (pauses, builds, pins, checks, the versions of their
//! scopes: the store's scheduling marks) and its pending and running builds; when none of that moved since the pipeline was last
//! scheduled, scheduling it again would decide the same, so the pass skips it. All of it
//! is read from the store, so a change made through another web node counts the same.

use crate::db::{BuildRow, JobMark, PipelineRow, ResourceMark, SchedulingMarks};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One pipeline's scheduling marks: its jobs' and its resources'.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub jobs: Vec<JobMark>,
    pub resources: Vec<ResourceMark>,
}

/// `read`'s marks by pipeline; each of `ids` gets an entry, empty when it has no rows.
pub fn by_pipeline(read: SchedulingMarks, ids: &[i64]) -> HashMap<i64, Arc<Marks>> {
    let mut out: HashMap<i64, Marks> = ids.iter().map(|&id| (id, Marks::default())).collect();
    for j in read.jobs {
        out.entry(j.pipeline_id).or_default().jobs.push(j);
    }
    for r in read.resources {
        out.entry(r.pipeline_id).or_default().resources.push(r);
    }
    out.into_iter().map(|(id, m)| (id, Arc::new(m))).collect()
}

/// Every pipeline is scheduled at least this often whatever the marks say: the safety net
/// for a change that reaches none of them. `CONCOURSE_SCHEDULER_FULL_PASS_SECONDS` changes
/// it (tests set it high to show that changes alone are enough). Upstream has no such net
/// at all; ours costs a share of one pipeline's scheduling per pass (see [`Changes::begin`]).
fn every_pipeline_at_least() -> Duration {
    let secs = std::env::var("CONCOURSE_SCHEDULER_FULL_PASS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// What a pipeline was scheduled on.
/// Marks unchanged since the last read are the same `Arc`, so comparing them is cheap.
#[derive(Debug, Clone)]
pub struct Mark {
    config_version: i64,
    marks: Arc<Marks>,
    pending: Vec<i64>,
    started: Vec<i64>,
}

impl Mark {
    pub fn new(
        p: &PipelineRow,
        marks: &Arc<Marks>,
        pending: &[&BuildRow],
        started: &[&BuildRow],
    ) -> Mark {
        Mark::of_ids(
            p,
            marks.clone(),
            pending.iter().map(|b| b.id).collect(),
            started.iter().map(|b| b.id).collect(),
        )
    }

    fn of_ids(
        p: &PipelineRow,
        marks: Arc<Marks>,
        mut pending: Vec<i64>,
        mut started: Vec<i64>,
    ) -> Mark {
        pending.sort_unstable();
        started.sort_unstable();
        Mark {
            config_version: p.config_version,
            marks,
            pending,
            started,
        }
    }
}

impl PartialEq for Mark {
    /// Equal when scheduling on either would decide the same. A check that found nothing
    /// new moves only its resource's `last_checked` (and `check_failed`), which matter
    /// only to pending builds (a manually triggered one waits for its inputs' checks):
    /// with none pending, 1,000 resources checking every 10 s would otherwise reschedule
    /// their pipelines 100 times a second for nothing.
    fn eq(&self, other: &Mark) -> bool {
        let checks_matter = !self.pending.is_empty();
        self.config_version == other.config_version
            && self.pending == other.pending
            && self.started == other.started
            && (Arc::ptr_eq(&self.marks, &other.marks)
                || self.marks.jobs == other.marks.jobs
                    && self.marks.resources.len() == other.marks.resources.len()
                    && (self.marks.resources.iter())
                        .zip(&other.marks.resources)
                        .all(|(a, b)| same_resource(a, b, checks_matter)))
    }
}

/// Whether two marks of a resource schedule the same (its checks' times and outcomes
/// counting only when `checks_matter`).
fn same_resource(a: &ResourceMark, b: &ResourceMark, checks_matter: bool) -> bool {
    // Every field named, so a new one is a decision here rather than silently compared
    // or ignored.
    let ResourceMark {
        id,
        pipeline_id,
        name,
        last_checked,
        pinned_version,
        scope_id,
        config,
        check_failed,
        versions_changed,
    } = a;
    (
        *id,
        *pipeline_id,
        name,
        pinned_version,
        scope_id,
        config,
        *versions_changed,
    ) == (
        b.id,
        b.pipeline_id,
        &b.name,
        &b.pinned_version,
        &b.scope_id,
        &b.config,
        b.versions_changed,
    ) && (!checks_matter || (*last_checked, *check_failed) == (b.last_checked, b.check_failed))
}

pub struct Changes {
    /// Each pipeline's mark when it was last scheduled, and when that was.
    scheduled: HashMap<i64, (Mark, Instant)>,
    last_begin: Option<Instant>,
    /// Pipelines owed a forced scheduling: grows with the time between passes.
    owed: f64,
    full_every: Duration,
}

impl Default for Changes {
    fn default() -> Self {
        Changes::every(every_pipeline_at_least())
    }
}

impl Changes {
    fn every(full_every: Duration) -> Changes {
        Changes {
            scheduled: HashMap::new(),
            last_begin: None,
            owed: 0.0,
            full_every,
        }
    }

    /// Starts a pass over `live` pipelines (others are forgotten); answers the pipelines
    /// this pass schedules whatever their marks say. Those are the ones not scheduled for
    /// the safety interval, oldest first, at the rate that goes round all of them once per
    /// interval (so each is scheduled within about twice the interval): 200 pipelines every
    /// 300 s is two thirds of one a second, not 200 at once, a burst that was most of an
    /// idle web node's statements.
    pub fn begin(&mut self, live: &HashSet<i64>) -> HashSet<i64> {
        self.scheduled.retain(|id, _| live.contains(id));
        let now = Instant::now();
        let since = self.last_begin.map_or(Duration::ZERO, |at| now - at);
        self.last_begin = Some(now);
        let interval = self.full_every.as_secs_f64().max(0.001);
        let n = live.len() as f64;
        self.owed = (self.owed + n * since.as_secs_f64() / interval).min(n);
        let mut stale: Vec<(Instant, i64)> = self
            .scheduled
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= self.full_every)
            .map(|(id, (_, at))| (*at, *id))
            .collect();
        if stale.is_empty() {
            // Nothing is late: nothing accrues (a pass after a quiet hour forces nobody).
            self.owed = 0.0;
            return HashSet::new();
        }
        stale.sort_unstable();
        // No minimum: passes come as often as builds finish, and a forced one each would
        // be most of a busy node's scheduling.
        let take = (self.owed.floor() as usize).min(stale.len());
        self.owed = (self.owed - take as f64).max(0.0);
        stale.into_iter().take(take).map(|(_, id)| id).collect()
    }

    /// Whether pipeline `id` was scheduled (and has not failed since).
    pub fn knows(&self, id: i64) -> bool {
        self.scheduled.contains_key(&id)
    }

    /// Whether pipeline `id` has moved since it was scheduled on `mark`.
    pub fn changed(&self, id: i64, mark: &Mark) -> bool {
        self.scheduled.get(&id).map(|(m, _)| m) != Some(mark)
    }

    /// Pipeline `id` was scheduled on `mark`.
    pub fn scheduled(&mut self, id: i64, mark: Mark) {
        self.scheduled.insert(id, (mark, Instant::now()));
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
        assert!(
            c.begin(&HashSet::from([1])).is_empty(),
            "nothing scheduled yet"
        );
        let resource = ResourceMark {
            id: 5,
            ..Default::default()
        };
        let with =
            |jobs: Vec<JobMark>, resources: Vec<ResourceMark>| Arc::new(Marks { jobs, resources });
        let mark = Mark::of_ids(
            &pipeline(1),
            with(vec![], vec![resource.clone()]),
            vec![],
            vec![],
        );
        assert!(c.changed(1, &mark), "never scheduled");
        c.scheduled(1, mark.clone());
        assert!(c.begin(&HashSet::from([1])).is_empty());
        assert!(!c.changed(1, &mark));
        let reread = Mark::of_ids(
            &pipeline(1),
            with(vec![], vec![resource.clone()]),
            vec![],
            vec![],
        );
        assert!(!c.changed(1, &reread), "the same marks read again");

        let moved = [
            Mark::of_ids(
                &pipeline(2),
                with(vec![], vec![resource.clone()]),
                vec![],
                vec![],
            ),
            Mark::of_ids(
                &pipeline(1),
                with(vec![], vec![resource.clone()]),
                vec![9],
                vec![],
            ),
            Mark::of_ids(
                &pipeline(1),
                with(vec![], vec![resource.clone()]),
                vec![],
                vec![9],
            ),
            Mark::of_ids(
                &pipeline(1),
                with(
                    vec![],
                    vec![ResourceMark {
                        versions_changed: 1,
                        ..resource.clone()
                    }],
                ),
                vec![],
                vec![],
            ),
            Mark::of_ids(
                &pipeline(1),
                with(
                    vec![JobMark {
                        paused: true,
                        ..Default::default()
                    }],
                    vec![resource.clone()],
                ),
                vec![],
                vec![],
            ),
        ];
        for m in &moved {
            assert!(c.changed(1, m), "{m:?}");
        }
        let checked = ResourceMark {
            last_checked: 100,
            check_failed: true,
            ..resource.clone()
        };
        let rechecked = Mark::of_ids(
            &pipeline(1),
            with(vec![], vec![checked.clone()]),
            vec![],
            vec![],
        );
        assert!(!c.changed(1, &rechecked), "checked again, nothing pending");
        let waiting = |r: &ResourceMark| {
            Mark::of_ids(&pipeline(1), with(vec![], vec![r.clone()]), vec![9], vec![])
        };
        c.scheduled(1, waiting(&resource));
        assert!(
            c.changed(1, &waiting(&checked)),
            "a pending build may wait for that check"
        );
        c.scheduled(1, mark.clone());
        c.failed(1);
        assert!(c.changed(1, &mark), "a failed pipeline is tried again");
        c.scheduled(1, mark.clone());
        c.begin(&HashSet::new());
        assert!(c.changed(1, &mark), "a pipeline gone and back is new");
    }

    #[test]
    fn the_safety_net_schedules_late_pipelines_a_share_at_a_time_oldest_first() {
        let mut c = Changes::every(Duration::from_secs(100));
        let live: HashSet<i64> = (1..=10).collect();
        let long_ago = Instant::now() - Duration::from_secs(200);
        for id in 1..=10 {
            let mark = Mark::of_ids(&pipeline(1), Default::default(), vec![], vec![]);
            // Pipeline 7 is the latest of the late ones; 1 is the oldest.
            let at = long_ago + Duration::from_secs(if id == 7 { 50 } else { id as u64 });
            c.scheduled.insert(id, (mark, at));
        }
        assert!(c.begin(&live).is_empty(), "nothing owed yet");
        // Ten pipelines every 100 s is one every 10 s: 5 s later none is owed, 20 s two.
        c.last_begin = Some(Instant::now() - Duration::from_secs(5));
        assert!(c.begin(&live).is_empty());
        c.last_begin = Some(Instant::now() - Duration::from_secs(15));
        assert_eq!(c.begin(&live), HashSet::from([1, 2]), "the oldest first");
        c.scheduled(
            1,
            Mark::of_ids(&pipeline(1), Default::default(), vec![], vec![]),
        );
        c.scheduled(
            2,
            Mark::of_ids(&pipeline(1), Default::default(), vec![], vec![]),
        );
        // However long since the last pass, no more than the late ones.
        c.last_begin = Some(Instant::now() - Duration::from_secs(10_000));
        let forced = c.begin(&live);
        assert_eq!(forced.len(), 8);
        assert!(!forced.contains(&1) && !forced.contains(&2));
        for id in forced {
            c.scheduled(
                id,
                Mark::of_ids(&pipeline(1), Default::default(), vec![], vec![]),
            );
        }
        assert!(c.begin(&live).is_empty(), "none late: none forced");
    }
}
