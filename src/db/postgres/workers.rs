//! Worker registration and lifecycle on PostgreSQL. Each transition is one guarded
//! statement, so two web nodes cannot both make it.

use super::super::rows;
use super::super::sql::{WORKER_COLUMNS, WORKER_SELECT};
use super::super::*;
use super::PgStore;
use tokio_postgres::types::ToSql;

impl PgStore {
    async fn one_worker(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<WorkerRow>> {
        let client = self.pool.get().await?;
        client
            .query_opt(sql, params)
            .await?
            .as_ref()
            .map(rows::worker_row)
            .transpose()
    }

    async fn worker_names(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>> {
        let client = self.pool.get().await?;
        let mut names: Vec<String> = client
            .query(sql, params)
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
                    .query_opt("SELECT id FROM teams WHERE name = $1", &[&worker.team])
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {}", worker.team)))?
                    .try_get(0)?,
            )
        };
        let state = worker.state.unwrap_or(WorkerState::Running).as_str();
        // The conditional DO UPDATE returns no row when the name belongs to another team's
        // (or a global) worker: the check and the write are one statement.
        let row = client
            .query_opt(
                &format!(
                    "INSERT INTO workers (name, team_id, payload, state, expires_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (name) DO UPDATE SET payload = EXCLUDED.payload, state = EXCLUDED.state, \
                     expires_at = EXCLUDED.expires_at \
                     WHERE workers.team_id IS NOT DISTINCT FROM EXCLUDED.team_id \
                     RETURNING {WORKER_COLUMNS}"
                ),
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
            &format!(
                "UPDATE workers SET expires_at = $2, \
                 state = CASE WHEN state IN ('landing', 'landed', 'retiring') THEN state ELSE 'running' END, \
                 payload = jsonb_set(jsonb_set(payload, '{{active_containers}}', to_jsonb($3::bigint)), \
                 '{{active_volumes}}', to_jsonb($4::bigint)) \
                 WHERE name = $1 RETURNING {WORKER_COLUMNS}"
            ),
            &[&name, &expires_at, &active_containers, &active_volumes],
        )
        .await
    }

    pub(super) async fn worker_row(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.one_worker(&format!("{WORKER_SELECT} WHERE name = $1"), &[&name])
            .await
    }

    pub(super) async fn worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let client = self.pool.get().await?;
        client
            .query(&format!("{WORKER_SELECT} ORDER BY name COLLATE \"C\""), &[])
            .await?
            .iter()
            .map(rows::worker_row)
            .collect()
    }

    pub(super) async fn land_worker_row(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.one_worker(
            &format!(
                "UPDATE workers SET state = CASE WHEN state = 'landed' THEN 'landed' ELSE 'landing' END \
                 WHERE name = $1 RETURNING {WORKER_COLUMNS}"
            ),
            &[&name],
        )
        .await
    }

    pub(super) async fn retire_worker_row(&self, name: &str) -> Result<Option<WorkerRow>> {
        self.one_worker(
            &format!(
                "UPDATE workers SET state = 'retiring' WHERE name = $1 RETURNING {WORKER_COLUMNS}"
            ),
            &[&name],
        )
        .await
    }

    pub(super) async fn prune_worker_row(&self, name: &str) -> Result<bool> {
        let deleted = {
            let client = self.pool.get().await?;
            client
                .execute(
                    "DELETE FROM workers WHERE name = $1 AND state <> 'running'",
                    &[&name],
                )
                .await?
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
        Ok(client
            .execute("DELETE FROM workers WHERE name = $1", &[&name])
            .await?
            > 0)
    }

    pub(super) async fn stall_workers(&self, now: i64) -> Result<Vec<String>> {
        self.worker_names(
            "UPDATE workers SET state = 'stalled', expires_at = 0 \
             WHERE state = 'running' AND expires_at <> 0 AND expires_at < $1 \
             AND NOT coalesce((payload->>'ephemeral')::boolean, false) RETURNING name",
            &[&now],
        )
        .await
    }

    pub(super) async fn delete_ephemeral_workers(&self, now: i64) -> Result<Vec<String>> {
        self.worker_names(
            "DELETE FROM workers WHERE expires_at <> 0 AND expires_at < $1 \
             AND coalesce((payload->>'ephemeral')::boolean, false) RETURNING name",
            &[&now],
        )
        .await
    }

    pub(super) async fn land_drained(&self) -> Result<Vec<String>> {
        self.worker_names(
            &format!(
                "UPDATE workers SET state = 'landed', \
                 payload = payload || '{{\"addr\": \"\", \"baggageclaim_url\": \"\"}}'::jsonb \
                 WHERE state = 'landing' AND {DRAINED} RETURNING name"
            ),
            &[],
        )
        .await
    }

    pub(super) async fn delete_drained_retiring(&self) -> Result<Vec<String>> {
        self.worker_names(
            &format!("DELETE FROM workers WHERE state = 'retiring' AND {DRAINED} RETURNING name"),
            &[],
        )
        .await
    }
}

/// No container of an unfinished build that holds the worker: one-off builds and builds of
/// jobs that are not `interruptible`.
const DRAINED: &str = "NOT EXISTS (SELECT 1 FROM containers c JOIN builds b ON b.id = c.build_id \
     LEFT JOIN jobs j ON j.id = b.job_id \
     WHERE c.worker_name = workers.name AND b.status IN ('pending', 'started') \
     AND (j.id IS NULL OR NOT coalesce((j.config->>'interruptible')::boolean, false)))";
