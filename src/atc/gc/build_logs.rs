//! The build log collector, as upstream's: a job's old build logs are reaped (events
//! deleted, `reap_time` set) by its `build_log_retention` (or the older
//! `build_logs_to_retain`), within the web node's default and maximum retention flags.

use crate::clock::now;
use crate::db::{BuildRow, BuildStatus, Store};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DAY: i64 = 24 * 60 * 60;

/// The web node's retention flags; 0 = unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionLimits {
    pub default_builds: u64,
    pub max_builds: u64,
    pub default_days: u64,
    pub max_days: u64,
}

/// What one job keeps; 0 = no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub builds: u64,
    pub minimum_succeeded_builds: u64,
    pub days: u64,
}

impl RetentionLimits {
    /// The job's retention (from its stored config) with the defaults filling what it
    /// leaves unset and the maximums capping it, as upstream computes it.
    pub fn for_job(&self, config: &Value) -> Retention {
        let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (mut builds, mut days, min_succeeded) = match config.get("build_log_retention") {
            Some(r) if r.is_object() => (
                int(r, "builds"),
                int(r, "days"),
                int(r, "minimum_succeeded_builds"),
            ),
            _ => (int(config, "build_logs_to_retain"), 0, 0),
        };
        if builds == 0 {
            builds = self.default_builds;
        }
        if days == 0 {
            days = self.default_days;
        }
        if self.max_builds == 0 && self.max_days == 0 {
            return Retention {
                builds,
                minimum_succeeded_builds: min_succeeded,
                days,
            };
        }
        // With any maximum set, an unset kind takes its maximum (0 when that is unset too).
        let capped = |value: u64, max: u64| if value > 0 && value < max { value } else { max };
        let builds = capped(builds, self.max_builds);
        Retention {
            builds,
            minimum_succeeded_builds: if min_succeeded <= builds {
                min_succeeded
            } else {
                0
            },
            days: capped(days, self.max_days),
        }
    }
}

/// A build as retention sees it: id, status, end time.
pub type Logged = (i64, BuildStatus, i64);

/// Of a job's unreaped builds (newest first), those whose logs go, at `now`: beyond the
/// newest `builds` and/or ended more than `days` ago, keeping running builds and at least
/// `minimum_succeeded_builds` succeeded ones (which count towards `builds`).
pub fn builds_to_reap(builds: &[Logged], r: &Retention, now: i64) -> Vec<i64> {
    if r.builds == 0 && r.days == 0 {
        return Vec::new();
    }
    let (mut reap, mut kept_others) = (Vec::new(), Vec::new());
    let (mut kept, mut kept_succeeded) = (0u64, 0u64);
    for &(id, status, end_time) in builds {
        if !status.is_finished() {
            continue;
        }
        if r.builds != 0
            && r.minimum_succeeded_builds != 0
            && status == BuildStatus::Succeeded
            && kept_succeeded < r.minimum_succeeded_builds
        {
            kept += 1;
            kept_succeeded += 1;
            continue;
        }
        let full = kept >= r.builds;
        let expired = end_time != 0 && end_time + r.days as i64 * DAY < now;
        let goes = match (r.builds, r.days) {
            (_, 0) => full,
            (0, _) => expired,
            _ => full && expired,
        };
        if goes {
            reap.push(id);
        } else if r.builds != 0 {
            kept += 1;
            kept_others.push(id);
        }
    }
    // Succeeded builds kept for the minimum can push the count past `builds`: the oldest
    // of the others make room (upstream only does so in a pass that reaps anyway). Only
    // that excess: unexpired builds kept past the count when `days` is set too stay.
    if !reap.is_empty() {
        let over = kept.saturating_sub(r.builds).min(kept_succeeded) as usize;
        reap.extend(kept_others.iter().rev().take(over));
    }
    reap
}

/// One pass over every unpaused job of every unpaused pipeline (upstream skips paused ones
/// too) that has a retention: one statement when none has.
pub async fn collect_build_logs(
    store: &dyn Store,
    limits: &RetentionLimits,
    now: i64,
) -> crate::db::Result<u64> {
    let mut reaped = 0;
    // The web node's flags give every job a retention; else only jobs that ask for one.
    for job in store
        .retained_jobs(*limits != RetentionLimits::default())
        .await?
    {
        let retention = limits.for_job(&job.config);
        if retention.builds == 0 && retention.days == 0 {
            continue;
        }
        let builds: Vec<Logged> = store
            .unreaped_job_builds(job.id)
            .await?
            .iter()
            .map(|b: &BuildRow| (b.id, b.status, b.end_time))
            .collect();
        let ids = builds_to_reap(&builds, &retention, now);
        if !ids.is_empty() {
            reaped += store.reap_build_logs(&ids, now).await?;
        }
    }
    if reaped > 0 {
        tracing::info!(builds = reaped, "reaped build logs");
    }
    Ok(reaped)
}

/// Runs [`collect_build_logs`] every `interval` until `shutdown` fires.
pub async fn run_build_log_collector(
    store: Arc<dyn Store>,
    limits: RetentionLimits,
    interval: Duration,
    shutdown: CancellationToken,
) {
    crate::atc::periodic::Periodic::every("build log collector", interval)
        .run(shutdown, |_| {
            let store = store.clone();
            async move {
                collect_build_logs(store.as_ref(), &limits, now())
                    .await
                    .map(|_| ())
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(id: i64, status: BuildStatus, end_time: i64) -> Logged {
        (id, status, end_time)
    }

    #[test]
    fn the_job_asks_within_the_flags() {
        let none = RetentionLimits::default();
        let job = json!({"build_log_retention": {"builds": 3, "minimum_succeeded_builds": 1}});
        let r = none.for_job(&job);
        assert_eq!((r.builds, r.minimum_succeeded_builds, r.days), (3, 1, 0));
        assert_eq!(none.for_job(&json!({"build_logs_to_retain": 2})).builds, 2);
        let limits = RetentionLimits {
            default_builds: 5,
            max_builds: 10,
            default_days: 0,
            max_days: 0,
        };
        assert_eq!(limits.for_job(&json!({})).builds, 5, "the default");
        assert_eq!(
            limits.for_job(&json!({"build_logs_to_retain": 50})).builds,
            10
        );
        let min = json!({"build_log_retention": {"builds": 4, "minimum_succeeded_builds": 9}});
        assert_eq!(
            limits.for_job(&min).minimum_succeeded_builds,
            0,
            "a minimum past the builds kept is dropped"
        );
    }

    #[test]
    fn beyond_the_newest_builds_logs_go_but_running_and_minimum_succeeded_stay() {
        use BuildStatus::*;
        let builds = [
            build(6, Started, 0),
            build(5, Failed, 50),
            build(4, Failed, 40),
            build(3, Succeeded, 30),
            build(2, Failed, 20),
            build(1, Succeeded, 10),
        ];
        let keep = |builds, min, days| Retention {
            builds,
            minimum_succeeded_builds: min,
            days,
        };
        assert_eq!(builds_to_reap(&builds, &keep(2, 0, 0), 100), [3, 2, 1]);
        // One succeeded build is kept whatever its age; the newest other one with it.
        assert_eq!(builds_to_reap(&builds, &keep(2, 1, 0), 100), [2, 1, 4]);
        // Days only: ended over a day before `now`.
        let now = 30 + DAY + 1;
        assert_eq!(builds_to_reap(&builds, &keep(0, 0, 1), now), [3, 2, 1]);
        // Both: only builds past the count *and* expired.
        assert_eq!(builds_to_reap(&builds, &keep(1, 0, 1), now), [3, 2, 1]);
        assert!(builds_to_reap(&builds, &keep(0, 0, 0), now).is_empty());
    }
}
