//! Clearing resource caches (atc-api.md §3.6): `DELETE R/cache` and `DELETE RT/cache`
//! destroy the cache volumes a resource's (or custom type's) gets left on the workers.
//! A cache volume carries the pipeline and the resource or type it was fetched for
//! (`engine::labels::CACHE_RESOURCE*`); caches made before those labels existed are not
//! found and age out with their worker.

use super::containers::{volumes, WORKER_TIMEOUT};
use super::error::{ApiError, ApiResult};
use super::scope::{PipelineScope, ResourceScope};
use super::{json, AppState};
use crate::atc::engine::labels as l;
use crate::proto::baggageclaim::Properties;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json as j, Value};

#[derive(Debug, Default, Deserialize)]
struct ClearBody {
    #[serde(default)]
    version: Option<Value>,
}

/// Optional `{"version": {...}}`; an empty body (or no version) clears every version.
fn version_filter(body: &Bytes) -> ApiResult<Option<Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let b: ClearBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    Ok(b.version
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty())))
}

/// Whether a cache volume holds `version` (or any version when None). Version values are
/// compared as strings, as versions are string maps.
fn holds(props: &Properties, version: Option<&Value>) -> bool {
    let Some(want) = version else { return true };
    let Some(have) = props
        .get(l::VERSION)
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
    else {
        return false;
    };
    let (Some(want), Some(have)) = (want.as_object(), have.as_object()) else {
        return false;
    };
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    want.len() == have.len() && want.iter().all(|(k, v)| have.get(k).map(s) == Some(s(v)))
}

async fn clear(
    state: &AppState,
    team: &crate::db::TeamRow,
    pipeline_id: i64,
    owner: (&str, &str),
    version: Option<&Value>,
) -> ApiResult<Response> {
    let filter = Properties::from([
        (l::PIPELINE_ID.to_string(), pipeline_id.to_string()),
        (owner.0.to_string(), owner.1.to_string()),
    ]);
    let mut removed = 0;
    for (w, v) in volumes(state, team, filter).await? {
        if !holds(&v.properties, version) {
            continue;
        }
        match tokio::time::timeout(WORKER_TIMEOUT, w.bc.destroy_volume(&v.handle)).await {
            Ok(Ok(())) => removed += 1,
            Ok(Err(e)) => tracing::info!(volume = %v.handle, error = %e, "clearing resource cache"),
            Err(_) => tracing::info!(worker = %w.name, "worker not answering; cache kept"),
        }
    }
    Ok(json(&j!({ "caches_removed": removed })))
}

/// `DELETE R/cache` (pipeline-operator) → `{"caches_removed": N}`.
pub async fn clear_resource_cache(
    State(state): State<AppState>,
    s: ResourceScope,
    body: Bytes,
) -> ApiResult<Response> {
    let version = version_filter(&body)?;
    clear(
        &state,
        &s.team,
        s.pipeline.id,
        (l::CACHE_RESOURCE, &s.resource.name),
        version.as_ref(),
    )
    .await
}

/// `DELETE RT/cache` (pipeline-operator): the caches of a custom type's image.
pub async fn clear_resource_type_cache(
    State(state): State<AppState>,
    t: PipelineScope,
    Path((_, _, type_name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let config = state
        .store
        .pipeline_config(t.pipeline.id)
        .await?
        .map(|(c, _)| c)
        .unwrap_or_default();
    let known = config
        .get("resource_types")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(&type_name))
        });
    if !known {
        return Err(ApiError::not_found());
    }
    let version = version_filter(&body)?;
    clear(
        &state,
        &t.team,
        t.pipeline.id,
        (l::CACHE_RESOURCE_TYPE, &type_name),
        version.as_ref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_filter_matches_by_string_values() {
        let p = Properties::from([(l::VERSION.to_string(), r#"{"ref":"abc"}"#.to_string())]);
        assert!(holds(&p, None));
        assert!(holds(&p, Some(&j!({"ref": "abc"}))));
        assert!(!holds(&p, Some(&j!({"ref": "def"}))));
        assert!(!holds(&p, Some(&j!({"ref": "abc", "x": "1"}))));
        assert!(!holds(&Properties::new(), Some(&j!({"ref": "abc"}))));
    }

    #[test]
    fn an_empty_body_clears_everything() {
        assert_eq!(version_filter(&Bytes::new()).unwrap(), None);
        assert_eq!(version_filter(&Bytes::from("{}")).unwrap(), None);
        assert_eq!(
            version_filter(&Bytes::from(r#"{"version":{"a":"1"}}"#)).unwrap(),
            Some(j!({"a": "1"}))
        );
        assert!(version_filter(&Bytes::from("nope")).is_err());
    }
}
