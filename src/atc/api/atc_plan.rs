//! Upstream's private plan JSON (`atc.Plan`, build-events.md §5.4), the body of one-off
//! build creation, translated into our [`BuildPlan`]. Accepting upstream's shape lets both
//! our fly and upstream's released fly drive one-off builds.
//!
//! Leaf steps become our step-config JSON; the resources and custom types a `get`/`put`
//! or task names (with their sources) go into the plan's resources and resource types,
//! which is where our engine looks them up.

use crate::atc::engine::plan::{
    ArtifactInputNode, ArtifactOutputNode, BuildPlan, HookNode, Ids, InParallelNode, Node, Plan,
    StepNode, TimeoutNode,
};
use serde_json::{json, Map, Value};

/// Translates a plan; `base` carries the pipeline's resources and types for
/// pipeline-scoped builds (the plan's own entries win). Errors are for the client.
pub fn translate(body: &Value, base: BuildPlan, ids: &Ids) -> Result<BuildPlan, String> {
    let mut out = base;
    let plan = node(body, &mut out, ids)?;
    out.plan = plan;
    Ok(out)
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("malformed plan: {what} must be an object"))
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Copies the keys that are set (not null, not empty) from `from` to `to`.
fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        match from.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                to.insert((*k).to_string(), v.clone());
            }
        }
    }
}

fn node(v: &Value, out: &mut BuildPlan, ids: &Ids) -> Result<Plan, String> {
    let m = obj(v, "a plan node")?;
    let id = match str_of(m, "id") {
        "" => ids.next(),
        id => id.to_string(),
    };
    let nodes = |key: &str, out: &mut BuildPlan| -> Result<Vec<Plan>, String> {
        m[key]
            .as_array()
            .ok_or_else(|| format!("malformed plan: {key} must be a list"))?
            .iter()
            .map(|c| node(c, out, ids))
            .collect()
    };
    let hook = |key: &str, out: &mut BuildPlan| -> Result<HookNode, String> {
        let h = obj(&m[key], key)?;
        let step = h
            .get("step")
            .ok_or(format!("malformed plan: {key} without step"))?;
        let hook = h
            .get(key)
            .ok_or(format!("malformed plan: {key} without {key}"))?;
        Ok(HookNode {
            step: Box::new(node(step, out, ids)?),
            hook: Box::new(node(hook, out, ids)?),
        })
    };
    let n = if m.contains_key("do") {
        Node::Do(nodes("do", out)?)
    } else if m.contains_key("retry") {
        Node::Retry(nodes("retry", out)?)
    } else if let Some(p) = m.get("in_parallel").or_else(|| m.get("aggregate")) {
        let (steps, limit, fail_fast) = match p {
            // `aggregate` (and very old in_parallel) is a bare list.
            Value::Array(a) => (a.clone(), 0, false),
            p => {
                let p = obj(p, "in_parallel")?;
                (
                    p.get("steps")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    p.get("limit").and_then(Value::as_i64).unwrap_or(0),
                    p.get("fail_fast").and_then(Value::as_bool).unwrap_or(false),
                )
            }
        };
        Node::InParallel(InParallelNode {
            steps: steps
                .iter()
                .map(|s| node(s, out, ids))
                .collect::<Result<_, _>>()?,
            limit,
            fail_fast,
        })
    } else if m.contains_key("on_success") {
        Node::OnSuccess(hook("on_success", out)?)
    } else if m.contains_key("on_failure") {
        Node::OnFailure(hook("on_failure", out)?)
    } else if m.contains_key("on_abort") {
        Node::OnAbort(hook("on_abort", out)?)
    } else if m.contains_key("on_error") {
        Node::OnError(hook("on_error", out)?)
    } else if m.contains_key("ensure") {
        Node::Ensure(hook("ensure", out)?)
    } else if let Some(t) = m.get("try") {
        let step = obj(t, "try")?
            .get("step")
            .ok_or("malformed plan: try without step")?;
        Node::Try(Box::new(node(step, out, ids)?))
    } else if let Some(t) = m.get("timeout") {
        let t = obj(t, "timeout")?;
        let step = t
            .get("step")
            .ok_or("malformed plan: timeout without step")?;
        Node::Timeout(TimeoutNode {
            step: Box::new(node(step, out, ids)?),
            duration: str_of(t, "duration").to_string(),
        })
    } else if let Some(a) = m.get("artifact_input") {
        let a = obj(a, "artifact_input")?;
        Node::ArtifactInput(ArtifactInputNode {
            artifact_id: a
                .get("artifact_id")
                .and_then(Value::as_i64)
                .ok_or("malformed plan: artifact_input without artifact_id")?,
            name: str_of(a, "name").to_string(),
        })
    } else if let Some(a) = m.get("artifact_output") {
        Node::ArtifactOutput(ArtifactOutputNode {
            name: str_of(obj(a, "artifact_output")?, "name").to_string(),
        })
    } else {
        return leaf(m, id, out, ids);
    };
    Ok(Plan { id, node: n })
}

/// Registers a resource the plan carries inline; returns the name steps refer to it by.
fn add_resource(step: &Map<String, Value>, out: &mut BuildPlan) -> String {
    let name = match str_of(step, "resource") {
        "" => str_of(step, "name"),
        r => r,
    }
    .to_string();
    let mut r = json!({"name": name, "type": str_of(step, "type")});
    r["source"] = step.get("source").cloned().unwrap_or(json!({}));
    out.resources.insert(name.clone(), r);
    add_types(step.get("resource_types"), out);
    name
}

/// Adds custom resource types (upstream's `VersionedResourceTypes`) not already known.
fn add_types(types: Option<&Value>, out: &mut BuildPlan) {
    for t in types.and_then(Value::as_array).into_iter().flatten() {
        let Some(tm) = t.as_object() else { continue };
        let name = str_of(tm, "name");
        if name.is_empty() || out.resource_types.iter().any(|e| e.name == name) {
            continue;
        }
        let mut ty = Map::new();
        copy(
            tm,
            &mut ty,
            &[
                "name",
                "type",
                "source",
                "privileged",
                "params",
                "defaults",
                "tags",
            ],
        );
        // One that does not read is left out, as the engine used to when running it.
        if let Ok(ty) = crate::config::ResourceType::from_value(&Value::Object(ty)) {
            out.resource_types.push(ty);
        }
    }
}

fn leaf(
    m: &Map<String, Value>,
    id: String,
    out: &mut BuildPlan,
    ids: &Ids,
) -> Result<Plan, String> {
    let mut version = None;
    let mut version_from = None;
    let mut config = Map::new();
    let step = if let Some(g) = m.get("get") {
        let g = obj(g, "get")?;
        let resource = add_resource(g, out);
        config.insert("get".into(), json!(str_of(g, "name")));
        config.insert("resource".into(), json!(resource));
        copy(g, &mut config, &["params", "tags"]);
        version = g.get("version").filter(|v| !v.is_null()).cloned();
        version_from = g
            .get("version_from")
            .and_then(Value::as_str)
            .map(String::from);
        g
    } else if let Some(p) = m.get("put") {
        let p = obj(p, "put")?;
        let resource = add_resource(p, out);
        config.insert("put".into(), json!(str_of(p, "name")));
        config.insert("resource".into(), json!(resource));
        config.insert("no_get".into(), json!(true));
        copy(p, &mut config, &["params", "tags", "inputs"]);
        p
    } else if let Some(t) = m.get("task") {
        let t = obj(t, "task")?;
        config.insert("task".into(), json!(str_of(t, "name")));
        if let Some(path) = t.get("config_path").and_then(Value::as_str) {
            config.insert("file".into(), json!(path));
        }
        copy(
            t,
            &mut config,
            &[
                "config",
                "privileged",
                "tags",
                "image",
                "vars",
                "params",
                "input_mapping",
                "output_mapping",
                "container_limits",
            ],
        );
        if let Some(Value::Object(c)) = config.get_mut("config") {
            // Go encodes unset slices and maps as null; they mean "none".
            c.retain(|_, v| !v.is_null());
            let text = serde_json::to_vec(c).map_err(|e| e.to_string())?;
            let parsed = crate::config::parse_task_config(&text)
                .map_err(|e| format!("invalid task config: {e}"))?;
            if let Err(errors) = parsed.validate() {
                return Err(format!("invalid task config: {}", errors.join("; ")));
            }
        }
        add_types(t.get("resource_types"), out);
        t
    } else if let Some(l) = m.get("load_var") {
        let l = obj(l, "load_var")?;
        config.insert("load_var".into(), json!(str_of(l, "name")));
        copy(l, &mut config, &["file", "format", "reveal"]);
        l
    } else if let Some(s) = m.get("set_pipeline") {
        let s = obj(s, "set_pipeline")?;
        config.insert("set_pipeline".into(), json!(str_of(s, "name")));
        copy(
            s,
            &mut config,
            &["file", "team", "vars", "var_files", "instance_vars"],
        );
        s
    } else {
        let key = m.keys().find(|k| *k != "id" && *k != "attempts");
        return Err(match key {
            Some(k) => format!("unsupported plan step: {k}"),
            None => "malformed plan: a node without a step".into(),
        });
    };
    let config = Value::Object(config);
    crate::config::parse_step(&config).map_err(|e| format!("invalid plan step: {e}"))?;
    let plan = Plan {
        id: id.clone(),
        node: Node::Step(StepNode {
            config,
            version,
            version_from,
        }),
    };
    // A step timeout is a wrapper node here, as in pipelines.
    Ok(match step.get("timeout").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => Plan {
            id: ids.next(),
            node: Node::Timeout(TimeoutNode {
                step: Box::new(plan),
                duration: d.to_string(),
            }),
        },
        _ => plan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atc::engine::plan::public_plan;

    #[test]
    fn fly_executes_plan_with_inputs_and_outputs_translates() {
        let body = json!({"id": "a5", "ensure": {
            "step": {"id": "a3", "do": [
                {"id": "a1", "in_parallel": {"steps": [
                    {"id": "a0", "artifact_input": {"artifact_id": 7, "name": "src"}},
                    {"id": "a9", "get": {"name": "repo", "type": "git", "source": {"uri": "u"},
                        "version": {"ref": "abc"}, "resource": "repo"}}]}},
                {"id": "a2", "task": {"name": "one-off", "privileged": true,
                    "config": {"platform": "linux", "run": {"path": "true"}}}}]},
            "ensure": {"id": "a4", "in_parallel": {"steps": [
                {"id": "a6", "artifact_output": {"name": "out"}}]}}}});
        let plan = translate(&body, BuildPlan::default(), &Ids::default()).expect("translates");
        assert_eq!(plan.resources["repo"]["source"], json!({"uri": "u"}));
        let public = public_plan(&plan);
        assert_eq!(
            public["ensure"]["step"]["do"][0]["in_parallel"]["steps"][1],
            json!({"id": "a9", "get": {"name": "repo", "type": "git", "resource": "repo", "version": {"ref": "abc"}}})
        );
        assert_eq!(
            public["ensure"]["step"]["do"][1],
            json!({"id": "a2", "task": {"name": "one-off", "privileged": true, "hermetic": false}})
        );
        assert_eq!(
            public["ensure"]["ensure"]["in_parallel"]["steps"][0],
            json!({"id": "a6", "artifact_output": {"name": "out"}})
        );
    }

    #[test]
    fn unknown_or_malformed_steps_are_refused() {
        let ids = Ids::default();
        for (body, want) in [
            (
                json!({"id": "1", "check": {"name": "x"}}),
                "unsupported plan step: check",
            ),
            (json!({"id": "1", "do": {}}), "do must be a list"),
            (json!([1]), "must be an object"),
            (
                json!({"id": "1", "artifact_input": {"name": "x"}}),
                "without artifact_id",
            ),
        ] {
            let err = translate(&body, BuildPlan::default(), &ids).expect_err("refused");
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
