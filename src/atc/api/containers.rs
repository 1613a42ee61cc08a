//! Containers, volumes and task caches (atc-api.md §3.9). There are no container or
//! volume tables: every listing asks the team's workers live and filters on the labels the
//! engine put on what it created (`engine::labels`). Hijack is in `hijack.rs`.

use super::error::{ApiError, ApiResult};
use super::scope;
use super::scope::{JobScope, TeamScope};
use super::{json, AppState};
use crate::atc::engine::labels as l;
use crate::atc::engine::runtime::WorkerClient;
use crate::db::TeamRow;
use crate::proto::garden::Properties;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json as j, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a listing waits for one worker: a dead one must not hang the request.
pub(super) const WORKER_TIMEOUT: Duration = Duration::from_secs(5);

/// A container found on a worker, with its labels.
pub struct Found {
    pub worker: WorkerClient,
    pub handle: String,
    pub labels: Properties,
}

fn engine(state: &AppState) -> ApiResult<&Arc<crate::atc::engine::Engine>> {
    state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, "no build engine".into()))
}

/// Every container of `team` on its workers whose labels include all of `filter`.
pub async fn find(
    state: &AppState,
    team: &TeamRow,
    mut filter: Properties,
) -> ApiResult<Vec<Found>> {
    filter.insert(l::TEAM_ID.into(), team.id.to_string());
    let workers = engine(state)?
        .rt
        .team_workers(&team.name)
        .await
        .map_err(|e| ApiError::Internal(format!("{e:?}")))?;
    let asks = workers.into_iter().map(|w| {
        let filter = filter.clone();
        async move {
            let listed = tokio::time::timeout(WORKER_TIMEOUT, async {
                let handles = w.garden.list(filter).await?;
                w.garden.bulk_info(&handles).await
            })
            .await;
            match listed {
                Ok(Ok(infos)) => infos
                    .into_iter()
                    .filter(|(_, e)| e.err.is_none())
                    .map(|(handle, e)| Found {
                        worker: w.clone(),
                        handle,
                        labels: e.info.properties,
                    })
                    .collect(),
                Ok(Err(e)) => {
                    tracing::info!(worker = %w.name, error = %e, "listing containers");
                    Vec::new()
                }
                Err(_) => {
                    tracing::info!(worker = %w.name, "worker not answering; skipping its containers");
                    Vec::new()
                }
            }
        }
    });
    Ok(futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect())
}

/// Upstream's Container JSON from a container's labels (absent fields omitted).
pub fn container_json(worker: &str, handle: &str, p: &Properties) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), j!(handle));
    m.insert("worker_name".into(), j!(worker));
    m.insert("state".into(), j!("created"));
    let strings = [
        ("type", l::TYPE),
        ("step_name", l::STEP_NAME),
        ("attempt", l::ATTEMPT),
        ("pipeline_name", l::PIPELINE_NAME),
        ("job_name", l::JOB_NAME),
        ("build_name", l::BUILD_NAME),
        ("resource_name", l::RESOURCE_NAME),
        ("resource_type_name", l::RESOURCE_TYPE_NAME),
        ("user", l::USER),
        ("working_directory", l::WORKING_DIRECTORY),
    ];
    for (field, key) in strings {
        if let Some(v) = p.get(key).filter(|v| !v.is_empty()) {
            m.insert(field.into(), j!(v));
        }
    }
    for (field, key) in [
        ("pipeline_id", l::PIPELINE_ID),
        ("job_id", l::JOB_ID),
        ("build_id", l::BUILD_ID),
    ] {
        if let Some(v) = p.get(key).and_then(|v| v.parse::<i64>().ok()) {
            m.insert(field.into(), j!(v));
        }
    }
    if let Some(vars) = p
        .get(l::PIPELINE_VARS)
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
    {
        m.insert("pipeline_instance_vars".into(), vars);
    }
    Value::Object(m)
}

/// The label filter of a container query, and the instance vars to match (`vars`).
/// Numeric filters must be numbers (else 400, like upstream).
pub fn filters(query: Option<&str>) -> ApiResult<(Properties, Option<Value>)> {
    let mut f = Properties::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let key = match &*k {
            "type" => l::TYPE,
            "pipeline_name" => l::PIPELINE_NAME,
            "job_name" => l::JOB_NAME,
            "build_name" => l::BUILD_NAME,
            "step_name" => l::STEP_NAME,
            "attempt" => l::ATTEMPT,
            "resource_name" => l::RESOURCE_NAME,
            "pipeline_id" | "job_id" | "build_id" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("malformed {k}: {v}")))?;
                let key = match &*k {
                    "pipeline_id" => l::PIPELINE_ID,
                    "job_id" => l::JOB_ID,
                    _ => l::BUILD_ID,
                };
                f.insert(key.into(), n.to_string());
                continue;
            }
            _ => continue,
        };
        if !v.is_empty() {
            f.insert(key.into(), v.into_owned());
        }
    }
    let vars = scope::instance_vars(query)?;
    Ok((f, vars))
}

/// Whether a container's pipeline has exactly these instance vars (None = plain pipeline).
/// Only applies when the query names a pipeline.
fn vars_match(p: &Properties, vars: &Option<Value>) -> bool {
    if !p.contains_key(l::PIPELINE_NAME) {
        return true;
    }
    let have = p
        .get(l::PIPELINE_VARS)
        .and_then(|v| serde_json::from_str::<Value>(v).ok());
    have == *vars
}

/// `GET T/containers[?filters]`.
pub async fn list(
    State(state): State<AppState>,
    TeamScope { team, .. }: TeamScope,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (mut filter, vars) = filters(q.as_deref())?;
    if !check_locator(&state, &team, &mut filter, &vars).await? {
        return Ok(json(&Vec::<Value>::new()));
    }
    let by_pipeline = filter.contains_key(l::PIPELINE_NAME);
    let mut found: Vec<Value> = find(&state, &team, filter)
        .await?
        .iter()
        .filter(|c| !by_pipeline || vars_match(&c.labels, &vars))
        .map(|c| container_json(&c.worker.name, &c.handle, &c.labels))
        .collect();
    found.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(json(&found))
}

/// Upstream's check container locator: a pipeline resource's check containers are those
/// of its resource config, whichever resource of the team started them. A query of
/// `type=check` naming a pipeline and a resource has those two in `filter` replaced by the
/// resource's config; false when nothing can match (no such resource, or never checked).
async fn check_locator(
    state: &AppState,
    team: &TeamRow,
    filter: &mut Properties,
    vars: &Option<Value>,
) -> ApiResult<bool> {
    if filter.get(l::TYPE).map(String::as_str) != Some("check") {
        return Ok(true);
    }
    let (Some(pipeline), Some(resource)) = (
        filter.get(l::PIPELINE_NAME).cloned(),
        filter.get(l::RESOURCE_NAME).cloned(),
    ) else {
        return Ok(true);
    };
    filter.remove(l::PIPELINE_NAME);
    filter.remove(l::RESOURCE_NAME);
    let Some(p) = state
        .store
        .pipeline(&team.name, &pipeline, vars.as_ref())
        .await?
    else {
        return Ok(false);
    };
    let marks = state.store.scheduling_marks(&[p.id]).await?;
    let config = marks.resources.into_iter().find(|r| r.name == resource);
    match config.and_then(|r| r.config) {
        Some(c) => {
            filter.insert(l::CHECK_CONFIG.into(), c);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The team's container with this handle (other teams' containers are not found).
pub async fn one(state: &AppState, team: &TeamRow, handle: &str) -> ApiResult<Found> {
    find(state, team, Properties::new())
        .await?
        .into_iter()
        .find(|c| c.handle == handle)
        .ok_or_else(ApiError::not_found)
}

/// `GET T/containers/:id`.
pub async fn get(
    State(state): State<AppState>,
    TeamScope { team, .. }: TeamScope,
    Path((_, handle)): Path<(String, String)>,
) -> ApiResult<Response> {
    let c = one(&state, &team, &handle).await?;
    Ok(json(&container_json(&c.worker.name, &c.handle, &c.labels)))
}

/// Upstream's Volume JSON (every key present) from a volume's labels.
fn volume_json(worker: &str, v: &crate::proto::baggageclaim::Volume) -> Value {
    let p = &v.properties;
    let s = |k: &str| p.get(k).cloned().unwrap_or_default();
    let type_ = if p.contains_key("task-cache") {
        "task-cache"
    } else if p.contains_key("resource-cache") {
        "resource"
    } else if p.contains_key(l::ARTIFACT) {
        "artifact"
    } else {
        "container"
    };
    let resource_type = if type_ == "resource" {
        let version = p
            .get(l::VERSION)
            .and_then(|v| serde_json::from_str::<Value>(v).ok())
            .unwrap_or(Value::Null);
        j!({"resource_type": null,
            "base_resource_type": {"name": s(l::RESOURCE_TYPE), "version": ""},
            "version": version})
    } else {
        Value::Null
    };
    j!({
        "id": v.handle,
        "worker_name": worker,
        "type": type_,
        "container_handle": s(l::CONTAINER),
        "path": s(l::PATH),
        "parent_handle": "",
        "resource_type": resource_type,
        "base_resource_type": null,
        "pipeline_id": p.get(l::PIPELINE_ID).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0),
        "pipeline_name": s(l::PIPELINE_NAME),
        "pipeline_instance_vars": p.get(l::PIPELINE_VARS).and_then(|v| serde_json::from_str::<Value>(v).ok()),
        "job_name": s(l::JOB_NAME),
        "step_name": s(l::STEP_NAME),
    })
}

/// Volumes on the team's workers labelled with `filter` (plus the team): (worker, volume).
pub(super) async fn volumes(
    state: &AppState,
    team: &TeamRow,
    filter: Properties,
) -> ApiResult<Vec<(WorkerClient, crate::proto::baggageclaim::Volume)>> {
    let workers = engine(state)?
        .rt
        .team_workers(&team.name)
        .await
        .map_err(|e| ApiError::Internal(format!("{e:?}")))?;
    let asks = workers.into_iter().map(|w| {
        let filter = filter.clone();
        async move {
            match tokio::time::timeout(WORKER_TIMEOUT, w.bc.list_volumes(filter)).await {
                Ok(Ok(vs)) => vs.into_iter().map(|v| (w.clone(), v)).collect(),
                Ok(Err(e)) => {
                    tracing::info!(worker = %w.name, error = %e, "listing volumes");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            }
        }
    });
    Ok(futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect())
}

/// `GET T/volumes`.
pub async fn list_volumes(
    State(state): State<AppState>,
    TeamScope { team, .. }: TeamScope,
) -> ApiResult<Response> {
    let filter = l::volume(team.id);
    let mut found: Vec<Value> = volumes(&state, &team, filter)
        .await?
        .iter()
        .map(|(w, v)| volume_json(&w.name, v))
        .collect();
    found.sort_by(|a, b| {
        (a["worker_name"].as_str(), a["id"].as_str())
            .cmp(&(b["worker_name"].as_str(), b["id"].as_str()))
    });
    Ok(json(&found))
}

/// `DELETE P/jobs/:job/tasks/:step/cache[?cache_path=]` → `{"caches_removed": N}`.
pub async fn clear_task_cache(
    State(state): State<AppState>,
    target: JobScope,
    Path((_, _, _, step)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let job = &target.job;
    let cache_path = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "cache_path")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    // The engine's task-cache key (task.rs): team/job/step/path.
    let prefix = format!("{}/{}/{}/", target.team.id, job.id, step);
    let mut removed = 0;
    // Listed unfiltered: caches made before volumes carried team labels count too.
    for (w, v) in volumes(&state, &target.team, Properties::new()).await? {
        let Some(key) = v.properties.get("task-cache") else {
            continue;
        };
        let Some(path) = key.strip_prefix(&prefix) else {
            continue;
        };
        if cache_path.as_deref().is_some_and(|p| p != path) {
            continue;
        }
        match tokio::time::timeout(WORKER_TIMEOUT, w.bc.destroy_volume(&v.handle)).await {
            Ok(Ok(())) => removed += 1,
            Ok(Err(e)) => tracing::info!(volume = %v.handle, error = %e, "clearing task cache"),
            Err(_) => tracing::info!(worker = %w.name, "worker not answering; cache kept"),
        }
    }
    Ok(json(&j!({ "caches_removed": removed })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_filters_must_be_numbers() {
        assert!(filters(Some("build_id=x")).is_err());
        assert!(filters(Some("job_id=1.5")).is_err());
        let (f, vars) = filters(Some("build_id=3&step_name=s&type=task")).expect("parses");
        assert_eq!(f[l::BUILD_ID], "3");
        assert_eq!(f[l::STEP_NAME], "s");
        assert_eq!(f[l::TYPE], "task");
        assert_eq!(vars, None);
    }

    #[test]
    fn container_json_omits_what_is_unknown() {
        let p = Properties::from([
            (l::TYPE.to_string(), "check".to_string()),
            (l::RESOURCE_NAME.to_string(), "r".to_string()),
            (l::PIPELINE_ID.to_string(), "4".to_string()),
        ]);
        let c = container_json("w", "h", &p);
        assert_eq!(
            c,
            j!({"id": "h", "worker_name": "w", "state": "created", "type": "check",
                "resource_name": "r", "pipeline_id": 4})
        );
    }
}
