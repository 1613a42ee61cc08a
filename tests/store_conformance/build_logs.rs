//! Build logs read in bounded pages and reaped.

use super::*;

pub async fn event_pages_stop_at_their_byte_cap_but_hold_at_least_one_event(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let build = job_build(store, &team, &job).await;
    let events: Vec<Value> = (0..10)
        .map(|i| json!({"event": "log", "data": {"payload": format!("{i}{}", "x".repeat(999))}}))
        .collect();
    store.append_build_events(build.id, &events).await.unwrap();
    let ids = |page: &[(i64, Value)]| page.iter().map(|(id, _)| *id).collect::<Vec<_>>();

    let page = store
        .build_events_page(build.id, 0, 100, 2500)
        .await
        .unwrap();
    assert_eq!(ids(&page), [1, 2, 3], "stops once the cap is reached");
    assert_eq!(page[0].1, events[0]);
    let page = store
        .build_events_page(build.id, 3, 2, 1 << 20)
        .await
        .unwrap();
    assert_eq!(ids(&page), [4, 5], "the event count caps too");
    let page = store.build_events_page(build.id, 5, 100, 1).await.unwrap();
    assert_eq!(ids(&page), [6], "an event bigger than the cap still comes");
    let page = store
        .build_events_page(build.id, 0, 0, usize::MAX)
        .await
        .unwrap();
    assert_eq!(page.len(), 10, "no caps: everything");
    assert!(store
        .build_events_page(build.id, 10, 100, 1)
        .await
        .unwrap()
        .is_empty());
}

pub async fn reaping_deletes_finished_builds_events_and_marks_them(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let done = job_build(store, &team, &job).await;
    let running = job_build(store, &team, &job).await;
    let kept = job_build(store, &team, &job).await;
    for b in [&done, &running, &kept] {
        store.start_build(b.id, &starting(10)).await.unwrap();
        store
            .append_build_events(b.id, &[json!({"event": "log"}), json!({"event": "log"})])
            .await
            .unwrap();
    }
    store
        .finish_build(done.id, BuildStatus::Failed, 20)
        .await
        .unwrap();
    store
        .finish_build(kept.id, BuildStatus::Succeeded, 30)
        .await
        .unwrap();
    let unreaped = |bs: Vec<BuildRow>| bs.iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(
        unreaped(store.unreaped_job_builds(job.id).await.unwrap()),
        [kept.id, running.id, done.id],
        "newest first"
    );

    // The running build and an unknown one are left alone.
    let n = store
        .reap_build_logs(&[done.id, running.id, 999_999], 100)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(store.build_events(done.id, 0, 0).await.unwrap().is_empty());
    assert_eq!(store.build_reap_time(done.id).await.unwrap(), Some(100));
    assert_eq!(store.build_events(running.id, 0, 0).await.unwrap().len(), 2);
    assert_eq!(store.build_reap_time(running.id).await.unwrap(), None);
    assert_eq!(store.build_events(kept.id, 0, 0).await.unwrap().len(), 2);
    assert_eq!(
        unreaped(store.unreaped_job_builds(job.id).await.unwrap()),
        [kept.id, running.id]
    );
    // Reaped once: a second pass changes nothing, not even the time.
    assert_eq!(store.reap_build_logs(&[done.id], 200).await.unwrap(), 0);
    assert_eq!(store.build_reap_time(done.id).await.unwrap(), Some(100));
    assert_eq!(store.reap_build_logs(&[], 200).await.unwrap(), 0);
    assert_eq!(store.build_reap_time(999_999).await.unwrap(), None);
}

pub async fn the_log_collector_sees_unpaused_jobs_that_keep_fewer_logs(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let with = |name: &str, retention: Value| {
        let mut j = job(name);
        j.config
            .as_object_mut()
            .unwrap()
            .extend(retention.as_object().cloned().unwrap_or_default());
        j
    };
    let jobs = || {
        vec![
            with("new", json!({"build_log_retention": {"builds": 1}})),
            with("old", json!({"build_logs_to_retain": 2})),
            job("all"),
            with("paused", json!({"build_logs_to_retain": 2})),
        ]
    };
    let p = save(store, &config_save(team.id, "p", jobs(), vec![])).await;
    // Saved paused, and left so.
    save(store, &config_save(team.id, "q", jobs(), vec![])).await;
    let archived = save(store, &config_save(team.id, "a", jobs(), vec![])).await;
    for saved in [&p, &archived] {
        store
            .set_pipeline_paused(saved.pipeline.id, false, "admin", 1)
            .await
            .unwrap();
    }
    store
        .archive_pipeline(archived.pipeline.id, "admin", 2)
        .await
        .unwrap();
    let paused = store.job(p.pipeline.id, "paused").await.unwrap().unwrap();
    store
        .set_job_paused(paused.id, true, "admin", 3)
        .await
        .unwrap();

    let seen = |every| async move {
        let mut names: Vec<String> = store
            .retained_jobs(every)
            .await
            .unwrap()
            .into_iter()
            .map(|j| {
                assert_eq!(j.pipeline_id, p.pipeline.id);
                j.name
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(seen(false).await, ["new", "old"], "those that ask for one");
    assert_eq!(
        seen(true).await,
        ["all", "new", "old"],
        "with the node's flags, every unpaused job of an unpaused pipeline"
    );
}
