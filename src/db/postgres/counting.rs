//! `concourse_db_queries_total` for PostgreSQL: every pooled connection's socket is wrapped,
//! and the frontend messages written to it are counted as they pass. A statement runs once
//! per `Execute` (extended protocol) or `Query` (simple protocol) message, so the count is
//! exact without touching the store's call sites; tokio-postgres has no per-query hook.

use deadpool_postgres::Connect;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};
use tokio_util::either::Either;

/// Follows the frontend half of the wire protocol across arbitrary write boundaries and
/// counts the messages that run a statement.
#[derive(Debug, Default)]
pub(crate) struct FrontendMessages {
    /// The startup message is the only one without a type byte; it comes first.
    started: bool,
    header: [u8; 5],
    have: usize,
    /// Bytes of the current message's body still to pass.
    skip: u64,
}

impl FrontendMessages {
    /// Takes the next bytes written; returns how many statement-running messages began.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut statements = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            let size = if self.started { 5 } else { 4 };
            let n = (size - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < size {
                break;
            }
            let len = &self.header[size - 4..size];
            // The length counts itself; a malformed one (< 4) just ends the message.
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            self.skip = u64::from(len.saturating_sub(4));
            if self.started && matches!(self.header[0], b'Q' | b'E') {
                statements += 1;
            }
            self.started = true;
            self.have = 0;
        }
        statements
    }
}

/// A connection's socket that counts the statements written through it.
struct Counted<S> {
    inner: S,
    messages: FrontendMessages,
    queries: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let statements = this.messages.feed(&buf[..n]);
            if statements > 0 {
                this.queries.fetch_add(statements, Ordering::Relaxed);
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Either transport the configuration names.
type Socket = Either<TcpStream, UnixStream>;

/// Opens the socket tokio-postgres would (its first host and port, its connect timeout,
/// `TCP_NODELAY` and its default keepalive).
async fn open(config: &Config) -> io::Result<Socket> {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = config
        .get_hosts()
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host configured"))?;
    let connect = async {
        match host {
            Host::Tcp(name) => {
                let stream = TcpStream::connect((name.as_str(), port)).await?;
                stream.set_nodelay(true)?;
                socket2::SockRef::from(&stream).set_tcp_keepalive(
                    &socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(7200)),
                )?;
                Ok(Either::Left(stream))
            }
            Host::Unix(dir) => Ok(Either::Right(
                UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?,
            )),
        }
    };
    let shown = match host {
        Host::Tcp(name) => format!("{name}:{port}"),
        Host::Unix(dir) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
    };
    let opened = match config.get_connect_timeout() {
        Some(limit) => tokio::time::timeout(*limit, connect)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))),
        None => connect.await,
    };
    opened.map_err(|e| io::Error::new(e.kind(), format!("connecting to {shown}: {e}")))
}

/// A socket that fails its first read or write with the error that kept it from opening:
/// tokio-postgres' errors cannot be made outside it, so a failed connect reaches the pool
/// through its own handshake, as the I/O error it is.
struct Unopened(Option<io::Error>);

impl Unopened {
    fn fail(&mut self) -> io::Error {
        self.0
            .take()
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }
}

impl AsyncRead for Unopened {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.get_mut().fail()))
    }
}

impl AsyncWrite for Unopened {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(self.get_mut().fail()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.get_mut().fail()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The pool's connector: plain connections (TLS is refused at configuration) through
/// [`Counted`] sockets, all adding to one store's count.
pub(crate) struct CountingConnect {
    pub(crate) queries: Arc<AtomicU64>,
}

impl Connect for CountingConnect {
    fn connect(
        &self,
        config: &Config,
    ) -> futures::future::BoxFuture<
        '_,
        Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let config = config.clone();
        let queries = self.queries.clone();
        Box::pin(async move {
            let socket = match open(&config).await {
                Ok(socket) => socket,
                Err(e) => {
                    return config
                        .connect_raw(Unopened(Some(e)), NoTls)
                        .await
                        .map(|_| unreachable!("a socket that never opened cannot connect"));
                }
            };
            let stream = Counted {
                inner: socket,
                messages: FrontendMessages::default(),
                queries,
            };
            let (client, connection) = config.connect_raw(stream, NoTls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("postgres connection ended: {e}");
                }
            });
            Ok((client, task))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FrontendMessages;
    use proptest::prelude::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup(body: &[u8]) -> Vec<u8> {
        let mut m = (body.len() as u32 + 4).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn counts_execute_and_query_but_not_the_rest() {
        let mut wire = startup(b"\0\x03\0\0user\0concourse\0\0");
        // A body that holds the tags being counted must not count.
        wire.extend(message(b'P', b"\0SELECT 'QE'\0\0\0"));
        wire.extend(message(b'B', b"\0\0\0\0\0\0\0"));
        wire.extend(message(b'E', b"\0\0\0\0\0"));
        wire.extend(message(b'S', b""));
        wire.extend(message(b'Q', b"BEGIN\0"));
        let mut m = FrontendMessages::default();
        assert_eq!(m.feed(&wire), 2);
    }

    proptest! {
        /// However the writes split the stream, each `E` and `Q` counts once.
        #[test]
        fn counts_across_any_write_boundaries(
            first in proptest::collection::vec(any::<u8>(), 0..40),
            messages in proptest::collection::vec(
                (prop_oneof![Just(b'Q'), Just(b'E'), Just(b'P'), Just(b'B'), Just(b'S'), Just(b'D'), any::<u8>()],
                 proptest::collection::vec(any::<u8>(), 0..300)),
                0..20),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut wire = startup(&first);
            for (tag, body) in &messages {
                wire.extend(message(*tag, body));
            }
            let expected = messages.iter().filter(|(t, _)| *t == b'Q' || *t == b'E').count() as u64;
            let mut m = FrontendMessages::default();
            let (mut counted, mut at, mut i) = (0, 0, 0);
            while at < wire.len() {
                let n = cuts[i % cuts.len()].min(wire.len() - at);
                counted += m.feed(&wire[at..at + n]);
                at += n;
                i += 1;
            }
            prop_assert_eq!(counted, expected);
        }
    }
}
