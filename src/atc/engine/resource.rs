//! Running resource scripts (check, in, out) per the resource protocol: base types through
//! the worker's own `concourse resource TYPE` command, custom types from their image's
//! `/opt/resource/*`. A custom type's image is itself fetched with its own type (recursively),
//! at the type's latest saved version, checking the type first when it has none.

use super::events::Origin;
use super::runtime::{
    bind, create_container, empty_volume, errored, mount_copy, Artifact, Cancel, Cleanup, Fail,
    Runtime, WorkerClient,
};
use crate::config::ResourceType;
use crate::db::NewVersion;
use crate::proto::baggageclaim::Properties;
use crate::proto::event::{self as ev, BuildEvent};
use crate::proto::garden::{ContainerSpec, ProcessSpec};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Property naming the resource cache a volume holds.
const CACHE_PROPERTY: &str = "resource-cache";
/// Written into a mirrored image's `metadata.json` by the mock type: the image *is* that
/// base type's image, so its `/opt/resource` scripts are this binary's.
pub const MIRRORED_TYPE_KEY: &str = "concourse_resource_type";

/// Everything a script run needs besides the action.
#[derive(Clone)]
pub struct Call<'a> {
    pub rt: &'a Runtime,
    pub cleanup: &'a Cleanup,
    pub origin: &'a Origin,
    pub cancel: &'a Cancel,
    pub team: &'a str,
    pub type_: &'a str,
    pub source: Value,
    pub params: Value,
    /// Custom types visible to this call.
    pub types: &'a [ResourceType],
    pub tags: &'a [String],
    pub env: Vec<String>,
    /// Container labels (`labels::container`) of the step this call serves.
    pub labels: Properties,
}

/// The kept check container for `key` on `w`, created (and labelled) on first use, and
/// held for this step.
async fn check_container(
    w: &WorkerClient,
    mut spec: ContainerSpec,
    key: &str,
    origin: &Origin,
    cancel: &Cancel,
) -> Result<(String, super::kept::InUse), Fail> {
    let filter = Properties::from([(super::labels::CHECK_KEY.to_string(), key.to_string())]);
    // Used from now: not given up by this node while this check runs.
    let expires = super::labels::check_container_expires();
    if let Ok(found) = w.garden.list(filter).await {
        if let Some(handle) = found.into_iter().next() {
            // One being given up right now is not found: a new one is made.
            if let Some(in_use) = w.kept.claim(&handle, expires) {
                return Ok((handle, in_use));
            }
        }
    }
    spec.properties
        .insert(super::labels::CHECK_KEY.to_string(), key.to_string());
    (spec.properties).insert(super::labels::EXPIRES.to_string(), expires.to_string());
    let handle = super::runtime::create_untracked(w, spec, origin, cancel).await?;
    let mut in_use = (w.kept.claim(&handle, expires))
        .ok_or_else(|| errored(format!("check container {handle} went as it was made")))?;
    in_use.made_now = true;
    Ok((handle, in_use))
}

/// The labels of the call fetching custom type `type_name`'s image: its cache is the
/// type's, not the resource's the outer call serves.
fn type_cache_labels(mut labels: Properties, type_name: &str) -> Properties {
    labels.remove(super::labels::CACHE_RESOURCE);
    labels.insert(
        super::labels::CACHE_RESOURCE_TYPE.to_string(),
        type_name.to_string(),
    );
    super::labels::image_fetch(labels)
}

/// The image a type's scripts run in.
enum Image {
    Base(String),
    Custom {
        artifact: Artifact,
        privileged: bool,
    },
}

/// The innermost base type of `type_` (what a worker must provide).
pub fn base_type(type_: &str, types: &[ResourceType]) -> String {
    match types.iter().position(|t| t.name == type_) {
        Some(i) => {
            let rest = without(types, i);
            base_type(&types[i].type_, &rest)
        }
        None => type_.to_string(),
    }
}

fn without(types: &[ResourceType], i: usize) -> Vec<ResourceType> {
    let mut rest = types.to_vec();
    rest.remove(i);
    rest
}

fn sha(v: &Value) -> String {
    hex(&Sha256::digest(crate::db::canonical_json(v).as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Identity of a resource config: its type (a custom type by its own config, recursively)
/// and source. Resources with equal keys share versions.
pub fn config_key(type_: &str, source: &Value, types: &[ResourceType]) -> String {
    let type_id = match types.iter().position(|t| t.name == type_) {
        Some(i) => {
            let t = &types[i];
            let src = Value::Object(t.source.clone().unwrap_or_default());
            json!({"custom": config_key(&t.type_, &src, &without(types, i))})
        }
        None => json!({"base": type_}),
    };
    sha(&json!({"type": type_id, "source": source}))
}

/// Applies a type's `defaults` under a source.
pub fn with_defaults(type_: &str, types: &[ResourceType], source: &Value) -> Value {
    let mut out = match types.iter().find(|t| t.name == type_) {
        Some(t) => Value::Object(t.defaults.clone()),
        None => json!({}),
    };
    if let (Value::Object(o), Value::Object(s)) = (&mut out, source) {
        for (k, v) in s {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

impl Call<'_> {
    fn custom(&self) -> Option<(usize, &ResourceType)> {
        self.types
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == self.type_)
    }

    /// The worker this call may run on (a base type in the chain must be there).
    pub async fn select(&self, inputs: Vec<&Artifact>) -> Result<WorkerClient, Fail> {
        let base = base_type(self.type_, self.types);
        let p = super::runtime::Placement {
            team: self.team,
            tags: self.tags,
            base_type: Some(&base),
            inputs,
            platform: None,
            task: false,
        };
        self.rt.select(&p, self.origin, self.cancel).await
    }

    async fn image(&self, w: &WorkerClient) -> Result<Image, Fail> {
        let Some((i, t)) = self.custom() else {
            if w.base_type(self.type_).is_none() {
                return Err(errored(format!(
                    "worker {} has no resource type '{}'",
                    w.name, self.type_
                )));
            }
            return Ok(Image::Base(self.type_.to_string()));
        };
        let rest = without(self.types, i);
        let source = Value::Object(t.source.clone().unwrap_or_default());
        let parent = Call {
            type_: &t.type_,
            source: with_defaults(&t.type_, &rest, &source),
            params: Value::Object(t.params.clone()),
            types: &rest,
            tags: &t.tags,
            env: Vec::new(),
            labels: type_cache_labels(self.labels.clone(), &t.name),
            ..self.clone()
        };
        // The type's latest saved version, else check it now.
        let key = config_key(&t.type_, &source, &rest);
        let scope = self
            .rt
            .store
            .resource_scope(&base_type(&t.type_, &rest), &key, None)
            .await
            .map_err(errored)?;
        let latest = self
            .rt
            .store
            .versions(
                scope,
                &crate::db::Page {
                    limit: 1,
                    ..Default::default()
                },
            )
            .await
            .map_err(errored)?;
        let version = match latest.into_iter().next() {
            Some(v) => v.version,
            None => {
                // Announced like upstream's nested type checks, outermost type first.
                let check_id = format!("{}/check-type-{}", self.origin.id, t.name);
                self.origin.emit(BuildEvent::ImageCheck(ev::ImagePlan {
                    plan: json!({"id": check_id, "check": {"name": t.name, "type": t.type_}}),
                    ..Default::default()
                }));
                let sub = self.origin.events.origin(&check_id);
                sub.emit(BuildEvent::InitializeCheck(ev::InitializeCheck {
                    name: t.name.to_string(),
                    ..Default::default()
                }));
                let checked = Box::pin(parent.check(w, None)).await?;
                sub.emit(BuildEvent::Finish(ev::Finish {
                    succeeded: checked.is_ok(),
                    ..Default::default()
                }));
                let versions = match checked {
                    Ok(v) => v,
                    Err(status) => {
                        return Err(errored(format!(
                            "checking resource type '{}' failed: exit status {status}",
                            t.name
                        )))
                    }
                };
                save(self.rt, scope, &versions).await?;
                versions
                    .last()
                    .cloned()
                    .ok_or_else(|| errored(format!("resource type '{}' has no version", t.name)))?
            }
        };
        let got = Box::pin(parent.get(w, &version)).await?;
        match got {
            Ok((artifact, _, _)) => Ok(Image::Custom {
                artifact,
                privileged: t.privileged,
            }),
            Err(status) => Err(errored(format!(
                "fetching resource type '{}' failed: exit status {status}",
                t.name
            ))),
        }
    }

    /// Runs one script. `dir`: the volume mounted at the working directory (get/put);
    /// `mounts`: more volumes (put inputs). Ok(Err(status)) when the script failed.
    async fn script(
        &self,
        w: &WorkerClient,
        action: &str,
        request: Value,
        dir: Option<(&str, &str)>,
        mounts: Vec<(String, String)>,
    ) -> Result<Result<Value, i32>, Fail> {
        let image = self.image(w).await?;
        let mut spec = ContainerSpec::default();
        let mut env = Vec::new();
        let (path, mut args, privileged) = match &image {
            Image::Base(t) => {
                spec.rootfs = crate::proto::garden::WORKER_ROOTFS.into();
                (
                    base_command(w, t)?,
                    vec!["resource".into(), t.clone(), action.into()],
                    false,
                )
            }
            Image::Custom {
                artifact,
                privileged,
            } => {
                let vol = if artifact.worker == w.name {
                    w.bc.lookup_volume(&artifact.handle)
                        .await
                        .map_err(errored)?
                } else {
                    mount_copy(self.rt, artifact, w, self.cleanup, self.origin).await?
                };
                let meta = read_metadata(w, &vol.handle).await;
                if let Some(Value::Array(e)) = meta.get("env") {
                    env.extend(e.iter().filter_map(|v| v.as_str().map(String::from)));
                }
                match meta.get(MIRRORED_TYPE_KEY).and_then(Value::as_str) {
                    Some(t) if w.base_type(t).is_some() => {
                        spec.rootfs = crate::proto::garden::WORKER_ROOTFS.into();
                        (
                            base_command(w, t)?,
                            vec!["resource".into(), t.to_string(), action.into()],
                            *privileged,
                        )
                    }
                    _ => {
                        spec.rootfs = format!("raw://{}/rootfs", vol.path);
                        (format!("/opt/resource/{action}"), Vec::new(), *privileged)
                    }
                }
            }
        };
        env.extend(self.env.iter().cloned());
        if privileged {
            env.push("CONCOURSE_CONTAINER_PRIVILEGED=true".into());
        }
        env.extend(crate::telemetry::process_env());
        let workdir = dir.map(|(_, d)| d.to_string()).unwrap_or_default();
        if let Some((vol_path, d)) = dir {
            spec.bind_mounts.push(bind(vol_path, d));
            // Base types take the directory relative to their working directory, which
            // works on every Garden backend; images get the absolute path, as upstream.
            if path.starts_with("/opt/resource") {
                args.push(d.to_string());
            } else {
                args.push(".".into());
            }
        }
        for (vol_path, dst) in mounts {
            spec.bind_mounts.push(bind(&vol_path, &dst));
        }
        spec.privileged = privileged;
        spec.netout_rules = vec![crate::proto::garden::NetOutRule::allow_all()];
        spec.properties = super::labels::with_process(self.labels.clone(), "root", &workdir);
        spec.properties.insert(
            super::labels::RESOURCE_TYPE.to_string(),
            self.type_.to_string(),
        );
        // A resource's check container is kept and reused by the next checks of its
        // config, in its team (upstream keys them by resource config): no container per
        // check or per resource, and `fly intercept -c` finds it. Only where nothing is
        // mounted, so no build volume outlives its build.
        let reuse = self.is_resource_check()
            && spec.rootfs == crate::proto::garden::WORKER_ROOTFS
            && spec.bind_mounts.is_empty();
        // A kept container is this step's (never given up by this node) until `in_use` goes.
        let (handle, in_use) = if reuse {
            let key = sha(&json!({
                "config": self.labels.get(super::labels::CHECK_CONFIG),
                "privileged": privileged,
                "team": self.team,
            }));
            // One lookup-or-create at a time per worker and key on this node, so racing
            // checks of a config share one. (One lock for every config made all checks
            // wait on each other's container creations: 20-30 checks/s with a core idle.)
            let _one = self
                .rt
                .check_containers
                .take(&format!("{}/{key}", w.name))
                .await;
            let (handle, in_use) = check_container(w, spec, &key, self.origin, self.cancel).await?;
            (handle, Some(in_use))
        } else {
            let handle = create_container(w, spec, self.cleanup, self.origin, self.cancel).await?;
            (handle, None)
        };
        let process = ProcessSpec {
            path,
            args,
            dir: workdir,
            user: "root".into(),
            env,
            ..Default::default()
        };
        let stdin = serde_json::to_vec(&request).map_err(errored)?;
        let (status, stdout) = super::process::run_process(
            w,
            &handle,
            process,
            Some(stdin),
            self.origin,
            true,
            self.cancel,
        )
        .await?;
        // A get/put container stays with the build's others (`fly intercept` after the
        // build); a one-time check or image fetching container goes now, without making
        // the step wait for the teardown (the build's cleanup retries it).
        let check = self.labels.get(super::labels::TYPE).map(String::as_str) == Some("check");
        // One made for this check has carried its expiry since (one call fewer per check
        // at the cap, where every check makes its container).
        if in_use.as_ref().is_some_and(|u| !u.made_now) {
            let expires = super::labels::check_container_expires();
            let _ = w
                .garden
                .set_property(&handle, super::labels::EXPIRES, &expires.to_string())
                .await;
            w.kept.used(&handle, expires);
        } else if !reuse && (check || self.labels.contains_key(super::labels::IMAGE_FETCH)) {
            let garden = w.garden.clone();
            self.rt.tasks.spawn(async move {
                let _ = garden.destroy(&handle).await;
            });
        }
        if status != 0 {
            return Ok(Err(status));
        }
        serde_json::from_slice(&stdout).map(Ok).map_err(|e| {
            errored(format!(
                "malformed response from {action}: {e}: {}",
                String::from_utf8_lossy(&stdout).trim()
            ))
        })
    }

    /// A check of a pipeline resource (not of a resource type or an image).
    fn is_resource_check(&self) -> bool {
        let l = &self.labels;
        l.get(super::labels::TYPE).map(String::as_str) == Some("check")
            && l.contains_key(super::labels::RESOURCE_NAME)
            && l.contains_key(super::labels::PIPELINE_ID)
            && l.contains_key(super::labels::CHECK_CONFIG)
    }

    /// `check` from `from`: the versions, oldest first; Ok(Err(status)) when it failed.
    pub async fn check(
        &self,
        w: &WorkerClient,
        from: Option<&Value>,
    ) -> Result<Result<Vec<Value>, i32>, Fail> {
        let req = check_request(&self.source, from);
        Ok(match self.script(w, "check", req, None, vec![]).await? {
            Ok(Value::Array(vs)) => Ok(vs),
            Ok(other) => return Err(errored(format!("malformed check response: {other}"))),
            Err(status) => Err(status),
        })
    }

    /// `in` of `version`: the artifact (a cached volume when one exists on `w`), the
    /// fetched version and metadata, or Err(status).
    pub async fn get(
        &self,
        w: &WorkerClient,
        version: &Value,
    ) -> Result<Result<(Artifact, Value, Value), i32>, Fail> {
        let key = sha(&json!({
            "type": config_key(self.type_, &self.source, self.types),
            "version": version,
            "params": self.params,
        }));
        let filter = Properties::from([(CACHE_PROPERTY.to_string(), key.clone())]);
        if let Ok(found) = w.bc.list_volumes(filter).await {
            if let Some(v) = found.into_iter().next() {
                let meta = v
                    .properties
                    .get("metadata")
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or(json!([]));
                return Ok(Ok((
                    Artifact {
                        worker: w.name.clone(),
                        handle: v.handle,
                    },
                    version.clone(),
                    meta,
                )));
            }
        }
        let vol = empty_volume(w, self.cleanup, false).await?;
        let req = in_request(&self.source, &self.params, version);
        match self
            .script(w, "in", req, Some((&vol.path, "/tmp/build/get")), vec![])
            .await?
        {
            Err(status) => Ok(Err(status)),
            Ok(resp) => {
                let fetched = resp.get("version").cloned().unwrap_or(version.clone());
                let metadata = resp.get("metadata").cloned().unwrap_or(json!([]));
                // A successful fetch becomes a cache other gets of the same thing reuse.
                if w.bc
                    .set_property(&vol.handle, CACHE_PROPERTY, &key)
                    .await
                    .is_ok()
                {
                    let _ =
                        w.bc.set_property(&vol.handle, "metadata", &metadata.to_string())
                            .await;
                    let _ = w
                        .bc
                        .set_property(&vol.handle, super::labels::VERSION, &fetched.to_string())
                        .await;
                    let _ =
                        w.bc.set_property(&vol.handle, super::labels::RESOURCE_TYPE, self.type_)
                            .await;
                    // Whose cache it is (`DELETE R/cache`, `RT/cache`).
                    for k in [
                        super::labels::PIPELINE_ID,
                        super::labels::CACHE_RESOURCE,
                        super::labels::CACHE_RESOURCE_TYPE,
                    ] {
                        if let Some(v) = self.labels.get(k) {
                            let _ = w.bc.set_property(&vol.handle, k, v).await;
                        }
                    }
                    self.cleanup.keep_volume(&vol.handle);
                }
                Ok(Ok((
                    Artifact {
                        worker: w.name.clone(),
                        handle: vol.handle,
                    },
                    fetched,
                    metadata,
                )))
            }
        }
    }

    /// `out` with `inputs` mounted under the working directory: the new version and
    /// metadata, or Err(status).
    pub async fn put(
        &self,
        w: &WorkerClient,
        inputs: &[(String, Artifact)],
    ) -> Result<Result<(Value, Value), i32>, Fail> {
        let vol = empty_volume(w, self.cleanup, false).await?;
        let mut mounts = Vec::new();
        for (name, a) in inputs {
            let copy = mount_copy(self.rt, a, w, self.cleanup, self.origin).await?;
            mounts.push((copy.path, format!("/tmp/build/put/{name}")));
        }
        let req = out_request(&self.source, &self.params);
        Ok(
            match self
                .script(w, "out", req, Some((&vol.path, "/tmp/build/put")), mounts)
                .await?
            {
                Err(status) => Err(status),
                Ok(resp) => Ok((
                    resp.get("version").cloned().unwrap_or(Value::Null),
                    resp.get("metadata").cloned().unwrap_or(json!([])),
                )),
            },
        )
    }
}

/// `source` or `params` as sent to a script: always an object (`{}` when unset or null),
/// as upstream's Go structs marshal them.
fn object_or_empty(v: &Value) -> Value {
    match v {
        Value::Object(_) => v.clone(),
        _ => json!({}),
    }
}

/// A version as sent to a script: None when there is none (or it is null), so the key is
/// omitted like upstream's `version,omitempty`; libraries iterating it crash on `null`.
fn some_version(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// The request `check` reads: `source`, and `version` only when checking from one.
pub fn check_request(source: &Value, from: Option<&Value>) -> Value {
    let mut req = json!({ "source": object_or_empty(source) });
    if let Some(v) = some_version(from) {
        req["version"] = v.clone();
    }
    req
}

/// The request `in` reads: `source`, `params` and the `version` to fetch.
pub fn in_request(source: &Value, params: &Value, version: &Value) -> Value {
    let mut req = json!({ "source": object_or_empty(source), "params": object_or_empty(params) });
    if let Some(v) = some_version(Some(version)) {
        req["version"] = v.clone();
    }
    req
}

/// The request `out` reads: `source` and `params` (no version).
pub fn out_request(source: &Value, params: &Value) -> Value {
    json!({ "source": object_or_empty(source), "params": object_or_empty(params) })
}

fn base_command(w: &WorkerClient, type_: &str) -> Result<String, Fail> {
    w.base_type(type_)
        .map(|t| t.image.clone())
        .ok_or_else(|| errored(format!("worker {} has no resource type '{type_}'", w.name)))
}

/// An image volume's `metadata.json` (empty object when absent or unreadable).
pub async fn read_metadata(w: &WorkerClient, handle: &str) -> Value {
    let Ok(stream) =
        w.bc.stream_out(
            handle,
            "metadata.json",
            crate::proto::baggageclaim::Encoding::Raw,
        )
        .await
    else {
        return json!({});
    };
    let Ok(tar) = crate::proto::stream::collect_bytes(stream).await else {
        return json!({});
    };
    first_file_in_tar(&tar)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(json!({}))
}

/// The contents of the first regular file of an uncompressed tar.
pub fn first_file_in_tar(tar: &[u8]) -> Option<Vec<u8>> {
    let mut ar = tar::Archive::new(tar);
    let mut entries = ar.entries().ok()?;
    loop {
        let mut e = entries.next()?.ok()?;
        if e.header().entry_type().is_file() {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut out).ok()?;
            return Some(out);
        }
    }
}

/// Saves check results into a scope.
pub async fn save(rt: &Runtime, scope: i64, versions: &[Value]) -> Result<usize, Fail> {
    let new: Vec<NewVersion> = versions
        .iter()
        .map(|v| NewVersion {
            version: v.clone(),
            metadata: json!([]),
        })
        .collect();
    rt.store.save_versions(scope, &new).await.map_err(errored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_request_omits_a_missing_version() {
        let req = check_request(&json!({"a": 1}), None);
        assert_eq!(req, json!({"source": {"a": 1}}));
        assert!(req.get("version").is_none(), "omitted, not null: {req}");
        let req = check_request(&json!({"a": 1}), Some(&Value::Null));
        assert!(req.get("version").is_none(), "null counts as none: {req}");
        let req = check_request(&json!({}), Some(&json!({"v": "1"})));
        assert_eq!(req, json!({"source": {}, "version": {"v": "1"}}));
    }

    #[test]
    fn source_and_params_are_always_objects() {
        assert_eq!(check_request(&Value::Null, None), json!({"source": {}}));
        assert_eq!(
            in_request(&Value::Null, &Value::Null, &json!({"v": "1"})),
            json!({"source": {}, "params": {}, "version": {"v": "1"}})
        );
        assert_eq!(
            out_request(&Value::Null, &Value::Null),
            json!({"source": {}, "params": {}})
        );
        assert_eq!(
            out_request(&json!({"s": 1}), &json!({"p": 2})),
            json!({"source": {"s": 1}, "params": {"p": 2}})
        );
    }

    #[test]
    fn in_request_never_sends_a_null_version() {
        let req = in_request(&json!({}), &json!({}), &Value::Null);
        assert!(req.get("version").is_none(), "{req}");
    }
}
