//! Garden's HTTP server (spec §1). Ordinary routes are an axum router; the process routes
//! (run, attach, and the stdout/stderr streams) take over the raw connection after their
//! response head, so each connection's first request head is read here before deciding.

use super::http1::{self, Head, Prefixed};
use super::stream_buffer::StreamBuffer;
use crate::proto::garden::*;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

type Shared = Arc<dyn Garden>;

/// The largest process spec accepted on a run request.
const MAX_SPEC: usize = 1024 * 1024;
/// How long a finished process's output streams stay resolvable.
const STREAM_GRACE: Duration = Duration::from_secs(60);

/// Serves until `shutdown` fires; then stops accepting and waits (up to 10 s) for
/// connections. Running processes are not touched.
pub async fn run(
    listener: TcpListener,
    garden: Shared,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let server = Arc::new(Server {
        garden: garden.clone(),
        streams: Mutex::new(HashMap::new()),
        next_stream: AtomicU64::new(1),
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
    });
    let app = router(garden);
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    // A streamed process's small frames must not wait on Nagle.
                    let _ = a.0.set_nodelay(true);
                    a
                }
                Err(e) => {
                    tracing::warn!(error = %e, "garden accept failed");
                    continue;
                }
            },
        };
        let (server2, app) = (server.clone(), app.clone());
        server
            .tasks
            .spawn(async move { server2.connection(stream, app).await });
    }
    server.tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.tasks.wait()).await;
    Ok(())
}

struct Server {
    garden: Shared,
    streams: Mutex<HashMap<String, Arc<StreamPair>>>,
    next_stream: AtomicU64,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

struct StreamPair {
    stdout: Arc<StreamBuffer>,
    stderr: Arc<StreamBuffer>,
}

enum Hijack {
    Run(String),
    Attach(String, String),
    Output(String, bool),
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn hijack_route(head: &Head) -> Option<Hijack> {
    let path = head.path.split('?').next().unwrap_or("");
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(|s| s.as_str()).collect();
    match (head.method.as_str(), s.as_slice()) {
        ("POST", ["containers", h, "processes"]) => Some(Hijack::Run(h.to_string())),
        ("GET", ["containers", h, "processes", p]) => {
            Some(Hijack::Attach(h.to_string(), p.to_string()))
        }
        (
            "GET",
            ["containers", h, "processes", p, "attaches", sid, which @ ("stdout" | "stderr")],
        ) => {
            let _ = (h, p);
            Some(Hijack::Output(sid.to_string(), *which == "stdout"))
        }
        _ => None,
    }
}

/// `?stdout_from=N&stderr_from=M` of an attach: where its replays start (ours only).
fn replay_from(path: &str) -> [u64; 2] {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut from = [0, 0];
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let slot = match k {
            "stdout_from" => 0,
            "stderr_from" => 1,
            _ => continue,
        };
        from[slot] = v.parse().unwrap_or(0);
    }
    from
}

async fn write_error(stream: &mut TcpStream, e: &GardenError) {
    let body = format!(
        "{}\n",
        serde_json::to_string(&e.to_wire()).unwrap_or_default()
    );
    let status = e.status();
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        http1::reason(status),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn write_json_line<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    p: &ProcessPayload,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(p).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

impl Server {
    async fn connection(self: Arc<Self>, mut stream: TcpStream, app: Router) {
        let (head, raw) = match http1::read_head(&mut stream, true).await {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                write_error(
                    &mut stream,
                    &GardenError::bad_request(format!("malformed request: {e}")),
                )
                .await;
                return;
            }
        };
        // Run and attach are spans of the caller's trace, like the routed requests.
        let span = |name: &str| {
            crate::telemetry::request_span(&format!("garden {name}"), head.header("traceparent"))
        };
        match hijack_route(&head) {
            Some(Hijack::Run(handle)) => {
                let span = span("run");
                self.process(stream, head, handle, None)
                    .instrument(span)
                    .await
            }
            Some(Hijack::Attach(handle, pid)) => {
                let span = span("attach");
                self.process(stream, head, handle, Some(pid))
                    .instrument(span)
                    .await
            }
            Some(Hijack::Output(sid, stdout)) => self.output(stream, sid, stdout).await,
            None => {
                let io = hyper_util::rt::TokioIo::new(Prefixed::new(raw, stream));
                let service = hyper_util::service::TowerToHyperService::new(app);
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => { let _ = r; }
                    _ = self.shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                    }
                }
            }
        }
    }

    /// Run (pid `None`) or attach: the control connection of §1.3.
    async fn process(
        self: Arc<Self>,
        mut stream: TcpStream,
        head: Head,
        handle: String,
        pid: Option<String>,
    ) {
        let mut body = head.rest.clone();
        let len = head.content_length().unwrap_or(0);
        if len > MAX_SPEC {
            let e = GardenError::bad_request(format!("process spec larger than {MAX_SPEC} bytes"));
            return write_error(&mut stream, &e).await;
        }
        if body.len() < len {
            let mut more = vec![0u8; len - body.len()];
            if stream.read_exact(&mut more).await.is_err() {
                return;
            }
            body.extend_from_slice(&more);
        }
        let leftover = body.split_off(len.min(body.len()));
        let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(64);
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
        let (err_tx, err_rx) = mpsc::channel::<Bytes>(64);
        let io = ProcessIo {
            stdin: Some(stdin_rx),
            stdout: Some(out_tx),
            stderr: Some(err_tx),
            replay_from: replay_from(&head.path),
        };
        let started = match &pid {
            None => match serde_json::from_slice::<ProcessSpec>(&body) {
                Ok(spec) => self.garden.run(&handle, spec, io).await,
                Err(e) => Err(GardenError::bad_request(format!(
                    "malformed process spec: {e}"
                ))),
            },
            Some(p) => self.garden.attach(&handle, p, io).await,
        };
        let process: Arc<dyn Process> = match started {
            Ok(p) => Arc::from(p),
            Err(e) => return write_error(&mut stream, &e).await,
        };
        let stream_id = self.next_stream.fetch_add(1, Ordering::Relaxed).to_string();
        let pair = Arc::new(StreamPair {
            stdout: Arc::default(),
            stderr: Arc::default(),
        });
        for (mut rx, buf) in [(out_rx, pair.stdout.clone()), (err_rx, pair.stderr.clone())] {
            self.tasks.spawn(async move {
                while let Some(b) = rx.recv().await {
                    if !buf.push(b).await {
                        // Dropping `rx` ends the follower: the process is not held up.
                        return;
                    }
                }
                buf.close();
            });
        }
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream_id.clone(), pair);

        let status = if pid.is_none() { 201 } else { 200 };
        let (read_half, mut write_half) = stream.into_split();
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n\r\n",
            http1::reason(status)
        );
        let first = ProcessPayload {
            process_id: process.id().to_string(),
            stream_id: stream_id.clone(),
            ..Default::default()
        };
        if write_half.write_all(head.as_bytes()).await.is_err()
            || write_json_line(&mut write_half, &first).await.is_err()
        {
            tracing::debug!(handle = %handle, "process client went away before the first payload");
        }

        // Client → server: stdin, signals, window size. EOF closes stdin only.
        let p = process.clone();
        let reader = self.tasks.spawn(async move {
            let mut lines = BufReader::new(Prefixed::new(leftover, read_half)).lines();
            let mut stdin = Some(stdin_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<ProcessPayload>(&line) else {
                    continue;
                };
                if let Some(tty) = msg.tty {
                    let _ = p.set_tty(tty).await;
                }
                if let Some(sig) = msg.signal {
                    match Signal::from_wire(sig) {
                        Some(s) => {
                            let _ = p.signal(s).await;
                        }
                        None => stdin = None,
                    }
                }
                if msg.source == Some(SOURCE_STDIN) {
                    match (msg.data, &stdin) {
                        (Some(data), Some(tx)) => {
                            let _ = tx.send(Bytes::from(data)).await;
                        }
                        (None, _) => stdin = None,
                        _ => {}
                    }
                }
            }
        });

        let outcome = tokio::select! {
            r = process.wait() => Some(r),
            _ = self.shutdown.cancelled() => None,
        };
        reader.abort();
        if let Some(result) = outcome {
            let last = match result {
                Ok(code) => ProcessPayload {
                    process_id: process.id().to_string(),
                    exit_status: Some(code),
                    ..Default::default()
                },
                Err(e) => ProcessPayload {
                    process_id: process.id().to_string(),
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            };
            let _ = write_json_line(&mut write_half, &last).await;
            let _ = write_half.shutdown().await;
        }
        // Late stdout/stderr connections may still drain the buffers for a while.
        let this = self.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(STREAM_GRACE) => {}
                _ = this.shutdown.cancelled() => {}
            }
            this.streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&stream_id);
        });
    }

    async fn output(self: Arc<Self>, mut stream: TcpStream, stream_id: String, stdout: bool) {
        let pair = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&stream_id)
            .cloned();
        let Some(pair) = pair else {
            return write_error(
                &mut stream,
                &GardenError::ProcessNotFound(format!("stream {stream_id}")),
            )
            .await;
        };
        let buf = if stdout {
            pair.stdout.clone()
        } else {
            pair.stderr.clone()
        };
        buf.connect();
        if stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_err() {
            buf.abandon();
            return;
        }
        loop {
            let next = tokio::select! {
                b = buf.pop() => b,
                _ = self.shutdown.cancelled() => None,
            };
            match next {
                Some(b) => {
                    if stream.write_all(&b).await.is_err() {
                        buf.abandon();
                        return;
                    }
                }
                None => break,
            }
        }
        let _ = stream.shutdown().await;
    }
}

// ---- ordinary routes ----

/// A JSON response as Go's encoder writes it: one value and a newline.
fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    (status, [("content-type", "application/json")], body).into_response()
}

fn ok_empty() -> Response {
    json(StatusCode::OK, &serde_json::json!({}))
}

struct ApiError(GardenError);

impl From<GardenError> for ApiError {
    fn from(e: GardenError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "garden request failed");
        }
        json(status, &self.0.to_wire())
    }
}

type ApiResult = Result<Response, ApiError>;

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GardenError> {
    serde_json::from_slice(body)
        .map_err(|e| GardenError::bad_request(format!("malformed request body: {e}")))
}

fn query_map(q: &Option<String>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()).into_owned() {
        out.entry(k).or_insert(v); // first value per key, like Go's `Query().Get`
    }
    out
}

fn handles_param(q: &Option<String>) -> Vec<String> {
    query_map(q)
        .get("handles")
        .map(|h| {
            h.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn router(garden: Shared) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/capacity", get(capacity))
        .route("/containers", get(list).post(create))
        .route("/containers/bulk_info", get(bulk_info))
        .route("/containers/bulk_metrics", get(bulk_metrics))
        .route("/containers/{handle}", axum::routing::delete(destroy))
        .route("/containers/{handle}/info", get(info))
        .route("/containers/{handle}/metrics", get(metrics))
        .route("/containers/{handle}/stop", put(stop))
        .route("/containers/{handle}/files", put(stream_in).get(stream_out))
        .route("/containers/{handle}/limits/{kind}", get(limits))
        .route("/containers/{handle}/net/in", post(net_in))
        .route("/containers/{handle}/net/out", post(net_out))
        .route("/containers/{handle}/net/out/bulk", post(net_out_bulk))
        .route("/containers/{handle}/grace_time", put(grace_time))
        .route("/containers/{handle}/properties", get(properties))
        .route(
            "/containers/{handle}/properties/{key}",
            get(property).put(set_property).delete(remove_property),
        )
        .route(
            "/containers/{handle}/processes",
            post(needs_fresh_connection),
        )
        .route(
            "/containers/{handle}/processes/{*rest}",
            get(needs_fresh_connection),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            "garden",
            crate::telemetry::traced,
        ))
        .with_state(garden)
}

async fn needs_fresh_connection() -> ApiResult {
    Err(GardenError::bad_request("process routes must be the first request on a connection").into())
}

async fn ping(State(g): State<Shared>) -> ApiResult {
    g.ping().await?;
    Ok(ok_empty())
}

async fn capacity(State(g): State<Shared>) -> ApiResult {
    Ok(json(StatusCode::OK, &g.capacity().await?))
}

async fn list(State(g): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let filter: Properties = query_map(&q).into_iter().collect();
    Ok(json(
        StatusCode::OK,
        &HandlesResponse {
            handles: g.list(filter).await?,
        },
    ))
}

async fn create(State(g): State<Shared>, body: Bytes) -> ApiResult {
    let spec: ContainerSpec = parse_body(&body)?;
    Ok(json(
        StatusCode::OK,
        &HandleResponse {
            handle: g.create(spec).await?,
        },
    ))
}

async fn bulk_info(State(g): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    Ok(json(
        StatusCode::OK,
        &g.bulk_info(&handles_param(&q)).await?,
    ))
}

async fn bulk_metrics(State(g): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    Ok(json(
        StatusCode::OK,
        &g.bulk_metrics(&handles_param(&q)).await?,
    ))
}

async fn destroy(State(g): State<Shared>, Path(handle): Path<String>) -> ApiResult {
    g.destroy(&handle).await?;
    Ok(ok_empty())
}

async fn info(State(g): State<Shared>, Path(handle): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &g.info(&handle).await?))
}

async fn metrics(State(g): State<Shared>, Path(handle): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &g.metrics(&handle).await?))
}

async fn stop(State(g): State<Shared>, Path(handle): Path<String>, body: Bytes) -> ApiResult {
    let req: StopRequest = if body.is_empty() {
        StopRequest::default()
    } else {
        parse_body(&body)?
    };
    g.stop(&handle, req.kill).await?;
    Ok(ok_empty())
}

async fn stream_in(
    State(g): State<Shared>,
    Path(handle): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    use futures::StreamExt;
    let q = query_map(&q);
    let dest = q.get("destination").cloned().unwrap_or_else(|| "/".into());
    let user = q.get("user").cloned().unwrap_or_default();
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    g.stream_in(&handle, &user, &dest, Box::pin(stream)).await?;
    Ok(ok_empty())
}

async fn stream_out(
    State(g): State<Shared>,
    Path(handle): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query_map(&q);
    let source = q.get("source").cloned().unwrap_or_else(|| "/".into());
    let user = q.get("user").cloned().unwrap_or_default();
    let stream = g.stream_out(&handle, &user, &source).await?;
    Ok((
        [("content-type", "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn limits(
    State(g): State<Shared>,
    Path((handle, kind)): Path<(String, String)>,
) -> ApiResult {
    Ok(match kind.as_str() {
        "bandwidth" => json(StatusCode::OK, &g.bandwidth_limits(&handle).await?),
        "cpu" => json(StatusCode::OK, &g.cpu_limits(&handle).await?),
        "disk" => json(StatusCode::OK, &g.disk_limits(&handle).await?),
        "memory" => json(StatusCode::OK, &g.memory_limits(&handle).await?),
        other => {
            return Err(GardenError::bad_request(format!("unknown limit kind: {other}")).into())
        }
    })
}

async fn net_in(State(g): State<Shared>, Path(handle): Path<String>, body: Bytes) -> ApiResult {
    let req: NetInRequest = parse_body(&body)?;
    let (host_port, container_port) = g.net_in(&handle, req.host_port, req.container_port).await?;
    Ok(json(
        StatusCode::OK,
        &NetIn {
            host_port,
            container_port,
        },
    ))
}

async fn net_out(State(g): State<Shared>, Path(handle): Path<String>, body: Bytes) -> ApiResult {
    let rule: NetOutRule = parse_body(&body)?;
    g.net_out(&handle, vec![rule]).await?;
    Ok(ok_empty())
}

async fn net_out_bulk(
    State(g): State<Shared>,
    Path(handle): Path<String>,
    body: Bytes,
) -> ApiResult {
    let rules: Vec<NetOutRule> = parse_body(&body)?;
    g.net_out(&handle, rules).await?;
    Ok(ok_empty())
}

async fn grace_time(State(g): State<Shared>, Path(handle): Path<String>, body: Bytes) -> ApiResult {
    let nanos: u64 = parse_body(&body)?;
    g.set_grace_time(&handle, Duration::from_nanos(nanos))
        .await?;
    Ok(ok_empty())
}

async fn properties(State(g): State<Shared>, Path(handle): Path<String>) -> ApiResult {
    Ok(json(StatusCode::OK, &g.properties(&handle).await?))
}

async fn property(
    State(g): State<Shared>,
    Path((handle, key)): Path<(String, String)>,
) -> ApiResult {
    Ok(json(
        StatusCode::OK,
        &PropertyValue {
            value: g.property(&handle, &key).await?,
        },
    ))
}

async fn set_property(
    State(g): State<Shared>,
    Path((handle, key)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v: PropertyValue = parse_body(&body)?;
    g.set_property(&handle, &key, &v.value).await?;
    Ok(ok_empty())
}

async fn remove_property(
    State(g): State<Shared>,
    Path((handle, key)): Path<(String, String)>,
) -> ApiResult {
    g.remove_property(&handle, &key).await?;
    Ok(ok_empty())
}
