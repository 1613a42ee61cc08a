//! Garden's hijacked process protocol on the wire (spec §1.3), byte for byte, and the
//! concurrent-destroy rule.

mod worker_support;

use concourse::proto::garden::*;
use std::time::Duration;
use tokio::sync::mpsc;
use worker_support::garden::*;
use worker_support::*;

/// Sends one raw request and returns everything the server writes until it closes.
async fn raw_exchange(url: &str, request: &str, then: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    s.write_all(then).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_hijacked_run_protocol_is_unframed_ndjson_after_the_head() {
    let g = start().await;
    container(&g, "raw").await;
    let spec = r#"{"id":"p","path":"sh","args":["-c","read x; echo got $x"]}"#;
    let request = format!(
        "POST /containers/raw/processes HTTP/1.1\r\nHost: api\r\nContent-Length: {}\r\n\r\n{spec}",
        spec.len()
    );
    // stdin and its end arrive on the same socket, right after the body.
    let stdin = b"{\"process_id\":\"p\",\"source\":0,\"data\":\"hi\\n\"}\n{\"process_id\":\"p\",\"source\":0}\n";
    let reply = raw_exchange(&g.url, &request, stdin).await;
    let (head, body) = reply.split_once("\r\n\r\n").expect("head");
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    let lines: Vec<ProcessPayload> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("payload"))
        .collect();
    assert_eq!(lines[0].process_id, "p");
    assert!(!lines[0].stream_id.is_empty());
    assert_eq!(lines.last().and_then(|l| l.exit_status), Some(0));
    // The output stays attachable for late readers.
    let out = raw_exchange(
        &g.url,
        &format!(
            "GET /containers/raw/processes/p/attaches/{}/stdout HTTP/1.1\r\nHost: api\r\n\r\n",
            lines[0].stream_id
        ),
        b"",
    )
    .await;
    assert_eq!(out, "HTTP/1.1 200 OK\r\n\r\ngot hi\n");

    let bad = raw_exchange(
        &g.url,
        "POST /containers/raw/processes HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
        b"{nope",
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let huge = raw_exchange(
        &g.url,
        "POST /containers/raw/processes HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
        b"",
    )
    .await;
    assert!(huge.starts_with("HTTP/1.1 400"), "{huge}");
    let unknown = raw_exchange(
        &g.url,
        "GET /containers/raw/processes/p/attaches/999/stdout HTTP/1.1\r\n\r\n",
        b"",
    )
    .await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    let gone = raw_exchange(
        &g.url,
        "GET /containers/ghost/processes/p HTTP/1.1\r\n\r\n",
        b"",
    )
    .await;
    assert!(
        gone.starts_with("HTTP/1.1 404") && gone.contains("ContainerNotFoundError"),
        "{gone}"
    );
}

#[tokio::test]
async fn a_second_concurrent_destroy_is_refused() {
    let g = start().await;
    container(&g, "twice").await;
    let (otx, mut orx) = mpsc::channel(16);
    let io = ProcessIo {
        stdout: Some(otx),
        ..Default::default()
    };
    // A process ignoring SIGTERM keeps the first destroy busy for its 10 s grace.
    let p = g
        .client
        .run(
            "twice",
            sh("trap '' TERM; echo ready; while true; do sleep 0.05; done"),
            io,
        )
        .await
        .expect("run");
    assert_eq!(
        orx.recv().await.as_deref(),
        Some(&b"ready\n"[..]),
        "the trap is set"
    );
    let destroys: Vec<_> = (0..2)
        .map(|_| {
            let c = g.client.clone();
            tokio::spawn(async move { c.destroy("twice").await })
        })
        .collect();
    let refused = eventually(Duration::from_secs(9), "one destroy refused", || async {
        destroys.iter().position(|d| d.is_finished())
    })
    .await;
    p.signal(Signal::Kill).await.expect("kill");
    let mut results = Vec::new();
    for d in destroys {
        results.push(d.await.expect("join"));
    }
    assert_eq!(
        results[refused],
        Err(GardenError::Other(
            "container already being destroyed".into()
        ))
    );
    assert_eq!(results[1 - refused], Ok(()));
}
