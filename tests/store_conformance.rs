//! One conformance suite for both stores: every test runs against the embedded store (in a
//! temp dir) as `embedded::<test>` and against PostgreSQL (in a fresh schema) as
//! `postgres::<test>`. PostgreSQL tests skip locally unless `CONCOURSE_TEST_POSTGRES_HOST`
//! is set, and never skip in CI.

use concourse::db::testing::{require_postgres, SchemaGuard};
use concourse::db::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Where a store under test lives, so a test can open it again.
enum Location {
    Embedded(tempfile::TempDir),
    Postgres(SchemaGuard),
}

struct Harness {
    store: Arc<dyn Store>,
    location: Location,
}

impl Harness {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the embedded store");
        let store = open_embedded(&dir.path().join("concourse.db"))
            .await
            .expect("opening the embedded store");
        Harness {
            store,
            location: Location::Embedded(dir),
        }
    }

    async fn postgres(test_name: &str) -> Option<Self> {
        let guard = SchemaGuard::new(require_postgres(test_name)?);
        let store = connect_postgres(guard.config())
            .await
            .expect("connecting to postgres");
        Some(Harness {
            store,
            location: Location::Postgres(guard),
        })
    }

    /// A second store on the same database (as after a restart or on another web node).
    async fn reopen(&self) -> Arc<dyn Store> {
        match &self.location {
            Location::Embedded(dir) => open_embedded(&dir.path().join("concourse.db"))
                .await
                .expect("reopening"),
            Location::Postgres(guard) => connect_postgres(guard.config())
                .await
                .expect("reconnecting"),
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let harness = super::Harness::embedded().await;
                    super::$name(&harness).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(harness) = super::Harness::postgres(concat!("postgres::", stringify!($name))).await
                    else {
                        return;
                    };
                    super::$name(&harness).await;
                }
            )*
        }
    };
}

conformance!(
    teams_are_created_renamed_and_destroyed,
    access_tokens_are_saved_looked_up_and_expired,
    user_logins_are_recorded_once_per_user,
    a_new_pipeline_starts_paused_unless_told_otherwise,
    new_pipelines_are_ordered_last_in_their_team,
    a_stale_config_version_is_refused_and_changes_nothing,
    config_versions_come_from_one_global_sequence,
    renaming_jobs_and_resources_by_old_name_keeps_their_ids,
    jobs_and_resources_missing_from_a_config_become_inactive,
    instanced_pipelines_are_told_apart_by_their_vars,
    pausing_and_exposing_a_pipeline_is_recorded,
    renaming_a_pipeline_renames_every_instance,
    ordering_pipelines_puts_the_named_ones_first,
    ordering_with_an_unknown_name_changes_nothing,
    archiving_drops_the_config_and_saving_again_restores_it,
    destroying_a_pipeline_removes_its_builds_and_events,
    job_builds_are_numbered_per_job_and_one_off_builds_globally,
    builds_are_paged_newest_first_with_inclusive_bounds,
    builds_are_paged_by_start_time_with_timestamps,
    an_inverted_page_range_is_invalid,
    starting_and_finishing_a_build_updates_its_job,
    pausing_a_job_is_recorded,
    events_are_appended_in_batches_with_consecutive_ids,
    workers_are_saved_replaced_and_deleted,
    migrating_twice_is_a_no_op_and_data_survives_reopening,
);

// --- helpers ---------------------------------------------------------------------------------

fn owner_auth(user: &str) -> TeamAuth {
    let mut auth = TeamAuth::new();
    auth.insert(
        "owner".into(),
        RoleAuth {
            users: vec![format!("local:{user}")],
            groups: vec![],
        },
    );
    auth
}

use concourse::proto::api::RoleAuth;

async fn team(store: &Arc<dyn Store>, name: &str) -> TeamRow {
    store
        .upsert_team(name, &owner_auth("admin"), false)
        .await
        .expect("creating team")
        .0
}

fn job(name: &str) -> JobConfigRow {
    JobConfigRow {
        name: name.into(),
        old_name: None,
        config: json!({"name": name, "plan": []}),
    }
}

fn resource(name: &str) -> ResourceConfigRow {
    ResourceConfigRow {
        name: name.into(),
        old_name: None,
        type_: "git".into(),
        config: json!({"name": name, "type": "git", "source": {"uri": name}}),
    }
}

fn config_save(
    team_id: i64,
    name: &str,
    jobs: Vec<JobConfigRow>,
    resources: Vec<ResourceConfigRow>,
) -> SavePipeline {
    let config = json!({
        "jobs": jobs.iter().map(|j| j.config.clone()).collect::<Vec<_>>(),
        "resources": resources.iter().map(|r| r.config.clone()).collect::<Vec<_>>(),
        "groups": [{"name": "all", "jobs": jobs.iter().map(|j| j.name.clone()).collect::<Vec<_>>()}],
    });
    SavePipeline {
        team_id,
        name: name.into(),
        instance_vars: None,
        config,
        expected_version: 0,
        job_groups: jobs
            .iter()
            .map(|j| (j.name.clone(), vec!["all".to_string()]))
            .collect(),
        jobs,
        resources,
        paused_on_create: true,
        parent_job_id: 0,
        parent_build_id: 0,
        at: 1_700_000_000,
    }
}

async fn save(store: &Arc<dyn Store>, save: &SavePipeline) -> SavedPipeline {
    store.save_pipeline(save).await.expect("saving pipeline")
}

async fn pipeline_with_job(store: &Arc<dyn Store>) -> (TeamRow, PipelineRow, JobRow) {
    let team = team(store, "main").await;
    let saved = save(
        store,
        &config_save(team.id, "p", vec![job("j")], vec![resource("r")]),
    )
    .await;
    let job = store
        .job(saved.pipeline.id, "j")
        .await
        .unwrap()
        .expect("job j");
    (team, saved.pipeline, job)
}

async fn job_build(store: &Arc<dyn Store>, team: &TeamRow, job: &JobRow) -> BuildRow {
    store
        .create_build(&NewBuild {
            team_id: team.id,
            job_id: Some(job.id),
            pipeline_id: Some(job.pipeline_id),
            created_by: "admin".into(),
            plan: None,
            at: 1_700_000_100,
        })
        .await
        .expect("creating job build")
}

fn names(pipelines: &[PipelineRow]) -> Vec<String> {
    pipelines.iter().map(|p| p.name.clone()).collect()
}

fn ids(builds: &[BuildRow]) -> Vec<i64> {
    builds.iter().map(|b| b.id).collect()
}

fn page(from: Option<i64>, to: Option<i64>, limit: i64) -> Page {
    Page {
        from,
        to,
        limit,
        timestamps: false,
    }
}

// --- teams, tokens, users --------------------------------------------------------------------

async fn teams_are_created_renamed_and_destroyed(h: &Harness) {
    let store = &h.store;
    let (main, created) = store
        .upsert_team("main", &owner_auth("admin"), true)
        .await
        .unwrap();
    assert!(created);
    assert!(main.admin);
    assert_eq!(main.auth, owner_auth("admin"));

    let (again, created) = store
        .upsert_team("main", &owner_auth("other"), false)
        .await
        .unwrap();
    assert!(!created, "an existing team is updated, not created");
    assert_eq!(again.id, main.id);
    assert_eq!(again.auth, owner_auth("other"), "auth is replaced");
    assert!(again.admin, "admin stays as created");

    team(store, "other").await;
    let all: Vec<String> = store
        .teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(all, vec!["main", "other"]);

    assert!(store.rename_team("other", "renamed").await.unwrap());
    assert!(!store.rename_team("missing", "x").await.unwrap());
    assert!(matches!(
        store.rename_team("renamed", "main").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.team("other").await.unwrap().is_none());
    let renamed = store.team("renamed").await.unwrap().expect("renamed team");

    // Destroying a team takes its pipelines, builds and workers with it.
    let saved = save(store, &config_save(renamed.id, "p", vec![job("j")], vec![])).await;
    store
        .save_worker(&WorkerRow {
            name: "w".into(),
            team_id: Some(renamed.id),
            payload: json!({"name": "w"}),
            state: "running".into(),
            expires_at: 0,
        })
        .await
        .unwrap();
    assert!(store.destroy_team("renamed").await.unwrap());
    assert!(!store.destroy_team("renamed").await.unwrap());
    assert!(store
        .pipeline_by_id(saved.pipeline.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.workers().await.unwrap().is_empty());
}

async fn access_tokens_are_saved_looked_up_and_expired(h: &Harness) {
    let store = &h.store;
    let claims = json!({"sub": "admin", "aud": ["concourse-worker"]});
    store.save_access_token("old", &claims, 100).await.unwrap();
    store.save_access_token("new", &claims, 300).await.unwrap();
    assert_eq!(
        store.access_token("old").await.unwrap(),
        Some(claims.clone())
    );
    assert_eq!(store.access_token("missing").await.unwrap(), None);

    assert_eq!(store.delete_expired_access_tokens(200).await.unwrap(), 1);
    assert_eq!(store.access_token("old").await.unwrap(), None);
    assert_eq!(store.access_token("new").await.unwrap(), Some(claims));

    store.delete_access_token("new").await.unwrap();
    assert_eq!(store.access_token("new").await.unwrap(), None);
}

async fn user_logins_are_recorded_once_per_user(h: &Harness) {
    let store = &h.store;
    let login = |name: &str, at| UserLogin {
        username: name.into(),
        connector: "local".into(),
        sub: format!("sub-{name}"),
        at,
    };
    store.record_user_login(&login("alice", 100)).await.unwrap();
    store.record_user_login(&login("bob", 200)).await.unwrap();
    store.record_user_login(&login("alice", 300)).await.unwrap();

    let users = store.users_since(0).await.unwrap();
    assert_eq!(users.len(), 2, "one row per user: {users:?}");
    let alice = users.iter().find(|u| u.username == "alice").expect("alice");
    assert_eq!(
        (
            alice.last_login,
            alice.connector.as_str(),
            alice.sub.as_str()
        ),
        (300, "local", "sub-alice")
    );

    let recent: Vec<String> = store
        .users_since(250)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(recent, vec!["alice"]);
}

// --- pipelines -----------------------------------------------------------------------------------

async fn a_new_pipeline_starts_paused_unless_told_otherwise(h: &Harness) {
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

async fn new_pipelines_are_ordered_last_in_their_team(h: &Harness) {
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

async fn a_stale_config_version_is_refused_and_changes_nothing(h: &Harness) {
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

async fn config_versions_come_from_one_global_sequence(h: &Harness) {
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

async fn renaming_jobs_and_resources_by_old_name_keeps_their_ids(h: &Harness) {
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

async fn jobs_and_resources_missing_from_a_config_become_inactive(h: &Harness) {
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

async fn instanced_pipelines_are_told_apart_by_their_vars(h: &Harness) {
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

async fn pausing_and_exposing_a_pipeline_is_recorded(h: &Harness) {
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

async fn renaming_a_pipeline_renames_every_instance(h: &Harness) {
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

async fn ordering_pipelines_puts_the_named_ones_first(h: &Harness) {
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

async fn ordering_with_an_unknown_name_changes_nothing(h: &Harness) {
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

async fn archiving_drops_the_config_and_saving_again_restores_it(h: &Harness) {
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

async fn destroying_a_pipeline_removes_its_builds_and_events(h: &Harness) {
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

fn job_config(name: &str) -> JobConfigRow {
    job(name)
}

// --- builds ------------------------------------------------------------------------------------

async fn job_builds_are_numbered_per_job_and_one_off_builds_globally(h: &Harness) {
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

async fn builds_are_paged_newest_first_with_inclusive_bounds(h: &Harness) {
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

    // Other scopes see the same builds; a one-off build only shows in team and global lists.
    let one_off = store
        .create_build(&NewBuild {
            team_id: team.id,
            created_by: "x".into(),
            at: 1,
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

async fn builds_are_paged_by_start_time_with_timestamps(h: &Harness) {
    let store = &h.store;
    let (team, _pipeline, job) = pipeline_with_job(store).await;
    let mut all = Vec::new();
    for start in [100, 200, 300, 400] {
        let build = job_build(store, &team, &job).await;
        assert!(store.start_build(build.id, start).await.unwrap());
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

async fn an_inverted_page_range_is_invalid(h: &Harness) {
    let store = &h.store;
    let (_team, _pipeline, job) = pipeline_with_job(store).await;
    let err = store
        .builds_page(BuildsOf::Job(job.id), &page(Some(5), Some(2), 10))
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
}

async fn starting_and_finishing_a_build_updates_its_job(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let one = job_build(store, &team, &job).await;
    let two = job_build(store, &team, &job).await;

    assert!(store.start_build(one.id, 1000).await.unwrap());
    assert!(
        !store.start_build(one.id, 1001).await.unwrap(),
        "only a pending build starts"
    );
    let started = store.build(one.id).await.unwrap().unwrap();
    assert_eq!(
        (started.status, started.start_time),
        (BuildStatus::Started, 1000)
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

async fn pausing_a_job_is_recorded(h: &Harness) {
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

async fn events_are_appended_in_batches_with_consecutive_ids(h: &Harness) {
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

async fn workers_are_saved_replaced_and_deleted(h: &Harness) {
    let store = &h.store;
    let team = team(store, "main").await;
    let worker = |name: &str, state: &str, team_id| WorkerRow {
        name: name.into(),
        team_id,
        payload: json!({"name": name, "addr": "127.0.0.1:7777", "platform": "linux"}),
        state: state.into(),
        expires_at: 500,
    };
    store
        .save_worker(&worker("b", "running", None))
        .await
        .unwrap();
    store
        .save_worker(&worker("a", "running", Some(team.id)))
        .await
        .unwrap();
    store
        .save_worker(&worker("b", "landing", None))
        .await
        .unwrap();
    let workers = store.workers().await.unwrap();
    assert_eq!(
        workers,
        vec![
            worker("a", "running", Some(team.id)),
            worker("b", "landing", None)
        ]
    );

    assert!(store.delete_worker("b").await.unwrap());
    assert!(!store.delete_worker("b").await.unwrap());
    assert_eq!(store.workers().await.unwrap().len(), 1);
    assert!(matches!(
        store
            .save_worker(&worker("c", "running", Some(999_999)))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn migrating_twice_is_a_no_op_and_data_survives_reopening(h: &Harness) {
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

// --- schema ------------------------------------------------------------------------------------

/// Tables and their columns declared in schema.sql (a light parse of our own formatting:
/// one column per line, four spaces in).
fn schema_sql_tables() -> Vec<(String, Vec<String>)> {
    let schema = include_str!("../schema.sql");
    let mut tables = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in schema.lines() {
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest.split_whitespace().next().expect("table name");
            current = Some((name.to_string(), Vec::new()));
        } else if line.starts_with(");") {
            tables.extend(current.take());
        } else if let (Some((_, columns)), Some(column)) =
            (current.as_mut(), line.strip_prefix("    "))
        {
            let word = column.split_whitespace().next().unwrap_or("");
            let constraint = ["UNIQUE", "PRIMARY", "--", "FOREIGN", "CHECK"]
                .iter()
                .any(|k| word.starts_with(k));
            if !word.is_empty() && !constraint && !column.starts_with(' ') {
                columns.push(word.to_string());
            }
        }
    }
    tables.sort();
    tables
}

#[tokio::test]
async fn the_embedded_schema_mirrors_schema_sql_table_for_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concourse.db");
    drop(
        open_embedded(&path)
            .await
            .expect("opening the embedded store"),
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN \
             ('sqlite_sequence', 'schema_migrations', 'sequences') ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in names {
        let columns: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{name}') ORDER BY cid"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.push((name, columns));
    }
    assert_eq!(tables, schema_sql_tables());
}

/// Tables, columns, indexes and sequences of a PostgreSQL schema, with the schema's name
/// taken out so two schemas compare.
async fn describe_schema(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, \
             COALESCE(column_default::text, '') \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'schema_migrations' \
             ORDER BY table_name, ordinal_position",
            &[&schema],
        )
        .await
        .unwrap()
    {
        let cells: Vec<String> = (0..5).map(|i| row.get::<_, String>(i)).collect();
        lines.push(format!("column {}", cells.join(" ")));
    }
    for row in client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'schema_migrations' \
             ORDER BY indexname",
            &[&schema],
        )
        .await
        .unwrap()
    {
        lines.push(format!("index {}", row.get::<_, String>(0)));
    }
    for row in client
        .query(
            "SELECT sequence_name::text FROM information_schema.sequences WHERE sequence_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
    {
        lines.push(format!("sequence {}", row.get::<_, String>(0)));
    }
    for row in client
        .query(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .unwrap()
    {
        lines.push(format!(
            "constraint {} {}",
            row.get::<_, String>(0),
            row.get::<_, String>(1)
        ));
    }
    lines
        .into_iter()
        .map(|l| l.replace(&format!("{schema}."), ""))
        .filter(|l| !l.contains("schema_migrations"))
        .collect()
}

#[tokio::test]
async fn migrating_an_empty_postgres_schema_yields_schema_sql() {
    let Some(migrated) = require_postgres("migrating_an_empty_postgres_schema_yields_schema_sql")
    else {
        return;
    };
    let Some(declared) = require_postgres("migrating_an_empty_postgres_schema_yields_schema_sql")
    else {
        return;
    };
    let migrated = SchemaGuard::new(migrated);
    let declared = SchemaGuard::new(declared);
    drop(
        connect_postgres(migrated.config())
            .await
            .expect("migrating"),
    );
    // Migrating again is a no-op.
    drop(
        connect_postgres(migrated.config())
            .await
            .expect("migrating again"),
    );

    let config = declared.config();
    let schema = config.schema.clone().unwrap();
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host)
        .port(config.port)
        .user(&config.user)
        .dbname(&config.database);
    pg.options(format!("-c search_path={schema}"));
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    client
        .batch_execute(include_str!("../schema.sql"))
        .await
        .expect("applying schema.sql");

    let migrated_schema = migrated.config().schema.clone().unwrap();
    let from_migrations = describe_schema(&client, &migrated_schema).await;
    let from_schema_sql = describe_schema(&client, &schema).await;
    assert!(from_schema_sql.len() > 50, "{from_schema_sql:?}");
    assert_eq!(from_migrations, from_schema_sql);
    let versions: Vec<i64> = client
        .query(
            &format!("SELECT version FROM {migrated_schema}.schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1], "each migration is recorded once");
}
