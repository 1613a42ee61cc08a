//! `intercept` / `hijack` / `i` (fly-cli.md §4.5): find a container by build, job, step or
//! check, then run a command in it over the ATC's hijack WebSocket.

use super::client::{fail, seg, FlyError, Target};
use super::containers::Container;
use super::rc::Flyrc;
use super::{ui, Global};
use crate::config::refs::parse_pipeline_child;
use anyhow::{anyhow, Context, Result};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const EXPIRY_HINT: &str = "they may have expired if your build hasn't recently finished.";

#[derive(Debug, clap::Args)]
pub struct InterceptArgs {
    /// Name of a job to hijack
    #[arg(short = 'j', long, value_name = "PIPELINE/JOB")]
    pub job: Option<String>,
    /// Handle id of a job to hijack
    #[arg(long)]
    pub handle: Option<String>,
    /// Name of a resource's checking container to hijack
    #[arg(short = 'c', long, value_name = "PIPELINE/CHECK")]
    pub check: Option<String>,
    /// URL for the build, job, or check container to hijack
    #[arg(short = 'u', long)]
    pub url: Option<String>,
    /// Build number within the job, or global build ID
    #[arg(short = 'b', long)]
    pub build: Option<String>,
    /// Name of step to hijack (e.g. build, unit, resource name)
    #[arg(short = 's', long = "step")]
    pub step: Option<String>,
    /// Type of step to hijack (e.g. get, put, task)
    #[arg(long = "step-type")]
    pub step_type: Option<String>,
    /// Attempt number of step to hijack.
    #[arg(short = 'a', long, value_name = "N[,N,...]")]
    pub attempt: Option<String>,
    /// Name of the team to which the container belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
    /// The command to run in the container (default: bash)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// What the container search is narrowed by (from flags and `-u`).
#[derive(Default)]
struct Fingerprint {
    pipeline: String,
    vars: Option<String>,
    job: String,
    build: String,
    step: String,
    step_type: String,
    check: String,
    attempt: String,
}

#[derive(Serialize)]
struct ProcessSpec {
    path: String,
    args: Vec<String>,
    env: Vec<String>,
    dir: String,
    privileged: bool,
    user: String,
    tty: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Output {
    stdout: Option<String>,
    stderr: Option<String>,
    error: Option<String>,
    exit_status: Option<i32>,
    executable_not_found: bool,
}

/// `/teams/T/pipelines/P/jobs/J/builds/B` → segment pairs.
fn url_segments(path: &str) -> std::collections::HashMap<String, String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    parts
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

/// `-u` without `-t`: the saved target with that API and team.
fn target_for_url(url: &url::Url, verbose: bool) -> Result<Target> {
    let api = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
        + &url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let team = url_segments(url.path())
        .get("teams")
        .cloned()
        .unwrap_or_default();
    let rc = Flyrc::load()?;
    let name = rc
        .targets
        .iter()
        .find(|(_, t)| t.api.trim_end_matches('/') == api && t.team == team)
        .map(|(n, _)| n.clone())
        .ok_or_else(|| anyhow!("no target found for {api} and team {team}"))?;
    Target::load(Some(&name), verbose)
}

fn fingerprint(a: &InterceptArgs) -> Result<Fingerprint> {
    let mut fp = Fingerprint::default();
    if let Some(u) = &a.url {
        let url = url::Url::parse(u).with_context(|| format!("invalid URL: {u}"))?;
        let segs = url_segments(url.path());
        let get = |k: &str| segs.get(k).cloned().unwrap_or_default();
        fp.pipeline = get("pipelines");
        fp.job = get("jobs");
        fp.build = get("builds");
        fp.check = get("resources");
        let query = url.query().unwrap_or_default();
        if let Ok(Some(vars)) = crate::proto::instance_vars::from_query(query) {
            fp.vars = Some(serde_json::Value::Object(vars).to_string());
        }
    }
    let set = |field: &mut String, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            *field = v.clone();
        }
    };
    set(&mut fp.build, &a.build);
    set(&mut fp.step, &a.step);
    set(&mut fp.step_type, &a.step_type);
    set(&mut fp.attempt, &a.attempt);
    let pipeline_child = if let Some(j) = &a.job {
        let (p, job) = parse_pipeline_child(j, "job")?;
        fp.job = job;
        Some(p)
    } else if let Some(c) = &a.check {
        let (p, resource) = parse_pipeline_child(c, "resource")?;
        fp.check = resource;
        Some(p)
    } else {
        None
    };
    if let Some(p) = pipeline_child {
        fp.pipeline = p.name.clone();
        if let Some(vars) = p.instance_vars.as_ref().filter(|v| !v.is_empty()) {
            fp.vars = Some(Value::Object(vars.clone()).to_string());
        }
    }
    Ok(fp)
}

/// Upstream's container locators: check containers, else step containers of a job's
/// build, a global build id, or the newest one-off build.
async fn query(t: &Target, fp: &Fingerprint) -> Result<Vec<(String, String)>> {
    let mut q: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: &str| q.push((k.to_string(), v.to_string()));
    if !fp.check.is_empty() {
        push("type", "check");
        push("resource_name", &fp.check);
        if !fp.pipeline.is_empty() {
            push("pipeline_name", &fp.pipeline);
        }
        if let Some(v) = &fp.vars {
            push("vars", v);
        }
        return Ok(q);
    }
    for (k, v) in [
        ("type", &fp.step_type),
        ("step_name", &fp.step),
        ("attempt", &fp.attempt),
    ] {
        if !v.is_empty() {
            push(k, v);
        }
    }
    if !fp.job.is_empty() {
        push("pipeline_name", &fp.pipeline);
        if let Some(v) = &fp.vars {
            push("vars", v);
        }
        push("job_name", &fp.job);
        if !fp.build.is_empty() {
            push("build_name", &fp.build);
        }
    } else if !fp.build.is_empty() {
        push("build_id", &fp.build);
    } else {
        let builds: Vec<Value> = t.client.get_json("/api/v1/builds", &[]).await?;
        let oneoff = builds
            .iter()
            .find(|b| {
                b["job_name"].as_str().unwrap_or_default().is_empty()
                    && b["resource_name"].as_str().unwrap_or_default().is_empty()
            })
            .and_then(|b| b["id"].as_i64())
            .ok_or_else(|| anyhow!("no builds to intercept"))?;
        push("build_id", &oneoff.to_string());
    }
    Ok(q)
}

fn describe(c: &Container) -> String {
    let mut infos = Vec::new();
    if !c.step_name.is_empty() {
        infos.push(format!("step: {}", c.step_name));
    }
    if !c.resource_name.is_empty() {
        infos.push(format!("resource: {}", c.resource_name));
    }
    infos.push(format!("type: {}", c.type_));
    if c.type_ == "check" && !c.expires_in.is_empty() {
        infos.push(format!("expires in: {}", c.expires_in));
    }
    if !c.attempt.is_empty() {
        infos.push(format!("attempt: {}", c.attempt));
    }
    infos.join(", ")
}

/// Several matches: a numbered list, the choice read from stdin. None = bail out.
fn choose(mut found: Vec<Container>) -> Option<Container> {
    for (i, c) in found.iter().enumerate() {
        println!("{}. {}", i + 1, describe(c));
    }
    let stdin = std::io::stdin();
    loop {
        print!("choose a container: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        if let Ok(n) = line.parse::<usize>() {
            if (1..=found.len()).contains(&n) {
                return Some(found.swap_remove(n - 1));
            }
        }
    }
}

async fn find_container(t: &Target, team: &str, a: &InterceptArgs) -> Result<Option<Container>> {
    let c = &t.client;
    if let Some(h) = a.handle.as_ref().filter(|h| !h.is_empty()) {
        let path = format!("/api/v1/teams/{}/containers/{}", seg(team), seg(h));
        return match c.get_json::<Container>(&path, &[]).await {
            Ok(found) => Ok(Some(found)),
            Err(_) => Err(fail(format!(
                "no containers matched the given handle id!\n\n{EXPIRY_HINT}"
            ))),
        };
    }
    let fp = fingerprint(a)?;
    let q = query(t, &fp).await?;
    let path = format!("/api/v1/teams/{}/containers", seg(team));
    let mut found: Vec<Container> = c.get_json(&path, &q).await?;
    found.retain(|c| c.state == "created" || c.state == "failed");
    // Newest build first, then by handle, so the numbering is stable.
    found.sort_by(|x, y| y.build_id.cmp(&x.build_id).then(x.id.cmp(&y.id)));
    match found.len() {
        0 => Err(fail(format!(
            "no containers matched your search parameters!\n\n{EXPIRY_HINT}"
        ))),
        1 => Ok(found.pop()),
        _ => Ok(choose(found)),
    }
}

pub async fn intercept(g: &Global, a: &InterceptArgs) -> Result<()> {
    let t = match (&g.target, &a.url) {
        (None, Some(u)) => {
            let url = url::Url::parse(u).with_context(|| format!("invalid URL: {u}"))?;
            target_for_url(&url, g.verbose)?
        }
        _ => Target::load(g.target.as_deref(), g.verbose)?,
    };
    t.validate().await?;
    let team = t.resolve_team(a.team.as_deref()).await?;
    let Some(container) = find_container(&t, &team, a).await? else {
        return Ok(());
    };
    let (path, args, default_shell) = match a.command.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec(), false),
        None => ("bash".to_string(), Vec::new(), true),
    };
    let tty = term::window_size().map(
        |(columns, rows)| serde_json::json!({"window_size": {"columns": columns, "rows": rows}}),
    );
    let mut spec = ProcessSpec {
        path,
        args,
        env: vec![format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_default()
        )],
        dir: container.working_directory.clone(),
        privileged: true,
        user: container.user.clone(),
        tty,
    };
    let raw = if ui::stdin_is_tty() {
        term::RawMode::enter()
    } else {
        None
    };
    let mut input = stdin_reader();
    let mut sent = Vec::new();
    let url = hijack_url(&t, &team, &container.id)?;
    let mut result = session(&t, &url, &spec, &mut input, &mut sent).await;
    if matches!(&result, Ok(o) if o.not_found) && default_shell {
        spec.path = "sh".into();
        eprint!("\rCouldn't find \"bash\" on container, retrying with \"sh\"\n\r");
        result = session(&t, &url, &spec, &mut input, &mut sent).await;
    }
    drop(raw);
    let Outcome { status, error, .. } = result?;
    if let Some(e) = error {
        eprintln!("{}", ui::paint(&e, ui::RED, ui::stderr_is_tty()));
    }
    if status == 0 {
        Ok(())
    } else {
        Err(FlyError::Exit(status).into())
    }
}

fn hijack_url(t: &Target, team: &str, handle: &str) -> Result<String> {
    let api = &t.client.url;
    let ws = if let Some(rest) = api.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = api.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(anyhow!("unsupported target URL: {api}"));
    };
    Ok(format!(
        "{ws}/api/v1/teams/{}/containers/{}/hijack",
        seg(team),
        seg(handle)
    ))
}

/// Stdin as HijackInput messages, read on a thread (stdin reads block). Shared by the
/// bash attempt and the sh retry.
fn stdin_reader() -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = serde_json::json!({"stdin": B64.encode(&buf[..n])});
                    if tx.blocking_send(msg).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.blocking_send(serde_json::json!({"closed": true}));
    });
    rx
}

/// How one hijack ended.
#[derive(Default)]
struct Outcome {
    status: i32,
    /// The server's error message (status 255).
    error: Option<String>,
    /// The command was not found in the container.
    not_found: bool,
}

/// One hijack.
async fn session(
    t: &Target,
    url: &str,
    spec: &ProcessSpec,
    input: &mut mpsc::Receiver<Value>,
    sent: &mut Vec<Value>,
) -> Result<Outcome> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request()?;
    if let Some(tok) = &t.client.token {
        let kind = if tok.kind.is_empty() || tok.kind.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else {
            tok.kind.as_str()
        };
        req.headers_mut()
            .insert("Authorization", format!("{kind} {}", tok.value).parse()?);
    }
    let (ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            super::client::check_status(
                reqwest::StatusCode::from_u16(resp.status().as_u16())?,
                &body,
            )?;
            return Err(anyhow!("websocket handshake failed: {}", resp.status()));
        }
        Err(e) => return Err(FlyError::Network(e.to_string()).into()),
    };
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::Text(serde_json::to_string(spec)?.into()))
        .await?;
    // A retry with `sh` gets the stdin the failed `bash` attempt already consumed.
    for m in sent.iter() {
        sink.send(Message::Text(m.to_string().into())).await?;
    }
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(10));
    let mut input_open = true;
    loop {
        tokio::select! {
            msg = input.recv(), if input_open => match msg {
                Some(m) => {
                    let _ = sink.send(Message::Text(m.to_string().into())).await;
                    sent.push(m);
                }
                None => input_open = false,
            },
            _ = ping.tick() => { let _ = sink.send(Message::Ping(Vec::new().into())).await; }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        if reason.is_empty() {
                            return Ok(Outcome::default());
                        }
                        return Err(anyhow!("{reason}"));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(anyhow!("{e}")),
                    None => return Ok(Outcome::default()),
                };
                let Ok(out) = serde_json::from_slice::<Output>(&text) else { continue };
                if let Some(d) = out.stdout.and_then(|d| B64.decode(d).ok()) {
                    let mut so = std::io::stdout();
                    let _ = so.write_all(&d);
                    let _ = so.flush();
                }
                if let Some(d) = out.stderr.and_then(|d| B64.decode(d).ok()) {
                    let _ = std::io::stderr().write_all(&d);
                }
                if let Some(e) = out.error {
                    let not_found =
                        out.executable_not_found || e.contains("executable file not found");
                    return Ok(Outcome { status: 255, error: Some(e), not_found });
                }
                if let Some(status) = out.exit_status {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ok(Outcome { status, ..Default::default() });
                }
            }
        }
    }
}

/// The terminal: size and raw mode (stdin a TTY only).
mod term {
    /// (columns, rows) of stdout when it is a terminal.
    pub fn window_size() -> Option<(u16, u16)> {
        // SAFETY: TIOCGWINSZ fills a plain struct; fd 1 stays open.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
                Some((ws.ws_col, ws.ws_row))
            } else {
                None
            }
        }
    }

    /// Raw stdin while alive (keys go to the remote shell as typed).
    pub struct RawMode(libc::termios);

    impl RawMode {
        pub fn enter() -> Option<RawMode> {
            // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return None;
                }
                let saved = t;
                libc::cfmakeraw(&mut t);
                if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                    return None;
                }
                Some(RawMode(saved))
            }
        }
    }

    impl Drop for RawMode {
        fn drop(&mut self) {
            // SAFETY: restores the attributes read in `enter`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &self.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_split_into_pairs() {
        let s = url_segments("/teams/main/pipelines/p/jobs/j/builds/3");
        assert_eq!(s["teams"], "main");
        assert_eq!(s["jobs"], "j");
        assert_eq!(s["builds"], "3");
    }

    #[test]
    fn choices_describe_step_type_and_attempt() {
        let c = Container {
            step_name: "s".into(),
            type_: "task".into(),
            attempt: "2".into(),
            ..Default::default()
        };
        assert_eq!(describe(&c), "step: s, type: task, attempt: 2");
    }
}
