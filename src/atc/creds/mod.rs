//! Credential managers: where `((var))`s that no local var or `dummy`/`idtoken` var source
//! defines come from. Vault (or OpenBao) cluster-wide (`--vault-*`) and as the `vault`
//! var_source type; lookups are cached and retried as upstream's `--secret-*` flags say.
//!
//! Interpolation is synchronous, so a step's vars are fetched up front
//! ([`Creds::fetch`]) and handed to it as plain values.

pub mod flags;
pub mod vault;

use crate::config::vars::{var_names, Reference};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vault::{VaultClient, VaultConfig, VaultError};

/// One piece of a lookup template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Team,
    Pipeline,
    Secret,
}

/// A lookup path template such as `/concourse/{{.Team}}/{{.Secret}}` (upstream renders
/// these with Go templates; only the three fields are meaningful).
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut pieces = vec![];
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| format!("lookup template {s:?}: unclosed {{{{"))?;
            let field = rest[open + 2..open + close].trim();
            pieces.push(match field {
                ".Team" => Piece::Team,
                ".Pipeline" => Piece::Pipeline,
                ".Secret" => Piece::Secret,
                other => {
                    return Err(format!(
                        "lookup template {s:?}: unknown field {other:?} (use .Team, .Pipeline, .Secret)"
                    ))
                }
            });
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        if !pieces.contains(&Piece::Secret) {
            return Err(format!(
                "lookup template {s:?}: must contain {{{{.Secret}}}}"
            ));
        }
        Ok(Template(pieces))
    }

    /// The path for a secret; None when the template needs a pipeline and there is none
    /// (one-off builds), as upstream skips it then.
    pub fn render(&self, team: &str, pipeline: &str, secret: &str) -> Option<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Team => out.push_str(team),
                Piece::Pipeline if pipeline.is_empty() => return None,
                Piece::Pipeline => out.push_str(pipeline),
                Piece::Secret => out.push_str(secret),
            }
        }
        Some(clean_path(&out))
    }
}

/// `path.Join`-like: one slash between segments, none trailing.
fn clean_path(p: &str) -> String {
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segs.join("/"))
}

/// Where a Vault's secrets are looked up: prefix, templates, shared path.
pub struct VaultSecrets {
    pub client: VaultClient,
    pub path_prefix: String,
    pub lookup_templates: Vec<String>,
    templates: Vec<Template>,
    pub shared_path: String,
    /// `vault` var sources also look directly under the prefix (upstream's root path).
    root_path: bool,
}

impl VaultSecrets {
    pub fn new(
        client: VaultClient,
        path_prefix: &str,
        lookup_templates: &[String],
        shared_path: &str,
        root_path: bool,
    ) -> Result<VaultSecrets, String> {
        if path_prefix.is_empty() {
            return Err("vault: path prefix must be a non-empty string".into());
        }
        let templates = lookup_templates
            .iter()
            .map(|t| Template::parse(&format!("{path_prefix}/{t}")))
            .collect::<Result<_, _>>()?;
        Ok(VaultSecrets {
            client,
            path_prefix: path_prefix.to_string(),
            lookup_templates: lookup_templates.to_vec(),
            templates,
            shared_path: shared_path.to_string(),
            root_path,
        })
    }

    /// The paths a secret is looked up at, in order: each template, the shared path, the
    /// prefix itself (var sources only).
    pub fn lookup_paths(&self, team: &str, pipeline: &str, secret: &str) -> Vec<String> {
        let mut paths: Vec<String> = self
            .templates
            .iter()
            .filter_map(|t| t.render(team, pipeline, secret))
            .collect();
        if !self.shared_path.is_empty() {
            paths.push(clean_path(&format!(
                "{}/{}/{secret}",
                self.path_prefix, self.shared_path
            )));
        }
        if self.root_path {
            paths.push(clean_path(&format!("{}/{secret}", self.path_prefix)));
        }
        paths
    }
}

/// `--secret-cache-*` and `--secret-retry-*`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub cache: Option<(Duration, Duration)>,
    pub retry_attempts: u32,
    pub retry_interval: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            cache: None,
            retry_attempts: 5,
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// A secret's data (None: not found) and when the cached entry expires.
type Cached = (Option<Map<String, Value>>, Instant);

/// A Vault with its cache and retry policy.
pub struct Manager {
    pub secrets: VaultSecrets,
    policy: Policy,
    /// Path → (the secret's data or None for not found, when it expires).
    cache: Mutex<HashMap<String, Cached>>,
}

impl Manager {
    pub fn new(secrets: VaultSecrets, policy: Policy) -> Manager {
        Manager {
            secrets,
            policy,
            cache: Mutex::default(),
        }
    }

    /// One path, through the cache, retried on transient errors.
    async fn read(&self, path: &str) -> Result<Option<Map<String, Value>>, String> {
        if self.policy.cache.is_some() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((v, until)) = cache.get(path) {
                if Instant::now() < *until {
                    return Ok(v.clone());
                }
            }
        }
        let mut attempt = 1;
        let found = loop {
            match self.secrets.client.read(path).await {
                Ok(v) => break v,
                Err(VaultError::Transient(why)) if attempt < self.policy.retry_attempts => {
                    tracing::debug!(path, attempt, why, "retrying vault read");
                    attempt += 1;
                    tokio::time::sleep(self.policy.retry_interval).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        if let Some((ttl, ttl_not_found)) = self.policy.cache {
            let ttl = if found.is_some() { ttl } else { ttl_not_found };
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Expired entries go once there are many (upstream purges on an interval).
            if cache.len() >= 4096 {
                let now = Instant::now();
                cache.retain(|_, (_, until)| *until > now);
            }
            cache.insert(path.to_string(), (found.clone(), Instant::now() + ttl));
        }
        Ok(found)
    }

    /// A var's value: the `value` field of the first secret found, or the whole secret
    /// when it has no `value` field (its fields are then selected as `((path.field))`).
    pub async fn lookup(
        &self,
        team: &str,
        pipeline: &str,
        secret: &str,
    ) -> Result<Option<Value>, String> {
        for path in self.secrets.lookup_paths(team, pipeline, secret) {
            if let Some(mut data) = self.read(&path).await? {
                return Ok(Some(data.remove("value").unwrap_or(Value::Object(data))));
            }
        }
        Ok(None)
    }

    /// `GET /api/v1/info/creds`'s entry: the settings (no token, no auth params) and
    /// the server's health.
    pub async fn info(&self) -> Value {
        let c = self.secrets.client.config();
        let health = match self.secrets.client.health().await {
            Ok(r) => json!({"response": r, "method": "/v1/sys/health"}),
            Err(e) => json!({"error": e, "method": "/v1/sys/health"}),
        };
        json!({
            "url": c.url,
            "path_prefix": self.secrets.path_prefix,
            "lookup_templates": self.secrets.lookup_templates,
            "shared_path": self.secrets.shared_path,
            "namespace": c.namespace,
            "ca_cert": c.ca_cert_pem.clone().unwrap_or_default(),
            "auth_backend": c.auth_backend,
            "health": health,
        })
    }
}

/// The engine's credential managers: the cluster's and those of `vault` var sources
/// (kept by their config, so their logins are reused across builds).
#[derive(Default)]
pub struct Creds {
    pub cluster: Option<Arc<Manager>>,
    sources: Mutex<HashMap<String, Arc<Manager>>>,
}

/// Whom a build's vars are for.
pub struct Owner<'a> {
    pub team: &'a str,
    pub pipeline: &'a str,
}

impl Creds {
    pub fn new(cluster: Option<Manager>) -> Creds {
        Creds {
            cluster: cluster.map(Arc::new),
            sources: Mutex::default(),
        }
    }

    /// The values of the credential-manager vars in `config`, by `source:path` (or
    /// `path` for the cluster manager), before any field is selected. A var no manager
    /// has is left out (interpolation reports it undefined); a manager that fails is an
    /// error naming the var.
    pub async fn fetch(
        &self,
        var_sources: &[Value],
        owner: &Owner<'_>,
        config: &Value,
    ) -> Result<HashMap<String, Value>, String> {
        let mut refs = BTreeSet::new();
        collect_refs(config, &mut refs);
        let mut out = self
            .cluster_values(owner, refs.iter().filter(|r| r.source.is_empty()))
            .await?;
        for r in refs.iter().filter(|r| !r.source.is_empty()) {
            let Some(source) = var_sources.iter().find(|v| {
                v["name"].as_str() == Some(&r.source) && v["type"].as_str() == Some("vault")
            }) else {
                continue;
            };
            let config = source.get("config").unwrap_or(&Value::Null);
            let config = self.resolve(&r.source, owner, config).await?;
            let found = self
                .var_source(&r.source, &config)?
                .lookup(owner.team, owner.pipeline, &r.path)
                .await
                .map_err(|e| format!("failed to fetch var '{r}': {e}"))?;
            if let Some(v) = found {
                out.insert(r.identifier(), v);
            }
        }
        Ok(out)
    }

    async fn cluster_values(
        &self,
        owner: &Owner<'_>,
        refs: impl Iterator<Item = &Reference>,
    ) -> Result<HashMap<String, Value>, String> {
        let mut out = HashMap::new();
        let Some(m) = &self.cluster else {
            return Ok(out);
        };
        for r in refs {
            let found = m
                .lookup(owner.team, owner.pipeline, &r.path)
                .await
                .map_err(|e| format!("failed to fetch var '{r}': {e}"))?;
            if let Some(v) = found {
                out.insert(r.identifier(), v);
            }
        }
        Ok(out)
    }

    /// A var source's config with its `((vars))` from the cluster's manager (as upstream,
    /// e.g. `client_token: ((vault-token))`).
    async fn resolve(
        &self,
        name: &str,
        owner: &Owner<'_>,
        config: &Value,
    ) -> Result<Value, String> {
        let mut refs = BTreeSet::new();
        collect_refs(config, &mut refs);
        if refs.is_empty() {
            return Ok(config.clone());
        }
        let values: Map<String, Value> = self
            .cluster_values(owner, refs.iter().filter(|r| r.source.is_empty()))
            .await?
            .into_iter()
            .collect();
        crate::config::vars::interpolate(config, &values, true)
            .map_err(|e| format!("var source '{name}': {e}"))
    }

    fn var_source(&self, name: &str, config: &Value) -> Result<Arc<Manager>, String> {
        let key = config.to_string();
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = sources.get(&key) {
            return Ok(m.clone());
        }
        let m =
            Arc::new(var_source_manager(config).map_err(|e| format!("var source '{name}': {e}"))?);
        sources.insert(key, m.clone());
        Ok(m)
    }
}

/// Every `((var))` reference in strings and keys of a value.
fn collect_refs(v: &Value, out: &mut BTreeSet<Reference>) {
    fn strings(s: &str, out: &mut BTreeSet<Reference>) {
        out.extend(var_names(s).iter().filter_map(|n| Reference::parse(n).ok()));
    }
    match v {
        Value::String(s) => strings(s, out),
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        Value::Object(m) => {
            for (k, v) in m {
                strings(k, out);
                collect_refs(v, out);
            }
        }
        _ => {}
    }
}

/// A `vault` var source's config (upstream's keys: url, path_prefix, lookup_templates,
/// shared_path, namespace, client_token, auth_backend, auth_params, ca_cert, client_cert,
/// client_key, insecure_skip_verify, login_timeout, query_timeout, auth_backend_max_ttl,
/// auth_retry_max, auth_retry_initial; PEM text, not paths).
pub fn var_source_manager(config: &Value) -> Result<Manager, String> {
    let obj = config.as_object().ok_or("config must be a map")?;
    const KNOWN: &[&str] = &[
        "url",
        "path_prefix",
        "lookup_templates",
        "shared_path",
        "namespace",
        "client_token",
        "auth_backend",
        "auth_params",
        "ca_cert",
        "client_cert",
        "client_key",
        "insecure_skip_verify",
        "login_timeout",
        "query_timeout",
        "auth_backend_max_ttl",
        "auth_retry_max",
        "auth_retry_initial",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("unknown vault config key '{k}'"));
    }
    let s = |k: &str| -> Result<String, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("vault config '{k}' must be a string")),
        }
    };
    let dur_or = |k: &str, default: Duration| -> Result<Duration, String> {
        match s(k)?.as_str() {
            "" => Ok(default),
            d => crate::config::parse_duration(d).map_err(|e| format!("vault config '{k}': {e}")),
        }
    };
    let dur = |k: &str| dur_or(k, Duration::from_secs(60));
    let templates = match obj.get("lookup_templates") {
        None | Some(Value::Null) => default_templates(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("vault config 'lookup_templates' must be a list of strings")?,
        Some(_) => return Err("vault config 'lookup_templates' must be a list".into()),
    };
    let auth_params = match obj.get("auth_params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("vault config 'auth_params' must be a map".into()),
    };
    let client = VaultClient::new(VaultConfig {
        url: s("url")?,
        namespace: s("namespace")?,
        client_token: s("client_token")?,
        auth_backend: s("auth_backend")?,
        auth_params,
        ca_cert_pem: Some(s("ca_cert")?).filter(|c| !c.is_empty()),
        client_cert_pem: match (s("client_cert")?, s("client_key")?) {
            (c, k) if c.is_empty() && k.is_empty() => None,
            (c, k) if c.is_empty() || k.is_empty() => {
                return Err("vault config needs both 'client_cert' and 'client_key'".into())
            }
            (c, k) => Some((c, k)),
        },
        insecure_skip_verify: obj
            .get("insecure_skip_verify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        login_timeout: dur("login_timeout")?,
        query_timeout: dur("query_timeout")?,
        retry_initial: dur_or("auth_retry_initial", Duration::from_secs(1))?,
        retry_max: dur_or("auth_retry_max", Duration::from_secs(300))?,
        backend_max_ttl: Some(dur_or("auth_backend_max_ttl", Duration::ZERO)?)
            .filter(|d| !d.is_zero()),
    })?;
    let prefix = match s("path_prefix")?.as_str() {
        "" => "/concourse".to_string(),
        p => p.to_string(),
    };
    let secrets = VaultSecrets::new(client, &prefix, &templates, &s("shared_path")?, true)?;
    Ok(Manager::new(secrets, Policy::default()))
}

pub fn default_templates() -> Vec<String> {
    vec![
        "/{{.Team}}/{{.Pipeline}}/{{.Secret}}".into(),
        "/{{.Team}}/{{.Secret}}".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(shared: &str, root: bool) -> VaultSecrets {
        let client = VaultClient::new(VaultConfig {
            url: "http://127.0.0.1:1".into(),
            client_token: "t".into(),
            ..Default::default()
        })
        .expect("client");
        VaultSecrets::new(client, "/concourse", &default_templates(), shared, root)
            .expect("secrets")
    }

    #[test]
    fn templates_render_the_three_fields() {
        let t = Template::parse("/concourse/{{.Team}}/{{ .Pipeline }}/{{.Secret}}").expect("ok");
        assert_eq!(
            t.render("main", "p", "foo").as_deref(),
            Some("/concourse/main/p/foo")
        );
        assert_eq!(t.render("main", "", "foo"), None, "needs a pipeline");
        let t = Template::parse("/x//{{.Team}}-{{.Secret}}/").expect("ok");
        assert_eq!(t.render("a", "", "b").as_deref(), Some("/x/a-b"));
    }

    #[test]
    fn bad_templates_name_the_problem() {
        let e = Template::parse("/{{.Team}}/{{.Bogus}}").unwrap_err();
        assert!(e.contains("unknown field \".Bogus\""), "{e}");
        assert!(Template::parse("/{{.Team}}")
            .unwrap_err()
            .contains(".Secret"));
        assert!(Template::parse("/{{.Team")
            .unwrap_err()
            .contains("unclosed"));
    }

    #[test]
    fn lookup_order_is_pipeline_team_shared_then_root() {
        assert_eq!(
            secrets("shared", true).lookup_paths("main", "p", "foo"),
            [
                "/concourse/main/p/foo",
                "/concourse/main/foo",
                "/concourse/shared/foo",
                "/concourse/foo"
            ]
        );
        assert_eq!(
            secrets("", false).lookup_paths("main", "", "foo"),
            ["/concourse/main/foo"]
        );
    }

    #[test]
    fn refs_are_collected_from_strings_and_keys() {
        let mut refs = BTreeSet::new();
        collect_refs(
            &json!({"((k))": ["a ((s:p.f)) b", {"x": "((.:local))"}], "n": 1}),
            &mut refs,
        );
        let ids: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        assert_eq!(ids, ["k", ".:local", "s:p.f"]);
    }

    #[test]
    fn var_source_config_is_checked() {
        let e = |c: Value| var_source_manager(&c).err().unwrap_or_default();
        assert!(e(json!({"url": "http://x", "client_token": "t", "bogus": 1})).contains("'bogus'"));
        assert!(e(json!({"url": "http://x"})).contains("client token or auth backend"));
        assert!(e(json!({"url": "http://x", "client_token": 3})).contains("'client_token'"));
        assert!(var_source_manager(&json!({"url": "http://x", "client_token": "t"})).is_ok());
    }
}
