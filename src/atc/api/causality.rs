//! Where resource versions came from and went (atc-api.md §3.3, §3.7): the builds that
//! used or produced a version (`V/input_to`, `V/output_of`), the causality trees
//! (`V/upstream`, `V/downstream` and its pre-v7.4 name `V/causality`, behind
//! `--enable-resource-causality`) and the pipeline's
//! versions database as the scheduler sees it (`P/versions-db`).

use super::builds::build_json;
use super::error::{ApiError, ApiResult};
use super::scope::{PipelineScope, ResourceScope};
use super::versions::VersionParam;
use super::{json, AppState};
use crate::db::{BuildRow, Page, ResourceRow};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

type Version = Path<VersionParam>;

/// The version id as upstream reads it here: not a number → 0, which matches nothing.
fn lenient_id(p: &VersionParam) -> i64 {
    p.version_id.parse().unwrap_or(0)
}

async fn builds_around(
    state: AppState,
    s: ResourceScope,
    p: VersionParam,
    outputs: bool,
) -> ApiResult<Response> {
    let builds = state
        .store
        .version_builds(s.resource.id, lenient_id(&p), outputs)
        .await?;
    Ok(json(&builds.iter().map(build_json).collect::<Vec<_>>()))
}

/// `GET V/input_to`: builds that used the version as an input, newest first.
pub async fn input_to(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Version,
) -> ApiResult<Response> {
    builds_around(state, s, p, false).await
}

/// `GET V/output_of`: builds that produced the version, newest first.
pub async fn output_of(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Version,
) -> ApiResult<Response> {
    builds_around(state, s, p, true).await
}

// --- causality trees ------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct CausalityResourceVersion {
    pub resource_id: i64,
    pub resource_version_id: i64,
    pub resource_name: String,
    pub version: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<CausalityBuild>,
}

#[derive(Debug, Serialize)]
pub struct CausalityBuild {
    pub id: i64,
    pub name: String,
    pub job_id: i64,
    pub job_name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_versions: Vec<CausalityResourceVersion>,
}

/// More builds and versions than this in one tree: 422, like upstream's size guard.
const MAX_NODES: usize = 5000;

struct Walk<'a> {
    state: &'a AppState,
    resources: HashMap<i64, ResourceRow>,
    /// Downstream: from a version to the builds that used it, then to their outputs.
    downstream: bool,
    seen: HashSet<i64>,
    nodes: usize,
}

impl Walk<'_> {
    fn count(&mut self) -> ApiResult<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(ApiError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "causality too large".into(),
            ));
        }
        Ok(())
    }

    async fn version_node(
        &mut self,
        resource_id: i64,
        version_id: i64,
        version: Value,
    ) -> ApiResult<CausalityResourceVersion> {
        self.count()?;
        let mut node = CausalityResourceVersion {
            resource_id,
            resource_version_id: version_id,
            resource_name: self
                .resources
                .get(&resource_id)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            version,
            builds: Vec::new(),
        };
        // A version reached twice is listed, but expanded once.
        if !self.seen.insert(version_id) {
            return Ok(node);
        }
        let builds = self
            .state
            .store
            .version_builds(resource_id, version_id, !self.downstream)
            .await?;
        for b in builds {
            node.builds.push(Box::pin(self.build_node(b)).await?);
        }
        Ok(node)
    }

    async fn build_node(&mut self, b: BuildRow) -> ApiResult<CausalityBuild> {
        self.count()?;
        let store = &self.state.store;
        let next: Vec<(i64, Value)> = if self.downstream {
            store
                .build_outputs(b.id)
                .await?
                .into_iter()
                .map(|o| (o.resource_id, o.version))
                .collect()
        } else {
            store
                .build_inputs(b.id)
                .await?
                .into_iter()
                .map(|i| (i.resource_id, i.version))
                .collect()
        };
        let mut resource_versions = Vec::new();
        for (resource_id, version) in next {
            let Some(scope) = self.resources.get(&resource_id).and_then(|r| r.scope_id) else {
                continue;
            };
            let Some(v) = store.find_version(scope, &version).await? else {
                continue;
            };
            resource_versions.push(self.version_node(resource_id, v.id, v.version).await?);
        }
        Ok(CausalityBuild {
            id: b.id,
            name: b.name,
            job_id: b.job_id.unwrap_or(0),
            job_name: b.job_name,
            status: b.status.as_str().into(),
            resource_versions,
        })
    }
}

async fn causality(
    state: AppState,
    s: ResourceScope,
    p: VersionParam,
    downstream: bool,
) -> ApiResult<Response> {
    let (r, version_id) = (&s.resource, lenient_id(&p));
    if !state.info.feature_flags.resource_causality {
        return Err(ApiError::forbidden());
    }
    let version = match state.store.version(version_id).await? {
        Some(v) if Some(v.scope_id) == r.scope_id => v,
        _ => return Err(ApiError::not_found()),
    };
    let resources = state
        .store
        .resources(s.pipeline.id)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut walk = Walk {
        state: &state,
        resources,
        downstream,
        seen: HashSet::new(),
        nodes: 0,
    };
    let tree = walk.version_node(r.id, version.id, version.version).await?;
    Ok(json(&tree))
}

/// `GET V/upstream`: the builds that produced the version, their inputs, and so on up.
pub async fn upstream(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Version,
) -> ApiResult<Response> {
    causality(state, s, p, false).await
}

/// `GET V/downstream`: the builds that used the version, their outputs, and so on down.
pub async fn downstream(
    State(state): State<AppState>,
    s: ResourceScope,
    Path(p): Version,
) -> ApiResult<Response> {
    causality(state, s, p, true).await
}

// --- versions DB ----------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
struct DebugResourceVersion {
    VersionID: i64,
    ResourceID: i64,
    CheckOrder: i64,
    ScopeID: i64,
}

#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
struct DebugBuildIo {
    #[serde(flatten)]
    version: DebugResourceVersion,
    BuildID: i64,
    JobID: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    InputName: Option<String>,
}

/// `GET P/versions-db` (team viewer): upstream's `DebugVersionsDB` of what the scheduler
/// resolves inputs from: jobs, resources, their enabled versions and successful builds'
/// inputs and outputs.
pub async fn versions_db(State(state): State<AppState>, t: PipelineScope) -> ApiResult<Response> {
    let store = &state.store;
    let jobs = store.jobs(t.pipeline.id).await?;
    let resources = store.resources(t.pipeline.id).await?;
    let snapshot = store.scheduling_snapshot(t.pipeline.id).await?;
    let scope_of: HashMap<i64, i64> = resources
        .iter()
        .filter_map(|r| Some((r.id, r.scope_id?)))
        .collect();
    // Check orders of every version of the resources' scopes.
    let mut check_order = HashMap::new();
    for scope in scope_of.values().collect::<HashSet<_>>() {
        let all = Page {
            limit: 0,
            ..Default::default()
        };
        for v in store.versions(*scope, &all).await? {
            check_order.insert(v.id, v.check_order);
        }
    }
    let rv = |resource_id: i64, version_id: i64| DebugResourceVersion {
        VersionID: version_id,
        ResourceID: resource_id,
        CheckOrder: check_order.get(&version_id).copied().unwrap_or(0),
        ScopeID: scope_of.get(&resource_id).copied().unwrap_or(0),
    };
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for b in &snapshot.successful_builds {
        let names: HashMap<i64, String> = store
            .build_inputs(b.build_id)
            .await?
            .into_iter()
            .map(|i| (i.resource_id, i.name))
            .collect();
        for &(resource_id, version_id) in &b.inputs {
            inputs.push(DebugBuildIo {
                version: rv(resource_id, version_id),
                BuildID: b.build_id,
                JobID: b.job_id,
                InputName: Some(names.get(&resource_id).cloned().unwrap_or_default()),
            });
        }
        for &(resource_id, version_id) in &b.outputs {
            outputs.push(DebugBuildIo {
                version: rv(resource_id, version_id),
                BuildID: b.build_id,
                JobID: b.job_id,
                InputName: None,
            });
        }
    }
    let db = serde_json::json!({
        "Jobs": jobs.iter().map(|j| serde_json::json!({"Name": j.name, "ID": j.id})).collect::<Vec<_>>(),
        "Resources": resources.iter().map(|r| serde_json::json!({"Name": r.name, "ID": r.id, "ScopeID": r.scope_id})).collect::<Vec<_>>(),
        "ResourceVersions": snapshot.versions.iter().map(|&(r, v)| rv(r, v)).collect::<Vec<_>>(),
        "BuildOutputs": outputs,
        "BuildInputs": inputs,
        "BuildReruns": Vec::<Value>::new(),
    });
    Ok(json(&db).into_response())
}
