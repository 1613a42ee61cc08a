//! One SSH connection to a TSA running one command.

use super::{BeaconConfig, BeaconError};
use crate::proto::worker::{
    TsaCommand, TsaEvent, BAGGAGECLAIM_FORWARD_LABEL, GARDEN_FORWARD_LABEL,
};
use russh::client::{ChannelOpenHandle, Handle, Msg, Session};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Sig};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long to wait for the TSA to drain after `signal INT`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Retry period for dialling the local Garden/Baggageclaim.
const LOCAL_DIAL_RETRY: Duration = Duration::from_secs(1);

pub(super) enum Outcome {
    /// The command finished with exit status 0.
    Exited,
    /// Interrupted by shutdown.
    Stopped,
}

struct Client {
    tsa_public_keys: Vec<PublicKey>,
    garden_addr: String,
    baggageclaim_addr: String,
    tracker: TaskTracker,
    closed: CancellationToken,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self
                .tsa_public_keys
                .iter()
                .any(|k| k.key_data() == key.key_data()),
            _ => false,
        })
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let label = format!("{connected_address}:{connected_port}");
        let target = if label == GARDEN_FORWARD_LABEL {
            self.garden_addr.clone()
        } else if label == BAGGAGECLAIM_FORWARD_LABEL {
            self.baggageclaim_addr.clone()
        } else {
            tracing::warn!(%label, "beacon: forwarded connection for an unknown address");
            return Ok(());
        };
        reply.accept().await;
        let closed = self.closed.clone();
        self.tracker.spawn(async move {
            let mut local = loop {
                match TcpStream::connect(&target).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        break s;
                    }
                    Err(e) => {
                        tracing::info!(%target, error = %e, "beacon: local server not answering yet");
                        tokio::select! {
                            _ = closed.cancelled() => return,
                            _ = tokio::time::sleep(LOCAL_DIAL_RETRY) => {}
                        }
                    }
                }
            };
            let mut remote = channel.into_stream();
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut remote, &mut local) => {}
                _ = closed.cancelled() => {}
            }
        });
        Ok(())
    }
}

/// Dials the TSA hosts in shuffled order; the first TCP connection wins.
async fn dial(config: &BeaconConfig) -> Result<(TcpStream, String), BeaconError> {
    if config.tsa_hosts.is_empty() {
        return Err(BeaconError::NoGateways);
    }
    for host in super::dial_order(&config.tsa_hosts) {
        match tokio::time::timeout(config.dial_timeout, TcpStream::connect(&host)).await {
            Ok(Ok(stream)) => {
                // Small SSH packets (channel opens, window adjusts) must not wait on Nagle.
                let _ = stream.set_nodelay(true);
                return Ok((stream, host));
            }
            Ok(Err(e)) => tracing::info!(%host, error = %e, "beacon: TSA unreachable"),
            Err(_) => tracing::info!(%host, "beacon: TSA dial timed out"),
        }
    }
    Err(BeaconError::AllGatewaysUnreachable)
}

async fn connect(
    config: &BeaconConfig,
    tracker: &TaskTracker,
    closed: &CancellationToken,
) -> Result<Handle<Client>, BeaconError> {
    let (stream, host) = dial(config).await?;
    let ssh_config = Arc::new(russh::client::Config {
        keepalive_interval: Some(config.keepalive_interval),
        keepalive_max: 60,
        ..Default::default()
    });
    let client = Client {
        tsa_public_keys: config.tsa_public_keys.clone(),
        garden_addr: config.garden_addr.clone(),
        baggageclaim_addr: config.baggageclaim_addr.clone(),
        tracker: tracker.clone(),
        closed: closed.clone(),
    };
    let mut handle = russh::client::connect_stream(ssh_config, stream, client)
        .await
        .map_err(|e| match e {
            russh::Error::UnknownKey => BeaconError::HostKeyRejected,
            other => BeaconError::Ssh(other),
        })?;
    let hash = handle.best_supported_rsa_hash().await?.flatten();
    let auth = handle
        .authenticate_publickey(
            "beacon",
            PrivateKeyWithHashAlg::new(config.worker_private_key.clone(), hash),
        )
        .await?;
    if !matches!(auth, russh::client::AuthResult::Success) {
        return Err(BeaconError::Unauthorized);
    }
    tracing::info!(%host, "beacon: connected to TSA");
    Ok(handle)
}

/// Connects, sets up forwards when the command needs them, runs the command with the worker
/// payload on stdin, and reads its output until it exits. On `shutdown` the command is
/// sent `signal INT` and given time to drain.
pub(super) async fn run_command(
    config: &BeaconConfig,
    command: &TsaCommand,
    shutdown: &CancellationToken,
) -> Result<Outcome, BeaconError> {
    let tracker = TaskTracker::new();
    let closed = CancellationToken::new();
    let result = async {
        let handle = connect(config, &tracker, &closed).await?;
        if matches!(command, TsaCommand::ForwardWorker { .. }) {
            for label in [GARDEN_FORWARD_LABEL, BAGGAGECLAIM_FORWARD_LABEL] {
                let (ip, port) = label
                    .rsplit_once(':')
                    .and_then(|(ip, port)| Some((ip, port.parse::<u32>().ok()?)))
                    .expect("forward labels are ip:port constants");
                handle.tcpip_forward(ip, port).await?;
            }
        }
        let mut channel = handle.channel_open_session().await?;
        channel.exec(true, command.to_exec()).await?;
        let payload = serde_json::to_vec(&config.worker).unwrap_or_default();
        channel.data(&payload[..]).await?;
        let outcome = read_output(config, command, &mut channel, shutdown).await;
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "")
            .await;
        outcome
    }
    .await;
    closed.cancel();
    tracker.close();
    tracker.wait().await;
    result
}

async fn read_output(
    config: &BeaconConfig,
    command: &TsaCommand,
    channel: &mut Channel<Msg>,
    shutdown: &CancellationToken,
) -> Result<Outcome, BeaconError> {
    let mut stdout: Vec<u8> = Vec::new();
    let mut stderr: Vec<u8> = Vec::new();
    let mut status: Option<u32> = None;
    let mut stopping = false;
    // Armed when shutdown fires.
    let drain_deadline = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(drain_deadline);
    loop {
        let msg = tokio::select! {
            msg = channel.wait() => msg,
            _ = shutdown.cancelled(), if !stopping => {
                stopping = true;
                let _ = channel.signal(Sig::INT).await;
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIMEOUT);
                continue;
            }
            _ = &mut drain_deadline, if stopping => return Ok(Outcome::Stopped),
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                stdout.extend_from_slice(&data);
                publish_events(config, &mut stdout);
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => stderr.extend_from_slice(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
            Some(ChannelMsg::Failure) => {
                return Err(BeaconError::CommandRefused(
                    String::from_utf8_lossy(&stdout).trim().to_string(),
                ))
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    if stopping {
        return Ok(Outcome::Stopped);
    }
    match status {
        Some(0) => Ok(Outcome::Exited),
        Some(_) => Err(BeaconError::CommandFailed {
            command: command
                .to_exec()
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string(),
            message: String::from_utf8_lossy(&stderr).trim().to_string(),
        }),
        None => Err(BeaconError::ConnectionLost),
    }
}

/// Publishes complete event lines and keeps any partial line buffered.
fn publish_events(config: &BeaconConfig, stdout: &mut Vec<u8>) {
    while let Some(end) = stdout.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = stdout.drain(..=end).collect();
        if let Ok(event) = serde_json::from_slice::<TsaEvent>(&line) {
            tracing::debug!(event = ?event.event, "beacon: event");
            if let Some(events) = &config.events {
                let _ = events.send(event.event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::worker::{TsaEventKind, Worker};

    #[test]
    fn events_are_published_per_complete_line() {
        let (tx, mut rx) = tokio::sync::broadcast::channel(8);
        let key = russh::keys::decode_secret_key(
            &crate::roles::keys::rsa_private_pem(1024).expect("key"),
            None,
        )
        .expect("decoding key");
        let mut config = BeaconConfig::new(
            vec![],
            vec![],
            key,
            Worker::default(),
            String::new(),
            String::new(),
        );
        config.events = Some(tx);
        let mut out = b"{\"event\":\"registered\"}\n{\"event\":\"heart".to_vec();
        publish_events(&config, &mut out);
        assert_eq!(rx.try_recv().ok(), Some(TsaEventKind::Registered));
        assert!(rx.try_recv().is_err(), "a partial line waits");
        out.extend_from_slice(b"beated\"}\nnot json\n");
        publish_events(&config, &mut out);
        assert_eq!(rx.try_recv().ok(), Some(TsaEventKind::Heartbeated));
        assert!(rx.try_recv().is_err(), "garbage lines are skipped");
        assert!(out.is_empty());
    }
}
