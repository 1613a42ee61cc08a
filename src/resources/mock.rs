//! The `mock` base type: upstream mock-resource's source and params as the corpus uses them.
//! Requests are decoded strictly (unknown keys ⇒ `invalid payload`), like upstream.

use super::{require_dir, MetadataField, ResourceError, Version, VersionResult};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    #[serde(default)]
    initial_version: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    no_initial_version: bool,
    #[serde(default)]
    force_version: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    mirror_self: bool,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    create_files: Map<String, Value>,
    #[serde(default)]
    check_delay: Option<String>,
    #[serde(default)]
    check_failure: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    metadata: Vec<MetadataField>,
    #[serde(default)]
    log: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetParams {
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    mirror_self_via_params: bool,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    create_files_via_params: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutParams {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    print_env: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<P> {
    #[serde(default)]
    source: Option<Source>,
    #[serde(default = "Option::default")]
    params: Option<P>,
    #[serde(default)]
    version: Option<Version>,
}

/// Set by the worker for privileged containers. Upstream's mock reads `/proc/self/uid_map`,
/// which says "privileged" for any process outside a user namespace; the container's own
/// setting is what the tests mean.
pub const PRIVILEGED_ENV: &str = "CONCOURSE_CONTAINER_PRIVILEGED";

fn privileged() -> bool {
    std::env::var(PRIVILEGED_ENV).is_ok_and(|v| v == "true")
}

fn version(v: &str) -> Version {
    let mut out = Version::new();
    out.insert("version".into(), v.to_string());
    if privileged() {
        out.insert("privileged".into(), "true".into());
    }
    out
}

fn parse<P: for<'de> Deserialize<'de>>(request: &[u8]) -> Result<Request<P>, ResourceError> {
    serde_json::from_slice(request).map_err(|e| ResourceError::new(format!("invalid payload: {e}")))
}

fn log_line(source: &Source, log: &mut dyn Write) {
    if let Some(msg) = &source.log {
        let _ = writeln!(log, "{msg}");
    }
}

pub fn run(
    action: &str,
    dir: Option<&str>,
    request: &[u8],
    log: &mut dyn Write,
) -> Result<Value, ResourceError> {
    let out = match action {
        "check" => serde_json::to_value(check(request, log)?),
        "in" => serde_json::to_value(get(require_dir(action, dir)?, request, log)?),
        "out" => serde_json::to_value(put(require_dir(action, dir)?, request, log)?),
        other => {
            return Err(ResourceError::new(format!(
                "unknown action '{other}' (check, in, out)"
            )))
        }
    };
    out.map_err(|e| ResourceError::new(format!("encoding response: {e}")))
}

fn check(request: &[u8], log: &mut dyn Write) -> Result<Vec<Version>, ResourceError> {
    let req: Request<Value> = parse(request)?;
    let source = req.source.unwrap_or_default();
    log_line(&source, log);
    if let Some(delay) = &source.check_delay {
        let d = crate::config::parse_duration(delay)
            .ok()
            .ok_or_else(|| ResourceError::new(format!("invalid check_delay '{delay}'")))?;
        std::thread::sleep(d);
    }
    if let Some(msg) = source.check_failure.as_ref().filter(|m| !m.is_empty()) {
        return Err(ResourceError::new(msg.clone()));
    }
    if let Some(force) = &source.force_version {
        return Ok(vec![version(force)]);
    }
    if let Some(given) = req.version.as_ref().and_then(|v| v.get("version")) {
        return Ok(vec![version(given)]);
    }
    if source.no_initial_version {
        return Ok(vec![]);
    }
    let initial = source
        .initial_version
        .clone()
        .or_else(|| {
            std::env::var("MIRRORED_VERSION")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| "mock".into());
    Ok(vec![version(&initial)])
}

fn write(dir: &Path, rel: &str, contents: &[u8]) -> Result<(), ResourceError> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute()
        || rel_path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ResourceError::new(format!(
            "refusing to write outside the destination: {rel}"
        )));
    }
    let path = dir.join(rel_path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ResourceError::new(format!("creating {}: {e}", parent.display())))?;
    }
    std::fs::write(&path, contents)
        .map_err(|e| ResourceError::new(format!("writing {}: {e}", path.display())))
}

fn file_contents(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.replace("START_VAR", "((").replace("END_VAR", "))")
}

fn get(dir: &str, request: &[u8], log: &mut dyn Write) -> Result<VersionResult, ResourceError> {
    let req: Request<GetParams> = parse(request)?;
    let source = req.source.unwrap_or_default();
    let params = req.params.unwrap_or_default();
    let version_in = req
        .version
        .ok_or_else(|| ResourceError::new("no version given"))?;
    let v = version_in.get("version").cloned().unwrap_or_default();
    log_line(&source, log);
    let _ = writeln!(log, "fetching version: {v}");
    if privileged() {
        let _ = writeln!(log, "fetching in a privileged container");
    }
    let dir = Path::new(dir);
    write(dir, "version", format!("{v}\n").as_bytes())?;
    write(
        dir,
        "privileged",
        if privileged() { b"true" } else { b"false" },
    )?;
    let mut files = source.create_files.clone();
    files.extend(params.create_files_via_params);
    for (path, contents) in &files {
        write(dir, path, file_contents(contents).as_bytes())?;
    }
    if source.mirror_self || params.mirror_self_via_params {
        mirror_self(dir, &v)?;
    }
    Ok(VersionResult {
        version: version_in,
        metadata: source.metadata,
    })
}

/// An image of "this resource's own root filesystem": the metadata names the base type,
/// and the ATC runs whatever uses the image on the worker's base root (what this resource
/// itself runs on) instead of copying it; `rootfs` is left empty. The metadata carries
/// `MIRRORED_VERSION` like upstream's mirrored image.
fn mirror_self(dir: &Path, v: &str) -> Result<(), ResourceError> {
    let rootfs = dir.join("rootfs");
    if std::fs::symlink_metadata(&rootfs).is_ok_and(|m| !m.is_dir()) {
        let _ = std::fs::remove_file(&rootfs);
    }
    std::fs::create_dir_all(&rootfs)
        .map_err(|e| ResourceError::new(format!("creating rootfs: {e}")))?;
    let metadata = serde_json::json!({
        "env": [format!("MIRRORED_VERSION={v}")],
        "user": "root",
        // The ATC runs this image's resource scripts as the built-in mock type.
        "concourse_resource_type": "mock",
    });
    write(dir, "metadata.json", metadata.to_string().as_bytes())
}

fn put(dir: &str, request: &[u8], log: &mut dyn Write) -> Result<VersionResult, ResourceError> {
    let req: Request<PutParams> = parse(request)?;
    let source = req.source.unwrap_or_default();
    let params = req.params.unwrap_or_default();
    log_line(&source, log);
    if params.print_env {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.sort();
        for (k, val) in vars {
            let _ = writeln!(log, "{k}={val}");
        }
    }
    let v = match (&params.version, &params.file) {
        (Some(v), _) => v.clone(),
        (None, Some(file)) => {
            let path = Path::new(dir).join(file);
            std::fs::read_to_string(&path)
                .map_err(|e| ResourceError::new(format!("reading {}: {e}", path.display())))?
                .trim()
                .to_string()
        }
        (None, None) => return Err(ResourceError::new("no version specified")),
    };
    let _ = writeln!(log, "pushing version: {v}");
    if privileged() {
        let _ = writeln!(log, "pushing in a privileged container");
    }
    Ok(VersionResult {
        version: version(&v),
        metadata: source.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_source_and_params_fields_read_as_absent() {
        crate::resources::assert_null_is_absent::<Source>(
            json!({}),
            &[
                "initial_version",
                "no_initial_version",
                "force_version",
                "mirror_self",
                "create_files",
                "check_delay",
                "check_failure",
                "metadata",
                "log",
            ],
        );
        crate::resources::assert_null_is_absent::<GetParams>(
            json!({}),
            &["mirror_self_via_params", "create_files_via_params"],
        );
        crate::resources::assert_null_is_absent::<PutParams>(
            json!({}),
            &["version", "file", "print_env"],
        );
        crate::resources::assert_null_is_absent::<Request<PutParams>>(
            json!({}),
            &["source", "params", "version"],
        );
    }

    fn call(action: &str, dir: Option<&str>, req: Value) -> (Result<Value, ResourceError>, String) {
        let mut log = Vec::new();
        let out = run(action, dir, req.to_string().as_bytes(), &mut log);
        (out, String::from_utf8_lossy(&log).into_owned())
    }

    #[test]
    fn check_returns_given_forced_or_initial_version() {
        let (out, _) = call("check", None, json!({"source": {}}));
        assert_eq!(out.expect("check"), json!([{"version": "mock"}]));
        let (out, _) = call(
            "check",
            None,
            json!({"source": {"initial_version": "one"}, "version": {"version": "two"}}),
        );
        assert_eq!(out.expect("check"), json!([{"version": "two"}]));
        let (out, _) = call(
            "check",
            None,
            json!({"source": {"force_version": "f"}, "version": {"version": "two"}}),
        );
        assert_eq!(out.expect("check"), json!([{"version": "f"}]));
        let (out, _) = call(
            "check",
            None,
            json!({"source": {"no_initial_version": true}}),
        );
        assert_eq!(out.expect("check"), json!([]));
    }

    #[test]
    fn check_failure_and_unknown_keys_fail_with_messages() {
        let (out, _) = call(
            "check",
            None,
            json!({"source": {"check_failure": "super broken"}}),
        );
        assert_eq!(out.expect_err("fails").to_string(), "super broken");
        let (out, _) = call("check", None, json!({"source": {"nope": 1}}));
        assert!(out
            .expect_err("fails")
            .to_string()
            .starts_with("invalid payload"));
    }

    #[test]
    fn in_writes_version_files_and_mirrors_self() {
        let dir = tempfile::tempdir().expect("temp");
        let d = dir.path().to_str().expect("utf8");
        let req = json!({"source": {"create_files": {"a/b.txt": "START_VAR x END_VAR", "obj": {"k": 1}}, "mirror_self": true,
                                    "metadata": [{"name": "n", "value": "v"}], "log": "hello"},
                         "version": {"version": "v1"}});
        let (out, log) = call("in", Some(d), req);
        assert_eq!(
            out.expect("in"),
            json!({"version": {"version": "v1"}, "metadata": [{"name": "n", "value": "v"}]})
        );
        assert!(
            log.contains("hello") && log.contains("fetching version: v1"),
            "{log}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("version")).expect("version"),
            "v1\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b.txt")).expect("file"),
            "(( x ))"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("obj")).expect("file"),
            "{\"k\":1}"
        );
        // No link to the worker's root: the ATC runs the image on the base root instead.
        let rootfs = std::fs::symlink_metadata(dir.path().join("rootfs")).expect("rootfs");
        assert!(rootfs.is_dir());
        assert_eq!(meta_type(dir.path()), "mock");
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("metadata.json")).expect("meta"))
                .expect("json");
        assert_eq!(meta["env"], json!(["MIRRORED_VERSION=v1"]));
    }

    fn meta_type(dir: &Path) -> String {
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).expect("meta"))
                .expect("json");
        meta["concourse_resource_type"]
            .as_str()
            .unwrap_or("")
            .into()
    }

    #[test]
    fn out_pushes_version_from_params_or_file() {
        let dir = tempfile::tempdir().expect("temp");
        let d = dir.path().to_str().expect("utf8");
        let (out, log) = call(
            "out",
            Some(d),
            json!({"source": {}, "params": {"version": "p1"}}),
        );
        assert_eq!(out.expect("out")["version"], json!({"version": "p1"}));
        assert!(log.contains("pushing version: p1"));
        std::fs::write(dir.path().join("v"), "from-file\n").expect("write");
        let (out, _) = call(
            "out",
            Some(d),
            json!({"source": {}, "params": {"file": "v"}}),
        );
        assert_eq!(
            out.expect("out")["version"],
            json!({"version": "from-file"})
        );
        let (out, _) = call("out", Some(d), json!({"source": {}}));
        assert_eq!(out.expect_err("fails").to_string(), "no version specified");
    }

    #[test]
    fn files_cannot_escape_the_destination() {
        let dir = tempfile::tempdir().expect("temp");
        let d = dir.path().to_str().expect("utf8");
        let (out, _) = call(
            "in",
            Some(d),
            json!({"source": {"create_files": {"../x": "y"}}, "version": {"version": "v"}}),
        );
        assert!(out.is_err());
    }
}
