//! Worker artifacts (atc-api.md §3.10): `fly execute` uploads its inputs as gzip tars into
//! a volume on a worker, and downloads the outputs a one-off build registered.

use super::error::{ApiError, ApiResult};
use super::scope::{BuildScope, TeamScope};
use super::{json, AppState};
use crate::atc::engine::runtime::{new_handle, Fail, Placement};
use crate::clock::now;
use crate::db::{ArtifactRow, NewArtifact};
use crate::proto::baggageclaim::{Encoding, Strategy, VolumeRequest};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::json as j;

/// Upstream's WorkerArtifact: `build_id` 0 when the artifact belongs to no build.
fn artifact_json(a: &ArtifactRow) -> serde_json::Value {
    j!({"id": a.id, "name": a.name, "build_id": a.build_id.unwrap_or(0), "created_at": a.created_at})
}

fn engine(state: &AppState) -> ApiResult<&std::sync::Arc<crate::atc::engine::Engine>> {
    state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, "no build engine".into()))
}

fn fail(e: Fail) -> ApiError {
    match e {
        Fail::Errored(m) => ApiError::Internal(m),
        Fail::Interrupted => ApiError::Internal("interrupted".into()),
    }
}

/// An empty volume labelled as the team's uploaded artifact (`fly volumes` lists it).
fn artifact_request(team_id: i64) -> VolumeRequest {
    use crate::atc::engine::labels;
    let mut req = VolumeRequest::new(new_handle(), Strategy::Empty);
    req.properties = labels::volume(team_id);
    req.properties
        .insert(labels::ARTIFACT.into(), "true".into());
    req
}

/// `POST T/artifacts?platform=&tags=`: the body (a gzip tar) unpacked into a new volume on
/// a worker of the team that fits the platform and tags.
pub async fn create(
    State(state): State<AppState>,
    TeamScope { team, .. }: TeamScope,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let mut platform = String::new();
    let mut tags: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "platform" => platform = v.into_owned(),
            // Repeated (`tags=a&tags=b`, upstream's fly) or comma-separated.
            "tags" => tags.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            ),
            _ => {}
        }
    }
    let engine = engine(&state)?;
    let placement = Placement {
        team: &team.name,
        tags: &tags,
        platform: (!platform.is_empty()).then_some(platform.as_str()),
        task: false,
        ..Default::default()
    };
    let w = engine
        .rt
        .pick_now(&placement)
        .await
        .map_err(fail)?
        .ok_or_else(|| {
            ApiError::Status(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "no workers satisfying: platform '{platform}', tags [{}], team '{}'",
                    tags.join(", "),
                    team.name
                ),
            )
        })?;
    let volume =
        w.bc.create_volume(artifact_request(team.id))
            .await
            .map_err(|e| ApiError::Internal(format!("creating volume on {}: {e}", w.name)))?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    if let Err(e) =
        w.bc.stream_in(&volume.handle, ".", Encoding::Gzip, None, Box::pin(stream))
            .await
    {
        // Nothing is recorded for a failed upload; its volume goes at once.
        let _ = w.bc.destroy_volume(&volume.handle).await;
        return Err(if e.status() == 400 {
            ApiError::bad_request(format!("unpacking the artifact: {e}"))
        } else {
            ApiError::Internal(format!("streaming the artifact into {}: {e}", w.name))
        });
    }
    let row = state
        .store
        .create_artifact(&NewArtifact {
            team_id: team.id,
            build_id: None,
            name: String::new(),
            worker_name: w.name.clone(),
            volume_handle: volume.handle.clone(),
            created_at: now(),
        })
        .await;
    match row {
        Ok(row) => Ok((StatusCode::CREATED, json(&artifact_json(&row))).into_response()),
        Err(e) => {
            let _ = w.bc.destroy_volume(&volume.handle).await;
            Err(e.into())
        }
    }
}

/// `GET T/artifacts/:id`: the volume's contents as a gzip tar.
pub async fn get(
    State(state): State<AppState>,
    TeamScope { team, .. }: TeamScope,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("malformed artifact id: {id}")))?;
    let a = state
        .store
        .artifact(team.id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let w = engine(&state)?
        .rt
        .worker(&a.worker_name)
        .await
        .map_err(fail)?;
    let stream =
        w.bc.stream_out(&a.volume_handle, ".", Encoding::Gzip)
            .await
            .map_err(|e| match e.status() {
                404 => ApiError::not_found(),
                _ => ApiError::Internal(format!("streaming artifact {id} out: {e}")),
            })?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /api/v1/builds/:id/artifacts`: what the build's `artifact_output` steps registered.
pub async fn list_build(State(state): State<AppState>, s: BuildScope) -> ApiResult<Response> {
    let rows = state.store.build_artifacts(s.build.id).await?;
    Ok(json(&rows.iter().map(artifact_json).collect::<Vec<_>>()))
}
