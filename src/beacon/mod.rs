//! The Beacon: the worker side of registration (worker-protocols.md §3.3, §3.6). It dials a
//! TSA, pins its host key, authenticates with the worker's key, asks for reverse tunnels to
//! the local Garden and Baggageclaim and runs `forward-worker` (or `register-worker` for a
//! directly reachable worker), reconnecting until the registration ends for good.

mod client;

use crate::proto::worker::{TsaCommand, TsaEventKind, Worker};
use rand::seq::SliceRandom;
use russh::keys::{PrivateKey, PublicKey};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Everything the beacon needs. `concourse worker` fills it from its flags.
#[derive(Clone)]
pub struct BeaconConfig {
    /// `--tsa-host` (repeatable; default `127.0.0.1:2222`).
    pub tsa_hosts: Vec<String>,
    /// `--tsa-public-key`: the TSA host keys to accept (authorized_keys format).
    pub tsa_public_keys: Vec<PublicKey>,
    /// `--tsa-worker-private-key`.
    pub worker_private_key: Arc<PrivateKey>,
    /// The payload: `--name`, `--tag`, `--team`, `--ephemeral`, `--max-active-tasks`,
    /// `--certs-dir`, proxies, platform, version, resource types, start time.
    pub worker: Worker,
    /// Where forwarded Garden connections go (`--bind-ip:--bind-port`).
    pub garden_addr: String,
    /// Where forwarded Baggageclaim connections go
    /// (`--baggageclaim-bind-ip:--baggageclaim-bind-port`).
    pub baggageclaim_addr: String,
    /// Register with `register-worker` and the payload's own `addr`/`baggageclaim_url`
    /// (directly reachable worker, our extension) instead of tunnelling.
    pub direct: bool,
    /// SSH keep-alive period (5 s upstream); the connection is dropped after 60 unanswered.
    pub keepalive_interval: Duration,
    /// Pause before reconnecting after a failed registration (5 s upstream).
    pub reconnect_delay: Duration,
    /// Per-host TCP dial timeout (10 s upstream).
    pub dial_timeout: Duration,
    /// Receives `registered`/`heartbeated` events (lagging receivers miss some).
    pub events: Option<broadcast::Sender<TsaEventKind>>,
}

impl BeaconConfig {
    /// A configuration with upstream's timings.
    pub fn new(
        tsa_hosts: Vec<String>,
        tsa_public_keys: Vec<PublicKey>,
        worker_private_key: PrivateKey,
        worker: Worker,
        garden_addr: String,
        baggageclaim_addr: String,
    ) -> Self {
        BeaconConfig {
            tsa_hosts,
            tsa_public_keys,
            worker_private_key: Arc::new(worker_private_key),
            worker,
            garden_addr,
            baggageclaim_addr,
            direct: false,
            keepalive_interval: Duration::from_secs(5),
            reconnect_delay: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(10),
            events: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BeaconError {
    #[error("all worker SSH gateways unreachable")]
    AllGatewaysUnreachable,
    #[error("no --tsa-host given")]
    NoGateways,
    #[error("TSA host key not accepted")]
    HostKeyRejected,
    #[error("worker key not authorized by the TSA")]
    Unauthorized,
    /// The TSA refused the exec (`invalid command: ...`).
    #[error("{0}")]
    CommandRefused(String),
    /// The command ran and failed: exit status 1 with the TSA's message.
    #[error("{command} failed: {message}")]
    CommandFailed { command: String, message: String },
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    #[error("connection to the TSA closed before the command finished")]
    ConnectionLost,
}

/// How one registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The TSA ended it with exit status 0: the worker landed or was removed.
    Finished,
    /// `shutdown` fired; the TSA was signalled (`INT`) and drained the tunnels.
    Stopped,
}

/// Registers and keeps the worker registered until the TSA ends the registration (landed,
/// retired, deleted), a command fails for good, or `shutdown` fires. Connection errors
/// reconnect after [`BeaconConfig::reconnect_delay`].
pub async fn run(config: BeaconConfig, shutdown: CancellationToken) -> Result<Ended, BeaconError> {
    let command = if config.direct {
        TsaCommand::RegisterWorker
    } else {
        TsaCommand::ForwardWorker {
            garden: crate::proto::worker::GARDEN_FORWARD_LABEL.into(),
            baggageclaim: crate::proto::worker::BAGGAGECLAIM_FORWARD_LABEL.into(),
        }
    };
    loop {
        match client::run_command(&config, &command, &shutdown).await {
            Ok(client::Outcome::Exited) => return Ok(Ended::Finished),
            Ok(client::Outcome::Stopped) => return Ok(Ended::Stopped),
            Err(e @ (BeaconError::CommandFailed { .. } | BeaconError::CommandRefused(_))) => {
                return Err(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, "beacon: registration failed; reconnecting");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Ended::Stopped),
            _ = tokio::time::sleep(config.reconnect_delay) => {}
        }
    }
}

/// Runs `land-worker` for the configured worker on a new connection.
pub async fn land(config: &BeaconConfig) -> Result<(), BeaconError> {
    one_shot(config, TsaCommand::LandWorker).await
}

/// Runs `retire-worker` for the configured worker on a new connection.
pub async fn retire(config: &BeaconConfig) -> Result<(), BeaconError> {
    one_shot(config, TsaCommand::RetireWorker).await
}

/// Runs `delete-worker` for the configured worker on a new connection.
pub async fn delete(config: &BeaconConfig) -> Result<(), BeaconError> {
    one_shot(config, TsaCommand::DeleteWorker).await
}

async fn one_shot(config: &BeaconConfig, command: TsaCommand) -> Result<(), BeaconError> {
    match client::run_command(config, &command, &CancellationToken::new()).await? {
        client::Outcome::Exited | client::Outcome::Stopped => Ok(()),
    }
}

/// The hosts in the order to dial them: shuffled, so workers spread over several TSAs.
fn dial_order(hosts: &[String]) -> Vec<String> {
    let mut hosts = hosts.to_vec();
    hosts.shuffle(&mut rand::thread_rng());
    hosts
}
