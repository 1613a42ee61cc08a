//! Status for outside tools: SVG badges of jobs and pipelines, CCTray's `cc.xml`, and
//! `PUT J/schedule` (atc-api.md §3.2–§3.4).

use super::error::{ApiError, ApiResult};
use super::scope::{JobScope, PipelineScope};
use super::AppState;
use crate::atc::auth::{Requester, Role};
use crate::db::{BuildRow, BuildStatus, JobRow};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Upstream's five badges: (width, fill colour, status text).
fn badge_style(status: Option<BuildStatus>) -> (u32, &'static str, &'static str) {
    match status {
        Some(BuildStatus::Succeeded) => (88, "#44cc11", "passing"),
        Some(BuildStatus::Failed) => (80, "#e05d44", "failing"),
        Some(BuildStatus::Aborted) => (90, "#8f4b2d", "aborted"),
        Some(BuildStatus::Errored) => (88, "#fe7d37", "errored"),
        _ => (98, "#9f9f9f", "unknown"),
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The badge SVG as upstream draws it (`?title=` replaces the default `build`).
pub fn badge_svg(status: Option<BuildStatus>, title: Option<&str>) -> String {
    let (width, fill, text) = badge_style(status);
    let title = xml_escape(title.filter(|t| !t.is_empty()).unwrap_or("build"));
    let status_width = width - 37;
    let text_x = format!("{:.1}", f64::from(width) / 2.0 + 17.5);
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20">
   <linearGradient id="b" x2="0" y2="100%">
      <stop offset="0" stop-color="#bbb" stop-opacity=".1" />
      <stop offset="1" stop-opacity=".1" />
   </linearGradient>
   <mask id="a">
      <rect width="{width}" height="20" rx="3" fill="#fff" />
   </mask>
   <g mask="url(#a)">
      <path fill="#555" d="M0 0h37v20H0z" />
      <path fill="{fill}" d="M37 0h{status_width}v20H37z" />
      <path fill="url(#b)" d="M0 0h{width}v20H0z" />
   </g>
   <g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">
      <text x="18.5" y="15" fill="#010101" fill-opacity=".3">{title}</text>
      <text x="18.5" y="14">{title}</text>
      <text x="{text_x}" y="15" fill="#010101" fill-opacity=".3">{text}</text>
      <text x="{text_x}" y="14">{text}</text>
   </g>
</svg>"##
    )
}

fn title(q: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "title")
        .map(|(_, v)| v.into_owned())
}

fn svg_response(svg: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::EXPIRES, "0"),
        ],
        svg,
    )
        .into_response()
}

async fn finished_build(state: &AppState, job: &JobRow) -> ApiResult<Option<BuildRow>> {
    Ok(match job.finished_build_id {
        Some(id) => state.store.build(id).await?,
        None => None,
    })
}

/// `GET J/badge[?title=]`: the job's latest finished build.
pub async fn job_badge(
    State(state): State<AppState>,
    s: JobScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let status = finished_build(&state, &s.job).await?.map(|b| b.status);
    Ok(svg_response(badge_svg(
        status,
        title(q.as_deref()).as_deref(),
    )))
}

/// `GET /api/v1/pipelines/:p/jobs/:j/badge`: the pre-teams address, moved to team `main`.
pub async fn main_job_badge(
    Path((pipeline, job)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut to = format!(
        "/api/v1/teams/main/pipelines/{}/jobs/{}/badge",
        enc(&pipeline),
        enc(&job)
    );
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        to.push('?');
        to.push_str(&q);
    }
    // 301 as upstream (axum's `Redirect::permanent` is a 308).
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response()
}

/// Upstream's precedence over the jobs' latest finished builds.
fn pipeline_status(statuses: &[BuildStatus]) -> Option<BuildStatus> {
    [
        BuildStatus::Failed,
        BuildStatus::Errored,
        BuildStatus::Aborted,
        BuildStatus::Succeeded,
    ]
    .into_iter()
    .find(|s| statuses.contains(s))
}

/// `GET P/badge[?title=]`: failing if any job's latest finished build failed, and so on.
pub async fn pipeline_badge(
    State(state): State<AppState>,
    s: PipelineScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let mut statuses = Vec::new();
    for job in state.store.jobs(s.pipeline.id).await? {
        if let Some(b) = finished_build(&state, &job).await? {
            statuses.push(b.status);
        }
    }
    let status = pipeline_status(&statuses);
    Ok(svg_response(badge_svg(
        status,
        title(q.as_deref()).as_deref(),
    )))
}

/// `PUT J/schedule`: asks the scheduler for a pass now.
pub async fn schedule_job(State(state): State<AppState>, _: JobScope) -> ApiResult<Response> {
    state.builds.wake();
    Ok(StatusCode::OK.into_response())
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `GET T/cc.xml`: one `<Project>` per job with a finished build, of the team's pipelines
/// the requester may see (members: all; others: the exposed ones).
pub async fn cc_xml(
    State(state): State<AppState>,
    req: Requester,
    Path(team): Path<String>,
) -> ApiResult<Response> {
    let team = state
        .store
        .team(&team)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let member = req.has_role(&team, Role::Viewer);
    let mut out = String::from("<Projects>");
    for p in state.store.pipelines(Some(&team.name)).await? {
        if p.archived || !(member || p.public) {
            continue;
        }
        for job in state.store.jobs(p.id).await? {
            let Some(b) = finished_build(&state, &job).await? else {
                continue;
            };
            let activity = if job.next_build_id.is_some() {
                "Building"
            } else {
                "Sleeping"
            };
            let status = match b.status {
                BuildStatus::Succeeded => "Success",
                BuildStatus::Failed => "Failure",
                _ => "Exception",
            };
            let web_url = format!(
                "{}/teams/{}/pipelines/{}/jobs/{}",
                state.external_url,
                enc_path(&team.name),
                enc_path(&p.name),
                enc_path(&job.name)
            );
            out.push_str(&format!(
                r#"<Project activity="{}" lastBuildLabel="{}" lastBuildStatus="{}" lastBuildTime="{}" name="{}" webUrl="{}"></Project>"#,
                activity,
                xml_escape(&b.name),
                status,
                rfc3339(b.end_time),
                xml_escape(&format!("{}/{}", p.name, job.name)),
                xml_escape(&web_url),
            ));
        }
    }
    out.push_str("</Projects>");
    Ok(([(header::CONTENT_TYPE, "application/xml")], out).into_response())
}

fn enc_path(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_status_takes_the_worst() {
        use BuildStatus::*;
        assert_eq!(
            pipeline_status(&[Succeeded, Errored, Aborted]),
            Some(Errored)
        );
        assert_eq!(pipeline_status(&[Succeeded, Failed]), Some(Failed));
        assert_eq!(pipeline_status(&[]), None);
    }

    #[test]
    fn badges_carry_status_colour_and_title() {
        let svg = badge_svg(Some(BuildStatus::Succeeded), Some("a<b"));
        assert!(svg.contains(r##"width="88""##));
        assert!(svg.contains("#44cc11"));
        assert!(svg.contains(">passing<"));
        assert!(svg.contains(">a&lt;b<"));
        assert!(svg.contains(r#"x="61.5""#));
        assert!(badge_svg(None, None).contains(">unknown<"));
    }
}
