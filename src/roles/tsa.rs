//! Wiring of the TSA into `concourse web`: keys from flags (or a host key generated once
//! into the data dir), the SSH listener, and the worker collector.

use crate::atc::auth::parse_go_duration;
use crate::cli::{PostgresArgs, TsaArgs};
use crate::tsa::{self, TsaConfig};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

fn duration(flag: &str, value: &str) -> anyhow::Result<Duration> {
    parse_go_duration(value)
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
    let authorized_keys = match &args.tsa_authorized_keys {
        Some(path) => tsa::load_authorized_keys(path)?,
        None => {
            tracing::warn!("no --tsa-authorized-keys: the TSA refuses every worker key");
            vec![]
        }
    };
    let team_authorized_keys = args
        .tsa_team_authorized_keys
        .iter()
        .map(|entry| {
            let (team, path) = entry.split_once(':').with_context(|| {
                format!("invalid --tsa-team-authorized-keys '{entry}': expected TEAM:PATH")
            })?;
            Ok((
                team.to_string(),
                tsa::load_authorized_keys(Path::new(path))?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(TsaConfig {
        host_key,
        authorized_keys,
        team_authorized_keys,
        heartbeat_interval: duration("tsa-heartbeat-interval", &args.tsa_heartbeat_interval)?,
        peer_address: args.peer_address.clone(),
        garden_request_timeout: duration(
            "tsa-garden-request-timeout",
            &args.tsa_garden_request_timeout,
        )?,
    })
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
