//! Pipelines, their configs, jobs and resources.

use super::*;

pub async fn a_new_pipeline_starts_paused_unless_told_otherwise(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let saved = save(store, &config_save(team.id, "api", vec![job("j")], vec![])).await;
    assert!(saved.created);
    assert!(
        saved.pipeline.paused,
        "pipelines set through the API start paused"
    );
    assert!(!saved.pipeline.archived);
    assert_eq!(saved.pipeline.team_name, "main");
    assert_eq!(
        saved.pipeline.groups,
        json!([{"name": "all", "jobs": ["j"]}])
    );
    assert_eq!(saved.pipeline.last_updated, 1_700_000_000);

    let mut by_step = config_save(team.id, "child", vec![], vec![]);
    by_step.paused_on_create = false;
    by_step.parent_job_id = 7;
    by_step.parent_build_id = 9;
    let child = save(store, &by_step).await;
    assert!(
        !child.pipeline.paused,
        "pipelines set by a set_pipeline step start unpaused"
    );
    assert_eq!(
        (child.pipeline.parent_job_id, child.pipeline.parent_build_id),
        (7, 9)
    );

    // Re-saving keeps the paused flag and reports an update.
    let mut again = config_save(team.id, "api", vec![job("j")], vec![]);
    again.expected_version = saved.pipeline.config_version;
    let resaved = save(store, &again).await;
    assert!(!resaved.created);
    assert!(resaved.pipeline.paused);
    assert_eq!(resaved.pipeline.id, saved.pipeline.id);

    let (config, version) = store
        .pipeline_config(saved.pipeline.id)
        .await
        .unwrap()
        .expect("config");
    assert_eq!(config, again.config);
    assert_eq!(version, resaved.pipeline.config_version);
    assert_eq!(
        store.pipeline("main", "api", None).await.unwrap(),
        Some(resaved.pipeline.clone())
    );
    assert_eq!(
        store.pipeline_by_id(saved.pipeline.id).await.unwrap(),
        Some(resaved.pipeline)
    );
    assert!(store
        .pipeline("main", "missing", None)
        .await
        .unwrap()
        .is_none());
    assert!(store.pipeline_config(999_999).await.unwrap().is_none());

    let unknown_team = config_save(999_999, "p", vec![], vec![]);
    assert!(matches!(
        store.save_pipeline(&unknown_team).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn new_pipelines_are_ordered_last_in_their_team(h: &Harness) {
    let store = &h.store;
    let main = team(store, "main").await;
    let other = team(store, "other").await;
    for name in ["c", "a", "b"] {
        save(store, &config_save(main.id, name, vec![], vec![])).await;
    }
    save(store, &config_save(other.id, "z", vec![], vec![])).await;

    let listed = store.pipelines(Some("main")).await.unwrap();
    assert_eq!(names(&listed), vec!["c", "a", "b"]);
    assert_eq!(
        listed.iter().map(|p| p.ordering).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(store.pipelines(Some("other")).await.unwrap()[0].ordering, 1);
    assert_eq!(
        names(&store.pipelines(None).await.unwrap()),
        vec!["c", "a", "b", "z"]
    );
    assert!(store.pipelines(Some("missing")).await.unwrap().is_empty());
}

pub async fn a_stale_config_version_is_refused_and_changes_nothing(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let first = save(store, &config_save(team.id, "p", vec![job("a")], vec![])).await;

    let mut stale = config_save(team.id, "p", vec![job("b")], vec![]);
    stale.expected_version = first.pipeline.config_version - 1;
    let err = store
        .save_pipeline(&stale)
        .await
        .expect_err("a stale version must be refused");
    assert!(matches!(err, StoreError::ConfigVersionConflict), "{err:?}");
    assert_eq!(
        err.to_string(),
        "comparison with existing config failed during save"
    );

    let (config, version) = store
        .pipeline_config(first.pipeline.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(version, first.pipeline.config_version);
    assert_eq!(config["jobs"][0]["name"], "a");
    let jobs: Vec<String> = store
        .jobs(first.pipeline.id)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(jobs, vec!["a"]);
}

pub async fn concurrent_saves_of_one_version_let_exactly_one_through(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let first = save(store, &config_save(team.id, "p", vec![job("a")], vec![])).await;
    let other_node = h.reopen().await;
    let saves = (0..6).map(|i| {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other_node.clone()
        };
        let mut next = config_save(team.id, "p", vec![job(&format!("j{i}"))], vec![]);
        next.expected_version = first.pipeline.config_version;
        tokio::spawn(async move { store.save_pipeline(&next).await })
    });
    let results = futures::future::join_all(saves).await;
    let mut saved = 0;
    for result in results {
        match result.expect("save task") {
            Ok(_) => saved += 1,
            Err(StoreError::ConfigVersionConflict) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(saved, 1, "exactly one save of a version wins");
    assert_eq!(store.jobs(first.pipeline.id).await.unwrap().len(), 1);
}

pub async fn config_versions_come_from_one_global_sequence(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let a = save(store, &config_save(team.id, "a", vec![], vec![]))
        .await
        .pipeline;
    let b = save(store, &config_save(team.id, "b", vec![], vec![]))
        .await
        .pipeline;
    let mut again = config_save(team.id, "a", vec![], vec![]);
    again.expected_version = a.config_version;
    let a2 = save(store, &again).await.pipeline;
    assert!(a.config_version > 0);
    assert!(b.config_version > a.config_version);
    assert!(
        a2.config_version > b.config_version,
        "versions are global, not per pipeline"
    );
}

pub async fn renaming_jobs_and_resources_by_old_name_keeps_their_ids(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let first = save(
        store,
        &config_save(
            team.id,
            "p",
            vec![job("build"), job("test")],
            vec![resource("repo")],
        ),
    )
    .await;
    let pid = first.pipeline.id;
    let build_job = store.job(pid, "build").await.unwrap().unwrap();
    let repo = store.resources(pid).await.unwrap().remove(0);
    job_build(store, &team, &build_job).await;

    let mut renamed_job = job("compile");
    renamed_job.old_name = Some("build".into());
    let mut renamed_resource = resource("source");
    renamed_resource.old_name = Some("repo".into());
    let mut second = config_save(
        team.id,
        "p",
        vec![job("test"), renamed_job],
        vec![renamed_resource],
    );
    second.expected_version = first.pipeline.config_version;
    save(store, &second).await;

    let jobs = store.jobs(pid).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
        vec!["test", "compile"],
        "config order"
    );
    let compile = store.job(pid, "compile").await.unwrap().unwrap();
    assert_eq!(compile.id, build_job.id, "a rename keeps the job's id");
    assert_eq!(compile.groups, vec!["all"]);
    assert!(store.job(pid, "build").await.unwrap().is_none());
    let resources = store.resources(pid).await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(
        (resources[0].id, resources[0].name.as_str()),
        (repo.id, "source")
    );
    assert_eq!(resources[0].type_, "git");

    // The history moved with it: the next build continues the numbering.
    assert_eq!(job_build(store, &team, &compile).await.name, "2");
}

pub async fn jobs_and_resources_missing_from_a_config_become_inactive(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let first = save(
        store,
        &config_save(
            team.id,
            "p",
            vec![job("a"), job("b")],
            vec![resource("r"), resource("s")],
        ),
    )
    .await;
    let pid = first.pipeline.id;
    let b = store.job(pid, "b").await.unwrap().unwrap();

    let mut second = config_save(team.id, "p", vec![job("a")], vec![resource("r")]);
    second.expected_version = first.pipeline.config_version;
    let second = save(store, &second).await;
    assert_eq!(store.jobs(pid).await.unwrap().len(), 1);
    assert!(store.job(pid, "b").await.unwrap().is_none());
    assert_eq!(store.resources(pid).await.unwrap().len(), 1);

    // Bringing it back re-activates the same row.
    let mut third = config_save(
        team.id,
        "p",
        vec![job("a"), job("b")],
        vec![resource("r"), resource("s")],
    );
    third.expected_version = second.pipeline.config_version;
    save(store, &third).await;
    assert_eq!(store.job(pid, "b").await.unwrap().map(|j| j.id), Some(b.id));
    assert_eq!(store.resources(pid).await.unwrap().len(), 2);
}

pub async fn instanced_pipelines_are_told_apart_by_their_vars(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let mut main_branch = config_save(team.id, "p", vec![], vec![]);
    main_branch.instance_vars = Some(json!({"branch": "main", "env": "prod"}));
    let mut feature = config_save(team.id, "p", vec![], vec![]);
    feature.instance_vars = Some(json!({"branch": "feature"}));
    let plain = save(store, &config_save(team.id, "p", vec![], vec![]))
        .await
        .pipeline;
    let a = save(store, &main_branch).await.pipeline;
    let b = save(store, &feature).await.pipeline;
    assert!(a.id != b.id && a.id != plain.id);
    assert_eq!(
        a.ordering, plain.ordering,
        "instances share their group's place"
    );

    let reordered = json!({"env": "prod", "branch": "main"});
    let found = store
        .pipeline("main", "p", Some(&reordered))
        .await
        .unwrap()
        .expect("instance by vars");
    assert_eq!(found.id, a.id, "key order of instance vars does not matter");
    assert_eq!(
        found.instance_vars,
        Some(json!({"branch": "main", "env": "prod"}))
    );
    assert_eq!(
        store
            .pipeline("main", "p", None)
            .await
            .unwrap()
            .map(|p| p.id),
        Some(plain.id)
    );
    assert!(store
        .pipeline("main", "p", Some(&json!({"branch": "x"})))
        .await
        .unwrap()
        .is_none());

    // Saving an instance again updates it rather than creating another.
    let mut again = main_branch.clone();
    again.instance_vars = Some(reordered);
    again.expected_version = a.config_version;
    let resaved = save(store, &again).await;
    assert!(!resaved.created);
    assert_eq!(resaved.pipeline.id, a.id);
    assert_eq!(store.pipelines(Some("main")).await.unwrap().len(), 3);
}

pub async fn pausing_and_exposing_a_pipeline_is_recorded(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let p = save(store, &config_save(team.id, "p", vec![], vec![]))
        .await
        .pipeline;

    store
        .set_pipeline_paused(p.id, true, "alice", 1234)
        .await
        .unwrap();
    let paused = store.pipeline_by_id(p.id).await.unwrap().unwrap();
    assert!(paused.paused);
    assert_eq!(
        (paused.paused_by.as_str(), paused.paused_at),
        ("alice", 1234)
    );

    store
        .set_pipeline_paused(p.id, false, "bob", 2000)
        .await
        .unwrap();
    let unpaused = store.pipeline_by_id(p.id).await.unwrap().unwrap();
    assert!(!unpaused.paused);

    store.set_pipeline_public(p.id, true).await.unwrap();
    assert!(store.pipeline_by_id(p.id).await.unwrap().unwrap().public);
    store.set_pipeline_public(p.id, false).await.unwrap();
    assert!(!store.pipeline_by_id(p.id).await.unwrap().unwrap().public);

    assert!(matches!(
        store.set_pipeline_paused(999_999, true, "a", 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_pipeline_public(999_999, true).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn renaming_a_pipeline_renames_every_instance(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let mut one = config_save(team.id, "p", vec![], vec![]);
    one.instance_vars = Some(json!({"n": 1}));
    let mut two = config_save(team.id, "p", vec![], vec![]);
    two.instance_vars = Some(json!({"n": 2}));
    let one = save(store, &one).await.pipeline;
    let two = save(store, &two).await.pipeline;
    save(store, &config_save(team.id, "taken", vec![], vec![])).await;

    assert!(store.rename_pipeline(team.id, "p", "q").await.unwrap());
    let renamed = store.pipelines(Some("main")).await.unwrap();
    let qs: BTreeSet<i64> = renamed
        .iter()
        .filter(|p| p.name == "q")
        .map(|p| p.id)
        .collect();
    assert_eq!(qs, BTreeSet::from([one.id, two.id]), "ids are kept");
    assert!(
        !store.rename_pipeline(team.id, "p", "r").await.unwrap(),
        "no pipeline is named p any more"
    );
    save(store, &config_save(team.id, "other", vec![], vec![])).await;
    let err = store.rename_pipeline(team.id, "other", "taken").await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(
        store
            .pipeline("main", "other", None)
            .await
            .unwrap()
            .is_some(),
        "a refused rename changes nothing"
    );
}

pub async fn ordering_pipelines_puts_the_named_ones_first(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    for name in ["a", "b", "c", "d"] {
        save(store, &config_save(team.id, name, vec![], vec![])).await;
    }
    store
        .order_pipelines(team.id, &["c".into(), "a".into()])
        .await
        .unwrap();
    assert_eq!(
        names(&store.pipelines(Some("main")).await.unwrap()),
        vec!["c", "a", "b", "d"]
    );
    store
        .order_pipelines(team.id, &["d".into(), "c".into(), "b".into(), "a".into()])
        .await
        .unwrap();
    assert_eq!(
        names(&store.pipelines(Some("main")).await.unwrap()),
        vec!["d", "c", "b", "a"]
    );
    // A new pipeline still goes last.
    save(store, &config_save(team.id, "e", vec![], vec![])).await;
    assert_eq!(
        names(&store.pipelines(Some("main")).await.unwrap()),
        vec!["d", "c", "b", "a", "e"]
    );
}

pub async fn ordering_with_an_unknown_name_changes_nothing(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    for name in ["a", "b", "c"] {
        save(store, &config_save(team.id, name, vec![], vec![])).await;
    }
    let before = store.pipelines(Some("main")).await.unwrap();
    let err = store
        .order_pipelines(team.id, &["c".into(), "nope".into(), "a".into()])
        .await
        .expect_err("an unknown name is refused");
    assert!(
        matches!(&err, StoreError::NotFound(what) if what.contains("nope")),
        "{err:?}"
    );
    assert_eq!(store.pipelines(Some("main")).await.unwrap(), before);
}

/// Saves instances of `p` with `{"n": N}` for each N, between pipelines `a` and `z`.
async fn instances(h: &Harness, ns: &[i64]) -> i64 {
    let team = team(&h.store, "main").await;
    save(&h.store, &config_save(team.id, "a", vec![], vec![])).await;
    for n in ns {
        let mut s = config_save(team.id, "p", vec![], vec![]);
        s.instance_vars = Some(json!({"n": n}));
        save(&h.store, &s).await;
    }
    save(&h.store, &config_save(team.id, "z", vec![], vec![])).await;
    team.id
}

/// (name, vars) of the team's pipelines as listed.
async fn listed(store: &Arc<dyn Store>) -> Vec<(String, Option<Value>)> {
    let rows = store.pipelines(Some("main")).await.unwrap();
    rows.into_iter()
        .map(|p| (p.name, p.instance_vars))
        .collect()
}

fn n(v: i64) -> (String, Option<Value>) {
    ("p".into(), Some(json!({"n": v})))
}

pub async fn instances_are_ordered_within_their_group(h: &Harness) {
    let store = &h.store;
    let team_id = instances(h, &[1, 2, 3]).await;
    let plain = ("a".to_string(), None);
    let last = ("z".to_string(), None);
    assert_eq!(
        listed(store).await,
        vec![plain.clone(), n(1), n(2), n(3), last.clone()]
    );
    store
        .order_instances(
            team_id,
            "p",
            &[Some(json!({"n": 3})), Some(json!({"n": 1}))],
        )
        .await
        .unwrap();
    assert_eq!(
        listed(store).await,
        vec![plain.clone(), n(3), n(1), n(2), last.clone()],
        "the named instances first, the rest after, the group keeps its place"
    );
    // A new instance goes last in its group; groups can still be reordered as a whole.
    let mut four = config_save(team_id, "p", vec![], vec![]);
    four.instance_vars = Some(json!({"n": 4}));
    save(store, &four).await;
    store
        .order_pipelines(team_id, &["p".into(), "z".into()])
        .await
        .unwrap();
    assert_eq!(
        listed(store).await,
        vec![n(3), n(1), n(2), n(4), last, plain]
    );
    // Nothing to order is a no-op, even for a group that does not exist.
    store.order_instances(team_id, "nope", &[]).await.unwrap();
}

pub async fn ordering_instances_with_unknown_vars_changes_nothing(h: &Harness) {
    let store = &h.store;
    let team_id = instances(h, &[1, 2, 3]).await;
    let before = store.pipelines(Some("main")).await.unwrap();
    for (name, vars) in [
        ("p", vec![Some(json!({"n": 3})), Some(json!({"n": 9}))]),
        // The group has no non-instanced pipeline.
        ("p", vec![Some(json!({"n": 2})), None]),
        ("nope", vec![Some(json!({"n": 1}))]),
    ] {
        let err = store
            .order_instances(team_id, name, &vars)
            .await
            .expect_err("unknown vars are refused");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert_eq!(store.pipelines(Some("main")).await.unwrap(), before);
    }
}

pub async fn archiving_drops_the_config_and_saving_again_restores_it(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let first = save(
        store,
        &config_save(team.id, "p", vec![job("j")], vec![resource("r")]),
    )
    .await
    .pipeline;
    let j = store.job(first.id, "j").await.unwrap().unwrap();
    store
        .set_pipeline_paused(first.id, false, "", 0)
        .await
        .unwrap();

    store
        .archive_pipeline(first.id, "automatic-pipeline-archiver", 5000)
        .await
        .unwrap();
    let archived = store
        .pipeline_by_id(first.id)
        .await
        .unwrap()
        .expect("still listed");
    assert!(archived.archived && archived.paused);
    assert_eq!(
        (archived.paused_by.as_str(), archived.paused_at),
        ("automatic-pipeline-archiver", 5000)
    );
    assert_eq!(archived.config_version, 0);
    assert_eq!(archived.groups, Value::Null);
    assert!(store.pipeline_config(first.id).await.unwrap().is_none());
    assert!(store.jobs(first.id).await.unwrap().is_empty());
    assert!(store.resources(first.id).await.unwrap().is_empty());
    assert_eq!(
        names(&store.pipelines(Some("main")).await.unwrap()),
        vec!["p"]
    );
    assert!(matches!(
        store.archive_pipeline(999_999, "x", 1).await,
        Err(StoreError::NotFound(_))
    ));

    // A client that saw no config (404) sends version 0, which matches the archived one.
    let restored = save(
        store,
        &config_save(team.id, "p", vec![job("j")], vec![resource("r")]),
    )
    .await;
    assert!(!restored.created);
    assert!(!restored.pipeline.archived);
    assert!(restored.pipeline.paused, "saving keeps it paused");
    assert!(restored.pipeline.config_version > first.config_version);
    assert_eq!(
        store.job(first.id, "j").await.unwrap().map(|x| x.id),
        Some(j.id)
    );
    assert_eq!(store.resources(first.id).await.unwrap().len(), 1);
    assert!(store.pipeline_config(first.id).await.unwrap().is_some());
}

pub async fn destroying_a_pipeline_removes_its_builds_and_events(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let build = job_build(store, &team, &job).await;
    store
        .append_build_events(build.id, &[json!({"event": "log"})])
        .await
        .unwrap();
    let kept = save(
        store,
        &config_save(team.id, "kept", vec![job_config("k")], vec![]),
    )
    .await
    .pipeline;

    store.destroy_pipeline(pipeline.id).await.unwrap();
    assert!(store.pipeline_by_id(pipeline.id).await.unwrap().is_none());
    assert!(store.build(build.id).await.unwrap().is_none());
    assert!(store
        .build_events(build.id, 0, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.jobs(pipeline.id).await.unwrap().is_empty());
    assert!(store.pipeline_by_id(kept.id).await.unwrap().is_some());
    assert!(matches!(
        store.destroy_pipeline(pipeline.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// `job` under another name, for tests that bind a job row as `job`.
fn job_config(name: &str) -> JobConfigRow {
    job(name)
}
