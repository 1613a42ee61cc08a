//! Mapping rows of the embedded store's tables to the store's types.

use super::super::*;
use rusqlite::Row;

fn json_error(i: usize, e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

/// A JSON text column.
pub(super) fn json(row: &Row, i: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(i)?;
    serde_json::from_str(&text).map_err(|e| json_error(i, e))
}

/// A nullable JSON text column.
pub(super) fn json_opt(row: &Row, i: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(i)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| json_error(i, e)))
        .transpose()
}

pub(super) fn team_row(row: &Row) -> rusqlite::Result<TeamRow> {
    let auth: String = row.get(3)?;
    Ok(TeamRow {
        id: row.get(0)?,
        name: row.get(1)?,
        admin: row.get(2)?,
        auth: serde_json::from_str(&auth).map_err(|e| json_error(3, e))?,
    })
}

pub(super) fn user_row(row: &Row) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        username: row.get(1)?,
        connector: row.get(2)?,
        sub: row.get(3)?,
        last_login: row.get(4)?,
    })
}

pub(super) fn pipeline_row(row: &Row) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        id: row.get(0)?,
        team_id: row.get(1)?,
        team_name: row.get(2)?,
        name: row.get(3)?,
        instance_vars: json_opt(row, 4)?,
        paused: row.get(5)?,
        paused_by: row.get(6)?,
        paused_at: row.get(7)?,
        public: row.get(8)?,
        archived: row.get(9)?,
        ordering: row.get(10)?,
        config_version: row.get(11)?,
        groups: json_opt(row, 12)?.unwrap_or(Value::Null),
        display: json_opt(row, 13)?.unwrap_or(Value::Null),
        user_data: json_opt(row, 14)?.unwrap_or(Value::Null),
        parent_job_id: row.get(15)?,
        parent_build_id: row.get(16)?,
        last_updated: row.get(17)?,
    })
}

pub(super) fn job_row(row: &Row) -> rusqlite::Result<JobRow> {
    let groups: String = row.get(8)?;
    Ok(JobRow {
        id: row.get(0)?,
        pipeline_id: row.get(1)?,
        name: row.get(2)?,
        config: json_opt(row, 3)?.unwrap_or(Value::Null),
        paused: row.get(4)?,
        paused_by: row.get(5)?,
        paused_at: row.get(6)?,
        has_new_inputs: row.get(7)?,
        groups: serde_json::from_str(&groups).map_err(|e| json_error(8, e))?,
        first_logged_build_id: row.get(9)?,
        next_build_id: row.get(10)?,
        finished_build_id: row.get(11)?,
        transition_build_id: row.get(12)?,
    })
}

pub(super) fn resource_row(row: &Row) -> rusqlite::Result<ResourceRow> {
    Ok(ResourceRow {
        id: row.get(0)?,
        pipeline_id: row.get(1)?,
        name: row.get(2)?,
        type_: row.get(3)?,
        config: json_opt(row, 4)?.unwrap_or(Value::Null),
        last_checked: row.get(5)?,
        pinned_version: json_opt(row, 6)?,
        pin_comment: row.get(7)?,
        scope_id: row.get(8)?,
        check_build_id: row.get(9)?,
        check_failed: row.get(10)?,
    })
}

pub(super) fn build_row(row: &Row) -> rusqlite::Result<BuildRow> {
    let status: String = row.get(4)?;
    Ok(BuildRow {
        id: row.get(0)?,
        team_id: row.get(1)?,
        team_name: row.get(2)?,
        name: row.get(3)?,
        status: BuildStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("unknown build status {status:?}").into(),
            )
        })?,
        job_id: row.get(5)?,
        job_name: row.get(6)?,
        pipeline_id: row.get(7)?,
        pipeline_name: row.get(8)?,
        pipeline_instance_vars: json_opt(row, 9)?,
        resource_name: row.get(10)?,
        plan: json_opt(row, 11)?,
        created_by: row.get(12)?,
        comment: row.get(13)?,
        create_time: row.get(14)?,
        start_time: row.get(15)?,
        end_time: row.get(16)?,
        rerun_of: row.get(17)?,
        rerun_number: row.get(18)?,
    })
}

pub(super) fn placeholder(n: usize) -> String {
    format!("?{n}")
}
