//! A `concourse web` with real `concourse worker` processes that register over SSH, fly
//! to drive pipelines, and condition waits on the API. Used by tests/worker_builds.rs.
#![allow(dead_code)]

pub mod netns;

use crate::common::{self, Backend, Fly, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// fly target of the main team.
pub const MAIN: &str = "main";

/// Heartbeats every second (TTL 2 s) and a collector every second: stalls show up fast.
pub const FAST: &[&str] = &["--tsa-heartbeat-interval", "1s", "--gc-interval", "1s"];

/// What the sleepy job prints (computed, so the task config in the events never matches).
pub const SLEEPING: &str = "sleeping-42";

/// Two jobs: one that prints [`SLEEPING`] once its process runs and then sleeps a minute
/// (long enough to be interrupted; short, as a killed worker's process-runtime task
/// outlives it), and one that ends at once.
pub const PIPELINE: &str = "jobs:
- name: sleepy
  plan:
  - task: t
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo sleeping-$((6*7)); sleep 60']}
- name: quick
  plan:
  - task: t
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo quick-done']}
- name: resumable
  plan:
  - in_parallel:
    - task: first
      config:
        platform: linux
        run: {path: sh, args: [-c, 'echo first-$((1+1))']}
    - task: second
      config:
        platform: linux
        run: {path: sh, args: [-c, 'echo second-$((2+2))']}
  - task: counting
    config:
      platform: linux
      outputs: [{name: out}]
      run:
        path: sh
        args: [-c, 'echo counting-$((6*7)); i=0; while [ $i -lt 80 ]; do i=$((i+1)); echo line-$i; sleep 0.2; done; echo $i > out/n']
  - task: last
    timeout: 5m
    config:
      platform: linux
      inputs: [{name: out}]
      run: {path: sh, args: [-c, 'echo last-$(cat out/n)']}
  ensure:
    task: hook
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo ensure-$((5+5))']}
- name: deadline
  plan:
  - task: slow
    timeout: 8s
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo slow-$((6*7)); sleep 16; echo slow-done']}
";

/// What the resumable job's counting task prints once its process runs.
pub const COUNTING: &str = "counting-42";

/// The resumable job's log after a resume: every line of the interrupted task exactly once
/// and in order, no task run twice (the `in_parallel` pair included), the last task reading
/// the interrupted one's output, the `ensure` hook once, one `started` status.
pub fn assert_whole_once(events: &str) {
    let data: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let output: String = data
        .iter()
        .filter(|e| e["event"] == "log")
        .filter_map(|e| e["data"]["payload"].as_str())
        .collect();
    let lines: Vec<&str> = output.lines().filter(|l| l.starts_with("line-")).collect();
    let expected: Vec<String> = (1..=80).map(|i| format!("line-{i}")).collect();
    assert_eq!(lines, expected, "every line once, in order:\n{output}");
    for once in ["first-2", "second-4", "ensure-10"] {
        assert_eq!(output.matches(once).count(), 1, "{once}:\n{output}");
    }
    assert!(
        output.contains("last-80"),
        "the next step read the output:\n{output}"
    );
    let starts = data
        .iter()
        .filter(|e| e["event"] == "initialize-task")
        .count();
    assert_eq!(starts, 5, "no task ran twice:\n{events}");
    let statuses: Vec<&serde_json::Value> = data
        .iter()
        .filter(|e| e["event"] == "status")
        .map(|e| &e["data"]["status"])
        .collect();
    assert_eq!(statuses, ["started", "succeeded"], "{events}");
}

/// An SSH key pair made with `concourse generate-key`.
pub struct Key {
    dir: tempfile::TempDir,
}

impl Key {
    pub fn new() -> Key {
        let dir = tempfile::tempdir().expect("temp");
        let out = Command::new(common::bin())
            .args(["generate-key", "-t", "ssh", "-b", "2048", "-f"])
            .arg(dir.path().join("key"))
            .output()
            .expect("generate-key");
        assert!(out.status.success(), "{}", common::stderr(&out));
        Key { dir }
    }
    pub fn private(&self) -> String {
        self.dir.path().join("key").to_string_lossy().into_owned()
    }
    pub fn public(&self) -> String {
        self.dir
            .path()
            .join("key.pub")
            .to_string_lossy()
            .into_owned()
    }
}

/// A worker process, killed when dropped. Its stderr lines arrive on `log`.
pub struct WorkerProc {
    pub name: String,
    child: Child,
    pub log: mpsc::Receiver<String>,
}

impl WorkerProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
    /// SIGKILL: no landing, no goodbye to the TSA.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    /// Waits for a stderr line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("worker {} never logged {needle:?}", self.name),
            }
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub server: Server,
    pub key: Key,
    pub token: String,
    pub fly: Fly,
    pub work: tempfile::TempDir,
    tsa_pub: String,
}

impl Cluster {
    /// `concourse web` authorizing `key` for any worker, with [`FAST`] timings and `extra`.
    pub async fn start(backend: Backend, extra: &[&str]) -> Cluster {
        let mut args = FAST.to_vec();
        args.extend_from_slice(extra);
        Self::start_as_given(backend, &args).await
    }

    /// As [`Cluster::start`] without [`FAST`]: the default timings unless `extra` sets them.
    pub async fn start_as_given(backend: Backend, extra: &[&str]) -> Cluster {
        let key = Key::new();
        let public = key.public();
        let mut args = vec!["--tsa-authorized-keys", &public];
        args.extend_from_slice(extra);
        let server = Server::start_with(backend, &args);
        let token = server.token("test", "test").await;
        let fly = Fly::new();
        fly.login(&server, MAIN);
        let work = tempfile::tempdir().expect("temp");
        let tsa_pub = work.path().join("tsa.pub").to_string_lossy().into_owned();
        let c = Cluster {
            server,
            key,
            token,
            fly,
            work,
            tsa_pub,
        };
        c.write_tsa_public_key();
        c
    }

    /// Restarts the web node on the same ports and store (workers keep running), logging
    /// in again.
    pub async fn restart_web(self) -> Cluster {
        let Cluster {
            server,
            key,
            fly,
            work,
            tsa_pub,
            ..
        } = self;
        let server = server.restart_in_place();
        let token = server.token("test", "test").await;
        fly.login(&server, MAIN);
        Cluster {
            server,
            key,
            token,
            fly,
            work,
            tsa_pub,
        }
    }

    /// The web node's generated host key, as workers' `--tsa-public-key`.
    fn write_tsa_public_key(&self) {
        std::fs::write(&self.tsa_pub, tsa_public_key(&self.server)).expect("write");
    }

    /// `concourse worker` flags for worker `name` (process runtime, own work dir under the
    /// cluster's), registering at `tsa_host` with `key`.
    pub fn worker_args(&self, name: &str, tsa_host: &str, key: &Key) -> Vec<String> {
        let work = self.work.path().join(name);
        [
            "worker",
            "--name",
            name,
            "--runtime",
            "process",
            "--work-dir",
            &work.to_string_lossy(),
            "--tsa-host",
            tsa_host,
            "--tsa-public-key",
            &self.tsa_pub,
            "--tsa-worker-private-key",
            &key.private(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Starts worker `name` on ephemeral loopback ports with the cluster's key.
    pub fn start_worker(&self, name: &str, extra: &[&str]) -> WorkerProc {
        self.start_worker_with(name, &self.key, extra)
    }

    pub fn start_worker_with(&self, name: &str, key: &Key, extra: &[&str]) -> WorkerProc {
        let mut cmd = Command::new(common::bin());
        cmd.args(self.worker_args(name, &self.server.tsa_addr, key))
            .args(["--bind-ip", "127.0.0.1", "--bind-port", "0"])
            .args(["--baggageclaim-bind-ip", "127.0.0.1"])
            .args(["--baggageclaim-bind-port", "0"])
            .args(extra);
        spawn_worker(name, cmd)
    }

    pub async fn worker(&self, name: &str) -> Option<Value> {
        let all = self.get("/api/v1/workers").await;
        all.as_array()?.iter().find(|w| w["name"] == name).cloned()
    }

    /// Waits (up to 60 s) for worker `name` to be in `state` and satisfy `also`.
    pub async fn eventually_worker(
        &self,
        name: &str,
        state: &str,
        also: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let w = self.worker(name).await;
            if let Some(w) = w.as_ref().filter(|w| w["state"] == state && also(w)) {
                return w.clone();
            }
            assert!(
                Instant::now() < deadline,
                "worker {name} never became {state}; last seen {w:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn eventually_state(&self, name: &str, state: &str) -> Value {
        self.eventually_worker(name, state, |_| true).await
    }

    pub async fn get(&self, path: &str) -> Value {
        common::get_json(&self.server, &self.token, path).await
    }

    /// Sets and unpauses pipeline `p` with [`PIPELINE`] for fly target `target`.
    pub fn set_pipeline(&self, target: &str) {
        let file = self.work.path().join(format!("{target}-p.yml"));
        std::fs::write(&file, PIPELINE).expect("write pipeline");
        let file = file.to_string_lossy().into_owned();
        self.fly
            .ok(&["-t", target, "set-pipeline", "-n", "-p", "p", "-c", &file]);
        self.fly.ok(&["-t", target, "unpause-pipeline", "-p", "p"]);
    }

    /// `fly trigger-job -w` (killed after two minutes so a stuck build fails the test).
    pub fn trigger_and_watch(&self, target: &str, job: &str) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg(common::bin())
            .args(["fly", "-t", target, "trigger-job", "-w", "-j", job])
            .env("HOME", self.fly.home.path())
            .env_remove("FLY_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("running fly")
    }

    /// Runs `job` to success and returns the worker it ran on (fly's `selected worker:`).
    pub fn run_job(&self, target: &str, job: &str) -> String {
        let out = self.trigger_and_watch(target, job);
        let text = common::stdout(&out);
        assert!(
            out.status.success() && text.contains("succeeded"),
            "{job} did not succeed:\n{text}{}",
            common::stderr(&out)
        );
        selected_worker(&text).unwrap_or_else(|| panic!("no selected worker in:\n{text}"))
    }

    /// Triggers `job` of team `team`'s pipeline `p` through the API; returns the build id.
    pub async fn trigger(&self, team: &str, job: &str) -> i64 {
        let build: Value = reqwest::Client::new()
            .post(self.server.api(&format!(
                "/api/v1/teams/{team}/pipelines/p/jobs/{job}/builds"
            )))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("trigger")
            .json()
            .await
            .expect("build JSON");
        build["id"].as_i64().expect("build id")
    }

    /// The build's event stream so far, read until it contains every one of `needles`
    /// (or ends). Fails after `within`.
    pub async fn events_until(&self, build: i64, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let mut text = String::new();
            let resp = reqwest::Client::new()
                .get(self.server.api(&format!("/api/v1/builds/{build}/events")))
                .bearer_auth(&self.token)
                .send()
                .await;
            if let Ok(mut resp) = resp {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left, resp.chunk()).await {
                        Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
                        // The stream ended (or broke): look again from the start.
                        Ok(_) => break,
                        Err(_) => panic!("build {build} never showed {needles:?}:\n{text}"),
                    }
                    if needles.iter().all(|n| text.contains(n)) {
                        return text;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "build {build} never showed {needles:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whatever the build's event stream gives within `within`.
    async fn events_for(&self, build: i64, within: Duration) -> String {
        let mut text = String::new();
        let read = async {
            let url = self.server.api(&format!("/api/v1/builds/{build}/events"));
            let req = reqwest::Client::new().get(url).bearer_auth(&self.token);
            if let Ok(mut resp) = req.send().await {
                while let Ok(Some(c)) = resp.chunk().await {
                    text.push_str(&String::from_utf8_lossy(&c));
                }
            }
        };
        let _ = tokio::time::timeout(within, read).await;
        text
    }

    /// Waits for build `id` to finish; returns its status.
    pub async fn finished(&self, id: i64, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let b = self.get(&format!("/api/v1/builds/{id}")).await;
            let status = b["status"].as_str().unwrap_or_default().to_string();
            if !matches!(status.as_str(), "pending" | "started" | "") {
                return status;
            }
            if Instant::now() >= deadline {
                // Where it waits: the steps so far and the workers as the web node sees them.
                let events = self.events_for(id, Duration::from_secs(3)).await;
                let workers = self.get("/api/v1/workers").await;
                let log = self.server.log.lock().unwrap_or_else(|e| e.into_inner());
                let tail = log[log.len().saturating_sub(60)..].join("\n");
                panic!("build {id} still {status}; the web node's last lines:\n{tail}\nworkers: {workers}\nevents:\n{events}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A web node's generated TSA host key as an OpenSSH public key line.
pub fn tsa_public_key(server: &Server) -> String {
    let host_key = server.dir.path().join("data/tsa_host_key");
    let private = ssh_key::PrivateKey::read_openssh_file(&host_key)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let pem = std::fs::read_to_string(&host_key).expect("host key");
            let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).expect("an RSA host key");
            Ok::<_, ssh_key::Error>(ssh_key::PrivateKey::from(
                ssh_key::private::RsaKeypair::try_from(rsa).expect("keypair"),
            ))
        })
        .expect("host key");
    format!("{}\n", private.public_key().to_openssh().expect("openssh"))
}

/// Spawns a worker command, forwarding its stderr lines (and echoing them when
/// TEST_SERVER_LOGS is set).
pub fn spawn_worker(name: &str, mut cmd: Command) -> WorkerProc {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start worker");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, log) = mpsc::channel();
    let tag = name.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_SERVER_LOGS").is_some() {
                eprintln!("[{tag}] {line}");
            }
            let _ = tx.send(line);
        }
    });
    WorkerProc {
        name: name.to_string(),
        child,
        log,
    }
}

/// The worker named in an event stream (`"selected_worker":"NAME"`) or fly's output
/// (`selected worker: NAME`).
pub fn selected_worker(text: &str) -> Option<String> {
    if let Some(i) = text.find("selected worker:") {
        let line = text[i + "selected worker:".len()..].lines().next()?;
        return strip_ansi(line).split_whitespace().next().map(String::from);
    }
    let marker = "\"selected_worker\":\"";
    let rest = &text[text.find(marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True when running as root; otherwise prints why `test` skips, or fails in CI.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let why = format!("{test}: needs root (network namespaces, veth, iptables)");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipping {why}");
    false
}
