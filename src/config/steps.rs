//! Build plan steps (upstream `atc/steps.go`). A step is one flat map: modifier keys found
//! first (in upstream's precedence order) wrap the step, the first core key ends parsing, and
//! keys left over are kept as unknown fields for validation to report. Serializing folds the
//! layers back into one flat map.

use super::decode::{list, sorted, Ctx, Fields, Out};
use super::task::{source_value, task_env, version_map, ContainerLimits, TaskConfig, TaskEnv};
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

fn malformed(key: &str, e: ConfigError) -> ConfigError {
    e.prefixed(&format!("malformed {key} step: "))
}

impl Step {
    /// Parses one step. `ctx` is switched to upstream's in-step mode (no coercion, lenient).
    pub(crate) fn parse(v: &Value, ctx: Ctx, ptr: &str) -> Result<Step, ConfigError> {
        let ctx = Ctx {
            coerce: false,
            strict: false,
            ..ctx
        };
        let line = ctx.lines.line(ptr);
        let mut remaining = match v {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(ConfigError {
                    message: format!(
                    "json: cannot unmarshal {} into Go value of type map[string]*json.RawMessage",
                    super::decode::json_type(other)
                ),
                    line,
                })
            }
        };
        let mut wrappers: Vec<StepConfig> = vec![];
        let mut core: Option<StepConfig> = None;
        for key in STEP_PRECEDENCE {
            if !remaining.contains_key(key) {
                continue;
            }
            let data = Value::Object(remaining.clone());
            let mut f = Fields::new(&data, ctx, ptr, "", "", "")?;
            let parsed = parse_layer(key, &mut f, ctx).map_err(|e| malformed(key, e))?;
            for k in f_seen_keys(&f, &remaining) {
                remaining.remove(&k);
            }
            if is_wrapper(&parsed) {
                wrappers.push(parsed);
            } else {
                core = Some(parsed);
                break;
            }
        }
        let Some(mut config) = core else {
            let message = if wrappers.is_empty() {
                "no step configured"
            } else {
                "no core step type declared (e.g. get, put, task, etc.)"
            };
            return Err(ConfigError {
                message: message.into(),
                line,
            });
        };
        while let Some(mut w) = wrappers.pop() {
            w.wrap(config);
            config = w;
        }
        Ok(Step {
            config,
            unknown_fields: remaining,
            line: Line(line),
        })
    }

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

fn f_seen_keys(f: &Fields, remaining: &Map<String, Value>) -> Vec<String> {
    let unknown = f.unknown();
    remaining
        .keys()
        .filter(|k| !unknown.contains_key(*k))
        .cloned()
        .collect()
}

fn is_wrapper(c: &StepConfig) -> bool {
    matches!(
        c,
        StepConfig::Across(_)
            | StepConfig::Timeout(_)
            | StepConfig::Retry(_)
            | StepConfig::OnSuccess(_)
            | StepConfig::OnFailure(_)
            | StepConfig::OnAbort(_)
            | StepConfig::OnError(_)
            | StepConfig::Ensure(_)
    )
}

fn placeholder() -> Box<StepConfig> {
    Box::new(StepConfig::Do(DoStep::default()))
}

fn sub_step(f: &mut Fields, ctx: Ctx, key: &str) -> Result<Step, ConfigError> {
    let v = f.raw(key).unwrap_or(Value::Null);
    Step::parse(&v, ctx, &f.child_ptr(key))
}

fn step_list(f: &mut Fields, ctx: Ctx, key: &str, go: &str) -> Result<Vec<Step>, ConfigError> {
    let v = f.raw(key);
    list(v, f, key, go, |item, p| Step::parse(item, ctx, &p))
}

fn parse_layer(key: &str, f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    // One small function per step type: this dispatcher sits on the recursion path of nested
    // steps, so its frame must stay small (deep plans would otherwise exhaust the stack).
    match key {
        "ensure" => layer_hook(key, f, ctx),
        "on_error" => layer_hook(key, f, ctx),
        "on_abort" => layer_hook(key, f, ctx),
        "on_failure" => layer_hook(key, f, ctx),
        "on_success" => layer_hook(key, f, ctx),
        "across" => layer_across(f, ctx),
        "attempts" => layer_attempts(f, ctx),
        "timeout" => layer_timeout(f, ctx),
        "get" => layer_get(f, ctx),
        "put" => layer_put(f, ctx),
        "task" => layer_task(f, ctx),
        "run" => layer_run(f, ctx),
        "set_pipeline" => layer_set_pipeline(f, ctx),
        "load_var" => layer_load_var(f, ctx),
        "try" => layer_try(f, ctx),
        "do" => layer_do(f, ctx),
        "in_parallel" => layer_in_parallel(f, ctx),
        other => unreachable!("{other} is not in STEP_PRECEDENCE"),
    }
}

#[inline(never)]
fn layer_hook(key: &str, f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    let hook = HookStep {
        step: placeholder(),
        hook: Box::new(sub_step(f, ctx, key)?),
    };
    Ok(match key {
        "ensure" => StepConfig::Ensure(hook),
        "on_error" => StepConfig::OnError(hook),
        "on_abort" => StepConfig::OnAbort(hook),
        "on_failure" => StepConfig::OnFailure(hook),
        _ => StepConfig::OnSuccess(hook),
    })
}

#[inline(never)]
fn layer_across(f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok({
        let v = f.raw("across");
        let vars = list(v, f, "across", "[]atc.AcrossVarConfig", |item, p| {
            across_var(item, ctx, &p)
        })?;
        StepConfig::Across(AcrossStep {
            step: placeholder(),
            vars,
            fail_fast: f.bool("fail_fast")?,
        })
    })
}

#[inline(never)]
fn layer_attempts(f: &mut Fields, _ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Retry(RetryStep {
        step: placeholder(),
        attempts: step_int(f, "attempts", "RetryStep")?,
    }))
}

#[inline(never)]
fn layer_timeout(f: &mut Fields, _ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Timeout(TimeoutStep {
        step: placeholder(),
        duration: step_string(f, "timeout", "TimeoutStep")?,
    }))
}

#[inline(never)]
fn layer_get(f: &mut Fields, _ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Get(GetStep {
        name: step_string(f, "get", "GetStep")?,
        resource: step_string(f, "resource", "GetStep")?,
        version: match f.raw("version") {
            None => None,
            Some(Value::String(s)) => Some(match s.as_str() {
                "latest" => VersionConfig::Latest,
                "every" => VersionConfig::Every,
                _ => VersionConfig::Unset,
            }),
            Some(Value::Object(m)) => {
                let mut pinned = BTreeMap::new();
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            pinned.insert(k, s);
                        }
                        other => {
                            return Err(ConfigError {
                                message: format!(
                                    "the value {} of {} is not a string",
                                    go_v(&other),
                                    k
                                ),
                                line: f.ctx.lines.line(&f.child_ptr("version")),
                            })
                        }
                    }
                }
                Some(VersionConfig::Pinned(pinned))
            }
            Some(_) => {
                return Err(ConfigError {
                    message: "unknown type for version".into(),
                    line: f.ctx.lines.line(&f.child_ptr("version")),
                })
            }
        },
        params: step_object(f, "params", "GetStep", "atc.Params")?,
        passed: step_strings(f, "passed", "GetStep")?,
        trigger: step_bool(f, "trigger", "GetStep")?,
        tags: step_strings(f, "tags", "GetStep")?,
        timeout: step_string(f, "timeout", "GetStep")?,
    }))
}

#[inline(never)]
fn layer_put(f: &mut Fields, _ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Put(PutStep {
        name: step_string(f, "put", "PutStep")?,
        resource: step_string(f, "resource", "PutStep")?,
        params: step_object(f, "params", "PutStep", "atc.Params")?,
        inputs: match f.raw("inputs") {
            None => None,
            Some(Value::String(s)) => Some(match s.as_str() {
                "all" => InputsConfig::All,
                "detect" => InputsConfig::Detect,
                _ => InputsConfig::Unset,
            }),
            Some(Value::Array(items)) => {
                let mut names = vec![];
                for item in items {
                    match item {
                        Value::String(s) => names.push(s.trim().to_string()),
                        other => {
                            return Err(ConfigError {
                                message: format!("non-string put input: {}", go_v(&other)),
                                line: f.ctx.lines.line(&f.child_ptr("inputs")),
                            })
                        }
                    }
                }
                Some(InputsConfig::Specified(names))
            }
            Some(_) => {
                return Err(ConfigError {
                    message: "unknown type for put inputs".into(),
                    line: f.ctx.lines.line(&f.child_ptr("inputs")),
                })
            }
        },
        tags: step_strings(f, "tags", "PutStep")?,
        get_params: step_object(f, "get_params", "PutStep", "atc.Params")?,
        timeout: step_string(f, "timeout", "PutStep")?,
        no_get: step_bool(f, "no_get", "PutStep")?,
    }))
}

#[inline(never)]
fn layer_task(f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok({
        let name = step_string(f, "task", "TaskStep")?;
        let privileged = step_bool(f, "privileged", "TaskStep")?;
        let hermetic = step_bool(f, "hermetic", "TaskStep")?;
        let config_path = step_string(f, "file", "TaskStep")?;
        let container_limits = match f.raw("container_limits") {
            None => None,
            Some(v) => Some(ContainerLimits::decode(
                &v,
                ctx,
                &f.child_ptr("container_limits"),
            )?),
        };
        let config = match f.raw("config") {
            None => None,
            Some(v) => Some(TaskConfig::decode(
                &v,
                ctx,
                &f.child_ptr("config"),
                "config",
            )?),
        };
        StepConfig::Task(Box::new(TaskStep {
            name,
            privileged,
            hermetic,
            config_path,
            container_limits,
            config,
            params: task_env(f, "params")?,
            vars: step_object(f, "vars", "TaskStep", "atc.Params")?,
            tags: step_strings(f, "tags", "TaskStep")?,
            input_mapping: f.string_map("input_mapping", "map[string]string")?,
            output_mapping: f.string_map("output_mapping", "map[string]string")?,
            image_artifact_name: step_string(f, "image", "TaskStep")?,
            timeout: step_string(f, "timeout", "TaskStep")?,
        }))
    })
}

#[inline(never)]
fn layer_run(f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Run(RunStep {
        message: step_string(f, "run", "RunStep")?,
        type_: step_string(f, "type", "RunStep")?,
        params: step_object(f, "params", "RunStep", "atc.Params")?,
        privileged: step_bool(f, "privileged", "RunStep")?,
        tags: step_strings(f, "tags", "RunStep")?,
        container_limits: match f.raw("container_limits") {
            None => None,
            Some(v) => Some(ContainerLimits::decode(
                &v,
                ctx,
                &f.child_ptr("container_limits"),
            )?),
        },
        timeout: step_string(f, "timeout", "RunStep")?,
    }))
}

#[inline(never)]
fn layer_set_pipeline(f: &mut Fields, _ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::SetPipeline(SetPipelineStep {
        name: step_string(f, "set_pipeline", "SetPipelineStep")?,
        file: step_string(f, "file", "SetPipelineStep")?,
        team: step_string(f, "team", "SetPipelineStep")?,
        vars: step_object(f, "vars", "SetPipelineStep", "atc.Params")?,
        var_files: step_strings(f, "var_files", "SetPipelineStep")?,
        instance_vars: step_object(f, "instance_vars", "SetPipelineStep", "atc.InstanceVars")?,
    }))
}

#[inline(never)]
fn layer_load_var(f: &mut Fields, _ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::LoadVar(LoadVarStep {
        name: step_string(f, "load_var", "LoadVarStep")?,
        file: step_string(f, "file", "LoadVarStep")?,
        format: step_string(f, "format", "LoadVarStep")?,
        reveal: step_bool(f, "reveal", "LoadVarStep")?,
    }))
}

#[inline(never)]
fn layer_try(f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Try(Box::new(sub_step(f, ctx, "try")?)))
}

#[inline(never)]
fn layer_do(f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok(StepConfig::Do(DoStep {
        steps: step_list(f, ctx, "do", "[]atc.Step")?,
        tags: step_strings(f, "tags", "DoStep")?,
    }))
}

#[inline(never)]
fn layer_in_parallel(f: &mut Fields, ctx: Ctx) -> Result<StepConfig, ConfigError> {
    Ok({
        let (steps, limit, fail_fast) = match f.raw("in_parallel") {
            None => (vec![], 0, false),
            Some(Value::Array(_)) => {
                let steps = step_list(f, ctx, "in_parallel", "[]atc.Step")
                    .map_err(|e| e.prefixed("failed to unmarshal parallel steps: "))?;
                (steps, 0, false)
            }
            Some(v @ Value::Object(_)) => {
                let parse = || -> Result<_, ConfigError> {
                    let mut c =
                        Fields::new(&v, ctx, &f.child_ptr("in_parallel"), "target", "", "")?;
                    let steps = step_list(&mut c, ctx, "steps", "[]atc.Step")?;
                    let limit = step_int(&mut c, "limit", "target")?;
                    let fail_fast = step_bool(&mut c, "fail_fast", "target")?;
                    Ok((steps, limit, fail_fast))
                };
                parse().map_err(|e| e.prefixed("failed to unmarshal parallel config: "))?
            }
            Some(other) => {
                return Err(ConfigError {
                    message: format!("wrong type for parallel config: {}", go_v(&other)),
                    line: f.ctx.lines.line(&f.child_ptr("in_parallel")),
                })
            }
        };
        StepConfig::InParallel(InParallelStep {
            steps,
            limit,
            fail_fast,
            tags: step_strings(f, "tags", "InParallelStep")?,
        })
    })
}

/// Go's `%v` of a decoded JSON value, as far as messages need it.
fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => super::decode::go_number_text(n),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut items: Vec<_> = m.iter().map(|(k, v)| format!("{k}:{}", go_v(v))).collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
    }
}

fn rename_struct(mut e: ConfigError, strct: &str) -> ConfigError {
    e.message = e
        .message
        .replacen("Go struct field .", &format!("Go struct field {strct}."), 1);
    e
}

fn step_string(f: &mut Fields, key: &str, strct: &str) -> Result<String, ConfigError> {
    f.string(key).map_err(|e| rename_struct(e, strct))
}
fn step_bool(f: &mut Fields, key: &str, strct: &str) -> Result<bool, ConfigError> {
    f.bool(key).map_err(|e| rename_struct(e, strct))
}
fn step_int(f: &mut Fields, key: &str, strct: &str) -> Result<i64, ConfigError> {
    f.int(key).map_err(|e| rename_struct(e, strct))
}
fn step_strings(f: &mut Fields, key: &str, strct: &str) -> Result<Vec<String>, ConfigError> {
    f.strings(key).map_err(|e| rename_struct(e, strct))
}
fn step_object(
    f: &mut Fields,
    key: &str,
    strct: &str,
    go: &str,
) -> Result<Map<String, Value>, ConfigError> {
    Ok(f.object(key, go)
        .map_err(|e| rename_struct(e, strct))?
        .unwrap_or_default())
}

fn across_var(v: &Value, ctx: Ctx, ptr: &str) -> Result<AcrossVarConfig, ConfigError> {
    let strict = Ctx {
        strict: true,
        ..ctx
    };
    let mut f = Fields::new(v, strict, ptr, "target", "", "atc.target")?;
    let var = step_string(&mut f, "var", "target")?;
    let values = f.raw("values");
    let max_in_flight = match f.raw("max_in_flight") {
        None => None,
        Some(Value::String(s)) if s == "all" => Some(MaxInFlight::All),
        Some(Value::String(s)) => {
            return Err(ConfigError {
                message: format!("invalid max_in_flight {s:?}"),
                line: ctx.lines.line(&f.child_ptr("max_in_flight")),
            })
        }
        Some(other) => match super::decode::int_value(&other) {
            Some(i) => Some(MaxInFlight::Limit(i)),
            None => return Err(f.err("max_in_flight", &other, "int")),
        },
    };
    f.finish()?;
    Ok(AcrossVarConfig {
        var,
        values,
        max_in_flight,
    })
}

impl StepConfig {
    fn wrap(&mut self, inner: StepConfig) {
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
