//! rusqlite's row callbacks return its own error type: these wrap the shared decoders of
//! `db::rows`, carrying a decoding error inside `FromSqlConversionFailure` (unwrapped again by
//! `From<rusqlite::Error> for StoreError`).

use super::super::rows;
use super::super::*;
use rusqlite::Row;

/// The shared decoder's result in rusqlite's error type.
pub(super) fn lift<T>(r: Result<T>) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(e))
    })
}

macro_rules! sqlite_rows {
    ($($name:ident -> $t:ty),* $(,)?) => {$(
        pub(super) fn $name(row: &Row) -> rusqlite::Result<$t> {
            lift(rows::$name(row))
        }
    )*};
}

sqlite_rows!(
    team_row -> TeamRow,
    user_row -> UserRow,
    pipeline_row -> PipelineRow,
    job_row -> JobRow,
    resource_row -> ResourceRow,
    build_row -> BuildRow,
    worker_row -> WorkerRow,
    version_row -> VersionRow,
    artifact_row -> ArtifactRow,
    build_input_row -> BuildInputRow,
    latest_input -> (i64, BuildInputRow),
    build_output_row -> BuildOutputRow,
    wall_row -> WallRow,
    signing_key_row -> SigningKeyRow,
    job_mark -> JobMark,
    resource_mark -> ResourceMark,
);

/// Plain columns as a tuple.
pub(super) fn tuple<T: rows::Tuple>(row: &Row) -> rusqlite::Result<T> {
    lift(rows::tuple(row))
}

/// The first column (JSON as well).
pub(super) fn first<T: rows::Col>(row: &Row) -> rusqlite::Result<T> {
    lift(rows::first(row))
}
