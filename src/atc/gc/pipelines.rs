//! Automatic archiving of pipelines set by `set_pipeline` steps: a child pipeline is
//! archived once its parent stops setting it — the setting job was removed or renamed,
//! its pipeline destroyed or archived, or a later successful build of that job no longer
//! set it. Runs on every GC tick and right after the events that cause it.

use crate::clock::now;
use crate::db::{BuildRow, BuildStatus, PipelineRow, Store};
use std::collections::HashSet;

/// Who archives children, as upstream records it in `paused_by`.
const ARCHIVER: &str = "automatic-pipeline-archiver";

/// Archives children whose setting job is no longer an active job of a live pipeline.
pub async fn archive_orphaned_children(store: &dyn Store) -> crate::db::Result<()> {
    let pipelines = store.live_pipelines().await?;
    let children: Vec<&PipelineRow> = pipelines.iter().filter(|p| p.parent_job_id != 0).collect();
    if children.is_empty() {
        return Ok(());
    }
    // Every live pipeline's jobs in one statement (not one per pipeline).
    let live: Vec<i64> = pipelines.iter().map(|p| p.id).collect();
    let active: HashSet<i64> = store
        .scheduling_marks(&live)
        .await?
        .jobs
        .into_iter()
        .map(|j| j.id)
        .collect();
    for child in children {
        if !active.contains(&child.parent_job_id) {
            archive(store, child).await;
        }
    }
    Ok(())
}

/// After a job's build succeeded: children its earlier builds set but this one did not.
pub async fn archive_children_not_set_by(
    store: &dyn Store,
    build: &BuildRow,
    status: BuildStatus,
) -> crate::db::Result<()> {
    let Some(job_id) = build.job_id.filter(|_| status == BuildStatus::Succeeded) else {
        return Ok(());
    };
    // On every succeeded build's way to its end: only the job's children are read.
    for child in store.pipelines_set_by(job_id).await? {
        if child.parent_build_id < build.id {
            archive(store, &child).await;
        }
    }
    Ok(())
}

async fn archive(store: &dyn Store, p: &PipelineRow) {
    match store.archive_pipeline(p.id, ARCHIVER, now()).await {
        Ok(()) => {
            tracing::info!(pipeline = %p.name, team = %p.team_name, "archived a pipeline its parent no longer sets")
        }
        Err(e) => tracing::warn!(pipeline = %p.name, error = %e, "archiving a child pipeline"),
    }
}
