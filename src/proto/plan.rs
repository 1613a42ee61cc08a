//! Build plans (upstream `atc.Plan`): the step tree a build executes. One definition for
//! every hop: `fly execute` builds it, the one-off build API reads it, the engine plans
//! jobs into it, the store keeps it (`builds.plan`) and the engine runs it.
//!
//! The JSON is upstream's (`{"id": .., "get": {..}}`, hooks as `{"step", "on_success"}`),
//! so upstream's fly and third-party clients send plans that read as these types. Leaf
//! steps are typed; fields that may still hold `((vars))` until the step runs (sources,
//! params, vars, an inline task config) are JSON values, and the engine interpolates a
//! leaf as a whole just before running it.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    #[serde(default)]
    pub id: String,
    #[serde(flatten)]
    pub node: Node,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    Get(GetPlan),
    Put(PutPlan),
    Task(Box<TaskPlan>),
    SetPipeline(SetPipelinePlan),
    LoadVar(LoadVarPlan),
    /// A `run` step of a prototype (shown in plans; not run yet).
    Run(RunPlan),
    /// A resource check (check builds, `fly check-resource`).
    Check(CheckNode),
    Do(Vec<Plan>),
    #[serde(deserialize_with = "in_parallel")]
    InParallel(InParallelNode),
    Across(AcrossNode),
    Try(TryNode),
    Timeout(TimeoutNode),
    Retry(Vec<Plan>),
    #[serde(with = "on_success")]
    OnSuccess(HookNode),
    #[serde(with = "on_failure")]
    OnFailure(HookNode),
    #[serde(with = "on_abort")]
    OnAbort(HookNode),
    #[serde(with = "on_error")]
    OnError(HookNode),
    #[serde(with = "ensure")]
    Ensure(HookNode),
    /// An artifact uploaded by `fly execute`, mounted as `name`.
    ArtifactInput(ArtifactInputNode),
    /// Registers artifact `name` for download by `fly execute -o`.
    ArtifactOutput(ArtifactOutputNode),
}

impl Default for Node {
    fn default() -> Self {
        Node::Do(Vec::new())
    }
}

impl Node {
    /// A leaf step's kind and name (`("task", "unit")`); None for the steps that hold others.
    pub fn step(&self) -> Option<(&'static str, &str)> {
        Some(match self {
            Node::Get(g) => ("get", &g.name),
            Node::Put(p) => ("put", &p.name),
            Node::Task(t) => ("task", &t.name),
            Node::SetPipeline(s) => ("set_pipeline", &s.name),
            Node::LoadVar(l) => ("load_var", &l.name),
            Node::Check(c) => ("check", &c.name),
            Node::Run(_) => ("run", ""),
            Node::ArtifactInput(_) => ("artifact_input", ""),
            Node::ArtifactOutput(_) => ("artifact_output", ""),
            _ => return None,
        })
    }

    /// A get/put/task `timeout:`, which bounds the step itself.
    pub fn step_timeout(&self) -> Option<&str> {
        match self {
            Node::Get(g) => Some(&g.timeout),
            Node::Put(p) => Some(&p.timeout),
            Node::Task(t) => Some(&t.timeout),
            _ => None,
        }
        .filter(|t| !t.is_empty())
        .map(String::as_str)
    }
}

/// Go encodes unset slices and maps as `null`: read as empty.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_empty_map(m: &Map<String, Value>) -> bool {
    m.is_empty()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GetPlan {
    #[serde(default)]
    pub name: String,
    /// The resource's type and source: set by clients that send them inline (fly
    /// execute); the one-off API moves them into the build's resources, so plans the
    /// engine runs leave them empty and look the resource up by name.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_types: Option<Vec<Value>>,
    /// The version to fetch: the scheduler's choice, or the step's pinned `version:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    /// For the implicit get after a put: the put's plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_from: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
}

impl GetPlan {
    /// The pipeline resource this get fetches from.
    pub fn resource_name(&self) -> &str {
        if self.resource.is_empty() {
            &self.name
        } else {
            &self.resource
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PutPlan {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_types: Option<Vec<Value>>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub params: Map<String, Value>,
    /// `all`, `detect` or a list of artifact names; absent means detect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<PutInputs>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
}

impl PutPlan {
    pub fn resource_name(&self) -> &str {
        if self.resource.is_empty() {
            &self.name
        } else {
            &self.resource
        }
    }
}

/// A put's `inputs:` (upstream `InputsConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PutInputs {
    /// `all` or `detect` (any other word behaves as detect, as upstream).
    Keyword(String),
    Names(Vec<String>),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskPlan {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub privileged: bool,
    /// Ours: no network for the task's container.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hermetic: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// `<artifact>/<path>` of a task config file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_path: String,
    /// The inline task config, as written (upstream's task config JSON); read with the
    /// task config parser when the step runs, like a config from `config_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_limits: Option<Value>,
    /// An artifact used as the task's rootfs.
    #[serde(default, rename = "image", skip_serializing_if = "String::is_empty")]
    pub image_artifact_name: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub vars: Map<String, Value>,
    /// Environment; values are stringified when the task runs.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub params: Map<String, Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub input_mapping: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub output_mapping: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_types: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SetPipelinePlan {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub team: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub vars: Map<String, Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub var_files: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub instance_vars: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadVarPlan {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunPlan {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_empty_map"
    )]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckNode {
    pub name: String,
    /// `resource`, `resource_type` or `prototype`.
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<i64>,
}

impl CheckNode {
    /// A resource's check (the kind plans stored before kinds existed leave empty), as
    /// opposed to a resource type's or prototype's.
    pub fn is_resource(&self) -> bool {
        self.kind != "resource_type" && self.kind != "prototype"
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InParallelNode {
    pub steps: Vec<Plan>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_fast: bool,
}

/// `in_parallel` as an object, or as the bare list old clients send (`aggregate` too).
fn in_parallel<'de, D: Deserializer<'de>>(d: D) -> Result<InParallelNode, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Steps(Vec<Plan>),
        Node(InParallelNode),
    }
    Ok(match Form::deserialize(d)? {
        Form::Steps(steps) => InParallelNode {
            steps,
            ..Default::default()
        },
        Form::Node(n) => n,
    })
}

/// One `across:` var: its values (a list, or a `((var))` resolved when the step runs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AcrossVar {
    pub var: String,
    #[serde(default)]
    pub values: Value,
    /// `all` or a number; only the first var's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AcrossNode {
    pub vars: Vec<AcrossVar>,
    /// The step run once per combination of values, planned with the build; each
    /// combination runs a copy whose ids are derived from these (see [`Plan::derived`]).
    pub step: Box<Plan>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_fast: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TryNode {
    pub step: Box<Plan>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimeoutNode {
    pub step: Box<Plan>,
    pub duration: String,
}

/// A step and the hook that runs after it; in JSON the hook sits under the node's own
/// key (`{"on_success": {"step": .., "on_success": ..}}`), as upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookNode {
    pub step: Box<Plan>,
    pub hook: Box<Plan>,
}

macro_rules! hook_serde {
    ($($module:ident),*) => {$(
        mod $module {
            use super::*;
            pub fn serialize<S: Serializer>(h: &HookNode, s: S) -> Result<S::Ok, S::Error> {
                ser_hook(h, stringify!($module), s)
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HookNode, D::Error> {
                de_hook(d, stringify!($module))
            }
        }
    )*};
}
hook_serde!(on_success, on_failure, on_abort, on_error, ensure);

fn ser_hook<S: Serializer>(h: &HookNode, key: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("step", &h.step)?;
    m.serialize_entry(key, &h.hook)?;
    m.end()
}

fn de_hook<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<HookNode, D::Error> {
    let mut m = Map::<String, Value>::deserialize(d)?;
    let mut take = |k: &str| -> Result<Box<Plan>, D::Error> {
        let v = m
            .remove(k)
            .ok_or_else(|| D::Error::custom(format!("{key} without {k}")))?;
        from_value(v).map(Box::new).map_err(D::Error::custom)
    };
    Ok(HookNode {
        step: take("step")?,
        hook: take(key)?,
    })
}

fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ArtifactInputNode {
    pub artifact_id: i64,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ArtifactOutputNode {
    #[serde(default)]
    pub name: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Plan {
    /// Calls `f` on this plan and every plan nested in it, parents first (an across
    /// step's template included).
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Plan)) {
        f(self);
        match &mut self.node {
            Node::Do(steps) | Node::Retry(steps) => steps.iter_mut().for_each(|p| p.walk_mut(f)),
            Node::InParallel(p) => p.steps.iter_mut().for_each(|p| p.walk_mut(f)),
            Node::Across(a) => a.step.walk_mut(f),
            Node::Try(t) => t.step.walk_mut(f),
            Node::Timeout(t) => t.step.walk_mut(f),
            Node::OnSuccess(h)
            | Node::OnFailure(h)
            | Node::OnAbort(h)
            | Node::OnError(h)
            | Node::Ensure(h) => {
                h.step.walk_mut(f);
                h.hook.walk_mut(f);
            }
            _ => {}
        }
    }

    /// A copy of this plan for the `n`th combination of an across step: every id gets
    /// `/n` appended (references between its steps, `version_from`, too), so the ids are
    /// the same each time the build's plan is run.
    pub fn derived(&self, n: usize) -> Plan {
        let mut p = self.clone();
        p.walk_mut(&mut |p| {
            p.id = format!("{}/{n}", p.id);
            if let Node::Get(g) = &mut p.node {
                if let Some(from) = &mut g.version_from {
                    *from = format!("{from}/{n}");
                }
            }
        });
        p
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
