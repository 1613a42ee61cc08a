//! Leaf steps: get, put, check, load_var, artifacts (task and set_pipeline have their own
//! modules). Each writes upstream's event sequence (build-events.md §6).

use super::events;
use super::exec::{Build, Scope};
use super::plan::{CheckNode, GetPlan, LoadVarPlan, Node, Plan, PutInputs, PutPlan};
use super::resource::{self, config_key, with_defaults, Call};
use super::runtime::{errored, Artifact, Cancel, Fail, StepResult};
use crate::db::{BuildOutputRow, NewArtifact, Page};
use crate::proto::event::{self as ev, BuildEvent};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn run(b: &Arc<Build>, scope: &Arc<Scope>, plan: &Plan, cancel: &Cancel) -> StepResult {
    // A leaf's `((vars))` resolve just before it runs (credentials, across values,
    // load_var results).
    match &plan.node {
        Node::Get(g) => get(b, scope, plan, &b.interpolate_leaf(scope, g).await?, cancel).await,
        Node::Put(p) => put(b, scope, plan, &b.interpolate_leaf(scope, p).await?, cancel).await,
        Node::Task(t) => {
            super::task::run(
                b,
                scope,
                plan,
                &b.interpolate_leaf(scope, &**t).await?,
                cancel,
            )
            .await
        }
        Node::LoadVar(l) => load_var(b, scope, plan, &b.interpolate_leaf(scope, l).await?).await,
        Node::SetPipeline(s) => {
            super::set_pipeline::run(b, scope, plan, &b.interpolate_leaf(scope, s).await?).await
        }
        Node::Run(_) => Err(errored("run steps (prototypes) are not supported")),
        Node::Check(c) => check(b, plan, c, cancel).await,
        Node::ArtifactInput(a) => artifact_input(b, scope, a.artifact_id, &a.name).await,
        Node::ArtifactOutput(a) => artifact_output(b, scope, &a.name).await,
        _ => Err(errored("not a leaf step")),
    }
}

/// The owner of resource `id`'s version scope: the resource itself, or nobody with global
/// resources (every resource of the same config shares the scope, as upstream).
fn scope_owner(b: &Build, id: i64) -> Option<i64> {
    (!b.rt.global_resources).then_some(id)
}

/// Interpolates a leaf only for what it does to redaction: a step replayed after a resume
/// does not run, but the secrets it used must stay hidden in the output that follows.
pub async fn track_secrets(b: &Build, scope: &Scope, plan: &Plan) {
    let _ = match &plan.node {
        Node::Get(g) => b.interpolate_leaf(scope, g).await.map(drop),
        Node::Put(p) => b.interpolate_leaf(scope, p).await.map(drop),
        Node::Task(t) => b.interpolate_leaf(scope, &**t).await.map(drop),
        Node::LoadVar(l) => b.interpolate_leaf(scope, l).await.map(drop),
        Node::SetPipeline(s) => b.interpolate_leaf(scope, s).await.map(drop),
        _ => Ok(()),
    };
}

/// Mounts an uploaded artifact (`fly execute -i`) of the build's team as `name`. Its
/// volume was made by the artifacts API, not this build, so the build's cleanup never
/// destroys it (steps mount copy-on-write children of it).
async fn artifact_input(b: &Build, scope: &Scope, id: i64, name: &str) -> StepResult {
    let row =
        b.rt.store
            .artifact(b.row.team_id, id)
            .await
            .map_err(errored)?
            .ok_or_else(|| errored(format!("artifact {id} not found")))?;
    scope.set_artifact(
        name,
        Artifact {
            worker: row.worker_name,
            handle: row.volume_handle,
        },
    );
    Ok(true)
}

/// Registers artifact `name` as an output of this build for `fly execute -o` to
/// download: its volume outlives the build (artifact GC is not implemented yet).
async fn artifact_output(b: &Build, scope: &Scope, name: &str) -> StepResult {
    let art = scope
        .artifact(name)
        .ok_or_else(|| errored(format!("missing artifact: {name}")))?;
    b.cleanup.keep_volume(&art.handle);
    b.rt.store
        .create_artifact(&NewArtifact {
            team_id: b.row.team_id,
            build_id: Some(b.row.id),
            name: name.to_string(),
            worker_name: art.worker,
            volume_handle: art.handle,
            created_at: crate::clock::now(),
        })
        .await
        .map_err(errored)?;
    Ok(true)
}

/// A resource of the build's plan: (type, source with type defaults and vars applied).
pub async fn resource_config(
    b: &Build,
    scope: &Scope,
    name: &str,
) -> Result<(String, Value), Fail> {
    let r = b
        .plan
        .resources
        .get(name)
        .ok_or_else(|| errored(format!("resource '{name}' not found")))?;
    let r = b.interpolate(scope, r).await?;
    let type_ = r["type"].as_str().unwrap_or_default().to_string();
    let source = with_defaults(
        &type_,
        &b.plan.resource_types,
        r.get("source").unwrap_or(&json!({})),
    );
    Ok((type_, source))
}

/// `BUILD_*` metadata for resource containers (resource-protocol.md §5).
pub fn build_env(b: &Build) -> Vec<String> {
    let r = &b.row;
    let mut env = vec![
        format!("BUILD_ID={}", r.id),
        format!("BUILD_NAME={}", r.name),
        format!("BUILD_TEAM_ID={}", r.team_id),
        format!("BUILD_TEAM_NAME={}", r.team_name),
        format!("ATC_EXTERNAL_URL={}", b.rt.external_url),
        format!("BUILD_URL_SHORT={}/builds/{}", b.rt.external_url, r.id),
    ];
    if let Some(j) = r.job_id {
        env.push(format!("BUILD_JOB_ID={j}"));
        env.push(format!("BUILD_JOB_NAME={}", r.job_name));
    }
    if let Some(p) = r.pipeline_id {
        env.push(format!("BUILD_PIPELINE_ID={p}"));
        env.push(format!("BUILD_PIPELINE_NAME={}", r.pipeline_name));
        if let Some(iv) = &r.pipeline_instance_vars {
            env.push(format!("BUILD_PIPELINE_INSTANCE_VARS={iv}"));
        }
    }
    if r.job_id.is_some() && r.pipeline_id.is_some() {
        env.push(format!(
            "BUILD_URL={}/teams/{}/pipelines/{}/jobs/{}/builds/{}",
            b.rt.external_url, r.team_name, r.pipeline_name, r.job_name, r.name
        ));
    }
    env
}

fn call<'a>(
    b: &'a Build,
    origin: &'a super::events::Origin,
    cancel: &'a Cancel,
    type_: &'a str,
    source: Value,
    params: Value,
    tags: &'a [String],
) -> Call<'a> {
    Call {
        labels: Default::default(),
        rt: &b.rt,
        cleanup: &b.cleanup,
        origin,
        cancel,
        team: &b.row.team_name,
        type_,
        source,
        params,
        types: &b.plan.resource_types,
        tags,
        env: build_env(b),
    }
}

/// The resource's current scope (creating it), like the checker files versions.
pub async fn scope_of(
    b: &Build,
    resource: &str,
    type_: &str,
    source: &Value,
) -> Result<Option<i64>, Fail> {
    let Some(pipeline) = b.row.pipeline_id else {
        return Ok(None);
    };
    let Some(row) =
        b.rt.store
            .resource(pipeline, resource)
            .await
            .map_err(errored)?
    else {
        return Ok(None);
    };
    let key = config_key(type_, source, &b.plan.resource_types);
    let scope =
        b.rt.store
            .resource_scope(
                &resource::base_type(type_, &b.plan.resource_types),
                &key,
                scope_owner(b, row.id),
            )
            .await
            .map_err(errored)?;
    // A build planned before `set-pipeline` changed the resource's type or source leaves
    // the resource where the new config points it.
    if row.scope_id != Some(scope) && is_planned(b, &row) {
        b.rt.store
            .set_resource_scope(row.id, scope)
            .await
            .map_err(errored)?;
    }
    Ok(Some(scope))
}

async fn get(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    g: &GetPlan,
    cancel: &Cancel,
) -> StepResult {
    let origin = b.origin(plan);
    origin.emit(BuildEvent::InitializeGet(Default::default()));
    let resource = g.resource_name();
    let (type_, source) = resource_config(b, scope, resource).await?;
    let from_put = g.version_from.as_ref().and_then(|id| {
        b.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    });
    let version = match (&g.version, from_put) {
        (Some(v), _) => v.clone(),
        (None, Some(v)) => v,
        _ => {
            let sc = scope_of(b, resource, &type_, &source)
                .await?
                .ok_or_else(|| errored(format!("no version of resource '{resource}'")))?;
            let page = Page {
                limit: 1,
                ..Default::default()
            };
            b.rt.store
                .versions(sc, &page)
                .await
                .map_err(errored)?
                .into_iter()
                .next()
                .map(|v| v.version)
                .ok_or_else(|| errored(format!("no versions of resource '{resource}' available")))?
        }
    };
    origin.emit(BuildEvent::StartGet(Default::default()));
    let params = Value::Object(g.params.clone());
    let mut c = call(b, &origin, cancel, &type_, source, params, &g.tags);
    let attempt = super::exec::attempt();
    let step = super::labels::Step {
        type_: "get",
        name: &g.name,
        attempt: &attempt,
        ..Default::default()
    };
    c.labels = super::labels::container(&b.row, &step);
    c.labels.insert(
        super::labels::CACHE_RESOURCE.to_string(),
        resource.to_string(),
    );
    let w = c.select(vec![]).await?;
    origin.selected_worker(&w.name);
    match c.get(&w, &version).await? {
        Ok((artifact, version, metadata)) => {
            scope.set_artifact(&g.name, artifact);
            origin.emit(BuildEvent::FinishGet(events::finished(
                0,
                Some((version, metadata)),
            )));
            Ok(true)
        }
        Err(status) => {
            origin.emit(BuildEvent::FinishGet(events::finished(status, None)));
            Ok(false)
        }
    }
}

/// Artifact names a put's params mention (`inputs: detect`).
fn detect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(first) = s.split('/').find(|seg| *seg != "." && *seg != "..") {
                out.push(first.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|v| detect(v, out)),
        Value::Object(m) => m.values().for_each(|v| detect(v, out)),
        _ => {}
    }
}

async fn put(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    p: &PutPlan,
    cancel: &Cancel,
) -> StepResult {
    let origin = b.origin(plan);
    origin.emit(BuildEvent::InitializePut(Default::default()));
    let resource = p.resource_name();
    let (type_, source) = resource_config(b, scope, resource).await?;
    let all = scope.all_artifacts();
    let inputs: Vec<(String, Artifact)> = match &p.inputs {
        Some(PutInputs::Keyword(k)) if k == "all" => all.into_iter().collect(),
        Some(PutInputs::Names(names)) => {
            let mut out = Vec::new();
            for n in names {
                let a = all
                    .get(n)
                    .cloned()
                    .ok_or_else(|| errored(format!("input not found: {n}")))?;
                out.push((n.clone(), a));
            }
            out
        }
        _ => {
            let mut names = Vec::new();
            detect(&Value::Object(p.params.clone()), &mut names);
            names.sort();
            names.dedup();
            names
                .into_iter()
                .filter_map(|n| all.get(&n).cloned().map(|a| (n, a)))
                .collect()
        }
    };
    let mut env_call = call(
        b,
        &origin,
        cancel,
        &type_,
        source,
        Value::Object(p.params.clone()),
        &p.tags,
    );
    let attempt = super::exec::attempt();
    let step = super::labels::Step {
        type_: "put",
        name: &p.name,
        attempt: &attempt,
        ..Default::default()
    };
    env_call.labels = super::labels::container(&b.row, &step);
    let expose = b
        .plan
        .resources
        .get(resource)
        .and_then(|r| r.get("expose_build_created_by"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if expose {
        env_call
            .env
            .push(format!("BUILD_CREATED_BY={}", b.row.created_by));
    }
    if let Some(status) = scope.build_status() {
        env_call.env.push(format!("BUILD_STATUS={status}"));
    }
    let w = env_call
        .select(inputs.iter().map(|(_, a)| a).collect())
        .await?;
    origin.selected_worker(&w.name);
    origin.emit(BuildEvent::StartPut(Default::default()));
    match env_call.put(&w, &inputs).await? {
        Ok((version, metadata)) => {
            b.results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(plan.id.clone(), version.clone());
            if let Some(pipeline) = b.row.pipeline_id {
                if let Some(row) =
                    b.rt.store
                        .resource(pipeline, resource)
                        .await
                        .map_err(errored)?
                {
                    scope_of(b, resource, &type_, &env_call.source).await?;
                    b.rt.store
                        .save_build_output(
                            b.row.id,
                            &BuildOutputRow {
                                name: p.name.clone(),
                                resource_id: row.id,
                                version: version.clone(),
                                metadata: metadata.clone(),
                            },
                        )
                        .await
                        .map_err(errored)?;
                }
            }
            origin.emit(BuildEvent::FinishPut(events::finished(
                0,
                Some((version, metadata)),
            )));
            Ok(true)
        }
        Err(status) => {
            origin.emit(BuildEvent::FinishPut(events::finished(status, None)));
            Ok(false)
        }
    }
}

/// Reads one file from an artifact: `path` is `<artifact>/<path in it>`.
pub async fn read_artifact_file(b: &Build, scope: &Scope, path: &str) -> Result<Vec<u8>, Fail> {
    let (name, rest) = path.split_once('/').unwrap_or((path, ""));
    let art = scope.artifact(name).ok_or_else(|| {
        errored(format!(
            "missing artifact source: {name}\n\nmake sure there's a corresponding 'get' step, or a task that produces it as an output"
        ))
    })?;
    let w = b.rt.worker(&art.worker).await?;
    let stream =
        w.bc.stream_out(&art.handle, rest, crate::proto::baggageclaim::Encoding::Raw)
            .await
            .map_err(|e| errored(format!("reading {path}: {e}")))?;
    let tar = crate::proto::stream::collect_bytes(stream)
        .await
        .map_err(|e| errored(format!("reading {path}: {e}")))?;
    resource::first_file_in_tar(&tar).ok_or_else(|| errored(format!("{path}: not a file")))
}

async fn load_var(b: &Arc<Build>, scope: &Arc<Scope>, plan: &Plan, l: &LoadVarPlan) -> StepResult {
    let origin = b.origin(plan);
    origin.emit(BuildEvent::Initialize(Default::default()));
    origin.emit(BuildEvent::Start(Default::default()));
    let bytes = read_artifact_file(b, scope, &l.file).await?;
    let format = if l.format.is_empty() {
        match l.file.rsplit('.').next() {
            Some("json") => "json",
            Some("yml") | Some("yaml") => "yaml",
            _ => "trim",
        }
    } else {
        l.format.as_str()
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value = match format {
        "json" => serde_json::from_slice(&bytes)
            .map_err(|e| errored(format!("failed to parse {} in format json: {e}", l.file)))?,
        "yaml" | "yml" => crate::config::parse_yaml_value(&bytes)
            .map_err(|e| errored(format!("failed to parse {} in format yaml: {e}", l.file)))?,
        "raw" => Value::String(text),
        "trim" => Value::String(text.trim().to_string()),
        other => return Err(errored(format!("invalid format {other}"))),
    };
    scope.set_var(&l.name, value);
    if !l.reveal {
        scope.set_secret(&l.name);
    }
    origin.emit(BuildEvent::Finish(ev::Finish {
        succeeded: true,
        ..Default::default()
    }));
    Ok(true)
}

/// A check of a resource or resource type (check builds): saves the versions found and
/// records the outcome on the resource, errors included (manually triggered builds wait
/// for a check of their inputs to finish).
async fn check(b: &Arc<Build>, plan: &Plan, c: &CheckNode, cancel: &Cancel) -> StepResult {
    let result = run_check(b, plan, c, cancel).await;
    crate::atc::metrics::metrics().resource_checked(&b.row.team_name, &b.row.pipeline_name);
    let owner = c.resource_id.filter(|_| c.is_resource());
    if let Some(id) = owner {
        if as_planned(b, &c.name, id).await.is_some() {
            let _ =
                b.rt.store
                    .record_resource_check(
                        id,
                        crate::clock::now(),
                        (b.row.id > 0).then_some(b.row.id),
                        matches!(result, Ok(true)),
                    )
                    .await;
        }
    }
    result
}

/// Resource `name`'s row while it is still resource `id` and its stored type and source
/// are the ones this build was planned with. A check planned before `set-pipeline` changed them checked the old
/// config: the versions it found are that config's, but it must neither point the resource
/// at that config's scope nor count as the resource's check (a manually triggered build
/// waits for a check of the config it runs on).
async fn as_planned(b: &Build, name: &str, id: i64) -> Option<crate::db::ResourceRow> {
    let row = b.rt.store.resource(b.row.pipeline_id?, name).await.ok()??;
    (row.id == id && is_planned(b, &row)).then_some(row)
}

/// Whether `row`'s stored type and source are the ones this build was planned with.
fn is_planned(b: &Build, row: &crate::db::ResourceRow) -> bool {
    (b.plan.resources.get(&row.name)).is_some_and(|planned| {
        ["type", "source"]
            .iter()
            .all(|k| row.config.get(k) == planned.get(k))
    })
}

async fn run_check(b: &Arc<Build>, plan: &Plan, c: &CheckNode, cancel: &Cancel) -> StepResult {
    let origin = b.origin(plan);
    origin.emit(BuildEvent::InitializeCheck(ev::InitializeCheck {
        name: c.name.to_string(),
        ..Default::default()
    }));
    let scope = Scope::default();
    let (type_, source, owner, types, timeout) = if c.kind == "prototype" {
        // Like upstream, a prototype is checked as its type with its source; any of the
        // pipeline's resource types may provide that type.
        let p = b
            .plan
            .prototypes
            .iter()
            .find(|p| p.name == c.name)
            .ok_or_else(|| errored(format!("prototype '{}' not found", c.name)))?;
        let source = b
            .interpolate(&scope, &Value::Object(p.source.clone().unwrap_or_default()))
            .await?;
        (
            p.type_.clone(),
            with_defaults(&p.type_, &b.plan.resource_types, &source),
            None,
            b.plan.resource_types.clone(),
            None,
        )
    } else if c.kind == "resource_type" {
        let i = b
            .plan
            .resource_types
            .iter()
            .position(|t| t.name == c.name)
            .ok_or_else(|| errored(format!("resource type '{}' not found", c.name)))?;
        let t = &b.plan.resource_types[i];
        let mut rest = b.plan.resource_types.clone();
        rest.remove(i);
        let source = b
            .interpolate(&scope, &Value::Object(t.source.clone().unwrap_or_default()))
            .await?;
        (
            t.type_.clone(),
            with_defaults(&t.type_, &rest, &source),
            None,
            rest,
            None,
        )
    } else {
        let (type_, source) = resource_config(b, &scope, &c.name).await?;
        let timeout = b
            .plan
            .resources
            .get(&c.name)
            .and_then(|r| r.get("check_timeout"))
            .and_then(Value::as_str)
            .map(String::from);
        (
            type_,
            source,
            c.resource_id,
            b.plan.resource_types.clone(),
            timeout,
        )
    };
    let key = config_key(&type_, &source, &types);
    let sc =
        b.rt.store
            .resource_scope(
                &resource::base_type(&type_, &types),
                &key,
                owner.and_then(|id| scope_owner(b, id)),
            )
            .await
            .map_err(errored)?;
    if let Some(id) = owner {
        let row = as_planned(b, &c.name, id).await;
        if row.is_some_and(|r| r.scope_id != Some(sc)) {
            b.rt.store
                .set_resource_scope(id, sc)
                .await
                .map_err(errored)?;
        }
    }
    // A resource pinned in its config is checked from the pinned version, so the pin
    // exists as a version even before the first check, like upstream.
    let config_pin = c
        .is_resource()
        .then(|| b.plan.resources.get(&c.name)?.get("version").cloned())
        .flatten()
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    let from = match c.from_version.clone().or(config_pin) {
        Some(v) => Some(v),
        None => {
            b.rt.store
                .versions(
                    sc,
                    &Page {
                        limit: 1,
                        ..Default::default()
                    },
                )
                .await
                .map_err(errored)?
                .into_iter()
                .next()
                .map(|v| v.version)
        }
    };
    let inner = match timeout.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => cancel.child_with_timeout(
            crate::config::parse_duration(t)
                .map_err(|e| errored(format!("invalid check_timeout: {e}")))?,
        ),
        None => cancel.child_with_timeout(std::time::Duration::from_secs(3600)),
    };
    let env = build_env(b);
    // Checks run on the workers the resource's (or type's) `tags` name, as upstream's.
    let tags: Vec<String> = if c.kind == "resource_type" {
        b.plan
            .resource_types
            .iter()
            .find(|t| t.name == c.name)
            .map(|t| t.tags.clone())
            .unwrap_or_default()
    } else if c.is_resource() {
        b.plan
            .resources
            .get(&c.name)
            .and_then(|r| r.get("tags"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let (resource, resource_type) = if !c.is_resource() {
        ("", c.name.as_str())
    } else {
        (c.name.as_str(), "")
    };
    let check_step = super::labels::Step {
        type_: "check",
        name: &c.name,
        resource,
        resource_type,
        ..Default::default()
    };
    let mut call = Call {
        rt: &b.rt,
        cleanup: &b.cleanup,
        origin: &origin,
        cancel: &inner,
        team: &b.row.team_name,
        type_: &type_,
        source,
        params: json!({}),
        types: &types,
        tags: &tags,
        env,
        labels: super::labels::container(&b.row, &check_step),
    };
    if owner.is_some() {
        // Kept check containers serve every resource of the team with this config, and are
        // collected once no resource has it.
        call.labels
            .insert(super::labels::CHECK_CONFIG.to_string(), key.clone());
    }
    let w = call.select(vec![]).await?;
    origin.selected_worker(&w.name);
    origin.emit(BuildEvent::Start(Default::default()));
    let result = call.check(&w, from.as_ref()).await;
    let timed_out = inner.timed_out() && !cancel.is_cancelled();
    inner.token.cancel();
    let ok = match result {
        Err(Fail::Interrupted) if timed_out => {
            origin.error("timeout exceeded");
            false
        }
        Err(e) => return Err(e),
        Ok(Err(_status)) => false,
        Ok(Ok(versions)) => {
            resource::save(&b.rt, sc, &versions).await?;
            true
        }
    };
    origin.emit(BuildEvent::Finish(ev::Finish {
        succeeded: ok,
        ..Default::default()
    }));
    Ok(ok)
}
