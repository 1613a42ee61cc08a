//! `fly execute` (fly-cli.md §4.3): runs a task config as a one-off build with local
//! directories uploaded as inputs (or a job's inputs with `-j`), streams its log and
//! downloads its outputs.

use super::builds::stream;
use super::cli::VarsArgs;
use super::client::{fail, pipeline_path, seg, Client};
use super::pipelines::connect;
use super::{vars, Global};
use crate::config::refs::{parse_pipeline_child, PipelineRef};
use crate::config::TaskConfig;
use crate::proto::api;
use crate::proto::plan::{
    ArtifactInputNode, ArtifactOutputNode, GetPlan, HookNode, InParallelNode, Node, Plan, TaskPlan,
};
use anyhow::{anyhow, bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ExecuteArgs {
    /// The task config to execute
    #[arg(short = 'c', long, required = true, value_name = "PATH")]
    pub config: String,
    /// Input directory to upload (repeatable)
    #[arg(short = 'i', long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// Directory to download an output into (repeatable)
    #[arg(short = 'o', long = "output", value_name = "NAME=PATH")]
    pub outputs: Vec<String>,
    /// A job to base the inputs on
    #[arg(short = 'j', long = "inputs-from", value_name = "PIPELINE/JOB")]
    pub inputs_from: Option<String>,
    /// Map a task input to a job input (with --inputs-from)
    #[arg(
        short = 'm',
        long = "input-mapping",
        value_name = "TASK-INPUT=JOB-INPUT"
    )]
    pub input_mappings: Vec<String>,
    /// The job input to use as the task's image (with --inputs-from)
    #[arg(long, value_name = "INPUT")]
    pub image: Option<String>,
    /// Run the task with full privileges
    #[arg(short = 'p', long)]
    pub privileged: bool,
    /// Upload files git ignores too
    #[arg(long)]
    pub include_ignored: bool,
    /// A tag for a specific environment (repeatable)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Do not stream the build's log; exit once it started
    #[arg(short = 'b', long)]
    pub background: bool,
    #[command(flatten)]
    pub vars: VarsArgs,
    /// Name of the team, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
    /// Arguments appended to the task's run.args
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    s.split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| anyhow!("invalid {what} '{s}': must be formatted as NAME=PATH"))
}

/// The task config: rendered with the vars (unknown ones stay), `params` overridden from
/// fly's environment (upstream's behaviour), `args` after `--` appended, validated.
fn task_config(a: &ExecuteArgs) -> Result<TaskConfig> {
    let template = super::read_path(&a.config)?;
    let (static_vars, _) = vars::static_vars(&a.vars, &[])?;
    let rendered =
        crate::config::render_template(&template, &static_vars).map_err(|e| anyhow!("{e}"))?;
    let mut config = crate::config::parse_task_config(&rendered).map_err(|e| anyhow!("{e}"))?;
    for (k, v) in config.params.iter_mut() {
        if let Ok(env) = std::env::var(k) {
            *v = env;
        }
    }
    config.run.args.extend(a.args.iter().cloned());
    if let Err(errors) = config.validate() {
        bail!("invalid task configuration:\n{}", errors.join("\n"));
    }
    Ok(config)
}

/// Upstream's plan ids: a hex counter starting at the invocation time.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("{:x}", self.0)
    }
}

struct Local {
    name: String,
    path: PathBuf,
}

/// The `-i` inputs, checked against the task; `.` joins as the input named like the
/// current directory when no `-j` is given.
fn local_inputs(a: &ExecuteArgs, config: &TaskConfig) -> Result<Vec<Local>> {
    let mut out = Vec::new();
    for flag in &a.inputs {
        let (name, path) = pair(flag, "input")?;
        if !config.inputs.iter().any(|i| i.name == name) {
            bail!("unknown input '{name}'");
        }
        let path = super::resolve_path(path)?;
        let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
        if !meta.is_dir() {
            bail!("{} not a folder", path.display());
        }
        out.push(Local {
            name: name.to_string(),
            path,
        });
    }
    if a.inputs_from.is_none() {
        let cwd = std::env::current_dir()?;
        let base = cwd.file_name().map(|n| n.to_string_lossy().to_string());
        if let Some(base) = base {
            let is_input = config.inputs.iter().any(|i| i.name == base);
            if is_input && !out.iter().any(|l| l.name == base) {
                out.push(Local {
                    name: base,
                    path: cwd,
                });
            }
        }
    }
    Ok(out)
}

/// The files to upload: everything, or (in a git work tree, unless `--include-ignored`)
/// what git tracks (less deleted files) plus untracked files git does not ignore.
fn selection(dir: &Path, include_ignored: bool) -> Option<Vec<String>> {
    if include_ignored {
        return None;
    }
    let git = |args: &[&str]| -> Option<Vec<String>> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    };
    let inside = git(&["rev-parse", "--is-inside-work-tree"])?;
    if inside.first().map(|s| s.trim()) != Some("true") {
        return None;
    }
    let deleted = git(&["ls-files", "-z", "--deleted"])?;
    let mut files: Vec<String> = git(&["ls-files", "-z"])?
        .into_iter()
        .filter(|f| !deleted.contains(f))
        .collect();
    files.extend(git(&["ls-files", "-z", "--others", "--exclude-standard"])?);
    Some(files)
}

/// Writes the gzip tar of `dir` (restricted to `files` when given) into `w`.
fn write_tar(dir: &Path, files: Option<Vec<String>>, w: impl std::io::Write) -> Result<()> {
    let gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    match files {
        None => tar.append_dir_all(".", dir)?,
        Some(files) => {
            for f in files {
                let p = dir.join(&f);
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => tar.append_dir_all(&f, &p)?,
                    Ok(_) => tar.append_path_with_name(&p, &f)?,
                    Err(_) => {} // vanished since git listed it
                }
            }
        }
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// Uploads one input; returns the artifact id. The tar is produced on a blocking thread
/// and streamed as it is written.
async fn upload(c: &Client, team: &str, l: &Local, a: &ExecuteArgs, platform: &str) -> Result<i64> {
    eprintln!("uploading {}", l.name);
    let (reader, writer) = tokio::io::duplex(64 * 1024);
    let (dir, include) = (l.path.clone(), a.include_ignored);
    let producer = tokio::task::spawn_blocking(move || {
        let files = selection(&dir, include);
        write_tar(&dir, files, tokio_util::io::SyncIoBridge::new(writer))
    });
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(reader));
    let mut query = vec![("platform".to_string(), platform.to_string())];
    query.extend(a.tags.iter().map(|t| ("tags".to_string(), t.clone())));
    let rb = c
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/teams/{}/artifacts", seg(team)),
        )
        .query(&query)
        .header("Content-Type", "application/octet-stream")
        .body(body);
    let resp = c.send(rb).await;
    let archived = producer
        .await
        .map_err(|e| anyhow!("archiving {}: {e}", l.name))?;
    // The server's answer first: a refused upload also breaks the archiver's pipe.
    let resp = resp?;
    archived.with_context(|| format!("archiving {}", l.path.display()))?;
    let artifact: Value = resp.json()?;
    artifact["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("unexpected artifact response: {artifact}"))
}

/// Downloads artifact `id` and unpacks it into `dir`.
async fn download(c: &Client, team: &str, id: i64, name: &str, dir: &Path) -> Result<()> {
    eprintln!("downloading {name}");
    let resp = c
        .execute(c.get(&format!("/api/v1/teams/{}/artifacts/{id}", seg(team))))
        .await?;
    super::client::check_status(resp.status(), b"")?;
    let body = resp.bytes_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        std::fs::create_dir_all(&dir)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
        archive.set_preserve_permissions(true);
        archive.unpack(&dir)?;
        Ok(())
    })
    .await
    .map_err(|e| anyhow!("downloading {name}: {e}"))?
    .with_context(|| format!("downloading {name}"))
}

/// What `-j` contributes: the job's inputs and the pipeline's resource types.
struct FromJob {
    pipeline: PipelineRef,
    inputs: Vec<Value>,
    types: Vec<Value>,
}

async fn from_job(c: &Client, team: &str, job_ref: &str) -> Result<FromJob> {
    let (pipeline, job) = parse_pipeline_child(job_ref, "job")?;
    let path = pipeline_path(team, &pipeline);
    let q = pipeline.query();
    let inputs: Vec<Value> = match c
        .send(
            c.get(&format!("{path}/jobs/{}/inputs", seg(&job)))
                .query(&q),
        )
        .await
    {
        Ok(r) => r.json()?,
        Err(e) if e.is_not_found() => {
            return Err(fail(format!(
                "build inputs for {}/{job} not found",
                pipeline.display()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let types: Vec<Value> = c
        .send(c.get(&format!("{path}/resource-types")).query(&q))
        .await?
        .json()?;
    Ok(FromJob {
        pipeline,
        inputs,
        types,
    })
}

/// The plan upstream's fly sends (build-events.md §5.4).
fn build_plan(
    ids: &mut Ids,
    config: &TaskConfig,
    a: &ExecuteArgs,
    uploaded: &[(String, i64)],
    job: Option<&FromJob>,
    outputs: &[(String, PathBuf)],
) -> Result<Plan> {
    let mut mapping = BTreeMap::new();
    for m in &a.input_mappings {
        let (task_input, job_input) = pair(m, "input mapping")?;
        mapping.insert(task_input.to_string(), job_input.to_string());
    }
    let mut plan = |node: Node| Plan {
        id: ids.next(),
        node,
    };
    let mut steps = Vec::new();
    for (name, id) in uploaded {
        // A local directory wins over the job's input of that name.
        mapping.remove(name);
        steps.push(plan(Node::ArtifactInput(ArtifactInputNode {
            artifact_id: *id,
            name: name.clone(),
        })));
    }
    let types = job.map(|j| j.types.clone());
    for input in &config.inputs {
        if uploaded.iter().any(|(n, _)| *n == input.name) {
            continue;
        }
        let wanted = mapping.get(&input.name).unwrap_or(&input.name).clone();
        let found = job.and_then(|j| j.inputs.iter().find(|i| i["name"] == wanted.as_str()));
        match found {
            Some(i) => {
                let text = |k: &str| i[k].as_str().unwrap_or_default().to_string();
                steps.push(plan(Node::Get(GetPlan {
                    name: text("name"),
                    resource: text("resource"),
                    type_: text("type"),
                    source: Some(i["source"].clone()),
                    params: i["params"].as_object().cloned().unwrap_or_default(),
                    version: Some(i["version"].clone()).filter(|v| !v.is_null()),
                    tags: serde_json::from_value(i["tags"].clone()).unwrap_or_default(),
                    resource_types: types.clone(),
                    ..Default::default()
                })))
            }
            None if input.optional => {}
            None => bail!("missing required input '{}'", input.name),
        }
    }
    let mut config_json = config.to_value();
    if let Some(image) = &a.image {
        let i = job
            .and_then(|j| j.inputs.iter().find(|i| i["name"] == image.as_str()))
            .ok_or_else(|| anyhow!("image resource {image} not found"))?;
        config_json["image_resource"] =
            json!({"type": i["type"], "source": i["source"], "version": i["version"]});
    }
    let inputs = plan(Node::InParallel(InParallelNode {
        steps,
        ..Default::default()
    }));
    let task = plan(Node::Task(Box::new(TaskPlan {
        name: "one-off".into(),
        privileged: a.privileged,
        tags: a.tags.clone(),
        config: Some(config_json),
        input_mapping: mapping,
        resource_types: types,
        ..Default::default()
    })));
    let run = plan(Node::Do(vec![inputs, task]));
    if outputs.is_empty() {
        return Ok(run);
    }
    let outs = outputs
        .iter()
        .map(|(name, _)| {
            plan(Node::ArtifactOutput(ArtifactOutputNode {
                name: name.clone(),
            }))
        })
        .collect();
    let ensure = plan(Node::InParallel(InParallelNode {
        steps: outs,
        ..Default::default()
    }));
    Ok(plan(Node::Ensure(HookNode {
        step: Box::new(run),
        hook: Box::new(ensure),
    })))
}

/// Streams the build; the first SIGINT/SIGTERM aborts it (the stream then ends with its
/// status), a second one exits at once.
async fn watch(c: &Client, build_id: i64) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let events = stream(c, build_id, false, false);
    tokio::pin!(events);
    let mut aborting = false;
    loop {
        tokio::select! {
            code = &mut events => return code,
            _ = async { tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} } } => {
                if aborting {
                    eprintln!("exiting immediately");
                    return Ok(2);
                }
                eprintln!("aborting...");
                let abort = c.put(&format!("/api/v1/builds/{build_id}/abort"));
                if let Err(e) = c.send(abort).await {
                    eprintln!("failed to abort: {e}");
                    return Ok(2);
                }
                aborting = true;
            }
        }
    }
}

pub async fn execute(g: &Global, a: &ExecuteArgs) -> Result<()> {
    let config = task_config(a)?;
    if a.image.is_some() && a.inputs_from.is_none() {
        bail!(
            "must set --inputs-from when using --image so fly knows which job to look up the image"
        );
    }
    let mut outputs = Vec::new();
    for flag in &a.outputs {
        let (name, path) = pair(flag, "output")?;
        if !config.outputs.iter().any(|o| o.name == name) {
            bail!("unknown output '{name}'");
        }
        // Created on download, so it need not exist yet.
        outputs.push((name.to_string(), std::path::absolute(path)?));
    }
    if a.background && !outputs.is_empty() {
        bail!("background execution cannot withstand outputs");
    }
    let locals = local_inputs(a, &config)?;
    let (t, team) = connect(g, a.team.as_deref()).await?;
    let c = &t.client;
    let job = match &a.inputs_from {
        Some(j) => Some(from_job(c, &team, j).await?),
        None => None,
    };
    let platform = config.platform.clone();
    let uploads = locals.iter().map(|l| async {
        upload(c, &team, l, a, &platform)
            .await
            .map(|id| (l.name.clone(), id))
    });
    let uploaded: Vec<(String, i64)> = futures::future::try_join_all(uploads).await?;
    let start = crate::clock::now().max(1) as u64;
    let plan = build_plan(
        &mut Ids(start),
        &config,
        a,
        &uploaded,
        job.as_ref(),
        &outputs,
    )?;
    let path = match &job {
        Some(j) => format!("{}/builds", pipeline_path(&team, &j.pipeline)),
        None => format!("/api/v1/teams/{}/builds", seg(&team)),
    };
    let query = job.as_ref().map(|j| j.pipeline.query()).unwrap_or_default();
    let rb = c
        .request(reqwest::Method::POST, &path)
        .query(&query)
        .json(&plan);
    let build: api::Build = c.send(rb).await?.json()?;
    println!(
        "executing build {} at {}/builds/{}",
        build.id, c.url, build.id
    );
    if a.background {
        return Ok(());
    }
    let code = watch(c, build.id).await?;
    if !outputs.is_empty() {
        let artifacts: Vec<Value> = c
            .send(c.get(&format!("/api/v1/builds/{}/artifacts", build.id)))
            .await?
            .json()?;
        let by_name: BTreeMap<&str, i64> = artifacts
            .iter()
            .filter_map(|a| Some((a["name"].as_str()?, a["id"].as_i64()?)))
            .collect();
        let downloads = outputs.iter().filter_map(|(name, dir)| {
            let id = *by_name.get(name.as_str())?;
            Some(download(c, &team, id, name, dir))
        });
        futures::stream::iter(downloads)
            .buffer_unordered(4)
            .try_collect::<Vec<()>>()
            .await?;
    }
    std::process::exit(code);
}
