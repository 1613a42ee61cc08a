//! The PostgreSQL store: the system of record, shared by every web node.

mod artifacts;
mod build_logs;
mod builds;
mod cached;
mod counting;
mod journal;
mod leases;
mod overview;
mod pipelines;
mod resources;
mod signing_keys;
mod wall;
mod workers;

use super::migrations::{self, CREATE_SCHEMA_MIGRATIONS, POSTGRES_LOCK_ID};
use super::rows::{build_row, job_row, resource_row, team_row, tuple, user_row};
use super::sql;
use super::*;
use anyhow::Context as _;
use cached::Cached;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Names are listed in byte order (`COLLATE "C"`) whatever the database's collation, so
/// both stores list alike (SQLite compares text bytewise).
pub(crate) struct PgStore {
    pool: Pool,
    /// Statements run on any of the pool's connections (`concourse_db_queries_total`).
    queries: Arc<AtomicU64>,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => {
                StoreError::Conflict(db.message().to_string())
            }
            // Connection exceptions, a server shutting down or starting, no free slot.
            Some(db)
                if db.code().code().starts_with("08")
                    || db.code().code().starts_with("57P")
                    || *db.code() == SqlState::TOO_MANY_CONNECTIONS =>
            {
                StoreError::Unavailable(db.message().to_string())
            }
            Some(db) => StoreError::Backend(format!("{}: {}", db.code().code(), db.message())),
            None if e.is_closed()
                || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            None => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // No connection could be made or recycled in time. The driver's own error says why
        // only in its sources (`db error` → the server's message, an I/O error → its cause).
        let why = match &e {
            deadpool_postgres::PoolError::Backend(e) => {
                let mut why = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                why
            }
            e => e.to_string(),
        };
        StoreError::Unavailable(format!("postgres connection pool: {why}"))
    }
}

/// Whether `e` is a foreign-key violation (a referenced row does not exist).
fn is_foreign_key_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Where the store lives, for error messages.
fn address(config: &PostgresConfig) -> String {
    match &config.socket {
        Some(dir) => format!("socket {dir} (database {})", config.database),
        None => format!("{}:{}/{}", config.host, port(config), config.database),
    }
}

fn port(config: &PostgresConfig) -> u16 {
    if config.port == 0 {
        5432
    } else {
        config.port
    }
}

/// Schema names go into `search_path` and DDL unquoted-safe, so only plain identifiers pass.
pub(crate) fn valid_schema_name(schema: &str) -> bool {
    let mut chars = schema.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && schema.len() <= 63
}

/// The driver configuration for `config` (shared with `testing`).
pub(crate) fn driver_config(config: &PostgresConfig) -> anyhow::Result<tokio_postgres::Config> {
    let addr = address(config);
    match config.sslmode.as_str() {
        "" | "disable" => {}
        other => anyhow::bail!(
            "postgres at {addr}: sslmode {other:?} is not supported yet (TLS to PostgreSQL is not \
             implemented); use --postgres-sslmode=disable"
        ),
    }
    let mut pg = tokio_postgres::Config::new();
    match &config.socket {
        Some(dir) => pg.host_path(dir),
        None => pg.host(&config.host),
    };
    pg.port(port(config))
        .user(&config.user)
        .dbname(&config.database)
        .ssl_mode(tokio_postgres::config::SslMode::Disable)
        .application_name("concourse")
        .connect_timeout(Duration::from_secs(10));
    if !config.password.is_empty() {
        pg.password(&config.password);
    }
    if let Some(schema) = &config.schema {
        if !valid_schema_name(schema) {
            anyhow::bail!(
                "postgres schema {schema:?} is not a plain identifier (letters, digits, _)"
            );
        }
        // Set at connection start-up, so every pooled connection (including ones the pool
        // opens later) resolves our tables and sequences in this schema.
        pg.options(format!("-c search_path={schema}"));
    }
    Ok(pg)
}

impl PgStore {
    pub(crate) async fn connect(config: &PostgresConfig) -> anyhow::Result<Self> {
        let addr = address(config);
        let pg = driver_config(config)?;
        let queries = Arc::new(AtomicU64::new(0));
        let manager = Manager::from_connect(
            pg,
            counting::CountingConnect {
                queries: queries.clone(),
            },
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            // Bounded waits: with the database gone, callers get an error (a 503 at the
            // API) instead of hanging.
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(10)))
            .build()
            .with_context(|| format!("creating the connection pool for postgres at {addr}"))?;
        let store = PgStore { pool, queries };
        store
            .migrate(config.schema.as_deref())
            .await
            .with_context(|| format!("connecting to postgres at {addr}"))?;
        Ok(store)
    }

    /// Applies missing migrations in one transaction under the migration advisory lock.
    async fn migrate(&self, schema: Option<&str>) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POSTGRES_LOCK_ID])
            .await?;
        if let Some(schema) = schema {
            // Checked by `driver_config` to be a plain identifier.
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        tx.batch_execute(CREATE_SCHEMA_MIGRATIONS).await?;
        let applied: Vec<i64> = tx
            .query(migrations::APPLIED_MIGRATIONS, &[])
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        let now = crate::clock::now();
        for migration in migrations::POSTGRES {
            if applied.contains(&migration.version) {
                continue;
            }
            tx.batch_execute(migration.sql).await.map_err(|e| {
                StoreError::Backend(format!(
                    "migration {:04}_{}: {}",
                    migration.version,
                    migration.name,
                    StoreError::from(e)
                ))
            })?;
            tx.execute(
                migrations::RECORD_MIGRATION,
                &[&migration.version, &migration.name, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn auth_json(auth: &TeamAuth) -> Result<Value> {
    serde_json::to_value(auth).map_err(|e| StoreError::Invalid(format!("team auth: {e}")))
}

#[async_trait]
impl Store for PgStore {
    fn connections(&self) -> usize {
        self.pool.status().size
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
        let client = self.pool.get().await?;
        let row = client
            .query_one_cached(
                &sql::team_upsert(sql::Dialect::Postgres),
                &[&name, &auth_json(auth)?, &admin],
            )
            .await?;
        Ok((team_row(&row)?, row.try_get(4)?))
    }

    async fn team(&self, name: &str) -> Result<Option<TeamRow>> {
        let client = self.pool.get().await?;
        let row = client.query_opt_cached(sql::TEAM_BY_NAME, &[&name]).await?;
        row.as_ref().map(team_row).transpose()
    }

    async fn teams(&self) -> Result<Vec<TeamRow>> {
        let client = self.pool.get().await?;
        let rows = client.query_cached(sql::TEAMS, &[]).await?;
        rows.iter().map(team_row).collect()
    }

    async fn rename_team(&self, old: &str, new: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        match client.execute_cached(sql::TEAM_RENAME, &[&old, &new]).await {
            Ok(n) => Ok(n > 0),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("team {new} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn destroy_team(&self, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client.execute_cached(sql::TEAM_DELETE, &[&name]).await? > 0)
    }

    async fn save_access_token(&self, token: &str, claims: &Value, expires_at: i64) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute_cached(sql::TOKEN_SAVE, &[&token, claims, &expires_at])
            .await?;
        Ok(())
    }

    async fn access_token(&self, token: &str) -> Result<Option<Value>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(sql::TOKEN_CLAIMS, &[&token])
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn delete_access_token(&self, token: &str) -> Result<()> {
        let client = self.pool.get().await?;
        client.execute_cached(sql::TOKEN_DELETE, &[&token]).await?;
        Ok(())
    }

    async fn delete_expired_access_tokens(&self, now: i64) -> Result<u64> {
        let client = self.pool.get().await?;
        Ok(client
            .execute_cached(sql::TOKENS_EXPIRED_DELETE, &[&now])
            .await?)
    }

    async fn record_user_login(&self, user: &UserLogin) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute_cached(
                sql::USER_LOGIN,
                &[&user.username, &user.connector, &user.sub, &user.at],
            )
            .await?;
        Ok(())
    }

    async fn users_since(&self, since: i64) -> Result<Vec<UserRow>> {
        let client = self.pool.get().await?;
        let rows = client.query_cached(sql::USERS_SINCE, &[&since]).await?;
        rows.iter().map(user_row).collect()
    }

    async fn save_pipeline(&self, save: &SavePipeline) -> Result<SavedPipeline> {
        self.save_pipeline_tx(save).await
    }

    async fn pipeline(
        &self,
        team: &str,
        name: &str,
        instance_vars: Option<&Value>,
    ) -> Result<Option<PipelineRow>> {
        self.find_pipeline(team, name, instance_vars).await
    }

    async fn pipeline_by_id(&self, id: i64) -> Result<Option<PipelineRow>> {
        self.find_pipeline_by_id(id).await
    }

    async fn pipelines(&self, team: Option<&str>) -> Result<Vec<PipelineRow>> {
        self.list_pipelines(team).await
    }

    async fn live_pipelines(&self) -> Result<Vec<PipelineRow>> {
        let client = self.pool.get().await?;
        all(&client, &pipelines::SQL.live, &[], rows::pipeline_row).await
    }

    async fn pipelines_set_by(&self, job_id: i64) -> Result<Vec<PipelineRow>> {
        let client = self.pool.get().await?;
        let sql = &pipelines::SQL.set_by;
        all(&client, sql, &[&job_id], rows::pipeline_row).await
    }

    async fn pipeline_config(&self, pipeline_id: i64) -> Result<Option<(Value, i64)>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(sql::PIPELINE_CONFIG, &[&pipeline_id])
            .await?;
        Ok(row
            .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?)
    }

    async fn set_pipeline_paused(
        &self,
        pipeline_id: i64,
        paused: bool,
        by: &str,
        at: i64,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(
                sql::PIPELINE_SET_PAUSED,
                &[&pipeline_id, &paused, &by, &stored_time(at)],
            )
            .await?;
        found(n, || format!("pipeline {pipeline_id}"))
    }

    async fn set_pipeline_public(&self, pipeline_id: i64, public: bool) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(sql::PIPELINE_SET_PUBLIC, &[&pipeline_id, &public])
            .await?;
        found(n, || format!("pipeline {pipeline_id}"))
    }

    async fn rename_pipeline(&self, team_id: i64, old: &str, new: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        match client
            .execute_cached(sql::PIPELINE_RENAME, &[&team_id, &old, &new])
            .await
        {
            Ok(n) => Ok(n > 0),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "pipeline {new} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn order_pipelines(&self, team_id: i64, names: &[String]) -> Result<()> {
        self.order_pipelines_tx(team_id, names).await
    }

    async fn order_instances(
        &self,
        team_id: i64,
        name: &str,
        instance_vars: &[Option<Value>],
    ) -> Result<()> {
        self.order_instances_tx(team_id, name, instance_vars).await
    }

    async fn archive_pipeline(&self, pipeline_id: i64, by: &str, at: i64) -> Result<()> {
        self.archive_pipeline_tx(pipeline_id, by, at).await
    }

    async fn destroy_pipeline(&self, pipeline_id: i64) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(sql::PIPELINE_DELETE, &[&pipeline_id])
            .await?;
        found(n, || format!("pipeline {pipeline_id}"))
    }

    async fn jobs(&self, pipeline_id: i64) -> Result<Vec<JobRow>> {
        let client = self.pool.get().await?;
        all(&client, &pipelines::SQL.jobs, &[&pipeline_id], job_row).await
    }

    async fn job(&self, pipeline_id: i64, name: &str) -> Result<Option<JobRow>> {
        let client = self.pool.get().await?;
        opt(
            &client,
            &pipelines::SQL.job,
            &[&pipeline_id, &name],
            job_row,
        )
        .await
    }

    async fn set_job_paused(&self, job_id: i64, paused: bool, by: &str, at: i64) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(
                sql::JOB_SET_PAUSED,
                &[&job_id, &paused, &by, &stored_time(at)],
            )
            .await?;
        found(n, || format!("job {job_id}"))
    }

    async fn resources(&self, pipeline_id: i64) -> Result<Vec<ResourceRow>> {
        let client = self.pool.get().await?;
        let rows = client
            .query_cached(sql::RESOURCES_OF_PIPELINE, &[&pipeline_id])
            .await?;
        rows.iter().map(resource_row).collect()
    }

    async fn resource(&self, pipeline_id: i64, name: &str) -> Result<Option<ResourceRow>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(sql::RESOURCE_BY_NAME, &[&pipeline_id, &name])
            .await?;
        row.as_ref().map(resource_row).transpose()
    }

    async fn job_build(&self, job_id: i64, name: &str) -> Result<Option<BuildRow>> {
        let client = self.pool.get().await?;
        opt(&client, &builds::SQL.of_job, &[&job_id, &name], build_row).await
    }

    async fn rerun_build(&self, build_id: i64, created_by: &str, at: i64) -> Result<BuildRow> {
        self.rerun_build_tx(build_id, created_by, at).await
    }

    async fn set_build_comment(&self, build_id: i64, comment: &str) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(&builds::SQL.set_comment, &[&build_id, &comment])
            .await?;
        found(n, || format!("build {build_id}"))
    }

    async fn create_build(&self, new: &NewBuild) -> Result<BuildRow> {
        self.create_build_tx(new).await
    }

    async fn build(&self, id: i64) -> Result<Option<BuildRow>> {
        let client = self.pool.get().await?;
        opt(&client, &builds::SQL.by_id, &[&id], build_row).await
    }

    async fn builds_page(&self, of: BuildsOf, page: &Page) -> Result<BuildsPage> {
        self.builds_page_tx(of, page).await
    }

    async fn job_builds(&self, job_id: i64, page: &Page) -> Result<Vec<BuildRow>> {
        self.job_builds_page(job_id, page).await
    }

    async fn start_build(&self, id: i64, s: &BuildStart) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(
                &builds::SQL.start,
                &[&id, &s.at, &s.plan, &s.holder, &s.expires],
            )
            .await?;
        Ok(n > 0)
    }

    async fn finish_build(&self, id: i64, status: BuildStatus, at: i64) -> Result<()> {
        self.finish_build_tx(id, status, at).await
    }

    async fn append_build_events(&self, build_id: i64, events: &[Value]) -> Result<i64> {
        self.append_build_events_batch(build_id, events, &[]).await
    }

    async fn build_events(
        &self,
        build_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Value)>> {
        let client = self.pool.get().await?;
        let limit = if limit <= 0 { i64::MAX } else { limit };
        all(
            &client,
            &builds::SQL.events,
            &[&build_id, &after, &limit],
            tuple,
        )
        .await
    }

    async fn register_worker(
        &self,
        worker: &Worker,
        ttl: Option<Duration>,
        at: i64,
    ) -> Result<WorkerRow> {
        let payload = stored_worker_payload(worker)?;
        self.register_worker_row(worker, &payload, worker_expiry(ttl, at))
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
        self.heartbeat_worker_row(
            name,
            active_containers,
            active_volumes,
            worker_expiry(ttl, at),
        )
        .await
    }

    async fn worker(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.worker_row(name).await
    }

    async fn workers(&self) -> Result<Vec<WorkerRow>> {
        self.worker_rows().await
    }

    async fn land_worker(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.land_worker_row(name).await
    }

    async fn retire_worker(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.retire_worker_row(name).await
    }

    async fn prune_worker(&self, name: &str) -> Result<bool> {
        self.prune_worker_row(name).await
    }

    async fn delete_worker(&self, name: &str) -> Result<bool> {
        self.delete_worker_row(name).await
    }

    async fn stall_unresponsive_workers(&self, now: i64) -> Result<Vec<String>> {
        self.stall_workers(now).await
    }

    async fn delete_expired_ephemeral_workers(&self, now: i64) -> Result<Vec<String>> {
        self.delete_ephemeral_workers(now).await
    }

    async fn land_drained_worker(&self, name: &str) -> Result<bool> {
        self.land_drained(name).await
    }

    async fn delete_retired_worker(&self, name: &str) -> Result<bool> {
        self.delete_retired(name).await
    }
    async fn resource_scope(&self, base: &str, key: &str, owner: Option<i64>) -> Result<i64> {
        self.resource_scope_tx(base, key, owner).await
    }
    async fn set_resource_scope(&self, resource_id: i64, scope_id: i64) -> Result<()> {
        self.set_resource_scope_tx(resource_id, scope_id).await
    }
    async fn save_versions(&self, scope_id: i64, versions: &[NewVersion]) -> Result<usize> {
        self.save_versions_tx(scope_id, versions).await
    }
    async fn versions(&self, scope_id: i64, page: &Page) -> Result<Vec<VersionRow>> {
        self.versions_tx(scope_id, page).await
    }
    async fn version(&self, id: i64) -> Result<Option<VersionRow>> {
        self.version_tx(id).await
    }
    async fn find_version(&self, scope_id: i64, version: &Value) -> Result<Option<VersionRow>> {
        self.find_version_tx(scope_id, version).await
    }
    async fn set_version_enabled(&self, id: i64, enabled: bool) -> Result<bool> {
        self.set_version_enabled_tx(id, enabled).await
    }
    async fn pin_resource(&self, id: i64, v: Option<&Value>, comment: Option<&str>) -> Result<()> {
        self.pin_resource_tx(id, v, comment).await
    }
    async fn record_resource_check(
        &self,
        id: i64,
        at: i64,
        b: Option<i64>,
        ok: bool,
    ) -> Result<()> {
        self.record_resource_check_tx(id, at, b, ok).await
    }
    async fn scheduling_snapshot(&self, pipeline_id: i64) -> Result<SchedulingSnapshot> {
        self.scheduling_snapshot_tx(pipeline_id).await
    }
    async fn save_build_inputs(&self, build_id: i64, inputs: &[BuildInputRow]) -> Result<()> {
        self.save_build_inputs_tx(build_id, inputs).await
    }
    async fn build_inputs(&self, build_id: i64) -> Result<Vec<BuildInputRow>> {
        self.build_inputs_tx(build_id).await
    }
    async fn latest_build_inputs(&self, pipeline_id: i64) -> Result<Vec<(i64, BuildInputRow)>> {
        self.latest_build_inputs_tx(pipeline_id).await
    }
    async fn save_build_output(&self, build_id: i64, output: &BuildOutputRow) -> Result<()> {
        self.save_build_output_tx(build_id, output).await
    }
    async fn build_outputs(&self, build_id: i64) -> Result<Vec<BuildOutputRow>> {
        self.build_outputs_tx(build_id).await
    }
    async fn builds_with_status(&self, statuses: &[BuildStatus]) -> Result<Vec<BuildRow>> {
        self.builds_with_status_tx(statuses).await
    }
}

/// The row of `sql`, if any, through a shared decoder (`db::rows`).
async fn opt<T>(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    decode: impl Fn(&Row) -> Result<T>,
) -> Result<Option<T>> {
    c.query_opt_cached(sql, params)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// The rows of `sql` through a shared decoder (`db::rows`).
async fn all<T>(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    decode: impl Fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    c.query_cached(sql, params)
        .await?
        .iter()
        .map(decode)
        .collect()
}
