//! A Vault (or OpenBao) client over its HTTP API: token or auth-backend login with lazy
//! renewal, and reads from KV mounts of either version.

use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How to reach and log in to a Vault server (the `--vault-*` flags or a `vault`
/// var_source's config).
#[derive(Debug, Clone, Default)]
pub struct VaultConfig {
    pub url: String,
    pub namespace: String,
    pub client_token: String,
    /// An auth method mounted at `auth/<backend>` (e.g. `approle`); empty: the client token.
    pub auth_backend: String,
    pub auth_params: Map<String, Value>,
    /// PEM text of a CA to trust besides the system's.
    pub ca_cert_pem: Option<String>,
    /// PEM text of a client certificate and its key, for TLS (and the `cert` auth backend).
    pub client_cert_pem: Option<(String, String)>,
    pub insecure_skip_verify: bool,
    /// How long a lookup waits for a login, transient failures retried within it.
    pub login_timeout: Duration,
    /// The first and the longest wait between login attempts.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Log in again once a token is this old, however often it was renewed.
    pub backend_max_ttl: Option<Duration>,
    pub query_timeout: Duration,
}

/// Why a request failed; `Transient` ones are worth retrying.
#[derive(Debug, Clone)]
pub enum VaultError {
    Transient(String),
    Fatal(String),
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::Transient(s) | VaultError::Fatal(s) => f.write_str(s),
        }
    }
}

struct Token {
    token: String,
    /// When to renew (half the lease), None for a token that is not renewed.
    renew_at: Option<Instant>,
    renewable: bool,
    logged_in: Instant,
}

/// A KV mount: its path (`secret/`) and version (1 or 2).
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    path: String,
    version: u8,
}

pub struct VaultClient {
    config: VaultConfig,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
    mounts: std::sync::Mutex<Vec<Mount>>,
}

/// A transport failure with its causes (reqwest's own text omits the reason).
fn transport(e: reqwest::Error) -> VaultError {
    let mut why = format!("vault unreachable: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        why.push_str(&format!(": {c}"));
        cause = c.source();
    }
    VaultError::Transient(why)
}

impl VaultClient {
    pub fn new(config: VaultConfig) -> Result<VaultClient, String> {
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| format!("invalid vault url {:?}: {e}", config.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("invalid vault url {:?}: not http(s)", config.url));
        }
        if config.client_token.is_empty() && config.auth_backend.is_empty() {
            return Err("vault: must configure client token or auth backend".into());
        }
        let mut http = reqwest::Client::builder()
            .danger_accept_invalid_certs(config.insecure_skip_verify)
            .connect_timeout(config.query_timeout.min(Duration::from_secs(10)));
        if let Some(pem) = &config.ca_cert_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("vault ca cert: {e}"))?;
            http = http.add_root_certificate(cert);
        }
        if let Some((cert, key)) = &config.client_cert_pem {
            let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                .map_err(|e| format!("vault client cert/key: {e}"))?;
            http = http.identity(identity);
        }
        let http = http.build().map_err(|e| format!("vault client: {e}"))?;
        Ok(VaultClient {
            config,
            http,
            token: Mutex::new(None),
            mounts: Default::default(),
        })
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/v1/{}",
            self.config.url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut req = self.http.request(method, url);
        if !self.config.namespace.is_empty() {
            req = req.header("X-Vault-Namespace", &self.config.namespace);
        }
        req
    }

    /// Sends a request; `Ok(None)` for 404. Server errors are transient, other non-2xx
    /// fatal, with Vault's own error text.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Option<Value>, VaultError> {
        let resp = req.timeout(timeout).send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Some(value));
        }
        let errors = value["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let why = format!("vault returned {status}: {errors}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(VaultError::Transient(why))
        } else {
            Err(VaultError::Fatal(why))
        }
    }

    /// Logs in with the auth backend, or takes the client token as it is.
    async fn login(&self) -> Result<Token, VaultError> {
        if self.config.auth_backend.is_empty() {
            return Ok(Token {
                token: self.config.client_token.clone(),
                renew_at: None,
                renewable: false,
                logged_in: Instant::now(),
            });
        }
        let path = format!("auth/{}/login", self.config.auth_backend.trim_matches('/'));
        let req = self
            .request(reqwest::Method::POST, &path)
            .json(&Value::Object(self.config.auth_params.clone()));
        let body = self
            .send(req, self.config.login_timeout)
            .await
            .map_err(|e| prefix(e, "vault login"))?
            .ok_or_else(|| VaultError::Fatal(format!("vault login: no auth backend at {path}")))?;
        let auth = &body["auth"];
        let token = auth["client_token"]
            .as_str()
            .ok_or_else(|| VaultError::Fatal("vault login: no client_token in reply".into()))?;
        Ok(Token {
            token: token.to_string(),
            renew_at: lease_half(auth),
            renewable: auth["renewable"].as_bool().unwrap_or(false),
            logged_in: Instant::now(),
        })
    }

    /// Logs in, retrying transient failures with a doubling wait until the login
    /// timeout has passed (a lookup never waits longer for a token).
    async fn login_with_retry(&self) -> Result<Token, VaultError> {
        let deadline = Instant::now() + self.config.login_timeout;
        let mut wait = self.config.retry_initial.max(Duration::from_millis(10));
        loop {
            match self.login().await {
                Err(VaultError::Transient(why)) if Instant::now() + wait < deadline => {
                    tracing::debug!(why, "retrying vault login");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.config.retry_max.max(wait));
                }
                // Retried enough: the lookup's own retries must not wait for it again.
                Err(VaultError::Transient(why)) => return Err(VaultError::Fatal(why)),
                other => return other,
            }
        }
    }

    /// The token to use: renewed once half its lease has passed, a new login when
    /// renewal fails.
    async fn token(&self, fresh: bool) -> Result<String, VaultError> {
        let mut held = self.token.lock().await;
        if fresh {
            *held = None;
        }
        let too_old = |t: &Token| {
            self.config
                .backend_max_ttl
                .is_some_and(|max| t.logged_in.elapsed() >= max)
        };
        if held.as_ref().is_some_and(too_old) {
            *held = None;
        }
        if let Some(t) = held.as_mut() {
            match t.renew_at {
                Some(at) if Instant::now() >= at => {
                    if t.renewable {
                        if let Ok(renew_at) = self.renew(&t.token).await {
                            t.renew_at = renew_at;
                            return Ok(t.token.clone());
                        }
                    }
                    *held = None;
                }
                _ => return Ok(t.token.clone()),
            }
        }
        let t = self.login_with_retry().await?;
        let token = t.token.clone();
        *held = Some(t);
        Ok(token)
    }

    async fn renew(&self, token: &str) -> Result<Option<Instant>, VaultError> {
        let req = self
            .request(reqwest::Method::POST, "auth/token/renew-self")
            .header("X-Vault-Token", token)
            .json(&json!({}));
        let body = self
            .send(req, self.config.login_timeout)
            .await?
            .ok_or_else(|| VaultError::Fatal("token renewal not found".into()))?;
        Ok(lease_half(&body["auth"]))
    }

    /// A GET with the token; a token refused (expired, revoked) is replaced by a new
    /// login once when there is an auth backend to log in with.
    async fn get(&self, path: &str) -> Result<Option<Value>, VaultError> {
        let token = self.token(false).await?;
        let req = self
            .request(reqwest::Method::GET, path)
            .header("X-Vault-Token", token);
        match self.send(req, self.config.query_timeout).await {
            Err(VaultError::Fatal(why))
                if why.contains("403") && !self.config.auth_backend.is_empty() =>
            {
                let token = self.token(true).await?;
                let req = self
                    .request(reqwest::Method::GET, path)
                    .header("X-Vault-Token", token);
                self.send(req, self.config.query_timeout).await
            }
            other => other,
        }
    }

    /// The KV mount a path is under, as `vault kv` finds it; None when the server will
    /// not say (then the path is read as KV v1).
    async fn mount(&self, path: &str) -> Result<Option<Mount>, VaultError> {
        let path = path.trim_start_matches('/');
        let known = self
            .lock_mounts()
            .iter()
            .find(|m| path.starts_with(&m.path))
            .cloned();
        if known.is_some() {
            return Ok(known);
        }
        let found = match self.get(&format!("sys/internal/ui/mounts/{path}")).await {
            Ok(Some(v)) => v,
            Ok(None) | Err(VaultError::Fatal(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let data = &found["data"];
        let Some(mount_path) = data["path"].as_str().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let version = match &data["options"]["version"] {
            Value::String(s) if s == "2" => 2,
            _ => 1,
        };
        let m = Mount {
            path: mount_path.to_string(),
            version,
        };
        self.lock_mounts().push(m.clone());
        Ok(Some(m))
    }

    fn lock_mounts(&self) -> std::sync::MutexGuard<'_, Vec<Mount>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A secret's key/value data at `path` (KV v1 or v2); None when there is none.
    pub async fn read(&self, path: &str) -> Result<Option<Map<String, Value>>, VaultError> {
        let path = path.trim_start_matches('/');
        let (api_path, v2) = match self.mount(path).await? {
            Some(m) if m.version == 2 => (kv2_data_path(&m.path, path), true),
            _ => (path.to_string(), false),
        };
        let Some(body) = self.get(&api_path).await? else {
            return Ok(None);
        };
        let data = if v2 {
            &body["data"]["data"]
        } else {
            &body["data"]
        };
        Ok(data.as_object().cloned())
    }

    /// `GET /v1/sys/health` (needs no token); Vault answers non-2xx codes for standby or
    /// sealed servers, with the state in the body either way.
    pub async fn health(&self) -> Result<Value, String> {
        let resp = self
            .request(reqwest::Method::GET, "sys/health")
            .timeout(self.config.query_timeout)
            .send()
            .await
            .map_err(|e| format!("vault unreachable: {e}"))?;
        resp.json().await.map_err(|e| format!("vault health: {e}"))
    }
}

fn prefix(e: VaultError, what: &str) -> VaultError {
    match e {
        VaultError::Transient(s) => VaultError::Transient(format!("{what}: {s}")),
        VaultError::Fatal(s) => VaultError::Fatal(format!("{what}: {s}")),
    }
}

/// When to renew a token with this `auth` block: at half its lease (None: never expires).
fn lease_half(auth: &Value) -> Option<Instant> {
    let secs = auth["lease_duration"].as_u64().filter(|s| *s > 0)?;
    Some(Instant::now() + Duration::from_millis(secs * 500))
}

/// KV v2 keeps a secret's data under `<mount>data/<rest>`.
fn kv2_data_path(mount: &str, path: &str) -> String {
    let rest = path.strip_prefix(mount).unwrap_or(path);
    format!("{mount}data/{}", rest.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv2_paths_put_data_after_the_mount() {
        assert_eq!(
            kv2_data_path("concourse/", "concourse/main/pipe/foo"),
            "concourse/data/main/pipe/foo"
        );
        assert_eq!(kv2_data_path("kv/team/", "kv/team/foo"), "kv/team/data/foo");
    }

    #[test]
    fn config_needs_a_url_and_a_way_to_log_in() {
        let c = |url: &str, token: &str| VaultConfig {
            url: url.into(),
            client_token: token.into(),
            ..Default::default()
        };
        let err = |c| VaultClient::new(c).err().unwrap_or_default();
        assert!(err(c("not a url", "t")).contains("invalid vault url"));
        assert!(err(c("ftp://x", "t")).contains("not http(s)"));
        assert!(err(c("http://127.0.0.1:1", "")).contains("client token or auth backend"));
        assert!(VaultClient::new(c("http://127.0.0.1:1", "t")).is_ok());
    }
}
