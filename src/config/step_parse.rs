//! Step parsing (upstream `Step.UnmarshalJSON`): modifiers found first, in
//! `STEP_PRECEDENCE` order, wrap the step; the first core key ends parsing; what is left is
//! kept as unknown fields. Decoding inside steps is lenient (Go's plain `json.Unmarshal`):
//! no scalar coercion and unknown nested keys ignored, except for `across` vars.

use super::decode::{list, Ctx, Fields};
use super::steps::*;
use super::task::{task_env, ContainerLimits, TaskConfig};
use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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
            // Present but null: upstream's unmarshaler sees `nil`.
            None => {
                return Err(ConfigError {
                    message: "wrong type for parallel config: <nil>".into(),
                    line: f.ctx.lines.line(&f.child_ptr("in_parallel")),
                })
            }
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
