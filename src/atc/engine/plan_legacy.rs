//! Plans stored before leaves were typed: leaves as `{"step": {"config": <step config>}}`,
//! hooks as `{"step", "hook"}`, `try` holding its plan bare, and an across step holding
//! its step's config. Rewritten into today's JSON so old builds' plans still show.

use super::{config_plan, leaf_node, Ids};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const HOOKS: [&str; 5] = ["on_success", "on_failure", "on_abort", "on_error", "ensure"];

/// Rewrites a stored plan node (and everything under it) in place.
pub(super) fn upgrade(node: &mut Value) -> Result<(), String> {
    let Some(m) = node.as_object_mut() else {
        return Ok(());
    };
    if let Some(step) = m.remove("step") {
        let id = m.get("id").cloned().unwrap_or(Value::Null);
        *node = leaf(id, step)?;
        return Ok(());
    }
    for key in HOOKS {
        if let Some(Value::Object(h)) = m.get_mut(key) {
            if let Some(hook) = h.remove("hook") {
                h.insert(key.to_string(), hook);
            }
        }
    }
    if let Some(t) = m.get_mut("try") {
        if t.get("id").is_some() {
            *t = json!({ "step": t.take() });
        }
    }
    if let Some(Value::Object(a)) = m.get_mut("across") {
        if let Some(step) = a.get_mut("step").filter(|s| s.get("id").is_none()) {
            let config = crate::config::parse_step(step).map_err(|e| e.to_string())?;
            let plan = config_plan(&Ids::default(), &config.config, &BTreeMap::new());
            *step = serde_json::to_value(plan).map_err(|e| e.to_string())?;
        }
    }
    // Recurse only into composite nodes: leaves hold user data (versions, params).
    let mut children: Vec<&mut Value> = Vec::new();
    for (key, child) in m.iter_mut() {
        match (key.as_str(), child) {
            ("do" | "retry" | "in_parallel", Value::Array(items)) => children.extend(items),
            ("in_parallel", Value::Object(p)) => {
                if let Some(Value::Array(items)) = p.get_mut("steps") {
                    children.extend(items);
                }
            }
            ("try" | "timeout" | "across", Value::Object(o)) => children.extend(o.get_mut("step")),
            (k, Value::Object(h)) if HOOKS.contains(&k) => {
                for (hk, v) in h.iter_mut() {
                    if hk == "step" || hk == k {
                        children.push(v);
                    }
                }
            }
            _ => {}
        }
    }
    children.into_iter().try_for_each(upgrade)
}

/// A legacy leaf: its step config with the version the build chose for it.
fn leaf(id: Value, step: Value) -> Result<Value, String> {
    let config = step.get("config").cloned().unwrap_or(Value::Null);
    let parsed = crate::config::parse_step(&config).map_err(|e| e.to_string())?;
    let mut versions = BTreeMap::new();
    if let (Some(v), Some(name)) = (step.get("version"), config.get("get")) {
        versions.insert(name.as_str().unwrap_or_default().to_string(), v.clone());
    }
    let node = leaf_node(&parsed.config, &versions).ok_or("not a leaf step")?;
    let mut out = serde_json::to_value(super::Plan {
        id: String::new(),
        node,
    })
    .map_err(|e| e.to_string())?;
    out["id"] = id;
    if let (Some(from), Some(Value::Object(get))) = (step.get("version_from"), out.get_mut("get")) {
        get.insert("version_from".into(), from.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atc::engine::plan::BuildPlan;

    /// The stored form every node kind had before leaves were typed.
    #[test]
    fn plans_stored_before_typed_leaves_still_read() {
        let stored = r#"{"id":"9","ensure":{"step":{"id":"8","do":[{"id":"1","step":{"config":{"get":"repo","resource":"repo"},"version":{"ref":"abc"}}},{"id":"2","check":{"name":"repo","kind":"resource","from_version":{"ref":"a"},"resource_id":4}},{"id":"3","in_parallel":{"steps":[{"id":"4","try":{"id":"5","retry":[{"id":"6","timeout":{"step":{"id":"7","step":{"config":{"task":"t","file":"repo/t.yml"}}},"duration":"1h"}}]}}],"limit":2,"fail_fast":true}},{"id":"a","across":{"vars":[{"var":"v","values":[1,2]}],"step":{"load_var":"x","file":"f"},"fail_fast":true}},{"id":"b","artifact_input":{"artifact_id":7,"name":"in"}},{"id":"c","artifact_output":{"name":"out"}},{"id":"f","on_success":{"step":{"id":"d","step":{"config":{"put":"out","resource":"out","no_get":true}}},"hook":{"id":"e","step":{"config":{"get":"out","resource":"out"},"version_from":"d"}}}}]},"hook":{"id":"10","do":[]}}}"#;
        let plan: Value = serde_json::from_str(stored).expect("json");
        let build = BuildPlan::from_stored(json!({ "plan": plan })).expect("reads");
        let public = crate::atc::engine::plan::public_plan(&build);
        let steps = &public["ensure"]["step"]["do"];
        assert_eq!(
            steps[0],
            json!({"id": "1", "get": {"name": "repo", "type": "", "resource": "repo", "version": {"ref": "abc"}}})
        );
        assert_eq!(
            steps[2]["in_parallel"]["steps"][0]["try"]["step"]["retry"][0]["timeout"]["step"],
            json!({"id": "7", "task": {"name": "t", "privileged": false, "hermetic": false}})
        );
        assert_eq!(steps[3]["across"]["vars"], json!([{"name": "v"}]));
        assert_eq!(
            steps[6]["on_success"]["on_success"],
            json!({"id": "e", "get": {"name": "out", "type": "", "resource": "out"}})
        );
        let crate::proto::plan::Node::Ensure(h) = &build.plan.node else {
            panic!("{:?}", build.plan)
        };
        assert_eq!(h.hook.id, "10");
    }

    #[test]
    fn a_legacy_leaf_that_does_not_parse_is_an_error() {
        let mut v = json!({"id": "1", "step": {"config": {"nonsense": 1}}});
        assert!(upgrade(&mut v).is_err());
    }
}
