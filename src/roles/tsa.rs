//! Wiring of the TSA into `concourse web`: keys from flags (or a host key generated once
//! into the data dir), the SSH listener, and the worker collector.

use crate::cli::{PostgresArgs, TsaArgs};
use crate::config::parse_duration;
use crate::tsa::{self, AuthorizedKeys, KeySet, TsaConfig};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

fn duration(flag: &str, value: &str) -> anyhow::Result<Duration> {
    parse_duration(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("invalid --{flag} '{value}'"))
}

pub fn gc_interval(args: &TsaArgs) -> anyhow::Result<Duration> {
    duration("gc-interval", &args.gc_interval)
}

/// The TSA configuration the flags describe.
pub fn config(args: &TsaArgs, store_args: &PostgresArgs) -> anyhow::Result<TsaConfig> {
    let host_key_path = match &args.tsa_host_key {
        Some(path) => path.clone(),
        None => generated_host_key(&store_args.data_dir)?,
    };
    let host_key = tsa::load_private_key(&host_key_path)?;
    if !matches!(host_key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
        anyhow::bail!(
            "--tsa-host-key {}: the TSA host key must be RSA",
            host_key_path.display()
        );
    }
    let key_files = KeyFiles::from_args(args)?;
    if key_files.global.is_none() && key_files.teams.is_empty() && key_files.team_file.is_none() {
        tracing::warn!("no --tsa-authorized-keys: the TSA refuses every worker key");
    }
    let keys = AuthorizedKeys::new(key_files.load()?);
    let (heartbeat_interval, worker_ttl, drain_timeout) = worker_timings(args)?;
    Ok(TsaConfig {
        host_key,
        keys,
        heartbeat_interval,
        worker_ttl,
        drain_timeout,
        peer_address: args.peer_address.clone(),
        garden_request_timeout: duration(
            "tsa-garden-request-timeout",
            &args.tsa_garden_request_timeout,
        )?,
    })
}

/// Heartbeat interval, registration TTL (twice the interval unless given; it must be
/// longer, or a healthy worker would stall between heartbeats) and drain timeout.
pub fn worker_timings(args: &TsaArgs) -> anyhow::Result<(Duration, Duration, Option<Duration>)> {
    let interval = duration("tsa-heartbeat-interval", &args.tsa_heartbeat_interval)?;
    let ttl = match &args.tsa_worker_ttl {
        Some(ttl) => duration("tsa-worker-ttl", ttl)?,
        None => interval * 2,
    };
    if ttl <= interval {
        anyhow::bail!(
            "--tsa-worker-ttl ({ttl:?}) must be longer than --tsa-heartbeat-interval ({interval:?})"
        );
    }
    let drain = parse_duration(&args.tsa_drain_timeout)
        .map_err(|_| anyhow::anyhow!("invalid --tsa-drain-timeout '{}'", args.tsa_drain_timeout))?;
    Ok((interval, ttl, (!drain.is_zero()).then_some(drain)))
}

/// `<data-dir>/tsa_host_key`, generated (RSA 2048, PKCS#1 PEM) on first use and reused.
fn generated_host_key(data_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = data_dir.join("tsa_host_key");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let pem = super::keys::rsa_private_pem(2048)?;
    super::keys::write_private(&path, pem.as_bytes())?;
    tracing::info!(path = %path.display(), "no --tsa-host-key: generated a TSA host key");
    Ok(path)
}

/// Where the worker keys come from, to load them at start and again on SIGHUP.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    global: Option<std::path::PathBuf>,
    teams: Vec<(String, std::path::PathBuf)>,
    team_file: Option<std::path::PathBuf>,
}

impl KeyFiles {
    pub fn from_args(args: &TsaArgs) -> anyhow::Result<Self> {
        let teams = args
            .tsa_team_authorized_keys
            .iter()
            .map(|entry| {
                let (team, path) = entry.split_once(':').with_context(|| {
                    format!("invalid --tsa-team-authorized-keys '{entry}': expected TEAM:PATH")
                })?;
                Ok((team.to_string(), Path::new(path).to_path_buf()))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(KeyFiles {
            global: args.tsa_authorized_keys.clone(),
            teams,
            team_file: args.tsa_team_authorized_keys_file.clone(),
        })
    }

    pub fn load(&self) -> anyhow::Result<KeySet> {
        let mut set = KeySet {
            global: match &self.global {
                Some(path) => tsa::load_authorized_keys(path)?,
                None => vec![],
            },
            teams: self
                .teams
                .iter()
                .map(|(team, path)| Ok((team.clone(), tsa::load_authorized_keys(path)?)))
                .collect::<anyhow::Result<_>>()?,
        };
        if let Some(path) = &self.team_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            set.teams.extend(
                tsa::parse_team_keys_yaml(&text)
                    .with_context(|| format!("parsing {}", path.display()))?,
            );
        }
        Ok(set)
    }
}

/// Reloads the key files into `keys` on every SIGHUP until `shutdown`; a file that fails to
/// load leaves the previous keys in place.
pub async fn reload_keys_on_sighup(
    files: KeyFiles,
    keys: AuthorizedKeys,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: TSA keys will not reload");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        let files = files.clone();
        match tokio::task::spawn_blocking(move || files.load()).await {
            Ok(Ok(set)) => {
                keys.replace(set);
                tracing::info!("reloaded TSA authorized keys");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "reloading TSA keys failed; keeping the old ones")
            }
            Err(e) => tracing::warn!(error = %e, "reloading TSA keys failed; keeping the old ones"),
        }
    }
}
