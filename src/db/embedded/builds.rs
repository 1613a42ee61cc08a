//! Builds and their events.

use super::{build_row, is_foreign_key_violation, is_unique_violation, next_value, placeholder};
use crate::db::sql::{BuildsQuery, BUILD_SELECT};
use crate::db::*;
use rusqlite::{
    params, params_from_iter, Connection, OptionalExtension, Transaction, TransactionBehavior,
};

/// Recomputes a job's next build: its oldest pending or started build.
const UPDATE_NEXT_BUILD: &str = "UPDATE jobs SET next_build_id = \
     (SELECT MIN(id) FROM builds WHERE job_id = ?1 AND status IN ('pending', 'started')) WHERE id = ?1";

pub(super) fn find_build(conn: &Connection, id: i64) -> Result<Option<BuildRow>> {
    Ok(conn
        .query_row(&format!("{BUILD_SELECT} WHERE b.id = ?1"), [id], build_row)
        .optional()?)
}

pub(super) fn create_build(conn: &mut Connection, new: &NewBuild) -> Result<BuildRow> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (name, pipeline_id) = match new.job_id {
        Some(job_id) => {
            let (number, pipeline_id): (i64, i64) = tx
                .query_row(
                    "UPDATE jobs SET build_number_seq = build_number_seq + 1 WHERE id = ?1 \
                     RETURNING build_number_seq, pipeline_id",
                    [job_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
            (number.to_string(), Some(pipeline_id))
        }
        None => (
            next_value(&tx, "one_off_name")?.to_string(),
            new.pipeline_id,
        ),
    };
    let created_by = (!new.created_by.is_empty()).then_some(new.created_by.as_str());
    let plan = new.plan.as_ref().map(Value::to_string);
    let inserted = tx.query_row(
        "INSERT INTO builds (team_id, job_id, pipeline_id, name, status, plan, created_by, create_time, resource_id) \
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8) RETURNING id",
        params![new.team_id, new.job_id, pipeline_id, name, plan, created_by, new.at, new.resource_id],
        |r| r.get::<_, i64>(0),
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
        tx.execute(UPDATE_NEXT_BUILD, [job_id])?;
    }
    let build = tx.query_row(&format!("{BUILD_SELECT} WHERE b.id = ?1"), [id], build_row)?;
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
    let (original, original_name, team_id, job_id, pipeline_id): (
        i64,
        String,
        i64,
        Option<i64>,
        Option<i64>,
    ) = tx
        .query_row(
            "SELECT o.id, o.name, o.team_id, o.job_id, o.pipeline_id FROM builds b \
             JOIN builds o ON o.id = COALESCE(b.rerun_of, b.id) WHERE b.id = ?1",
            [build_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("build {build_id}")))?;
    let Some(job_id) = job_id else {
        return Err(StoreError::Invalid(format!(
            "build {build_id} is not a job build"
        )));
    };
    let number: i64 = tx.query_row(
        "SELECT COALESCE(MAX(rerun_number), 0) + 1 FROM builds WHERE rerun_of = ?1",
        [original],
        |r| r.get(0),
    )?;
    let created_by = (!created_by.is_empty()).then_some(created_by);
    let id: i64 = tx.query_row(
        "INSERT INTO builds (team_id, job_id, pipeline_id, name, status, created_by, create_time, \
         rerun_of, rerun_number) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8) RETURNING id",
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
        |r| r.get(0),
    )?;
    tx.execute(UPDATE_NEXT_BUILD, [job_id])?;
    let build = tx.query_row(&format!("{BUILD_SELECT} WHERE b.id = ?1"), [id], build_row)?;
    tx.commit()?;
    Ok(build)
}

pub(super) fn finish_build(
    conn: &mut Connection,
    id: i64,
    status: BuildStatus,
    at: i64,
) -> Result<()> {
    if !status.is_finished() {
        return Err(StoreError::Invalid(format!(
            "{} is not a finished build status",
            status.as_str()
        )));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (current, job_id): (String, Option<i64>) = tx
        .query_row(
            "SELECT status, job_id FROM builds WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("build {id}")))?;
    if BuildStatus::parse(&current).is_none_or(BuildStatus::is_finished) {
        return Err(StoreError::Conflict(format!("build {id} already finished")));
    }
    tx.execute(
        "UPDATE builds SET status = ?2, end_time = ?3 WHERE id = ?1",
        params![id, status.as_str(), at],
    )?;
    if let Some(job_id) = job_id {
        update_job_finished(&tx, job_id, id, status)?;
    }
    tx.commit()?;
    Ok(())
}

/// Marks `build_id` as the job's latest finished build when it is the newest to finish,
/// and as its transition build when the status changed from the previous one.
fn update_job_finished(
    tx: &Transaction,
    job_id: i64,
    build_id: i64,
    status: BuildStatus,
) -> Result<()> {
    let (latest, latest_status): (Option<i64>, Option<String>) = tx.query_row(
        "SELECT j.latest_completed_build_id, b.status FROM jobs j \
         LEFT JOIN builds b ON b.id = j.latest_completed_build_id WHERE j.id = ?1",
        [job_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if latest.is_none_or(|latest| build_id > latest) {
        let transition = latest_status.as_deref() != Some(status.as_str());
        tx.execute(
            "UPDATE jobs SET latest_completed_build_id = ?2, \
             transition_build_id = CASE WHEN ?3 THEN ?2 ELSE transition_build_id END WHERE id = ?1",
            params![job_id, build_id, transition],
        )?;
    }
    tx.execute(UPDATE_NEXT_BUILD, [job_id])?;
    Ok(())
}

fn first_id(tx: &Transaction, query: BuildsQuery) -> Result<Option<i64>> {
    Ok(tx
        .query_row(&query.sql, params_from_iter(query.params.iter()), |r| {
            r.get(0)
        })
        .optional()?)
}

pub(super) fn builds_page(conn: &mut Connection, of: BuildsOf, page: &Page) -> Result<BuildsPage> {
    // One read transaction: the page and its neighbours come from one snapshot.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let (from, to) = if page.timestamps {
        let from = match page.from {
            Some(t) => match first_id(&tx, BuildsQuery::at_time(of, t, true, placeholder))? {
                Some(id) => Some(id),
                None => return Ok(BuildsPage::default()),
            },
            None => None,
        };
        let to = match page.to {
            Some(t) => match first_id(&tx, BuildsQuery::at_time(of, t, false, placeholder))? {
                Some(id) => Some(id),
                None => return Ok(BuildsPage::default()),
            },
            None => None,
        };
        (from, to)
    } else {
        (page.from, page.to)
    };
    let plan = PagePlan::new(from, to, page.limit)?;
    let query = BuildsQuery::page(of, &plan, placeholder);
    let mut builds: Vec<BuildRow> = tx
        .prepare(&query.sql)?
        .query_map(params_from_iter(query.params.iter()), build_row)?
        .collect::<Result<_, _>>()?;
    if plan.ascending {
        builds.reverse();
    }
    let mut result = BuildsPage {
        builds,
        older: None,
        newer: None,
    };
    if page.timestamps {
        return Ok(result);
    }
    if let (Some(newest), Some(oldest)) = (result.builds.first(), result.builds.last()) {
        let older = first_id(
            &tx,
            BuildsQuery::neighbour(of, oldest.id, true, placeholder),
        )?;
        let newer = first_id(
            &tx,
            BuildsQuery::neighbour(of, newest.id, false, placeholder),
        )?;
        result.older = older.map(|id| Page {
            to: Some(id),
            limit: plan.limit,
            ..Page::default()
        });
        result.newer = newer.map(|id| Page {
            from: Some(id),
            limit: plan.limit,
            ..Page::default()
        });
    }
    Ok(result)
}

/// One transaction and one prepared statement for the whole batch (SQLite has no
/// round trips; the win is a single commit, i.e. a single fsync).
pub(super) fn append_build_events(
    conn: &mut Connection,
    build_id: i64,
    events: &[String],
) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let last: i64 = tx.query_row(
        "SELECT COALESCE(MAX(event_id), 0) FROM build_events WHERE build_id = ?1",
        [build_id],
        |r| r.get(0),
    )?;
    let mut id = last;
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
