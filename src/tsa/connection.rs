//! One worker's SSH connection: authentication, session channels and reverse tunnels.

use super::TsaConfig;
use crate::db::Store;
use crate::proto::worker::TsaCommand;
use bytes::Bytes;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Upstream accepts at most two forwards per connection (Garden and Baggageclaim).
const MAX_FORWARDS: usize = 2;

pub(super) struct Shared {
    pub config: TsaConfig,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
}

/// A reverse tunnel: a listener on the web node whose connections become
/// `forwarded-tcpip` channels to the worker.
pub(super) struct Forward {
    /// The requested `BindIP:BindPort`: only a label `forward-worker` matches on.
    pub bind_addr: String,
    pub bound_port: u16,
    /// Cancelled to stop accepting.
    pub drain: CancellationToken,
    /// The forwarded connections in flight.
    pub in_flight: TaskTracker,
}

/// What a command needs from its connection.
#[derive(Clone)]
pub(super) struct ConnState {
    pub shared: Arc<Shared>,
    /// The team of the key: None for a global key.
    pub team: Option<String>,
    /// The worker's end of the SSH connection.
    pub peer: SocketAddr,
    pub forwards: Arc<Mutex<mpsc::Receiver<Forward>>>,
    pub tracker: TaskTracker,
    /// Cancelled when the connection ends or the server shuts down.
    pub closed: CancellationToken,
}

pub(super) struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    team: Option<String>,
    forwards_tx: mpsc::Sender<Forward>,
    forwards_rx: Arc<Mutex<mpsc::Receiver<Forward>>>,
    forward_count: usize,
    tracker: TaskTracker,
    closed: CancellationToken,
}

impl Connection {
    pub fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        tracker: TaskTracker,
        closed: CancellationToken,
    ) -> Self {
        let (forwards_tx, forwards_rx) = mpsc::channel(MAX_FORWARDS);
        Connection {
            shared,
            peer,
            team: None,
            forwards_tx,
            forwards_rx: Arc::new(Mutex::new(forwards_rx)),
            forward_count: 0,
            tracker,
            closed,
        }
    }

    fn state(&self) -> ConnState {
        ConnState {
            shared: self.shared.clone(),
            team: self.team.clone(),
            peer: self.peer,
            forwards: self.forwards_rx.clone(),
            tracker: self.tracker.clone(),
            closed: self.closed.clone(),
        }
    }
}

/// russh drops the handler when the session ends: that ends the connection's tasks.
impl Drop for Connection {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.shared.config.keys.authorize(key.public_key) {
            Some(team) => {
                tracing::info!(peer = %self.peer, team = team.as_deref().unwrap_or(""), "tsa: worker key accepted");
                self.team = team;
                Ok(Auth::Accept)
            }
            None => {
                tracing::info!(peer = %self.peer, "tsa: unauthorized key refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let state = self.state();
        self.tracker
            .spawn(async move { super::channel::serve(channel, state).await });
        Ok(())
    }

    // Channel requests are answered here, while the session still knows whether this very
    // request wants a reply. Answering from the channel's task instead raced the next
    // request: OpenSSH sends `env` (no reply wanted) right before `exec`, and a late
    // failure for the `env` was taken as the answer to the `exec`.

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The channel's task parses the same string again and runs (or drops) it.
        match TsaCommand::parse(&String::from_utf8_lossy(data)) {
            Ok(_) => session.channel_success(channel)?,
            Err(invalid) => {
                session.data(channel, Bytes::from(invalid.to_string()))?;
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if self.forward_count >= MAX_FORWARDS {
            return Ok(false);
        }
        let listener =
            match TcpListener::bind(forward_bind_addr(&self.shared.config.peer_address)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "tsa: cannot listen for a forward");
                    return Ok(false);
                }
            };
        let bound_port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(_) => return Ok(false),
        };
        self.forward_count += 1;
        let requested_port = *port;
        // Forwarded channels name the requested port, or the bound one when 0 was asked.
        let forward_port = if requested_port == 0 {
            u32::from(bound_port)
        } else {
            requested_port
        };
        *port = u32::from(bound_port);
        let forward = Forward {
            bind_addr: format!("{address}:{requested_port}"),
            bound_port,
            drain: self.closed.child_token(),
            in_flight: TaskTracker::new(),
        };
        let drain = forward.drain.clone();
        let in_flight = forward.in_flight.clone();
        if self.forwards_tx.try_send(forward).is_err() {
            return Ok(false);
        }
        let handle = session.handle();
        let address = address.to_string();
        let tracker = self.tracker.clone();
        let closed = self.closed.clone();
        self.tracker.spawn(async move {
            loop {
                let (mut stream, origin) = tokio::select! {
                    _ = drain.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => {
                            let _ = a.0.set_nodelay(true);
                            a
                        }
                        Err(_) => continue,
                    },
                };
                let handle = handle.clone();
                let address = address.clone();
                let closed = closed.clone();
                // Tracked twice: by the forward (for draining) and by the server (shutdown).
                let piped = in_flight.track_future(async move {
                    let channel = match handle
                        .channel_open_forwarded_tcpip(
                            address,
                            forward_port,
                            origin.ip().to_string(),
                            u32::from(origin.port()),
                        )
                        .await
                    {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::debug!(error = %e, "tsa: worker refused a forwarded connection");
                            return;
                        }
                    };
                    let mut remote = channel.into_stream();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut stream, &mut remote) => {}
                        _ = closed.cancelled() => {}
                    }
                });
                tracker.spawn(piped);
            }
            in_flight.close();
        });
        Ok(true)
    }
}

/// Where a forward listens: the peer address, so the unauthenticated Garden/Baggageclaim
/// ends are reachable only where the rewritten addresses point (loopback by default), never
/// on every interface as upstream does. An unspecified peer address (`0.0.0.0`, `::`) would
/// mean all interfaces: loopback is used instead, which is where such an address leads.
fn forward_bind_addr(peer_address: &str) -> (String, u16) {
    match peer_address.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST.to_string(), 0),
        _ => (peer_address.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_listen_on_the_peer_address_and_never_on_all_interfaces() {
        assert_eq!(forward_bind_addr("127.0.0.1"), ("127.0.0.1".into(), 0));
        assert_eq!(forward_bind_addr("10.0.0.5"), ("10.0.0.5".into(), 0));
        assert_eq!(
            forward_bind_addr("web-1.internal"),
            ("web-1.internal".into(), 0)
        );
        assert_eq!(forward_bind_addr("0.0.0.0"), ("127.0.0.1".into(), 0));
        assert_eq!(forward_bind_addr("::"), ("127.0.0.1".into(), 0));
    }
}
