//! What a scheduling pass reads of the store: unfinished builds, live pipelines and their
//! marks, read again only after a commit, and partly when the wakes name what moved.

use super::{changes, configs, lock};
use crate::atc::engine::Hints;
use crate::db::{BuildRow, BuildStatus, PipelineRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pass woken for a few pipelines reads only theirs if everything was read within this;
/// changes no hint names (made through another node, or not hinted) wait at most this.
const FULL_READ: Duration = super::INTERVAL;

/// What a pass reads of the store, and the data version read just before it.
pub(super) struct Snapshot {
    pub(super) version: String,
    /// When the pipelines and all their marks were last read.
    pub(super) full_at: Instant,
    /// Whether everything committed up to `version` is in it: false after a partial read,
    /// which leaves unhinted changes for the next full read.
    pub(super) complete: bool,
    pub(super) pending: Vec<BuildRow>,
    pub(super) started: Vec<BuildRow>,
    pub(super) pipelines: Vec<PipelineRow>,
    pub(super) marks: HashMap<i64, Arc<changes::Marks>>,
    /// Until when (Unix seconds) a pass over this snapshot has nothing to do: set by a
    /// pass that scheduled all it had to and found no check due before then.
    pub(super) quiet_until: std::sync::atomic::AtomicI64,
}

/// The store as of now: `last` again when nothing was committed since it was read (an idle
/// node's passes read one number, not every pipeline's rows). Else the unfinished builds,
/// the pipelines and, when the last full read is under [`FULL_READ`] old and `hints` do not
/// ask for everything, the marks of the pipelines `hints` name (or new, or saved since);
/// else every pipeline's marks. The bool says whether anything was read.
pub(super) async fn read(
    store: &Arc<dyn crate::db::Store>,
    configs: &configs::Configs,
    last: &std::sync::Mutex<Option<Arc<Snapshot>>>,
    hints: Hints,
) -> anyhow::Result<(Arc<Snapshot>, bool)> {
    let version = store.data_version().await?;
    let prev = lock(last).clone();
    let recent = |s: &Snapshot| !hints.everything && s.full_at.elapsed() < FULL_READ;
    if let Some(s) = prev
        .as_ref()
        .filter(|s| s.version == version && (s.complete || recent(s)))
    {
        return Ok((s.clone(), false));
    }
    // The pipelines are always read (without their configs: a cheap statement), so a new,
    // paused or re-configured one is seen at once; only their marks may be partial.
    let (unfinished, mut pipelines) = tokio::try_join!(
        store.builds_with_status(&[BuildStatus::Pending, BuildStatus::Started]),
        store.live_pipelines()
    )?;
    let (pending, started) = unfinished
        .into_iter()
        .partition(|b| b.status == BuildStatus::Pending);
    configs.retain(&pipelines.iter().map(|p| p.id).collect());
    // A paused pipeline neither checks nor creates nor starts builds.
    pipelines.retain(|p| !p.paused);
    let partial = prev.filter(|s| recent(s));
    let (marks, full_at) = match &partial {
        Some(prev) => {
            let before: HashMap<i64, i64> = prev
                .pipelines
                .iter()
                .map(|p| (p.id, p.config_version))
                .collect();
            // Hinted, on a hinted scope, new to the snapshot, or saved with a new config.
            let stale = |p: &PipelineRow| {
                let Some(m) = prev.marks.get(&p.id) else {
                    return true;
                };
                hints.pipelines.contains(&p.id)
                    || before.get(&p.id) != Some(&p.config_version)
                    || m.resources
                        .iter()
                        .any(|r| r.scope_id.is_some_and(|s| hints.scopes.contains(&s)))
            };
            let ids: Vec<i64> = pipelines
                .iter()
                .filter(|p| stale(p))
                .map(|p| p.id)
                .collect();
            let mut marks = if ids.is_empty() {
                HashMap::new()
            } else {
                changes::by_pipeline(store.scheduling_marks(&ids).await?, &ids)
            };
            for p in pipelines.iter() {
                if let (false, Some(m)) = (marks.contains_key(&p.id), prev.marks.get(&p.id)) {
                    marks.insert(p.id, m.clone());
                }
            }
            (marks, prev.full_at)
        }
        None => {
            let ids: Vec<i64> = pipelines.iter().map(|p| p.id).collect();
            let marks = changes::by_pipeline(store.scheduling_marks(&ids).await?, &ids);
            (marks, Instant::now())
        }
    };
    let s = Arc::new(Snapshot {
        version,
        full_at,
        complete: partial.is_none(),
        pending,
        started,
        pipelines,
        marks,
        quiet_until: std::sync::atomic::AtomicI64::new(i64::MIN),
    });
    *lock(last) = Some(s.clone());
    Ok((s, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn embedded() -> (tempfile::TempDir, Arc<dyn crate::db::Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::db::open_embedded(&dir.path().join("c.db"))
            .await
            .unwrap();
        (dir, store)
    }

    /// Saves unpaused pipeline `name` of `team` with one job, `job`, at `version`.
    async fn save(
        store: &Arc<dyn crate::db::Store>,
        team: i64,
        name: &str,
        job: &str,
        version: i64,
    ) -> crate::db::SavedPipeline {
        let job = crate::db::JobConfigRow {
            name: job.into(),
            old_name: None,
            config: serde_json::json!({"name": job, "plan": []}),
        };
        store
            .save_pipeline(&crate::db::SavePipeline {
                team_id: team,
                name: name.into(),
                instance_vars: None,
                config: serde_json::json!({"jobs": [job.config]}),
                expected_version: version,
                jobs: vec![job],
                resources: vec![],
                job_groups: vec![],
                paused_on_create: false,
                parent_job_id: 0,
                parent_build_id: 0,
                at: 1,
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_pass_rereads_the_store_only_after_a_commit() {
        let (_dir, store) = embedded().await;
        let (configs, last) = (configs::Configs::default(), std::sync::Mutex::new(None));
        let (first, read) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert!(read, "nothing to reuse yet");
        let (again, read) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert!(
            !read && Arc::ptr_eq(&first, &again),
            "nothing committed: reused"
        );
        // The scheduler's own lease renewal is not a change to what it reads.
        assert!(store
            .try_acquire_lease(
                super::super::LEASE,
                "me",
                super::super::LEASE_TTL,
                crate::clock::now()
            )
            .await
            .unwrap());
        let (_, read) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert!(!read, "a lease renewal made the pass read again");
        let wall = crate::db::WallRow {
            message: "hi".into(),
            expires_at: None,
        };
        store.set_wall(&wall).await.unwrap();
        let (_, read) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert!(read, "a commit went unnoticed");
    }

    #[tokio::test]
    async fn a_hinted_pass_rereads_only_the_pipelines_it_names() {
        let (_dir, store) = embedded().await;
        let (team, _) = store
            .upsert_team("main", &Default::default(), true)
            .await
            .unwrap();
        let mut jobs = HashMap::new();
        for name in ["a", "b"] {
            let saved = save(&store, team.id, name, "j", 0).await;
            let job = store.job(saved.pipeline.id, "j").await.unwrap().unwrap();
            jobs.insert(saved.pipeline.id, job.id);
        }
        let (configs, last) = (configs::Configs::default(), std::sync::Mutex::new(None));
        let (first, _) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert_eq!(first.marks.len(), 2);
        let (&a, &b) = (jobs.keys().min().unwrap(), jobs.keys().max().unwrap());
        let pause = |pipeline: i64| {
            let (store, job) = (store.clone(), jobs[&pipeline]);
            async move { store.set_job_paused(job, true, "me", 2).await.unwrap() }
        };

        pause(a).await;
        let hints = Hints {
            pipelines: [a].into(),
            ..Default::default()
        };
        let (second, read) = super::read(&store, &configs, &last, hints).await.unwrap();
        assert!(read);
        assert!(
            second.marks[&a].jobs[0].paused,
            "the hinted pipeline is read"
        );
        assert!(
            Arc::ptr_eq(&first.marks[&b], &second.marks[&b]),
            "the other one is not"
        );
        assert_eq!(second.full_at, first.full_at);

        // A pipeline saved again is read at once, hinted or not, with its new jobs.
        let row = |id: i64, snap: &Snapshot| {
            let p = snap.pipelines.iter().find(|p| p.id == id).cloned();
            p.expect("listed")
        };
        let resaved = save(&store, team.id, "a", "k", row(a, &second).config_version).await;
        let (read_all, _) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert_eq!(read_all.full_at, first.full_at, "still a partial read");
        assert_eq!(
            row(a, &read_all).config_version,
            resaved.pipeline.config_version
        );
        let k = store.job(a, "k").await.unwrap().unwrap();
        assert_eq!(read_all.marks[&a].jobs[0].id, k.id, "its new job's marks");

        // Unhinted: seen at the next full read, which a wake for everything forces.
        pause(b).await;
        let (third, _) = super::read(&store, &configs, &last, Hints::default())
            .await
            .unwrap();
        assert!(!third.marks[&b].jobs[0].paused, "read without a hint");
        let everything = Hints {
            everything: true,
            ..Default::default()
        };
        let (fourth, _) = super::read(&store, &configs, &last, everything)
            .await
            .unwrap();
        assert!(fourth.marks[&b].jobs[0].paused);
        assert!(fourth.full_at > first.full_at);
    }
}
