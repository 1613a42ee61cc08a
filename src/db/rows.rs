//! Row decoding written once for both backends. A decoder reads columns through [`SqlRow`],
//! which both `rusqlite::Row` and `tokio_postgres::Row` implement; [`Col`] absorbs the one
//! real difference: JSON is `jsonb` in PostgreSQL and TEXT in SQLite.

use super::*;

/// A column value either backend can produce.
pub(crate) trait Col: Sized {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self>;
    fn pg(row: &tokio_postgres::Row, i: usize) -> Result<Self>;
}

/// Types both drivers decode alike.
macro_rules! plain_col {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
                Ok(row.get(i)?)
            }
            fn pg(row: &tokio_postgres::Row, i: usize) -> Result<Self> {
                Ok(row.try_get(i)?)
            }
        }
    )*};
}

plain_col!(i64, i32, bool, String, Option<i64>, Option<String>);

fn parse_json(text: &str, i: usize) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("JSON column {i}: {e}")))
}

impl Col for Value {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        parse_json(&row.get::<_, String>(i)?, i)
    }
    fn pg(row: &tokio_postgres::Row, i: usize) -> Result<Self> {
        Ok(row.try_get(i)?)
    }
}

impl Col for Option<Value> {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        row.get::<_, Option<String>>(i)?
            .map(|t| parse_json(&t, i))
            .transpose()
    }
    fn pg(row: &tokio_postgres::Row, i: usize) -> Result<Self> {
        Ok(row.try_get(i)?)
    }
}

/// A result row of either backend.
pub(crate) trait SqlRow {
    fn col<T: Col>(&self, i: usize) -> Result<T>;

    /// A JSON column decoded into `T`.
    fn json_as<T: serde::de::DeserializeOwned>(&self, i: usize, what: &str) -> Result<T> {
        serde_json::from_value(self.col::<Value>(i)?)
            .map_err(|e| StoreError::Backend(format!("{what}: {e}")))
    }
}

impl SqlRow for rusqlite::Row<'_> {
    fn col<T: Col>(&self, i: usize) -> Result<T> {
        T::sqlite(self, i)
    }
}

impl SqlRow for tokio_postgres::Row {
    fn col<T: Col>(&self, i: usize) -> Result<T> {
        T::pg(self, i)
    }
}

/// A row of plain columns, decoded in order into a tuple.
pub(crate) trait Tuple: Sized {
    fn decode(r: &impl SqlRow) -> Result<Self>;
}

macro_rules! tuple {
    ($($t:ident $i:tt),*) => {
        impl<$($t: Col),*> Tuple for ($($t,)*) {
            fn decode(r: &impl SqlRow) -> Result<Self> {
                Ok(($(r.col::<$t>($i)?,)*))
            }
        }
    };
}

tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2, D 3, E 4);

pub(crate) fn tuple<T: Tuple>(r: &impl SqlRow) -> Result<T> {
    T::decode(r)
}

/// The first column.
pub(crate) fn first<T: Col>(r: &impl SqlRow) -> Result<T> {
    r.col(0)
}

pub(crate) fn team_row(r: &impl SqlRow) -> Result<TeamRow> {
    Ok(TeamRow {
        id: r.col(0)?,
        name: r.col(1)?,
        admin: r.col(2)?,
        auth: r.json_as(3, "team auth")?,
    })
}

pub(crate) fn user_row(r: &impl SqlRow) -> Result<UserRow> {
    Ok(UserRow {
        id: r.col(0)?,
        username: r.col(1)?,
        connector: r.col(2)?,
        sub: r.col(3)?,
        last_login: r.col(4)?,
    })
}

/// Columns of [`super::sql::PIPELINE_SELECT`].
pub(crate) fn pipeline_row(r: &impl SqlRow) -> Result<PipelineRow> {
    Ok(PipelineRow {
        id: r.col(0)?,
        team_id: r.col(1)?,
        team_name: r.col(2)?,
        name: r.col(3)?,
        instance_vars: r.col(4)?,
        paused: r.col(5)?,
        paused_by: r.col(6)?,
        paused_at: r.col(7)?,
        public: r.col(8)?,
        archived: r.col(9)?,
        ordering: r.col(10)?,
        config_version: r.col(11)?,
        groups: r.col::<Option<Value>>(12)?.unwrap_or(Value::Null),
        display: r.col::<Option<Value>>(13)?.unwrap_or(Value::Null),
        user_data: r.col::<Option<Value>>(14)?.unwrap_or(Value::Null),
        parent_job_id: r.col(15)?,
        parent_build_id: r.col(16)?,
        last_updated: r.col(17)?,
    })
}

/// Columns of [`super::sql::JOB_SELECT`].
pub(crate) fn job_row(r: &impl SqlRow) -> Result<JobRow> {
    Ok(JobRow {
        id: r.col(0)?,
        pipeline_id: r.col(1)?,
        name: r.col(2)?,
        config: r.col::<Option<Value>>(3)?.unwrap_or(Value::Null),
        paused: r.col(4)?,
        paused_by: r.col(5)?,
        paused_at: r.col(6)?,
        has_new_inputs: r.col(7)?,
        groups: r.json_as(8, "job groups")?,
        first_logged_build_id: r.col(9)?,
        next_build_id: r.col(10)?,
        finished_build_id: r.col(11)?,
        transition_build_id: r.col(12)?,
    })
}

/// Columns of [`super::sql::RESOURCE_SELECT`].
pub(crate) fn resource_row(r: &impl SqlRow) -> Result<ResourceRow> {
    Ok(ResourceRow {
        id: r.col(0)?,
        pipeline_id: r.col(1)?,
        name: r.col(2)?,
        type_: r.col(3)?,
        config: r.col::<Option<Value>>(4)?.unwrap_or(Value::Null),
        last_checked: r.col(5)?,
        pinned_version: r.col(6)?,
        pin_comment: r.col(7)?,
        scope_id: r.col(8)?,
        check_build_id: r.col(9)?,
        check_failed: r.col(10)?,
    })
}

/// Columns of `OverviewSql::job_marks`.
pub(crate) fn job_mark(r: &impl SqlRow) -> Result<JobMark> {
    Ok(JobMark {
        id: r.col(0)?,
        pipeline_id: r.col(1)?,
        paused: r.col(2)?,
        next_build_id: r.col(3)?,
        finished_build_id: r.col(4)?,
    })
}

/// Columns of `OverviewSql::resource_marks`.
pub(crate) fn resource_mark(r: &impl SqlRow) -> Result<ResourceMark> {
    Ok(ResourceMark {
        id: r.col(0)?,
        pipeline_id: r.col(1)?,
        name: r.col(2)?,
        last_checked: r.col(3)?,
        pinned_version: r.col(4)?,
        scope_id: r.col(5)?,
        check_failed: r.col(6)?,
        versions_changed: r.col(7)?,
        config: r.col(8)?,
    })
}

/// Columns of [`super::sql::BUILD_SELECT`].
pub(crate) fn build_row(r: &impl SqlRow) -> Result<BuildRow> {
    let status: String = r.col(4)?;
    Ok(BuildRow {
        id: r.col(0)?,
        team_id: r.col(1)?,
        team_name: r.col(2)?,
        name: r.col(3)?,
        status: BuildStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown build status {status:?}")))?,
        job_id: r.col(5)?,
        job_name: r.col(6)?,
        pipeline_id: r.col(7)?,
        pipeline_name: r.col(8)?,
        pipeline_instance_vars: r.col(9)?,
        resource_name: r.col(10)?,
        plan: r.col(11)?,
        created_by: r.col(12)?,
        comment: r.col(13)?,
        create_time: r.col(14)?,
        start_time: r.col(15)?,
        end_time: r.col(16)?,
        rerun_of: r.col(17)?,
        rerun_number: r.col(18)?,
        reap_time: r.col(19)?,
    })
}

/// Columns of `sql::workers::WORKER_SELECT`.
pub(crate) fn worker_row(r: &impl SqlRow) -> Result<WorkerRow> {
    let state: String = r.col(3)?;
    worker_from_columns(r.col(2)?, r.col(1)?, &state, r.col(4)?)
}

/// Columns of `sql::resources::VERSION_SELECT`.
pub(crate) fn version_row(r: &impl SqlRow) -> Result<VersionRow> {
    Ok(VersionRow {
        id: r.col(0)?,
        scope_id: r.col(1)?,
        version: r.col(2)?,
        metadata: r.col(3)?,
        enabled: r.col(4)?,
        check_order: r.col(5)?,
    })
}

/// Columns of the `sql::ARTIFACT_*` statements.
pub(crate) fn artifact_row(r: &impl SqlRow) -> Result<ArtifactRow> {
    Ok(ArtifactRow {
        id: r.col(0)?,
        team_id: r.col(1)?,
        build_id: r.col(2)?,
        name: r.col(3)?,
        worker_name: r.col(4)?,
        volume_handle: r.col(5)?,
        created_at: r.col(6)?,
    })
}

pub(crate) fn build_input_row(r: &impl SqlRow) -> Result<BuildInputRow> {
    Ok(BuildInputRow {
        name: r.col(0)?,
        resource_id: r.col(1)?,
        version: r.col(2)?,
        first_occurrence: r.col(3)?,
    })
}

/// A job's latest build's input: `build_input_row`'s columns, then the job id.
pub(crate) fn latest_input(r: &impl SqlRow) -> Result<(i64, BuildInputRow)> {
    Ok((r.col(4)?, build_input_row(r)?))
}

/// An output's metadata is that of the version it names, or none when it is not recorded.
pub(crate) fn build_output_row(r: &impl SqlRow) -> Result<BuildOutputRow> {
    Ok(BuildOutputRow {
        name: r.col(0)?,
        resource_id: r.col(1)?,
        version: r.col(2)?,
        metadata: r.col::<Option<Value>>(3)?.unwrap_or(Value::Array(vec![])),
    })
}

pub(crate) fn wall_row(r: &impl SqlRow) -> Result<WallRow> {
    Ok(WallRow {
        message: r.col(0)?,
        expires_at: r.col(1)?,
    })
}

/// The JWK is TEXT on both backends (stored as the client encoded it).
pub(crate) fn signing_key_row(r: &impl SqlRow) -> Result<SigningKeyRow> {
    let kid: String = r.col(0)?;
    let jwk: String = r.col(2)?;
    let jwk = serde_json::from_str(&jwk)
        .map_err(|e| StoreError::Backend(format!("signing key {kid}: {e}")))?;
    Ok(SigningKeyRow {
        kid,
        kty: r.col(1)?,
        jwk,
        created_at: r.col(3)?,
    })
}
