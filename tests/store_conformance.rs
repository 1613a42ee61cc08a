//! One conformance suite for both stores: every test runs against the embedded store (in a
//! temp dir) as `embedded::<test>` and against PostgreSQL (in a fresh schema) as
//! `postgres::<test>`. PostgreSQL tests skip locally unless `CONCOURSE_TEST_POSTGRES_HOST`
//! is set, and never skip in CI.

#[path = "store_conformance/accounts.rs"]
mod accounts;
#[path = "store_conformance/artifacts.rs"]
mod artifacts;
#[path = "store_conformance/build_logs.rs"]
mod build_logs;
#[path = "store_conformance/builds.rs"]
mod builds;
#[path = "store_conformance/leases.rs"]
mod leases;
#[path = "store_conformance/overview.rs"]
mod overview;
#[path = "store_conformance/pipelines.rs"]
mod pipelines;
#[path = "store_conformance/schema.rs"]
mod schema;
#[path = "store_conformance/signing_keys.rs"]
mod signing_keys;
#[path = "store_conformance/versions.rs"]
mod versions;
#[path = "store_conformance/wall.rs"]
mod wall;
#[path = "store_conformance/workers.rs"]
mod workers;

use accounts::*;
use artifacts::*;
use build_logs::*;
use builds::*;
use leases::*;
use overview::*;
use pipelines::*;
use signing_keys::*;
use versions::*;
use wall::*;
use workers::*;

use concourse::db::testing::{require_postgres, SchemaGuard};
use concourse::db::*;
use concourse::proto::api::RoleAuth;
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
    every_statement_a_store_runs_is_counted_once,
    a_new_pipeline_starts_paused_unless_told_otherwise,
    the_overview_answers_what_per_pipeline_reads_would,
    the_data_version_moves_with_every_commit_of_any_node,
    a_listings_tables_version_moves_with_those_tables,
    new_pipelines_are_ordered_last_in_their_team,
    a_stale_config_version_is_refused_and_changes_nothing,
    concurrent_saves_of_one_version_let_exactly_one_through,
    config_versions_come_from_one_global_sequence,
    renaming_jobs_and_resources_by_old_name_keeps_their_ids,
    jobs_and_resources_missing_from_a_config_become_inactive,
    instanced_pipelines_are_told_apart_by_their_vars,
    pausing_and_exposing_a_pipeline_is_recorded,
    renaming_a_pipeline_renames_every_instance,
    ordering_pipelines_puts_the_named_ones_first,
    ordering_with_an_unknown_name_changes_nothing,
    instances_are_ordered_within_their_group,
    ordering_instances_with_unknown_vars_changes_nothing,
    archiving_drops_the_config_and_saving_again_restores_it,
    destroying_a_pipeline_removes_its_builds_and_events,
    job_builds_are_numbered_per_job_and_one_off_builds_globally,
    builds_are_paged_newest_first_with_inclusive_bounds,
    builds_are_paged_by_start_time_with_timestamps,
    an_inverted_page_range_is_invalid,
    reruns_are_named_after_their_original_and_listed_next_to_it,
    concurrent_triggers_get_distinct_build_numbers,
    builds_are_found_by_job_and_name_and_take_comments,
    starting_and_finishing_a_build_updates_its_job,
    pausing_a_job_is_recorded,
    events_are_appended_in_batches_with_consecutive_ids,
    event_pages_stop_at_their_byte_cap_but_hold_at_least_one_event,
    reaping_deletes_finished_builds_events_and_marks_them,
    the_log_collector_sees_unpaused_jobs_that_keep_fewer_logs,
    the_light_listings_leave_out_archived_pipelines_and_config_parts,
    workers_register_by_name_and_keep_their_team,
    heartbeats_update_counters_and_keep_draining_states,
    unresponsive_workers_stall_once_and_ephemeral_ones_are_deleted,
    landing_retiring_pruning_and_deleting,
    drained_landing_workers_land_and_retiring_ones_go,
    migrating_twice_is_a_no_op_and_data_survives_reopening,
    scopes_are_shared_by_key_unless_owned,
    concurrent_scope_lookups_create_one_scope,
    versions_are_saved_in_check_order_and_deduplicated,
    scheduling_marks_move_with_versions_pauses_and_builds,
    pins_and_check_results_are_recorded_on_the_resource,
    a_changed_source_forgets_the_resources_scope_and_check,
    build_inputs_outputs_and_plans_feed_the_scheduling_snapshot,
    each_jobs_latest_build_inputs_are_read_for_the_whole_pipeline,
    check_builds_name_their_resource,
    artifacts_are_team_scoped_and_attached_to_builds,
    artifacts_of_unknown_teams_or_builds_are_refused,
    signing_keys_are_listed_oldest_first_and_deleted_by_kid,
    a_lease_is_renewed_by_its_holder_and_taken_over_after_expiry,
    concurrent_nodes_never_both_get_a_lease,
    builds_to_stop_are_those_finished_aborted_or_deleted,
    started_builds_are_owned_renewed_and_adopted_once_lapsed,
    journal_entries_are_replaced_by_key_and_ride_with_events,
    the_wall_is_set_replaced_and_cleared_for_every_node,
    builds_of_a_version_are_its_inputs_and_outputs,
);
// --- helpers ---------------------------------------------------------------------------------

pub fn owner_auth(user: &str) -> TeamAuth {
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

pub async fn team(store: &Arc<dyn Store>, name: &str) -> TeamRow {
    store
        .upsert_team(name, &owner_auth("admin"), false)
        .await
        .expect("creating team")
        .0
}

pub fn job(name: &str) -> JobConfigRow {
    JobConfigRow {
        name: name.into(),
        old_name: None,
        config: json!({"name": name, "plan": []}),
    }
}

pub fn resource(name: &str) -> ResourceConfigRow {
    ResourceConfigRow {
        name: name.into(),
        old_name: None,
        type_: "git".into(),
        config: json!({"name": name, "type": "git", "source": {"uri": name}}),
    }
}

pub fn config_save(
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

pub async fn save(store: &Arc<dyn Store>, save: &SavePipeline) -> SavedPipeline {
    store.save_pipeline(save).await.expect("saving pipeline")
}

/// Starting a build as node `test` would: an empty plan, owned for 30 s.
pub fn starting(at: i64) -> BuildStart {
    BuildStart {
        at,
        plan: json!({"id": "plan"}),
        holder: "test".into(),
        expires: at + 30,
    }
}

pub async fn pipeline_with_job(store: &Arc<dyn Store>) -> (TeamRow, PipelineRow, JobRow) {
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

pub async fn job_build(store: &Arc<dyn Store>, team: &TeamRow, job: &JobRow) -> BuildRow {
    store
        .create_build(&NewBuild {
            team_id: team.id,
            job_id: Some(job.id),
            pipeline_id: Some(job.pipeline_id),
            created_by: "admin".into(),
            plan: None,
            at: 1_700_000_100,
            resource_id: None,
        })
        .await
        .expect("creating job build")
}

pub fn names(pipelines: &[PipelineRow]) -> Vec<String> {
    pipelines.iter().map(|p| p.name.clone()).collect()
}

pub fn ids(builds: &[BuildRow]) -> Vec<i64> {
    builds.iter().map(|b| b.id).collect()
}

pub fn page(from: Option<i64>, to: Option<i64>, limit: i64) -> Page {
    Page {
        from,
        to,
        limit,
        timestamps: false,
    }
}
