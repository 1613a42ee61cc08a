//! `concourse web`'s credential manager flags (upstream's names, defaults and env vars).

use super::vault::{VaultClient, VaultConfig};
use super::{Manager, Policy, VaultSecrets};
use anyhow::{bail, Context};
use clap::Args;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

fn duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}

#[derive(Debug, Clone, Args)]
pub struct CredsArgs {
    /// Vault server address used to access secrets.
    #[arg(long, env = "CONCOURSE_VAULT_URL")]
    pub vault_url: Option<String>,
    /// Path under which to namespace credential lookup.
    #[arg(
        long,
        env = "CONCOURSE_VAULT_PATH_PREFIX",
        default_value = "/concourse"
    )]
    pub vault_path_prefix: String,
    /// Path templates for credential lookup, tried in order.
    #[arg(
        long,
        env = "CONCOURSE_VAULT_LOOKUP_TEMPLATES",
        value_delimiter = ',',
        default_values = ["/{{.Team}}/{{.Pipeline}}/{{.Secret}}", "/{{.Team}}/{{.Secret}}"]
    )]
    pub vault_lookup_templates: Vec<String>,
    /// Path under which to lookup shared credentials (after the templates).
    #[arg(long, env = "CONCOURSE_VAULT_SHARED_PATH", default_value = "")]
    pub vault_shared_path: String,
    /// Vault namespace to use for authentication and secret lookup.
    #[arg(long, env = "CONCOURSE_VAULT_NAMESPACE", default_value = "")]
    pub vault_namespace: String,
    /// Timeout value for Vault login.
    #[arg(long, env = "CONCOURSE_VAULT_LOGIN_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub vault_login_timeout: Duration,
    /// Timeout value for Vault query.
    #[arg(long, env = "CONCOURSE_VAULT_QUERY_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub vault_query_timeout: Duration,
    /// Path to a PEM-encoded CA cert file to use to verify the vault server SSL cert.
    #[arg(long, env = "CONCOURSE_VAULT_CA_CERT")]
    pub vault_ca_cert: Option<PathBuf>,
    /// Path to the client certificate for Vault authorization (TLS, `cert` backend).
    #[arg(
        long,
        env = "CONCOURSE_VAULT_CLIENT_CERT",
        requires = "vault_client_key"
    )]
    pub vault_client_cert: Option<PathBuf>,
    /// Path to the client private key for Vault authorization.
    #[arg(
        long,
        env = "CONCOURSE_VAULT_CLIENT_KEY",
        requires = "vault_client_cert"
    )]
    pub vault_client_key: Option<PathBuf>,
    /// Enable insecure SSL verification.
    #[arg(long, env = "CONCOURSE_VAULT_INSECURE_SKIP_VERIFY")]
    pub vault_insecure_skip_verify: bool,
    /// Client token for accessing secrets within the Vault server.
    #[arg(long, env = "CONCOURSE_VAULT_CLIENT_TOKEN", hide_env_values = true)]
    pub vault_client_token: Option<String>,
    /// Auth backend to use for logging in to Vault (e.g. approle).
    #[arg(long, env = "CONCOURSE_VAULT_AUTH_BACKEND", default_value = "")]
    pub vault_auth_backend: String,
    /// Time after which to force a re-login. If not set, the token will just be
    /// continuously renewed.
    #[arg(long, env = "CONCOURSE_VAULT_AUTH_BACKEND_MAX_TTL", value_parser = duration)]
    pub vault_auth_backend_max_ttl: Option<Duration>,
    /// The maximum time between retries when logging in.
    #[arg(long, env = "CONCOURSE_VAULT_RETRY_MAX", default_value = "5m", value_parser = duration)]
    pub vault_retry_max: Duration,
    /// The initial time between retries when logging in.
    #[arg(long, env = "CONCOURSE_VAULT_RETRY_INITIAL", default_value = "1s", value_parser = duration)]
    pub vault_retry_initial: Duration,
    /// Parameter to pass when logging in via the backend (NAME:VALUE, repeatable or
    /// comma-separated).
    #[arg(
        long,
        env = "CONCOURSE_VAULT_AUTH_PARAM",
        value_delimiter = ',',
        value_name = "NAME:VALUE",
        hide_env_values = true
    )]
    pub vault_auth_param: Vec<String>,
    /// Enable in-memory cache for secrets.
    #[arg(long, env = "CONCOURSE_SECRET_CACHE_ENABLED")]
    pub secret_cache_enabled: bool,
    /// If the cache is enabled, secret values will be cached for not longer than this.
    #[arg(long, env = "CONCOURSE_SECRET_CACHE_DURATION", default_value = "1m", value_parser = duration)]
    pub secret_cache_duration: Duration,
    /// If the cache is enabled, secret not found responses will be cached for this long.
    #[arg(long, env = "CONCOURSE_SECRET_CACHE_DURATION_NOTFOUND", default_value = "10s", value_parser = duration)]
    pub secret_cache_duration_notfound: Duration,
    /// The number of attempts secret will be retried to be fetched, in case a retryable
    /// error happens.
    #[arg(long, env = "CONCOURSE_SECRET_RETRY_ATTEMPTS", default_value_t = 5)]
    pub secret_retry_attempts: u32,
    /// The interval between secret retry retrieval attempts.
    #[arg(long, env = "CONCOURSE_SECRET_RETRY_INTERVAL", default_value = "1s", value_parser = duration)]
    pub secret_retry_interval: Duration,
}

impl CredsArgs {
    /// The cluster's credential manager; None without `--vault-url`.
    pub fn manager(&self) -> anyhow::Result<Option<Manager>> {
        let Some(url) = self.vault_url.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let mut auth_params = Map::new();
        for p in &self.vault_auth_param {
            let Some((k, v)) = p.split_once(':') else {
                bail!("--vault-auth-param {p:?}: expected NAME:VALUE");
            };
            auth_params.insert(k.to_string(), Value::String(v.to_string()));
        }
        let ca_cert_pem = match &self.vault_ca_cert {
            None => None,
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("--vault-ca-cert {}", p.display()))?,
            ),
        };
        let read = |flag: &str, p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("{flag} {}", p.display()))
        };
        let client_cert_pem = match (&self.vault_client_cert, &self.vault_client_key) {
            (Some(c), Some(k)) => Some((
                read("--vault-client-cert", c)?,
                read("--vault-client-key", k)?,
            )),
            _ => None,
        };
        let client = VaultClient::new(VaultConfig {
            url,
            namespace: self.vault_namespace.clone(),
            client_token: self.vault_client_token.clone().unwrap_or_default(),
            auth_backend: self.vault_auth_backend.clone(),
            auth_params,
            ca_cert_pem,
            client_cert_pem,
            insecure_skip_verify: self.vault_insecure_skip_verify,
            login_timeout: self.vault_login_timeout,
            retry_initial: self.vault_retry_initial,
            retry_max: self.vault_retry_max,
            backend_max_ttl: self.vault_auth_backend_max_ttl.filter(|d| !d.is_zero()),
            query_timeout: self.vault_query_timeout,
        })
        .map_err(anyhow::Error::msg)?;
        let secrets = VaultSecrets::new(
            client,
            &self.vault_path_prefix,
            &self.vault_lookup_templates,
            &self.vault_shared_path,
            false,
        )
        .map_err(anyhow::Error::msg)?;
        if self.secret_retry_attempts == 0 {
            bail!("--secret-retry-attempts must be at least 1");
        }
        let policy = Policy {
            cache: self.secret_cache_enabled.then_some((
                self.secret_cache_duration,
                self.secret_cache_duration_notfound,
            )),
            retry_attempts: self.secret_retry_attempts,
            retry_interval: self.secret_retry_interval,
        };
        Ok(Some(Manager::new(secrets, policy)))
    }
}
