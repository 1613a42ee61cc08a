//! Builds: job builds (list with pagination links, by name, trigger, rerun), one build,
//! abort, and its event stream (build-events.md). Builds stay pending until the build
//! engine starts them; abort finishes a pending build at once.

use super::error::{ApiError, ApiResult};
use super::scope::{BuildScope, JobScope, PipelineScope, TeamScope};
use super::{json, AppState};
use crate::atc::auth::Requester;
use crate::clock::now;
use crate::db::{BuildRow, BuildStatus, BuildsOf, NewBuild, Page, StoreError};
use crate::proto::api::{Build, RerunOf};
use crate::proto::event::{self, BuildEvent};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json as j, Value};
use std::collections::HashMap;
use std::time::Duration;

pub fn build_json(b: &BuildRow) -> Build {
    Build {
        id: b.id,
        team_name: b.team_name.clone(),
        name: b.name.clone(),
        status: b.status.as_str().into(),
        api_url: format!("/api/v1/builds/{}", b.id),
        comment: b.comment.clone(),
        job_name: b.job_name.clone(),
        resource_name: b.resource_name.clone(),
        pipeline_id: b.pipeline_id.unwrap_or(0),
        pipeline_name: b.pipeline_name.clone(),
        pipeline_instance_vars: b.pipeline_instance_vars.clone(),
        start_time: b.start_time,
        end_time: b.end_time,
        reap_time: b.reap_time,
        rerun_number: b.rerun_number,
        // A rerun is named `<original>.<n>`: the original's name is the part before the dot.
        rerun_of: b.rerun_of.map(|id| RerunOf {
            id,
            name: b.name.split('.').next().unwrap_or_default().to_string(),
        }),
        created_by: b.created_by.clone(),
    }
}

/// The most items one page returns, whatever `limit` asks: a page is built in memory.
pub(crate) const MAX_PAGE: i64 = 1000;

/// Pagination query (atc-api.md §1.4): `limit` (default 100, at most [`MAX_PAGE`]), `from`,
/// `to`, `timestamps`.
pub(crate) fn page(query: Option<&str>) -> ApiResult<Page> {
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let num = |k: &str| -> ApiResult<Option<i64>> {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("malformed {k}: {v}")))
            })
            .transpose()
    };
    let page = Page {
        from: num("from")?,
        to: num("to")?,
        limit: num("limit")?.unwrap_or(100).clamp(1, MAX_PAGE),
        timestamps: q.get("timestamps").is_some_and(|v| !v.is_empty()),
    };
    if let (Some(f), Some(t)) = (page.from, page.to) {
        if f > t {
            return Err(ApiError::bad_request("from must not be greater than to"));
        }
    }
    Ok(page)
}

/// A page of builds with upstream's `Link` headers (none with `timestamps`).
async fn builds_list(
    state: &AppState,
    of: BuildsOf,
    path: &str,
    query: Option<&str>,
) -> ApiResult<Response> {
    let p = page(query)?;
    let result = state.store.builds_page(of, &p).await?;
    let builds: Vec<Build> = result.builds.iter().map(build_json).collect();
    let mut resp = json(&builds);
    if !p.timestamps {
        let base = format!("{}{}", state.external_url, path);
        let links = [
            result
                .older
                .and_then(|o| o.to)
                .map(|to| format!("<{base}?to={to}&limit={}>; rel=\"next\"", p.limit)),
            result
                .newer
                .and_then(|n| n.from)
                .map(|from| format!("<{base}?from={from}&limit={}>; rel=\"previous\"", p.limit)),
        ];
        for link in links.into_iter().flatten() {
            if let Ok(v) = HeaderValue::from_str(&link) {
                resp.headers_mut().append(header::LINK, v);
            }
        }
    }
    Ok(resp)
}

pub async fn list_job(
    State(state): State<AppState>,
    s: JobScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (p, j) = (&s.pipeline, &s.job);
    let path = format!(
        "/api/v1/teams/{}/pipelines/{}/jobs/{}/builds",
        p.team_name, p.name, j.name
    );
    builds_list(&state, BuildsOf::Job(j.id), &path, q.as_deref()).await
}

pub async fn list_pipeline(
    State(state): State<AppState>,
    s: PipelineScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = &s.pipeline;
    let path = format!("/api/v1/teams/{}/pipelines/{}/builds", p.team_name, p.name);
    builds_list(&state, BuildsOf::Pipeline(p.id), &path, q.as_deref()).await
}

pub async fn list_team(
    State(state): State<AppState>,
    s: TeamScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let path = format!("/api/v1/teams/{}/builds", s.team.name);
    builds_list(&state, BuildsOf::Team(s.team.id), &path, q.as_deref()).await
}

/// `GET /api/v1/builds`: admins see every build; others the builds of their teams and of
/// public pipelines (filtered within the page, so a page may come back short).
pub async fn list_all(
    State(state): State<AppState>,
    req: Requester,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    if req.is_admin() {
        return builds_list(&state, BuildsOf::All, "/api/v1/builds", q.as_deref()).await;
    }
    let p = page(q.as_deref())?;
    let member = req.member_team_ids();
    let mut visible = Vec::new();
    for b in state.store.builds_page(BuildsOf::All, &p).await?.builds {
        let public = match b.pipeline_id {
            Some(pid) => state
                .store
                .pipeline_by_id(pid)
                .await?
                .is_some_and(|p| p.public),
            None => false,
        };
        if member.contains(&b.team_id) || public {
            visible.push(build_json(&b));
        }
    }
    Ok(json(&visible))
}

/// The `{build_name}` of a job build's path.
#[derive(serde::Deserialize)]
pub struct BuildName {
    build_name: String,
}

pub async fn get_job_build(
    State(state): State<AppState>,
    s: JobScope,
    Path(BuildName { build_name }): Path<BuildName>,
) -> ApiResult<Response> {
    let b = state
        .store
        .job_build(s.job.id, &build_name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(json(&build_json(&b)))
}

fn flag(config: &Value, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `POST .../jobs/:job/builds`: a pending build, answered with 200 like upstream.
pub async fn trigger(State(state): State<AppState>, s: JobScope) -> ApiResult<Response> {
    let JobScope {
        req,
        team,
        pipeline,
        job: j,
    } = s;
    let job = &j.name;
    if flag(&j.config, "disable_manual_trigger") {
        return Err(ApiError::conflict(format!(
            "manual triggering disabled for job {job}"
        )));
    }
    let b = state
        .store
        .create_build(&NewBuild {
            team_id: team.id,
            job_id: Some(j.id),
            pipeline_id: Some(pipeline.id),
            created_by: req.display_user_id(),
            plan: None,
            at: now(),
            ..Default::default()
        })
        .await?;
    // The build waits for fresh checks of its inputs (the scheduler holds it until
    // they finish), so it runs with the pipeline's current resource configs.
    if let Some(engine) = &state.engine {
        let config = match state.store.pipeline_config(pipeline.id).await? {
            Some((c, _)) => crate::atc::scheduler::pipeline_config(&c).ok(),
            None => None,
        };
        if let Some(config) = config {
            let names: Vec<String> = config
                .job(job)
                .map(|j| {
                    j.inputs()
                        .iter()
                        .map(|g| g.resource_name().into())
                        .collect()
                })
                .unwrap_or_default();
            crate::atc::scheduler::checker::check_now(engine, &pipeline, &config, &names).await;
        }
    }
    // A new pending build of its pipeline.
    state.builds.wake_for(|h| {
        h.pipelines.extend(b.pipeline_id);
    });
    Ok(json(&build_json(&b)))
}

/// `POST .../jobs/:job/builds/:name`: a rerun with the original's inputs.
pub async fn rerun(
    State(state): State<AppState>,
    s: JobScope,
    Path(BuildName { build_name }): Path<BuildName>,
) -> ApiResult<Response> {
    let (req, j) = (&s.req, &s.job);
    if flag(&j.config, "disable_reruns") {
        return Err(ApiError::conflict(format!(
            "reruns disabled for job {}",
            j.name
        )));
    }
    let original = state
        .store
        .job_build(j.id, &build_name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let b = state
        .store
        .rerun_build(original.id, &req.display_user_id(), now())
        .await?;
    // A new pending build of its pipeline.
    state.builds.wake_for(|h| {
        h.pipelines.extend(b.pipeline_id);
    });
    Ok(json(&build_json(&b)))
}

/// `GET /api/v1/builds/:id/plan`: the public plan; 404 while the build has none.
pub async fn plan(s: BuildScope) -> ApiResult<Response> {
    let plan = s
        .build
        .plan
        .and_then(crate::atc::engine::plan::BuildPlan::from_stored)
        .ok_or_else(ApiError::not_found)?;
    Ok(json(&j!({
        "schema": "exec.v2",
        "plan": crate::atc::engine::plan::public_plan(&plan),
    })))
}

pub(crate) fn build_id(raw: &str) -> ApiResult<i64> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("malformed build id: {raw}")))
}

pub async fn get(s: BuildScope) -> ApiResult<Response> {
    Ok(json(&build_json(&s.build)))
}

/// `PUT /api/v1/builds/:id/abort`: a build the engine does not run yet (pending) is
/// finished at once, with its final `status` event; a started one is stopped by the web
/// node running it.
pub async fn abort(State(state): State<AppState>, s: BuildScope) -> ApiResult<Response> {
    let (b, id) = (&s.build, s.build.id);
    // A build running on this node stops its processes, runs its hooks and finishes
    // itself as aborted; one started on another node is asked to do the same (that node
    // watches for the request). Only a pending build is finished here.
    if !b.status.is_finished()
        && !state.builds.abort(id)
        && !state.store.request_build_abort(id).await?
    {
        let at = now();
        let event = BuildEvent::Status(event::Status {
            status: BuildStatus::Aborted.as_str().into(),
            time: at,
        });
        state
            .store
            .append_build_events(id, &[event.to_json()])
            .await?;
        match state.store.finish_build(id, BuildStatus::Aborted, at).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/builds/:id/comment {"comment"}`: pipeline-operators of the build's team.
pub async fn comment(
    State(state): State<AppState>,
    s: BuildScope,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    #[derive(serde::Deserialize)]
    struct Body {
        comment: String,
    }
    let body: Body = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed comment: {e}")))?;
    state
        .store
        .set_build_comment(s.build.id, &body.comment)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// Whose streams count together: a user (by subject), an anonymous visitor by address
/// (without one, as in router-only tests, in the total only).
pub(crate) fn stream_client(req: &Requester, addr: &super::ClientAddr) -> Option<String> {
    if req.is_authenticated() {
        Some(format!("user:{}", req.sub()))
    } else {
        addr.0.map(|ip| format!("ip:{ip}"))
    }
}

/// How often a watcher looks for new events while a build runs.
const EVENT_POLL: Duration = Duration::from_millis(250);

fn sse_event(id: i64, envelope: &Value) -> String {
    let mut env = envelope.clone();
    if let Value::Object(m) = &mut env {
        m.insert("event_id".into(), Value::String(id.to_string()));
    }
    format!("id: {id}\nevent: event\ndata: {env}\n\n")
}

/// `GET /api/v1/builds/:id/events`: replays stored events from `Last-Event-ID + 1`, then
/// follows new ones until the build has finished, then sends `end`. SSE ids start at 0.
pub async fn events(
    State(state): State<AppState>,
    s: BuildScope,
    addr: super::ClientAddr,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = s.build.id;
    let permit = state
        .streams
        .acquire(stream_client(&s.req, &addr).as_deref())?;
    if q.as_deref() == Some("render=lines") {
        return Ok(crate::atc::ui::api::rendered_events(&state, id, permit));
    }
    // The store numbers events from 1; the wire from 0.
    let cursor = match headers.get("Last-Event-ID").and_then(|v| v.to_str().ok()) {
        Some(v) => {
            v.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("malformed Last-Event-ID: {v}")))?
                as i64
                + 1
        }
        None => 0,
    };
    let mut feed = follow_events(&state, id, cursor);
    let stream = async_stream(move |tx| async move {
        let _permit = permit; // the stream's place, freed when it ends
        while let Some(item) = feed.recv().await {
            let msg = match item {
                FeedItem::Event(event_id, envelope) => sse_event(event_id - 1, &envelope),
                FeedItem::End(cursor) => format!("id: {cursor}\nevent: end\ndata\n\n"),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
            (
                header::HeaderName::from_static("x-atc-stream-version"),
                "2.0",
            ),
        ],
        stream,
    )
        .into_response())
}

/// The most a build event feed reads from the store at once.
const FEED_PAGE_BYTES: usize = 1 << 20;

/// What a build's event feed yields: stored events in order (store ids, from 1), then
/// `End(last id)` once the build has finished and every event has been sent.
pub enum FeedItem {
    Event(i64, Value),
    End(i64),
}

/// Follows a build's events from store id `cursor + 1`: replays what is stored, then waits
/// for more (woken by this node's engine, polling builds of other nodes) until the build
/// has finished. The task ends when the receiver is dropped.
pub fn follow_events(
    state: &AppState,
    id: i64,
    mut cursor: i64,
) -> tokio::sync::mpsc::Receiver<FeedItem> {
    let store = state.store.clone();
    let mut wake = state.builds.hub.subscribe();
    let stopping = state.shutdown.clone();
    // Small: a replay holds one page and a few events per watcher, however big the log.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let batch = match store
                .build_events_page(id, cursor, 500, FEED_PAGE_BYTES)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, build_id = id, "reading build events");
                    return;
                }
            };
            if !batch.is_empty() {
                for (event_id, envelope) in batch {
                    cursor = event_id;
                    if tx.send(FeedItem::Event(event_id, envelope)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            let finished = matches!(store.build(id).await, Ok(Some(b)) if b.status.is_finished());
            if finished {
                // Events written between the last read and the status check come first.
                if matches!(store.build_events(id, cursor, 1).await, Ok(rest) if !rest.is_empty()) {
                    continue;
                }
                let _ = tx.send(FeedItem::End(cursor)).await;
                return;
            }
            // A watcher that went away while nothing happened ends the task too.
            if tx.is_closed() {
                return;
            }
            let deadline = tokio::time::sleep(EVENT_POLL);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    // The watcher reconnects to another node (or this one, restarted).
                    _ = stopping.cancelled() => return,
                    _ = &mut deadline => break,
                    woke = wake.recv() => match woke {
                        Ok(b) if b != id => continue,
                        _ => break,
                    },
                }
            }
        }
    });
    rx
}

/// A response body fed by a producer task through a small bounded channel (a slow
/// watcher slows its producer, never grows memory); the task ends with the connection.
pub(crate) fn async_stream<F, Fut>(produce: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(16);
    tokio::spawn(produce(tx));
    Body::from_stream(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|m| m.map(Ok::<_, std::convert::Infallible>))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_at_most_max_page_long() {
        assert_eq!(page(None).expect("default").limit, 100);
        assert_eq!(page(Some("limit=5")).expect("small").limit, 5);
        assert_eq!(page(Some("limit=0")).expect("zero").limit, 1);
        assert_eq!(page(Some("limit=99999999")).expect("huge").limit, MAX_PAGE);
        assert!(page(Some("limit=lots")).is_err());
    }
}
