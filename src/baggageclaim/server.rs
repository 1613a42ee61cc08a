//! Baggageclaim's HTTP routes (spec §2.1) over any `Baggageclaim` implementation.

use crate::proto::baggageclaim::{
    AsyncHandle, AsyncVolume, Baggageclaim, BaggageclaimError, Encoding, ErrorBody,
    PrivilegedRequest, Properties, PropertyRequest, VolumeRequest,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Shared = Arc<dyn Baggageclaim>;

/// The error response: status from the variant, body `{"error": message}`.
pub struct ApiError(BaggageclaimError);

impl From<BaggageclaimError> for ApiError {
    fn from(e: BaggageclaimError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "baggageclaim request failed");
        }
        (
            status,
            Json(ErrorBody {
                error: self.0.to_string(),
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The router; tests may drive it without a socket.
pub fn router(bc: Shared) -> Router {
    Router::new()
        .route("/volumes", get(list).post(create))
        .route("/volumes-async", post(create_async))
        .route(
            "/volumes-async/{handle}",
            get(async_result).delete(forget_async),
        )
        .route("/volumes/destroy", delete(destroy_many))
        .route("/volumes/cleanup-orphans", post(cleanup))
        .route("/volumes/{handle}", get(lookup).delete(destroy))
        .route("/volumes/{handle}/properties/{property}", put(set_property))
        .route(
            "/volumes/{handle}/privileged",
            get(privileged).put(set_privileged),
        )
        .route("/volumes/{handle}/stream-in", put(stream_in))
        .route("/volumes/{handle}/stream-out", put(stream_out))
        .route("/volumes/{handle}/stream-p2p-out", put(stream_p2p_out))
        .route("/p2p-url", get(p2p_url))
        .route_layer(axum::middleware::from_fn_with_state(
            "baggageclaim",
            crate::telemetry::traced,
        ))
        .with_state(bc)
}

/// Serves until `shutdown` fires, then waits for in-flight requests.
pub async fn run(
    listener: TcpListener,
    bc: Shared,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(bc))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn query_map(q: &Option<String>) -> HashMap<String, String> {
    query_pairs(q).into_iter().collect()
}

fn parse_request(body: &[u8]) -> Result<VolumeRequest, BaggageclaimError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BaggageclaimError::BadRequest(format!("failed to decode request: {e}")))?;
    match value
        .get("strategy")
        .and_then(|s| s.get("type"))
        .and_then(|t| t.as_str())
    {
        None => return Err(BaggageclaimError::Unprocessable("no strategy given".into())),
        Some("empty" | "cow" | "import") => {}
        Some(other) => {
            return Err(BaggageclaimError::Unprocessable(format!(
                "unknown strategy: {other}"
            )))
        }
    }
    serde_json::from_value(value).map_err(|e| match e.to_string() {
        m if m.contains("missing field `volume`") => BaggageclaimError::Unprocessable(
            "copy-on-write strategy requires a parent volume".into(),
        ),
        m => BaggageclaimError::BadRequest(format!("failed to decode request: {m}")),
    })
}

async fn list(State(bc): State<Shared>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let mut filter = Properties::new();
    for (k, v) in query_pairs(&q) {
        if filter.insert(k.clone(), v).is_some() {
            return Err(BaggageclaimError::Unprocessable(format!(
                "a property may only have a single value: {k}"
            ))
            .into());
        }
    }
    Ok(Json(bc.list_volumes(filter).await?).into_response())
}

async fn create(State(bc): State<Shared>, body: Bytes) -> ApiResult<Response> {
    let req = parse_request(&body)?;
    let volume = bc.create_volume(req).await?;
    Ok((StatusCode::CREATED, Json(volume)).into_response())
}

async fn create_async(State(bc): State<Shared>, body: Bytes) -> ApiResult<Response> {
    let req = parse_request(&body)?;
    let handle = bc.create_volume_async(req).await?;
    Ok((StatusCode::CREATED, Json(AsyncHandle { handle })).into_response())
}

async fn async_result(State(bc): State<Shared>, Path(handle): Path<String>) -> ApiResult<Response> {
    match bc.create_volume_async_result(&handle).await? {
        AsyncVolume::Pending => Ok(StatusCode::NO_CONTENT.into_response()),
        AsyncVolume::Done(v) => Ok(Json(v).into_response()),
    }
}

async fn forget_async(
    State(bc): State<Shared>,
    Path(handle): Path<String>,
) -> ApiResult<StatusCode> {
    bc.forget_volume_async(&handle).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn lookup(State(bc): State<Shared>, Path(handle): Path<String>) -> ApiResult<Response> {
    Ok(Json(bc.lookup_volume(&handle).await?).into_response())
}

async fn destroy(State(bc): State<Shared>, Path(handle): Path<String>) -> ApiResult<StatusCode> {
    bc.destroy_volume(&handle).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn destroy_many(State(bc): State<Shared>, body: Bytes) -> ApiResult<StatusCode> {
    let handles: Vec<String> = serde_json::from_slice(&body)
        .map_err(|e| BaggageclaimError::BadRequest(format!("failed to decode request: {e}")))?;
    bc.destroy_volumes(&handles).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cleanup(State(bc): State<Shared>) -> ApiResult<StatusCode> {
    bc.cleanup_orphans().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_property(
    State(bc): State<Shared>,
    Path((handle, property)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: PropertyRequest = serde_json::from_slice(&body)
        .map_err(|e| BaggageclaimError::BadRequest(format!("failed to decode request: {e}")))?;
    bc.set_property(&handle, &property, &req.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn privileged(State(bc): State<Shared>, Path(handle): Path<String>) -> ApiResult<Response> {
    Ok(Json(bc.privileged(&handle).await?).into_response())
}

async fn set_privileged(
    State(bc): State<Shared>,
    Path(handle): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: PrivilegedRequest = serde_json::from_slice(&body)
        .map_err(|e| BaggageclaimError::BadRequest(format!("failed to decode request: {e}")))?;
    bc.set_privileged(&handle, req.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn encoding_header(headers: &HeaderMap, name: &str) -> Result<Encoding, BaggageclaimError> {
    match headers.get(name).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("") => Ok(Encoding::Raw),
        Some(v) => v.parse(),
    }
}

async fn stream_in(
    State(bc): State<Shared>,
    Path(handle): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let q = query_map(&q);
    let encoding = encoding_header(&headers, "content-encoding")?;
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        None => None,
        Some(l) => Some(
            l.parse::<f64>()
                .map_err(|_| BaggageclaimError::bad_request(format!("invalid limit: {l}")))?,
        ),
    };
    let path = q.get("path").cloned().unwrap_or_else(|| ".".into());
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    bc.stream_in(&handle, &path, encoding, limit, Box::pin(stream))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stream_out(
    State(bc): State<Shared>,
    Path(handle): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = query_map(&q);
    let encoding = encoding_header(&headers, "accept-encoding")?;
    let path = q.get("path").cloned().unwrap_or_else(|| ".".into());
    let stream = bc.stream_out(&handle, &path, encoding).await?;
    Ok((
        [("content-type", "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Answers at once with a text body: a newline every 30 s while the transfer runs, then
/// `ok` or the error text (spec §2.4).
async fn stream_p2p_out(
    State(bc): State<Shared>,
    Path(handle): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q = query_map(&q);
    let (Some(path), Some(url), Some(enc)) =
        (q.get("path"), q.get("streamInURL"), q.get("encoding"))
    else {
        return Err(
            BaggageclaimError::bad_request("path, streamInURL and encoding are required").into(),
        );
    };
    let encoding: Encoding = enc.parse()?;
    bc.lookup_volume(&handle).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (path, url) = (path.clone(), url.clone());
    // Owned by the response: it ends with the transfer, or when the caller hangs up.
    tokio::spawn(async move {
        let transfer = bc.stream_p2p_out(&handle, &path, encoding, &url);
        tokio::pin!(transfer);
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        let outcome = loop {
            tokio::select! {
                r = &mut transfer => break r,
                _ = tick.tick() => {
                    if tx.send(Ok(Bytes::from_static(b"\n"))).await.is_err() {
                        return; // the caller went away: dropping `transfer` cancels it
                    }
                }
            }
        };
        let text = match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let _ = tx.send(Ok(Bytes::from(text))).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(([("content-type", "text/plain")], Body::from_stream(stream)).into_response())
}

async fn p2p_url(State(bc): State<Shared>) -> ApiResult<Response> {
    Ok(bc.p2p_url().await?.into_response())
}
