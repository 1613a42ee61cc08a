//! Builds, their pages and their events.

use super::*;

pub async fn job_builds_are_numbered_per_job_and_one_off_builds_globally(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job_a) = pipeline_with_job(store).await;
    let mut second = config_save(team.id, "p", vec![job("j"), job("k")], vec![]);
    second.expected_version = pipeline.config_version;
    save(store, &second).await;
    let job_k = store.job(pipeline.id, "k").await.unwrap().unwrap();

    let one = job_build(store, &team, &job_a).await;
    let two = job_build(store, &team, &job_a).await;
    let other = job_build(store, &team, &job_k).await;
    assert_eq!(
        (one.name.as_str(), two.name.as_str(), other.name.as_str()),
        ("1", "2", "1")
    );
    assert_eq!(one.status, BuildStatus::Pending);
    assert_eq!(one.job_name, "j");
    assert_eq!(one.pipeline_name, "p");
    assert_eq!(one.pipeline_id, Some(pipeline.id));
    assert_eq!(one.team_name, "main");
    assert_eq!(one.created_by, "admin");
    assert_eq!(one.create_time, 1_700_000_100);
    assert_eq!(
        store
            .job(pipeline.id, "j")
            .await
            .unwrap()
            .unwrap()
            .next_build_id,
        Some(one.id)
    );

    let plan = json!({"id": "1", "task": {"name": "one-off"}});
    let one_off = |pipeline_id| NewBuild {
        team_id: team.id,
        job_id: None,
        pipeline_id,
        created_by: String::new(),
        plan: Some(plan.clone()),
        at: 1_700_000_200,
        resource_id: None,
    };
    let first = store.create_build(&one_off(None)).await.unwrap();
    let next = store
        .create_build(&one_off(Some(pipeline.id)))
        .await
        .unwrap();
    let first_n: i64 = first.name.parse().expect("one-off names are numbers");
    assert_eq!(
        next.name,
        (first_n + 1).to_string(),
        "one-off names come from one global counter"
    );
    assert_eq!(first.plan, Some(plan));
    assert_eq!((first.job_id, first.job_name.as_str()), (None, ""));
    assert_eq!(next.pipeline_name, "p");
    assert_eq!(store.build(first.id).await.unwrap(), Some(first));
    assert!(store.build(999_999).await.unwrap().is_none());

    let missing_job = NewBuild {
        team_id: team.id,
        job_id: Some(999_999),
        ..NewBuild::default()
    };
    assert!(matches!(
        store.create_build(&missing_job).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn builds_are_paged_newest_first_with_inclusive_bounds(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(job_build(store, &team, &job).await.id);
    }
    let newest_first: Vec<i64> = all.iter().rev().copied().collect();

    let first = store
        .builds_page(BuildsOf::Job(job.id), &page(None, None, 2))
        .await
        .unwrap();
    assert_eq!(ids(&first.builds), newest_first[..2]);
    assert_eq!(first.newer, None);
    assert_eq!(
        first.older,
        Some(Page {
            from: None,
            to: Some(newest_first[2]),
            limit: 2,
            timestamps: false
        })
    );

    // `to` is inclusive: following the "next" link gives the next two.
    let second = store
        .builds_page(BuildsOf::Job(job.id), first.older.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(ids(&second.builds), newest_first[2..4]);
    assert_eq!(
        second.newer.as_ref().and_then(|p| p.from),
        Some(newest_first[1])
    );
    assert_eq!(
        second.older.as_ref().and_then(|p| p.to),
        Some(newest_first[4])
    );

    // Only `from` (inclusive): the builds just above it, still newest first.
    let from = store
        .builds_page(BuildsOf::Job(job.id), &page(Some(all[1]), None, 2))
        .await
        .unwrap();
    assert_eq!(ids(&from.builds), vec![all[2], all[1]]);
    assert_eq!(from.newer.as_ref().and_then(|p| p.from), Some(all[3]));
    assert_eq!(from.older.as_ref().and_then(|p| p.to), Some(all[0]));

    let between = store
        .builds_page(BuildsOf::Job(job.id), &page(Some(all[1]), Some(all[3]), 10))
        .await
        .unwrap();
    assert_eq!(ids(&between.builds), vec![all[3], all[2], all[1]]);

    let last = store
        .builds_page(BuildsOf::Job(job.id), &page(None, Some(all[0]), 2))
        .await
        .unwrap();
    assert_eq!(ids(&last.builds), vec![all[0]]);
    assert_eq!(last.older, None);

    // A zero limit means the default, and job_builds is the page without its links.
    assert_eq!(
        ids(&store.job_builds(job.id, &Page::default()).await.unwrap()),
        newest_first
    );
    for p in [
        page(None, None, 1),
        page(Some(all[1]), Some(all[3]), 10),
        page(None, Some(all[0]), 2),
        page(Some(all[2]), None, 1),
    ] {
        let paged = store.builds_page(BuildsOf::Job(job.id), &p).await.unwrap();
        assert_eq!(
            ids(&store.job_builds(job.id, &p).await.unwrap()),
            ids(&paged.builds)
        );
    }

    // Other scopes see the same builds; a one-off build only shows in team and global lists.
    let one_off = store
        .create_build(&NewBuild {
            team_id: team.id,
            created_by: "x".into(),
            at: 1,
            resource_id: None,
            ..NewBuild::default()
        })
        .await
        .unwrap();
    let pipeline_page = store
        .builds_page(BuildsOf::Pipeline(job.pipeline_id), &page(None, None, 0))
        .await
        .unwrap();
    assert_eq!(ids(&pipeline_page.builds), newest_first);
    let team_page = store
        .builds_page(BuildsOf::Team(team.id), &page(None, None, 0))
        .await
        .unwrap();
    assert_eq!(team_page.builds[0].id, one_off.id);
    assert_eq!(team_page.builds.len(), 6);
    assert_eq!(
        store
            .builds_page(BuildsOf::All, &page(None, None, 1))
            .await
            .unwrap()
            .builds[0]
            .id,
        one_off.id
    );
    assert!(store
        .builds_page(BuildsOf::Job(999_999), &page(None, None, 0))
        .await
        .unwrap()
        .builds
        .is_empty());
}

pub async fn builds_are_paged_by_start_time_with_timestamps(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let mut all = Vec::new();
    for start in [100, 200, 300, 400] {
        let build = job_build(store, &team, &job).await;
        assert!(store.start_build(build.id, &starting(start)).await.unwrap());
        all.push(build.id);
    }
    let by_time = |from, to| Page {
        from,
        to,
        limit: 10,
        timestamps: true,
    };
    let since = store
        .builds_page(BuildsOf::Job(job.id), &by_time(Some(150), None))
        .await
        .unwrap();
    assert_eq!(ids(&since.builds), vec![all[3], all[2], all[1]]);
    assert_eq!(
        (since.older, since.newer),
        (None, None),
        "no links with timestamps"
    );
    let window = store
        .builds_page(BuildsOf::Job(job.id), &by_time(Some(150), Some(300)))
        .await
        .unwrap();
    assert_eq!(ids(&window.builds), vec![all[2], all[1]]);
    let until = store
        .builds_page(BuildsOf::Job(job.id), &by_time(None, Some(250)))
        .await
        .unwrap();
    assert_eq!(ids(&until.builds), vec![all[1], all[0]]);
    let none = store
        .builds_page(BuildsOf::Job(job.id), &by_time(Some(500), None))
        .await
        .unwrap();
    assert!(none.builds.is_empty());
}

pub async fn an_inverted_page_range_is_invalid(h: &Harness) {
    let store = &h.store;
    let (_team, _pipeline, job) = pipeline_with_job(store).await;
    let err = store
        .builds_page(BuildsOf::Job(job.id), &page(Some(5), Some(2), 10))
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
}

pub async fn starting_and_finishing_a_build_updates_its_job(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let one = job_build(store, &team, &job).await;
    let two = job_build(store, &team, &job).await;

    assert!(store.start_build(one.id, &starting(1000)).await.unwrap());
    let again = BuildStart {
        plan: json!({"other": "plan"}),
        holder: "other".into(),
        ..starting(1001)
    };
    assert!(
        !store.start_build(one.id, &again).await.unwrap(),
        "only a pending build starts"
    );
    let started = store.build(one.id).await.unwrap().unwrap();
    assert_eq!(
        (started.status, started.start_time, started.plan),
        (BuildStatus::Started, 1000, Some(starting(1000).plan)),
        "a refused start changes nothing"
    );
    assert!(
        !store
            .claim_build(one.id, "other", 1040, 1010)
            .await
            .unwrap(),
        "its starter owns it"
    );

    store
        .finish_build(one.id, BuildStatus::Succeeded, 1100)
        .await
        .unwrap();
    let finished = store.build(one.id).await.unwrap().unwrap();
    assert_eq!(
        (finished.status, finished.end_time),
        (BuildStatus::Succeeded, 1100)
    );
    let j = store.job(pipeline.id, "j").await.unwrap().unwrap();
    assert_eq!(j.finished_build_id, Some(one.id));
    assert_eq!(j.transition_build_id, Some(one.id));
    assert_eq!(j.next_build_id, Some(two.id));

    let err = store.finish_build(one.id, BuildStatus::Failed, 1200).await;
    assert!(
        matches!(err, Err(StoreError::Conflict(_))),
        "a build finishes once: {err:?}"
    );
    assert_eq!(
        store.build(one.id).await.unwrap().unwrap().status,
        BuildStatus::Succeeded
    );
    assert!(matches!(
        store.finish_build(two.id, BuildStatus::Started, 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.finish_build(999_999, BuildStatus::Failed, 1).await,
        Err(StoreError::NotFound(_))
    ));

    // Same status again: finished moves, transition stays.
    store
        .finish_build(two.id, BuildStatus::Succeeded, 1300)
        .await
        .unwrap();
    let j = store.job(pipeline.id, "j").await.unwrap().unwrap();
    assert_eq!(
        (j.finished_build_id, j.transition_build_id, j.next_build_id),
        (Some(two.id), Some(one.id), None)
    );

    let three = job_build(store, &team, &job).await;
    store
        .finish_build(three.id, BuildStatus::Failed, 1400)
        .await
        .unwrap();
    let j = store.job(pipeline.id, "j").await.unwrap().unwrap();
    assert_eq!(
        (j.finished_build_id, j.transition_build_id),
        (Some(three.id), Some(three.id))
    );
}

pub async fn pausing_a_job_is_recorded(h: &Harness) {
    let store = &h.store;
    let (_team, pipeline, job) = pipeline_with_job(store).await;
    store
        .set_job_paused(job.id, true, "alice", 77)
        .await
        .unwrap();
    let paused = store.job(pipeline.id, "j").await.unwrap().unwrap();
    assert!(paused.paused);
    assert_eq!((paused.paused_by.as_str(), paused.paused_at), ("alice", 77));
    store.set_job_paused(job.id, false, "", 0).await.unwrap();
    assert!(!store.job(pipeline.id, "j").await.unwrap().unwrap().paused);
    assert!(matches!(
        store.set_job_paused(999_999, true, "a", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn events_are_appended_in_batches_with_consecutive_ids(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let build = job_build(store, &team, &job).await;
    let other = job_build(store, &team, &job).await;

    assert_eq!(store.append_build_events(build.id, &[]).await.unwrap(), 0);
    let batch: Vec<Value> = (0..3)
        .map(|i| json!({"event": "log", "data": {"payload": format!("line {i}")}}))
        .collect();
    assert_eq!(
        store.append_build_events(build.id, &batch).await.unwrap(),
        3
    );
    assert_eq!(
        store
            .append_build_events(build.id, &batch[..2])
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        store
            .append_build_events(other.id, &batch[..1])
            .await
            .unwrap(),
        1,
        "ids are per build"
    );
    assert_eq!(store.append_build_events(build.id, &[]).await.unwrap(), 5);

    let events = store.build_events(build.id, 0, 100).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(events[2].1, batch[2]);
    assert_eq!(events[3].1, batch[0]);

    // Resuming after an id (Last-Event-ID), in pages.
    let resumed = store.build_events(build.id, 3, 100).await.unwrap();
    assert_eq!(resumed.iter().map(|e| e.0).collect::<Vec<_>>(), vec![4, 5]);
    let paged = store.build_events(build.id, 1, 2).await.unwrap();
    assert_eq!(paged.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3]);
    assert!(store
        .build_events(build.id, 5, 100)
        .await
        .unwrap()
        .is_empty());

    let big: Vec<Value> = (0..1000).map(|i| json!({"event": "log", "n": i})).collect();
    assert_eq!(
        store.append_build_events(build.id, &big).await.unwrap(),
        1005
    );
    assert_eq!(
        store.build_events(build.id, 1004, 10).await.unwrap()[0].1,
        json!({"event": "log", "n": 999})
    );

    assert!(matches!(
        store.append_build_events(999_999, &batch).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn migrating_twice_is_a_no_op_and_data_survives_reopening(h: &Harness) {
    let (team, pipeline, job) = pipeline_with_job(&h.store).await;
    let build = job_build(&h.store, &team, &job).await;
    h.store
        .append_build_events(build.id, &[json!({"event": "log"})])
        .await
        .unwrap();

    let reopened = h.reopen().await;
    assert_eq!(
        reopened
            .pipeline_by_id(pipeline.id)
            .await
            .unwrap()
            .map(|p| p.name),
        Some("p".into())
    );
    assert_eq!(reopened.build(build.id).await.unwrap(), Some(build.clone()));
    assert_eq!(
        reopened.build_events(build.id, 0, 10).await.unwrap().len(),
        1
    );
    // Sequences carry on rather than restarting.
    assert_eq!(job_build(&reopened, &team, &job).await.name, "2");
    let mut again = config_save(team.id, "p", vec![], vec![]);
    again.expected_version = pipeline.config_version;
    assert!(save(&reopened, &again).await.pipeline.config_version > pipeline.config_version);
}

pub async fn reruns_are_named_after_their_original_and_listed_next_to_it(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let one = job_build(store, &team, &job).await;
    let two = job_build(store, &team, &job).await;
    store
        .finish_build(one.id, BuildStatus::Failed, 10)
        .await
        .unwrap();

    let rerun = store.rerun_build(one.id, "bob", 20).await.unwrap();
    assert_eq!(rerun.name, "1.1");
    assert_eq!((rerun.rerun_of, rerun.rerun_number), (Some(one.id), 1));
    assert_eq!(
        (rerun.status, rerun.created_by.as_str()),
        (BuildStatus::Pending, "bob")
    );
    assert_eq!(rerun.job_name, "j");
    let again = store.rerun_build(rerun.id, "", 30).await.unwrap();
    assert_eq!(again.name, "1.2", "a rerun of a rerun reruns the original");
    assert_eq!(again.rerun_of, Some(one.id));

    // Newest first, reruns grouped under their original.
    let listed = store.job_builds(job.id, &Page::default()).await.unwrap();
    assert_eq!(ids(&listed), vec![two.id, again.id, rerun.id, one.id]);
    assert_eq!(
        store
            .job(pipeline.id, "j")
            .await
            .unwrap()
            .unwrap()
            .next_build_id,
        Some(two.id),
        "the next build is the oldest unfinished one"
    );
    let one_off = store
        .create_build(&NewBuild {
            team_id: team.id,
            at: 1,
            resource_id: None,
            ..NewBuild::default()
        })
        .await
        .unwrap();
    assert!(matches!(
        store.rerun_build(one_off.id, "", 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.rerun_build(999_999, "", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn builds_are_found_by_job_and_name_and_take_comments(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let one = job_build(store, &team, &job).await;
    let rerun = store.rerun_build(one.id, "", 1).await.unwrap();
    assert_eq!(
        store.job_build(job.id, "1").await.unwrap().map(|b| b.id),
        Some(one.id)
    );
    assert_eq!(
        store.job_build(job.id, "1.1").await.unwrap().map(|b| b.id),
        Some(rerun.id)
    );
    assert!(store.job_build(job.id, "2").await.unwrap().is_none());

    store
        .set_build_comment(one.id, "flaky network")
        .await
        .unwrap();
    assert_eq!(
        store.build(one.id).await.unwrap().unwrap().comment,
        "flaky network"
    );
    assert!(matches!(
        store.set_build_comment(999_999, "x").await,
        Err(StoreError::NotFound(_))
    ));

    let resource = store
        .resource(pipeline.id, "r")
        .await
        .unwrap()
        .expect("resource r");
    assert_eq!(
        (resource.name.as_str(), resource.type_.as_str()),
        ("r", "git")
    );
    assert_eq!(resource.config["source"]["uri"], "r");
    assert!(store
        .resource(pipeline.id, "missing")
        .await
        .unwrap()
        .is_none());
}

pub async fn concurrent_triggers_get_distinct_build_numbers(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let other_node = h.reopen().await;
    let creates = (0..10).map(|i| {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other_node.clone()
        };
        let new = NewBuild {
            team_id: team.id,
            job_id: Some(job.id),
            at: i,
            resource_id: None,
            ..NewBuild::default()
        };
        tokio::spawn(async move { store.create_build(&new).await })
    });
    let mut names: Vec<i64> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| {
            let build = r.expect("create task").expect("creating a build");
            build.name.parse::<i64>().expect("numeric name")
        })
        .collect();
    names.sort();
    assert_eq!(names, (1..=10).collect::<Vec<_>>());
}
