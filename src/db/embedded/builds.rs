//! Builds and their events.

use super::rows::{build_row, first, tuple};
use super::{is_foreign_key_violation, is_unique_violation};
use crate::db::sql::{BuildSql, BuildsQuery, Dialect};
use crate::db::*;
use rusqlite::{
    params, params_from_iter, Connection, OptionalExtension, Transaction, TransactionBehavior,
};
use std::sync::LazyLock;

pub(super) static SQL: LazyLock<BuildSql> = LazyLock::new(|| BuildSql::new(Dialect::Sqlite));

pub(super) fn find_build(conn: &Connection, id: i64) -> Result<Option<BuildRow>> {
    Ok(conn
        .prepare_cached(&SQL.by_id)?
        .query_row([id], build_row)
        .optional()?)
}

pub(super) fn create_build(conn: &mut Connection, new: &NewBuild) -> Result<BuildRow> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (number, pipeline_id) = match new.job_id {
        Some(job_id) => {
            let (number, pipeline): (i64, i64) = tx
                .query_row(&SQL.next_job_number, [job_id], tuple)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
            (number, Some(pipeline))
        }
        None => (tx.query_row(&SQL.next_one_off, [], first)?, new.pipeline_id),
    };
    let name = number.to_string();
    let created_by = (!new.created_by.is_empty()).then_some(new.created_by.as_str());
    let plan = new.plan.as_ref().map(Value::to_string);
    let inserted = tx.query_row(
        &SQL.insert,
        params![
            new.team_id,
            new.job_id,
            pipeline_id,
            name,
            plan,
            created_by,
            new.at,
            new.resource_id
        ],
        first::<i64>,
    );
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_foreign_key_violation(&e) => {
            return Err(StoreError::NotFound(format!(
                "team {} or pipeline of the build",
                new.team_id
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(job_id) = new.job_id {
        tx.execute(&SQL.update_next_build, [job_id])?;
    }
    let build = tx.query_row(&SQL.by_id, [id], build_row)?;
    tx.commit()?;
    Ok(build)
}

pub(super) fn rerun_build(
    conn: &mut Connection,
    build_id: i64,
    created_by: &str,
    at: i64,
) -> Result<BuildRow> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (original, original_name, team_id, job_id, pipeline_id): RerunOf = tx
        .query_row(&SQL.rerun_original, [build_id], tuple)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("build {build_id}")))?;
    let job_id = job_id.ok_or_else(|| not_a_job_build(build_id))?;
    let number: i64 = tx.query_row(&SQL.rerun_number, [original], first)?;
    let created_by = (!created_by.is_empty()).then_some(created_by);
    let id: i64 = tx.query_row(
        &SQL.insert_rerun,
        params![
            team_id,
            job_id,
            pipeline_id,
            format!("{original_name}.{number}"),
            created_by,
            at,
            original,
            number
        ],
        first,
    )?;
    tx.execute(&SQL.update_next_build, [job_id])?;
    let build = tx.query_row(&SQL.by_id, [id], build_row)?;
    tx.commit()?;
    Ok(build)
}

pub(super) fn finish_build(
    conn: &mut Connection,
    id: i64,
    status: BuildStatus,
    at: i64,
) -> Result<()> {
    check_finished(status)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (current, job_id): (String, Option<i64>) = tx
        .query_row(&SQL.finishing, [id], tuple)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("build {id}")))?;
    check_unfinished(id, &current)?;
    tx.execute(&SQL.finish, params![id, status.as_str(), at])?;
    if let Some(job_id) = job_id {
        let (latest, latest_status): (Option<i64>, Option<String>) = tx
            .query_row(&SQL.job_latest, [job_id], tuple)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
        if let Some(transition) = job_finished(latest, latest_status, id, status) {
            tx.execute(&SQL.job_finished, params![job_id, id, transition])?;
        }
        tx.execute(&SQL.update_next_build, [job_id])?;
    }
    tx.commit()?;
    Ok(())
}

fn first_id(tx: &Transaction, query: BuildsQuery) -> Result<Option<i64>> {
    Ok(tx
        .prepare_cached(&query.sql)?
        .query_row(params_from_iter(query.params.iter()), first)
        .optional()?)
}

pub(super) fn builds_page(conn: &mut Connection, of: BuildsOf, page: &Page) -> Result<BuildsPage> {
    const D: Dialect = Dialect::Sqlite;
    // One read transaction: the page and its neighbours come from one snapshot.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let (mut from, mut to) = (page.from, page.to);
    if page.timestamps {
        for (bound, is_from) in [(&mut from, true), (&mut to, false)] {
            if let Some(t) = *bound {
                *bound = first_id(&tx, BuildsQuery::at_time(D, of, t, is_from))?;
                if bound.is_none() {
                    return Ok(BuildsPage::default());
                }
            }
        }
    }
    let plan = PagePlan::new(from, to, page.limit)?;
    let mut result = page_rows(&tx, of, &plan)?;
    if page.timestamps {
        return Ok(result);
    }
    if let Some((newest, oldest)) = result.ends() {
        let older = first_id(&tx, BuildsQuery::neighbour(D, of, oldest, true))?;
        let newer = first_id(&tx, BuildsQuery::neighbour(D, of, newest, false))?;
        plan.link(&mut result, older, newer);
    }
    Ok(result)
}

/// A page of a job's builds without its neighbours (see the PostgreSQL store's).
pub(super) fn job_builds(conn: &mut Connection, job_id: i64, page: &Page) -> Result<Vec<BuildRow>> {
    if page.timestamps {
        return Ok(builds_page(conn, BuildsOf::Job(job_id), page)?.builds);
    }
    let plan = PagePlan::new(page.from, page.to, page.limit)?;
    Ok(page_rows(conn, BuildsOf::Job(job_id), &plan)?.builds)
}

/// The builds of `of` that `plan` bounds, as a page without its neighbours.
fn page_rows(conn: &Connection, of: BuildsOf, plan: &PagePlan) -> Result<BuildsPage> {
    let query = BuildsQuery::page(Dialect::Sqlite, of, plan);
    let builds: Vec<BuildRow> = conn
        .prepare_cached(&query.sql)?
        .query_map(params_from_iter(query.params.iter()), build_row)?
        .collect::<Result<_, _>>()?;
    Ok(plan.page(builds))
}

/// One transaction and one prepared statement for the whole batch (SQLite has no
/// round trips; the win is a single commit, i.e. a single fsync).
pub(super) fn append_build_events(
    conn: &mut Connection,
    build_id: i64,
    events: &[String],
    entries: &[(String, String)],
) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    super::journal::put(&tx, build_id, entries)?;
    let mut id: i64 = tx.query_row(&SQL.last_event, [build_id], first)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO build_events (build_id, event_id, payload) VALUES (?1, ?2, ?3)",
        )?;
        for event in events {
            id += 1;
            match insert.execute(params![build_id, id, event]) {
                Ok(_) => {}
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(StoreError::NotFound(format!("build {build_id}")))
                }
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(format!(
                        "concurrent event append to build {build_id}"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    tx.commit()?;
    Ok(id)
}
