//! Upstream's private plan JSON (`atc.Plan`, build-events.md §5.4), the body of one-off
//! build creation. It reads as our plan type ([`crate::proto::plan::Plan`]), so both our
//! fly and upstream's released fly drive one-off builds; what is left here is moving the
//! resources and custom types a `get`/`put` or task carries inline (with their sources)
//! into the build plan, where the engine looks them up, and refusing what cannot run.

use crate::atc::engine::plan::{BuildPlan, Ids, Node, Plan};
use serde_json::{json, Map, Value};

/// Translates a plan; `base` carries the pipeline's resources and types for
/// pipeline-scoped builds (the plan's own entries win). Errors are for the client.
pub fn translate(body: &Value, base: BuildPlan, ids: &Ids) -> Result<BuildPlan, String> {
    if !body.is_object() {
        return Err("malformed plan: a plan must be an object".into());
    }
    let mut body = body.clone();
    go_nulls(&mut body);
    let mut plan: Plan =
        serde_json::from_value(body).map_err(|e| format!("malformed plan: {e}"))?;
    let mut out = base;
    let mut result = Ok(());
    plan.walk_mut(&mut |p| {
        if result.is_ok() {
            result = lift(p, &mut out, ids);
        }
    });
    result?;
    out.plan = plan;
    Ok(out)
}

/// Go encodes unset slices and maps as `null`; in a node's body (and an inline task
/// config) they mean "none". `aggregate` is the old name of `in_parallel`.
fn go_nulls(node: &mut Value) {
    let Some(m) = node.as_object_mut() else {
        return;
    };
    if let Some(a) = m.remove("aggregate") {
        m.insert("in_parallel".into(), a);
    }
    for (key, body) in m.iter_mut() {
        match body {
            Value::Array(items) => items.iter_mut().for_each(go_nulls),
            Value::Object(b) => {
                b.retain(|_, v| !v.is_null());
                if key == "task" {
                    if let Some(Value::Object(c)) = b.get_mut("config") {
                        c.retain(|_, v| !v.is_null());
                    }
                    continue;
                }
                for v in b.values_mut() {
                    match v {
                        Value::Array(items) => items.iter_mut().for_each(go_nulls),
                        v if v.get("id").is_some() => go_nulls(v),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// One node: an id where the client left none; inline resources and types moved into
/// the build plan; steps the one-off API does not run refused.
fn lift(p: &mut Plan, out: &mut BuildPlan, ids: &Ids) -> Result<(), String> {
    if p.id.is_empty() {
        p.id = ids.next();
    }
    match &mut p.node {
        Node::Get(g) => {
            g.resource = g.resource_name().to_string();
            add_resource(&g.resource, &mut g.type_, &mut g.source, out);
            add_types(g.resource_types.take(), out);
        }
        Node::Put(put) => {
            put.resource = put.resource_name().to_string();
            add_resource(&put.resource, &mut put.type_, &mut put.source, out);
            add_types(put.resource_types.take(), out);
        }
        Node::Task(t) => {
            if let Some(config) = &t.config {
                let text = serde_json::to_vec(config).map_err(|e| e.to_string())?;
                crate::config::parse_task_config(&text)
                    .map_err(|e| format!("invalid task config: {e}"))?;
            }
            add_types(t.resource_types.take(), out);
        }
        Node::Check(_) => return Err("unsupported plan step: check".into()),
        Node::Run(_) => return Err("unsupported plan step: run".into()),
        Node::Across(_) => return Err("unsupported plan step: across".into()),
        _ => {}
    }
    Ok(())
}

/// Moves a resource the plan carries inline into the build plan, under the name steps
/// refer to it by (one the step does not carry stays as the pipeline has it).
fn add_resource(name: &str, type_: &mut String, source: &mut Option<Value>, out: &mut BuildPlan) {
    if type_.is_empty() && source.is_none() {
        return;
    }
    let source = source.take().unwrap_or(json!({}));
    let r = json!({"name": name, "type": std::mem::take(type_), "source": source});
    out.resources.insert(name.to_string(), r);
}

/// Adds custom resource types (upstream's `VersionedResourceTypes`) not already known.
fn add_types(types: Option<Vec<Value>>, out: &mut BuildPlan) {
    for t in types.into_iter().flatten() {
        let Some(tm) = t.as_object() else { continue };
        let name = tm.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || out.resource_types.iter().any(|e| e.name == name) {
            continue;
        }
        let keys = [
            "name",
            "type",
            "source",
            "privileged",
            "params",
            "defaults",
            "tags",
        ];
        let ty: Map<String, Value> = keys
            .iter()
            .filter_map(|k| {
                tm.get(*k)
                    .filter(|v| set(v))
                    .map(|v| (k.to_string(), v.clone()))
            })
            .collect();
        // One that does not read is left out, as the engine used to when running it.
        if let Ok(ty) = crate::config::ResourceType::from_value(&Value::Object(ty)) {
            out.resource_types.push(ty);
        }
    }
}

/// Whether a Go-encoded value is set (not null or empty).
fn set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
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
            (
                json!({"id": "1", "do": {}}),
                "malformed plan: invalid type: map",
            ),
            (json!([1]), "must be an object"),
            (
                json!({"id": "1", "artifact_input": {"name": "x"}}),
                "missing field `artifact_id`",
            ),
            (
                json!({"id": "1", "nonsense": {}}),
                "malformed plan: no variant",
            ),
        ] {
            let err = translate(&body, BuildPlan::default(), &ids).expect_err("refused");
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
