//! Parsed pipeline configs, kept per config version: a pass runs at least once a second
//! over every pipeline, and a config only changes when `set-pipeline` bumps its version.

use crate::config::Config;
use crate::db::PipelineRow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A parse result: unreadable configs are kept too, so they are not re-parsed (and warned
/// about) every pass.
type Parsed = Result<Arc<Config>, String>;

#[derive(Default)]
pub struct Configs {
    /// Pipeline id → (config version, parsed config).
    cache: Mutex<HashMap<i64, (i64, Parsed)>>,
}

impl Configs {
    /// Pipeline `p`'s parsed config, loading and parsing it only when `p.config_version`
    /// is not the one cached. None when it has no config (or it does not parse).
    pub async fn get(
        &self,
        store: &Arc<dyn crate::db::Store>,
        p: &PipelineRow,
    ) -> anyhow::Result<Option<Arc<Config>>> {
        self.get_with(p.id, p.config_version, || async {
            let Some((json, version)) = store.pipeline_config(p.id).await? else {
                return Ok(None);
            };
            let parsed = super::pipeline_config(&json).map(Arc::new).map_err(|e| {
                tracing::warn!(pipeline = %p.name, error = %e, "unreadable pipeline config");
                e.to_string()
            });
            Ok(Some((version, parsed)))
        })
        .await
    }

    /// The cached config of `id` at `version`, or `load`'s (version, parse) which is kept.
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
        if let Some((v, parsed)) = self.lock().get(&id) {
            if *v == version {
                return Ok(parsed.as_ref().ok().cloned());
            }
        }
        // The stored version may be newer than the row's: key by what was loaded.
        let Some((loaded, parsed)) = load().await? else {
            self.lock().remove(&id);
            return Ok(None);
        };
        let config = parsed.as_ref().ok().cloned();
        self.lock().insert(id, (loaded, parsed));
        Ok(config)
    }

    /// Forgets the pipelines not in `live` (deleted or archived).
    pub fn retain(&self, live: &HashSet<i64>) {
        self.lock().retain(|id, _| live.contains(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (i64, Parsed)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
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
}
