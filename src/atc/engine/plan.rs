//! Build plans: the tree a build executes (the wire type [`crate::proto::plan::Plan`]),
//! fixed when the build starts, planned from a job's config. The build plan also carries
//! the resources and resource types it needs, so a build runs on what was configured when
//! it started. `/builds/:id/plan` serves [`public_plan`] (build-events.md §5.3).

use crate::config::{
    Config, InputsConfig, JobConfig, MaxInFlight, ResourceType, Step, StepConfig, VersionConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "plan_legacy.rs"]
mod legacy;

pub use crate::proto::plan::{
    AcrossNode, AcrossVar, ArtifactInputNode, ArtifactOutputNode, CheckNode, GetPlan, HookNode,
    InParallelNode, LoadVarPlan, Node, Plan, PutInputs, PutPlan, RunPlan, SetPipelinePlan,
    TaskPlan, TimeoutNode, TryNode,
};

/// Everything a build needs besides artifacts: the step tree and the configs it refers to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildPlan {
    pub plan: Plan,
    /// Resource configs by name (as `ResourceConfig::to_value`).
    #[serde(default)]
    pub resources: BTreeMap<String, Value>,
    /// The pipeline's resource types (stored as `ResourceType::to_value`).
    #[serde(default, deserialize_with = "readable_types")]
    pub resource_types: Vec<ResourceType>,
    /// The pipeline's `var_sources`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_sources: Vec<Value>,
    /// The prototype a prototype check checks (as `ResourceType::to_value`); nothing else
    /// runs prototypes, so other plans leave it empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "readable_types"
    )]
    pub prototypes: Vec<ResourceType>,
}

/// A plan's types, leaving out any that do not read (older plans kept fly's types as
/// given): the build runs without them, as it always has, rather than not loading.
fn readable_types<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ResourceType>, D::Error> {
    let types = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    Ok(types
        .iter()
        .filter_map(|t| ResourceType::from_value(t).ok())
        .collect())
}

impl BuildPlan {
    /// A build's stored plan, including plans stored before leaves were typed (see
    /// [`legacy`]); `None` when it does not read.
    pub fn from_stored(stored: Value) -> Option<BuildPlan> {
        let mut stored = stored;
        if let Some(plan) = stored.get_mut("plan") {
            legacy::upgrade(plan).ok()?;
        }
        serde_json::from_value(stored).ok()
    }
}

/// Hands out plan ids: lower-case hex of a counter that starts at the node's start time,
/// so ids from different web nodes rarely collide and children precede their parents.
#[derive(Debug)]
pub struct Ids(AtomicU64);

impl Default for Ids {
    fn default() -> Self {
        Ids(AtomicU64::new(crate::clock::now().max(1) as u64))
    }
}

impl Ids {
    pub fn next(&self) -> String {
        format!("{:x}", self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// Plans a job build: its plan inside a `do`, wrapped by the job's hooks (on_success
/// innermost, then on_failure, on_abort, on_error, ensure). `versions` are the resolved
/// inputs by get name.
pub fn job_plan(
    ids: &Ids,
    pipeline: &Config,
    job: &JobConfig,
    versions: &BTreeMap<String, Value>,
) -> BuildPlan {
    let steps: Vec<Plan> = job
        .plan
        .iter()
        .map(|s| step_plan(ids, s, versions))
        .collect();
    let mut plan = Plan {
        id: ids.next(),
        node: Node::Do(steps),
    };
    type Hook<'a> = (&'a Option<Box<Step>>, fn(HookNode) -> Node);
    let hooks: [Hook; 5] = [
        (&job.on_success, Node::OnSuccess),
        (&job.on_failure, Node::OnFailure),
        (&job.on_abort, Node::OnAbort),
        (&job.on_error, Node::OnError),
        (&job.ensure, Node::Ensure),
    ];
    for (hook, make) in hooks {
        if let Some(h) = hook {
            let hook = step_plan(ids, h, versions);
            plan = Plan {
                id: ids.next(),
                node: make(HookNode {
                    step: Box::new(plan),
                    hook: Box::new(hook),
                }),
            };
        }
    }
    BuildPlan {
        plan,
        ..pipeline_configs(pipeline)
    }
}

/// The resources, types and var sources of a pipeline, for a plan that runs in it.
pub fn pipeline_configs(pipeline: &Config) -> BuildPlan {
    pipeline_configs_with(pipeline, |_| true)
}

/// [`pipeline_configs`] with only the resources `keep` picks: a check needs its own alone,
/// and carrying all of them made a round of N checks hold N copies of every resource.
pub fn pipeline_configs_with(
    pipeline: &Config,
    keep: impl Fn(&crate::config::ResourceConfig) -> bool,
) -> BuildPlan {
    BuildPlan {
        plan: Plan::default(),
        resources: pipeline
            .resources
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.name.clone(), r.to_value()))
            .collect(),
        resource_types: pipeline.resource_types.clone(),
        var_sources: pipeline
            .var_sources
            .iter()
            .map(|v| serde_json::json!({"name": v.name, "type": v.type_, "config": v.config}))
            .collect(),
        prototypes: Vec::new(),
    }
}

/// Plans one step of a config (with its modifiers).
pub fn step_plan(ids: &Ids, step: &Step, versions: &BTreeMap<String, Value>) -> Plan {
    config_plan(ids, &step.config, versions)
}

/// The plan of a step config. Modifiers become wrapper nodes in upstream's nesting: the
/// config parser already nests them (hooks outside attempts outside timeout), so the
/// wrapper order follows the config tree.
pub fn config_plan(ids: &Ids, config: &StepConfig, versions: &BTreeMap<String, Value>) -> Plan {
    let node = match config {
        StepConfig::Put(p) => {
            let put = Plan {
                id: ids.next(),
                node: leaf_node(config, versions).expect("a put is a leaf"),
            };
            if p.no_get {
                return put;
            }
            // The implicit get of what the put produced (the "dependent get").
            let get = Plan {
                id: ids.next(),
                node: Node::Get(GetPlan {
                    name: p.name.clone(),
                    resource: p.resource_name().to_string(),
                    params: p.get_params.clone(),
                    tags: p.tags.clone(),
                    version_from: Some(put.id.clone()),
                    ..Default::default()
                }),
            };
            Node::OnSuccess(HookNode {
                step: Box::new(put),
                hook: Box::new(get),
            })
        }
        StepConfig::Get(_)
        | StepConfig::Task(_)
        | StepConfig::Run(_)
        | StepConfig::SetPipeline(_)
        | StepConfig::LoadVar(_) => leaf_node(config, versions).expect("a leaf"),
        StepConfig::Do(d) => Node::Do(
            d.steps
                .iter()
                .map(|s| step_plan(ids, s, versions))
                .collect(),
        ),
        StepConfig::InParallel(p) => Node::InParallel(InParallelNode {
            steps: p
                .steps
                .iter()
                .map(|s| step_plan(ids, s, versions))
                .collect(),
            limit: p.limit,
            fail_fast: p.fail_fast,
        }),
        StepConfig::Try(s) => Node::Try(TryNode {
            step: Box::new(step_plan(ids, s, versions)),
        }),
        StepConfig::Timeout(t) => Node::Timeout(TimeoutNode {
            step: Box::new(config_plan(ids, &t.step, versions)),
            duration: t.duration.clone(),
        }),
        StepConfig::Retry(r) => Node::Retry(
            (0..r.attempts.max(1))
                .map(|_| config_plan(ids, &r.step, versions))
                .collect(),
        ),
        StepConfig::Across(a) => Node::Across(AcrossNode {
            vars: a
                .vars
                .iter()
                .map(|v| AcrossVar {
                    var: v.var.clone(),
                    values: v.values.clone().unwrap_or(Value::Null),
                    max_in_flight: v.max_in_flight.map(|m| match m {
                        MaxInFlight::All => json!("all"),
                        MaxInFlight::Limit(n) => json!(n),
                    }),
                })
                .collect(),
            step: Box::new(config_plan(ids, &a.step, &BTreeMap::new())),
            fail_fast: a.fail_fast,
        }),
        StepConfig::OnSuccess(h) => Node::OnSuccess(hook(ids, h, versions)),
        StepConfig::OnFailure(h) => Node::OnFailure(hook(ids, h, versions)),
        StepConfig::OnAbort(h) => Node::OnAbort(hook(ids, h, versions)),
        StepConfig::OnError(h) => Node::OnError(hook(ids, h, versions)),
        StepConfig::Ensure(h) => Node::Ensure(hook(ids, h, versions)),
    };
    Plan {
        id: ids.next(),
        node,
    }
}

/// The node of a leaf step config (get, put, task, run, set_pipeline, load_var); `None`
/// for anything else. A get takes the version chosen for it in `versions`, else its
/// pinned `version:`.
fn leaf_node(config: &StepConfig, versions: &BTreeMap<String, Value>) -> Option<Node> {
    Some(match config {
        StepConfig::Get(g) => Node::Get(GetPlan {
            name: g.name.clone(),
            resource: g.resource_name().to_string(),
            params: g.params.clone(),
            version: versions.get(&g.name).cloned().or(match &g.version {
                Some(VersionConfig::Pinned(p)) => Some(json!(p)),
                _ => None,
            }),
            tags: g.tags.clone(),
            timeout: g.timeout.clone(),
            ..Default::default()
        }),
        StepConfig::Put(p) => Node::Put(PutPlan {
            name: p.name.clone(),
            resource: p.resource_name().to_string(),
            params: p.params.clone(),
            inputs: p.inputs.as_ref().map(|i| match i {
                InputsConfig::All => PutInputs::Keyword("all".into()),
                InputsConfig::Detect => PutInputs::Keyword("detect".into()),
                InputsConfig::Specified(names) => PutInputs::Names(names.clone()),
                InputsConfig::Unset => PutInputs::Keyword(String::new()),
            }),
            tags: p.tags.clone(),
            timeout: p.timeout.clone(),
            ..Default::default()
        }),
        StepConfig::Task(t) => Node::Task(Box::new(TaskPlan {
            name: t.name.clone(),
            privileged: t.privileged,
            hermetic: t.hermetic,
            tags: t.tags.clone(),
            config_path: t.config_path.clone(),
            config: t.config.as_ref().map(|c| c.to_value()),
            container_limits: t.container_limits.as_ref().map(|l| l.to_value()),
            image_artifact_name: t.image_artifact_name.clone(),
            vars: t.vars.clone(),
            params: t
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
            input_mapping: t.input_mapping.clone(),
            output_mapping: t.output_mapping.clone(),
            timeout: t.timeout.clone(),
            resource_types: None,
        })),
        StepConfig::Run(r) => Node::Run(RunPlan {
            message: r.message.clone(),
            type_: r.type_.clone(),
            params: r.params.clone(),
            privileged: r.privileged,
            tags: r.tags.clone(),
        }),
        StepConfig::SetPipeline(s) => Node::SetPipeline(SetPipelinePlan {
            name: s.name.clone(),
            file: s.file.clone(),
            team: s.team.clone(),
            vars: s.vars.clone(),
            var_files: s.var_files.clone(),
            instance_vars: s.instance_vars.clone(),
        }),
        StepConfig::LoadVar(l) => Node::LoadVar(LoadVarPlan {
            name: l.name.clone(),
            file: l.file.clone(),
            format: l.format.clone(),
            reveal: l.reveal,
        }),
        _ => return None,
    })
}

fn hook(ids: &Ids, h: &crate::config::HookStep, versions: &BTreeMap<String, Value>) -> HookNode {
    let step = config_plan(ids, &h.step, versions);
    let hook = step_plan(ids, &h.hook, versions);
    HookNode {
        step: Box::new(step),
        hook: Box::new(hook),
    }
}

/// The public plan (no sources or params) as `/builds/:id/plan` serves it.
pub fn public_plan(build: &BuildPlan) -> Value {
    public_node(build, &build.plan)
}

fn type_of(build: &BuildPlan, resource: &str) -> String {
    build
        .resources
        .get(resource)
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn public_node(build: &BuildPlan, plan: &Plan) -> Value {
    let list = |steps: &[Plan]| -> Value {
        Value::Array(steps.iter().map(|p| public_node(build, p)).collect())
    };
    let (key, body) = match &plan.node {
        Node::Get(g) => {
            let resource = g.resource_name();
            let mut body =
                json!({"name": g.name, "type": type_of(build, resource), "resource": resource});
            if let Some(v) = &g.version {
                body["version"] = v.clone();
            }
            ("get", body)
        }
        Node::Put(p) => {
            let resource = p.resource_name();
            (
                "put",
                json!({"name": p.name, "type": type_of(build, resource), "resource": resource}),
            )
        }
        Node::Task(t) => (
            "task",
            json!({"name": t.name, "privileged": t.privileged, "hermetic": t.hermetic}),
        ),
        Node::SetPipeline(s) => {
            let iv = if s.instance_vars.is_empty() {
                Value::Null
            } else {
                Value::Object(s.instance_vars.clone())
            };
            (
                "set_pipeline",
                json!({"name": s.name, "team": s.team, "instance_vars": iv}),
            )
        }
        Node::LoadVar(l) => ("load_var", json!({"name": l.name})),
        Node::Run(r) => (
            "run",
            json!({"message": r.message, "type": r.type_, "privileged": false}),
        ),
        Node::Check(c) => {
            let types = match c.kind.as_str() {
                "resource_type" => Some(&build.resource_types),
                "prototype" => Some(&build.prototypes),
                _ => None,
            };
            let type_ = match types {
                Some(types) => types
                    .iter()
                    .find(|t| t.name == c.name)
                    .map(|t| t.type_.clone())
                    .unwrap_or_default(),
                None => type_of(build, &c.name),
            };
            ("check", json!({"name": c.name, "type": type_}))
        }
        Node::Do(steps) => ("do", list(steps)),
        Node::Retry(steps) => ("retry", list(steps)),
        Node::InParallel(p) => {
            let mut body = json!({ "steps": list(&p.steps) });
            if p.limit > 0 {
                body["limit"] = json!(p.limit);
            }
            if p.fail_fast {
                body["fail_fast"] = json!(true);
            }
            ("in_parallel", body)
        }
        Node::Across(a) => {
            let vars: Vec<Value> = a.vars.iter().map(|v| json!({"name": v.var})).collect();
            let mut body = json!({ "vars": vars });
            if a.fail_fast {
                body["fail_fast"] = json!(true);
            }
            ("across", body)
        }
        Node::Try(t) => ("try", json!({"step": public_node(build, &t.step)})),
        Node::Timeout(t) => (
            "timeout",
            json!({"step": public_node(build, &t.step), "duration": t.duration}),
        ),
        Node::OnSuccess(h) => ("on_success", public_hook(build, h, "on_success")),
        Node::OnFailure(h) => ("on_failure", public_hook(build, h, "on_failure")),
        Node::OnAbort(h) => ("on_abort", public_hook(build, h, "on_abort")),
        Node::OnError(h) => ("on_error", public_hook(build, h, "on_error")),
        Node::Ensure(h) => ("ensure", public_hook(build, h, "ensure")),
        Node::ArtifactInput(a) => (
            "artifact_input",
            json!({"artifact_id": a.artifact_id, "name": a.name}),
        ),
        Node::ArtifactOutput(a) => ("artifact_output", json!({"name": a.name})),
    };
    let mut out = Map::new();
    out.insert("id".into(), Value::String(plan.id.clone()));
    out.insert(key.into(), body);
    Value::Object(out)
}

fn public_hook(build: &BuildPlan, h: &HookNode, key: &str) -> Value {
    let mut m = Map::new();
    m.insert("step".into(), public_node(build, &h.step));
    m.insert(key.into(), public_node(build, &h.hook));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> (JobConfig, Config) {
        let c = crate::config::parse_pipeline(yaml.as_bytes()).expect("parses");
        (c.jobs[0].clone(), c)
    }

    #[test]
    fn a_put_is_followed_by_its_implicit_get_and_the_root_id_is_largest() {
        let (j, r) = job(
            "resources: [{name: repo, type: git, source: {}}, {name: out, type: s3, source: {}}]\n\
             jobs:\n- name: j\n  plan:\n  - get: repo\n    trigger: true\n  - task: unit\n    file: repo/t.yml\n  - put: out\n",
        );
        let ids = Ids(AtomicU64::new(0x66b3c2a1));
        let mut versions = BTreeMap::new();
        versions.insert("repo".to_string(), json!({"ref": "abc123"}));
        let plan = job_plan(&ids, &r, &j, &versions);
        let public = public_plan(&plan);
        assert_eq!(
            public,
            json!({"id":"66b3c2a6","do":[
                {"id":"66b3c2a1","get":{"name":"repo","type":"git","resource":"repo","version":{"ref":"abc123"}}},
                {"id":"66b3c2a2","task":{"name":"unit","privileged":false,"hermetic":false}},
                {"id":"66b3c2a5","on_success":{
                    "step":{"id":"66b3c2a3","put":{"name":"out","type":"s3","resource":"out"}},
                    "on_success":{"id":"66b3c2a4","get":{"name":"out","type":"s3","resource":"out"}}}}]})
        );
        let back: BuildPlan =
            serde_json::from_value(serde_json::to_value(&plan).expect("ser")).expect("de");
        assert_eq!(back, plan);
    }

    #[test]
    fn resource_types_keep_their_stored_form() {
        let (_, c) = job(
            "resource_types:\n- {name: m, type: registry-image, source: {repository: x}, privileged: true, check_every: 10m, tags: [t], defaults: {b: 1}, params: {p: 2}}\nprototypes:\n- {name: p, type: m}\njobs: [{name: j, plan: [{get: x}]}]\nresources: [{name: x, type: m, source: {}}]\n",
        );
        let stored: Vec<Value> = c.resource_types.iter().map(|t| t.to_value()).collect();
        let plan = BuildPlan {
            prototypes: c.prototypes.clone(),
            ..pipeline_configs(&c)
        };
        let json = serde_json::to_value(&plan).expect("ser");
        assert_eq!(json["resource_types"], Value::Array(stored));
        assert_eq!(
            json["prototypes"],
            json!([{"name": "p", "type": "m", "source": null}])
        );
        let back: BuildPlan = serde_json::from_value(json.clone()).expect("de");
        assert_eq!(back, plan);

        // A type that does not read (fly-supplied) is left out, not the whole plan.
        let mut json = json;
        json["resource_types"]
            .as_array_mut()
            .expect("types")
            .push(json!({"name": "bad", "privileged": "yes"}));
        let back: BuildPlan = serde_json::from_value(json).expect("de");
        assert_eq!(back.resource_types, c.resource_types);
    }

    #[test]
    fn job_hooks_wrap_the_plan_with_ensure_outermost() {
        let (j, r) = job(
            "jobs:\n- name: j\n  plan: [{task: t, config: {platform: linux, run: {path: x}}}]\n  on_success: {task: s, config: {platform: linux, run: {path: x}}}\n  ensure: {task: e, config: {platform: linux, run: {path: x}}}\n",
        );
        let plan = job_plan(&Ids::default(), &r, &j, &BTreeMap::new());
        let p = public_plan(&plan);
        assert!(p.get("ensure").is_some());
        assert!(p["ensure"]["step"].get("on_success").is_some());
    }
}
