//! Kept check containers of one worker, as this node sees them: which to give up first
//! when the worker is at its container cap (the least recently used: soonest expiry).

use super::labels;
use crate::proto::garden::{Garden, Properties};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a listing of kept check containers serves evictions, and what share of it
/// (the oldest) they may take: a container used since it was listed is no longer the
/// least recently used.
const EVICTABLE_FOR: Duration = Duration::from_secs(2);
const EVICTABLE_SHARE: usize = 8;

/// How long expiries this node remembers stand in for the worker's. Another node's use of
/// a container moves its expiry only on the worker; past this, every expiry is read again.
const REMEMBERED_FOR: Duration = Duration::from_secs(30);

/// How long a container given up is remembered, so that a step that found it just before
/// does not claim it.
const GONE_FOR: Duration = Duration::from_secs(10);

/// Shared by this node's clients of one worker.
#[derive(Default)]
pub struct Kept {
    evictable: Mutex<Evictable>,
    expiries: std::sync::Mutex<Expiries>,
}

/// What this node knows of the worker's check containers. One lock over all of it, so a
/// container is never both claimed by a step and given up.
#[derive(Default)]
struct Expiries {
    /// Each one's expiry (None: a one-off check's, never given up), as this node last set
    /// or read it.
    of: HashMap<String, Option<i64>>,
    /// When all of them were last read from the worker.
    all_read: Option<Instant>,
    /// Held by steps of this node (how many).
    in_use: HashMap<String, usize>,
    /// Being given up (None), or given up lately (when).
    giving_up: HashMap<String, Option<Instant>>,
}

/// A step's hold on a kept check container: this node does not give it up meanwhile.
pub struct InUse {
    kept: Arc<Kept>,
    handle: String,
    /// Made for this step (its expiry set as it was).
    pub made_now: bool,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut known = self.kept.lock();
        if let Some(n) = known.in_use.get_mut(&self.handle) {
            *n -= 1;
            if *n == 0 {
                known.in_use.remove(&self.handle);
            }
        }
    }
}

/// The oldest kept check containers of the last listing, oldest first, with their expiry
/// then.
#[derive(Default)]
struct Evictable {
    handles: VecDeque<(String, i64)>,
    listed: Option<Instant>,
}

impl Kept {
    fn lock(&self) -> std::sync::MutexGuard<'_, Expiries> {
        self.expiries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node set kept check container `handle`'s expiry.
    pub fn used(&self, handle: &str, expires: i64) {
        self.lock().of.insert(handle.to_string(), Some(expires));
    }

    /// Holds kept check container `handle` for a step that uses it from now until about
    /// `expires`; None when this node is giving it up.
    pub fn claim(self: &Arc<Self>, handle: &str, expires: i64) -> Option<InUse> {
        let mut known = self.lock();
        if known.giving_up.contains_key(handle) {
            return None;
        }
        known.of.insert(handle.to_string(), Some(expires));
        *known.in_use.entry(handle.to_string()).or_default() += 1;
        Some(InUse {
            kept: self.clone(),
            handle: handle.to_string(),
            made_now: false,
        })
    }

    /// Destroys the worker's least recently used kept check container that no step of this
    /// node holds; false when it has none. A check of another web node using it fails and
    /// runs again at its next interval, which beats a build failing.
    ///
    /// Finding the oldest needs every kept container's expiry. At the cap with more
    /// configs than room, every check makes a container: listing for each eviction was a
    /// tenth of the node's CPU, and reading every container's info every two seconds
    /// still a tenth. One listing now serves the evictions of the next two seconds, from
    /// the oldest eighth of what it found, and the info is read only of containers whose
    /// expiry this node does not know (all of them every 30 s).
    pub async fn evict(&self, name: &str, garden: &dyn Garden) -> bool {
        let mut listed_now = false;
        loop {
            let next = {
                let mut evictable = self.evictable.lock().await;
                let fresh = evictable
                    .listed
                    .is_some_and(|at| at.elapsed() < EVICTABLE_FOR);
                if evictable.handles.is_empty() || !fresh {
                    if listed_now {
                        return false;
                    }
                    let oldest = self.oldest(garden).await;
                    let take = oldest.len().div_ceil(EVICTABLE_SHARE);
                    evictable.handles = oldest.into_iter().take(take).collect();
                    evictable.listed = Some(Instant::now());
                    listed_now = true;
                }
                evictable.handles.pop_front()
            };
            let Some((handle, listed_expiry)) = next else {
                return false;
            };
            // Used since it was listed: not the least recently used any more.
            let used_since = |e: Option<i64>| e > Some(listed_expiry);
            // Steps racing for room take different ones; a handle another node or the
            // collector destroyed meanwhile is passed over.
            if self.give_up(&handle, garden, used_since).await {
                tracing::info!(worker = %name, container = %handle,
                    "worker at its container limit: gave up its least recently used check container");
                return true;
            }
        }
    }

    /// Destroys kept check container `handle` unless a step of this node holds it or
    /// `keep` says so of its expiry (as this node knows it); true when it is gone. No
    /// step claims it meanwhile, nor in the seconds after (one that found it just before
    /// would run in a container that is no more).
    pub async fn give_up(
        &self,
        handle: &str,
        garden: &dyn Garden,
        keep: impl FnOnce(Option<i64>) -> bool,
    ) -> bool {
        {
            let mut known = self.lock();
            let expiry = known.of.get(handle).copied().flatten();
            if known.in_use.contains_key(handle) || keep(expiry) {
                return false;
            }
            known.giving_up.insert(handle.to_string(), None);
        }
        let destroyed = garden.destroy(handle).await.is_ok();
        let mut known = self.lock();
        known.of.remove(handle);
        // One clock reading: at the cap this runs for every check, over hundreds.
        let now = Instant::now();
        known.giving_up.insert(handle.to_string(), Some(now));
        (known.giving_up).retain(|_, at| at.is_none_or(|at| now.duration_since(at) < GONE_FOR));
        destroyed
    }

    /// The worker's kept check containers no step of this node holds, soonest expiry (least
    /// recently used) first.
    async fn oldest(&self, garden: &dyn Garden) -> Vec<(String, i64)> {
        let kind = Properties::from([(labels::TYPE.to_string(), "check".to_string())]);
        let Ok(handles) = garden.list(kind).await else {
            return vec![];
        };
        let unknown: Vec<String> = {
            let known = self.lock();
            let stale = known
                .all_read
                .is_none_or(|at| at.elapsed() >= REMEMBERED_FOR);
            (handles.iter())
                .filter(|h| stale || !known.of.contains_key(*h))
                .cloned()
                .collect()
        };
        let mut read = HashMap::new();
        if !unknown.is_empty() {
            let Ok(infos) = garden.bulk_info(&unknown).await else {
                return vec![];
            };
            for (h, e) in infos {
                let p = &e.info.properties;
                let expires =
                    (p.contains_key(labels::CHECK_KEY)).then(|| labels::expires_of(p).unwrap_or(0));
                read.insert(h, expires);
            }
        }
        let mut known = self.lock();
        if unknown.len() == handles.len() {
            known.all_read = Some(Instant::now());
        }
        known.of.extend(read);
        // Gone from the worker: forgotten.
        let listed: std::collections::HashSet<&String> = handles.iter().collect();
        known.of.retain(|h, _| listed.contains(h));
        // Held ones are not candidates (they would crowd the share out).
        let mut kept: Vec<(i64, String)> = (known.of.iter())
            .filter(|(h, _)| !known.in_use.contains_key(*h))
            .filter_map(|(h, expires)| Some(((*expires)?, h.clone())))
            .collect();
        kept.sort();
        kept.into_iter().map(|(e, h)| (h, e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::garden::backend::ProcessBackend;
    use crate::garden::{Containers, GardenConfig};
    use crate::proto::garden::ContainerSpec;
    use std::sync::Arc;

    async fn create(g: &Arc<Containers>, handle: &str, props: &[(&str, &str)]) {
        let mut properties = Properties::from([(labels::TYPE.to_string(), "check".into())]);
        for (k, v) in props {
            properties.insert(k.to_string(), v.to_string());
        }
        let spec = ContainerSpec {
            handle: handle.into(),
            properties,
            ..Default::default()
        };
        g.create(spec).await.expect("create");
    }

    /// A kept check container (its key its handle) expiring at `expires`.
    async fn kept_container(g: &Arc<Containers>, handle: &str, expires: i64) {
        let expires = expires.to_string();
        create(
            g,
            handle,
            &[(labels::CHECK_KEY, handle), (labels::EXPIRES, &expires)],
        )
        .await;
    }

    fn left(g: &Arc<Containers>) -> Vec<String> {
        let mut h = g.handles();
        h.sort();
        h
    }

    fn garden(dir: &tempfile::TempDir) -> Arc<Containers> {
        let config = GardenConfig {
            dir: dir.path().join("containers"),
            default_grace_time: Duration::ZERO,
            max_containers: 0,
        };
        Containers::new(Arc::new(ProcessBackend), config).expect("garden")
    }

    #[tokio::test]
    async fn the_least_recently_used_kept_container_goes_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let g = garden(&dir);
        kept_container(&g, "old", 100).await;
        kept_container(&g, "new", 300).await;
        kept_container(&g, "mid", 200).await;
        // A one-off check's container is never given up: its check is running.
        create(&g, "once", &[]).await;
        let kept = Kept::default();

        assert!(kept.evict("w", &g).await);
        assert_eq!(left(&g), ["mid", "new", "once"]);
        // Used here since: its expiry on the worker is stale, this node's is not.
        kept.used("mid", 400);
        // A new listing (the last one's share is spent) reads only what it does not know.
        kept.evictable.lock().await.listed = None;
        kept_container(&g, "late", 250).await;
        assert!(kept.evict("w", &g).await);
        assert_eq!(left(&g), ["mid", "new", "once"], "the late one was older");
        kept.evictable.lock().await.listed = None;
        assert!(kept.evict("w", &g).await);
        assert_eq!(left(&g), ["mid", "once"]);
        kept.evictable.lock().await.listed = None;
        assert!(kept.evict("w", &g).await);
        assert_eq!(left(&g), ["once"]);
        assert!(!kept.evict("w", &g).await, "nothing left to give up");
        assert_eq!(left(&g), ["once"]);
        g.close().await;
    }

    #[tokio::test]
    async fn a_container_used_since_it_was_listed_is_passed_over() {
        let dir = tempfile::tempdir().expect("tmp");
        let g = garden(&dir);
        kept_container(&g, "a", 100).await;
        kept_container(&g, "b", 200).await;
        let kept = Kept::default();
        let listed = kept.oldest(&g).await;
        assert_eq!(listed, [("a".to_string(), 100), ("b".to_string(), 200)]);
        {
            let mut evictable = kept.evictable.lock().await;
            evictable.handles = listed.into_iter().take(1).collect();
            evictable.listed = Some(Instant::now());
        }
        // A check starts in "a" after the listing that made it the next to go.
        kept.used("a", 400);
        assert!(kept.evict("w", &g).await);
        assert_eq!(left(&g), ["a"]);
        g.close().await;
    }

    #[tokio::test]
    async fn a_container_a_step_holds_is_not_given_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let g = garden(&dir);
        kept_container(&g, "a", 100).await;
        kept_container(&g, "b", 200).await;
        let kept = Arc::new(Kept::default());
        let held = kept.claim("a", 100).expect("claim");
        assert!(kept.evict("w", &g).await);
        assert_eq!(left(&g), ["a"], "the older one is held");
        assert!(!kept.evict("w", &g).await, "the only one left is held");
        drop(held);
        assert!(kept.evict("w", &g).await);
        assert!(left(&g).is_empty());
        // One being given up cannot be claimed: the step makes a new one instead.
        kept.lock().giving_up.insert("c".into(), None);
        assert!(kept.claim("c", 300).is_none());
        g.close().await;
    }
}
