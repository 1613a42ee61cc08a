//! OpenTelemetry traces (`--tracing-otlp-address`): a real `concourse web` and two
//! `concourse worker`s export to a collector this test runs with the protocol's own types
//! (opentelemetry-proto's gRPC TraceService). A build is one trace: its steps, container
//! creation and volume streaming are spans under it, the workers' Garden and Baggageclaim
//! requests join it through `traceparent`, and the task process sees it as `TRACEPARENT`.

mod common;
mod worker_builds_support;

use common::Backend;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker_builds_support::{Cluster, MAIN};

/// A span as received, with the service that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn trace(&self) -> String {
        hex(&self.span.trace_id)
    }
    fn id(&self) -> String {
        hex(&self.span.span_id)
    }
    fn parent(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    fn attr(&self, key: &str) -> Option<String> {
        string_attr(&self.span.attributes, key)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs.iter().find(|a| a.key == key)?.value.as_ref()?;
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut all = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| string_attr(&r.attributes, "service.name"))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    all.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Collector, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (collector, addr)
    }

    fn spans(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `found` picks something out of what has arrived (exports are batched).
    async fn eventually<T>(&self, what: &str, found: impl Fn(&[Received]) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let spans = self.spans();
            if let Some(t) = found(&spans) {
                return t;
            }
            let names: Vec<String> = spans
                .iter()
                .map(|s| format!("{}:{}", s.service, s.span.name))
                .collect();
            assert!(Instant::now() < deadline, "never got {what}; got {names:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A get on one worker and a task on the other (tags), so the input streams between them.
const PIPELINE: &str = r#"
resources:
- name: src
  type: mock
  tags: [one]
  source: {initial_version: v1, create_files: {hello.txt: hi}}
jobs:
- name: traced
  plan:
  - get: src
    tags: [one]
  - task: show
    tags: [two]
    config:
      platform: linux
      inputs: [{name: src}]
      run: {path: sh, args: [-c, 'cat src/hello.txt; echo "tp=$TRACEPARENT"']}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_is_one_trace_across_the_web_node_and_its_workers() {
    let (collector, addr) = Collector::start().await;
    let backend = Backend::postgres("tracing_otlp").unwrap_or(Backend::Embedded);
    let c = Cluster::start(backend, &["--tracing-otlp-address", &addr]).await;
    let traced = ["--tracing-otlp-address", &addr];
    let _w1 = c.start_worker("w1", &[&traced[..], &["--tag", "one"]].concat());
    let _w2 = c.start_worker("w2", &[&traced[..], &["--tag", "two"]].concat());
    c.eventually_state("w1", "running").await;
    c.eventually_state("w2", "running").await;
    let file = c.work.path().join("traced.yml");
    std::fs::write(&file, PIPELINE).unwrap();
    let file = file.to_string_lossy().into_owned();
    c.fly
        .ok(&["-t", MAIN, "set-pipeline", "-n", "-p", "p", "-c", &file]);
    c.fly.ok(&["-t", MAIN, "unpause-pipeline", "-p", "p"]);
    let build = c.trigger("main", "traced").await;
    assert_eq!(
        c.finished(build, Duration::from_secs(60)).await,
        "succeeded"
    );
    let events = c
        .events_until(build, &["tp=00-"], Duration::from_secs(10))
        .await;
    // `tp=` also opens the task's config in the events: the printed one has a value.
    let tp = events
        .split("tp=00-")
        .nth(1)
        .and_then(|rest| rest.split(['\\', '"']).next())
        .map(|rest| format!("00-{rest}"))
        .unwrap_or_default();

    // The build: a root span with its labels.
    let root = collector
        .eventually("the build's span", |spans| {
            spans
                .iter()
                .find(|s| s.span.name == "build" && s.attr("build_id") == Some(build.to_string()))
                .cloned()
        })
        .await;
    assert_eq!(root.service, "concourse-web");
    assert_eq!(root.parent(), "", "a build is a trace of its own");
    assert_eq!(root.attr("team").as_deref(), Some("main"));
    assert_eq!(root.attr("pipeline").as_deref(), Some("p"));
    assert_eq!(root.attr("job").as_deref(), Some("traced"));
    let trace = root.trace();
    let in_trace = |spans: &[Received], name: &str| -> Vec<Received> {
        spans
            .iter()
            .filter(|s| s.trace() == trace && s.span.name == name)
            .cloned()
            .collect()
    };

    // Its steps, under it; container creation under each step; the input streamed.
    let (get, task) = collector
        .eventually("the get and task steps", |spans| {
            let get = in_trace(spans, "get").pop()?;
            let task = in_trace(spans, "task").pop()?;
            Some((get, task))
        })
        .await;
    assert_eq!((get.parent(), task.parent()), (root.id(), root.id()));
    assert_eq!(task.attr("step").as_deref(), Some("show"));
    let creations = collector
        .eventually("container creation in both steps", |spans| {
            let c = in_trace(spans, "create-container");
            let parents: Vec<String> = c.iter().map(Received::parent).collect();
            (parents.contains(&get.id()) && parents.contains(&task.id())).then_some(c)
        })
        .await;
    let streamed = collector
        .eventually("the input streamed between workers", |spans| {
            in_trace(spans, "stream-volume").pop()
        })
        .await;
    assert_eq!(streamed.parent(), task.id());
    assert_eq!(streamed.attr("source_worker").as_deref(), Some("w1"));
    assert_eq!(streamed.attr("dest_worker").as_deref(), Some("w2"));

    // The workers' side of it: their requests are children of the web node's spans.
    let web_ids: Vec<String> = collector
        .spans()
        .iter()
        .filter(|s| s.trace() == trace && s.service == "concourse-web")
        .map(Received::id)
        .collect();
    let worker_spans = collector
        .eventually("the workers' request spans in the build's trace", |spans| {
            let w: Vec<Received> = spans
                .iter()
                .filter(|s| s.trace() == trace && s.service == "concourse-worker")
                .cloned()
                .collect();
            let names: Vec<&str> = w.iter().map(|s| s.span.name.as_str()).collect();
            let has = |n: &str| names.iter().any(|x| x.starts_with(n));
            (has("garden POST /containers") && has("garden run") && has("baggageclaim "))
                .then_some(w)
        })
        .await;
    let creation_ids: Vec<String> = creations.iter().map(Received::id).collect();
    for s in &worker_spans {
        assert!(
            web_ids.contains(&s.parent()) || worker_spans.iter().any(|p| p.id() == s.parent()),
            "{} has a parent outside the build's trace",
            s.span.name
        );
    }
    assert!(
        worker_spans
            .iter()
            .any(|s| s.span.name == "garden POST /containers" && creation_ids.contains(&s.parent())),
        "Garden's container creation is a child of the web node's"
    );

    // The task process got the task step's context.
    assert_eq!(
        tp,
        format!("00-{trace}-{}-01", task.id()),
        "TRACEPARENT of the task process:\n{events}"
    );

    // Scheduling and checks are traced too (traces of their own).
    collector
        .eventually("a scheduling span of the pipeline", |spans| {
            spans
                .iter()
                .find(|s| s.span.name == "schedule" && s.attr("pipeline").as_deref() == Some("p"))
                .cloned()
        })
        .await;
    collector
        .eventually("a check span", |spans| {
            spans.iter().find(|s| s.span.name == "check").cloned()
        })
        .await;
}
