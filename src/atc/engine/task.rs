//! The task step (resource-protocol.md §9): config from `config:` or `file:`, an image
//! (step `image:`, `image_resource`, `rootfs_uri`, else the worker's own root), inputs as
//! copy-on-write volumes, outputs and caches as volumes, params as env.

use super::events;
use super::exec::{Build, Scope};
use super::image_checks::Trigger;
use super::journal::TaskProcess;
use super::labels;
use super::plan::Plan;
use super::plan::TaskPlan;
use super::process::{run_tracked, Launch};
use super::resource::{self, with_defaults, Call};
use super::runtime::{
    bind, create_container, empty_volume, errored, mount_copy, Artifact, Cancel, Fail, Placement,
    StepResult,
};
use super::steps::read_artifact_file;
use crate::config::TaskConfig;
use crate::proto::baggageclaim::{Properties, Strategy, VolumeRequest};
use crate::proto::event::{self as ev, BuildEvent};
use crate::proto::garden::{ContainerSpec, Limits, ProcessSpec};
use serde_json::{json, Value};
use std::sync::Arc;

/// The task config: inline, or read from an artifact (with step `vars` filled in).
async fn task_config(b: &Build, scope: &Scope, t: &TaskPlan) -> Result<TaskConfig, Fail> {
    if let Some(c) = &t.config {
        return crate::config::task_config_from_value(c).map_err(errored);
    }
    if t.config_path.is_empty() {
        return Err(errored("task config not specified"));
    }
    let bytes = read_artifact_file(b, scope, &t.config_path).await?;
    let bytes = if t.vars.is_empty() {
        bytes
    } else {
        // Only the step's vars fill a task file; anything else stays for later.
        let rendered = crate::config::render_template_with(&bytes, &t.vars).map_err(errored)?;
        let missing: Vec<String> =
            crate::config::vars::var_names(&String::from_utf8_lossy(&rendered))
                .into_iter()
                .filter(|n| !n.contains(':'))
                .collect();
        if !missing.is_empty() {
            return Err(errored(format!("undefined vars: {}", missing.join(", "))));
        }
        rendered
    };
    let mut config = crate::config::parse_task_config(&bytes).map_err(errored)?;
    // Vars the step did not give must still resolve (from local vars and var sources).
    let as_json = b.interpolate(scope, &config.to_value()).await?;
    let text = serde_json::to_vec(&as_json).map_err(errored)?;
    config = crate::config::parse_task_config(&text).map_err(errored)?;
    Ok(config)
}

fn shadow(config: &TaskConfig) -> ev::TaskConfig {
    let inputs: Vec<ev::TaskInputConfig> = config
        .inputs
        .iter()
        .map(|i| ev::TaskInputConfig {
            name: i.name.clone(),
            path: i.path.clone(),
        })
        .collect();
    ev::TaskConfig {
        platform: config.platform.clone(),
        image: config.rootfs_uri.clone(),
        run: ev::TaskRunConfig {
            path: config.run.path.clone(),
            args: config.run.args.clone(),
            dir: config.run.dir.clone(),
        },
        // Upstream's nil slice: `null`, not `[]`.
        inputs: (!inputs.is_empty()).then_some(inputs),
    }
}

/// Task param values as env strings: strings as-is, null empty, the rest JSON.
fn env_value(v: &str) -> String {
    v.to_string()
}

pub async fn run(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    t: &TaskPlan,
    cancel: &Cancel,
) -> StepResult {
    if let Some(running) = b.journal.step(&plan.id).and_then(|e| e.task) {
        return resume(b, scope, plan, t, running, cancel).await;
    }
    let origin = b.origin(plan);
    let config = task_config(b, scope, t).await?;
    origin.emit(BuildEvent::InitializeTask(ev::TaskConfigEvent {
        config: shadow(&config),
        ..Default::default()
    }));

    // Inputs, by the name the task knows them by.
    let mut inputs: Vec<(String, String, Artifact)> = Vec::new();
    let mut missing = Vec::new();
    for input in &config.inputs {
        let source = t
            .input_mapping
            .get(&input.name)
            .cloned()
            .unwrap_or_else(|| input.name.clone());
        let path = if input.path.is_empty() {
            input.name.clone()
        } else {
            input.path.clone()
        };
        match scope.artifact(&source) {
            Some(a) => inputs.push((input.name.clone(), path, a)),
            None if input.optional => {}
            None => missing.push(source),
        }
    }
    if !missing.is_empty() {
        return Err(errored(format!("missing inputs: {}", missing.join(", "))));
    }

    // The image: a step `image:` artifact, or the task's image_resource fetched now.
    let image: Option<Artifact> = if !t.image_artifact_name.is_empty() {
        Some(scope.artifact(&t.image_artifact_name).ok_or_else(|| {
            errored(format!(
                "missing image artifact source: {}\n\nmake sure there's a corresponding 'get' step, or a task that produces it as an output",
                t.image_artifact_name
            ))
        })?)
    } else if let Some(ir) = &config.image_resource {
        Some(fetch_image(b, plan, &t.name, ir, cancel).await?)
    } else {
        None
    };

    let mut placement_inputs: Vec<&Artifact> = inputs.iter().map(|(_, _, a)| a).collect();
    if let Some(i) = &image {
        placement_inputs.push(i);
    }
    let w =
        b.rt.select(
            &Placement {
                team: &b.row.team_name,
                tags: &t.tags,
                base_type: None,
                inputs: placement_inputs,
                platform: None,
                task: true,
            },
            &origin,
            cancel,
        )
        .await?;
    origin.selected_worker(&w.name);
    let _active = b.rt.placer.task_started(&w.name);

    let workdir = format!("/tmp/build/{}", &super::runtime::new_handle()[..8]);
    let mut spec = ContainerSpec::default();
    let mut env = Vec::new();
    let mut user = config.run.user.clone();
    let mut image_volume = None;
    if let Some(img) = &image {
        let vol = mount_copy(&b.rt, img, &w, &b.cleanup, &origin).await?;
        image_volume = Some(vol.handle.clone());
        let meta = resource::read_metadata(&w, &vol.handle).await;
        if let Some(Value::Array(e)) = meta.get("env") {
            env.extend(e.iter().filter_map(|v| v.as_str().map(String::from)));
        }
        if user.is_empty() {
            user = meta["user"].as_str().unwrap_or_default().to_string();
        }
        // A mirrored base type's image (mock's `mirror_self`) is the worker's base root.
        spec.rootfs = if meta.get(resource::MIRRORED_TYPE_KEY).is_some() {
            crate::proto::garden::WORKER_ROOTFS.into()
        } else {
            format!("raw://{}/rootfs", vol.path)
        };
    } else if !config.rootfs_uri.is_empty() {
        spec.rootfs = config.rootfs_uri.clone();
    }
    env.push(format!("ATC_EXTERNAL_URL={}", b.rt.external_url));
    let mut params = config.params.clone();
    params.extend(crate::config::task_env_from(&t.params));
    env.extend(params.iter().map(|(k, v)| format!("{k}={}", env_value(v))));

    let mut mounts = Vec::new();
    for (_, path, a) in &inputs {
        let v = mount_copy(&b.rt, a, &w, &b.cleanup, &origin).await?;
        mounts.push((format!("{workdir}/{path}"), v.path, v.handle));
    }
    let mut outputs = Vec::new();
    for o in &config.outputs {
        let path = if o.path.is_empty() { &o.name } else { &o.path };
        // An output at an input's path is that input's (copy-on-write) volume, as upstream:
        // the task changes the input in place and passes it on.
        let dst = normalize(&format!("{workdir}/{path}"));
        if let Some((_, _, h)) = mounts.iter().find(|(d, _, _)| normalize(d) == dst) {
            outputs.push((o.name.clone(), h.clone()));
            continue;
        }
        let v = empty_volume(&w, &b.cleanup, t.privileged).await?;
        mounts.push((
            format!("{workdir}/{path}"),
            v.path.clone(),
            v.handle.clone(),
        ));
        outputs.push((o.name.clone(), v.handle));
    }
    for c in &config.caches {
        let key = format!(
            "{}/{}/{}/{}",
            b.row.team_id,
            b.row.job_id.unwrap_or(0),
            t.name,
            c.path
        );
        let v = cache_volume(&w, &key, cache_labels(b, &t.name)).await?;
        mounts.push((format!("{workdir}/{}", c.path), v.1, v.0));
    }
    let mut mounts: Vec<(String, String, String)> = mounts
        .into_iter()
        .map(|(dst, src, h)| (normalize(&dst), src, h))
        .collect();
    // Parents before children, so an input nested under an output stays visible.
    mounts.sort_by_key(|(dst, _, _)| dst.matches('/').count());
    make_mount_points(&w, &mounts).await?;
    spec.bind_mounts = mounts.iter().map(|(dst, src, _)| bind(src, dst)).collect();
    spec.env = env;
    spec.privileged = t.privileged;
    if !t.hermetic {
        spec.netout_rules = vec![crate::proto::garden::NetOutRule::allow_all()];
    }
    let step_limits = match &t.container_limits {
        Some(l) => Some(crate::config::container_limits_from_value(l).map_err(errored)?),
        None => None,
    };
    let limits = step_limits.as_ref().or(config.container_limits.as_ref());
    if let Some(l) = limits {
        spec.limits = Limits::default();
        if let Some(m) = l.memory {
            spec.limits.memory_limits.limit_in_bytes = m;
        }
        if let Some(c) = l.cpu {
            spec.limits.cpu_limits.limit_in_shares = c;
        }
    }
    let dir = if config.run.dir.is_empty() {
        workdir.clone()
    } else {
        normalize(&format!("{workdir}/{}", config.run.dir))
    };
    let user = if user.is_empty() { "root".into() } else { user };
    let attempt = super::exec::attempt();
    let step = labels::Step {
        type_: "task",
        name: &t.name,
        attempt: &attempt,
        ..Default::default()
    };
    spec.properties = labels::with_process(labels::container(&b.row, &step), &user, &dir);
    let handle = create_container(&w, spec, &b.cleanup, &origin, cancel).await?;
    let mounted: Vec<(String, String)> = mounts
        .iter()
        .map(|(dst, _, h)| (h.clone(), dst.clone()))
        .chain(image_volume.map(|h| (h, "/".to_string())))
        .collect();
    labels::mounted_in(&w, &handle, &mounted).await;
    origin.emit(BuildEvent::StartTask(ev::TaskConfigEvent {
        config: shadow(&config),
        ..Default::default()
    }));
    let process = ProcessSpec {
        id: super::runtime::new_handle(),
        path: config.run.path.clone(),
        args: config.run.args.clone(),
        dir,
        user,
        env: crate::telemetry::process_env().into_iter().collect(),
        ..Default::default()
    };
    // Journaled before it starts, so a resumed build re-attaches instead of starting it
    // again (a process the worker never started then errors the step).
    let running = TaskProcess {
        worker: w.name.clone(),
        container: handle.clone(),
        process: process.id.clone(),
        outputs,
    };
    let mut entry = b.journal.step(&plan.id).unwrap_or_default();
    entry.task = Some(running.clone());
    entry.held.extend(b.cleanup.take_fresh());
    b.journal.put_step(&plan.id, &entry).await;
    let launch = Launch::Run {
        spec: Box::new(process),
        stdin: None,
    };
    let tracked = b.journal.is_on();
    let result = run_tracked(&w, &handle, launch, &origin, tracked, cancel).await;
    finish(scope, t, &origin, &running, result)
}

/// How long a resumed task waits for its worker to answer again.
const RESUME_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Re-attaches to a task's process after its build was resumed, and streams the output the
/// log does not have yet.
async fn resume(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    t: &TaskPlan,
    running: TaskProcess,
    cancel: &Cancel,
) -> StepResult {
    let origin = b.origin(plan);
    // Not cut short by the step's cancel: a deadline that passed meanwhile must still reach
    // the process (run_tracked signals it once attached).
    let w =
        b.rt.worker_back(&running.worker, RESUME_PATIENCE, &Cancel::default())
            .await?;
    let _active = b.rt.placer.task_started(&w.name);
    let launch = Launch::Attach {
        id: running.process.clone(),
        from: b.journal.output_offsets(&plan.id),
    };
    let result = run_tracked(&w, &running.container, launch, &origin, true, cancel).await;
    finish(scope, t, &origin, &running, result)
}

/// Registers a task's outputs (whatever its exit status: a retry reads the last attempt's)
/// and ends it with `finish-task`.
fn finish(
    scope: &Scope,
    t: &TaskPlan,
    origin: &super::events::Origin,
    running: &TaskProcess,
    result: Result<i32, Fail>,
) -> StepResult {
    for (name, handle) in &running.outputs {
        let as_name = t.output_mapping.get(name).cloned().unwrap_or(name.clone());
        scope.set_artifact(
            &as_name,
            Artifact {
                worker: running.worker.clone(),
                handle: handle.clone(),
            },
        );
    }
    let status = result?;
    origin.emit(BuildEvent::FinishTask(ev::FinishTask {
        exit_status: status,
        ..Default::default()
    }));
    Ok(status == 0)
}

/// `/a/./b/../c` → `/a/c`.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// The task cache volume for `key` on this worker, created on first use.
/// A mount nested in another mount's volume needs its directory there first: creates it
/// in the parent volume (through Baggageclaim, so every Garden backend sees it).
async fn make_mount_points(
    w: &super::runtime::WorkerClient,
    mounts: &[(String, String, String)],
) -> Result<(), Fail> {
    for (i, (dst, _, _)) in mounts.iter().enumerate() {
        let parent = mounts[..i]
            .iter()
            .filter(|(p, _, _)| dst.starts_with(&format!("{p}/")))
            .max_by_key(|(p, _, _)| p.len());
        let Some((p, _, handle)) = parent else {
            continue;
        };
        let rel = dst[p.len() + 1..].to_string();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        tar.append_data(&mut header, format!("{rel}/"), std::io::empty())
            .map_err(errored)?;
        let bytes = tar.into_inner().map_err(errored)?;
        w.bc.stream_in(
            handle,
            ".",
            crate::proto::baggageclaim::Encoding::Raw,
            None,
            crate::proto::stream::byte_stream_from(bytes),
        )
        .await
        .map_err(|e| errored(format!("creating mount point {dst}: {e}")))?;
    }
    Ok(())
}

/// The task cache volume for `key` on this worker, created on first use: (handle, path).
async fn cache_volume(
    w: &super::runtime::WorkerClient,
    key: &str,
    labels: Properties,
) -> Result<(String, String), Fail> {
    let filter = Properties::from([("task-cache".to_string(), key.to_string())]);
    if let Some(v) =
        w.bc.list_volumes(filter.clone())
            .await
            .map_err(errored)?
            .into_iter()
            .next()
    {
        return Ok((v.handle, v.path));
    }
    let mut req = VolumeRequest::new(super::runtime::new_handle(), Strategy::Empty);
    req.properties = labels;
    req.properties.extend(filter);
    let v = w.bc.create_volume(req).await.map_err(errored)?;
    Ok((v.handle, v.path))
}

/// What `fly volumes` shows of a task cache: team, pipeline, job and step.
fn cache_labels(b: &Build, step: &str) -> Properties {
    let mut p = labels::volume(b.row.team_id);
    let pipeline = labels::container(&b.row, &labels::Step::default());
    for k in [
        labels::PIPELINE_ID,
        labels::PIPELINE_NAME,
        labels::PIPELINE_VARS,
        labels::JOB_NAME,
    ] {
        if let Some(v) = pipeline.get(k) {
            p.insert(k.to_string(), v.clone());
        }
    }
    p.insert(labels::STEP_NAME.to_string(), step.to_string());
    p
}

/// Checks (unless a version is given) and gets a task's `image_resource`, announcing the
/// sub-steps with `image-check` / `image-get` events.
async fn fetch_image(
    b: &Arc<Build>,
    plan: &Plan,
    step_name: &str,
    ir: &crate::config::ImageResource,
    cancel: &Cancel,
) -> Result<Artifact, Fail> {
    let origin = b.origin(plan);
    let source = with_defaults(
        &ir.type_,
        &b.plan.resource_types,
        &Value::Object(ir.source.clone().unwrap_or_default()),
    );
    let check_id = format!("{}/image-check", plan.id);
    let get_id = format!("{}/image-get", plan.id);
    let check_origin = b.events.origin(&check_id);
    let get_origin = b.events.origin(&get_id);
    let call = Call {
        rt: &b.rt,
        cleanup: &b.cleanup,
        origin: &check_origin,
        cancel,
        team: &b.row.team_name,
        type_: &ir.type_,
        source: source.clone(),
        params: Value::Object(ir.params.clone()),
        types: &b.plan.resource_types,
        tags: &ir.tags,
        env: Vec::new(),
        // The image's containers are the task step's (upstream labels them so too); they
        // go as soon as the image is fetched, so intercepting the step finds its task.
        labels: super::labels::image_fetch(super::labels::container(
            &b.row,
            &super::labels::Step {
                type_: "get",
                name: step_name,
                ..Default::default()
            },
        )),
    };
    let w = call.select(vec![]).await?;
    let version = if ir.version.is_empty() {
        origin.emit(BuildEvent::ImageCheck(ev::ImagePlan {
            plan: json!({"id": check_id, "check": {"name": "image", "type": ir.type_}}),
            ..Default::default()
        }));
        check_origin.emit(BuildEvent::InitializeCheck(ev::InitializeCheck {
            name: "image".to_string(),
            ..Default::default()
        }));
        let key = format!(
            "{}/{}",
            b.row.team_id,
            resource::config_key(&ir.type_, &source, &b.plan.resource_types)
        );
        let trigger = match b.row.created_by.is_empty() {
            true => Trigger::Scheduled,
            false => Trigger::Manual {
                created: b.row.create_time,
            },
        };
        // Until this build has checked or skipped, other builds of this image wait: they
        // may then use what this one found.
        let turn = tokio::select! {
            t = b.rt.image_checks.turn(&key) => t,
            _ = cancel.token.cancelled() => return Err(Fail::Interrupted),
        };
        match b.rt.image_checks.reusable(&key, trigger, &turn) {
            // Checked recently enough: finished at once, as upstream's skipped check is.
            Some(v) => {
                check_origin.emit(BuildEvent::Finish(ev::Finish {
                    succeeded: true,
                    ..Default::default()
                }));
                v
            }
            None => {
                check_origin.selected_worker(&w.name);
                check_origin.emit(BuildEvent::Start(Default::default()));
                let (started, began) = (std::time::SystemTime::now(), std::time::Instant::now());
                let versions = call.check(&w, None).await?;
                let ok = matches!(&versions, Ok(v) if !v.is_empty());
                check_origin.emit(BuildEvent::Finish(ev::Finish {
                    succeeded: ok,
                    ..Default::default()
                }));
                match versions {
                    Ok(v) if !v.is_empty() => {
                        let last = v[v.len() - 1].clone();
                        b.rt.image_checks.record(key, started, began, last.clone());
                        last
                    }
                    Ok(_) => return Err(errored("image resource has no versions")),
                    Err(status) => {
                        return Err(errored(format!(
                            "checking the image failed: exit status {status}"
                        )))
                    }
                }
            }
        }
    } else {
        json!(ir.version)
    };
    origin.emit(BuildEvent::ImageGet(ev::ImagePlan {
        plan: json!({"id": get_id, "get": {"name": "image", "type": ir.type_, "version": version}}),
        ..Default::default()
    }));
    get_origin.emit(BuildEvent::InitializeGet(Default::default()));
    get_origin.emit(BuildEvent::StartGet(Default::default()));
    get_origin.selected_worker(&w.name);
    let get_call = Call {
        origin: &get_origin,
        ..call.clone()
    };
    match get_call.get(&w, &version).await? {
        Ok((artifact, version, metadata)) => {
            get_origin.emit(BuildEvent::FinishGet(events::finished(
                0,
                Some((version, metadata)),
            )));
            Ok(artifact)
        }
        Err(status) => {
            get_origin.emit(BuildEvent::FinishGet(events::finished(status, None)));
            Err(errored(format!(
                "fetching the image failed: exit status {status}"
            )))
        }
    }
}
