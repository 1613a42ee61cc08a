//! A task's `image_resource` check reuses a recent one of the same image, as upstream's
//! step-embedded checks do (its check delegate's `WaitToRun`): a build the scheduler
//! started takes the version a check found within the default interval (1m); a manually
//! triggered build takes it only from a check that began after the build was created.
//! Otherwise the check runs, as before. Upstream keeps the last check in the image's
//! resource config scope; here it is this web node's memory, so another node (or a
//! restart) only checks once more.
//!
//! Checks of one image take turns, as upstream's hold the image scope's checking lock: a
//! build waiting for its turn finds the check that ran meanwhile and, if it may use it,
//! skips its own. Builds triggered together therefore check once (or once per second they
//! were created in), not once each.
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
    /// The same moment on this node's clock, for builds that waited for their turn here.
    began: Instant,
    ended: Instant,
    version: Value,
}

#[derive(Default)]
pub struct ImageChecks {
    checks: Mutex<HashMap<String, Checked>>,
    /// One turn per image being checked.
    turns: super::turns::Turns,
}

/// Held while deciding whether to check an image, and through the check if one runs.
pub struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    /// When the build asked for it: it was created before then.
    asked: Instant,
}

/// Whether a build was triggered by hand (its create time) or by the scheduler.
pub enum Trigger {
    Manual { created: i64 },
    Scheduled,
}

impl ImageChecks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Checked>> {
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no other build of this node is deciding about, or checking, `key`.
    pub async fn turn(&self, key: &str) -> Turn {
        let asked = Instant::now();
        Turn {
            _guard: self.turns.take(key).await,
            asked,
        }
    }

    /// The version a build triggered so, holding `turn`, may use without checking `key`
    /// again.
    pub fn reusable(&self, key: &str, trigger: Trigger, turn: &Turn) -> Option<Value> {
        let checks = self.lock();
        let c = checks.get(key)?;
        let fresh = match trigger {
            // A check began after the build was created if it began in a later second
            // (whole seconds on both sides), or after the build asked for its turn.
            Trigger::Manual { created } => c.started > created || c.began > turn.asked,
            Trigger::Scheduled => c.ended.elapsed() < INTERVAL,
        };
        fresh.then(|| c.version.clone())
    }

    /// A successful check of `key` that began at `started` (`began` on this node's clock)
    /// and found `version` last.
    pub fn record(&self, key: String, started: SystemTime, began: Instant, version: Value) {
        let started = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut checks = self.lock();
        checks.retain(|_, c| c.ended.elapsed() < KEPT);
        checks.insert(
            key,
            Checked {
                started,
                began,
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

    #[tokio::test]
    async fn scheduled_builds_reuse_a_recent_check_and_manual_ones_only_a_later_one() {
        let checks = ImageChecks::default();
        let waited = checks.turn("k").await;
        assert_eq!(checks.reusable("k", Trigger::Scheduled, &waited), None);
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        checks.record("k".into(), now, Instant::now(), json!({"v": "1"}));
        drop(waited);
        // Asked for its turn after the check began.
        let late = checks.turn("k").await;
        assert_eq!(
            checks.reusable("k", Trigger::Scheduled, &late),
            Some(json!({"v": "1"}))
        );
        assert_eq!(checks.reusable("other", Trigger::Scheduled, &late), None);
        // Created in the second the check began, or later, and asked for its turn after
        // the check began: it may have been created after it.
        let manual = |created| Trigger::Manual { created };
        assert_eq!(checks.reusable("k", manual(secs), &late), None);
        assert_eq!(
            checks.reusable("k", manual(secs - 1), &late),
            Some(json!({"v": "1"}))
        );
        // Asked for its turn before a check that began afterwards: created before it.
        checks.record("k".into(), now, Instant::now(), json!({"v": "2"}));
        assert_eq!(
            checks.reusable("k", manual(secs + 1), &late),
            Some(json!({"v": "2"}))
        );
    }
}
