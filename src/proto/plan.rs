//! Build plans (upstream `atc.Plan`): the step tree a build executes, as stored in
//! `builds.plan` and read back when a build resumes. The JSON shape is what the engine has
//! always stored, so old plans still load.
//!
//! Composite nodes (do, in_parallel, hooks, try, timeout, retry, across) are typed. Leaf
//! steps keep their config JSON (`Step::to_value`): the config model lives with its
//! parser, and `((.:var))` references from `load_var` and `across` are interpolated into
//! that JSON just before the step runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub id: String,
    #[serde(flatten)]
    pub node: Node,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// A get, put, task, set_pipeline, load_var or run step: its config JSON.
    Step(StepNode),
    /// A resource check (check builds, `fly check-resource`).
    Check(CheckNode),
    Do(Vec<Plan>),
    InParallel(InParallelNode),
    Across(AcrossNode),
    Try(Box<Plan>),
    Timeout(TimeoutNode),
    Retry(Vec<Plan>),
    OnSuccess(HookNode),
    OnFailure(HookNode),
    OnAbort(HookNode),
    OnError(HookNode),
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepNode {
    /// The step's own config (no modifiers), as `Step::to_value`.
    pub config: Value,
    /// For a job input: the version the scheduler chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    /// For the implicit get after a put: the put's plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_from: Option<String>,
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AcrossNode {
    /// The across step's own config (`across:` and `fail_fast`), as written.
    pub vars: Value,
    /// The wrapped step as config JSON; planned per combination at run time.
    pub step: Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_fast: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimeoutNode {
    pub step: Box<Plan>,
    pub duration: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HookNode {
    pub step: Box<Plan>,
    pub hook: Box<Plan>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ArtifactInputNode {
    pub artifact_id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ArtifactOutputNode {
    pub name: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored plan with every node kind reads back and writes out byte for byte.
    #[test]
    fn stored_plans_keep_their_json() {
        let stored = r#"{"id":"9","ensure":{"step":{"id":"8","do":[{"id":"1","step":{"config":{"get":"repo","resource":"repo"},"version":{"ref":"abc"}}},{"id":"2","check":{"name":"repo","kind":"resource","from_version":{"ref":"a"},"resource_id":4}},{"id":"3","in_parallel":{"steps":[{"id":"4","try":{"id":"5","retry":[{"id":"6","timeout":{"step":{"id":"7","step":{"config":{"task":"t","file":"repo/t.yml"}}},"duration":"1h"}}]}}],"limit":2,"fail_fast":true}},{"id":"a","across":{"vars":[{"var":"v","values":[1,2]}],"step":{"load_var":"x","file":"f"},"fail_fast":true}},{"id":"b","artifact_input":{"artifact_id":7,"name":"in"}},{"id":"c","artifact_output":{"name":"out"}},{"id":"f","on_success":{"step":{"id":"d","step":{"config":{"put":"out","resource":"out","no_get":true}}},"hook":{"id":"e","step":{"config":{"get":"out","resource":"out"},"version_from":"d"}}}}]},"hook":{"id":"10","do":[]}}}"#;
        let plan: Plan = serde_json::from_str(stored).expect("reads");
        assert_eq!(serde_json::to_string(&plan).expect("writes"), stored);
        // Plans stored before check kinds existed.
        let old: Plan = serde_json::from_str(r#"{"id":"1","check":{"name":"r"}}"#).expect("reads");
        assert!(matches!(old.node, Node::Check(ref c) if c.is_resource()));
    }
}
