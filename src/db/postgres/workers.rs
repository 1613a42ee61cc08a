//! Worker registration and lifecycle on PostgreSQL. Each transition is one guarded
//! statement, so two web nodes cannot both make it.

use super::super::rows;
use super::super::sql::{Dialect, WorkerSql};
use super::super::*;
use super::cached::Cached;
use super::PgStore;
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;

static SQL: LazyLock<WorkerSql> = LazyLock::new(|| WorkerSql::new(Dialect::Postgres));

impl PgStore {
    async fn one_worker(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<WorkerRow>> {
        let client = self.pool.get().await?;
        client
            .query_opt_cached(sql, params)
            .await?
            .as_ref()
            .map(rows::worker_row)
            .transpose()
    }

    async fn worker_names(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>> {
        let client = self.pool.get().await?;
        let mut names: Vec<String> = client
            .query_cached(sql, params)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        names.sort();
        Ok(names)
    }

    pub(super) async fn register_worker_row(
        &self,
        worker: &Worker,
        payload: &Value,
        expires_at: i64,
    ) -> Result<WorkerRow> {
        let client = self.pool.get().await?;
        let team_id: Option<i64> = if worker.team.is_empty() {
            None
        } else {
            Some(
                client
                    .query_opt_cached(&SQL.team_id, &[&worker.team])
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {}", worker.team)))?
                    .try_get(0)?,
            )
        };
        let state = worker.state.unwrap_or(WorkerState::Running).as_str();
        let row = client
            .query_opt_cached(
                &SQL.register,
                &[&worker.name, &team_id, payload, &state, &expires_at],
            )
            .await
            .map_err(|e| {
                if super::is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("team {}", worker.team))
                } else {
                    e.into()
                }
            })?;
        row.as_ref()
            .map(rows::worker_row)
            .transpose()?
            .ok_or_else(|| StoreError::Conflict(WORKER_TEAM_CONFLICT.into()))
    }

    pub(super) async fn heartbeat_worker_row(
        &self,
        name: &str,
        active_containers: i64,
        active_volumes: i64,
        expires_at: i64,
    ) -> Result<Option<WorkerRow>> {
        self.one_worker(
            &SQL.heartbeat,
            &[&name, &expires_at, &active_containers, &active_volumes],
        )
        .await
    }

    pub(super) async fn worker_row(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.one_worker(&SQL.by_name, &[&name]).await
    }

    pub(super) async fn worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let client = self.pool.get().await?;
        client
            .query_cached(&SQL.all, &[])
            .await?
            .iter()
            .map(rows::worker_row)
            .collect()
    }

    pub(super) async fn land_worker_row(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.one_worker(&SQL.land, &[&name]).await
    }

    pub(super) async fn retire_worker_row(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.one_worker(&SQL.retire, &[&name]).await
    }

    pub(super) async fn prune_worker_row(&self, name: &str) -> Result<bool> {
        let deleted = {
            let client = self.pool.get().await?;
            client.execute_cached(&SQL.prune, &[&name]).await?
        };
        if deleted > 0 {
            return Ok(true);
        }
        match self.worker_row(name).await? {
            Some(_) => Err(StoreError::Invalid(PRUNE_RUNNING_WORKER.into())),
            None => Ok(false),
        }
    }

    pub(super) async fn delete_worker_row(&self, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client.execute_cached(&SQL.delete, &[&name]).await? > 0)
    }

    pub(super) async fn stall_workers(&self, now: i64) -> Result<Vec<String>> {
        self.worker_names(&SQL.stall, &[&now]).await
    }

    pub(super) async fn delete_ephemeral_workers(&self, now: i64) -> Result<Vec<String>> {
        self.worker_names(&SQL.delete_expired_ephemeral, &[&now])
            .await
    }

    pub(super) async fn land_drained(&self, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client.execute_cached(&SQL.land_drained, &[&name]).await? > 0)
    }

    pub(super) async fn delete_retired(&self, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client.execute_cached(&SQL.delete_retired, &[&name]).await? > 0)
    }
}
