//! What makes polling the API cheap: JSON answers carry a weak `ETag` and a matching
//! `If-None-Match` gets `304` without a body, until something changes; large answers are
//! gzipped for clients that accept it (and only for them), event streams never.

mod common;

use common::{Backend, Fly, Server};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, ETAG, IF_NONE_MATCH};
use std::io::Read;

fn pipeline() -> String {
    let mut p = String::from("jobs:\n");
    for i in 0..40 {
        p.push_str(&format!(
            "- name: job-{i}\n  plan:\n  - task: t\n    config:\n      platform: linux\n      run: {{path: \"true\"}}\n"
        ));
    }
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_answers_are_304_and_large_ones_gzipped() {
    let s = Server::start(Backend::Embedded);
    let fly = Fly::new();
    fly.login(&s, "c");
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("p.yml");
    std::fs::write(&file, pipeline()).expect("write");
    fly.ok(&[
        "-t",
        "c",
        "set-pipeline",
        "-n",
        "-p",
        "p",
        "-c",
        file.to_str().expect("utf-8"),
    ]);
    let token = s.token("test", "test").await;
    let c = reqwest::Client::new();
    let jobs = s.api("/api/v1/teams/main/pipelines/p/jobs");

    let first = c.get(&jobs).bearer_auth(&token).send().await.expect("jobs");
    assert_eq!(first.status(), 200);
    assert!(
        first.headers().get(CONTENT_ENCODING).is_none(),
        "not asked for gzip"
    );
    let etag = first.headers()[ETAG].to_str().expect("etag").to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    let plain = first.bytes().await.expect("body");
    assert!(plain.len() > 1024, "a large answer: {} bytes", plain.len());

    // Unchanged: 304, no body.
    let again = c
        .get(&jobs)
        .bearer_auth(&token)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("jobs");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());

    // Gzipped for a client that accepts it, the same JSON inside.
    let zipped = c
        .get(&jobs)
        .bearer_auth(&token)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("jobs");
    assert_eq!(zipped.headers()[CONTENT_ENCODING], "gzip");
    let body = zipped.bytes().await.expect("body");
    assert!(body.len() < plain.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, plain.to_vec());

    // A change (a paused job) is a new answer with a new tag.
    fly.ok(&["-t", "c", "pause-job", "-j", "p/job-3"]);
    let changed = c
        .get(&jobs)
        .bearer_auth(&token)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("jobs");
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()[ETAG].to_str().expect("etag"), etag);

    // An event stream is never buffered for a tag nor compressed.
    let build = common::trigger_job(&s, &token, "p", "job-1").await;
    let events = c
        .get(s.api(&format!("/api/v1/builds/{build}/events")))
        .bearer_auth(&token)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("events");
    assert!(events.headers().get(CONTENT_ENCODING).is_none());
    assert!(events.headers().get(ETAG).is_none());
}
