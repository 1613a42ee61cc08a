//! `GET T/containers/:id/hijack` (atc-api.md §3.9): a WebSocket running one process in a
//! container for `fly intercept`. The client sends a HijackProcessSpec, then HijackInput
//! messages; the server answers with HijackOutput messages, the last one carrying the
//! exit status or an error.

use super::containers::one;
use super::error::{ApiError, ApiResult};
use super::scope::TeamScope;
use super::AppState;
use crate::atc::engine::labels;
use crate::atc::engine::runtime::WorkerClient;
use crate::proto::garden::{GardenError, ProcessIo, ProcessSpec, TtySpec};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HijackProcessSpec {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub dir: String,
    pub privileged: bool,
    pub user: String,
    pub tty: Option<TtySpec>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HijackInput {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// Base64, like Go's `[]byte`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<TtySpec>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HijackOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub executable_not_found: bool,
}

/// Browsers let any page open a WebSocket to any site, with the user's cookies; only pages
/// of this web node (the external URL's origin) may do so here. Clients sending no
/// `Origin`, like fly, are not browsers.
pub(super) fn origin_allowed(headers: &HeaderMap, external_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let theirs = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .map(|u| u.origin());
    let ours = url::Url::parse(external_url).ok().map(|u| u.origin());
    matches!((theirs, ours), (Some(t), Some(o)) if o.is_tuple() && t == o)
}

pub async fn hijack(
    State(state): State<AppState>,
    // The origin and the team role (policy `Intercept`).
    TeamScope { req, team }: TeamScope,
    Path((_, handle)): Path<(String, String)>,
    // Not rejected by the extractor: access is decided before the upgrade is looked at.
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let c = one(&state, &team, &handle).await?;
    // Check containers hold credentials of the resource, shared across teams.
    if c.labels.get(labels::TYPE).map(String::as_str) == Some("check") && !req.is_admin() {
        return Err(ApiError::forbidden());
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let idle = state.intercept_idle_timeout;
    Ok(ws.on_upgrade(move |socket| session(socket, c.worker, c.handle, idle)))
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;
type Stream = futures::stream::SplitStream<WebSocket>;

async fn send(sink: &mut Sink, out: &HijackOutput) -> bool {
    match serde_json::to_string(out) {
        Ok(text) => sink.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// The next data message's bytes; None when the client went away.
async fn next_data(stream: &mut Stream) -> Option<Bytes> {
    loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => return Some(Bytes::from(t.as_str().to_owned())),
            Ok(Message::Binary(b)) => return Some(b),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Resolves at `deadline`, or never without one.
async fn idle_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn session(
    socket: WebSocket,
    w: WorkerClient,
    handle: String,
    idle_timeout: Option<std::time::Duration>,
) {
    let (mut sink, mut stream) = socket.split();
    let Some(first) = next_data(&mut stream).await else {
        return;
    };
    let Ok(spec) = serde_json::from_slice::<HijackProcessSpec>(&first) else {
        let frame = CloseFrame {
            code: 1003,
            reason: "malformed process spec".into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
        return;
    };
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let (err_tx, mut err_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let process = ProcessSpec {
        path: spec.path,
        args: spec.args,
        env: spec.env,
        dir: spec.dir,
        user: spec.user,
        tty: spec.tty,
        ..Default::default()
    };
    let io = ProcessIo {
        stdin: Some(in_rx),
        stdout: Some(out_tx),
        stderr: Some(err_tx),
        ..Default::default()
    };
    let process = match w.garden.run(&handle, process, io).await {
        Ok(p) => p,
        Err(e) => {
            let out = HijackOutput {
                executable_not_found: matches!(e, GardenError::ExecutableNotFound { .. }),
                error: Some(e.to_string()),
                ..Default::default()
            };
            send(&mut sink, &out).await;
            return;
        }
    };
    tracing::info!(container = %handle, worker = %w.name, "hijacked");
    let mut stdin = Some(in_tx);
    let (mut out_open, mut err_open, mut client_open) = (true, true, true);
    let idle_deadline = || idle_timeout.map(|d| tokio::time::Instant::now() + d);
    let mut deadline = idle_deadline();
    while out_open || err_open {
        tokio::select! {
            _ = idle_until(deadline) => {
                tracing::info!(container = %handle, "intercept idle timeout");
                if client_open {
                    let out = HijackOutput {
                        error: Some(format!("idle timeout ({:?}) reached", idle_timeout.unwrap_or_default())),
                        ..Default::default()
                    };
                    send(&mut sink, &out).await;
                    let _ = sink.send(Message::Close(None)).await;
                }
                // Closing stdin ends an interactive shell; the process is not waited for.
                return;
            }
            msg = next_data(&mut stream), if client_open => {
                deadline = idle_deadline();
                let Some(msg) = msg else {
                    // The client is gone: close stdin so an interactive shell ends.
                    client_open = false;
                    stdin = None;
                    continue;
                };
                let Ok(input) = serde_json::from_slice::<HijackInput>(&msg) else {
                    continue;
                };
                if let Some(tty) = input.tty {
                    if let Err(e) = process.set_tty(tty).await {
                        let out = HijackOutput { error: Some(e.to_string()), ..Default::default() };
                        send(&mut sink, &out).await;
                    }
                }
                if let (Some(data), Some(tx)) = (input.stdin, &stdin) {
                    if let Ok(bytes) = B64.decode(data) {
                        let _ = tx.send(Bytes::from(bytes)).await;
                    }
                }
                if input.closed {
                    stdin = None;
                }
            }
            chunk = out_rx.recv(), if out_open => match chunk {
                Some(c) => {
                    deadline = idle_deadline();
                    let out = HijackOutput { stdout: Some(B64.encode(&c)), ..Default::default() };
                    if client_open && !send(&mut sink, &out).await {
                        client_open = false;
                        stdin = None;
                    }
                }
                None => out_open = false,
            },
            chunk = err_rx.recv(), if err_open => match chunk {
                Some(c) => {
                    deadline = idle_deadline();
                    let out = HijackOutput { stderr: Some(B64.encode(&c)), ..Default::default() };
                    if client_open && !send(&mut sink, &out).await {
                        client_open = false;
                        stdin = None;
                    }
                }
                None => err_open = false,
            },
        }
    }
    drop(stdin);
    let out = match process.wait().await {
        Ok(status) => HijackOutput {
            exit_status: Some(status),
            ..Default::default()
        },
        Err(e) => HijackOutput {
            error: Some(e.to_string()),
            ..Default::default()
        },
    };
    if client_open {
        send(&mut sink, &out).await;
        let _ = sink.send(Message::Close(None)).await;
        // Wait for the client's close: hanging up while its last messages (stdin EOF,
        // pings) are in flight resets the connection and can lose the exit status.
        let drain = async { while next_data(&mut stream).await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
    }
}
