//! API extensions the pages use, beyond upstream's API (documented in the README):
//!
//! - `GET /api/v1/dashboard`: every visible pipeline with its status, job preview and
//!   resource-error flag computed here (`status`), so the dashboard polls one response
//!   instead of `/jobs` + `/resources` and recomputes nothing.
//! - `GET …/pipelines/P/graph[?group=G…]`: the laid-out pipeline graph (`layout`).
//! - `GET /api/v1/builds/:id/events?render=lines`: the build's event stream with `log`
//!   events replaced by rendered `lines` (`ansi`), so the browser never parses escapes.
//! - `GET /api/v1/builds/:id/log`: the whole log as plain text, escapes resolved.

use super::{ansi, layout, status};
use crate::atc::api::builds::{async_stream, follow_events, FeedItem};
use crate::atc::api::error::{ApiError, ApiResult};
use crate::atc::api::jobs::summaries_of;
use crate::atc::api::resources::resource_json;
use crate::atc::api::scope::{BuildScope, PipelineScope};
use crate::atc::api::streams::StreamPermit;
use crate::atc::api::{json, AppState};
use crate::atc::auth::Requester;
use crate::db::PipelineRow;
use crate::proto::api::JobSummary;
use crate::proto::event::{self, BuildEvent};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json as j, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn job_state(j: &JobSummary) -> status::JobState<'_> {
    status::JobState {
        paused: j.paused,
        finished: j.finished_build.as_ref().map(|b| b.status.as_str()),
        running: j.next_build.is_some(),
        transition_end: j.transition_build.as_ref().map(|b| b.end_time),
    }
}

fn failed_check(status: &str) -> bool {
    matches!(status, "failed" | "errored")
}

/// `GET /api/v1/dashboard`: the pipelines `/api/v1/pipelines` would list (archived ones
/// included and flagged; the page hides them unless asked), each summarised. A handful of
/// store reads however many pipelines there are.
pub async fn dashboard(State(state): State<AppState>, req: Requester) -> ApiResult<Response> {
    let admin = req.is_admin();
    let member = req.member_team_ids();
    let rows = state.store.pipelines(None).await?;
    let (mut mine, others): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|p| member.contains(&p.team_id));
    mine.extend(others);
    mine.retain(|p| admin || p.public || member.contains(&p.team_id));
    let (jobs, overview) = summaries_of(&state, &mine).await?;
    let check_failed: BTreeSet<i64> = overview
        .builds
        .iter()
        .filter(|b| failed_check(b.status.as_str()))
        .map(|b| b.id)
        .collect();
    let mut resource_error: HashMap<i64, bool> = HashMap::new();
    for r in &overview.resources {
        let failing = r
            .check_build_id
            .is_some_and(|id| check_failed.contains(&id));
        *resource_error.entry(r.pipeline_id).or_default() |= failing;
    }
    let mut jobs_of: HashMap<i64, Vec<&JobSummary>> = HashMap::new();
    for j in &jobs {
        jobs_of.entry(j.pipeline_id).or_default().push(j);
    }
    let out: Vec<Card> = mine
        .iter()
        .map(|p| {
            let jobs = jobs_of.remove(&p.id).unwrap_or_default();
            pipeline_card(
                p,
                &jobs,
                resource_error.get(&p.id).copied().unwrap_or(false),
            )
        })
        .collect();
    #[derive(Serialize)]
    struct Dashboard<'a> {
        pipelines: Vec<Card<'a>>,
    }
    Ok(json(&Dashboard { pipelines: out }))
}

/// One dashboard card: the pipeline, its status by the rules of `status`, its job preview.
/// Typed (not a `Value` tree): the dashboard is polled, and serialising straight from
/// these is several times cheaper.
#[derive(Serialize)]
struct Card<'a> {
    id: i64,
    name: &'a str,
    team_name: &'a str,
    instance_vars: &'a Option<Value>,
    paused: bool,
    paused_by: &'a str,
    paused_at: i64,
    public: bool,
    archived: bool,
    status: status::PipelineStatus,
    running: bool,
    transition_time: Option<i64>,
    resource_error: bool,
    jobs: Vec<JobBox<'a>>,
}

#[derive(Serialize)]
struct JobBox<'a> {
    name: &'a str,
    status: &'a str,
    next_status: Option<&'a str>,
    build: Option<BuildRef<'a>>,
    depth: usize,
}

#[derive(Serialize)]
struct BuildRef<'a> {
    id: i64,
    name: &'a str,
}

fn pipeline_card<'a>(
    p: &'a PipelineRow,
    jobs: &[&'a JobSummary],
    resource_error: bool,
) -> Card<'a> {
    let states: Vec<_> = jobs.iter().map(|j| job_state(j)).collect();
    let summary = status::pipeline_status(p.archived, p.paused, &states);
    let deps: Vec<(&str, Vec<&str>)> = jobs
        .iter()
        .map(|j| {
            let passed = j.inputs.iter().flat_map(|i| i.passed.iter());
            (j.name.as_str(), passed.map(String::as_str).collect())
        })
        .collect();
    let depths = status::job_depths(&deps);
    let preview = jobs
        .iter()
        .zip(&states)
        .zip(depths)
        .map(|((job, st), depth)| {
            let build = job.next_build.as_ref().or(job.finished_build.as_ref());
            JobBox {
                name: &job.name,
                status: status::job_status(st),
                next_status: job.next_build.as_ref().map(|b| b.status.as_str()),
                build: build.map(|b| BuildRef {
                    id: b.id,
                    name: &b.name,
                }),
                depth,
            }
        })
        .collect();
    Card {
        id: p.id,
        name: &p.name,
        team_name: &p.team_name,
        instance_vars: &p.instance_vars,
        paused: p.paused,
        paused_by: &p.paused_by,
        paused_at: p.paused_at,
        public: p.public,
        archived: p.archived,
        status: summary.status,
        running: summary.running,
        transition_time: summary.transition_time,
        resource_error: resource_error && !p.archived,
        jobs: preview,
    }
}

/// `GET …/pipelines/P/graph?group=G`: jobs of the selected groups (every job when none is
/// named), laid out; resources appear only through those jobs.
pub async fn graph(
    State(state): State<AppState>,
    s: PipelineScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let groups: BTreeSet<String> = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "group")
        .map(|(_, v)| v.into_owned())
        .collect();
    let pipelines = [s.pipeline];
    let (jobs, _) = summaries_of(&state, &pipelines).await?;
    let pipeline = &pipelines[0];
    let selected: Vec<&JobSummary> = jobs
        .iter()
        .filter(|j| groups.is_empty() || j.groups.iter().any(|g| groups.contains(g)))
        .collect();
    let jobs_in: Vec<layout::JobIn> = selected
        .iter()
        .map(|j| layout::JobIn {
            name: j.name.clone(),
            paused: j.paused,
            finished: j.finished_build.as_ref().map(|b| b.status.clone()),
            next: j.next_build.as_ref().map(|b| b.status.clone()),
            inputs: j
                .inputs
                .iter()
                .map(|i| layout::InputIn {
                    resource: i.resource.clone(),
                    passed: i.passed.clone(),
                    trigger: i.trigger,
                })
                .collect(),
            outputs: j.outputs.iter().map(|o| o.resource.clone()).collect(),
        })
        .collect();
    let mut resources = Vec::new();
    for r in state.store.resources(pipeline.id).await? {
        let api = resource_json(&state, pipeline, &r).await?;
        let check = api.build.as_ref().map(|b| b.status.clone());
        resources.push(layout::ResourceIn {
            name: api.name,
            pinned: api.pinned_version.is_some(),
            check_status: check.filter(|s| matches!(s.as_str(), "failed" | "errored" | "aborted")),
            icon: Some(api.icon).filter(|i| !i.is_empty()),
        });
    }
    let graph = layout::layout(&jobs_in, &resources, CHAR_WIDTH)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json(&graph))
}

/// Width of one character of the graph's 12 px monospace font (the page draws with it).
const CHAR_WIDTH: f64 = 7.3;

/// How many events are rendered into one message at most: a finished build's replay is
/// sent in large batches, a running build's lines as soon as they arrive.
const RENDER_BATCH: usize = 2000;

/// Rendered lines of one step since the last flush: line index → time it first appeared.
#[derive(Default)]
struct StepLog {
    term: ansi::Terminal,
    times: Vec<i64>,
    dirty: BTreeSet<usize>,
}

fn flush(steps: &mut BTreeMap<String, StepLog>) -> Vec<String> {
    let mut out = Vec::new();
    for (origin, log) in steps.iter_mut() {
        if log.dirty.is_empty() {
            continue;
        }
        let lines: Vec<Value> = std::mem::take(&mut log.dirty)
            .into_iter()
            .map(|i| {
                j!([
                    i,
                    log.times.get(i).copied().unwrap_or(0),
                    log.term.line_json(i)
                ])
            })
            .collect();
        let data = j!({"origin": origin, "lines": lines});
        out.push(format!("event: lines\ndata: {data}\n\n"));
    }
    out
}

/// A stored `log` event; anything else (or a log this code cannot read) is passed on as
/// it is. Only logs are decoded: the other events go out untouched.
fn as_log(envelope: &Value) -> Option<event::Log> {
    if envelope.get("event").and_then(Value::as_str) != Some("log") {
        return None;
    }
    match BuildEvent::deserialize(envelope) {
        Ok(BuildEvent::Log(log)) => Some(log),
        _ => None,
    }
}

fn render_log(steps: &mut BTreeMap<String, StepLog>, log: &event::Log) {
    let step = steps.entry(log.origin.id.clone()).or_default();
    for i in step.term.feed(&log.payload) {
        if i >= step.times.len() {
            step.times.resize(i + 1, log.time);
        }
        step.dirty.insert(i);
    }
}

/// The build's events for the page: `event` messages as upstream sends them, except that
/// `log` events become `lines` messages (`{"origin", "lines": [[index, time, spans]]}`,
/// each line's latest content) and `end` closes. No SSE ids: a reconnecting page starts
/// over, which it detects by the stream opening again.
pub fn rendered_events(state: &AppState, id: i64, permit: StreamPermit) -> Response {
    let mut feed = follow_events(state, id, 0);
    let body = async_stream(move |tx| async move {
        let _permit = permit;
        let mut steps: BTreeMap<String, StepLog> = BTreeMap::new();
        let mut pending = 0usize;
        loop {
            // Take what is ready without waiting, render it, then flush before blocking.
            let item = match feed.try_recv() {
                Ok(item) => Some(item),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
            };
            let item = match item {
                Some(item) if pending < RENDER_BATCH => item,
                other => {
                    for msg in flush(&mut steps) {
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                    pending = 0;
                    match other {
                        Some(item) => item,
                        None => match feed.recv().await {
                            Some(item) => item,
                            None => return,
                        },
                    }
                }
            };
            match item {
                FeedItem::Event(_, envelope) => {
                    if let Some(log) = as_log(&envelope) {
                        render_log(&mut steps, &log);
                        pending += 1;
                        continue;
                    }
                    for msg in flush(&mut steps) {
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                    if tx
                        .send(format!("event: event\ndata: {envelope}\n\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                FeedItem::End(_) => {
                    for msg in flush(&mut steps) {
                        let _ = tx.send(msg).await;
                    }
                    let _ = tx.send("event: end\ndata\n\n".to_string()).await;
                    return;
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/v1/builds/:id/log`: every step's output in event order as plain text (what
/// `fly watch` prints, escapes resolved), for download.
pub async fn raw_log(State(state): State<AppState>, s: BuildScope) -> ApiResult<Response> {
    let (id, build) = (s.build.id, s.build);
    // Streamed a bounded page at a time: a huge log is never held whole. Escapes are
    // resolved per run of complete lines (a line split across pages waits for its end).
    let store = state.store.clone();
    let pages =
        futures::stream::try_unfold((Some(0i64), String::new()), move |(cursor, mut pending)| {
            let store = store.clone();
            async move {
                let Some(cursor) = cursor else {
                    return Ok::<_, crate::db::StoreError>(None);
                };
                let page = store
                    .build_events_page(id, cursor, 1000, RAW_LOG_PAGE_BYTES)
                    .await?;
                let Some(&(last, _)) = page.last() else {
                    // The end: whatever is left, unterminated.
                    let rest = ansi::plain_text(&pending);
                    return Ok(Some((bytes::Bytes::from(rest), (None, String::new()))));
                };
                for (_, envelope) in page {
                    match BuildEvent::deserialize(&envelope) {
                        Ok(BuildEvent::Log(log)) => pending.push_str(&log.payload),
                        Ok(BuildEvent::Error(e)) => {
                            pending.push_str(&e.message);
                            pending.push('\n');
                        }
                        _ => {}
                    }
                }
                let text = complete_lines(&mut pending);
                Ok(Some((bytes::Bytes::from(text), (Some(last), pending))))
            }
        });
    let name = match build.job_name.as_str() {
        "" => format!("build-{id}.log"),
        job => format!("{}-{}-{}.log", build.pipeline_name, job, build.name),
    };
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{safe}\""),
            ),
        ],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}

/// How much of a build's log one page of a download reads.
const RAW_LOG_PAGE_BYTES: usize = 1 << 20;

/// The complete lines of `pending` as plain text (escapes resolved), leaving the
/// unterminated rest in it.
fn complete_lines(pending: &mut String) -> String {
    let cut = pending.rfind('\n').map_or(0, |i| i + 1);
    let rest = pending.split_off(cut);
    let done = std::mem::replace(pending, rest);
    if done.is_empty() {
        return done;
    }
    ansi::plain_text(&done)
}

#[cfg(test)]
mod raw_log_tests {
    use super::*;

    /// Rendered a page at a time, a log reads as it does rendered whole.
    #[test]
    fn pages_render_as_the_whole_log() {
        let log = "one\r\x1b[31mONE\x1b[0m\ntwo\nthr";
        let whole = ansi::plain_text(log);
        for split in 0..log.len() {
            if !log.is_char_boundary(split) {
                continue;
            }
            let mut pending = String::new();
            let mut out = String::new();
            for part in [&log[..split], &log[split..]] {
                pending.push_str(part);
                out.push_str(&complete_lines(&mut pending));
            }
            out.push_str(&ansi::plain_text(&pending));
            assert_eq!(out, whole, "split at {split}");
        }
    }
}
