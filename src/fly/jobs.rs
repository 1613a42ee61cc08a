//! Job commands: `jobs`, `pause-job`, `unpause-job`.

use super::cli::{JobArgs, JobsArgs};
use super::client::{pipeline_path, seg, FlyError};
use super::pipelines::connect;
use super::table::{Cell, Table};
use super::{print_json, ui, Global};
use crate::config::refs::{parse_pipeline_child, PipelineRef};
use crate::proto::api;
use anyhow::{bail, Result};

fn status_cell(b: Option<&api::BuildSummary>) -> Cell {
    match b {
        Some(b) => Cell::colored(b.status.clone(), ui::status_color(&b.status)),
        None => Cell::new("n/a"),
    }
}

pub async fn jobs(g: &Global, a: &JobsArgs) -> Result<()> {
    let pipeline = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!("{}/jobs", pipeline_path(&team, &pipeline));
    let jobs: Vec<api::JobSummary> = t.client.get_json(&path, &pipeline.query()).await?;
    if a.json {
        return print_json(&jobs);
    }
    let mut table = Table::new(&["name", "paused", "status", "next"]);
    for j in &jobs {
        table.push(vec![
            j.name.clone().into(),
            Cell::yes_no(j.paused),
            status_cell(j.finished_build.as_ref()),
            status_cell(j.next_build.as_ref()),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

pub async fn pause_job(g: &Global, a: &JobArgs, pause: bool) -> Result<()> {
    let (pipeline, job) = parse_pipeline_child(&a.job, "job")?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let (action, done) = if pause {
        ("pause", "paused")
    } else {
        ("unpause", "unpaused")
    };
    let path = format!(
        "{}/jobs/{}/{action}",
        pipeline_path(&team, &pipeline),
        seg(&job)
    );
    match t
        .client
        .send(t.client.put(&path).query(&pipeline.query()))
        .await
    {
        Ok(_) => {
            println!("{done} '{job}'");
            Ok(())
        }
        Err(FlyError::NotFound(_)) => {
            bail!("{}/{job} not found on team {team}\n", pipeline.display())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn paused_jobs(g: &Global, a: &JobsArgs) -> Result<()> {
    let pipeline = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!("{}/jobs", pipeline_path(&team, &pipeline));
    let mut jobs: Vec<api::JobSummary> = t.client.get_json(&path, &pipeline.query()).await?;
    jobs.retain(|j| j.paused);
    if a.json {
        return print_json(&jobs);
    }
    let mut table = Table::new(&["name", "paused", "paused_by", "paused_at"]);
    for j in &jobs {
        table.push(vec![
            j.name.clone().into(),
            Cell::new(if j.paused { "yes" } else { "no" }),
            Cell::new(if j.paused_by.is_empty() {
                "n/a".to_string()
            } else {
                j.paused_by.clone()
            }),
            Cell::new(if j.paused_at == 0 {
                "n/a".to_string()
            } else {
                super::pipelines::format_time(j.paused_at)
            }),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}
