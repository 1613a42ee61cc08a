//! Pipeline commands other than `set-pipeline`: get, destroy, list, pause/unpause,
//! expose/hide, rename, order, archive.

use super::cli::{
    ArchivePipelineArgs, DestroyPipelineArgs, GetPipelineArgs, OrderPipelinesArgs,
    PausedPipelinesArgs, PipelineArgs, PipelineOrAllArgs, PipelinesArgs, RenamePipelineArgs,
};
use super::client::{fail, pipeline_path, seg, FlyError, Target};
use super::setpipeline::show_warnings;
use super::table::{Cell, Table};
use super::{print_json, ui, yaml, Global};
use crate::config::refs::PipelineRef;
use crate::proto::api;
use anyhow::{anyhow, bail, Result};

/// Loads the target, runs the version check and resolves `--team`.
pub async fn connect(g: &Global, team: Option<&str>) -> Result<(Target, String)> {
    let target = Target::load(g.target.as_deref(), g.verbose)?;
    target.validate().await?;
    let team = target.resolve_team(team).await?;
    Ok((target, team))
}

async fn list_team_pipelines(t: &Target, team: &str) -> Result<Vec<api::Pipeline>> {
    t.client
        .get_json(&format!("/api/v1/teams/{}/pipelines", seg(team)), &[])
        .await
}

fn pipeline_ref(p: &api::Pipeline) -> PipelineRef {
    PipelineRef::from_api(&p.name, p.instance_vars.as_ref())
}

pub async fn get_pipeline(g: &Global, a: &GetPipelineArgs) -> Result<()> {
    let pipeline = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!("{}/config", pipeline_path(&team, &pipeline));
    let resp = match t
        .client
        .send(t.client.get(&path).query(&pipeline.query()))
        .await
    {
        Ok(r) => r,
        Err(FlyError::NotFound(_)) => bail!("pipeline not found"),
        Err(e) => return Err(e.into()),
    };
    let config = resp.json::<api::ConfigResponse>()?.config;
    if a.json {
        print!("{}", serde_json::to_string(&config)?);
    } else {
        print!("{}", yaml::emit(&config));
    }
    Ok(())
}

pub async fn destroy_pipeline(g: &Global, a: &DestroyPipelineArgs) -> Result<()> {
    let pipeline = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let c = &t.client;
    let path = pipeline_path(&team, &pipeline);
    let name = pipeline.display();
    match c.send(c.get(&path).query(&pipeline.query())).await {
        Ok(_) => {}
        Err(FlyError::NotFound(_)) => {
            println!("`{name}` does not exist");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    println!("!!! this will remove all data for pipeline `{name}`");
    println!();
    if !a.non_interactive && !ui::confirm("are you sure?") {
        println!("bailing out");
        return Ok(());
    }
    match c
        .send(
            c.request(reqwest::Method::DELETE, &path)
                .query(&pipeline.query()),
        )
        .await
    {
        Ok(_) => println!("`{name}` deleted"),
        Err(FlyError::NotFound(_)) => println!("`{name}` does not exist"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Go's `time.Time.String()` in local time (a missing time is the epoch, as upstream). chrono knows no zone abbreviations, so only
/// UTC gets one (the common case on CI machines and servers).
pub(crate) fn format_time(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let base = t.format("%Y-%m-%d %H:%M:%S %z").to_string();
            if t.offset().local_minus_utc() == 0 {
                format!("{base} UTC")
            } else {
                base
            }
        }
        _ => "n/a".into(),
    }
}

pub async fn pipelines(g: &Global, a: &PipelinesArgs) -> Result<()> {
    if a.all && a.team.is_some() {
        bail!("Cannot specify both --all and --team");
    }
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let mut list: Vec<api::Pipeline> = if a.all {
        t.client.get_json("/api/v1/pipelines", &[]).await?
    } else {
        list_team_pipelines(&t, &team).await?
    };
    if !a.include_archived {
        list.retain(|p| !p.archived);
    }
    if a.json {
        return print_json(&list);
    }
    let mut headers = vec!["id", "name"];
    if a.all {
        headers.push("team");
    }
    headers.extend(["paused", "public"]);
    if a.include_archived {
        headers.push("archived");
    }
    headers.push("last updated");
    let mut table = Table::new(&headers);
    for p in &list {
        let mut row: Vec<Cell> = vec![p.id.to_string().into(), pipeline_ref(p).display().into()];
        if a.all {
            row.push(p.team_name.clone().into());
        }
        row.push(Cell::yes_no(p.paused));
        row.push(Cell::yes_no(p.public));
        if a.include_archived {
            row.push(Cell::yes_no(p.archived));
        }
        row.push(format_time(p.last_updated).into());
        table.push(row);
    }
    table.print(g.print_table_headers);
    Ok(())
}

/// `-p` or `-a`, exactly one.
fn pipeline_or_all(pipeline: &Option<String>, all: bool) -> Result<()> {
    match (pipeline.is_some(), all) {
        (false, false) => Err(fail(
            "one of the flags '-p, --pipeline' or '-a, --all' is required",
        )),
        (true, true) => Err(fail(
            "only one of the flags '-p, --pipeline' or '-a, --all' is allowed",
        )),
        _ => Ok(()),
    }
}

pub async fn pause_pipeline(g: &Global, a: &PipelineOrAllArgs, pause: bool) -> Result<()> {
    pipeline_or_all(&a.pipeline, a.all)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let refs: Vec<PipelineRef> = match &a.pipeline {
        Some(p) => vec![PipelineRef::parse(p)?],
        None => list_team_pipelines(&t, &team)
            .await?
            .iter()
            .map(pipeline_ref)
            .collect(),
    };
    let (action, done) = if pause {
        ("pause", "paused")
    } else {
        ("unpause", "unpaused")
    };
    for p in refs {
        let path = format!("{}/{action}", pipeline_path(&team, &p));
        match t.client.send(t.client.put(&path).query(&p.query())).await {
            Ok(_) => println!("{done} '{}'", p.display()),
            Err(FlyError::NotFound(_)) => {
                return Err(fail(format!("pipeline '{}' not found\n", p.display())))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub async fn expose_pipeline(g: &Global, a: &PipelineArgs, expose: bool) -> Result<()> {
    let p = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let (action, done) = if expose {
        ("expose", "exposed")
    } else {
        ("hide", "hid")
    };
    let path = format!("{}/{action}", pipeline_path(&team, &p));
    match t.client.send(t.client.put(&path).query(&p.query())).await {
        Ok(_) => println!("{done} '{}'", p.display()),
        Err(FlyError::NotFound(_)) => {
            return Err(fail(format!("pipeline '{}' not found\n", p.display())))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

pub async fn rename_pipeline(g: &Global, a: &RenamePipelineArgs) -> Result<()> {
    if a.old_name.contains('/') {
        bail!("old pipeline name cannot contain '/'");
    }
    if a.new_name.contains('/') {
        bail!("new pipeline name cannot contain '/'");
    }
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!(
        "{}/rename",
        pipeline_path(&team, &PipelineRef::named(&a.old_name))
    );
    let body = api::RenameRequest {
        name: a.new_name.clone(),
    };
    match t.client.send(t.client.put(&path).json(&body)).await {
        Ok(resp) => {
            let saved: api::SaveConfigResponse =
                serde_json::from_slice(&resp.body).unwrap_or_default();
            show_warnings(&saved.warnings);
            println!("pipeline successfully renamed to '{}'", a.new_name);
            Ok(())
        }
        Err(FlyError::NotFound(_)) => Err(fail(format!("pipeline '{}' not found\n", a.old_name))),
        Err(FlyError::Unexpected {
            code: 400, body, ..
        }) => {
            let errors = serde_json::from_str::<api::SaveConfigResponse>(&body)
                .map(|r| r.errors)
                .unwrap_or_default();
            Err(anyhow!(
                "{}",
                if errors.is_empty() {
                    body
                } else {
                    errors.join("\n")
                }
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn order_pipelines(g: &Global, a: &OrderPipelinesArgs) -> Result<()> {
    if a.pipeline.is_empty() && !a.alphabetical {
        return Err(fail(
            "error: either --pipeline or --alphabetical are required",
        ));
    }
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let names: Vec<String> = if a.alphabetical {
        let mut names: Vec<String> = list_team_pipelines(&t, &team)
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect();
        names.sort();
        names.dedup();
        names
    } else {
        if let Some(p) = a.pipeline.iter().find(|p| p.contains('/')) {
            bail!("pipeline name {p:?} cannot contain '/'");
        }
        a.pipeline.clone()
    };
    let path = format!("/api/v1/teams/{}/pipelines/ordering", seg(&team));
    if let Err(e) = t.client.send(t.client.put(&path).json(&names)).await {
        return Err(fail(format!("failed to order pipelines: {e}")));
    }
    println!("ordered pipelines ");
    for n in &names {
        println!("  - {n} ");
    }
    Ok(())
}

pub async fn archive_pipeline(g: &Global, a: &ArchivePipelineArgs) -> Result<()> {
    pipeline_or_all(&a.pipeline, a.all)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let refs: Vec<PipelineRef> = match &a.pipeline {
        Some(p) => vec![PipelineRef::parse(p)?],
        None => list_team_pipelines(&t, &team)
            .await?
            .iter()
            .filter(|p| !p.archived)
            .map(pipeline_ref)
            .collect(),
    };
    if refs.is_empty() {
        println!("there are no unarchived pipelines");
        println!("bailing out");
        return Ok(());
    }
    if !a.non_interactive {
        if refs.len() > 1 {
            let mut table = Table::new(&["pipelines"]);
            for r in &refs {
                table.push(vec![r.display().into()]);
            }
            table.print(g.print_table_headers);
            println!();
        }
        println!("!!! archiving the pipeline will remove its configuration. Build history will be retained.");
        println!();
        let question = if refs.len() == 1 {
            format!("archive pipeline '{}'?", refs[0].display())
        } else {
            format!("archive {} pipelines?", refs.len())
        };
        if !ui::confirm(&question) {
            println!("bailing out");
            return Ok(());
        }
    }
    for p in refs {
        let path = format!("{}/archive", pipeline_path(&team, &p));
        match t.client.send(t.client.put(&path).query(&p.query())).await {
            Ok(_) => println!("archived '{}'", p.display()),
            Err(FlyError::NotFound(_)) => {
                return Err(fail(format!("pipeline '{}' not found\n", p.display())))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn paused_cells(paused: bool, by: &str, at: i64) -> Vec<Cell> {
    vec![
        Cell::new(if paused { "yes" } else { "no" }),
        Cell::new(if by.is_empty() {
            "n/a".to_string()
        } else {
            by.to_string()
        }),
        Cell::new(if at == 0 {
            "n/a".to_string()
        } else {
            format_time(at)
        }),
    ]
}

pub async fn paused_pipelines(g: &Global, a: &PausedPipelinesArgs) -> Result<()> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    t.validate().await?;
    let mut list: Vec<api::Pipeline> = if a.all {
        t.client.get_json("/api/v1/pipelines", &[]).await?
    } else {
        list_team_pipelines(&t, t.team()).await?
    };
    list.retain(|p| p.paused);
    if a.json {
        return print_json(&list);
    }
    let mut headers = vec!["id", "name"];
    if a.all {
        headers.push("team");
    }
    headers.extend(["paused", "paused_by", "paused_at"]);
    let mut table = Table::new(&headers);
    for p in &list {
        let mut row: Vec<Cell> = vec![p.id.to_string().into(), pipeline_ref(p).display().into()];
        if a.all {
            row.push(p.team_name.clone().into());
        }
        row.extend(paused_cells(p.paused, &p.paused_by, p.paused_at));
        table.push(row);
    }
    table.print(g.print_table_headers);
    Ok(())
}

/// Job names per group as a Checkman file; jobs in no group go under `misc` (or the
/// pipeline's name when there are no groups).
pub fn checkfile(team: &str, pipeline: &str, config: &serde_json::Value, url: &str) -> String {
    let names = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let groups: Vec<(String, Vec<String>)> = config
        .get("groups")
        .and_then(serde_json::Value::as_array)
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    (
                        g.get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or_default()
                            .to_string(),
                        names(g.get("jobs")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut orphans: Vec<String> = config
        .get("jobs")
        .and_then(serde_json::Value::as_array)
        .map(|js| {
            js.iter()
                .filter_map(|j| j.get("name").and_then(|n| n.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    orphans.retain(|j| !groups.iter().any(|(_, jobs)| jobs.contains(j)));
    orphans.sort();
    orphans.dedup();
    let mut out = String::new();
    let mut print_group = |name: &str, jobs: &[String]| {
        out.push_str(&format!("#- {name}\n"));
        for job in jobs {
            out.push_str(&format!(
                "{job}: concourse.check {url} {team} {pipeline} {job}\n"
            ));
        }
        out.push('\n');
    };
    for (name, jobs) in &groups {
        print_group(name, jobs);
    }
    if !orphans.is_empty() {
        print_group(if groups.is_empty() { pipeline } else { "misc" }, &orphans);
    }
    out
}

pub async fn checklist(g: &Global, a: &PipelineArgs) -> Result<()> {
    let pipeline = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!("{}/config", pipeline_path(&team, &pipeline));
    let config = match t
        .client
        .send(t.client.get(&path).query(&pipeline.query()))
        .await
    {
        Ok(resp) => resp.json::<api::ConfigResponse>()?.config,
        Err(FlyError::NotFound(_)) => serde_json::Value::Null,
        Err(e) => return Err(e.into()),
    };
    print!(
        "{}",
        checkfile(&team, &pipeline.display(), &config, &t.client.url)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checklist_lists_grouped_jobs_then_the_rest() {
        let config = json!({"groups": [{"name": "g", "jobs": ["a"]}], "jobs": [{"name": "a"}, {"name": "c"}, {"name": "b"}]});
        assert_eq!(
            checkfile("main", "p", &config, "http://ci"),
            "#- g\na: concourse.check http://ci main p a\n\n#- misc\nb: concourse.check http://ci main p b\nc: concourse.check http://ci main p c\n\n"
        );
        let ungrouped = json!({"jobs": [{"name": "a"}]});
        assert_eq!(
            checkfile("main", "p", &ungrouped, "u"),
            "#- p\na: concourse.check u main p a\n\n"
        );
    }
}
