//! Support for worker registration tests: keys, a stand-in Garden/Baggageclaim and an
//! in-process beacon against a real `concourse web`.
#![allow(dead_code)]

use crate::common::{bin, Backend, Server, PASS, USER};
use concourse::beacon::{self, BeaconConfig, BeaconError, Ended};
use concourse::proto::worker::{Worker, WorkerState};
use russh::keys::{PrivateKey, PublicKey};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A 2048-bit RSA worker key (`concourse generate-key -t ssh`), like upstream's.
pub fn worker_key() -> PrivateKey {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = generate(dir.path(), "worker_key");
    russh::keys::load_secret_key(&path, None).expect("loading worker key")
}

pub fn public_line(key: &PrivateKey) -> String {
    key.public_key().to_openssh().expect("encoding public key")
}

fn generate(dir: &Path, name: &str) -> (PathBuf, PublicKey) {
    let path = dir.join(name);
    let out = Command::new(bin())
        .args(["generate-key", "-t", "ssh", "-b", "2048", "-f"])
        .arg(&path)
        .output()
        .expect("running generate-key");
    assert!(out.status.success(), "generate-key: {out:?}");
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("reading .pub");
    (
        path,
        PublicKey::from_openssh(public.trim()).expect("parsing public key"),
    )
}

/// A 2048-bit RSA host key written by `concourse generate-key -t ssh`.
pub fn host_key(dir: &Path) -> (PathBuf, PublicKey) {
    generate(dir, "tsa_host_key")
}

/// A web node with a TSA: its host key and an authorized worker key, plus `extra` flags.
pub struct Gateway {
    pub server: Server,
    pub host_public: PublicKey,
    pub worker_key: PrivateKey,
    pub keys_dir: tempfile::TempDir,
}

impl Gateway {
    pub fn start(backend: Backend, extra: &[&str]) -> Gateway {
        Self::start_with_keys(backend, extra, |_| vec![])
    }

    /// `more_flags` may write further key files into the keys dir and return their flags.
    pub fn start_with_keys(
        backend: Backend,
        extra: &[&str],
        more_flags: impl FnOnce(&Path) -> Vec<String>,
    ) -> Gateway {
        let keys_dir = tempfile::tempdir().expect("temp dir");
        let (host_path, host_public) = host_key(keys_dir.path());
        let worker_key = worker_key();
        let authorized = keys_dir.path().join("authorized_keys");
        std::fs::write(&authorized, format!("{}\n", public_line(&worker_key)))
            .expect("writing keys");
        let mut args: Vec<String> = vec![
            "--tsa-host-key".into(),
            host_path.display().to_string(),
            "--tsa-authorized-keys".into(),
            authorized.display().to_string(),
        ];
        args.extend(more_flags(keys_dir.path()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start_with(backend, &refs);
        assert!(!server.tsa_addr.is_empty(), "web printed its TSA address");
        Gateway {
            server,
            host_public,
            worker_key,
            keys_dir,
        }
    }

    pub fn beacon(&self, name: &str, local: &StandIn) -> BeaconConfig {
        self.beacon_with_key(name, local, self.worker_key.clone())
    }

    pub fn beacon_with_key(&self, name: &str, local: &StandIn, key: PrivateKey) -> BeaconConfig {
        let worker = Worker {
            name: name.into(),
            platform: "linux".into(),
            version: "3.0".into(),
            ..Worker::default()
        };
        let mut config = BeaconConfig::new(
            vec![self.server.tsa_addr.clone()],
            vec![self.host_public.clone()],
            key,
            worker,
            local.addr.clone(),
            local.addr.clone(),
        );
        config.reconnect_delay = Duration::from_millis(200);
        config.keepalive_interval = Duration::from_secs(1);
        config
    }

    pub async fn admin_token(&self) -> String {
        self.server.token(USER, PASS).await
    }

    /// The worker as `GET /api/v1/workers` lists it.
    pub async fn worker(&self, token: &str, name: &str) -> Option<Value> {
        let workers: Vec<Value> = reqwest::Client::new()
            .get(self.server.api("/api/v1/workers"))
            .bearer_auth(token)
            .send()
            .await
            .expect("listing workers")
            .json()
            .await
            .expect("workers JSON");
        workers.into_iter().find(|w| w["name"] == name)
    }

    /// Waits until the worker is listed in `state`; returns it.
    pub async fn wait_for_state(&self, token: &str, name: &str, state: WorkerState) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.worker(token, name).await;
            if last.as_ref().is_some_and(|w| w["state"] == state.as_str()) {
                return last.expect("just checked");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("worker {name} not {state} within 30s; last seen: {last:?}");
    }
}

/// A running in-process beacon.
pub struct RunningBeacon {
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<Ended, BeaconError>>,
}

impl RunningBeacon {
    pub fn start(config: BeaconConfig) -> RunningBeacon {
        let stop = CancellationToken::new();
        let task = tokio::spawn(beacon::run(config, stop.clone()));
        RunningBeacon { stop, task }
    }

    pub async fn stop(self) -> Result<Ended, BeaconError> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("beacon stopped within 30s")
            .expect("beacon task")
    }
}

/// Stands in for Garden and Baggageclaim at the far end of the tunnel: a real HTTP server
/// answering the two listing routes the TSA counts with.
pub struct StandIn {
    pub addr: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/containers",
                get(|| async { axum::Json(serde_json::json!({"Handles": ["c1", "c2"]})) }),
            )
            // What a landing worker's drain check reads: containers of no build.
            .route(
                "/containers/bulk_info",
                get(|| async {
                    let info = serde_json::json!({"Info": {"Properties": {}}});
                    axum::Json(serde_json::json!({"c1": info, "c2": info}))
                }),
            )
            .route(
                "/volumes",
                get(|| async {
                    axum::Json(
                        serde_json::json!([{"handle": "v1"}, {"handle": "v2"}, {"handle": "v3"}]),
                    )
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding stand-in");
        let addr = listener.local_addr().expect("address").to_string();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        StandIn { addr, stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// What a raw exec on the TSA produced.
#[derive(Debug, Default)]
pub struct ExecResult {
    /// The TSA refused the `exec` request.
    pub refused: bool,
    pub exit_status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

struct PinnedHost(PublicKey);

impl russh::client::Handler for PinnedHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
        )
    }
}

impl Gateway {
    /// Runs one exec string on a plain SSH session (no beacon), feeding `stdin`.
    pub async fn exec_raw(&self, command: &str, stdin: &[u8]) -> ExecResult {
        self.exec_raw_with_key(&self.worker_key, command, stdin)
            .await
    }

    /// [`Gateway::exec_raw`] authenticating with `key`.
    pub async fn exec_raw_with_key(
        &self,
        key: &PrivateKey,
        command: &str,
        stdin: &[u8],
    ) -> ExecResult {
        self.exec(key, command, stdin, None).await
    }

    /// [`Gateway::exec_raw`] that sends SIGINT once stdout holds `after` (as a stopping
    /// beacon does), then reads the command's answer to its end.
    pub async fn exec_interrupted(&self, command: &str, stdin: &[u8], after: &str) -> ExecResult {
        self.exec(&self.worker_key, command, stdin, Some(after))
            .await
    }

    async fn exec(
        &self,
        key: &PrivateKey,
        command: &str,
        stdin: &[u8],
        mut interrupt_after: Option<&str>,
    ) -> ExecResult {
        use russh::ChannelMsg;
        let config = std::sync::Arc::new(russh::client::Config::default());
        let mut handle = russh::client::connect(
            config,
            self.server.tsa_addr.as_str(),
            PinnedHost(self.host_public.clone()),
        )
        .await
        .expect("connecting to the TSA");
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .expect("hash")
            .flatten();
        let auth = handle
            .authenticate_publickey(
                "beacon",
                russh::keys::PrivateKeyWithHashAlg::new(std::sync::Arc::new(key.clone()), hash),
            )
            .await
            .expect("authenticating");
        assert!(matches!(auth, russh::client::AuthResult::Success));
        let mut channel = handle.channel_open_session().await.expect("session");
        channel.exec(true, command).await.expect("exec");
        channel.data(stdin).await.expect("stdin");
        let mut result = ExecResult::default();
        let deadline = Duration::from_secs(30);
        while let Some(msg) = tokio::time::timeout(deadline, channel.wait())
            .await
            .expect("TSA answered within 30s")
        {
            match msg {
                ChannelMsg::Data { data } => {
                    result.stdout.push_str(&String::from_utf8_lossy(&data));
                    if interrupt_after.is_some_and(|a| result.stdout.contains(a)) {
                        interrupt_after = None;
                        channel.signal(russh::Sig::INT).await.expect("signal");
                    }
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    result.stderr.push_str(&String::from_utf8_lossy(&data))
                }
                ChannelMsg::ExitStatus { exit_status } => result.exit_status = Some(exit_status),
                ChannelMsg::Failure => result.refused = true,
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        result
    }
}
