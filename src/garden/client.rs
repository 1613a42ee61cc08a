//! The HTTP client of a Garden server, implementing the `Garden` trait. Process routes
//! use raw connections (spec §1.3): one control connection plus one per output stream.
//! The tasks pumping those connections belong to them: each ends when its connection
//! closes (the server closes all three once the process exited and its output drained).

use super::http1::{self, Head, Prefixed};
use crate::proto::garden::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Method, RequestBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{watch, Mutex};

/// How long Garden may take to answer a run, an attach or an output stream's request.
const HIJACK_ANSWER: Duration = Duration::from_secs(60);

/// Talks to one Garden at `base_url` (e.g. `http://127.0.0.1:7777`).
#[derive(Clone)]
pub struct GardenClient {
    base: String,
    addr: String,
    http: reqwest::Client,
}

fn transport(e: impl std::fmt::Display) -> GardenError {
    GardenError::Other(format!("garden connection: {e}"))
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl GardenClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(base_url, crate::proto::worker_http_client())
    }

    /// A client over `http` (the TSA's keeps no idle connections in a worker's tunnel).
    pub fn with_http(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        let base = base_url.into().trim_end_matches('/').to_string();
        let addr = url::Url::parse(&base)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| base.trim_start_matches("http://").to_string());
        GardenClient { base, addr, http }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        crate::telemetry::with_traceparent(
            self.http.request(method, format!("{}{}", self.base, path)),
        )
    }

    async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response, GardenError> {
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Err(decode_error(status, text.as_bytes()))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, GardenError> {
        let resp = self.send(self.request(Method::GET, path)).await?;
        resp.json().await.map_err(transport)
    }

    async fn send_empty(&self, req: RequestBuilder) -> Result<(), GardenError> {
        self.send(req).await.map(|_| ())
    }

    /// Opens a raw connection, sends one request and reads the response head (within
    /// [`HIJACK_ANSWER`]).
    async fn hijack(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(Head, TcpStream), GardenError> {
        let trace = crate::telemetry::traceparent()
            .map(|tp| format!("traceparent: {tp}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{trace}Connection: close\r\n\r\n",
            body.len()
        );
        let open = async {
            let mut stream = TcpStream::connect(&self.addr).await.map_err(transport)?;
            let _ = stream.set_nodelay(true);
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(transport)?;
            stream.write_all(body).await.map_err(transport)?;
            let (head, _) = http1::read_head(&mut stream, false)
                .await
                .map_err(transport)?
                .ok_or_else(|| transport("closed before answering"))?;
            Ok::<_, GardenError>((head, stream))
        };
        // Garden answers once the process is spawned or found: a connection that never
        // answers (a tunnel to a worker that went away) must not hold a step forever.
        let (head, mut stream) =
            tokio::time::timeout(HIJACK_ANSWER, open)
                .await
                .map_err(|_| {
                    transport(format!(
                        "no answer to {method} {path} within {HIJACK_ANSWER:?}"
                    ))
                })??;
        if !(200..300).contains(&head.status) {
            let mut body = head.rest.clone();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut body)).await;
            if let Some(len) = head.content_length() {
                body.truncate(len);
            }
            return Err(decode_error(head.status, &body));
        }
        Ok((head, stream))
    }

    async fn process(
        &self,
        handle: &str,
        head: Head,
        stream: TcpStream,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError> {
        let (read_half, write_half) = stream.into_split();
        let mut lines = BufReader::new(Prefixed::new(head.rest, read_half)).lines();
        let first = lines
            .next_line()
            .await
            .map_err(transport)?
            .ok_or_else(|| transport("no process payload"))?;
        let first: ProcessPayload =
            serde_json::from_str(&first).map_err(|e| transport(format!("decode failed: {e}")))?;
        let id = first.process_id.clone();
        let writer = Arc::new(Mutex::new(write_half));

        let mut streams = Vec::new();
        for (tx, name) in [(io.stdout, "stdout"), (io.stderr, "stderr")] {
            let Some(tx) = tx else { continue };
            let path = format!(
                "/containers/{}/processes/{}/attaches/{}/{name}",
                seg(handle),
                seg(&id),
                seg(&first.stream_id)
            );
            let (head, mut conn) = self.hijack("GET", &path, b"").await?;
            streams.push(tokio::spawn(async move {
                if !head.rest.is_empty() && tx.send(Bytes::from(head.rest)).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        return;
                    }
                }
            }));
        }

        let (w, pid) = (writer.clone(), id.clone());
        match io.stdin {
            Some(mut stdin) => {
                tokio::spawn(async move {
                    while let Some(chunk) = stdin.recv().await {
                        let p = ProcessPayload {
                            process_id: pid.clone(),
                            source: Some(SOURCE_STDIN),
                            data: Some(String::from_utf8_lossy(&chunk).into_owned()),
                            ..Default::default()
                        };
                        if write_payload(&w, &p).await.is_err() {
                            return;
                        }
                    }
                    let _ = write_payload(
                        &w,
                        &ProcessPayload {
                            process_id: pid,
                            source: Some(SOURCE_STDIN),
                            ..Default::default()
                        },
                    )
                    .await;
                });
            }
            None => {
                let p = ProcessPayload {
                    process_id: pid,
                    source: Some(SOURCE_STDIN),
                    ..Default::default()
                };
                let _ = write_payload(&w, &p).await;
            }
        }

        let (result_tx, result_rx) = watch::channel(None);
        tokio::spawn(async move {
            let mut outcome = Err(GardenError::Other("connection: decode failed: EOF".into()));
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(p) = serde_json::from_str::<ProcessPayload>(&line) else {
                    continue;
                };
                if let Some(code) = p.exit_status {
                    outcome = Ok(code);
                    break;
                }
                if let Some(e) = p.error {
                    outcome = Err(GardenError::Other(e));
                    break;
                }
            }
            // The exit status counts only once both output streams reached EOF.
            if outcome.is_ok() {
                futures::future::join_all(streams).await;
            }
            let _ = result_tx.send(Some(outcome));
        });
        Ok(Box::new(ClientProcess {
            id,
            writer,
            result: result_rx,
        }))
    }
}

fn decode_error(status: u16, body: &[u8]) -> GardenError {
    match serde_json::from_slice::<WireError>(body) {
        Ok(w) => GardenError::from_wire(w, status),
        Err(_) => {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if (400..500).contains(&status) {
                GardenError::BadRequest(text)
            } else {
                GardenError::Other(format!("garden answered {status}: {text}"))
            }
        }
    }
}

async fn write_payload(w: &Mutex<OwnedWriteHalf>, p: &ProcessPayload) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(p).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut w = w.lock().await;
    w.write_all(&line).await?;
    w.flush().await
}

/// A process reached over a control connection.
struct ClientProcess {
    id: String,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    result: watch::Receiver<Option<Result<i32, GardenError>>>,
}

#[async_trait]
impl Process for ClientProcess {
    fn id(&self) -> &str {
        &self.id
    }

    async fn wait(&self) -> Result<i32, GardenError> {
        let mut rx = self.result.clone();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return Err(GardenError::Other("connection: decode failed: EOF".into()));
            }
        }
    }

    async fn set_tty(&self, tty: TtySpec) -> Result<(), GardenError> {
        let p = ProcessPayload {
            process_id: self.id.clone(),
            tty: Some(tty),
            ..Default::default()
        };
        write_payload(&self.writer, &p).await.map_err(transport)
    }

    async fn signal(&self, signal: Signal) -> Result<(), GardenError> {
        let p = ProcessPayload {
            process_id: self.id.clone(),
            signal: Some(signal.wire()),
            ..Default::default()
        };
        write_payload(&self.writer, &p).await.map_err(transport)
    }
}

#[async_trait]
impl Garden for GardenClient {
    async fn ping(&self) -> Result<(), GardenError> {
        self.send_empty(self.request(Method::GET, "/ping")).await
    }

    async fn capacity(&self) -> Result<Capacity, GardenError> {
        self.get_json("/capacity").await
    }

    async fn create(&self, spec: ContainerSpec) -> Result<String, GardenError> {
        let resp = self
            .send(self.request(Method::POST, "/containers").json(&spec))
            .await?;
        Ok(resp
            .json::<HandleResponse>()
            .await
            .map_err(transport)?
            .handle)
    }

    async fn list(&self, filter: Properties) -> Result<Vec<String>, GardenError> {
        let pairs: Vec<(String, String)> = filter.into_iter().collect();
        let resp = self
            .send(self.request(Method::GET, "/containers").query(&pairs))
            .await?;
        Ok(resp
            .json::<HandlesResponse>()
            .await
            .map_err(transport)?
            .handles)
    }

    async fn destroy(&self, handle: &str) -> Result<(), GardenError> {
        self.send_empty(self.request(Method::DELETE, &format!("/containers/{}", seg(handle))))
            .await
    }

    async fn stop(&self, handle: &str, kill: bool) -> Result<(), GardenError> {
        let req = self
            .request(Method::PUT, &format!("/containers/{}/stop", seg(handle)))
            .json(&StopRequest { kill });
        self.send_empty(req).await
    }

    async fn info(&self, handle: &str) -> Result<ContainerInfo, GardenError> {
        self.get_json(&format!("/containers/{}/info", seg(handle)))
            .await
    }

    async fn bulk_info(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, ContainerInfoEntry>, GardenError> {
        let resp = self
            .send(
                self.request(Method::GET, "/containers/bulk_info")
                    .query(&[("handles", handles.join(","))]),
            )
            .await?;
        resp.json().await.map_err(transport)
    }

    async fn metrics(&self, handle: &str) -> Result<Metrics, GardenError> {
        self.get_json(&format!("/containers/{}/metrics", seg(handle)))
            .await
    }

    async fn bulk_metrics(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, ContainerMetricsEntry>, GardenError> {
        let resp = self
            .send(
                self.request(Method::GET, "/containers/bulk_metrics")
                    .query(&[("handles", handles.join(","))]),
            )
            .await?;
        resp.json().await.map_err(transport)
    }

    async fn properties(&self, handle: &str) -> Result<Properties, GardenError> {
        self.get_json(&format!("/containers/{}/properties", seg(handle)))
            .await
    }

    async fn property(&self, handle: &str, key: &str) -> Result<String, GardenError> {
        let v: PropertyValue = self
            .get_json(&format!(
                "/containers/{}/properties/{}",
                seg(handle),
                seg(key)
            ))
            .await?;
        Ok(v.value)
    }

    async fn set_property(&self, handle: &str, key: &str, value: &str) -> Result<(), GardenError> {
        let req = self
            .request(
                Method::PUT,
                &format!("/containers/{}/properties/{}", seg(handle), seg(key)),
            )
            .json(&PropertyValue {
                value: value.to_string(),
            });
        self.send_empty(req).await
    }

    async fn remove_property(&self, handle: &str, key: &str) -> Result<(), GardenError> {
        self.send_empty(self.request(
            Method::DELETE,
            &format!("/containers/{}/properties/{}", seg(handle), seg(key)),
        ))
        .await
    }

    async fn set_grace_time(&self, handle: &str, grace_time: Duration) -> Result<(), GardenError> {
        let req = self
            .request(
                Method::PUT,
                &format!("/containers/{}/grace_time", seg(handle)),
            )
            .json(&(grace_time.as_nanos() as u64));
        self.send_empty(req).await
    }

    async fn bandwidth_limits(&self, handle: &str) -> Result<BandwidthLimits, GardenError> {
        self.get_json(&format!("/containers/{}/limits/bandwidth", seg(handle)))
            .await
    }

    async fn cpu_limits(&self, handle: &str) -> Result<CpuLimits, GardenError> {
        self.get_json(&format!("/containers/{}/limits/cpu", seg(handle)))
            .await
    }

    async fn disk_limits(&self, handle: &str) -> Result<DiskLimits, GardenError> {
        self.get_json(&format!("/containers/{}/limits/disk", seg(handle)))
            .await
    }

    async fn memory_limits(&self, handle: &str) -> Result<MemoryLimits, GardenError> {
        self.get_json(&format!("/containers/{}/limits/memory", seg(handle)))
            .await
    }

    async fn net_in(
        &self,
        handle: &str,
        host_port: u32,
        container_port: u32,
    ) -> Result<(u32, u32), GardenError> {
        let body = NetInRequest {
            handle: handle.to_string(),
            host_port,
            container_port,
        };
        let resp = self
            .send(
                self.request(Method::POST, &format!("/containers/{}/net/in", seg(handle)))
                    .json(&body),
            )
            .await?;
        let n: NetIn = resp.json().await.map_err(transport)?;
        Ok((n.host_port, n.container_port))
    }

    async fn net_out(&self, handle: &str, rules: Vec<NetOutRule>) -> Result<(), GardenError> {
        let req = self
            .request(
                Method::POST,
                &format!("/containers/{}/net/out/bulk", seg(handle)),
            )
            .json(&rules);
        self.send_empty(req).await
    }

    async fn stream_in(
        &self,
        handle: &str,
        user: &str,
        destination: &str,
        tar: ByteStream,
    ) -> Result<(), GardenError> {
        let req = self
            .request(Method::PUT, &format!("/containers/{}/files", seg(handle)))
            .query(&[("user", user), ("destination", destination)])
            .header("Content-Type", "application/x-tar")
            .body(reqwest::Body::wrap_stream(tar));
        self.send_empty(req).await
    }

    async fn stream_out(
        &self,
        handle: &str,
        user: &str,
        source: &str,
    ) -> Result<ByteStream, GardenError> {
        let req = self
            .request(Method::GET, &format!("/containers/{}/files", seg(handle)))
            .query(&[("user", user), ("source", source)]);
        let resp = self.send(req).await?;
        Ok(Box::pin(
            resp.bytes_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        ))
    }

    async fn run(
        &self,
        handle: &str,
        spec: ProcessSpec,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError> {
        let body = serde_json::to_vec(&spec).map_err(transport)?;
        let (head, stream) = self
            .hijack(
                "POST",
                &format!("/containers/{}/processes", seg(handle)),
                &body,
            )
            .await?;
        self.process(handle, head, stream, io).await
    }

    async fn attach(
        &self,
        handle: &str,
        process_id: &str,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError> {
        let mut path = format!("/containers/{}/processes/{}", seg(handle), seg(process_id));
        let [out, err] = io.replay_from;
        if out > 0 || err > 0 {
            path.push_str(&format!("?stdout_from={out}&stderr_from={err}"));
        }
        let (head, stream) = self.hijack("GET", &path, b"").await?;
        self.process(handle, head, stream, io).await
    }
}
