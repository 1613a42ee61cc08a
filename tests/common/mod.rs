//! Test harness: real `concourse` processes on ephemeral ports, real HTTP, and fly run as
//! a separate process with its own HOME. Waits on conditions, never on fixed sleeps.
#![allow(dead_code)]

pub mod python;
pub mod scenarios;
pub mod slapd;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const USER: &str = "test";
pub const PASS: &str = "test";

/// Which store a server under test uses.
#[derive(Clone)]
pub enum Backend {
    Embedded,
    /// A fresh schema, dropped when the last clone of the guard goes.
    Postgres(Arc<concourse::db::testing::SchemaGuard>),
}

impl Backend {
    /// The Postgres backend for `test`, or None (with the reason printed) when no
    /// PostgreSQL is configured. In CI a missing PostgreSQL fails the test instead.
    pub fn postgres(test: &str) -> Option<Backend> {
        concourse::db::testing::require_postgres(test)
            .map(|c| Backend::Postgres(Arc::new(concourse::db::testing::SchemaGuard::new(c))))
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    /// The TSA's SSH address (`host:port`).
    pub tsa_addr: String,
    /// `--prometheus-bind-*`'s address, when given.
    pub metrics_addr: String,
    /// Every line the server has written to stderr so far.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    extra: Vec<String>,
    role: &'static str,
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_concourse"))
}

impl Server {
    pub fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[])
    }

    /// Starts `concourse web` with users `test:test` (main team owner) and `dev:dev`
    /// unless `extra` has `--add-local-user=` (none).
    pub fn start_with(backend: Backend, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::spawn(
            "web",
            backend,
            dir,
            extra.iter().map(|s| s.to_string()).collect(),
        )
    }

    /// Starts `concourse quickstart` (users as for `start`).
    pub fn quickstart(backend: Backend) -> Server {
        Self::quickstart_with(backend, &[])
    }

    /// `concourse quickstart` with extra flags.
    pub fn quickstart_with(backend: Backend, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn("quickstart", backend, dir, extra)
    }

    fn spawn(
        role: &'static str,
        backend: Backend,
        dir: tempfile::TempDir,
        extra: Vec<String>,
    ) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg(role);
        // Loopback and ephemeral ports unless the test asks for others.
        // No drain unless the test asks for one: dropping a server must not wait for
        // the builds a test leaves running.
        for (flag, default) in [
            ("--bind-ip", "127.0.0.1"),
            ("--bind-port", "0"),
            ("--tsa-bind-ip", "127.0.0.1"),
            ("--tsa-bind-port", "0"),
            ("--shutdown-grace-period", "0s"),
        ] {
            if !extra.iter().any(|e| e == flag) {
                cmd.args([flag, default]);
            }
        }
        // The default users, unless the test asks for none with an empty
        // `--add-local-user=` (other `--add-local-user`s add to them).
        if !extra.iter().any(|e| e == "--add-local-user=") {
            cmd.args([
                "--add-local-user",
                "test:test,dev:dev",
                "--main-team-local-user",
                "test",
            ]);
        }
        cmd.arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(&extra)
            .env_remove("CONCOURSE_POSTGRES_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Backend::Postgres(guard) = &backend {
            let pg = guard.config();
            cmd.args([
                "--postgres-host",
                &pg.host,
                "--postgres-port",
                &pg.port.to_string(),
            ])
            .args([
                "--postgres-user",
                &pg.user,
                "--postgres-database",
                &pg.database,
            ]);
            if let Some(schema) = &pg.schema {
                cmd.args(["--postgres-schema", schema]);
            }
        }
        let mut child = cmd.spawn().expect("spawning concourse web");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let (tsa_tx, tsa_rx) = mpsc::channel();
        let (metrics_tx, metrics_rx) = mpsc::channel();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut tsa_tx = Some(tsa_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                if let Some(addr) = line.strip_prefix("concourse prometheus listening on ") {
                    let _ = metrics_tx.send(addr.trim().to_string());
                }
                if let Some(addr) = line.strip_prefix("concourse tsa listening on ") {
                    if let Some(tx) = tsa_tx.take() {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
                if let Some(addr) = line.strip_prefix("concourse web listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
                if std::env::var_os("TEST_SERVER_LOGS").is_some() {
                    eprintln!("[web] {line}");
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!("concourse web did not start listening within 60s (exit: {status:?}); run with TEST_SERVER_LOGS=1 to see its log")
        });
        // Printed just before the web line.
        let tsa_addr = tsa_rx.try_recv().unwrap_or_default();
        let metrics_addr = metrics_rx.try_recv().unwrap_or_default();
        Server {
            child,
            url: format!("http://{addr}"),
            tsa_addr,
            metrics_addr,
            log,
            dir,
            backend,
            extra,
            role,
        }
    }

    /// Stops the process and starts a new one on the same store.
    pub fn restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let backend = self.backend.clone();
        let extra = std::mem::take(&mut self.extra);
        let role = self.role;
        // Keep the data dir: move it out before `self` drops.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Self::spawn(role, backend, dir, extra)
    }

    /// Like [`Server::restart`], but the new process listens on the same web and TSA
    /// ports, as a restarted web node would: connected workers can find it again.
    pub fn restart_in_place(mut self) -> Server {
        let port = |addr: &str| addr.rsplit(':').next().unwrap_or_default().to_string();
        let (web, tsa) = (port(&self.url), port(&self.tsa_addr));
        let mut extra = Vec::new();
        let mut args = std::mem::take(&mut self.extra).into_iter();
        while let Some(a) = args.next() {
            if a == "--bind-port" || a == "--tsa-bind-port" {
                args.next();
            } else {
                extra.push(a);
            }
        }
        extra.extend(["--bind-port".into(), web, "--tsa-bind-port".into(), tsa]);
        self.extra = extra;
        self.restart()
    }

    /// SIGKILL, as a crashed node.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's store, opened from the test process (the embedded file in the data
    /// dir, or the test's PostgreSQL schema), to seed state the API cannot create.
    pub async fn store(&self) -> Arc<dyn concourse::db::Store> {
        match &self.backend {
            Backend::Embedded => {
                concourse::db::open_embedded(&self.dir.path().join("data").join("concourse.db"))
                    .await
                    .expect("opening the embedded store")
            }
            Backend::Postgres(guard) => concourse::db::connect_postgres(guard.config())
                .await
                .expect("connecting to the test schema"),
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Logs in through the token endpoint like fly does; returns the bearer token.
    pub async fn token(&self, user: &str, pass: &str) -> String {
        let resp = reqwest::Client::new()
            .post(self.api("/sky/issuer/token"))
            .basic_auth("fly", Some("Zmx5"))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", pass),
                ("scope", "openid profile email federated:id groups"),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(resp.status(), 200, "login as {user}");
        let body: serde_json::Value = resp.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}

impl Drop for Server {
    /// SIGTERM, as a user stops it: the node destroys its containers and unmounts what it
    /// mounted (a SIGKILL would leave them running). SIGKILL only if it hangs.
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("server did not stop within 40s of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fly with its own HOME (so its own ~/.flyrc).
pub struct Fly {
    pub home: tempfile::TempDir,
}

impl Fly {
    pub fn new() -> Fly {
        Fly {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(None, args)
    }

    pub fn run_in(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.arg("fly")
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("FLY_HOME")
            .stdin(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.output().expect("running fly")
    }

    /// Runs fly and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "fly {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn login(&self, server: &Server, target: &str) {
        self.ok(&[
            "-t",
            target,
            "login",
            "-c",
            &server.url,
            "-u",
            USER,
            "-p",
            PASS,
        ]);
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The corpus of upstream pipelines, beside this checkout.
pub fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pipelines");
    assert!(
        dir.is_dir(),
        "pipeline corpus not found at {}",
        dir.display()
    );
    dir
}

/// Runs a base resource type like a worker does: `concourse resource TYPE ACTION [DIR]`,
/// the request JSON on stdin; Ok(stdout JSON) or Err(stderr).
pub fn resource(
    type_: &str,
    action: &str,
    dir: Option<&Path>,
    req: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    use std::io::Write;
    let mut cmd = Command::new(bin());
    cmd.args(["resource", type_, action]);
    if let Some(d) = dir {
        cmd.arg(d);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn resource");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("wait for resource");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("stdout is JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs git in `dir` with a fixed author; its trimmed stdout. Panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Triggers `job` of pipeline `pipeline` in team main through the API; the build's id.
pub async fn trigger_job(s: &Server, token: &str, pipeline: &str, job: &str) -> i64 {
    let path = format!("/api/v1/teams/main/pipelines/{pipeline}/jobs/{job}/builds");
    let b: serde_json::Value = reqwest::Client::new()
        .post(s.api(&path))
        .bearer_auth(token)
        .send()
        .await
        .expect("trigger")
        .json()
        .await
        .expect("build");
    b["id"].as_i64().expect("id")
}

/// `GET path` as `token`'s holder, decoded as JSON.
pub async fn get_json(s: &Server, token: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(s.api(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

/// The events of a finished build, as the API streams them (to `end`).
pub async fn events_text(s: &Server, token: &str, build: i64) -> String {
    reqwest::Client::new()
        .get(s.api(&format!("/api/v1/builds/{build}/events")))
        .bearer_auth(token)
        .send()
        .await
        .expect("events")
        .text()
        .await
        .expect("events body")
}

/// Waits (up to `within`) until build `id` has finished; its status.
pub async fn build_finished(s: &Server, token: &str, id: i64, within: Duration) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let b: serde_json::Value = reqwest::Client::new()
            .get(s.api(&format!("/api/v1/builds/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("build")
            .json()
            .await
            .expect("json");
        let status = b["status"].as_str().unwrap_or_default().to_string();
        if !["pending", "started"].contains(&status.as_str()) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "build {id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
