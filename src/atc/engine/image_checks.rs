//! A task's `image_resource` check reuses a recent one of the same image, as upstream's
//! step-embedded checks do (its check delegate's `WaitToRun`): a build the scheduler
//! started takes the version a check found within the default interval (1m); a manually
//! triggered build takes it only from a check that began after the build was created.
//! Otherwise the check runs, as before. Upstream keeps the last check in the image's
//! resource config scope; here it is this web node's memory, so another node (or a
//! restart) only checks once more.
//!
//! Each check of an image is a container started and destroyed: skipping it halves the
//! containers of a scheduled build whose task names an image.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upstream's default check interval, which its image checks wait for (and the checker
/// uses for resources without `check_every`).
pub const INTERVAL: Duration = Duration::from_secs(60);
/// How long a check is remembered: long enough for manual builds that were pending.
const KEPT: Duration = Duration::from_secs(600);

struct Checked {
    /// Unix seconds, floored: compared with a build's create time (also whole seconds).
    started: i64,
    ended: Instant,
    version: Value,
}

#[derive(Default)]
pub struct ImageChecks(Mutex<HashMap<String, Checked>>);

/// Whether a build was triggered by hand (its create time) or by the scheduler.
pub enum Trigger {
    Manual { created: i64 },
    Scheduled,
}

impl ImageChecks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Checked>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version a build triggered so may use without checking `key` again.
    pub fn reusable(&self, key: &str, trigger: Trigger) -> Option<Value> {
        let checks = self.lock();
        let c = checks.get(key)?;
        let fresh = match trigger {
            // Whole seconds on both sides: a check started in a later second than the
            // build's creation surely began after it.
            Trigger::Manual { created } => c.started > created,
            Trigger::Scheduled => c.ended.elapsed() < INTERVAL,
        };
        fresh.then(|| c.version.clone())
    }

    /// A successful check of `key` that began at `started` and found `version` last.
    pub fn record(&self, key: String, started: SystemTime, version: Value) {
        let started = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut checks = self.lock();
        checks.retain(|_, c| c.ended.elapsed() < KEPT);
        checks.insert(
            key,
            Checked {
                started,
                ended: Instant::now(),
                version,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_builds_reuse_a_recent_check_and_manual_ones_only_a_later_one() {
        let checks = ImageChecks::default();
        assert_eq!(checks.reusable("k", Trigger::Scheduled), None);
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        checks.record("k".into(), now, json!({"v": "1"}));
        assert_eq!(
            checks.reusable("k", Trigger::Scheduled),
            Some(json!({"v": "1"}))
        );
        assert_eq!(checks.reusable("other", Trigger::Scheduled), None);
        // Created in the second the check began, or later: it may have begun first.
        assert_eq!(
            checks.reusable("k", Trigger::Manual { created: secs }),
            None
        );
        assert_eq!(
            checks.reusable("k", Trigger::Manual { created: secs - 1 }),
            Some(json!({"v": "1"}))
        );
    }
}
