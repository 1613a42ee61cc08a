//! Resource config scopes and versions, build inputs/outputs and plans.

use super::cached::Cached;
use super::{builds, PgStore};
use crate::db::rows::{
    build_input_row, build_output_row, build_row, first, latest_input, tuple, version_row,
};
use crate::db::sql::{Dialect, ResourceSql};
use crate::db::*;
use std::sync::LazyLock;

static SQL: LazyLock<ResourceSql> = LazyLock::new(|| ResourceSql::new(Dialect::Postgres));

/// Replaces a build's inputs in one statement (no transaction): upserts the given ones and
/// deletes those not named. Each CTE sees the rows as they were, and they touch disjoint rows.
const SAVE_INPUTS: &str = "WITH saved AS (\
       INSERT INTO build_inputs \
       (build_id, name, resource_id, version, version_sha256, first_occurrence) \
       SELECT $1, i.name, i.resource_id, i.version, i.sha, i.first \
       FROM UNNEST($2::text[], $3::bigint[], $4::jsonb[], $5::text[], $6::bool[]) \
       AS i(name, resource_id, version, sha, first) \
       ON CONFLICT (build_id, name) DO UPDATE SET resource_id = excluded.resource_id, \
       version = excluded.version, version_sha256 = excluded.version_sha256, \
       first_occurrence = excluded.first_occurrence) \
     DELETE FROM build_inputs WHERE build_id = $1 AND NOT (name = ANY($2))";

fn sha(v: &Value) -> String {
    crate::db::version_sha256(v)
}

impl PgStore {
    pub(super) async fn resource_scope_tx(
        &self,
        base: &str,
        key: &str,
        owner: Option<i64>,
    ) -> Result<i64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute_cached(&SQL.insert_config, &[&base, &key])
            .await?;
        let config: i64 = first(&tx.query_one_cached(&SQL.config_id, &[&base, &key]).await?)?;
        let id = match super::opt(&tx, &SQL.scope, &[&config, &owner], first).await? {
            Some(id) => id,
            None => first(
                &tx.query_one_cached(&SQL.insert_scope, &[&config, &owner])
                    .await?,
            )?,
        };
        tx.commit().await?;
        Ok(id)
    }

    pub(super) async fn set_resource_scope_tx(&self, resource: i64, scope: i64) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute_cached(&SQL.set_scope, &[&resource, &scope])
            .await?;
        found(n, || format!("resource {resource}"))
    }

    pub(super) async fn save_versions_tx(
        &self,
        scope: i64,
        versions: &[NewVersion],
    ) -> Result<usize> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Serialize savers of one scope so check orders never interleave.
        tx.execute_cached(
            "SELECT 1 FROM resource_config_scopes WHERE id = $1 FOR UPDATE",
            &[&scope],
        )
        .await?;
        let mut new = 0;
        for v in versions {
            let sha = sha(&v.version);
            let meta = stored_metadata(&v.metadata);
            let inserted = tx
                .query_opt_cached(&SQL.insert_version, &[&scope, &v.version, &sha, &meta])
                .await?;
            if inserted.is_some() {
                new += 1;
            } else if has_metadata(&v.metadata) {
                tx.execute_cached(&SQL.set_version_metadata, &[&scope, &sha, &meta])
                    .await?;
            }
        }
        // As upstream: when anything was new, the returned order becomes the newest part of
        // the history, so its last element is the latest version.
        if new > 0 {
            let max: i64 = first(&tx.query_one_cached(&SQL.max_check_order, &[&scope]).await?)?;
            for (order, v) in (max + 1..).zip(versions) {
                tx.execute_cached(&SQL.set_check_order, &[&scope, &sha(&v.version), &order])
                    .await?;
            }
            tx.execute_cached(&SQL.versions_changed, &[&scope]).await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn order_of(&self, id: Option<i64>) -> Result<Option<i64>> {
        let Some(id) = id else { return Ok(None) };
        let client = self.pool.get().await?;
        super::opt(&client, &SQL.check_order, &[&id], first).await
    }

    pub(super) async fn versions_tx(&self, scope: i64, page: &Page) -> Result<Vec<VersionRow>> {
        let window = VersionWindow::new(
            page,
            self.order_of(page.from).await?,
            self.order_of(page.to).await?,
        );
        let client = self.pool.get().await?;
        let rows = if window.anchored_at_from {
            super::all(
                &client,
                &SQL.versions_from,
                &[&scope, &window.from, &window.limit],
                version_row,
            )
            .await?
        } else {
            super::all(
                &client,
                &SQL.versions_between,
                &[&scope, &window.to, &window.from, &window.limit],
                version_row,
            )
            .await?
        };
        Ok(window.newest_first(rows))
    }

    pub(super) async fn version_tx(&self, id: i64) -> Result<Option<VersionRow>> {
        let client = self.pool.get().await?;
        super::opt(&client, &SQL.version, &[&id], version_row).await
    }

    pub(super) async fn find_version_tx(
        &self,
        scope: i64,
        v: &Value,
    ) -> Result<Option<VersionRow>> {
        let client = self.pool.get().await?;
        super::opt(
            &client,
            &SQL.version_by_sha,
            &[&scope, &sha(v)],
            version_row,
        )
        .await
    }

    pub(super) async fn set_version_enabled_tx(&self, id: i64, enabled: bool) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let found = tx
            .execute_cached(&SQL.set_version_enabled, &[&id, &enabled])
            .await?
            > 0;
        tx.execute_cached(&SQL.version_changed, &[&id]).await?;
        tx.commit().await?;
        Ok(found)
    }

    pub(super) async fn pin_resource_tx(
        &self,
        resource: i64,
        version: Option<&Value>,
        comment: Option<&str>,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        let n = match version {
            Some(v) => {
                client
                    .execute_cached(&SQL.pin, &[&resource, v, &comment])
                    .await?
            }
            None => client.execute_cached(&SQL.unpin, &[&resource]).await?,
        };
        found(n, || format!("resource {resource}"))
    }

    pub(super) async fn record_resource_check_tx(
        &self,
        resource: i64,
        at: i64,
        build: Option<i64>,
        succeeded: bool,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute_cached(&SQL.record_check, &[&resource, &at, &build, &!succeeded])
            .await?;
        Ok(())
    }

    pub(super) async fn scheduling_snapshot_tx(&self, pipeline: i64) -> Result<SchedulingSnapshot> {
        let client = self.pool.get().await?;
        let p: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[&pipeline];
        // Sent together: the connection pipelines them (one wait, not four).
        let (versions, inputs, outputs, succeeded): (_, Vec<IoRow>, Vec<IoRow>, _) = tokio::try_join!(
            super::all(&client, &SQL.snapshot_versions, p, tuple),
            super::all(&client, &SQL.snapshot_inputs, p, tuple),
            super::all(&client, &SQL.snapshot_outputs, p, tuple),
            super::all(&client, &SQL.snapshot_succeeded, p, tuple),
        )?;
        Ok(assemble_snapshot(versions, succeeded, &inputs, &outputs))
    }

    pub(super) async fn save_build_inputs_tx(
        &self,
        build: i64,
        inputs: &[BuildInputRow],
    ) -> Result<()> {
        let client = self.pool.get().await?;
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        let resources: Vec<i64> = inputs.iter().map(|i| i.resource_id).collect();
        let versions: Vec<&Value> = inputs.iter().map(|i| &i.version).collect();
        let shas: Vec<String> = inputs.iter().map(|i| sha(&i.version)).collect();
        let first: Vec<bool> = inputs.iter().map(|i| i.first_occurrence).collect();
        client
            .execute_cached(
                SAVE_INPUTS,
                &[&build, &names, &resources, &versions, &shas, &first],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn build_inputs_tx(&self, build: i64) -> Result<Vec<BuildInputRow>> {
        let client = self.pool.get().await?;
        super::all(&client, &SQL.inputs, &[&build], build_input_row).await
    }

    pub(super) async fn latest_build_inputs_tx(
        &self,
        pipeline: i64,
    ) -> Result<Vec<(i64, BuildInputRow)>> {
        let client = self.pool.get().await?;
        super::all(&client, &SQL.latest_inputs, &[&pipeline], latest_input).await
    }

    pub(super) async fn save_build_output_tx(&self, build: i64, o: &BuildOutputRow) -> Result<()> {
        let scope: Option<i64> = {
            let client = self.pool.get().await?;
            super::opt(&client, &SQL.scope_of_resource, &[&o.resource_id], first)
                .await?
                .flatten()
        };
        if let Some(scope) = scope {
            if self.find_version_tx(scope, &o.version).await?.is_none() {
                self.save_versions_tx(scope, &[o.as_version()]).await?;
            }
        }
        let client = self.pool.get().await?;
        client
            .execute_cached(
                &SQL.insert_output,
                &[
                    &build,
                    &o.name,
                    &o.resource_id,
                    &o.version,
                    &sha(&o.version),
                ],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn build_outputs_tx(&self, build: i64) -> Result<Vec<BuildOutputRow>> {
        let client = self.pool.get().await?;
        super::all(&client, &SQL.outputs, &[&build], build_output_row).await
    }

    pub(super) async fn builds_with_status_tx(
        &self,
        statuses: &[BuildStatus],
    ) -> Result<Vec<BuildRow>> {
        let client = self.pool.get().await?;
        let list: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        super::all(
            &client,
            builds::SQL.with_status(statuses),
            &[&list],
            build_row,
        )
        .await
    }
}
