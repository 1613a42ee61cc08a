//! Resource commands: `resources`, `resource-versions`, `pin-resource`, `unpin-resource`,
//! `enable-resource-version`, `disable-resource-version`, `check-resource` and
//! `check-resource-type` (fly-cli.md §4.4).

use super::builds::stream;
use super::client::{fail, pipeline_path, seg, FlyError, Target};
use super::pipelines::connect;
use super::table::{Cell, Table};
use super::{print_json, ui, Global};
use crate::config::refs::{parse_pipeline_child, PipelineRef};
use crate::proto::api;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A resource version as fly knows it (`atc.Version`); sorted like Go's map encoding.
pub type Version = BTreeMap<String, Value>;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `atc.BuildSummary` with the check build's public plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CheckBuild {
    #[serde(flatten)]
    pub summary: api::BuildSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
}

/// `atc.Resource`, re-encoded with upstream's tags for `--json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Resource {
    pub name: String,
    #[serde(default)]
    pub pipeline_id: i64,
    #[serde(default)]
    pub pipeline_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    #[serde(default)]
    pub team_name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_checked: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<Version>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pinned_in_config: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pin_comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<CheckBuild>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MetadataField {
    pub name: String,
    pub value: String,
}

/// `atc.ResourceVersion`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ResourceVersion {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataField>,
    #[serde(default)]
    pub version: Version,
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, clap::Args)]
pub struct ResourcesArgs {
    /// Get resources in this pipeline
    #[arg(short = 'p', long, required = true)]
    pub pipeline: String,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ResourceVersionsArgs {
    /// Number of versions you want to limit the return to
    #[arg(short = 'c', long, default_value_t = 50)]
    pub count: i64,
    /// Name of a resource to get versions for
    #[arg(short = 'r', long, required = true, value_name = "PIPELINE/RESOURCE")]
    pub resource: String,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PinResourceArgs {
    /// Name of the resource
    #[arg(short = 'r', long, required = true, value_name = "PIPELINE/RESOURCE")]
    pub resource: String,
    /// Version of the resource to pin (key:value, repeatable; the newest match is pinned)
    #[arg(short = 'v', long, value_name = "KEY:VALUE")]
    pub version: Vec<String>,
    /// Message to be saved to the pinned resource
    #[arg(short = 'c', long)]
    pub comment: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct UnpinResourceArgs {
    /// Name of the resource
    #[arg(short = 'r', long, required = true, value_name = "PIPELINE/RESOURCE")]
    pub resource: String,
}

#[derive(Debug, clap::Args)]
pub struct ResourceVersionArgs {
    /// Name of the resource
    #[arg(short = 'r', long, required = true, value_name = "PIPELINE/RESOURCE")]
    pub resource: String,
    /// Version of the resource (key:value, repeatable; the newest match is used)
    #[arg(short = 'v', long, required = true, value_name = "KEY:VALUE")]
    pub version: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CheckResourceArgs {
    /// Name of a resource to check version for
    #[arg(short = 'r', long, required = true, value_name = "PIPELINE/RESOURCE")]
    pub resource: String,
    /// Version of the resource to check from, e.g. ref:abcd or path:thing-1.2.3.tgz
    #[arg(short = 'f', long, value_name = "VERSION")]
    pub from: Vec<String>,
    /// Return the check without waiting for its result
    #[arg(short = 'a', long = "async")]
    pub async_: bool,
    /// Check the resource itself only
    #[arg(long)]
    pub shallow: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CheckResourceTypeArgs {
    /// Name of a resource-type to check
    #[arg(
        short = 'r',
        long = "resource-type",
        required = true,
        value_name = "PIPELINE/RESOURCE-TYPE"
    )]
    pub resource_type: String,
    /// Version of the resource type to check from, e.g. digest:sha256@...
    #[arg(short = 'f', long, value_name = "VERSION")]
    pub from: Vec<String>,
    /// Return the check without waiting for its result
    #[arg(short = 'a', long = "async")]
    pub async_: bool,
    /// Check the resource type itself only
    #[arg(long)]
    pub shallow: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

/// go-flags' map flag: each `key:value` splits at the first colon; later keys win.
pub fn parse_version(pairs: &[String]) -> Result<Version> {
    let mut version = Version::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| anyhow!("expected key:value for version, got '{pair}'"))?;
        version.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(version)
}

fn field(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `ui.PresentVersion`: `k:v` pairs sorted, comma-joined.
pub fn present_version(version: &Version) -> String {
    let mut pairs: Vec<String> = version
        .iter()
        .map(|(k, v)| format!("{k}:{}", field(v)))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// A version as Go's `json.Marshal` of a map prints it: compact, keys sorted.
fn version_json(version: &Version) -> String {
    serde_json::to_string(version).unwrap_or_default()
}

/// `PIPELINE[/vars]/RESOURCE` with the path of the resource on the target's team.
struct ResourceRef {
    pipeline: PipelineRef,
    name: String,
}

impl ResourceRef {
    fn parse(s: &str) -> Result<ResourceRef> {
        let (pipeline, name) = parse_pipeline_child(s, "resource")?;
        Ok(ResourceRef { pipeline, name })
    }

    fn display(&self) -> String {
        format!("{}/{}", self.pipeline.display(), self.name)
    }

    fn path(&self, team: &str) -> String {
        format!(
            "{}/resources/{}",
            pipeline_path(team, &self.pipeline),
            seg(&self.name)
        )
    }
}

pub async fn resources(g: &Global, a: &ResourcesArgs) -> Result<()> {
    let pipeline = PipelineRef::parse(&a.pipeline)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let path = format!("{}/resources", pipeline_path(&team, &pipeline));
    let resources: Vec<Resource> = t.client.get_json(&path, &pipeline.query()).await?;
    if a.json {
        return print_json(&resources);
    }
    let mut table = Table::new(&["name", "type", "pinned", "check status"]);
    for r in &resources {
        let pinned = match &r.pinned_version {
            Some(v) => Cell::new(present_version(v)),
            None => Cell::new("n/a"),
        };
        let status = match &r.build {
            Some(b) => Cell::colored(
                b.summary.status.clone(),
                ui::status_color(&b.summary.status),
            ),
            None => Cell::colored("n/a", ui::FAINT),
        };
        table.push(vec![
            r.name.clone().into(),
            r.type_.clone().into(),
            pinned,
            status,
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

async fn list_versions(
    t: &Target,
    team: &str,
    r: &ResourceRef,
    limit: Option<i64>,
    filter: &Version,
) -> Result<Vec<ResourceVersion>> {
    let mut query: Vec<(String, String)> = Vec::new();
    if let Some(limit) = limit.filter(|l| *l != 0) {
        query.push(("limit".into(), limit.to_string()));
    }
    for (k, v) in filter {
        query.push(("filter".into(), format!("{k}:{}", field(v))));
    }
    query.extend(r.pipeline.query());
    t.client
        .get_json(&format!("{}/versions", r.path(team)), &query)
        .await
}

pub async fn resource_versions(g: &Global, a: &ResourceVersionsArgs) -> Result<()> {
    let r = ResourceRef::parse(&a.resource)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let versions = list_versions(&t, &team, &r, Some(a.count), &Version::new()).await?;
    if a.json {
        return print_json(&versions);
    }
    let mut table = Table::new(&["id", "version", "enabled"]);
    for v in versions.iter().take(usize::try_from(a.count).unwrap_or(0)) {
        table.push(vec![
            v.id.to_string().into(),
            present_version(&v.version).into(),
            Cell::yes_no(v.enabled),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

/// `GetLatestResourceVersion`: the newest version whose fields contain all of `wanted`.
async fn latest_version(
    t: &Target,
    team: &str,
    r: &ResourceRef,
    wanted: &Version,
) -> Result<ResourceVersion> {
    let found = match list_versions(t, team, r, None, wanted).await {
        Ok(versions) => versions.into_iter().next(),
        Err(e) if super::client::is_not_found(&e) => None,
        Err(e) => return Err(e),
    };
    found.ok_or_else(|| anyhow!("could not find version matching {}", version_json(wanted)))
}

/// PUT on a resource route; false on 404 (go-concourse's `found`).
async fn put_found(t: &Target, path: &str, r: &ResourceRef, body: Option<Value>) -> Result<bool> {
    let mut rb = t.client.put(path).query(&r.pipeline.query());
    if let Some(body) = body {
        rb = rb.json(&body);
    }
    match t.client.send(rb).await {
        Ok(_) => Ok(true),
        Err(FlyError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn target_team(g: &Global) -> Result<(Target, String)> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    t.validate().await?;
    let team = t.team().to_string();
    Ok((t, team))
}

pub async fn pin_resource(g: &Global, a: &PinResourceArgs) -> Result<()> {
    let r = ResourceRef::parse(&a.resource)?;
    let comment = a.comment.clone().unwrap_or_default();
    let version = parse_version(&a.version)?;
    let (t, team) = target_team(g).await?;
    if a.version.is_empty() && comment.is_empty() {
        bail!("the required flag `-v, --version' was not specified");
    }
    if !a.version.is_empty() {
        let latest = latest_version(&t, &team, &r, &version).await?;
        let path = format!("{}/versions/{}/pin", r.path(&team), latest.id);
        if !put_found(&t, &path, &r, None).await? {
            return Err(fail(format!(
                "could not pin '{}', make sure the resource exists\n",
                r.display()
            )));
        }
        println!(
            "pinned '{}' with version {}",
            r.display(),
            version_json(&latest.version)
        );
    }
    if !comment.is_empty() {
        let path = format!("{}/pin_comment", r.path(&team));
        let body = serde_json::json!({ "pin_comment": comment });
        if !put_found(&t, &path, &r, Some(body)).await? {
            return Err(fail(format!(
                "could not save comment, make sure '{}' is pinned\n",
                r.display()
            )));
        }
        println!("pin comment '{comment}' is saved");
    }
    Ok(())
}

pub async fn unpin_resource(g: &Global, a: &UnpinResourceArgs) -> Result<()> {
    let r = ResourceRef::parse(&a.resource)?;
    let (t, team) = target_team(g).await?;
    if !put_found(&t, &format!("{}/unpin", r.path(&team)), &r, None).await? {
        return Err(fail(format!("could not find resource '{}'\n", r.display())));
    }
    println!("unpinned '{}'", r.display());
    Ok(())
}

/// `enable-resource-version` / `disable-resource-version`: nothing is sent when the newest
/// matching version already is in the wanted state.
pub async fn set_version_enabled(g: &Global, a: &ResourceVersionArgs, enable: bool) -> Result<()> {
    let r = ResourceRef::parse(&a.resource)?;
    let wanted = parse_version(&a.version)?;
    let (t, team) = target_team(g).await?;
    let latest = latest_version(&t, &team, &r, &wanted).await?;
    let (action, done) = if enable {
        ("enable", "enabled")
    } else {
        ("disable", "disabled")
    };
    if latest.enabled != enable {
        let path = format!("{}/versions/{}/{action}", r.path(&team), latest.id);
        if !put_found(&t, &path, &r, None).await? {
            return Err(fail(format!(
                "could not {action} '{}', make sure the resource version exists\n",
                r.display()
            )));
        }
    }
    println!(
        "{done} '{}' with version {}",
        r.display(),
        version_json(&latest.version)
    );
    Ok(())
}

/// `POST .../check` then, unless `--async`, the check build's events like `fly watch`.
async fn check(
    g: &Global,
    team: Option<&str>,
    r: &ResourceRef,
    kind: &str,
    from: &[String],
    shallow: bool,
    async_: bool,
) -> Result<()> {
    let from = parse_version(from)?;
    let (t, team) = connect(g, team).await?;
    let collection = if kind == "resource" {
        "resources"
    } else {
        "resource-types"
    };
    let path = format!(
        "{}/{collection}/{}/check",
        pipeline_path(&team, &r.pipeline),
        seg(&r.name)
    );
    let body = serde_json::json!({
        "from": if from.is_empty() { Value::Null } else { serde_json::to_value(&from)? },
        "shallow": shallow,
    });
    let rb = t
        .client
        .request(reqwest::Method::POST, &path)
        .query(&r.pipeline.query())
        .json(&body);
    let resp = t.client.send_raw(rb).await?;
    match resp.status.as_u16() {
        404 => bail!(
            "pipeline '{}' or {kind} '{}' not found\n",
            r.pipeline.display(),
            r.name
        ),
        500 => bail!("{}", String::from_utf8_lossy(&resp.body)),
        _ => super::client::check_status(resp.status, &resp.body)?,
    }
    let build: api::Build = resp.json()?;
    println!(
        "checking {} in build {}",
        ui::paint(&r.display(), ui::BOLD, ui::stdout_is_tty()),
        build.id
    );
    if async_ {
        return Ok(());
    }
    match stream(&t.client, build.id, false, false).await? {
        0 => Ok(()),
        code => Err(FlyError::Exit(code).into()),
    }
}

pub async fn check_resource(g: &Global, a: &CheckResourceArgs) -> Result<()> {
    let r = ResourceRef::parse(&a.resource)?;
    check(
        g,
        a.team.as_deref(),
        &r,
        "resource",
        &a.from,
        a.shallow,
        a.async_,
    )
    .await
}

pub async fn check_resource_type(g: &Global, a: &CheckResourceTypeArgs) -> Result<()> {
    let r = ResourceRef::parse(&a.resource_type)?;
    check(
        g,
        a.team.as_deref(),
        &r,
        "resource-type",
        &a.from,
        a.shallow,
        a.async_,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_flags_split_at_the_first_colon() {
        let v = parse_version(&["ref:abc".into(), "path:a:b".into()]).expect("parses");
        assert_eq!(present_version(&v), "path:a:b,ref:abc");
        assert_eq!(version_json(&v), r#"{"path":"a:b","ref":"abc"}"#);
        assert!(parse_version(&["nocolon".into()]).is_err());
    }

    #[test]
    fn resources_re_encode_with_upstream_tags() {
        let r: Resource = serde_json::from_value(json!({
            "name": "r", "pipeline_id": 1, "pipeline_name": "p", "team_name": "main",
            "type": "git", "pinned_version": {"ref": "a"}, "unknown": 1,
            "build": {"id": 3, "name": "check", "status": "succeeded", "team_name": "main",
                      "pipeline_id": 1, "pipeline_name": "p", "plan": {"id": "x"}}
        }))
        .expect("decodes");
        assert_eq!(
            serde_json::to_value(&r).expect("encodes"),
            json!({"name": "r", "pipeline_id": 1, "pipeline_name": "p", "team_name": "main",
                   "type": "git", "pinned_version": {"ref": "a"},
                   "build": {"id": 3, "name": "check", "status": "succeeded", "team_name": "main",
                             "pipeline_id": 1, "pipeline_name": "p", "plan": {"id": "x"}}})
        );
    }
}
