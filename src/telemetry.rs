//! OpenTelemetry traces, with upstream's `--tracing-*` flags. The spans this binary makes (a
//! build and its steps, scheduling, checks, container creation, volume streaming; a
//! worker's Garden and Baggageclaim requests) go to an OTLP/gRPC collector. The W3C trace
//! context crosses to workers as a `traceparent` header and into task and resource
//! processes as `TRACEPARENT`, so one build is one trace across the web node and workers.

use anyhow::Context as _;
use clap::Args;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{filter::Targets, Layer, Registry};

/// Where spans go (upstream's names; each also `CONCOURSE_<FLAG>`).
#[derive(Debug, Clone, Default, Args)]
pub struct TracingArgs {
    /// Service name of this process's spans (default: concourse-web, or concourse-worker).
    #[arg(long, env = "CONCOURSE_TRACING_SERVICE_NAME")]
    pub tracing_service_name: Option<String>,
    /// KEY:VALUE attribute on every span (repeatable).
    #[arg(
        long,
        env = "CONCOURSE_TRACING_ATTRIBUTE",
        value_delimiter = ',',
        value_name = "KEY:VALUE"
    )]
    pub tracing_attribute: Vec<String>,
    /// OTLP/gRPC collector to send spans to (HOST:PORT).
    #[arg(long, env = "CONCOURSE_TRACING_OTLP_ADDRESS")]
    pub tracing_otlp_address: Option<String>,
    /// KEY:VALUE header on every export request (repeatable), e.g. a collector's API key.
    #[arg(
        long,
        env = "CONCOURSE_TRACING_OTLP_HEADER",
        value_delimiter = ',',
        value_name = "KEY:VALUE"
    )]
    pub tracing_otlp_header: Vec<String>,
    /// Connect to the collector over TLS (the system's roots).
    #[arg(long, env = "CONCOURSE_TRACING_OTLP_USE_TLS")]
    pub tracing_otlp_use_tls: bool,
}

/// The export pipeline: its layer goes into the subscriber, and the provider is shut down
/// (flushing what is queued) when the process ends.
pub struct Exporter {
    pub layer: Box<dyn Layer<Registry> + Send + Sync>,
    pub provider: SdkTracerProvider,
}

fn pair<'a>(flag: &str, kv: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    kv.split_once(':')
        .filter(|(k, _)| !k.is_empty())
        .with_context(|| format!("--{flag} {kv:?}: expected KEY:VALUE"))
}

impl TracingArgs {
    /// The exporter, when a collector is configured. Builds a gRPC channel that connects
    /// lazily: call within the runtime.
    pub fn exporter(&self, default_service: &str) -> anyhow::Result<Option<Exporter>> {
        let Some(address) = &self.tracing_otlp_address else {
            return Ok(None);
        };
        let scheme = if self.tracing_otlp_use_tls {
            "https"
        } else {
            "http"
        };
        let mut headers = axum::http::HeaderMap::new();
        for h in &self.tracing_otlp_header {
            let (k, v) = pair("tracing-otlp-header", h)?;
            let name = axum::http::HeaderName::from_bytes(k.trim().as_bytes())
                .with_context(|| format!("--tracing-otlp-header {h:?}: invalid name"))?;
            let value = axum::http::HeaderValue::from_str(v.trim())
                .with_context(|| format!("--tracing-otlp-header {h:?}: invalid value"))?;
            headers.insert(name, value);
        }
        let metadata =
            opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("{scheme}://{address}"))
            .with_metadata(metadata);
        if self.tracing_otlp_use_tls {
            builder = builder.with_tls_config(
                opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                    .with_native_roots(),
            );
        }
        let exporter = builder.build().context("--tracing-otlp-address")?;
        let mut attributes = Vec::new();
        for a in &self.tracing_attribute {
            let (k, v) = pair("tracing-attribute", a)?;
            attributes.push(KeyValue::new(k.to_string(), v.to_string()));
        }
        let service = self
            .tracing_service_name
            .clone()
            .unwrap_or_else(|| default_service.to_string());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .with_attributes(attributes)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        // Only this binary's own spans: the libraries' (hyper, h2, tonic) are noise, and
        // exporting the exporter's would feed back into itself.
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("concourse"))
            .with_filter(Targets::new().with_target("concourse", tracing::Level::INFO))
            .boxed();
        Ok(Some(Exporter { layer, provider }))
    }
}

/// The current span's context as a W3C `traceparent`, when it is traced.
pub fn traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// `req` carrying the current span's context, when it is traced (to a worker's Garden or
/// Baggageclaim).
pub fn with_traceparent(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match traceparent() {
        Some(tp) => req.header("traceparent", tp),
        None => req,
    }
}

/// A step process's share of the trace: `TRACEPARENT`, as upstream sets it for task and
/// resource processes when tracing is configured.
pub fn process_env() -> Option<String> {
    traceparent().map(|tp| format!("TRACEPARENT={tp}"))
}

/// The span of one request a worker serves (`name`), a child of the remote span its
/// `traceparent` names (a root when there is none or it is malformed).
pub fn request_span(name: &str, traceparent: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!("request", otel.name = %name);
    if let Some(sc) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(sc));
    }
    span
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; other versions may append fields.
fn parse_traceparent(s: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let mut parts = s.trim().split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Parents each request's span on the caller's `traceparent`: a route layer of the
/// worker's Garden and Baggageclaim routers (`service` names which).
pub async fn traced(
    axum::extract::State(service): axum::extract::State<&'static str>,
    path: axum::extract::MatchedPath,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let name = format!("{service} {} {}", req.method(), path.as_str());
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    let span = request_span(&name, parent);
    next.run(req).instrument(span).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traceparent_round_trips_and_rejects_what_w3c_does() {
        let ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let sc = parse_traceparent(ok).expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_input_parses_or_is_refused_without_panicking(s in ".{0,80}") {
            let _ = parse_traceparent(&s);
        }

        #[test]
        fn valid_ids_parse_to_themselves(t in 1u128.., sp in 1u64.., f in 0u8..=1) {
            let s = format!("00-{t:032x}-{sp:016x}-{f:02x}");
            let sc = parse_traceparent(&s).expect("valid");
            prop_assert_eq!(sc.trace_id().to_string(), format!("{t:032x}"));
            prop_assert_eq!(sc.span_id().to_string(), format!("{sp:016x}"));
        }
    }
}
