//! The TSA: the SSH gateway workers register through (worker-protocols.md §3).
//!
//! It runs inside `concourse web` and talks to the [`Store`] directly instead of calling its
//! own ATC over HTTP. Workers authenticate with public keys (global or bound to a team),
//! ask for reverse tunnels (`tcpip-forward`) and run one command per session channel
//! (`forward-worker`, `land-worker`, ...). `register-worker` is our extension for workers
//! whose Garden/Baggageclaim addresses are directly reachable; it accepts only addresses on
//! the worker's own IP. Where we are stricter than upstream: team keys act only on workers
//! stored under their team, and forwards listen on `--peer-address`, not `0.0.0.0`.

mod channel;
mod connection;
pub mod drain;
mod register;

/// `register-worker`'s address check (for the fuzz targets).
#[doc(hidden)]
pub use register::check_direct_addresses;

use crate::db::Store;
use anyhow::Context as _;
use russh::keys::{PrivateKey, PublicKey};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the TSA needs besides its listener and the store.
#[derive(Clone)]
pub struct TsaConfig {
    /// `--tsa-host-key`: must be RSA (upstream offers only `rsa-sha2-*`).
    pub host_key: PrivateKey,
    /// The worker keys accepted; replaceable while running (SIGHUP).
    pub keys: AuthorizedKeys,
    /// `--tsa-heartbeat-interval`.
    pub heartbeat_interval: Duration,
    /// `--tsa-worker-ttl`: a registration not heartbeated for this long expires (the
    /// worker goes `stalled`). Longer than the interval.
    pub worker_ttl: Duration,
    /// `--tsa-drain-timeout`: how long a landing or retiring worker waits for its builds
    /// before leaving anyway (None: as long as they run).
    pub drain_timeout: Option<Duration>,
    /// `--peer-address`: the host in rewritten `addr`/`baggageclaim_url`, and the address
    /// the forwards listen on.
    pub peer_address: String,
    /// `--tsa-garden-request-timeout`: bound on each Garden/Baggageclaim ping.
    pub garden_request_timeout: Duration,
}

/// Worker public keys by scope.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// `--tsa-authorized-keys`: keys that may register any worker.
    pub global: Vec<PublicKey>,
    /// `--tsa-team-authorized-keys TEAM:PATH`: keys bound to one team.
    pub teams: Vec<(String, Vec<PublicKey>)>,
}

/// The accepted keys, shared by every connection so a reload (SIGHUP) applies to the next
/// authentication. A `std` lock: it is never held across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys(Arc<std::sync::RwLock<KeySet>>);

impl AuthorizedKeys {
    pub fn new(keys: KeySet) -> Self {
        AuthorizedKeys(Arc::new(std::sync::RwLock::new(keys)))
    }

    pub fn replace(&self, keys: KeySet) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }

    /// The key's team: `Some(None)` for a global key, `Some(Some(team))` for a team key,
    /// None when the key is not authorized.
    fn authorize(&self, key: &PublicKey) -> Option<Option<String>> {
        let keys = self.0.read().unwrap_or_else(|p| p.into_inner());
        if keys.global.iter().any(|k| k.key_data() == key.key_data()) {
            return Some(None);
        }
        keys.teams
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k.key_data() == key.key_data()))
            .map(|(team, _)| Some(team.clone()))
    }
}

/// Reads an SSH private key (OpenSSH or PEM).
pub fn load_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    russh::keys::decode_secret_key(&text, None)
        .with_context(|| format!("parsing private key {}", path.display()))
}

/// Parses public keys in `authorized_keys` format (blank lines and `#` comments skipped).
pub fn parse_authorized_keys(text: &str) -> anyhow::Result<Vec<PublicKey>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, line)| {
            PublicKey::from_openssh(line).with_context(|| format!("key {}: invalid", i + 1))
        })
        .collect()
}

/// Parses upstream's `--tsa-team-authorized-keys-file`: a YAML list of
/// `{team: NAME, ssh_keys: [KEY, ...]}`.
pub fn parse_team_keys_yaml(text: &str) -> anyhow::Result<Vec<(String, Vec<PublicKey>)>> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(text).context("invalid YAML")?;
    let Some(doc) = docs.into_iter().next() else {
        return Ok(vec![]);
    };
    let Yaml::Array(entries) = doc else {
        anyhow::bail!("expected a list of {{team, ssh_keys}}");
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let team = entry["team"]
                .as_str()
                .with_context(|| format!("entry {}: missing team", i + 1))?;
            let keys = match &entry["ssh_keys"] {
                Yaml::Array(keys) => keys
                    .iter()
                    .map(|k| {
                        let line = k.as_str().with_context(|| {
                            format!("entry {}: ssh_keys must be strings", i + 1)
                        })?;
                        PublicKey::from_openssh(line.trim())
                            .with_context(|| format!("entry {}: invalid key", i + 1))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
                Yaml::BadValue | Yaml::Null => vec![],
                _ => anyhow::bail!("entry {}: ssh_keys must be a list", i + 1),
            };
            Ok((team.to_string(), keys))
        })
        .collect()
}

/// Reads an `authorized_keys` file.
pub fn load_authorized_keys(path: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_authorized_keys(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Serves SSH on `listener` until `shutdown` fires, then disconnects every worker and waits
/// for their tasks (forwarded connections included) to end.
pub async fn run(
    listener: TcpListener,
    config: TsaConfig,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let ssh_config = Arc::new(russh::server::Config {
        keys: vec![config.host_key.clone()],
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        // A worker keeps its connection alive every 5 s; one silent for 5 minutes is gone.
        inactivity_timeout: Some(Duration::from_secs(300)),
        ..Default::default()
    });
    let shared = Arc::new(connection::Shared {
        config,
        store,
        // No idle connections: a pooled connection through a tunnel would keep the tunnel
        // from draining when the worker disconnects.
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .context("building the TSA's HTTP client")?,
    });
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    // Small SSH packets (channel opens, window adjusts) must not wait on Nagle.
                    let _ = a.0.set_nodelay(true);
                    a
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tsa: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let conn_token = shutdown.child_token();
        let handler =
            connection::Connection::new(shared.clone(), peer, tracker.clone(), conn_token.clone());
        let ssh_config = ssh_config.clone();
        tracker.spawn(async move {
            let session = match russh::server::run_stream(ssh_config, stream, handler).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "tsa: handshake failed");
                    return;
                }
            };
            let handle = session.handle();
            tokio::pin!(session);
            tokio::select! {
                result = &mut session => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "tsa: connection ended");
                    }
                }
                _ = conn_token.cancelled() => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "shutting down".into(), String::new())
                        .await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), &mut session).await;
                }
            }
            conn_token.cancel();
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f w";

    #[test]
    fn authorized_keys_skip_comments_and_report_bad_lines() {
        let good = KEY;
        let keys = parse_authorized_keys(&format!("# c\n\n{good}\n")).expect("parses");
        assert_eq!(keys.len(), 1);
        let err = parse_authorized_keys("nonsense").expect_err("bad key");
        assert_eq!(err.to_string(), "key 1: invalid");
    }

    #[test]
    fn team_key_files_list_keys_per_team() {
        let key = KEY;
        let teams = parse_team_keys_yaml(&format!(
            "- team: main\n  ssh_keys:\n  - {key}\n- team: other\n  ssh_keys: []\n"
        ))
        .expect("parses");
        assert_eq!(teams.len(), 2);
        assert_eq!((teams[0].0.as_str(), teams[0].1.len()), ("main", 1));
        assert_eq!((teams[1].0.as_str(), teams[1].1.len()), ("other", 0));
        let err = parse_team_keys_yaml("- ssh_keys: []").expect_err("no team");
        assert_eq!(err.to_string(), "entry 1: missing team");
        assert!(parse_team_keys_yaml("team: main").is_err());
    }
}
