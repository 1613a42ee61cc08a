//! One session channel: wait for `exec`, run the command with the channel's stdin and
//! signals, answer `exit-status` (0 on success, 1 on any error) and close.

use super::connection::ConnState;
use super::register;
use crate::proto::worker::{TsaCommand, Worker};
use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The payload read from stdin is one JSON object; anything bigger is not a worker.
const MAX_PAYLOAD: usize = 1 << 20;

/// What a running command sees of its channel.
pub(super) struct Io {
    pub stdin: mpsc::Receiver<Bytes>,
    pub out: ChannelWriteHalf<Msg>,
    /// Cancelled by a `signal` request or when the channel/connection goes away.
    pub interrupted: CancellationToken,
}

impl Io {
    /// Reads the worker JSON object every command starts with.
    pub async fn read_worker(&mut self) -> Result<Worker, String> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            if !buf.is_empty() {
                match serde_json::Deserializer::from_slice(&buf)
                    .into_iter::<Worker>()
                    .next()
                {
                    Some(Ok(worker)) => return Ok(worker),
                    Some(Err(e)) if !e.is_eof() => {
                        return Err(format!("invalid worker payload: {e}"))
                    }
                    _ => {}
                }
            }
            if buf.len() > MAX_PAYLOAD {
                return Err("invalid worker payload: too large".into());
            }
            tokio::select! {
                chunk = self.stdin.recv() => match chunk {
                    Some(chunk) => buf.extend_from_slice(&chunk),
                    None => return Err("EOF".into()),
                },
                _ = self.interrupted.cancelled() => return Err("interrupted".into()),
            }
        }
    }

    pub async fn write(&self, bytes: impl Into<Bytes>) {
        // The worker may have gone; the command's outcome does not depend on this write.
        let _ = self.out.data_bytes(bytes.into()).await;
    }
}

pub(super) async fn serve(channel: Channel<Msg>, state: ConnState) {
    let (mut read, out) = channel.split();
    // The connection's handler has already answered every request (see `exec_request`):
    // other requests were refused, and so was an exec this parse rejects.
    let command = loop {
        match read.wait().await {
            Some(ChannelMsg::Exec { command, .. }) => break command,
            Some(ChannelMsg::Close | ChannelMsg::Eof) | None => return,
            Some(_) => {}
        }
    };
    let Ok(command) = TsaCommand::parse(&String::from_utf8_lossy(&command)) else {
        let _ = out.close().await;
        return;
    };

    let (stdin_tx, stdin) = mpsc::channel::<Bytes>(16);
    let interrupted = state.closed.child_token();
    let pump_interrupt = interrupted.clone();
    // Feeds stdin and turns `signal`, close and disconnection into an interruption.
    let pump = state.tracker.spawn(async move {
        let mut stdin_tx = Some(stdin_tx);
        loop {
            tokio::select! {
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if let Some(tx) = &stdin_tx {
                            // A command that stopped reading drops its receiver.
                            if tx.send(data).await.is_err() {
                                stdin_tx = None;
                            }
                        }
                    }
                    Some(ChannelMsg::Eof) => stdin_tx = None,
                    Some(ChannelMsg::Signal { .. }) => pump_interrupt.cancel(),
                    Some(ChannelMsg::Close) | None => {
                        pump_interrupt.cancel();
                        break;
                    }
                    Some(_) => {}
                },
                _ = pump_interrupt.cancelled() => break,
            }
        }
    });
    let mut io = Io {
        stdin,
        out,
        interrupted: interrupted.clone(),
    };
    let result = register::run_command(&command, &mut io, &state).await;
    // This TSA stopping (or the connection gone) is no answer: the channel just ends, and a
    // beacon reconnects (to this node's successor) as after any lost connection. An exit
    // status could reach it before the disconnect and read as the command failing, which a
    // beacon takes as final: its worker exited.
    if !state.closed.is_cancelled() {
        answer(&command, &mut io, result).await;
    }
    let _ = io.out.close().await;
    interrupted.cancel();
    let _ = pump.await;
}

/// The command's exit status, with its error on stderr when it failed.
async fn answer(command: &TsaCommand, io: &mut Io, result: Result<(), String>) {
    let status = match result {
        Ok(()) => 0,
        Err(message) => {
            tracing::info!(command = %command.to_exec().split(' ').next().unwrap_or_default(), error = %message, "tsa: command failed");
            let _ = io
                .out
                .extended_data_bytes(1, Bytes::from(format!("{message}\n")))
                .await;
            1
        }
    };
    let _ = io.out.exit_status(status).await;
    let _ = io.out.eof().await;
}
