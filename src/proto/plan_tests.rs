use super::*;
use serde_json::json;

/// A plan with every node kind reads back and writes out byte for byte.
#[test]
fn plans_keep_their_json() {
    let stored = r#"{"id":"9","ensure":{"step":{"id":"8","do":[{"id":"1","get":{"name":"repo","version":{"ref":"abc"},"resource":"repo"}},{"id":"2","check":{"name":"repo","kind":"resource","from_version":{"ref":"a"},"resource_id":4}},{"id":"3","in_parallel":{"steps":[{"id":"4","try":{"step":{"id":"5","retry":[{"id":"6","timeout":{"step":{"id":"7","task":{"name":"t","privileged":false,"config_path":"repo/t.yml","params":{"A":"1"}}},"duration":"1h"}}]}}}],"limit":2,"fail_fast":true}},{"id":"a","across":{"vars":[{"var":"v","values":[1,2],"max_in_flight":"all"}],"step":{"id":"a0","load_var":{"name":"x","file":"f"}},"fail_fast":true}},{"id":"b","artifact_input":{"artifact_id":7,"name":"in"}},{"id":"c","artifact_output":{"name":"out"}},{"id":"f","on_success":{"step":{"id":"d","put":{"name":"out","inputs":["a"],"resource":"out"}},"on_success":{"id":"e","get":{"name":"out","version_from":"d","resource":"out"}}}},{"id":"g","set_pipeline":{"name":"p","file":"f.yml","instance_vars":{"i":1}}},{"id":"h","run":{"message":"go","type":"proto"}}]},"ensure":{"id":"10","do":[]}}}"#;
    let plan: Plan = serde_json::from_str(stored).expect("reads");
    assert_eq!(serde_json::to_string(&plan).expect("writes"), stored);
}

/// The plan upstream's fly sends for `fly execute` (build-events.md §5.4) reads as is.
#[test]
fn upstream_fly_execute_plans_read() {
    let body = json!({"id": "a5", "ensure": {
        "step": {"id": "a3", "do": [
            {"id": "a1", "in_parallel": {"steps": [
                {"id": "a0", "artifact_input": {"artifact_id": 7, "name": "src"}},
                {"id": "a9", "get": {"name": "repo", "type": "git", "source": {"uri": "u"},
                    "version": {"ref": "abc"}, "resource": "repo", "resource_types": null}}]}},
            {"id": "a2", "task": {"name": "one-off", "privileged": true, "tags": null,
                "config": {"platform": "linux", "run": {"path": "true"}},
                "input_mapping": {}, "resource_types": null}}]},
        "ensure": {"id": "a4", "in_parallel": {"steps": [
            {"id": "a6", "artifact_output": {"name": "out"}}]}}}});
    let plan: Plan = serde_json::from_value(body).expect("reads");
    let Node::Ensure(h) = &plan.node else {
        panic!("{plan:?}")
    };
    assert!(matches!(h.hook.node, Node::InParallel(ref p) if p.steps.len() == 1));
    let Node::Do(steps) = &h.step.node else {
        panic!()
    };
    let Node::InParallel(inputs) = &steps[0].node else {
        panic!()
    };
    let Node::Get(g) = &inputs.steps[1].node else {
        panic!()
    };
    assert_eq!(
        (g.type_.as_str(), g.source.clone()),
        ("git", Some(json!({"uri": "u"})))
    );
    // Old clients send in_parallel as a bare list.
    let old: Plan =
        serde_json::from_value(json!({"id": "1", "in_parallel": [{"id": "2", "do": []}]}))
            .expect("reads");
    assert!(matches!(old.node, Node::InParallel(ref p) if p.steps.len() == 1));
    // Plans stored before check kinds existed.
    let old: Plan = serde_json::from_str(r#"{"id":"1","check":{"name":"r"}}"#).expect("reads");
    assert!(matches!(old.node, Node::Check(ref c) if c.is_resource()));
}

#[test]
fn a_hook_without_its_hook_names_what_is_missing() {
    let err = serde_json::from_value::<Plan>(
        json!({"id": "1", "ensure": {"step": {"id": "2", "do": []}}}),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("ensure without ensure"), "{err}");
}

#[test]
fn derived_copies_rename_every_id_and_reference() {
    let plan: Plan = serde_json::from_value(json!({"id": "5", "on_success": {
        "step": {"id": "3", "put": {"name": "o"}},
        "on_success": {"id": "4", "get": {"name": "o", "version_from": "3"}}}}))
    .expect("reads");
    let d = plan.derived(2);
    assert_eq!(
        serde_json::to_value(&d).expect("ser"),
        json!({"id": "5/2", "on_success": {
            "step": {"id": "3/2", "put": {"name": "o"}},
            "on_success": {"id": "4/2", "get": {"name": "o", "version_from": "3/2"}}}})
    );
}
