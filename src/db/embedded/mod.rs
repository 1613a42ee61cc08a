//! The embedded store: one SQLite file, so `concourse quickstart` needs nothing installed.
//! Same semantics as the PostgreSQL store (the conformance suite runs against both).

mod artifacts;
mod build_logs;
mod builds;
mod connection;
mod counting;
mod journal;
mod leases;
mod overview;
mod pipelines;
mod resources;
mod rows;
mod signing_keys;
mod wall;
mod workers;

use super::sql::{self, sqlite};
use super::*;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(crate) use connection::EmbeddedStore;
use connection::{is_foreign_key_violation, is_unique_violation, on_connection};
use rows::{build_row, first, job_row, resource_row, team_row, tuple, user_row};

fn auth_text(auth: &TeamAuth) -> Result<String> {
    serde_json::to_string(auth).map_err(|e| StoreError::Invalid(format!("team auth: {e}")))
}

#[async_trait]
impl Store for EmbeddedStore {
    /// The writer, the readers and the version's, all open for the store's life.
    fn connections(&self) -> usize {
        2 + self.readers.len()
    }

    fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    async fn upsert_team(
        &self,
        name: &str,
        auth: &TeamAuth,
        admin: bool,
    ) -> Result<(TeamRow, bool)> {
        let (name, auth) = (name.to_string(), auth_text(auth)?);
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists = tx
                .query_row(&sqlite(sql::TEAM_EXISTS), [&name], |_| Ok(()))
                .optional()?
                .is_some();
            let team = tx.query_row(
                &sql::team_upsert(sql::Dialect::Sqlite),
                params![name, auth, admin],
                team_row,
            )?;
            tx.commit()?;
            Ok((team, !exists))
        })
        .await
    }

    async fn team(&self, name: &str) -> Result<Option<TeamRow>> {
        let name = name.to_string();
        self.read(move |conn| {
            Ok(conn
                .query_row(&sqlite(sql::TEAM_BY_NAME), [name], team_row)
                .optional()?)
        })
        .await
    }

    async fn teams(&self) -> Result<Vec<TeamRow>> {
        self.read(|conn| {
            Ok(conn
                .prepare(&sqlite(sql::TEAMS))?
                .query_map([], team_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn rename_team(&self, old: &str, new: &str) -> Result<bool> {
        let (old, new) = (old.to_string(), new.to_string());
        self.call(
            move |conn| match conn.execute(&sqlite(sql::TEAM_RENAME), [&old, &new]) {
                Ok(n) => Ok(n > 0),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::Conflict(format!("team {new} already exists")))
                }
                Err(e) => Err(e.into()),
            },
        )
        .await
    }

    async fn destroy_team(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn| Ok(conn.execute(&sqlite(sql::TEAM_DELETE), [name])? > 0))
            .await
    }

    async fn save_access_token(&self, token: &str, claims: &Value, expires_at: i64) -> Result<()> {
        let (token, claims) = (token.to_string(), claims.to_string());
        self.call(move |conn| {
            conn.execute(&sqlite(sql::TOKEN_SAVE), params![token, claims, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn access_token(&self, token: &str) -> Result<Option<Value>> {
        let token = token.to_string();
        self.read(move |conn| {
            Ok(conn
                .query_row(&sqlite(sql::TOKEN_CLAIMS), [token], first)
                .optional()?)
        })
        .await
    }

    async fn delete_access_token(&self, token: &str) -> Result<()> {
        let token = token.to_string();
        self.call(move |conn| {
            conn.execute(&sqlite(sql::TOKEN_DELETE), [token])?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_access_tokens(&self, now: i64) -> Result<u64> {
        self.call(move |conn| Ok(conn.execute(&sqlite(sql::TOKENS_EXPIRED_DELETE), [now])? as u64))
            .await
    }

    async fn record_user_login(&self, user: &UserLogin) -> Result<()> {
        let user = user.clone();
        self.call(move |conn| {
            conn.execute(
                &sqlite(sql::USER_LOGIN),
                params![user.username, user.connector, user.sub, user.at],
            )?;
            Ok(())
        })
        .await
    }

    async fn users_since(&self, since: i64) -> Result<Vec<UserRow>> {
        self.read(move |conn| {
            Ok(conn
                .prepare(&sqlite(sql::USERS_SINCE))?
                .query_map([since], user_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn save_pipeline(&self, save: &SavePipeline) -> Result<SavedPipeline> {
        let save = save.clone();
        self.call(move |conn| pipelines::save_pipeline(conn, &save))
            .await
    }

    async fn pipeline(
        &self,
        team: &str,
        name: &str,
        instance_vars: Option<&Value>,
    ) -> Result<Option<PipelineRow>> {
        let (team, name, vars) = (
            team.to_string(),
            name.to_string(),
            instance_vars.map(canonical_json),
        );
        self.read(move |conn| pipelines::find_pipeline(conn, &team, &name, vars.as_deref()))
            .await
    }

    async fn pipeline_by_id(&self, id: i64) -> Result<Option<PipelineRow>> {
        self.read(move |conn| pipelines::find_pipeline_by_id(conn, id))
            .await
    }

    async fn pipelines(&self, team: Option<&str>) -> Result<Vec<PipelineRow>> {
        let team = team.map(str::to_string);
        self.read(move |conn| pipelines::list_pipelines(conn, team.as_deref()))
            .await
    }

    async fn live_pipelines(&self) -> Result<Vec<PipelineRow>> {
        self.read(|conn| pipelines::pipeline_rows(conn, &pipelines::SQL.live, []))
            .await
    }

    async fn pipelines_set_by(&self, job_id: i64) -> Result<Vec<PipelineRow>> {
        self.read(move |conn| pipelines::pipeline_rows(conn, &pipelines::SQL.set_by, [job_id]))
            .await
    }

    async fn pipeline_config(&self, pipeline_id: i64) -> Result<Option<(Value, i64)>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(&sqlite(sql::PIPELINE_CONFIG), [pipeline_id], tuple)
                .optional()?)
        })
        .await
    }

    async fn set_pipeline_paused(
        &self,
        pipeline_id: i64,
        paused: bool,
        by: &str,
        at: i64,
    ) -> Result<()> {
        let by = by.to_string();
        self.call(move |conn| {
            let n = conn.execute(
                &sqlite(sql::PIPELINE_SET_PAUSED),
                params![pipeline_id, paused, by, stored_time(at)],
            )?;
            found(n as u64, || format!("pipeline {pipeline_id}"))
        })
        .await
    }

    async fn set_pipeline_public(&self, pipeline_id: i64, public: bool) -> Result<()> {
        self.call(move |conn| {
            let n = conn.execute(
                &sqlite(sql::PIPELINE_SET_PUBLIC),
                params![pipeline_id, public],
            )?;
            found(n as u64, || format!("pipeline {pipeline_id}"))
        })
        .await
    }

    async fn rename_pipeline(&self, team_id: i64, old: &str, new: &str) -> Result<bool> {
        let (old, new) = (old.to_string(), new.to_string());
        self.call(move |conn| {
            match conn.execute(&sqlite(sql::PIPELINE_RENAME), params![team_id, old, new]) {
                Ok(n) => Ok(n > 0),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                    "pipeline {new} already exists"
                ))),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn order_pipelines(&self, team_id: i64, names: &[String]) -> Result<()> {
        let names = names.to_vec();
        self.call(move |conn| pipelines::order_pipelines(conn, team_id, &names))
            .await
    }

    async fn order_instances(
        &self,
        team_id: i64,
        name: &str,
        instance_vars: &[Option<Value>],
    ) -> Result<()> {
        let (name, vars) = (name.to_string(), instance_vars.to_vec());
        self.call(move |conn| pipelines::order_instances(conn, team_id, &name, &vars))
            .await
    }

    async fn archive_pipeline(&self, pipeline_id: i64, by: &str, at: i64) -> Result<()> {
        let by = by.to_string();
        self.call(move |conn| pipelines::archive_pipeline(conn, pipeline_id, &by, at))
            .await
    }

    async fn destroy_pipeline(&self, pipeline_id: i64) -> Result<()> {
        self.call(move |conn| {
            let n = conn.execute(&sqlite(sql::PIPELINE_DELETE), [pipeline_id])?;
            found(n as u64, || format!("pipeline {pipeline_id}"))
        })
        .await
    }

    async fn jobs(&self, pipeline_id: i64) -> Result<Vec<JobRow>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&pipelines::SQL.jobs)?
                .query_map([pipeline_id], job_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn job(&self, pipeline_id: i64, name: &str) -> Result<Option<JobRow>> {
        let name = name.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&pipelines::SQL.job)?
                .query_row(params![pipeline_id, name], job_row)
                .optional()?)
        })
        .await
    }

    async fn set_job_paused(&self, job_id: i64, paused: bool, by: &str, at: i64) -> Result<()> {
        let by = by.to_string();
        self.call(move |conn| {
            let n = conn.execute(
                &sqlite(sql::JOB_SET_PAUSED),
                params![job_id, paused, by, stored_time(at)],
            )?;
            found(n as u64, || format!("job {job_id}"))
        })
        .await
    }

    async fn resources(&self, pipeline_id: i64) -> Result<Vec<ResourceRow>> {
        self.read(move |conn| {
            Ok(conn
                .prepare(&sqlite(sql::RESOURCES_OF_PIPELINE))?
                .query_map([pipeline_id], resource_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn resource(&self, pipeline_id: i64, name: &str) -> Result<Option<ResourceRow>> {
        let name = name.to_string();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    &sqlite(sql::RESOURCE_BY_NAME),
                    params![pipeline_id, name],
                    resource_row,
                )
                .optional()?)
        })
        .await
    }

    async fn job_build(&self, job_id: i64, name: &str) -> Result<Option<BuildRow>> {
        let name = name.to_string();
        self.read(move |conn| {
            Ok(conn
                .query_row(&builds::SQL.of_job, params![job_id, name], build_row)
                .optional()?)
        })
        .await
    }

    async fn rerun_build(&self, build_id: i64, created_by: &str, at: i64) -> Result<BuildRow> {
        let created_by = created_by.to_string();
        self.call(move |conn| builds::rerun_build(conn, build_id, &created_by, at))
            .await
    }

    async fn set_build_comment(&self, build_id: i64, comment: &str) -> Result<()> {
        let comment = comment.to_string();
        self.call(move |conn| {
            let n = conn.execute(&builds::SQL.set_comment, params![build_id, comment])?;
            found(n as u64, || format!("build {build_id}"))
        })
        .await
    }

    async fn create_build(&self, new: &NewBuild) -> Result<BuildRow> {
        let new = new.clone();
        self.call(move |conn| builds::create_build(conn, &new))
            .await
    }

    async fn build(&self, id: i64) -> Result<Option<BuildRow>> {
        self.read(move |conn| builds::find_build(conn, id)).await
    }

    async fn builds_page(&self, of: BuildsOf, page: &Page) -> Result<BuildsPage> {
        let page = page.clone();
        self.read(move |conn| builds::builds_page(conn, of, &page))
            .await
    }

    async fn job_builds(&self, job_id: i64, page: &Page) -> Result<Vec<BuildRow>> {
        let page = page.clone();
        self.read(move |conn| builds::job_builds(conn, job_id, &page))
            .await
    }

    async fn start_build(&self, id: i64, start: &BuildStart) -> Result<bool> {
        let s = start.clone();
        self.call(move |conn| {
            let n = conn.execute(
                &builds::SQL.start,
                params![id, s.at, s.plan.to_string(), s.holder, s.expires],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn finish_build(&self, id: i64, status: BuildStatus, at: i64) -> Result<()> {
        self.call(move |conn| builds::finish_build(conn, id, status, at))
            .await
    }

    async fn append_build_events(&self, build_id: i64, events: &[Value]) -> Result<i64> {
        let events: Vec<String> = events.iter().map(Value::to_string).collect();
        self.call(move |conn| builds::append_build_events(conn, build_id, &events, &[]))
            .await
    }

    async fn build_events(
        &self,
        build_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Value)>> {
        let limit = if limit <= 0 { i64::MAX } else { limit };
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&builds::SQL.events)?
                .query_map([build_id, after, limit], tuple)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn register_worker(
        &self,
        worker: &Worker,
        ttl: Option<Duration>,
        at: i64,
    ) -> Result<WorkerRow> {
        let payload = stored_worker_payload(worker)?;
        let worker = worker.clone();
        let expires_at = worker_expiry(ttl, at);
        self.call(move |conn| workers::register_worker(conn, &worker, &payload, expires_at))
            .await
    }

    async fn heartbeat_worker(
        &self,
        name: &str,
        active_containers: i64,
        active_volumes: i64,
        ttl: Option<Duration>,
        at: i64,
    ) -> Result<Option<WorkerRow>> {
        let name = name.to_string();
        let expires_at = worker_expiry(ttl, at);
        self.call(move |conn| {
            workers::heartbeat_worker(conn, &name, active_containers, active_volumes, expires_at)
        })
        .await
    }

    async fn worker(&self, name: &str) -> Result<Option<WorkerRow>> {
        let name = name.to_string();
        self.read(move |conn| workers::worker(conn, &name)).await
    }

    async fn workers(&self) -> Result<Vec<WorkerRow>> {
        self.read(workers::workers).await
    }

    async fn land_worker(&self, name: &str) -> Result<Option<WorkerRow>> {
        let name = name.to_string();
        self.call(move |conn| workers::land_worker(conn, &name))
            .await
    }

    async fn retire_worker(&self, name: &str) -> Result<Option<WorkerRow>> {
        let name = name.to_string();
        self.call(move |conn| workers::retire_worker(conn, &name))
            .await
    }

    async fn prune_worker(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn| workers::prune_worker(conn, &name))
            .await
    }

    async fn delete_worker(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn| workers::delete_worker(conn, &name))
            .await
    }

    async fn stall_unresponsive_workers(&self, now: i64) -> Result<Vec<String>> {
        self.call(move |conn| workers::stall_unresponsive_workers(conn, now))
            .await
    }

    async fn delete_expired_ephemeral_workers(&self, now: i64) -> Result<Vec<String>> {
        self.call(move |conn| workers::delete_expired_ephemeral_workers(conn, now))
            .await
    }

    async fn land_drained_worker(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn| workers::land_drained_worker(conn, &name))
            .await
    }

    async fn delete_retired_worker(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn| workers::delete_retired_worker(conn, &name))
            .await
    }
    async fn resource_scope(&self, base: &str, key: &str, owner: Option<i64>) -> Result<i64> {
        let (base, key) = (base.to_string(), key.to_string());
        self.call(move |c| resources::resource_scope(c, &base, &key, owner))
            .await
    }
    async fn set_resource_scope(&self, resource_id: i64, scope_id: i64) -> Result<()> {
        self.call(move |c| resources::set_resource_scope(c, resource_id, scope_id))
            .await
    }
    async fn save_versions(&self, scope_id: i64, versions: &[NewVersion]) -> Result<usize> {
        let versions = versions.to_vec();
        self.call(move |c| resources::save_versions(c, scope_id, &versions))
            .await
    }
    async fn versions(&self, scope_id: i64, page: &Page) -> Result<Vec<VersionRow>> {
        let page = page.clone();
        self.read(move |c| resources::versions(c, scope_id, &page))
            .await
    }
    async fn version(&self, id: i64) -> Result<Option<VersionRow>> {
        self.read(move |c| resources::version(c, id)).await
    }
    async fn find_version(&self, scope_id: i64, version: &Value) -> Result<Option<VersionRow>> {
        let v = version.clone();
        self.read(move |c| resources::find_version(c, scope_id, &v))
            .await
    }
    async fn set_version_enabled(&self, id: i64, enabled: bool) -> Result<bool> {
        self.call(move |c| resources::set_version_enabled(c, id, enabled))
            .await
    }
    async fn pin_resource(&self, id: i64, v: Option<&Value>, comment: Option<&str>) -> Result<()> {
        let (v, comment) = (v.cloned(), comment.map(String::from));
        self.call(move |c| resources::pin_resource(c, id, v.as_ref(), comment.as_deref()))
            .await
    }
    async fn record_resource_check(
        &self,
        id: i64,
        at: i64,
        b: Option<i64>,
        ok: bool,
    ) -> Result<()> {
        self.call(move |c| resources::record_resource_check(c, id, at, b, ok))
            .await
    }
    async fn scheduling_snapshot(&self, pipeline_id: i64) -> Result<SchedulingSnapshot> {
        self.read(move |c| resources::scheduling_snapshot(c, pipeline_id))
            .await
    }
    async fn save_build_inputs(&self, build_id: i64, inputs: &[BuildInputRow]) -> Result<()> {
        let inputs = inputs.to_vec();
        self.call(move |c| resources::save_build_inputs(c, build_id, &inputs))
            .await
    }
    async fn build_inputs(&self, build_id: i64) -> Result<Vec<BuildInputRow>> {
        self.read(move |c| resources::build_inputs(c, build_id))
            .await
    }
    async fn latest_build_inputs(&self, pipeline_id: i64) -> Result<Vec<(i64, BuildInputRow)>> {
        self.read(move |c| resources::latest_build_inputs(c, pipeline_id))
            .await
    }
    async fn save_build_output(&self, build_id: i64, output: &BuildOutputRow) -> Result<()> {
        let o = output.clone();
        self.call(move |c| resources::save_build_output(c, build_id, &o))
            .await
    }
    async fn build_outputs(&self, build_id: i64) -> Result<Vec<BuildOutputRow>> {
        self.read(move |c| resources::build_outputs(c, build_id))
            .await
    }
    async fn builds_with_status(&self, statuses: &[BuildStatus]) -> Result<Vec<BuildRow>> {
        let statuses = statuses.to_vec();
        self.read(move |c| resources::builds_with_status(c, &statuses))
            .await
    }
}
