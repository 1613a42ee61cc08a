//! `schedule-job`, `order-instanced-pipelines`, `clear-resource-cache`, `clear-versions`, `health`.

use super::client::{pipeline_path, seg, Target};
use super::pipelines::connect;
use super::resources::{parse_version, Version};
use super::table::{Cell, Table};
use super::{print_json, ui, Global};
use crate::config::refs::{parse_instance_vars, parse_pipeline_child, PipelineRef};
use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct ScheduleJobArgs {
    /// Name of a job to schedule
    #[arg(short = 'j', long, required = true, value_name = "PIPELINE/JOB")]
    pub job: String,
}

#[derive(Debug, clap::Args)]
pub struct OrderInstancedPipelinesArgs {
    /// Name of the instance group
    #[arg(short = 'g', long, required = true)]
    pub group: String,
    /// Instance vars identifying a pipeline of the group (repeatable, in the wanted order)
    #[arg(
        short = 'p',
        long = "pipeline",
        required = true,
        value_name = "INSTANCE_VARS"
    )]
    pub pipelines: Vec<String>,
    /// Name of the team to which the pipelines belong, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ClearResourceCacheArgs {
    /// Name of a resource to clear cache
    #[arg(short = 'r', long, required = true, value_name = "PIPELINE/RESOURCE")]
    pub resource: String,
    /// Version of the resource to clear (k:v, repeatable); without it every cache of the resource goes
    #[arg(short = 'v', long, value_name = "VERSION")]
    pub version: Vec<String>,
    /// Name of the team to which the pipeline/resource belong, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ClearVersionsArgs {
    /// Name of a resource to clear versions
    #[arg(long, value_name = "PIPELINE/RESOURCE")]
    pub resource: Option<String>,
    /// Name of a resource type to clear versions
    #[arg(long, value_name = "PIPELINE/RESOURCE-TYPE")]
    pub resource_type: Option<String>,
    /// Skips interactions, uses default values
    #[arg(short = 'n', long)]
    pub non_interactive: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

pub async fn schedule_job(g: &Global, a: &ScheduleJobArgs) -> Result<()> {
    let (pipeline, job) = parse_pipeline_child(&a.job, "job")?;
    let (t, team) = connect(g, None).await?;
    let path = format!(
        "{}/jobs/{}/schedule",
        pipeline_path(&team, &pipeline),
        seg(&job)
    );
    match t
        .client
        .send(t.client.put(&path).query(&pipeline.query()))
        .await
    {
        Ok(_) => {
            println!("scheduled '{job}'");
            Ok(())
        }
        Err(e) if e.is_not_found() => bail!("{}/{job} not found\n", pipeline.display()),
        Err(e) => Err(e.into()),
    }
}

pub async fn order_instanced_pipelines(g: &Global, a: &OrderInstancedPipelinesArgs) -> Result<()> {
    if a.group.contains('/') {
        bail!("pipeline name cannot contain '/'");
    }
    let vars = a
        .pipelines
        .iter()
        .map(|p| parse_instance_vars(p).map(Value::Object))
        .collect::<Result<Vec<_>>>()?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!(
        "/api/v1/teams/{}/pipelines/{}/ordering",
        seg(&team),
        seg(&a.group)
    );
    if let Err(e) = t.client.send(t.client.put(&path).json(&vars)).await {
        return Err(super::client::fail(format!(
            "failed to order instanced pipelines: {e}"
        )));
    }
    println!("ordered instanced pipelines ");
    for v in vars {
        let r = PipelineRef::from_api(&a.group, Some(&v)).display();
        let shown = r.split_once('/').map(|(_, v)| v).unwrap_or_default();
        println!("  - {shown} ");
    }
    Ok(())
}

/// Go's `json.Marshal` of a version map: compact, keys sorted.
fn version_json(v: &Version) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub async fn clear_resource_cache(g: &Global, a: &ClearResourceCacheArgs) -> Result<()> {
    let (pipeline, resource) = parse_pipeline_child(&a.resource, "resource")?;
    let version = if a.version.is_empty() {
        None
    } else {
        Some(parse_version(&a.version)?)
    };
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let mut warning = format!(
        "!!! this will remove the resource cache(s) for `{}/{resource}`",
        pipeline.display()
    );
    if let Some(v) = &version {
        warning.push_str(&format!(" with version: `{}`", version_json(v)));
    }
    println!("{warning}\n");
    if !ui::confirm("are you sure?") {
        println!("bailing out");
        return Ok(());
    }
    let path = format!(
        "{}/resources/{}/cache",
        pipeline_path(&team, &pipeline),
        seg(&resource)
    );
    let mut rb = t
        .client
        .request(reqwest::Method::DELETE, &path)
        .query(&pipeline.query());
    if let Some(v) = &version {
        rb = rb.json(&json!({ "version": v }));
    }
    let resp = t.client.send(rb).await?;
    let n: Removed = resp.json()?;
    println!("{} caches removed", n.caches_removed);
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
struct Removed {
    #[serde(default)]
    caches_removed: i64,
    #[serde(default)]
    versions_removed: i64,
}

/// One entry of `atc.ResourcesAndTypes`.
#[derive(Debug, Deserialize)]
struct Shared {
    #[serde(default)]
    name: String,
    #[serde(default)]
    pipeline_name: String,
    #[serde(default)]
    team_name: String,
}

#[derive(Debug, Deserialize, Default)]
struct ResourcesAndTypes {
    #[serde(default)]
    resources: Vec<Shared>,
    #[serde(default)]
    resource_types: Vec<Shared>,
}

pub async fn clear_versions(g: &Global, a: &ClearVersionsArgs) -> Result<()> {
    let (arg, kind, what) = match (&a.resource, &a.resource_type) {
        (None, None) => {
            bail!("please specify one of the required flags --resource or --resource-type")
        }
        (Some(_), Some(_)) => bail!("can specify only one of --resource or --resource-type"),
        (Some(r), None) => (r, "resources", "resource"),
        (None, Some(r)) => (r, "resource-types", "resource type"),
    };
    let (pipeline, name) = parse_pipeline_child(arg, what)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let base = format!("{}/{kind}/{}", pipeline_path(&team, &pipeline), seg(&name));
    let shared: ResourcesAndTypes = match t
        .client
        .get_json(&format!("{base}/shared"), &pipeline.query())
        .await
    {
        Ok(s) => s,
        Err(e) if super::client::is_not_found(&e) => bail!("{what} '{name}' is not found"),
        Err(e) => return Err(e),
    };
    println!("!!! this will clear the version histories for the following resources:");
    for r in &shared.resources {
        println!("- {}/{}/{}", r.team_name, r.pipeline_name, r.name);
    }
    println!("\nand the following resource types:");
    for r in &shared.resource_types {
        println!("- {}/{}/{}", r.team_name, r.pipeline_name, r.name);
    }
    println!();
    if !a.non_interactive && !ui::confirm("are you sure?") {
        println!("bailing out");
        return Ok(());
    }
    let resp = t
        .client
        .send(
            t.client
                .request(reqwest::Method::DELETE, &format!("{base}/versions"))
                .query(&pipeline.query()),
        )
        .await?;
    let n: Removed = resp.json()?;
    println!("{} versions removed", n.versions_removed);
    Ok(())
}

fn health_cell(status: &str) -> Cell {
    match status {
        "ok" | "healthy" => Cell::colored(status, ui::status_color("succeeded")),
        "degraded" => Cell::colored(status, ui::status_color("started")),
        "failing" | "unhealthy" => Cell::colored(status, ui::status_color("failed")),
        _ => Cell::new(status),
    }
}

fn rfc3339_utc(s: &str) -> Option<String> {
    let d = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    if d.timestamp() <= 0 && d.format("%Y").to_string() == "0001" {
        return None;
    }
    Some(
        d.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    )
}

/// `health`: no version check; `GET /api/v1/health`.
pub async fn health(g: &Global, a: &HealthArgs) -> Result<()> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    let h: Value = t.client.get_json("/api/v1/health", &[]).await?;
    if a.json {
        return print_json(&h);
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut table = Table::new(&["subsystem", "status", "detail"]);
    table.push(vec![
        "overall".into(),
        health_cell(&s(&h, "status")),
        rfc3339_utc(&s(&h, "timestamp")).unwrap_or_default().into(),
    ]);
    let db = h.get("database").cloned().unwrap_or(Value::Null);
    table.push(vec![
        "database".into(),
        health_cell(&s(&db, "status")),
        s(&db, "error").into(),
    ]);
    let w = h.get("workers").cloned().unwrap_or(Value::Null);
    let num = |k: &str| w.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut detail = format!("{}/{} running", num("running"), num("total"));
    let unhealthy: Vec<&str> = w
        .get("unhealthy_workers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !unhealthy.is_empty() {
        detail.push_str(&format!(" (unhealthy: {})", unhealthy.join(", ")));
    }
    table.push(vec![
        "workers".into(),
        health_cell(&s(&w, "status")),
        detail.into(),
    ]);
    for c in h
        .get("components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let mut details = Vec::new();
        if c.get("paused").and_then(Value::as_bool).unwrap_or(false) {
            details.push("paused".to_string());
        }
        if let Some(t) = rfc3339_utc(&s(&c, "last_ran")) {
            details.push(format!("last ran: {t}"));
        }
        table.push(vec![
            s(&c, "name").into(),
            health_cell(&s(&c, "status")),
            details.join(", ").into(),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}
