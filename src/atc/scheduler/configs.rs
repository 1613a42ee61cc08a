//! Parsed pipeline configs, kept per config version: a pass runs at least once a second
//! over every pipeline, and a config only changes when `set-pipeline` bumps its version.
//!
//! A parsed config is some 20 times its stored JSON (≈ 40 KB for ten jobs), and most
//! pipelines of a large node sit still: every pass needs only their resources' check
//! intervals. So each live pipeline keeps its [`CheckTimes`]; its whole config is kept
//! while it is in use (scheduled or checked within [`KEEP`]) and parsed again after.

use super::checker::{check_times, CheckTimes};
use crate::config::Config;
use crate::db::PipelineRow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a whole config unused is kept.
pub const KEEP: Duration = Duration::from_secs(30);

/// A parse result: unreadable configs are kept too, so they are not re-parsed (and warned
/// about) every pass.
type Parsed = Result<Arc<Config>, String>;

struct Entry {
    version: i64,
    /// None when the config does not parse.
    checks: Option<CheckTimes>,
    /// None once unused for [`KEEP`] (an unreadable config's error is kept).
    parsed: Option<Parsed>,
    used: Instant,
}

#[derive(Default)]
pub struct Configs {
    /// Pipeline id → its config at one version.
    cache: Mutex<HashMap<i64, Entry>>,
}

impl Configs {
    /// Pipeline `p`'s parsed config, loading and parsing it only when `p.config_version`
    /// is not the one kept whole. None when it has no config (or it does not parse).
    pub async fn get(
        &self,
        store: &Arc<dyn crate::db::Store>,
        p: &PipelineRow,
    ) -> anyhow::Result<Option<Arc<Config>>> {
        self.get_with(p.id, p.config_version, || load(store, p))
            .await
    }

    /// The check times of `p`'s config, parsing it only when `p.config_version` is not the
    /// one kept. None as for [`Configs::get`].
    pub async fn check_times(
        &self,
        store: &Arc<dyn crate::db::Store>,
        p: &PipelineRow,
    ) -> anyhow::Result<Option<CheckTimes>> {
        self.check_times_with(p.id, p.config_version, || load(store, p))
            .await
    }

    async fn check_times_with<F, Fut>(
        &self,
        id: i64,
        version: i64,
        load: F,
    ) -> anyhow::Result<Option<CheckTimes>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<(i64, Parsed)>>>,
    {
        if let Some(e) = self.lock().get(&id).filter(|e| e.version == version) {
            return Ok(e.checks.clone());
        }
        self.get_with(id, version, load).await?;
        Ok(self.lock().get(&id).and_then(|e| e.checks.clone()))
    }

    /// The kept config of `id` at `version`, or `load`'s (version, parse) which is kept.
    async fn get_with<F, Fut>(
        &self,
        id: i64,
        version: i64,
        load: F,
    ) -> anyhow::Result<Option<Arc<Config>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<(i64, Parsed)>>>,
    {
        if let Some(e) = self.lock().get_mut(&id).filter(|e| e.version == version) {
            if let Some(parsed) = &e.parsed {
                e.used = Instant::now();
                return Ok(parsed.as_ref().ok().cloned());
            }
        }
        // The stored version may be newer than the row's: key by what was loaded.
        let Some((loaded, parsed)) = load().await? else {
            self.lock().remove(&id);
            return Ok(None);
        };
        let config = parsed.as_ref().ok().cloned();
        let entry = Entry {
            version: loaded,
            checks: config.as_deref().map(check_times),
            parsed: Some(parsed),
            used: Instant::now(),
        };
        self.lock().insert(id, entry);
        Ok(config)
    }

    /// Forgets the pipelines not in `live` (deleted or archived).
    pub fn retain(&self, live: &HashSet<i64>) {
        self.lock().retain(|id, _| live.contains(id));
    }

    /// Drops the whole configs not used for [`KEEP`] by `now`; their check times stay.
    pub fn forget_unused(&self, now: Instant) {
        for e in self.lock().values_mut() {
            if matches!(e.parsed, Some(Ok(_))) && now.duration_since(e.used) >= KEEP {
                e.parsed = None;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Entry>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Loads and parses `p`'s stored config: (its version, the parse).
async fn load(
    store: &Arc<dyn crate::db::Store>,
    p: &PipelineRow,
) -> anyhow::Result<Option<(i64, Parsed)>> {
    let Some((json, version)) = store.pipeline_config(p.id).await? else {
        return Ok(None);
    };
    let parsed = super::pipeline_config(&json).map(Arc::new).map_err(|e| {
        tracing::warn!(pipeline = %p.name, error = %e, "unreadable pipeline config");
        e.to_string()
    });
    Ok(Some((version, parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn get(c: &Configs, id: i64, version: i64, parses: &AtomicUsize) -> Option<Arc<Config>> {
        c.get_with(id, version, || async {
            parses.fetch_add(1, Ordering::SeqCst);
            let config = crate::config::parse_pipeline(b"jobs: []").map_err(|e| e.to_string());
            Ok(Some((version, config.map(Arc::new))))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn parses_once_per_version() {
        let (c, parses) = (Configs::default(), AtomicUsize::new(0));
        let first = get(&c, 1, 7, &parses).await.unwrap();
        let again = get(&c, 1, 7, &parses).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(parses.load(Ordering::SeqCst), 1);

        let bumped = get(&c, 1, 8, &parses).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &bumped));
        assert_eq!(parses.load(Ordering::SeqCst), 2);

        get(&c, 2, 8, &parses).await.unwrap();
        assert_eq!(parses.load(Ordering::SeqCst), 3);
        c.retain(&HashSet::from([2]));
        get(&c, 1, 8, &parses).await.unwrap();
        assert_eq!(
            parses.load(Ordering::SeqCst),
            4,
            "evicted pipelines are parsed again"
        );
        get(&c, 2, 8, &parses).await.unwrap();
        assert_eq!(parses.load(Ordering::SeqCst), 4);
    }

    async fn check_times(c: &Configs, id: i64, parses: &AtomicUsize) -> Option<CheckTimes> {
        c.check_times_with(id, 1, || async {
            parses.fetch_add(1, Ordering::SeqCst);
            let doc = b"resources:\n- {name: a, type: git, check_every: 10s}\n- {name: b, type: git}\n- {name: c, type: git, check_every: never}\njobs:\n- name: j\n  plan: [{get: a}, {get: b}, {get: c}]";
            let config = crate::config::parse_pipeline(doc).map_err(|e| e.to_string());
            Ok(Some((1, config.map(Arc::new))))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn unused_configs_are_dropped_and_their_check_times_kept() {
        let (c, parses) = (Configs::default(), AtomicUsize::new(0));
        let times = check_times(&c, 1, &parses).await.unwrap();
        let expected = [
            ("a".to_string(), Duration::from_secs(10)),
            ("b".to_string(), super::super::checker::DEFAULT_INTERVAL),
        ];
        assert_eq!(&times[..], &expected[..], "`never` is not on a timer");
        assert_eq!(parses.load(Ordering::SeqCst), 1);

        c.forget_unused(Instant::now() + KEEP / 2);
        assert!(c.lock()[&1].parsed.is_some(), "used recently: kept whole");
        c.forget_unused(Instant::now() + KEEP);
        assert!(c.lock()[&1].parsed.is_none(), "unused: dropped");
        let again = check_times(&c, 1, &parses).await.unwrap();
        assert!(
            Arc::ptr_eq(&times, &again),
            "check times outlive the config"
        );
        assert_eq!(parses.load(Ordering::SeqCst), 1);

        get(&c, 1, 1, &parses).await.unwrap();
        assert_eq!(
            parses.load(Ordering::SeqCst),
            2,
            "a dropped config is parsed again"
        );
    }

    #[tokio::test]
    async fn unreadable_configs_are_not_parsed_again() {
        let (c, parses) = (Configs::default(), AtomicUsize::new(0));
        let broken = || async {
            parses.fetch_add(1, Ordering::SeqCst);
            Ok(Some((1, Err("jobs: not a list".to_string()))))
        };
        assert!(c.check_times_with(1, 1, broken).await.unwrap().is_none());
        c.forget_unused(Instant::now() + KEEP);
        assert!(c.check_times_with(1, 1, broken).await.unwrap().is_none());
        assert!(c.get_with(1, 1, broken).await.unwrap().is_none());
        assert_eq!(parses.load(Ordering::SeqCst), 1);
    }
}
