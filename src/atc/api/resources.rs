//! Resources (atc-api.md §3.6): the dashboard list, a pipeline's resources, one resource,
//! the pipeline's resource types, and the versions a build used and produced.
//! Version routes live in `versions`; check routes elsewhere.

use super::error::{ApiError, ApiResult};
use super::jobs::summary;
use super::scope::{BuildScope, PipelineScope, ResourceScope};
use super::{json, AppState};
use crate::atc::auth::Requester;
use crate::db::{PipelineRow, ResourceRow};
use crate::proto::api::BuildSummary;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `atc.Resource`: no `source` is exposed.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Resource {
    pub name: String,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_instance_vars: Option<Value>,
    pub team_name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub last_checked: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<Value>,
    #[serde(skip_serializing_if = "is_false")]
    pub pinned_in_config: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pin_comment: String,
    /// The latest check build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSummary>,
}

/// `atc.PublicBuildInput`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BuildInput {
    pub name: String,
    pub version: Value,
    pub pipeline_id: i64,
    pub first_occurrence: bool,
}

/// `atc.PublicBuildOutput`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BuildOutput {
    pub name: String,
    pub version: Value,
}

/// `atc.BuildInputsOutputs`: both lists always present.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct BuildInputsOutputs {
    pub inputs: Vec<BuildInput>,
    pub outputs: Vec<BuildOutput>,
}

fn check_build_id(r: &ResourceRow) -> Option<i64> {
    r.check_build_id
}

/// The scope holding the resource's versions (None until it was first checked).
pub fn scope_id(r: &ResourceRow) -> Option<i64> {
    r.scope_id
}

/// The version a resource is pinned to in its config (`version:` on the resource).
pub fn config_pin(r: &ResourceRow) -> Option<Value> {
    r.config
        .get("version")
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
}

/// Whether the resource's versions show their metadata to non-members (`public: true`).
pub fn is_public(r: &ResourceRow) -> bool {
    r.config
        .get("public")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The Resource JSON: a pin in the config wins over one made through the API.
pub async fn resource_json(
    state: &AppState,
    p: &PipelineRow,
    r: &ResourceRow,
) -> ApiResult<Resource> {
    let (pinned_version, pinned_in_config) = match config_pin(r) {
        Some(v) => (Some(v), true),
        None => (r.pinned_version.clone(), false),
    };
    let build = match check_build_id(r) {
        Some(id) => state.store.build(id).await?.as_ref().map(summary),
        None => None,
    };
    Ok(Resource {
        name: r.name.clone(),
        pipeline_id: p.id,
        pipeline_name: p.name.clone(),
        pipeline_instance_vars: p.instance_vars.clone(),
        team_name: p.team_name.clone(),
        type_: r.type_.clone(),
        last_checked: r.last_checked,
        icon: r
            .config
            .get("icon")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        pinned_version,
        pinned_in_config,
        pin_comment: r.pin_comment.clone(),
        build,
    })
}

async fn pipeline_resources(state: &AppState, p: &PipelineRow) -> ApiResult<Vec<Resource>> {
    let mut out = Vec::new();
    for r in state.store.resources(p.id).await? {
        out.push(resource_json(state, p, &r).await?);
    }
    Ok(out)
}

/// `GET /api/v1/resources`: resources of every pipeline the requester may see.
pub async fn list_all(State(state): State<AppState>, req: Requester) -> ApiResult<Response> {
    let admin = req.is_admin();
    let member = req.member_team_ids();
    let key = format!("resources {}", super::listings::visibility(admin, &member));
    let build = || async {
        let mut out = Vec::new();
        for p in state.store.pipelines(None).await? {
            if p.archived || !(admin || p.public || member.contains(&p.team_id)) {
                continue;
            }
            out.extend(pipeline_resources(&state, &p).await?);
        }
        Ok(out)
    };
    (state.listings)
        .answer(&*state.store, key, super::listings::RESOURCES, build)
        .await
}

pub async fn list(State(state): State<AppState>, s: PipelineScope) -> ApiResult<Response> {
    Ok(json(&pipeline_resources(&state, &s.pipeline).await?))
}

pub async fn get(State(state): State<AppState>, s: ResourceScope) -> ApiResult<Response> {
    Ok(json(
        &resource_json(&state, &s.pipeline, &s.resource).await?,
    ))
}

/// The config's resource types as upstream lists them: a type whose `type` is another of
/// the pipeline's types gets that parent's `defaults` under its own `source`.
pub fn resource_types_json(config: &Value) -> Vec<Value> {
    let types: Vec<Value> = config
        .get("resource_types")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    types
        .iter()
        .map(|t| {
            let mut t = t.clone();
            let parent_defaults = types
                .iter()
                .find(|p| p.get("name") == t.get("type") && p.get("name") != t.get("name"))
                .and_then(|p| p.get("defaults"))
                .and_then(Value::as_object);
            if let (Some(defaults), Value::Object(fields)) = (parent_defaults, &mut t) {
                let mut source: Map<String, Value> = defaults.clone();
                if let Some(Value::Object(own)) = fields.get("source") {
                    source.extend(own.clone());
                }
                fields.insert("source".into(), Value::Object(source));
            }
            t
        })
        .collect()
}

/// `GET .../resource-types`: the config objects (none for an archived pipeline).
pub async fn resource_types(
    State(state): State<AppState>,
    s: PipelineScope,
) -> ApiResult<Response> {
    let types = match state.store.pipeline_config(s.pipeline.id).await? {
        Some((config, _)) => resource_types_json(&config),
        None => Vec::new(),
    };
    Ok(json(&types))
}

/// `GET /api/v1/builds/:id/resources`: inputs (less those the build also output) and
/// outputs.
pub async fn build_resources(State(state): State<AppState>, s: BuildScope) -> ApiResult<Response> {
    let b = s.build;
    let inputs = state.store.build_inputs(b.id).await?;
    let outputs = state.store.build_outputs(b.id).await?;
    let body = BuildInputsOutputs {
        inputs: inputs
            .iter()
            .filter(|i| {
                !outputs
                    .iter()
                    .any(|o| o.resource_id == i.resource_id && o.version == i.version)
            })
            .map(|i| BuildInput {
                name: i.name.clone(),
                version: i.version.clone(),
                pipeline_id: b.pipeline_id.unwrap_or(0),
                first_occurrence: i.first_occurrence,
            })
            .collect(),
        outputs: outputs
            .iter()
            .map(|o| BuildOutput {
                name: o.name.clone(),
                version: o.version.clone(),
            })
            .collect(),
    };
    Ok(json(&body))
}

/// A version id from the path; not a number → 400 like upstream.
pub fn version_id(raw: &str) -> ApiResult<i64> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("malformed version id: {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn child_types_get_their_parents_defaults_under_their_source() {
        let config = json!({"resource_types": [
            {"name": "base", "type": "registry-image", "source": {"repository": "x"}, "defaults": {"a": 1, "b": 1}},
            {"name": "child", "type": "base", "source": {"b": 2}},
            {"name": "plain", "type": "git"},
        ]});
        let types = resource_types_json(&config);
        assert_eq!(types[0]["source"], json!({"repository": "x"}));
        assert_eq!(types[1]["source"], json!({"a": 1, "b": 2}));
        assert_eq!(types[2], json!({"name": "plain", "type": "git"}));
        assert!(resource_types_json(&json!({})).is_empty());
    }

    #[test]
    fn a_config_pin_is_a_non_empty_version_map() {
        let mut r = ResourceRow {
            config: json!({"name": "r", "version": {"ref": "abc"}, "public": true}),
            ..Default::default()
        };
        assert_eq!(config_pin(&r), Some(json!({"ref": "abc"})));
        assert!(is_public(&r));
        r.config = json!({"name": "r", "version": {}});
        assert_eq!(config_pin(&r), None);
        assert!(!is_public(&r));
    }

    #[test]
    fn resource_json_omits_empty_fields() {
        let r = Resource {
            name: "r".into(),
            pipeline_id: 1,
            pipeline_name: "p".into(),
            team_name: "main".into(),
            type_: "git".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).expect("encodes"),
            json!({"name": "r", "pipeline_id": 1, "pipeline_name": "p", "team_name": "main", "type": "git"})
        );
    }
}
