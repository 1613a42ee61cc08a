//! Kept check containers (see `engine::resource`): destroyed once unused past their
//! expiry, or when no live resource has their config any more (the resources that used
//! it are gone, archived, or their source changed).

use crate::atc::engine::labels::{expires_of, CHECK_CONFIG, CHECK_KEY, TYPE};
use crate::atc::engine::runtime::Runtime;
use crate::atc::engine::Engine;
use crate::proto::garden::Properties;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One pass over every reachable worker at `now`.
pub async fn collect_check_containers(rt: &Runtime, now: i64) -> crate::db::Result<()> {
    let store = &rt.store;
    let Ok(workers) = rt.live_workers().await else {
        return Ok(());
    };
    // Containers are listed before the resources are read: a check container made after a
    // resources snapshot would look orphaned (its pipeline or scope not in it yet).
    let mut listed = Vec::new();
    for w in workers {
        let filter = Properties::from([(TYPE.to_string(), "check".to_string())]);
        let Ok(handles) = w.garden.list(filter).await else {
            continue;
        };
        let Ok(infos) = w.garden.bulk_info(&handles).await else {
            continue;
        };
        listed.push((w, infos));
    }
    // Every live pipeline's resources in one statement (not one per pipeline).
    let live: Vec<i64> = store.live_pipelines().await?.iter().map(|p| p.id).collect();
    let configs: HashSet<String> = store
        .scheduling_marks(&live)
        .await?
        .resources
        .into_iter()
        .filter_map(|r| r.config)
        .collect();
    for (w, infos) in listed {
        for (handle, entry) in infos {
            let p = &entry.info.properties;
            if !p.contains_key(CHECK_KEY) {
                continue;
            }
            let expired = expires_of(p).is_some_and(|t| t < now);
            let orphaned = !configs.contains(p.get(CHECK_CONFIG).map_or("", String::as_str));
            if expired || orphaned {
                tracing::debug!(worker = %w.name, %handle, expired, orphaned, "destroying check container");
                // Not one a check of this node holds (a first check's container may be
                // listed before its resource has the config).
                let _ = w.kept.give_up(&handle, &*w.garden, |_| false).await;
            }
        }
    }
    Ok(())
}

/// Runs [`collect_check_containers`] every `interval` until `shutdown` fires.
pub async fn run_container_collector(
    engine: Arc<Engine>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    crate::atc::periodic::Periodic::every("container collector", interval)
        .run(shutdown, |_| {
            let engine = engine.clone();
            async move {
                let now = crate::clock::now();
                collect_check_containers(&engine.rt, now).await?;
                let running = |id| engine.handle.is_running(id);
                super::collect_build_containers(&engine.rt, now, &running).await
            }
        })
        .await
}
