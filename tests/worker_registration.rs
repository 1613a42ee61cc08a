//! `concourse web` and `concourse worker` as separate processes: the worker registers
//! through the TSA over real SSH (tunnelled, or directly with `--peer-address`), and
//! `concourse land-worker` lands it; the worker process then exits on its own.

mod common;

use common::{Backend, Server};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().expect("temp");
        let out = Command::new(common::bin())
            .args(["generate-key", "-t", "ssh", "-b", "2048", "-f"])
            .arg(dir.path().join("worker_key"))
            .output()
            .expect("generate-key");
        assert!(out.status.success(), "{}", common::stderr(&out));
        Keys { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// The web node's generated host key, as the worker's `--tsa-public-key`.
fn tsa_public_key(server: &Server, keys: &Keys) -> String {
    let host_key = server.dir.path().join("data/tsa_host_key");
    let private = ssh_key::PrivateKey::read_openssh_file(&host_key)
        .or_else(|_| {
            let pem = std::fs::read_to_string(&host_key).expect("host key");
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).expect("an RSA host key");
            Ok::<_, ssh_key::Error>(ssh_key::PrivateKey::from(
                ssh_key::private::RsaKeypair::try_from(rsa).expect("keypair"),
            ))
        })
        .expect("host key");
    let path = keys.path("tsa.pub");
    std::fs::write(
        &path,
        format!("{}\n", private.public_key().to_openssh().expect("openssh")),
    )
    .expect("write");
    path
}

fn start_worker(
    server: &Server,
    keys: &Keys,
    name: &str,
    work_dir: &Path,
    extra: &[&str],
) -> Child {
    Command::new(common::bin())
        .args([
            "worker",
            "--name",
            name,
            "--runtime",
            "process",
            "--bind-port",
            "0",
            "--baggageclaim-bind-port",
            "0",
        ])
        .arg("--work-dir")
        .arg(work_dir)
        .args([
            "--tsa-host",
            &server.tsa_addr,
            "--tsa-public-key",
            &tsa_public_key(server, keys),
        ])
        .args(["--tsa-worker-private-key", &keys.path("worker_key")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start worker")
}

async fn worker(server: &Server, token: &str, name: &str) -> Option<Value> {
    let all: Value = reqwest::Client::new()
        .get(server.api("/api/v1/workers"))
        .bearer_auth(token)
        .send()
        .await
        .expect("workers")
        .json()
        .await
        .expect("json");
    all.as_array()?.iter().find(|w| w["name"] == name).cloned()
}

async fn eventually_state(server: &Server, token: &str, name: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let w = worker(server, token, name).await;
        if w.as_ref().is_some_and(|w| w["state"] == state) {
            return w.expect("worker");
        }
        assert!(
            Instant::now() < deadline,
            "worker {name} never became {state}; last seen {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn registers_lands_and_exits(backend: Backend) {
    let keys = Keys::new();
    let pub_key = keys.path("worker_key.pub");
    let server = Server::start_with(
        backend,
        &[
            "--tsa-authorized-keys",
            &pub_key,
            "--tsa-heartbeat-interval",
            "1s",
            "--gc-interval",
            "1s",
        ],
    );
    let token = server.token("test", "test").await;
    let work = tempfile::tempdir().expect("temp");

    let mut tunnelled = start_worker(&server, &keys, "tunnelled", &work.path().join("a"), &[]);
    let w = eventually_state(&server, &token, "tunnelled", "running").await;
    // The address is the web node's end of the tunnel, and it reaches the worker's Garden.
    let addr = w["addr"].as_str().expect("addr").to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let ping = reqwest::get(format!("http://{addr}/ping"))
        .await
        .expect("ping through the tunnel");
    assert_eq!(ping.status(), 200);
    let volumes = reqwest::get(format!(
        "{}/volumes",
        w["baggageclaim_url"].as_str().expect("url")
    ))
    .await
    .expect("volumes");
    assert_eq!(volumes.status(), 200);

    let mut direct = start_worker(
        &server,
        &keys,
        "direct",
        &work.path().join("b"),
        &["--peer-address", "127.0.0.1"],
    );
    let d = eventually_state(&server, &token, "direct", "running").await;
    let direct_addr = d["addr"].as_str().expect("addr").to_string();
    assert_eq!(
        reqwest::get(format!("http://{direct_addr}/ping"))
            .await
            .expect("ping")
            .status(),
        200
    );

    let out = Command::new(common::bin())
        .args([
            "land-worker",
            "--name",
            "tunnelled",
            "--tsa-host",
            &server.tsa_addr,
        ])
        .args([
            "--tsa-public-key",
            &tsa_public_key(&server, &keys),
            "--tsa-worker-private-key",
            &keys.path("worker_key"),
        ])
        .output()
        .expect("land-worker");
    assert!(out.status.success(), "{}", common::stderr(&out));
    eventually_state(&server, &token, "tunnelled", "landed").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tunnelled.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "a landed worker exits");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The signals upstream uses: SIGUSR1 lands the worker, SIGUSR2 retires it (its row
    // goes); either way the process exits once drained.
    for (name, sig) in [("usr1", libc::SIGUSR1), ("usr2", libc::SIGUSR2)] {
        let mut child = start_worker(&server, &keys, name, &work.path().join(name), &[]);
        eventually_state(&server, &token, name, "running").await;
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "{name}: a drained worker exits");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let row = worker(&server, &token, name).await;
        if sig == libc::SIGUSR1 {
            assert_eq!(row.expect("landed row")["state"], "landed");
        } else {
            assert!(row.is_none(), "a retired worker is deleted: {row:?}");
        }
    }

    // A worker that stops heartbeating stalls.
    let _ = direct.kill();
    let _ = direct.wait();
    eventually_state(&server, &token, "direct", "stalled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_register_land_and_stall_on_the_embedded_store() {
    registers_lands_and_exits(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_register_land_and_stall_on_postgres() {
    if let Some(b) = Backend::postgres("worker_registration") {
        registers_lands_and_exits(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_registers_its_in_process_worker() {
    let server = Server::quickstart(Backend::Embedded);
    let token = server.token("test", "test").await;
    let all: Value = reqwest::Client::new()
        .get(server.api("/api/v1/workers"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("workers")
        .json()
        .await
        .expect("json");
    let workers = all.as_array().expect("array");
    assert_eq!(workers.len(), 1, "{all}");
    assert_eq!(workers[0]["state"], "running");
    assert_eq!(workers[0]["addr"], "in-process:garden");
    let types: Vec<&str> = workers[0]["resource_types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["type"].as_str())
        .collect();
    assert_eq!(types, vec!["mock", "time", "git", "registry-image"]);
}
