//! Resource config scopes and versions, build inputs/outputs, plans and the scheduling
//! snapshot.

use super::*;

fn v(s: &str) -> NewVersion {
    NewVersion {
        version: json!({ "version": s }),
        metadata: json!([]),
    }
}

fn names_of(rows: &[VersionRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            r.version["version"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

pub async fn scopes_are_shared_by_key_unless_owned(h: &Harness) {
    let store = &h.store;
    let (_, pipeline, _) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    let shared = store.resource_scope("git", "k1", None).await.unwrap();
    assert_eq!(
        store.resource_scope("git", "k1", None).await.unwrap(),
        shared
    );
    let owned = store.resource_scope("git", "k1", Some(r.id)).await.unwrap();
    assert_ne!(owned, shared);
    assert_eq!(
        store.resource_scope("git", "k1", Some(r.id)).await.unwrap(),
        owned
    );
    assert_ne!(
        store.resource_scope("git", "k2", None).await.unwrap(),
        shared
    );
    assert_eq!(r.scope_id, None);
    store.set_resource_scope(r.id, owned).await.unwrap();
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!(r.scope_id, Some(owned));
}

pub async fn versions_are_saved_in_check_order_and_deduplicated(h: &Harness) {
    let store = &h.store;
    let scope = store.resource_scope("mock", "k", None).await.unwrap();
    assert_eq!(
        store.save_versions(scope, &[v("a"), v("b")]).await.unwrap(),
        2
    );
    // Only known versions: nothing changes.
    assert_eq!(store.save_versions(scope, &[v("a")]).await.unwrap(), 0);
    let all = store.versions(scope, &Page::default()).await.unwrap();
    assert_eq!(names_of(&all), ["b", "a"]);
    // A new one with a known one before it: the list's order becomes the newest history.
    assert_eq!(
        store.save_versions(scope, &[v("a"), v("c")]).await.unwrap(),
        1
    );
    let all = store.versions(scope, &Page::default()).await.unwrap();
    assert_eq!(names_of(&all), ["c", "a", "b"]);
    let page = Page {
        limit: 2,
        ..Default::default()
    };
    assert_eq!(
        names_of(&store.versions(scope, &page).await.unwrap()),
        ["c", "a"]
    );
    let older = Page {
        to: Some(all[1].id),
        limit: 5,
        ..Default::default()
    };
    assert_eq!(
        names_of(&store.versions(scope, &older).await.unwrap()),
        ["a", "b"]
    );
    let newer = Page {
        from: Some(all[2].id),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(
        names_of(&store.versions(scope, &newer).await.unwrap()),
        ["b"]
    );
    // Metadata given later is kept.
    let with_meta = NewVersion {
        version: json!({"version": "b"}),
        metadata: json!([{"name": "k", "value": "v"}]),
    };
    store.save_versions(scope, &[with_meta]).await.unwrap();
    let b = store
        .find_version(scope, &json!({"version": "b"}))
        .await
        .unwrap()
        .expect("b");
    assert_eq!(b.metadata, json!([{"name": "k", "value": "v"}]));
    assert_eq!(store.version(b.id).await.unwrap(), Some(b.clone()));
    assert!(store
        .find_version(scope, &json!({"version": "zz"}))
        .await
        .unwrap()
        .is_none());
    assert!(store.set_version_enabled(b.id, false).await.unwrap());
    assert!(!store.version(b.id).await.unwrap().unwrap().enabled);
    assert!(!store.set_version_enabled(b.id + 1000, false).await.unwrap());
}

pub async fn pins_and_check_results_are_recorded_on_the_resource(h: &Harness) {
    let store = &h.store;
    let (_, pipeline, _) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    store
        .pin_resource(r.id, Some(&json!({"ref": "x"})), Some("because"))
        .await
        .unwrap();
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!(got.pinned_version, Some(json!({"ref": "x"})));
    assert_eq!(got.pin_comment, "because");
    store
        .pin_resource(r.id, Some(&json!({"ref": "y"})), None)
        .await
        .unwrap();
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!(
        got.pin_comment, "because",
        "the comment stays when not given"
    );
    store.pin_resource(r.id, None, None).await.unwrap();
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!((got.pinned_version, got.pin_comment.as_str()), (None, ""));

    store
        .record_resource_check(r.id, 42, None, false)
        .await
        .unwrap();
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!(
        (got.last_checked, got.check_failed, got.check_build_id),
        (42, true, None)
    );
}

pub async fn a_changed_source_forgets_the_resources_scope_and_check(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, _) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    let scope = store.resource_scope("git", "k", Some(r.id)).await.unwrap();
    store.set_resource_scope(r.id, scope).await.unwrap();
    store
        .record_resource_check(r.id, 42, None, true)
        .await
        .unwrap();
    let resave = |config: Value, version: i64| {
        let mut save = config_save(team.id, "p", vec![job("j")], vec![]);
        save.resources = vec![ResourceConfigRow {
            config,
            ..resource("r")
        }];
        save.expected_version = version;
        save
    };
    // Only the check interval changed: the versions and the last check still hold.
    let mut with_interval = resource("r").config;
    with_interval["check_every"] = json!("10s");
    let saved = save(store, &resave(with_interval, pipeline.config_version)).await;
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!((got.scope_id, got.last_checked), (Some(scope), 42));
    // A new source has other versions: none until it is checked, and it is due now.
    let moved = json!({"name": "r", "type": "git", "source": {"uri": "elsewhere"}});
    save(store, &resave(moved, saved.pipeline.config_version)).await;
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!((got.scope_id, got.last_checked), (None, 0));
}

pub async fn build_inputs_outputs_and_plans_feed_the_scheduling_snapshot(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    let scope = store.resource_scope("git", "k", Some(r.id)).await.unwrap();
    store.set_resource_scope(r.id, scope).await.unwrap();
    store.save_versions(scope, &[v("a"), v("b")]).await.unwrap();

    let b1 = job_build(store, &team, &job).await;
    let input = BuildInputRow {
        name: "r".into(),
        resource_id: r.id,
        version: json!({"version": "a"}),
        first_occurrence: true,
    };
    store
        .save_build_inputs(b1.id, std::slice::from_ref(&input))
        .await
        .unwrap();
    // Replaced, not appended: names left out go, a name given again takes its new row.
    let other = BuildInputRow {
        name: "s".into(),
        version: json!({"version": "s"}),
        ..input.clone()
    };
    let changed = BuildInputRow {
        version: json!({"version": "b"}),
        first_occurrence: false,
        ..input.clone()
    };
    store
        .save_build_inputs(b1.id, &[changed.clone(), other.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.build_inputs(b1.id).await.unwrap(),
        vec![changed, other]
    );
    store
        .save_build_inputs(b1.id, std::slice::from_ref(&input))
        .await
        .unwrap();
    assert_eq!(
        store.build_inputs(b1.id).await.unwrap(),
        vec![input.clone()]
    );
    // A name given twice is refused, and changes nothing.
    assert!(store
        .save_build_inputs(b1.id, &[input.clone(), input.clone()])
        .await
        .is_err());
    assert_eq!(store.build_inputs(b1.id).await.unwrap(), vec![input]);
    let output = BuildOutputRow {
        name: "r".into(),
        resource_id: r.id,
        version: json!({"version": "put"}),
        metadata: json!([{"name": "m", "value": "1"}]),
    };
    store.save_build_output(b1.id, &output).await.unwrap();
    assert_eq!(store.build_outputs(b1.id).await.unwrap(), vec![output]);
    let all = store.versions(scope, &Page::default()).await.unwrap();
    assert_eq!(
        names_of(&all),
        ["put", "b", "a"],
        "a put's version becomes the newest"
    );

    let b2 = job_build(store, &team, &job).await;
    let pending = store
        .builds_with_status(&[BuildStatus::Pending])
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![b1.id, b2.id]
    );
    // A build's plan comes with its start.
    assert!(store.start_build(b1.id, &starting(5)).await.unwrap());
    assert_eq!(
        store.build(b1.id).await.unwrap().unwrap().plan,
        Some(starting(5).plan)
    );
    let started = store
        .builds_with_status(&[BuildStatus::Started])
        .await
        .unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].plan, None, "listed without its plan");
    store
        .finish_build(b1.id, BuildStatus::Succeeded, 6)
        .await
        .unwrap();
    let pending = store
        .builds_with_status(&[BuildStatus::Pending])
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![b2.id]
    );

    let ids: Vec<i64> = all.iter().rev().map(|v| v.id).collect();
    let snap = store.scheduling_snapshot(pipeline.id).await.unwrap();
    assert_eq!(
        snap.versions,
        ids.iter().map(|&v| (r.id, v)).collect::<Vec<_>>()
    );
    assert_eq!(snap.successful_builds.len(), 1);
    let s = &snap.successful_builds[0];
    assert_eq!((s.job_id, s.build_id), (job.id, b1.id));
    assert_eq!(s.inputs, vec![(r.id, ids[0])]);
    assert_eq!(s.outputs, vec![(r.id, ids[2])]);
    assert_eq!(snap.used_versions, vec![(job.id, r.id, ids[0])]);
    // Disabled versions are not offered to the scheduler.
    store.set_version_enabled(ids[1], false).await.unwrap();
    let snap = store.scheduling_snapshot(pipeline.id).await.unwrap();
    assert_eq!(snap.versions, vec![(r.id, ids[0]), (r.id, ids[2])]);
}

pub async fn check_builds_name_their_resource(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, _) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    let b = store
        .create_build(&NewBuild {
            team_id: team.id,
            job_id: None,
            pipeline_id: Some(pipeline.id),
            created_by: String::new(),
            plan: None,
            at: 1,
            resource_id: Some(r.id),
        })
        .await
        .unwrap();
    assert_eq!(b.resource_name, "r");
    assert!(
        b.name.parse::<i64>().is_ok(),
        "named from the one-off counter"
    );
    store
        .record_resource_check(r.id, 2, Some(b.id), true)
        .await
        .unwrap();
    let got = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    assert_eq!((got.check_build_id, got.check_failed), (Some(b.id), false));
}

/// A resource's `versions_changed` mark moves with its scope's versions (what the scheduler
/// compares), and only then; the marks follow jobs' pauses and builds too.
pub async fn scheduling_marks_move_with_versions_pauses_and_builds(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let marks = || async { store.scheduling_marks(&[pipeline.id]).await.unwrap() };
    let first = marks().await;
    assert_eq!(first.jobs.len(), 1);
    assert_eq!(first.resources.len(), 1);
    let r = &first.resources[0];
    assert_eq!(
        (r.name.as_str(), r.versions_changed, r.scope_id),
        ("r", 0, None)
    );
    let scope = store.resource_scope("mock", "shared", None).await.unwrap();
    store.set_resource_scope(r.id, scope).await.unwrap();
    let count = || async { marks().await.resources[0].versions_changed };
    let start = count().await;
    store.save_versions(scope, &[v("a"), v("b")]).await.unwrap();
    let saved = count().await;
    assert!(saved > start, "new versions");
    store.save_versions(scope, &[v("b")]).await.unwrap();
    assert_eq!(count().await, saved, "nothing new, nothing moves");
    let a = store
        .find_version(scope, &json!({"version": "a"}))
        .await
        .unwrap()
        .unwrap();
    assert!(store.set_version_enabled(a.id, false).await.unwrap());
    let disabled = count().await;
    assert!(disabled > saved, "a version disabled");
    assert!(!store.set_version_enabled(i64::MAX, false).await.unwrap());
    assert_eq!(
        count().await,
        disabled,
        "an unknown version changes nothing"
    );
    store
        .pin_resource(r.id, Some(&json!({"version": "a"})), None)
        .await
        .unwrap();
    assert_eq!(
        marks().await.resources[0]
            .pinned_version
            .as_deref()
            .map(|p| serde_json::from_str::<Value>(p).unwrap()),
        Some(json!({"version": "a"}))
    );

    store
        .set_job_paused(job.id, true, "admin", 1)
        .await
        .unwrap();
    assert!(marks().await.jobs[0].paused);
    let build = store
        .create_build(&NewBuild {
            team_id: team.id,
            job_id: Some(job.id),
            pipeline_id: Some(pipeline.id),
            at: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(marks().await.jobs[0].next_build_id, Some(build.id));
    assert!(store.scheduling_marks(&[]).await.unwrap().jobs.is_empty());
}

/// Checks of one resource that find its scope missing at the same time (a periodic and a
/// manual one) get the same scope: versions one saves are the other's.
pub async fn concurrent_scope_lookups_create_one_scope(h: &Harness) {
    let (_, pipeline, _) = pipeline_with_job(&h.store).await;
    let r = h.store.resource(pipeline.id, "r").await.unwrap().unwrap();
    for round in 0..20 {
        let key = format!("race-{round}");
        let lookups: Vec<_> = (0..16)
            .map(|i| {
                let (store, key) = (h.store.clone(), key.clone());
                let owner = (i % 2 == 0).then_some(r.id);
                tokio::spawn(async move {
                    (
                        owner,
                        store.resource_scope("mock", &key, owner).await.unwrap(),
                    )
                })
            })
            .collect();
        let mut owned = BTreeSet::new();
        let mut shared = BTreeSet::new();
        for l in lookups {
            let (owner, id) = l.await.unwrap();
            if owner.is_some() {
                owned.insert(id)
            } else {
                shared.insert(id)
            };
        }
        assert_eq!(
            (owned.len(), shared.len()),
            (1, 1),
            "round {round}: {owned:?} {shared:?}"
        );
    }
}

pub async fn each_jobs_latest_build_inputs_are_read_for_the_whole_pipeline(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let saved = save(
        store,
        &config_save(
            team.id,
            "p",
            vec![job("j"), job("k"), job("never")],
            vec![resource("r")],
        ),
    )
    .await;
    let p = saved.pipeline.id;
    let (j, k) = (
        store.job(p, "j").await.unwrap().unwrap(),
        store.job(p, "k").await.unwrap().unwrap(),
    );
    let r = store.resource(p, "r").await.unwrap().unwrap();
    let input = |name: &str, v: &str| BuildInputRow {
        name: name.into(),
        resource_id: r.id,
        version: json!({"version": v}),
        first_occurrence: false,
    };
    let with_inputs = |b: &BuildRow, inputs: Vec<BuildInputRow>| {
        let id = b.id;
        async move { store.save_build_inputs(id, &inputs).await.unwrap() }
    };
    let j1 = job_build(store, &team, &j).await;
    with_inputs(&j1, vec![input("r", "a")]).await;
    let j2 = job_build(store, &team, &j).await;
    with_inputs(&j2, vec![input("r", "b"), input("other", "x")]).await;
    // A rerun of the older build is listed under it: j2 stays the latest.
    store
        .finish_build(j1.id, BuildStatus::Failed, 5)
        .await
        .unwrap();
    let rerun = store.rerun_build(j1.id, "", 6).await.unwrap();
    with_inputs(&rerun, vec![input("r", "a")]).await;
    // k's latest build has no inputs; `never` has no build.
    let k1 = job_build(store, &team, &k).await;
    with_inputs(&k1, vec![input("r", "c")]).await;
    job_build(store, &team, &k).await;

    // The same answer as reading each job's latest build, then its inputs.
    let mut expected = Vec::new();
    for id in [j.id, k.id, store.job(p, "never").await.unwrap().unwrap().id] {
        let latest = store
            .job_builds(
                id,
                &Page {
                    limit: 1,
                    ..Page::default()
                },
            )
            .await
            .unwrap();
        if let Some(b) = latest.first() {
            let inputs = store.build_inputs(b.id).await.unwrap();
            expected.extend(inputs.into_iter().map(|i| (id, i)));
        }
    }
    let got = store.latest_build_inputs(p).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        got.iter()
            .map(|(id, i)| (*id, i.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(j.id, "other"), (j.id, "r")]
    );

    // A rerun of the latest build is the latest; another pipeline's jobs are not read.
    store
        .finish_build(j2.id, BuildStatus::Failed, 7)
        .await
        .unwrap();
    let again = store.rerun_build(j2.id, "", 8).await.unwrap();
    with_inputs(&again, vec![input("r", "d")]).await;
    assert_eq!(
        store.latest_build_inputs(p).await.unwrap(),
        vec![(j.id, input("r", "d"))]
    );
    assert_eq!(store.latest_build_inputs(p + 1000).await.unwrap(), vec![]);
}
