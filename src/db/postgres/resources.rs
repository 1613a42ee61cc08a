//! Resource config scopes and versions, build inputs/outputs and plans.

use super::{build_row, PgStore};
use crate::db::rows::{build_input_row, build_output_row, version_row};
use crate::db::sql::BUILD_SELECT;
use crate::db::*;

fn sha(v: &Value) -> String {
    crate::db::version_sha256(v)
}

const VERSION_SELECT: &str =
    "SELECT id, resource_config_scope_id, version, metadata, enabled, check_order \
     FROM resource_config_versions";

impl PgStore {
    pub(super) async fn resource_scope_tx(
        &self,
        base: &str,
        key: &str,
        owner: Option<i64>,
    ) -> Result<i64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO resource_configs (base_resource_type, source_hash) VALUES ($1, $2) \
             ON CONFLICT (base_resource_type, source_hash) DO NOTHING",
            &[&base, &key],
        )
        .await?;
        let config: i64 = tx
            .query_one(
                "SELECT id FROM resource_configs WHERE base_resource_type = $1 AND source_hash = $2",
                &[&base, &key],
            )
            .await?
            .try_get(0)?;
        let existing = tx
            .query_opt(
                "SELECT id FROM resource_config_scopes WHERE resource_config_id = $1 \
                 AND resource_id IS NOT DISTINCT FROM $2 ORDER BY id LIMIT 1",
                &[&config, &owner],
            )
            .await?;
        let id: i64 = match existing {
            Some(r) => r.try_get(0)?,
            None => tx
                .query_one(
                    "INSERT INTO resource_config_scopes (resource_config_id, resource_id) VALUES ($1, $2) RETURNING id",
                    &[&config, &owner],
                )
                .await?
                .try_get(0)?,
        };
        tx.commit().await?;
        Ok(id)
    }

    pub(super) async fn set_resource_scope_tx(&self, resource: i64, scope: i64) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE resources SET resource_config_scope_id = $2 WHERE id = $1",
                &[&resource, &scope],
            )
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
        tx.execute(
            "SELECT 1 FROM resource_config_scopes WHERE id = $1 FOR UPDATE",
            &[&scope],
        )
        .await?;
        let mut new = 0;
        for v in versions {
            let sha = sha(&v.version);
            let has_meta = v.metadata.as_array().is_some_and(|a| !a.is_empty());
            let meta = if has_meta {
                v.metadata.clone()
            } else {
                Value::Array(vec![])
            };
            let inserted = tx
                .query_opt(
                    "INSERT INTO resource_config_versions \
                     (resource_config_scope_id, version, version_sha256, metadata, check_order) \
                     VALUES ($1, $2, $3, $4, 0) ON CONFLICT (resource_config_scope_id, version_sha256) DO NOTHING \
                     RETURNING id",
                    &[&scope, &v.version, &sha, &meta],
                )
                .await?;
            if inserted.is_some() {
                new += 1;
            } else if has_meta {
                tx.execute(
                    "UPDATE resource_config_versions SET metadata = $3 \
                     WHERE resource_config_scope_id = $1 AND version_sha256 = $2",
                    &[&scope, &sha, &meta],
                )
                .await?;
            }
        }
        // As upstream: when anything was new, the returned order becomes the newest part of
        // the history, so its last element is the latest version.
        if new > 0 {
            let max: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(check_order), 0) FROM resource_config_versions \
                     WHERE resource_config_scope_id = $1",
                    &[&scope],
                )
                .await?
                .try_get(0)?;
            for (i, v) in versions.iter().enumerate() {
                let order = max + 1 + i as i64;
                tx.execute(
                    "UPDATE resource_config_versions SET check_order = $3 \
                     WHERE resource_config_scope_id = $1 AND version_sha256 = $2",
                    &[&scope, &sha(&v.version), &order],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn order_of(&self, id: i64) -> Result<Option<i64>> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                "SELECT check_order FROM resource_config_versions WHERE id = $1",
                &[&id],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    pub(super) async fn versions_tx(&self, scope: i64, page: &Page) -> Result<Vec<VersionRow>> {
        let limit = if page.limit <= 0 {
            i64::MAX
        } else {
            page.limit
        };
        let to = match page.to {
            Some(id) => self.order_of(id).await?.unwrap_or(i64::MAX),
            None => i64::MAX,
        };
        let client = self.pool.get().await?;
        if let (Some(from), None) = (page.from, page.to) {
            let from = self.order_of(from).await?.unwrap_or(i64::MIN);
            let rows = client
                .query(
                    &format!(
                        "{VERSION_SELECT} WHERE resource_config_scope_id = $1 AND check_order >= $2 \
                         ORDER BY check_order ASC LIMIT $3"
                    ),
                    &[&scope, &from, &limit],
                )
                .await?;
            let mut out: Vec<VersionRow> = rows.iter().map(version_row).collect::<Result<_>>()?;
            out.reverse();
            return Ok(out);
        }
        let from = match page.from {
            Some(id) => self.order_of(id).await?.unwrap_or(i64::MIN),
            None => i64::MIN,
        };
        let rows = client
            .query(
                &format!(
                    "{VERSION_SELECT} WHERE resource_config_scope_id = $1 AND check_order <= $2 \
                     AND check_order >= $3 ORDER BY check_order DESC LIMIT $4"
                ),
                &[&scope, &to, &from, &limit],
            )
            .await?;
        rows.iter().map(version_row).collect()
    }

    pub(super) async fn version_tx(&self, id: i64) -> Result<Option<VersionRow>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&format!("{VERSION_SELECT} WHERE id = $1"), &[&id])
            .await?
            .map(|r| version_row(&r))
            .transpose()
    }

    pub(super) async fn find_version_tx(
        &self,
        scope: i64,
        v: &Value,
    ) -> Result<Option<VersionRow>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!(
                    "{VERSION_SELECT} WHERE resource_config_scope_id = $1 AND version_sha256 = $2"
                ),
                &[&scope, &sha(v)],
            )
            .await?
            .map(|r| version_row(&r))
            .transpose()
    }

    pub(super) async fn set_version_enabled_tx(&self, id: i64, enabled: bool) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "UPDATE resource_config_versions SET enabled = $2 WHERE id = $1",
                &[&id, &enabled],
            )
            .await?
            > 0)
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
                    .execute(
                        "UPDATE resources SET pinned_version = $2, pin_comment = COALESCE($3, pin_comment) WHERE id = $1",
                        &[&resource, v, &comment],
                    )
                    .await?
            }
            None => {
                client
                    .execute(
                        "UPDATE resources SET pinned_version = NULL, pin_comment = NULL WHERE id = $1",
                        &[&resource],
                    )
                    .await?
            }
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
            .execute(
                "UPDATE resources SET last_checked = $2, check_build_id = COALESCE($3, check_build_id), \
                 check_failed = $4 WHERE id = $1",
                &[&resource, &at, &build, &!succeeded],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn scheduling_snapshot_tx(&self, pipeline: i64) -> Result<SchedulingSnapshot> {
        let client = self.pool.get().await?;
        let versions = client
            .query(
                "SELECT r.id, v.id FROM resources r \
                 JOIN resource_config_versions v ON v.resource_config_scope_id = r.resource_config_scope_id \
                 WHERE r.pipeline_id = $1 AND r.active AND v.enabled ORDER BY r.id, v.check_order",
                &[&pipeline],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(i64, i64)>>>()?;
        let mut io: Vec<Vec<IoRow>> = Vec::new();
        for table in ["build_inputs", "build_outputs"] {
            let rows = client
                .query(
                    &format!(
                        "SELECT b.id, b.job_id, b.status, io.resource_id, v.id FROM {table} io \
                         JOIN builds b ON b.id = io.build_id \
                         JOIN resources r ON r.id = io.resource_id \
                         JOIN resource_config_versions v ON v.resource_config_scope_id = r.resource_config_scope_id \
                           AND v.version_sha256 = io.version_sha256 \
                         WHERE b.pipeline_id = $1 AND b.job_id IS NOT NULL ORDER BY b.id"
                    ),
                    &[&pipeline],
                )
                .await?;
            io.push(
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get(0)?,
                            r.try_get(1)?,
                            r.try_get(2)?,
                            r.try_get(3)?,
                            r.try_get(4)?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            );
        }
        let succeeded = client
            .query(
                "SELECT id, job_id FROM builds WHERE pipeline_id = $1 AND job_id IS NOT NULL \
                 AND status = 'succeeded' ORDER BY id",
                &[&pipeline],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(i64, i64)>>>()?;
        Ok(crate::db::assemble_snapshot(
            versions, succeeded, &io[0], &io[1],
        ))
    }

    pub(super) async fn save_build_inputs_tx(
        &self,
        build: i64,
        inputs: &[BuildInputRow],
    ) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM build_inputs WHERE build_id = $1", &[&build])
            .await?;
        for i in inputs {
            tx.execute(
                "INSERT INTO build_inputs (build_id, name, resource_id, version, version_sha256, first_occurrence) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&build, &i.name, &i.resource_id, &i.version, &sha(&i.version), &i.first_occurrence],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn build_inputs_tx(&self, build: i64) -> Result<Vec<BuildInputRow>> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT name, resource_id, version, first_occurrence FROM build_inputs WHERE build_id = $1 ORDER BY name",
                &[&build],
            )
            .await?
            .iter()
            .map(build_input_row)
            .collect()
    }

    pub(super) async fn save_build_output_tx(&self, build: i64, o: &BuildOutputRow) -> Result<()> {
        let scope: Option<i64> = {
            let client = self.pool.get().await?;
            client
                .query_opt(
                    "SELECT resource_config_scope_id FROM resources WHERE id = $1",
                    &[&o.resource_id],
                )
                .await?
                .map(|r| r.try_get(0))
                .transpose()?
                .flatten()
        };
        if let Some(scope) = scope {
            if self.find_version_tx(scope, &o.version).await?.is_none() {
                self.save_versions_tx(
                    scope,
                    &[NewVersion {
                        version: o.version.clone(),
                        metadata: o.metadata.clone(),
                    }],
                )
                .await?;
            }
        }
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO build_outputs (build_id, name, resource_id, version, version_sha256) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
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
        client
            .query(
                "SELECT o.name, o.resource_id, o.version, v.metadata FROM build_outputs o \
                 JOIN resources r ON r.id = o.resource_id \
                 LEFT JOIN resource_config_versions v ON v.resource_config_scope_id = r.resource_config_scope_id \
                   AND v.version_sha256 = o.version_sha256 \
                 WHERE o.build_id = $1 ORDER BY o.name",
                &[&build],
            )
            .await?
            .iter()
            .map(build_output_row)
            .collect()
    }

    pub(super) async fn save_build_plan_tx(&self, build: i64, plan: &Value) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute("UPDATE builds SET plan = $2 WHERE id = $1", &[&build, plan])
            .await?;
        found(n, || format!("build {build}"))
    }

    pub(super) async fn builds_with_status_tx(
        &self,
        statuses: &[BuildStatus],
    ) -> Result<Vec<BuildRow>> {
        let client = self.pool.get().await?;
        let list: Vec<String> = statuses.iter().map(|s| s.as_str().to_string()).collect();
        client
            .query(
                &format!("{BUILD_SELECT} WHERE b.status = ANY($1) ORDER BY b.id"),
                &[&list],
            )
            .await?
            .iter()
            .map(build_row)
            .collect()
    }
}
