//! Resource statements: config scopes, versions and pins, checks, build inputs and outputs,
//! and the scheduler's snapshot.

use super::Dialect;

/// Decoded by `rows::version_row`.
pub(crate) const VERSION_SELECT: &str =
    "SELECT id, resource_config_scope_id, version, metadata, enabled, check_order \
     FROM resource_config_versions";

pub(crate) struct ResourceSql {
    pub insert_config: String,
    pub config_id: String,
    /// The scope of config `$1` owned by resource `$2` (NULL: shared).
    pub scope: String,
    pub insert_scope: String,
    pub set_scope: String,
    /// Returns no row when the version is known already.
    pub insert_version: String,
    pub set_version_metadata: String,
    pub max_check_order: String,
    pub set_check_order: String,
    pub check_order: String,
    /// A page anchored at its oldest version (`$2`), oldest first.
    pub versions_from: String,
    /// A page between check orders `$3` and `$2`, newest first.
    pub versions_between: String,
    pub version: String,
    /// The version of scope `$1` with hash `$2`.
    pub version_by_sha: String,
    pub set_version_enabled: String,
    /// Marks scope `$1`'s versions changed.
    pub versions_changed: String,
    /// Marks the scope of version `$1` changed.
    pub version_changed: String,
    pub pin: String,
    pub unpin: String,
    pub record_check: String,
    pub snapshot_versions: String,
    pub snapshot_inputs: String,
    pub snapshot_outputs: String,
    pub snapshot_succeeded: String,
    pub delete_inputs: String,
    pub insert_input: String,
    pub inputs: String,
    /// Decoded by `rows::build_input_row`, then the job id (column 4).
    pub latest_inputs: String,
    pub scope_of_resource: String,
    pub insert_output: String,
    /// An output's metadata is that of the version it names, if recorded.
    pub outputs: String,
}

impl ResourceSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let s = |sql: String| d.stmt(&sql);
        // Inputs or outputs of the pipeline's job builds, mapped to current-scope versions.
        let snapshot_io = |table: &str| {
            s(format!(
                "SELECT b.id, b.job_id, b.status, io.resource_id, v.id FROM {table} io \
                 JOIN builds b ON b.id = io.build_id \
                 JOIN resources r ON r.id = io.resource_id \
                 JOIN resource_config_versions v \
                 ON v.resource_config_scope_id = r.resource_config_scope_id \
                 AND v.version_sha256 = io.version_sha256 \
                 WHERE b.pipeline_id = $1 AND b.job_id IS NOT NULL ORDER BY b.id"
            ))
        };
        ResourceSql {
            insert_config: s(
                "INSERT INTO resource_configs (base_resource_type, source_hash) \
                 VALUES ($1, $2) ON CONFLICT (base_resource_type, source_hash) DO NOTHING"
                    .into(),
            ),
            // Locked, so two checks finding a resource's scope missing at once create it
            // once: the second waits, then sees the first's scope.
            config_id: s(format!(
                "SELECT id FROM resource_configs \
                 WHERE base_resource_type = $1 AND source_hash = $2{}",
                d.lock(" FOR UPDATE")
            )),
            scope: s(
                "SELECT id FROM resource_config_scopes WHERE resource_config_id = $1 \
                 AND resource_id IS NOT DISTINCT FROM $2 ORDER BY id LIMIT 1"
                    .into(),
            ),
            insert_scope: s("INSERT INTO resource_config_scopes (resource_config_id, \
                 resource_id) VALUES ($1, $2) RETURNING id"
                .into()),
            set_scope: s("UPDATE resources SET resource_config_scope_id = $2 WHERE id = $1".into()),
            insert_version: s("INSERT INTO resource_config_versions \
                 (resource_config_scope_id, version, version_sha256, metadata, check_order) \
                 VALUES ($1, $2, $3, $4, 0) \
                 ON CONFLICT (resource_config_scope_id, version_sha256) DO NOTHING RETURNING id"
                .into()),
            set_version_metadata: s("UPDATE resource_config_versions SET metadata = $3 \
                 WHERE resource_config_scope_id = $1 AND version_sha256 = $2"
                .into()),
            max_check_order: s("SELECT COALESCE(MAX(check_order), 0) \
                 FROM resource_config_versions WHERE resource_config_scope_id = $1"
                .into()),
            set_check_order: s("UPDATE resource_config_versions SET check_order = $3 \
                 WHERE resource_config_scope_id = $1 AND version_sha256 = $2"
                .into()),
            check_order: s("SELECT check_order FROM resource_config_versions WHERE id = $1".into()),
            versions_from: s(format!(
                "{VERSION_SELECT} WHERE resource_config_scope_id = $1 AND check_order >= $2 \
                 ORDER BY check_order ASC LIMIT $3"
            )),
            versions_between: s(format!(
                "{VERSION_SELECT} WHERE resource_config_scope_id = $1 AND check_order <= $2 \
                 AND check_order >= $3 ORDER BY check_order DESC LIMIT $4"
            )),
            version: s(format!("{VERSION_SELECT} WHERE id = $1")),
            version_by_sha: s(format!(
                "{VERSION_SELECT} WHERE resource_config_scope_id = $1 AND version_sha256 = $2"
            )),
            set_version_enabled: s(
                "UPDATE resource_config_versions SET enabled = $2 WHERE id = $1".into(),
            ),
            versions_changed: s("UPDATE resource_config_scopes \
                 SET versions_changed = versions_changed + 1 WHERE id = $1"
                .into()),
            version_changed: s("UPDATE resource_config_scopes \
                 SET versions_changed = versions_changed + 1 WHERE id = \
                 (SELECT resource_config_scope_id FROM resource_config_versions WHERE id = $1)"
                .into()),
            pin: s("UPDATE resources SET pinned_version = $2, \
                 pin_comment = COALESCE($3, pin_comment) WHERE id = $1"
                .into()),
            unpin: s(
                "UPDATE resources SET pinned_version = NULL, pin_comment = NULL WHERE id = $1"
                    .into(),
            ),
            record_check: s("UPDATE resources SET last_checked = $2, \
                 check_build_id = COALESCE($3, check_build_id), check_failed = $4 WHERE id = $1"
                .into()),
            snapshot_versions: s("SELECT r.id, v.id FROM resources r \
                 JOIN resource_config_versions v \
                 ON v.resource_config_scope_id = r.resource_config_scope_id \
                 WHERE r.pipeline_id = $1 AND r.active AND v.enabled \
                 ORDER BY r.id, v.check_order"
                .into()),
            snapshot_inputs: snapshot_io("build_inputs"),
            snapshot_outputs: snapshot_io("build_outputs"),
            snapshot_succeeded: s("SELECT id, job_id FROM builds WHERE pipeline_id = $1 \
                 AND job_id IS NOT NULL AND status = 'succeeded' ORDER BY id"
                .into()),
            delete_inputs: s("DELETE FROM build_inputs WHERE build_id = $1".into()),
            insert_input: s(
                "INSERT INTO build_inputs (build_id, name, resource_id, version, \
                 version_sha256, first_occurrence) VALUES ($1, $2, $3, $4, $5, $6)"
                    .into(),
            ),
            inputs: s(
                "SELECT name, resource_id, version, first_occurrence FROM build_inputs \
                 WHERE build_id = $1 ORDER BY name"
                    .into(),
            ),
            latest_inputs: s(
                "SELECT i.name, i.resource_id, i.version, i.first_occurrence, j.id \
                 FROM jobs j JOIN build_inputs i ON i.build_id = \
                 (SELECT b.id FROM builds b WHERE b.job_id = j.id \
                 ORDER BY COALESCE(b.rerun_of, b.id) DESC, b.id DESC LIMIT 1) \
                 WHERE j.pipeline_id = $1 ORDER BY j.id, i.name"
                    .into(),
            ),
            scope_of_resource: s(
                "SELECT resource_config_scope_id FROM resources WHERE id = $1".into(),
            ),
            insert_output: s(
                "INSERT INTO build_outputs (build_id, name, resource_id, version, \
                 version_sha256) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                    .into(),
            ),
            outputs: s("SELECT o.name, o.resource_id, o.version, v.metadata \
                 FROM build_outputs o JOIN resources r ON r.id = o.resource_id \
                 LEFT JOIN resource_config_versions v \
                 ON v.resource_config_scope_id = r.resource_config_scope_id \
                 AND v.version_sha256 = o.version_sha256 \
                 WHERE o.build_id = $1 ORDER BY o.name"
                .into()),
        }
    }
}
