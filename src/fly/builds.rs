//! Build commands: `trigger-job`, `abort-build`, `watch`, and the event-stream renderer
//! they share (fly-cli.md §5).

use super::client::{pipeline_path, seg};
use super::pipelines::connect;
use super::{ui, Global};
use crate::config::format_go_duration;
use crate::config::refs::parse_pipeline_child;
use crate::proto::api;
use crate::proto::event::BuildEvent;
use anyhow::{anyhow, bail, Result};
use futures::StreamExt;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct TriggerJobArgs {
    /// Name of a job to trigger
    #[arg(short = 'j', long, required = true, value_name = "PIPELINE/JOB")]
    pub job: String,
    /// Start watching the build output
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Name of the team to which the job belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RerunBuildArgs {
    /// Name of the job that you want to rerun a build for
    #[arg(short = 'j', long, required = true, value_name = "PIPELINE/JOB")]
    pub job: String,
    /// The number of the build to rerun
    #[arg(short = 'b', long, required = true)]
    pub build: String,
    /// Start watching the rerun build output
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, clap::Args)]
pub struct AbortBuildArgs {
    /// Name of a job to cancel
    #[arg(short = 'j', long, value_name = "PIPELINE/JOB")]
    pub job: Option<String>,
    /// If job is specified: build number to cancel. If job not specified: build id
    #[arg(short = 'b', long, required = true)]
    pub build: String,
    /// Name of the team, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
    /// Finish the build at once without waiting for cleanup
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Watches builds of the given job
    #[arg(short = 'j', long, value_name = "PIPELINE/JOB")]
    pub job: Option<String>,
    /// Watches a specific build
    #[arg(short = 'b', long)]
    pub build: Option<String>,
    /// URL for the build or job to watch
    #[arg(short = 'u', long)]
    pub url: Option<String>,
    /// Print with local timestamp (`-t` after `watch` means this, as upstream; give the target before the command)
    #[arg(long)]
    pub timestamps: bool,
    /// Ignore event parsing errors
    #[arg(long)]
    pub ignore_event_parsing_errors: bool,
    /// Name of the team, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct BuildsArgs {
    /// Limit the builds to a job
    #[arg(short = 'j', long, value_name = "PIPELINE/JOB")]
    pub job: Option<String>,
    /// Limit the builds to a pipeline
    #[arg(short = 'p', long)]
    pub pipeline: Option<String>,
    /// Number of builds you want to limit the return to
    #[arg(short = 'c', long, default_value_t = 50)]
    pub count: i64,
    /// Show builds for the given teams (repeatable)
    #[arg(short = 'n', long = "team")]
    pub team: Vec<String>,
    /// Show builds for all teams
    #[arg(short = 'a', long = "all-teams")]
    pub all_teams: bool,
    /// Show builds for the currently targeted team
    #[arg(long = "current-team")]
    pub current_team: bool,
    /// Start time (local) of builds to show, 'yyyy-mm-dd HH:mm:ss'
    #[arg(long)]
    pub since: Option<String>,
    /// End time (local) of builds to show, 'yyyy-mm-dd HH:mm:ss'
    #[arg(long)]
    pub until: Option<String>,
    /// Print API response as JSON
    #[arg(long)]
    pub json: bool,
}

/// `--since` / `--until` as Unix seconds (local time, like upstream).
fn parse_local(s: &str, what: &str) -> Result<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map(|t| t.timestamp())
        .ok_or_else(|| anyhow!("{what} time should be in the format: 2006-01-02 15:04:05"))
}

fn local_time(t: i64) -> String {
    if t == 0 {
        return "n/a".into();
    }
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%Y-%m-%d@%H:%M:%S%z")
                .to_string()
        })
        .unwrap_or_default()
}

/// Upstream v8's `name` cell: pipeline (display form), job, resource and build name joined
/// by `/`; a one-off build shows just its name.
fn build_name(b: &api::Build) -> String {
    let mut names = Vec::new();
    if !b.pipeline_name.is_empty() {
        names.push(
            crate::config::refs::PipelineRef::from_api(
                &b.pipeline_name,
                b.pipeline_instance_vars.as_ref(),
            )
            .display(),
        );
    }
    for part in [&b.job_name, &b.resource_name] {
        if !part.is_empty() {
            names.push(part.clone());
        }
    }
    names.push(b.name.clone());
    names.join("/")
}

pub async fn builds(g: &Global, a: &BuildsArgs) -> Result<()> {
    if a.job.is_some() && a.pipeline.is_some() {
        bail!("Cannot specify both --pipeline and --job");
    }
    if a.all_teams && a.current_team {
        bail!("Cannot specify both --all-teams and --current-team");
    }
    if a.all_teams && !a.team.is_empty() {
        bail!("Cannot specify both --all-teams and --team");
    }
    let since = a
        .since
        .as_deref()
        .map(|s| parse_local(s, "Since"))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_local(s, "Until"))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            bail!("Cannot have --since after --until");
        }
    }
    let (t, current) = connect(g, a.team.first().map(String::as_str)).await?;
    let teams: Vec<String> = if a.all_teams {
        let all: Vec<api::Team> = t.client.get_json("/api/v1/teams", &[]).await?;
        all.into_iter().map(|t| t.name).collect()
    } else if a.current_team {
        vec![t.team().to_string()]
    } else {
        a.team.clone()
    };
    let mut query = vec![("limit".to_string(), a.count.to_string())];
    if since.is_some() || until.is_some() {
        query.push(("timestamps".into(), "true".into()));
        if let Some(s) = since {
            query.push(("from".into(), s.to_string()));
        }
        if let Some(u) = until {
            query.push(("to".into(), u.to_string()));
        }
    }
    let scoped = a.job.is_some() || a.pipeline.is_some();
    let per_team: Vec<&str> = match (scoped, teams.is_empty()) {
        (true, true) => vec![current.as_str()],
        (_, false) => teams.iter().map(String::as_str).collect(),
        (false, true) => vec![],
    };
    let mut builds: Vec<api::Build> = Vec::new();
    if per_team.is_empty() {
        builds = t.client.get_json("/api/v1/builds", &query).await?;
    }
    for team in per_team {
        let (path, mut q) = match (&a.job, &a.pipeline) {
            (Some(job), _) => {
                let (pipeline, job) = parse_pipeline_child(job, "job")?;
                (
                    format!(
                        "{}/jobs/{}/builds",
                        pipeline_path(team, &pipeline),
                        seg(&job)
                    ),
                    pipeline.query(),
                )
            }
            (None, Some(p)) => {
                let pipeline = crate::config::refs::PipelineRef::parse(p)?;
                (
                    format!("{}/builds", pipeline_path(team, &pipeline)),
                    pipeline.query(),
                )
            }
            (None, None) => (format!("/api/v1/teams/{}/builds", seg(team)), vec![]),
        };
        q.extend(query.iter().cloned());
        let mut page: Vec<api::Build> = t.client.get_json(&path, &q).await?;
        builds.append(&mut page);
    }
    builds.sort_by_key(|b| std::cmp::Reverse(b.id));
    builds.truncate(a.count.max(0) as usize);
    if a.json {
        return super::print_json(&builds);
    }
    let now = crate::clock::now();
    let mut table = super::table::Table::new(&[
        "id",
        "name",
        "status",
        "start",
        "end",
        "duration",
        "team",
        "created by",
    ]);
    for b in builds.iter().take(a.count.max(0) as usize) {
        let duration = match (b.start_time, b.end_time) {
            (0, _) => "n/a".to_string(),
            (s, 0) => format!("{}+", format_go_duration((now - s) as i128 * 1_000_000_000)),
            (s, e) => format_go_duration((e - s) as i128 * 1_000_000_000),
        };
        table.push(vec![
            b.id.to_string().into(),
            build_name(b).into(),
            super::table::Cell::colored(b.status.clone(), ui::status_color(&b.status)),
            local_time(b.start_time).into(),
            local_time(b.end_time).into(),
            duration.into(),
            b.team_name.clone().into(),
            if b.created_by.is_empty() {
                "system".to_string()
            } else {
                b.created_by.clone()
            }
            .into(),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

pub async fn trigger_job(g: &Global, a: &TriggerJobArgs) -> Result<()> {
    let (pipeline, job) = parse_pipeline_child(&a.job, "job")?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!(
        "{}/jobs/{}/builds",
        pipeline_path(&team, &pipeline),
        seg(&job)
    );
    let resp = t
        .client
        .send(
            t.client
                .request(reqwest::Method::POST, &path)
                .query(&pipeline.query()),
        )
        .await?;
    let build: api::Build = resp.json()?;
    println!("started {}/{job} #{}", pipeline.display(), build.name);
    if a.watch {
        println!();
        let code = stream(&t.client, build.id, false, false).await?;
        std::process::exit(code);
    }
    Ok(())
}

/// `rerun-build`: `POST .../jobs/:job/builds/:name` on the target's team.
pub async fn rerun_build(g: &Global, a: &RerunBuildArgs) -> Result<()> {
    let (pipeline, job) = parse_pipeline_child(&a.job, "job")?;
    let (t, team) = connect(g, None).await?;
    let path = format!(
        "{}/jobs/{}/builds/{}",
        pipeline_path(&team, &pipeline),
        seg(&job),
        seg(&a.build)
    );
    let resp = t
        .client
        .send(
            t.client
                .request(reqwest::Method::POST, &path)
                .query(&pipeline.query()),
        )
        .await?;
    let build: api::Build = resp.json()?;
    println!("started {}/{job} #{}", pipeline.display(), build.name);
    if a.watch {
        println!();
        let code = stream(&t.client, build.id, false, false).await?;
        std::process::exit(code);
    }
    Ok(())
}

pub async fn abort_build(g: &Global, a: &AbortBuildArgs) -> Result<()> {
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let build: api::Build = match &a.job {
        Some(job) => {
            let (pipeline, job) = parse_pipeline_child(job, "job")?;
            let path = format!(
                "{}/jobs/{}/builds/{}",
                pipeline_path(&team, &pipeline),
                seg(&job),
                seg(&a.build)
            );
            t.client
                .get_json(&path, &pipeline.query())
                .await
                .map_err(|_| anyhow!("build does not exist"))?
        }
        None => t
            .client
            .get_json(&format!("/api/v1/builds/{}", seg(&a.build)), &[])
            .await
            .map_err(|_| anyhow!("build does not exist"))?,
    };
    let mut rb = t.client.put(&format!("/api/v1/builds/{}/abort", build.id));
    if a.force {
        rb = rb.query(&[("force", "")]);
    }
    t.client.send(rb).await?;
    println!(
        "{}",
        if a.force {
            "build forcefully aborted"
        } else {
            "build successfully aborted"
        }
    );
    Ok(())
}

pub async fn watch(g: &Global, a: &WatchArgs) -> Result<()> {
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let build: api::Build = match (&a.job, &a.build) {
        (Some(job), build) => {
            let (pipeline, job) = parse_pipeline_child(job, "job")?;
            let job_path = format!("{}/jobs/{}", pipeline_path(&team, &pipeline), seg(&job));
            match build {
                Some(name) => {
                    t.client
                        .get_json(
                            &format!("{job_path}/builds/{}", seg(name)),
                            &pipeline.query(),
                        )
                        .await?
                }
                None => {
                    let j: api::Job = t.client.get_json(&job_path, &pipeline.query()).await?;
                    j.next_build
                        .or(j.finished_build)
                        .ok_or_else(|| anyhow!("job has no builds"))?
                }
            }
        }
        (None, Some(id)) => {
            t.client
                .get_json(&format!("/api/v1/builds/{}", seg(id)), &[])
                .await?
        }
        (None, None) => match &a.url {
            Some(url) => build_from_url(&t, &team, url).await?,
            None => newest_one_off(&t).await?,
        },
    };
    let code = stream(
        &t.client,
        build.id,
        a.timestamps,
        a.ignore_event_parsing_errors,
    )
    .await?;
    std::process::exit(code);
}

/// `watch -u`: the URL's origin must be the target's; `/teams/T/pipelines/P/jobs/J/builds/N`
/// (instance vars from the query) or `/builds/ID`.
async fn build_from_url(t: &super::client::Target, team: &str, raw: &str) -> Result<api::Build> {
    let u = reqwest::Url::parse(raw).map_err(|e| anyhow!("{e}"))?;
    let origin = match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
        (Some(h), None) => format!("{}://{h}", u.scheme()),
        _ => format!("{}://", u.scheme()),
    };
    if origin != t.client.url {
        bail!("URL doesn't match target ({raw}, {})", t.client.url);
    }
    let parts: Vec<&str> = u.path().trim_start_matches('/').split('/').collect();
    let seg_of = |key: &str| {
        parts
            .chunks(2)
            .find(|c| c.len() == 2 && c[0] == key)
            .map(|c| c[1].to_string())
    };
    if let Some(url_team) = seg_of("teams") {
        if url_team != team {
            bail!("Team in URL doesn't match the provided team name or current team of the target  ({raw}, {team})");
        }
    }
    match (seg_of("pipelines"), seg_of("jobs"), seg_of("builds")) {
        (Some(p), Some(j), build) => {
            let query: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k.starts_with("vars"))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let job_path = format!(
                "{}/jobs/{}",
                pipeline_path(team, &crate::config::refs::PipelineRef::named(&p)),
                seg(&j)
            );
            match build {
                Some(name) => {
                    t.client
                        .get_json(&format!("{job_path}/builds/{}", seg(&name)), &query)
                        .await
                }
                None => {
                    let job: api::Job = t.client.get_json(&job_path, &query).await?;
                    job.next_build
                        .or(job.finished_build)
                        .ok_or_else(|| anyhow!("job has no builds"))
                }
            }
        }
        (_, _, Some(id)) => {
            let id: i64 = id.parse().map_err(|e| anyhow!("{e}"))?;
            t.client
                .get_json(&format!("/api/v1/builds/{id}"), &[])
                .await
        }
        _ => bail!("No build found in {raw}"),
    }
}

/// `watch` with no flags: the newest build without a job (a one-off), paging 100 at a time.
async fn newest_one_off(t: &super::client::Target) -> Result<api::Build> {
    let mut to: Option<i64> = None;
    loop {
        let mut q = vec![("limit".to_string(), "100".to_string())];
        if let Some(to) = to {
            q.push(("to".into(), to.to_string()));
        }
        let page: Vec<api::Build> = t
            .client
            .get_json("/api/v1/builds", &q)
            .await
            .map_err(|e| anyhow!("failed to get builds {e}"))?;
        if let Some(b) = page.iter().find(|b| b.job_name.is_empty()) {
            return Ok(b.clone());
        }
        match page.iter().map(|b| b.id).min() {
            Some(min) if page.len() >= 100 && min > 1 => to = Some(min - 1),
            _ => bail!("no builds match job"),
        }
    }
}

/// Renders one event; returns the exit code once the build's final status is known.
struct Renderer {
    exit: i32,
    timestamps: bool,
}

impl Renderer {
    fn print(&self, text: &str, time: i64) {
        let mut out = std::io::stdout();
        if self.timestamps {
            let t = chrono::DateTime::from_timestamp(time, 0)
                .map(|d| {
                    d.with_timezone(&chrono::Local)
                        .format("%H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            let _ = write!(out, "{t}  ");
        }
        let _ = write!(out, "{text}");
        let _ = out.flush();
    }

    /// Some(code) when rendering stops (a terminal status).
    fn event(&mut self, event: &BuildEvent) -> Result<Option<i32>, String> {
        let time = event.time();
        let tty = ui::stdout_is_tty();
        let bold = |s: &str| ui::paint(s, "1", tty);
        match event {
            BuildEvent::Log(l) => self.print(&l.payload, time),
            BuildEvent::WaitingForWorker(_) => self.print(
                &format!(
                    "{}\n",
                    bold("no suitable workers found, waiting for worker...")
                ),
                time,
            ),
            BuildEvent::SelectedWorker(w) => self.print(
                &format!("{} {}\n", bold("selected worker:"), w.selected_worker),
                time,
            ),
            BuildEvent::StreamingVolume(v) => self.print(
                &format!(
                    "{} {} {} {}\n",
                    bold("streaming volume"),
                    v.volume,
                    bold("from worker"),
                    v.source_worker
                ),
                time,
            ),
            BuildEvent::WaitingForStreamedVolume(v) => self.print(
                &format!(
                    "{} {} {}\n",
                    bold("waiting for volume"),
                    v.volume,
                    bold("to be streamed by another step")
                ),
                time,
            ),
            BuildEvent::InitializeCheck(c) => self.print(
                &format!("{} {}\n", bold("initializing check:"), c.name),
                time,
            ),
            BuildEvent::InitializeTask(_) => {
                self.print(&format!("{}\n", bold("initializing")), time)
            }
            BuildEvent::StartTask(t) => {
                let run = &t.config.run;
                let mut line = run.path.clone();
                for arg in &run.args {
                    line.push(' ');
                    line.push_str(arg);
                }
                self.print(&format!("{}\n", bold(&format!("running {line}"))), time);
            }
            // The last task's status decides a failed build's exit code.
            BuildEvent::FinishTask(t) => self.exit = t.exit_status,
            BuildEvent::Error(e) => {
                self.print(&format!("{}\n", ui::paint(&e.message, "1;31", tty)), time)
            }
            BuildEvent::Status(s) => {
                let status = s.status.as_str();
                if status == "started" {
                    return Ok(None);
                }
                self.print(
                    &format!("{}\n", ui::paint(status, ui::status_color(status), tty)),
                    time,
                );
                let code = match status {
                    "succeeded" => 0,
                    "failed" => 1,
                    "errored" => 2,
                    "aborted" => 3,
                    other => {
                        eprintln!("unknown status: {other}");
                        return Ok(Some(255));
                    }
                };
                return Ok(Some(if code == 1 && self.exit != 0 {
                    self.exit
                } else {
                    code
                }));
            }
            BuildEvent::InitializeGet(_)
            | BuildEvent::StartGet(_)
            | BuildEvent::FinishGet(_)
            | BuildEvent::InitializePut(_)
            | BuildEvent::StartPut(_)
            | BuildEvent::FinishPut(_)
            | BuildEvent::Initialize(_)
            | BuildEvent::Start(_)
            | BuildEvent::Finish(_)
            | BuildEvent::SetPipelineChanged(_)
            | BuildEvent::ImageCheck(_)
            | BuildEvent::ImageGet(_)
            | BuildEvent::AcrossSubsteps(_) => {}
            // Upstream's parser errors, so fly stops (or skips it with
            // `--ignore-event-parsing-errors`).
            BuildEvent::Unknown(raw) => {
                return Err(match BuildEvent::supported_version(&raw.event) {
                    Some(known) => format!(
                        "unknown event version: {} version {} (supported versions: {known})",
                        raw.event, raw.version
                    ),
                    None => format!("unknown event type: {}", raw.event),
                })
            }
        }
        Ok(None)
    }
}

/// How long fly keeps reconnecting to a build's event stream that broke off before the
/// build ended (a web node restarting, a load balancer moving it to another node).
const RECONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Streams `GET /api/v1/builds/:id/events`, rendering until the final status or `end`;
/// returns fly's exit code. A stream that breaks off first is resumed from the last event
/// seen (`Last-Event-ID`), as upstream's SSE client does, so nothing is shown twice.
pub async fn stream(
    client: &super::client::Client,
    build_id: i64,
    timestamps: bool,
    ignore_errors: bool,
) -> Result<i32> {
    let mut renderer = Renderer {
        exit: 0,
        timestamps,
    };
    let mut last_id: Option<String> = None;
    // Since when the stream has been broken with no event got through; None while it is
    // healthy (and before the first connection, whose failure is an error at once).
    let mut broken_since: Option<std::time::Instant> = None;
    loop {
        let mut rb = client.get(&format!("/api/v1/builds/{build_id}/events"));
        if let Some(id) = &last_id {
            rb = rb.header("Last-Event-ID", id);
        }
        let resp = match (client.execute(rb).await, broken_since) {
            (Ok(resp), _) => resp,
            (Err(e), None) => return Err(e.into()),
            (Err(e), Some(t)) if t.elapsed() >= RECONNECT_FOR => {
                bail!("lost the build's event stream: {e}")
            }
            (Err(_), Some(_)) => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        super::client::check_status(resp.status(), b"")?;
        let seen = last_id.clone();
        if let Some(code) = read_events(resp, &mut renderer, &mut last_id, ignore_errors).await {
            return Ok(code);
        }
        match broken_since {
            Some(t) if last_id == seen => {
                if t.elapsed() >= RECONNECT_FOR {
                    bail!("lost the build's event stream: it keeps ending before the build");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            _ => broken_since = Some(std::time::Instant::now()),
        }
    }
}

/// Renders one connection's events; Some(exit code) when the build's stream ended, None
/// when the connection broke off first.
async fn read_events(
    resp: reqwest::Response,
    renderer: &mut Renderer,
    last_id: &mut Option<String>,
    ignore_errors: bool,
) -> Option<i32> {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let (mut name, mut data, mut id) = (String::new(), String::new(), None::<String>);
    while let Some(Ok(chunk)) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(nl) = buf.find('\n') {
            let line: String = buf.drain(..=nl).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                match name.as_str() {
                    "end" => return Some(renderer.exit),
                    "event" => {
                        let parsed: Result<BuildEvent, String> =
                            serde_json::from_str(&data).map_err(|e| e.to_string());
                        match parsed.and_then(|env| renderer.event(&env)) {
                            Ok(Some(code)) => return Some(code),
                            Ok(None) => {}
                            Err(e) if ignore_errors => eprintln!("{e}"),
                            Err(e) => {
                                eprintln!(
                                    "{}",
                                    ui::paint(
                                        &format!("failed to parse next event: {e}"),
                                        "1;31",
                                        ui::stderr_is_tty()
                                    )
                                );
                                return Some(255);
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(id) = id.take() {
                    *last_id = Some(id);
                }
                name.clear();
                data.clear();
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data = v.strip_prefix(' ').unwrap_or(v).to_string();
            } else if line == "data" {
                data.clear();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_string());
            }
        }
    }
    None
}
