//! Garden test helpers: a server with the process backend, output capture.

use super::StopOnDrop;
use bytes::Bytes;
use concourse::garden::backend::ProcessBackend;
use concourse::garden::{server, Containers, GardenClient, GardenConfig};
use concourse::proto::garden::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct G {
    pub client: GardenClient,
    pub url: String,
    pub dir: tempfile::TempDir,
    _stop: StopOnDrop,
}

pub async fn start() -> G {
    let dir = tempfile::tempdir().expect("tmp");
    let containers = Containers::new(
        Arc::new(ProcessBackend),
        GardenConfig {
            dir: dir.path().join("containers"),
            default_grace_time: Duration::ZERO,
            max_containers: 0,
        },
    )
    .expect("containers");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let token = CancellationToken::new();
    tokio::spawn(server::run(listener, Arc::new(containers), token.clone()));
    G {
        client: GardenClient::new(&url),
        url,
        dir,
        _stop: StopOnDrop(token),
    }
}

/// Output channels and a task collecting each into a string.
pub struct Captured {
    pub stdout: tokio::task::JoinHandle<String>,
    pub stderr: tokio::task::JoinHandle<String>,
}

pub fn capture() -> (ProcessIo, Captured) {
    let (otx, orx) = mpsc::channel(16);
    let (etx, erx) = mpsc::channel(16);
    let io = ProcessIo {
        stdin: None,
        stdout: Some(otx),
        stderr: Some(etx),
        ..Default::default()
    };
    (
        io,
        Captured {
            stdout: tokio::spawn(drain(orx)),
            stderr: tokio::spawn(drain(erx)),
        },
    )
}

pub async fn drain(mut rx: mpsc::Receiver<Bytes>) -> String {
    let mut out = Vec::new();
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn sh(script: &str) -> ProcessSpec {
    ProcessSpec {
        path: "sh".into(),
        args: vec!["-c".into(), script.into()],
        ..Default::default()
    }
}

pub async fn container(g: &G, handle: &str) -> String {
    g.client
        .create(ContainerSpec {
            handle: handle.into(),
            ..Default::default()
        })
        .await
        .expect("create")
}
