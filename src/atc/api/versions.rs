//! Resource versions (atc-api.md §3.7): the paginated list with `filter`, one version,
//! enable/disable, pin/unpin and the pin comment. A resource's versions are those of its
//! current scope; a resource never checked has none.

use super::builds::page;
use super::error::{ApiError, ApiResult};
use super::resources::{is_public, scope_id, version_id};
use super::scope::ResourceScope;
use super::{json, AppState};
use crate::atc::auth::Role;
use crate::db::{Page, ResourceRow, Store, VersionRow};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `atc.ResourceVersion`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResourceVersion {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    pub version: Value,
    pub enabled: bool,
}

/// Metadata is left out when hidden, or when there is none (upstream's `omitempty`).
pub fn version_json(v: &VersionRow, hide_metadata: bool) -> ResourceVersion {
    let has_metadata = v.metadata.as_array().is_some_and(|m| !m.is_empty());
    ResourceVersion {
        id: v.id,
        metadata: (has_metadata && !hide_metadata).then(|| v.metadata.clone()),
        version: v.version.clone(),
        enabled: v.enabled,
    }
}

/// The `{version_id}` of a version's path.
#[derive(Deserialize)]
pub struct VersionParam {
    pub version_id: String,
}

/// A version of the resource's current scope by id; 404 otherwise.
async fn version_of(state: &AppState, r: &ResourceRow, raw_id: &str) -> ApiResult<VersionRow> {
    let id = version_id(raw_id)?;
    let scope = scope_id(r).ok_or_else(ApiError::not_found)?;
    match state.store.version(id).await? {
        Some(v) if v.scope_id == scope => Ok(v),
        _ => Err(ApiError::not_found()),
    }
}

/// Repeated `filter=key:value` (pairs without a colon are ignored, like upstream).
fn filters(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "filter")
        .filter_map(|(_, v)| {
            v.split_once(':')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Whether the version has every filtered field (upstream's `version @> filter`).
fn matches(version: &Value, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, want)| match version.get(k) {
        Some(Value::String(s)) => s == want,
        Some(other) => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *other),
        None => false,
    })
}

/// One page (newest first) with the ids that start the older and newer pages.
struct VersionsPage {
    versions: Vec<VersionRow>,
    older: Option<i64>,
    newer: Option<i64>,
}

fn probe(limit: i64, from: Option<i64>, to: Option<i64>) -> Page {
    Page {
        from,
        to,
        limit,
        timestamps: false,
    }
}

/// A page straight from the store, plus two tiny queries for its neighbours.
async fn store_page(store: &dyn Store, scope: i64, p: &Page) -> ApiResult<VersionsPage> {
    let versions = store.versions(scope, p).await?;
    let (Some(first), Some(last)) = (versions.first(), versions.last()) else {
        return Ok(VersionsPage {
            versions,
            older: None,
            newer: None,
        });
    };
    // Newest first from `last` down: the second one is the next older.
    let older = store
        .versions(scope, &probe(2, None, Some(last.id)))
        .await?
        .get(1)
        .map(|v| v.id);
    // Anchored at `first` from below, reversed: two rows mean one is newer.
    let above = store
        .versions(scope, &probe(2, Some(first.id), None))
        .await?;
    let newer = (above.len() == 2).then(|| above[0].id);
    Ok(VersionsPage {
        versions,
        older,
        newer,
    })
}

/// A filtered page: the scope's matching versions, paged in memory with the same rules.
async fn filtered_page(
    store: &dyn Store,
    scope: i64,
    p: &Page,
    filters: &[(String, String)],
) -> ApiResult<VersionsPage> {
    let empty = VersionsPage {
        versions: Vec::new(),
        older: None,
        newer: None,
    };
    let mut bounds = [None, None];
    for (slot, id) in bounds.iter_mut().zip([p.from, p.to]) {
        if let Some(id) = id {
            match store.version(id).await? {
                Some(v) if v.scope_id == scope => *slot = Some(v.check_order),
                _ => return Ok(empty),
            }
        }
    }
    let [low, high] = bounds;
    let all: Vec<VersionRow> = store
        .versions(scope, &probe(0, None, None))
        .await?
        .into_iter()
        .filter(|v| matches(&v.version, filters))
        .collect();
    let in_range: Vec<usize> = (0..all.len())
        .filter(|&i| {
            low.is_none_or(|l| all[i].check_order >= l)
                && high.is_none_or(|h| all[i].check_order <= h)
        })
        .collect();
    let limit = usize::try_from(p.limit.max(1)).unwrap_or(usize::MAX);
    // Anchored at its lower bound, a page holds the versions just above `from`.
    let window = if p.from.is_some() && p.to.is_none() {
        &in_range[in_range.len().saturating_sub(limit)..]
    } else {
        &in_range[..in_range.len().min(limit)]
    };
    let (Some(&first), Some(&last)) = (window.first(), window.last()) else {
        return Ok(empty);
    };
    Ok(VersionsPage {
        older: all.get(last + 1).map(|v| v.id),
        newer: first.checked_sub(1).map(|i| all[i].id),
        versions: window.iter().map(|&i| all[i].clone()).collect(),
    })
}

/// `GET .../resources/:r/versions`: newest first, with `Link` headers like builds.
pub async fn list(
    State(state): State<AppState>,
    s: ResourceScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (t, r) = (&s.pipeline, &s.resource);
    let p = page(q.as_deref())?;
    let filters = filters(q.as_deref());
    let Some(scope) = scope_id(r) else {
        return Ok(json(&Vec::<ResourceVersion>::new()));
    };
    let result = if filters.is_empty() {
        store_page(state.store.as_ref(), scope, &p).await?
    } else {
        filtered_page(state.store.as_ref(), scope, &p, &filters).await?
    };
    let hide = !is_public(r) && !s.req.has_role(&s.team, Role::Viewer);
    let body: Vec<ResourceVersion> = result
        .versions
        .iter()
        .map(|v| version_json(v, hide))
        .collect();
    let mut resp = json(&body);
    let base = format!(
        "{}/api/v1/teams/{}/pipelines/{}/resources/{}/versions",
        state.external_url, t.team_name, t.name, r.name
    );
    let vars = match &t.instance_vars {
        Some(v) => format!(
            "&{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("vars", &v.to_string())
                .finish()
        ),
        None => String::new(),
    };
    let links = [
        result
            .older
            .map(|to| format!("<{base}?to={to}&limit={}{vars}>; rel=\"next\"", p.limit)),
        result.newer.map(|from| {
            format!(
                "<{base}?from={from}&limit={}{vars}>; rel=\"previous\"",
                p.limit
            )
        }),
    ];
    for link in links.into_iter().flatten() {
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
    Ok(resp)
}

/// `GET .../versions/:id`.
pub async fn get(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Path<VersionParam>,
) -> ApiResult<Response> {
    let v = version_of(&state, &s.resource, &p.version_id).await?;
    let hide = !is_public(&s.resource) && !s.req.has_role(&s.team, Role::Viewer);
    Ok(json(&version_json(&v, hide)))
}

async fn set_enabled(
    state: AppState,
    s: ResourceScope,
    p: VersionParam,
    enabled: bool,
) -> ApiResult<Response> {
    let v = version_of(&state, &s.resource, &p.version_id).await?;
    if !state.store.set_version_enabled(v.id, enabled).await? {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn enable(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Path<VersionParam>,
) -> ApiResult<Response> {
    set_enabled(state, s, p, true).await
}

pub async fn disable(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Path<VersionParam>,
) -> ApiResult<Response> {
    set_enabled(state, s, p, false).await
}

/// `PUT .../versions/:id/pin`: an API pin (a pin in the config still wins).
pub async fn pin(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Path<VersionParam>,
) -> ApiResult<Response> {
    let r = &s.resource;
    let v = version_of(&state, r, &p.version_id).await?;
    state
        .store
        .pin_resource(r.id, Some(&v.version), None)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT .../resources/:r/unpin`: drops the API pin and its comment.
pub async fn unpin(State(state): State<AppState>, s: ResourceScope) -> ApiResult<Response> {
    state.store.pin_resource(s.resource.id, None, None).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Deserialize)]
struct PinComment {
    #[serde(default)]
    pin_comment: String,
}

/// `PUT .../resources/:r/pin_comment`: comments the current API pin; without one there
/// is nothing to comment on and nothing changes (upstream updates no row either).
pub async fn pin_comment(
    State(state): State<AppState>,
    s: ResourceScope,
    body: Bytes,
) -> ApiResult<Response> {
    let r = &s.resource;
    let body: PinComment = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request: {e}")))?;
    if let Some(pinned) = &r.pinned_version {
        state
            .store
            .pin_resource(r.id, Some(pinned), Some(&body.pin_comment))
            .await?;
    }
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_are_repeated_key_value_pairs() {
        let q = "limit=1&filter=ref:abc&filter=path:a:b&filter=nocolon";
        assert_eq!(
            filters(Some(q)),
            vec![
                ("ref".to_string(), "abc".to_string()),
                ("path".to_string(), "a:b".to_string())
            ]
        );
        let v = json!({"ref": "abc", "path": "a:b", "n": 1});
        assert!(matches(&v, &filters(Some(q))));
        assert!(matches(&v, &[("n".into(), "1".into())]));
        assert!(!matches(&v, &[("ref".into(), "abd".into())]));
        assert!(!matches(&v, &[("missing".into(), "x".into())]));
    }

    #[test]
    fn metadata_is_omitted_when_hidden_or_empty() {
        let row = VersionRow {
            id: 3,
            scope_id: 1,
            version: json!({"ref": "a"}),
            metadata: json!([{"name": "author", "value": "me"}]),
            enabled: true,
            check_order: 1,
        };
        assert_eq!(
            serde_json::to_value(version_json(&row, false)).expect("encodes"),
            json!({"id": 3, "metadata": [{"name": "author", "value": "me"}], "version": {"ref": "a"}, "enabled": true})
        );
        assert_eq!(
            serde_json::to_value(version_json(&row, true)).expect("encodes"),
            json!({"id": 3, "version": {"ref": "a"}, "enabled": true})
        );
        let bare = VersionRow {
            metadata: Value::Null,
            ..row
        };
        assert!(version_json(&bare, false).metadata.is_none());
    }
}
