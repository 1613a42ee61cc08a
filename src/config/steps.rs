//! Build plan steps (upstream `atc/steps.go`). A step is one flat map: modifier keys found
//! first (in upstream's precedence order) wrap the step, the first core key ends parsing, and
//! keys left over are kept as unknown fields for validation to report. Serializing folds the
//! layers back into one flat map.

use super::decode::{sorted, Fields, Out};
use super::task::{source_value, version_map, ContainerLimits, TaskConfig, TaskEnv};
use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Upstream's `StepPrecedence`.
pub const STEP_PRECEDENCE: [&str; 17] = [
    "ensure",
    "on_error",
    "on_abort",
    "on_failure",
    "on_success",
    "across",
    "attempts",
    "run",
    "task",
    "put",
    "get",
    "timeout",
    "set_pipeline",
    "load_var",
    "try",
    "do",
    "in_parallel",
];

/// A source line; never part of equality, so a config parsed from YAML equals the same
/// config parsed from its JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Line(pub Option<usize>);

impl PartialEq for Line {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A step with whatever keys parsing did not consume.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub config: StepConfig,
    pub unknown_fields: Map<String, Value>,
    pub line: Line,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepConfig {
    Get(GetStep),
    Put(PutStep),
    Task(Box<TaskStep>),
    Run(RunStep),
    SetPipeline(SetPipelineStep),
    LoadVar(LoadVarStep),
    Try(Box<Step>),
    Do(DoStep),
    InParallel(InParallelStep),
    Across(AcrossStep),
    Timeout(TimeoutStep),
    Retry(RetryStep),
    OnSuccess(HookStep),
    OnFailure(HookStep),
    OnAbort(HookStep),
    OnError(HookStep),
    Ensure(HookStep),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetStep {
    pub name: String,
    pub resource: String,
    pub version: Option<VersionConfig>,
    pub params: Map<String, Value>,
    pub passed: Vec<String>,
    pub trigger: bool,
    pub tags: Vec<String>,
    pub timeout: String,
}

impl GetStep {
    pub fn resource_name(&self) -> &str {
        if self.resource.is_empty() {
            &self.name
        } else {
            &self.resource
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PutStep {
    pub name: String,
    pub resource: String,
    pub params: Map<String, Value>,
    pub inputs: Option<InputsConfig>,
    pub tags: Vec<String>,
    pub get_params: Map<String, Value>,
    pub timeout: String,
    pub no_get: bool,
}

impl PutStep {
    pub fn resource_name(&self) -> &str {
        if self.resource.is_empty() {
            &self.name
        } else {
            &self.resource
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskStep {
    pub name: String,
    pub privileged: bool,
    pub hermetic: bool,
    /// `file:` — `<artifact>/<path>` of a task config.
    pub config_path: String,
    pub container_limits: Option<ContainerLimits>,
    pub config: Option<TaskConfig>,
    pub params: TaskEnv,
    pub vars: Map<String, Value>,
    pub tags: Vec<String>,
    pub input_mapping: BTreeMap<String, String>,
    pub output_mapping: BTreeMap<String, String>,
    /// `image:` — artifact used as the rootfs.
    pub image_artifact_name: String,
    pub timeout: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunStep {
    pub message: String,
    pub type_: String,
    pub params: Map<String, Value>,
    pub privileged: bool,
    pub tags: Vec<String>,
    pub container_limits: Option<ContainerLimits>,
    pub timeout: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetPipelineStep {
    pub name: String,
    pub file: String,
    pub team: String,
    pub vars: Map<String, Value>,
    pub var_files: Vec<String>,
    pub instance_vars: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadVarStep {
    pub name: String,
    pub file: String,
    pub format: String,
    pub reveal: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DoStep {
    pub steps: Vec<Step>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InParallelStep {
    pub steps: Vec<Step>,
    pub limit: i64,
    pub fail_fast: bool,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AcrossVarConfig {
    pub var: String,
    pub values: Option<Value>,
    pub max_in_flight: Option<MaxInFlight>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxInFlight {
    All,
    Limit(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AcrossStep {
    pub step: Box<StepConfig>,
    pub vars: Vec<AcrossVarConfig>,
    pub fail_fast: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimeoutStep {
    pub step: Box<StepConfig>,
    /// Kept as a string so it may hold a `((var))`; validated as a Go duration.
    pub duration: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryStep {
    pub step: Box<StepConfig>,
    pub attempts: i64,
}

/// `on_success`/`on_failure`/`on_abort`/`on_error`/`ensure` around `step`.
#[derive(Debug, Clone, PartialEq)]
pub struct HookStep {
    pub step: Box<StepConfig>,
    pub hook: Box<Step>,
}

/// A get's `version:`.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionConfig {
    Latest,
    Every,
    Pinned(BTreeMap<String, String>),
    /// Any other string: behaves as latest, serializes as `""` (as upstream).
    Unset,
}

/// A put's `inputs:`.
#[derive(Debug, Clone, PartialEq)]
pub enum InputsConfig {
    All,
    Detect,
    Specified(Vec<String>),
    /// Any other string: serializes as `""` (as upstream), behaves as the default (detect).
    Unset,
}

impl Step {
    /// The flat JSON map upstream marshals for this step (keys sorted, as Go's map marshal).
    pub fn to_value(&self) -> Value {
        let mut fields = self.unknown_fields.clone();
        let mut cur = Some(&self.config);
        while let Some(c) = cur {
            if let Value::Object(m) = c.layer_value() {
                fields.extend(m);
            }
            cur = c.inner();
        }
        let mut keys: Vec<String> = fields.keys().cloned().collect();
        keys.sort();
        Value::Object(
            keys.into_iter()
                .map(|k| {
                    let v = fields.remove(&k).unwrap_or(Value::Null);
                    (k, v)
                })
                .collect(),
        )
    }
}

impl StepConfig {
    pub(crate) fn wrap(&mut self, inner: StepConfig) {
        let slot = match self {
            StepConfig::Across(s) => &mut s.step,
            StepConfig::Timeout(s) => &mut s.step,
            StepConfig::Retry(s) => &mut s.step,
            StepConfig::OnSuccess(s)
            | StepConfig::OnFailure(s)
            | StepConfig::OnAbort(s)
            | StepConfig::OnError(s)
            | StepConfig::Ensure(s) => &mut s.step,
            _ => return,
        };
        **slot = inner;
    }

    /// The step a modifier wraps.
    pub fn inner(&self) -> Option<&StepConfig> {
        match self {
            StepConfig::Across(s) => Some(&s.step),
            StepConfig::Timeout(s) => Some(&s.step),
            StepConfig::Retry(s) => Some(&s.step),
            StepConfig::OnSuccess(s)
            | StepConfig::OnFailure(s)
            | StepConfig::OnAbort(s)
            | StepConfig::OnError(s)
            | StepConfig::Ensure(s) => Some(&s.step),
            _ => None,
        }
    }

    /// Calls `f` on this step config and every step config nested in it (wrapped steps, hooks,
    /// try/do/in_parallel children), parents first — upstream's `StepRecursor`.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a StepConfig)) {
        f(self);
        match self {
            StepConfig::Try(s) => s.config.walk(f),
            StepConfig::Do(d) => d.steps.iter().for_each(|s| s.config.walk(f)),
            StepConfig::InParallel(p) => p.steps.iter().for_each(|s| s.config.walk(f)),
            StepConfig::OnSuccess(h)
            | StepConfig::OnFailure(h)
            | StepConfig::OnAbort(h)
            | StepConfig::OnError(h)
            | StepConfig::Ensure(h) => {
                h.step.walk(f);
                h.hook.config.walk(f);
            }
            other => {
                if let Some(inner) = other.inner() {
                    inner.walk(f);
                }
            }
        }
    }

    /// The JSON fields of this layer alone (a wrapper's own keys, or the core step's).
    fn layer_value(&self) -> Value {
        let mut o = Out::default();
        match self {
            StepConfig::Ensure(h) => o.put("ensure", h.hook.to_value()),
            StepConfig::OnError(h) => o.put("on_error", h.hook.to_value()),
            StepConfig::OnAbort(h) => o.put("on_abort", h.hook.to_value()),
            StepConfig::OnFailure(h) => o.put("on_failure", h.hook.to_value()),
            StepConfig::OnSuccess(h) => o.put("on_success", h.hook.to_value()),
            StepConfig::Across(a) => {
                let vars = a
                    .vars
                    .iter()
                    .map(|v| {
                        let mut x = Out::default();
                        x.put("var", Value::String(v.var.clone()));
                        if let Some(values) = &v.values {
                            x.put("values", sorted(values));
                        }
                        match v.max_in_flight {
                            Some(MaxInFlight::All) => {
                                x.put("max_in_flight", Value::from("all"));
                            }
                            Some(MaxInFlight::Limit(n)) => {
                                x.put("max_in_flight", Value::from(n));
                            }
                            None => {}
                        }
                        x.value()
                    })
                    .collect();
                o.put("across", Value::Array(vars))
                    .bool("fail_fast", a.fail_fast)
            }
            StepConfig::Retry(r) => o.put("attempts", Value::from(r.attempts)),
            StepConfig::Timeout(t) => o.put("timeout", Value::String(t.duration.clone())),
            StepConfig::Get(g) => {
                o.put("get", Value::String(g.name.clone()))
                    .str("resource", &g.resource);
                if let Some(v) = &g.version {
                    o.put("version", version_value(v));
                }
                o.map("params", &g.params)
                    .strings("passed", &g.passed)
                    .bool("trigger", g.trigger)
                    .strings("tags", &g.tags)
                    .str("timeout", &g.timeout)
            }
            StepConfig::Put(p) => {
                o.put("put", Value::String(p.name.clone()))
                    .str("resource", &p.resource)
                    .map("params", &p.params);
                if let Some(i) = &p.inputs {
                    o.put(
                        "inputs",
                        match i {
                            InputsConfig::All => Value::from("all"),
                            InputsConfig::Detect => Value::from("detect"),
                            InputsConfig::Specified(names) => Value::from(names.clone()),
                            InputsConfig::Unset => Value::from(""),
                        },
                    );
                }
                o.strings("tags", &p.tags)
                    .map("get_params", &p.get_params)
                    .str("timeout", &p.timeout)
                    .bool("no_get", p.no_get)
            }
            StepConfig::Task(t) => {
                o.put("task", Value::String(t.name.clone()))
                    .bool("privileged", t.privileged)
                    .bool("hermetic", t.hermetic)
                    .str("file", &t.config_path);
                if let Some(l) = &t.container_limits {
                    o.put("container_limits", l.to_value());
                }
                if let Some(c) = &t.config {
                    o.put("config", c.to_value());
                }
                o.string_map("params", &t.params)
                    .map("vars", &t.vars)
                    .strings("tags", &t.tags)
                    .string_map("input_mapping", &t.input_mapping)
                    .string_map("output_mapping", &t.output_mapping)
                    .str("image", &t.image_artifact_name)
                    .str("timeout", &t.timeout)
            }
            StepConfig::Run(r) => {
                o.put("run", Value::String(r.message.clone()))
                    .put("type", Value::String(r.type_.clone()))
                    .map("params", &r.params)
                    .bool("privileged", r.privileged)
                    .strings("tags", &r.tags);
                if let Some(l) = &r.container_limits {
                    o.put("container_limits", l.to_value());
                }
                o.str("timeout", &r.timeout)
            }
            StepConfig::SetPipeline(s) => o
                .put("set_pipeline", Value::String(s.name.clone()))
                .str("file", &s.file)
                .str("team", &s.team)
                .map("vars", &s.vars)
                .strings("var_files", &s.var_files)
                .map("instance_vars", &s.instance_vars),
            StepConfig::LoadVar(l) => o
                .put("load_var", Value::String(l.name.clone()))
                .str("file", &l.file)
                .str("format", &l.format)
                .bool("reveal", l.reveal),
            StepConfig::Try(s) => o.put("try", s.to_value()),
            StepConfig::Do(d) => o
                .put(
                    "do",
                    Value::Array(d.steps.iter().map(Step::to_value).collect()),
                )
                .strings("tags", &d.tags),
            StepConfig::InParallel(p) => {
                let mut c = Out::default();
                if !p.steps.is_empty() {
                    c.put(
                        "steps",
                        Value::Array(p.steps.iter().map(Step::to_value).collect()),
                    );
                }
                c.int("limit", p.limit).bool("fail_fast", p.fail_fast);
                o.put("in_parallel", c.value()).strings("tags", &p.tags)
            }
        };
        o.value()
    }
}

fn version_value(v: &VersionConfig) -> Value {
    match v {
        VersionConfig::Latest => Value::from("latest"),
        VersionConfig::Every => Value::from("every"),
        VersionConfig::Pinned(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect(),
        ),
        VersionConfig::Unset => Value::from(""),
    }
}

/// Decodes an `atc.Version` outside steps (resource `version:`), where scalars coerce.
pub(crate) fn resource_version(f: &mut Fields) -> Result<BTreeMap<String, String>, ConfigError> {
    version_map(f, "version")
}

pub(crate) fn source_json(s: &Option<Map<String, Value>>) -> Value {
    source_value(s)
}
