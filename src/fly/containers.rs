//! `containers`, `volumes` and `clear-task-cache` (fly-cli.md §4.5, §4.3).

use super::client::{pipeline_path, seg};
use super::pipelines::connect;
use super::table::{Cell, Table};
use super::{print_json, ui, Global};
use crate::config::refs::{parse_pipeline_child, PipelineRef};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `atc.Container` with upstream's JSON tags (what `--json` re-encodes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    pub id: String,
    pub worker_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub step_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub attempt: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub pipeline_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub job_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub build_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub resource_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub resource_type_id: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pipeline_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub job_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub build_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_type_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_directory: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expires_in: String,
}

/// `atc.Volume`: every key always present.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub id: String,
    pub worker_name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub container_handle: String,
    pub path: String,
    pub parent_handle: String,
    pub resource_type: Option<Value>,
    pub base_resource_type: Option<Value>,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    pub pipeline_instance_vars: Option<Value>,
    pub job_name: String,
    pub step_name: String,
}

#[derive(Debug, clap::Args)]
pub struct ContainersArgs {
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
    /// Name of the team to which the containers belong, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VolumesArgs {
    /// Print additional information for each volume
    #[arg(short = 'd', long)]
    pub details: bool,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ClearTaskCacheArgs {
    /// Job to clear cache from
    #[arg(short = 'j', long, value_name = "PIPELINE/JOB", required = true)]
    pub job: String,
    /// Step name to clear cache from
    #[arg(short = 's', long = "step", required = true)]
    pub step: String,
    /// Cache directory to clear out
    #[arg(short = 'c', long, default_value = "")]
    pub cache_path: String,
    /// Destroy the task cache(s) without confirmation
    #[arg(short = 'n', long)]
    pub non_interactive: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

fn or_none(s: &str) -> Cell {
    if s.is_empty() {
        Cell::none()
    } else {
        Cell::new(s)
    }
}

pub async fn containers(g: &Global, a: &ContainersArgs) -> Result<()> {
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let mut list: Vec<Container> = t
        .client
        .get_json(&format!("/api/v1/teams/{}/containers", seg(&team)), &[])
        .await?;
    if a.json {
        return print_json(&list);
    }
    list.sort_by(|x, y| x.id.cmp(&y.id));
    let mut table = Table::new(&[
        "handle", "worker", "pipeline", "job", "build #", "build id", "type", "name", "attempt",
    ]);
    for c in &list {
        let pipeline = if c.pipeline_name.is_empty() {
            String::new()
        } else {
            PipelineRef::from_api(&c.pipeline_name, c.pipeline_instance_vars.as_ref()).display()
        };
        let name = if c.step_name.is_empty() {
            &c.resource_name
        } else {
            &c.step_name
        };
        table.push(vec![
            Cell::new(c.id.clone()),
            Cell::new(c.worker_name.clone()),
            or_none(&pipeline),
            or_none(&c.job_name),
            or_none(&c.build_name),
            if c.build_id == 0 {
                Cell::none()
            } else {
                Cell::new(c.build_id.to_string())
            },
            or_none(&c.type_),
            or_none(name),
            if c.attempt.is_empty() {
                Cell::new("n/a")
            } else {
                Cell::new(c.attempt.clone())
            },
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

/// A version map the way upstream prints it: `k:v` pairs, sorted, comma-joined.
fn present_map(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}:{s}"),
                    other => format!("{k}:{other}"),
                })
                .collect();
            pairs.sort();
            pairs.join(",").replace(' ', "")
        }
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn identifier(v: &Volume, details: bool) -> String {
    match v.type_.as_str() {
        "container" if details => {
            let mut id = format!("container:{},path:{}", v.container_handle, v.path);
            if !v.parent_handle.is_empty() {
                id.push_str(&format!(",parent:{}", v.parent_handle));
            }
            id
        }
        "container" => v.container_handle.clone(),
        "task-cache" => format!("{}/{}/{}", v.pipeline_name, v.job_name, v.step_name),
        "resource" => {
            let rt = v.resource_type.clone().unwrap_or_default();
            if details {
                present_map(&rt["base_resource_type"])
            } else {
                present_map(&rt["version"])
            }
        }
        "resource-type" => {
            let base = v.base_resource_type.clone().unwrap_or_default();
            if details {
                present_map(&base)
            } else {
                base["name"].as_str().unwrap_or_default().to_string()
            }
        }
        _ => "n/a".into(),
    }
}

pub async fn volumes(g: &Global, a: &VolumesArgs) -> Result<()> {
    // Upstream's volumes has no --team: always the target's team.
    let (t, team) = connect(g, None).await?;
    let mut list: Vec<Volume> = t
        .client
        .get_json(&format!("/api/v1/teams/{}/volumes", seg(&team)), &[])
        .await?;
    if a.json {
        return print_json(&list);
    }
    list.sort_by(|x, y| (&x.worker_name, &x.id).cmp(&(&y.worker_name, &y.id)));
    let mut table = Table::new(&["handle", "worker", "type", "identifier"]);
    for v in &list {
        table.push(vec![
            Cell::new(v.id.clone()),
            Cell::new(v.worker_name.clone()),
            Cell::new(v.type_.clone()),
            Cell::new(identifier(v, a.details)),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

#[derive(Deserialize)]
struct CachesRemoved {
    caches_removed: i64,
}

pub async fn clear_task_cache(g: &Global, a: &ClearTaskCacheArgs) -> Result<()> {
    let (pipeline, job) = parse_pipeline_child(&a.job, "job")?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let mut warning = format!(
        "!!! this will remove the task cache(s) for `{}/{job}`, task step `{}`",
        pipeline.display(),
        a.step
    );
    if !a.cache_path.is_empty() {
        warning.push_str(&format!(", at `{}`", a.cache_path));
    }
    println!("{warning}\n");
    if !a.non_interactive && !ui::confirm("are you sure?") {
        println!("bailing out");
        return Ok(());
    }
    let path = format!(
        "{}/jobs/{}/tasks/{}/cache",
        pipeline_path(&team, &pipeline),
        seg(&job),
        seg(&a.step)
    );
    let mut query = pipeline.query();
    if !a.cache_path.is_empty() {
        query.push(("cache_path".into(), a.cache_path.clone()));
    }
    let c = &t.client;
    let resp = c
        .send(c.request(reqwest::Method::DELETE, &path).query(&query))
        .await?;
    let removed: CachesRemoved = resp.json()?;
    println!("{} caches removed", removed.caches_removed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_identifiers_follow_the_type() {
        let v = Volume {
            type_: "task-cache".into(),
            pipeline_name: "p".into(),
            job_name: "j".into(),
            step_name: "s".into(),
            ..Default::default()
        };
        assert_eq!(identifier(&v, false), "p/j/s");
        let v = Volume {
            type_: "resource".into(),
            resource_type: Some(json!({"version": {"v": "1", "a": "b"}})),
            ..Default::default()
        };
        assert_eq!(identifier(&v, false), "a:b,v:1");
        let v = Volume {
            type_: "artifact".into(),
            ..Default::default()
        };
        assert_eq!(identifier(&v, true), "n/a");
    }
}
