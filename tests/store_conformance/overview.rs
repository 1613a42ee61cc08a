//! The dashboard's reads: the overview of many pipelines, the light listings, and the
//! versions cached listings are keyed on.

use super::*;

pub async fn the_overview_answers_what_per_pipeline_reads_would(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let a = save(
        store,
        &config_save(
            team.id,
            "a",
            vec![job("a1"), job("a2")],
            vec![resource("ra")],
        ),
    )
    .await;
    let b = save(store, &config_save(team.id, "b", vec![job("b1")], vec![])).await;
    let c = save(
        store,
        &config_save(team.id, "c", vec![job("c1")], vec![resource("rc")]),
    )
    .await;
    let a1 = store.job(a.pipeline.id, "a1").await.unwrap().expect("a1");
    let build = job_build(store, &team, &a1).await;
    store
        .start_build(build.id, &starting(1_700_000_200))
        .await
        .unwrap();
    store
        .finish_build(build.id, BuildStatus::Failed, 1_700_000_300)
        .await
        .unwrap();
    // A job dropped from its config is not part of the overview.
    save(store, &{
        let mut s = config_save(team.id, "b", vec![], vec![]);
        s.expected_version = b.pipeline.config_version;
        s
    })
    .await;

    let o = store
        .pipelines_overview(&[a.pipeline.id, b.pipeline.id])
        .await
        .unwrap();
    let mut jobs = store.jobs(a.pipeline.id).await.unwrap();
    jobs.extend(store.jobs(b.pipeline.id).await.unwrap());
    // The overview's jobs come without their configs.
    let configless: Vec<JobRow> = jobs
        .iter()
        .map(|j| JobRow {
            config: serde_json::Value::Null,
            ..j.clone()
        })
        .collect();
    assert_eq!(o.jobs, configless);
    assert!(jobs.iter().all(|j| j.name != "b1"));
    assert_eq!(o.resources, store.resources(a.pipeline.id).await.unwrap());
    let a1 = store.job(a.pipeline.id, "a1").await.unwrap().unwrap();
    let finished = store.build(build.id).await.unwrap().unwrap();
    assert_eq!(a1.finished_build_id, Some(build.id));
    // And its builds without their plans.
    let planless = BuildRow {
        plan: None,
        ..finished
    };
    assert_eq!(o.builds, vec![planless]);
    assert!(o.jobs.iter().all(|j| j.pipeline_id != c.pipeline.id));
    assert_eq!(
        store.pipelines_overview(&[]).await.unwrap(),
        Overview::default()
    );
}

pub async fn the_data_version_moves_with_every_commit_of_any_node(h: &Harness) {
    let store = &h.store;
    let other = h.reopen().await; // another web node on the same database
    let v0 = store.data_version().await.unwrap();
    let team = team(store, "main").await;
    let v1 = store.data_version().await.unwrap();
    assert_ne!(v0, v1, "a write moves the version");
    let saved = save(&other, &config_save(team.id, "p", vec![job("j")], vec![])).await;
    let v2 = store.data_version().await.unwrap();
    assert_ne!(v1, v2, "another node's write moves this node's version");
    store
        .set_pipeline_paused(saved.pipeline.id, false, "", 0)
        .await
        .unwrap();
    let v3 = store.data_version().await.unwrap();
    assert_ne!(v2, v3, "an update moves the version");
    // Reads leave it (on PostgreSQL other databases of the cluster may move it: ids are
    // the cluster's, so only the embedded store can show it still).
    if matches!(h.location, Location::Embedded(_)) {
        store.pipelines(None).await.unwrap();
        other.jobs(saved.pipeline.id).await.unwrap();
        assert_eq!(
            v3,
            store.data_version().await.unwrap(),
            "reads move nothing"
        );
    }
}

pub async fn a_listings_tables_version_moves_with_those_tables(h: &Harness) {
    const JOBS: &[&str] = &["teams", "pipelines", "jobs", "builds"];
    let store = &h.store;
    let other = h.reopen().await; // another web node on the same database
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    let v0 = store.tables_version(JOBS).await.unwrap();
    let b = job_build(&other, &team, &job).await;
    let v1 = store.tables_version(JOBS).await.unwrap();
    assert_ne!(v0, v1, "a new build (another node's) moves it");
    store
        .start_build(b.id, &starting(1_700_000_200))
        .await
        .unwrap();
    let v2 = store.tables_version(JOBS).await.unwrap();
    assert_ne!(v1, v2, "a build's start moves it");
    store
        .set_job_paused(job.id, true, "admin", 5)
        .await
        .unwrap();
    let v3 = store.tables_version(JOBS).await.unwrap();
    assert_ne!(v2, v3, "a job's pause moves it");
    // What no jobs listing shows: a resource's check, a heartbeat, a build's owner.
    store
        .record_resource_check(r.id, 42, None, true)
        .await
        .unwrap();
    (store.register_worker(&workers::payload("w", ""), None, 100))
        .await
        .unwrap();
    // (Adopted once its starter's hold lapsed.)
    let lapsed = starting(1_700_000_200).expires + 1;
    assert!(store
        .claim_build(b.id, "node", lapsed + 30, lapsed)
        .await
        .unwrap());
    assert_eq!(
        store.renew_builds("node", lapsed + 40).await.unwrap(),
        vec![b.id]
    );
    let v4 = store.tables_version(JOBS).await.unwrap();
    if matches!(h.location, Location::Embedded(_)) {
        assert_eq!(v3, v4, "changes to other tables leave it");
        assert_ne!(
            v4,
            store.tables_version(&["resources"]).await.unwrap(),
            "a check moves the resources' version"
        );
        assert!(
            store.tables_version(&["jobs", "nowhere"]).await.is_err(),
            "a table without a counter is refused"
        );
    }
    store
        .finish_build(b.id, BuildStatus::Succeeded, 1_700_000_300)
        .await
        .unwrap();
    assert_ne!(
        v4,
        store.tables_version(JOBS).await.unwrap(),
        "a build's end moves it"
    );
}

pub async fn the_light_listings_leave_out_archived_pipelines_and_config_parts(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let parent = save(
        store,
        &config_save(team.id, "parent", vec![job("j")], vec![]),
    )
    .await;
    let j = store.job(parent.pipeline.id, "j").await.unwrap().unwrap();
    let child = |name: &str, build: i64| {
        let mut s = config_save(team.id, name, vec![job("c")], vec![]);
        (s.paused_on_create, s.parent_job_id, s.parent_build_id) = (false, j.id, build);
        s
    };
    let (older, newer) = (
        save(store, &child("older", 1)).await,
        save(store, &child("newer", 2)).await,
    );
    let gone = save(store, &child("gone", 1)).await;
    store
        .archive_pipeline(gone.pipeline.id, "someone", 5)
        .await
        .unwrap();

    let live = store.live_pipelines().await.unwrap();
    let full: Vec<PipelineRow> = store
        .pipelines(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| !p.archived)
        .collect();
    assert_eq!(
        names(&live),
        names(&full),
        "the same pipelines in the same order"
    );
    for (light, full) in live.iter().zip(&full) {
        assert_eq!(light.groups, Value::Null, "no groups extracted");
        let unextracted = PipelineRow {
            groups: Value::Null,
            display: Value::Null,
            user_data: Value::Null,
            ..full.clone()
        };
        assert_eq!(light, &unextracted);
    }
    assert!(full.iter().any(|p| p.groups != Value::Null));

    let set: Vec<i64> = store
        .pipelines_set_by(j.id)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        set,
        [older.pipeline.id, newer.pipeline.id],
        "not the archived one"
    );
    assert!(store
        .pipelines_set_by(j.id + 1000)
        .await
        .unwrap()
        .is_empty());
}
