//! Containers of finished builds. A build cleans up after itself when it ends on the node
//! that ran it; this collects what that cleanup never reached: builds ended from outside
//! (quickstart shut down mid-build, a pipeline destroyed) or a node that exited during a
//! failed build's intercept window. A started build's containers are kept whoever runs it:
//! an adopted build re-attaches to them.
//!
//! An errored build's processes are stopped at once (nothing runs for a build that says
//! it ended); containers are destroyed once `fly intercept` no longer wants them: at once
//! for succeeded and aborted builds, after [`INTERCEPT_GRACE`] otherwise.

use crate::atc::engine::labels::{BUILD_ID, CHECK_KEY};
use crate::atc::engine::runtime::{Runtime, INTERCEPT_GRACE};
use crate::db::BuildStatus;
use crate::proto::garden::Properties;
use std::collections::HashMap;

/// Set on a container whose processes this collector stopped, so an intercept session
/// started in it afterwards is left alone.
const STOPPED: &str = "concourse:stopped";

/// What to do with a container of a build in `status` that ended at `end`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    Stop,
    Destroy,
}

fn verdict(status: BuildStatus, end: i64, now: i64, running_here: bool) -> Verdict {
    if !status.is_finished() || running_here {
        return Verdict::Keep;
    }
    let grace_over = end + INTERCEPT_GRACE.as_secs() as i64 <= now;
    match status {
        BuildStatus::Succeeded | BuildStatus::Aborted => Verdict::Destroy,
        _ if grace_over => Verdict::Destroy,
        // An errored build may have been ended from outside (its node died) with its
        // processes still running; a failed one's processes have ended by themselves.
        BuildStatus::Errored => Verdict::Stop,
        _ => Verdict::Keep,
    }
}

/// One pass over every reachable worker at `now`; `running_here` says whether this node
/// still runs a build (its own cleanup will come).
pub async fn collect_build_containers(
    rt: &Runtime,
    now: i64,
    running_here: &(dyn Fn(i64) -> bool + Sync),
) -> crate::db::Result<()> {
    let Ok(workers) = rt.live_workers().await else {
        return Ok(());
    };
    let mut builds: HashMap<i64, Option<(BuildStatus, i64)>> = HashMap::new();
    for w in workers {
        let Ok(handles) = w.garden.list(Properties::new()).await else {
            continue;
        };
        let Ok(infos) = w.garden.bulk_info(&handles).await else {
            continue;
        };
        for (handle, entry) in infos {
            let p = &entry.info.properties;
            let Some(id) = p.get(BUILD_ID).and_then(|v| v.parse::<i64>().ok()) else {
                continue;
            };
            if p.contains_key(CHECK_KEY) {
                continue; // kept check containers have their own collector
            }
            let build = match builds.get(&id) {
                Some(b) => *b,
                None => {
                    let b = rt.store.build(id).await?.map(|b| (b.status, b.end_time));
                    builds.insert(id, b);
                    b
                }
            };
            // A container whose build is gone (deleted with its pipeline) is an orphan.
            let (status, end) = build.unwrap_or((BuildStatus::Aborted, 0));
            match verdict(status, end, now, running_here(id)) {
                Verdict::Keep => {}
                Verdict::Stop if p.contains_key(STOPPED) => {}
                Verdict::Stop => {
                    tracing::info!(worker = %w.name, %handle, build_id = id, "stopping processes of a finished build");
                    if w.garden.stop(&handle, true).await.is_ok() {
                        let _ = w.garden.set_property(&handle, STOPPED, "true").await;
                    }
                }
                Verdict::Destroy => {
                    tracing::info!(worker = %w.name, %handle, build_id = id, "destroying a finished build's container");
                    let _ = w.garden.destroy(&handle).await;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_builds_lose_their_processes_then_their_containers() {
        let grace = INTERCEPT_GRACE.as_secs() as i64;
        assert_eq!(verdict(BuildStatus::Started, 0, 10, false), Verdict::Keep);
        assert_eq!(verdict(BuildStatus::Pending, 0, 10, false), Verdict::Keep);
        assert_eq!(verdict(BuildStatus::Failed, 100, 110, true), Verdict::Keep);
        assert_eq!(
            verdict(BuildStatus::Succeeded, 100, 110, false),
            Verdict::Destroy
        );
        assert_eq!(
            verdict(BuildStatus::Aborted, 100, 110, false),
            Verdict::Destroy
        );
        assert_eq!(
            verdict(BuildStatus::Errored, 100, 110, false),
            Verdict::Stop
        );
        assert_eq!(verdict(BuildStatus::Failed, 100, 110, false), Verdict::Keep);
        assert_eq!(
            verdict(BuildStatus::Failed, 100, 100 + grace, false),
            Verdict::Destroy
        );
        assert_eq!(
            verdict(BuildStatus::Errored, 100, 100 + grace, false),
            Verdict::Destroy
        );
    }
}
