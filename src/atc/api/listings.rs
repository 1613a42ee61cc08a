//! The large listings dashboards poll (`/api/v1/jobs`, `/api/v1/resources`, a pipeline's
//! jobs) are answered from their last body while the store says none of the tables they
//! read changed since it was built (`OverviewStore::tables_version`: a commit changing
//! one, from any web node, moves it), so polling clients share one build of a body instead
//! of each reading and encoding it. Callers that ask together while it is stale wait for
//! one build. Checks and heartbeats commit several times a second on a busy node; a jobs
//! listing rebuilt after each of them held 13 MB more while 16 clients polled
//! (BENCHMARKS.md).
//!
//! Never stale: the version is read before the data, so a body holds at least what was
//! committed when its version was read, and a later commit to its tables moves the version
//! the next request reads. The key names everything else an answer depends on (the route,
//! and the caller's visibility for cross-team listings).

use super::error::{ApiError, ApiResult};
use super::etag;
use crate::db::Store;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the jobs listings read: pipelines (with their teams' names), jobs and their builds.
pub const JOBS: &[&str] = &["teams", "pipelines", "jobs", "builds"];
/// What the resources listing reads: pipelines, resources and their check builds.
pub const RESOURCES: &[&str] = &["teams", "pipelines", "resources", "builds"];

/// A body not asked for this long is dropped (its clients stopped polling).
const UNUSED: Duration = Duration::from_secs(60);

/// What a cross-team listing shows a caller: everything (admin), or public pipelines and
/// those of its teams.
pub fn visibility(admin: bool, member_team_ids: &[i64]) -> String {
    if admin {
        return "admin".into();
    }
    let mut ids = member_team_ids.to_vec();
    ids.sort_unstable();
    format!("teams {ids:?}")
}

#[derive(Clone)]
struct Body {
    bytes: Bytes,
    etag: HeaderValue,
}

struct Entry {
    version: String,
    body: Arc<tokio::sync::OnceCell<Body>>,
    used: Instant,
    /// The length of the last body built: the next is about as long, and is written into
    /// a buffer of that size rather than one that doubles its way there.
    size: usize,
}

#[derive(Default)]
pub struct Listings(Mutex<HashMap<String, Entry>>);

impl Listings {
    /// The JSON answer for `key`: the cached body if none of `tables` (all that `build`
    /// reads) changed, else the one `build` makes (once, however many callers are waiting
    /// for it).
    pub async fn answer<T, F, Fut>(
        &self,
        store: &dyn Store,
        key: String,
        tables: &[&str],
        build: F,
    ) -> ApiResult<Response>
    where
        T: serde::Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let version = store.tables_version(tables).await?;
        let (cell, size) = {
            let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            entries.retain(|_, e| now.duration_since(e.used) < UNUSED);
            let entry = entries.entry(key).or_insert_with(|| Entry {
                version: version.clone(),
                body: Default::default(),
                used: now,
                size: 0,
            });
            if entry.version != version {
                entry.version = version;
                if let Some(b) = entry.body.get() {
                    entry.size = b.bytes.len();
                }
                entry.body = Default::default();
            }
            entry.used = now;
            (entry.body.clone(), entry.size)
        };
        let body = cell
            .get_or_try_init(|| async {
                let value = build().await?;
                let mut bytes = Vec::with_capacity(size + size / 16 + 64);
                serde_json::to_writer(&mut bytes, &value)
                    .map_err(|e| ApiError::Internal(format!("encoding response: {e}")))?;
                bytes.push(b'\n');
                // The body is kept until the data changes: not with the buffer's slack.
                if bytes.capacity() > bytes.len() + bytes.len() / 8 {
                    bytes.shrink_to_fit();
                }
                let etag = HeaderValue::from_str(&etag::tag_of(&bytes))
                    .map_err(|e| ApiError::Internal(format!("etag: {e}")))?;
                Ok::<_, ApiError>(Body {
                    bytes: bytes.into(),
                    etag,
                })
            })
            .await?
            .clone();
        Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::ETAG, body.etag),
            ],
            body.bytes,
        )
            .into_response())
    }
}
