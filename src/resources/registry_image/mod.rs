//! The `registry-image` base type (upstream registry-image-resource): a real OCI registry
//! client. `in` gives `rootfs/` + `metadata.json` (the rootfs image format tasks run in),
//! `out` pushes an OCI or `docker save` tarball.

pub mod client;
pub mod image;

use super::{require_dir, MetadataField, ResourceError, Version, VersionResult};
use client::{Manifest, Registry, Repository, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Source {
    repository: String,
    #[serde(default)]
    tag: Option<Value>,
    #[serde(default)]
    tag_regex: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    insecure: bool,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    debug: bool,
}

#[derive(Debug, Deserialize)]
struct Request {
    source: Source,
    #[serde(default)]
    params: Option<Map<String, Value>>,
    #[serde(default)]
    version: Option<Version>,
}

fn err(msg: impl Into<String>) -> ResourceError {
    ResourceError::new(msg)
}

impl Source {
    fn registry(&self) -> Result<Registry, ResourceError> {
        Registry::new(
            Repository::parse(&self.repository)?,
            self.insecure,
            self.username.clone(),
            self.password.clone(),
        )
    }

    /// `tag` may be a YAML number in pipelines (`tag: 1.2`); it is a string on the wire.
    fn tag(&self) -> Option<String> {
        match &self.tag {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    fn platform(&self) -> (String, String) {
        let p = self.platform.as_ref();
        let arch =
            p.and_then(|p| p.architecture.clone()).unwrap_or_else(
                || match std::env::consts::ARCH {
                    "x86_64" => "amd64".into(),
                    "aarch64" => "arm64".into(),
                    a => a.into(),
                },
            );
        (
            p.and_then(|p| p.os.clone())
                .unwrap_or_else(|| "linux".into()),
            arch,
        )
    }
}

fn version(tag: &str, digest: &str) -> Version {
    let mut v = Version::new();
    v.insert("tag".into(), tag.to_string());
    v.insert("digest".into(), digest.to_string());
    v
}

/// Semver of a tag: `1`, `1.2`, `1.2.3` (optionally `v`-prefixed, optionally `-variant`).
fn semver(tag: &str, variant: Option<&str>) -> Option<(Vec<u64>, usize)> {
    let core = match variant {
        Some(v) => tag.strip_suffix(&format!("-{v}"))?,
        None => tag,
    };
    let core = core.strip_prefix('v').unwrap_or(core);
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (!parts.is_empty() && parts.len() <= 3).then(|| {
        let specificity = parts.len();
        let mut padded = parts;
        padded.resize(3, 0);
        (padded, specificity)
    })
}

fn check(source: &Source, given: Option<&Version>) -> Result<Vec<Version>, ResourceError> {
    let reg = source.registry()?;
    if let Some(tag) = source.tag() {
        let current = reg.manifest(&tag)?;
        let mut out = Vec::new();
        if let Some(g) = given {
            let still_there = g
                .get("digest")
                .is_some_and(|d| current.as_ref().is_none_or(|c| &c.digest != d))
                && g.get("digest")
                    .map(|d| reg.manifest(d))
                    .transpose()?
                    .flatten()
                    .is_some();
            if still_there {
                out.push(g.clone());
            }
        }
        if let Some(c) = current {
            out.push(version(&tag, &c.digest));
        }
        return Ok(out);
    }
    let tags = reg.tags()?;
    if let Some(pattern) = &source.tag_regex {
        let re = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| err(format!("invalid tag_regex: {e}")))?;
        let mut out = Vec::new();
        for tag in tags.iter().filter(|t| re.is_match(t)) {
            if let Some(m) = reg.manifest(tag)? {
                out.push(version(tag, &m.digest));
            }
        }
        return Ok(out);
    }
    // Semver mode: one version per digest under its most specific tag, ascending.
    let variant = source.variant.as_deref();
    let mut candidates: Vec<(Vec<u64>, usize, String)> = tags
        .iter()
        .filter_map(|t| semver(t, variant).map(|(v, s)| (v, s, t.clone())))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let floor = given
        .and_then(|g| g.get("tag"))
        .and_then(|t| semver(t, variant))
        .map(|(v, _)| v);
    let mut out: Vec<Version> = Vec::new();
    for (v, _, tag) in candidates.iter().rev() {
        if floor.as_ref().is_some_and(|f| v < f) {
            continue;
        }
        let Some(m) = reg.manifest(tag)? else {
            continue;
        };
        if !out.iter().any(|o| o.get("digest") == Some(&m.digest)) {
            out.push(version(tag, &m.digest));
        }
    }
    out.reverse();
    let latest = variant.unwrap_or("latest");
    if let Some(m) = reg.manifest(latest)? {
        if !out.iter().any(|o| o.get("digest") == Some(&m.digest)) {
            out.push(version(latest, &m.digest));
        }
    }
    Ok(out)
}

/// Resolves an index to the manifest of our platform.
fn platform_manifest(
    reg: &Registry,
    m: Manifest,
    source: &Source,
) -> Result<Manifest, ResourceError> {
    let is_index =
        m.media_type.starts_with(MEDIA_OCI_INDEX) || m.media_type.starts_with(MEDIA_DOCKER_LIST);
    let body: Value =
        serde_json::from_slice(&m.body).map_err(|e| err(format!("decoding manifest: {e}")))?;
    if !is_index && body.get("manifests").is_none() {
        return Ok(m);
    }
    let (os, arch) = source.platform();
    let entry = body["manifests"]
        .as_array()
        .and_then(|ms| {
            ms.iter().find(|e| {
                e["platform"]["os"] == os.as_str() && e["platform"]["architecture"] == arch.as_str()
            })
        })
        .ok_or_else(|| err(format!("no image for platform {os}/{arch}")))?;
    let digest = entry["digest"]
        .as_str()
        .ok_or_else(|| err("index entry without digest"))?;
    reg.manifest(digest)?
        .ok_or_else(|| err(format!("manifest {digest} not found")))
}

fn get(
    source: &Source,
    dir: &Path,
    given: &Version,
    params: &Map<String, Value>,
    log: &mut dyn Write,
) -> Result<VersionResult, ResourceError> {
    let reg = source.registry()?;
    let digest = given
        .get("digest")
        .ok_or_else(|| err("version has no digest"))?;
    let tag = given
        .get("tag")
        .cloned()
        .or_else(|| source.tag())
        .unwrap_or_else(|| "latest".into());
    let write = |name: &str, contents: &[u8]| {
        std::fs::write(dir.join(name), contents).map_err(|e| err(format!("writing {name}: {e}")))
    };
    write("repository", source.repository.as_bytes())?;
    write("tag", tag.as_bytes())?;
    write("digest", digest.as_bytes())?;
    let metadata = vec![
        MetadataField {
            name: "repository".into(),
            value: source.repository.clone(),
        },
        MetadataField {
            name: "tag".into(),
            value: tag.clone(),
        },
    ];
    if params
        .get("skip_download")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Ok(VersionResult {
            version: given.clone(),
            metadata,
        });
    }
    let format = params
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("rootfs");
    if format != "rootfs" {
        return Err(err(format!(
            "format '{format}' is not supported yet (rootfs is)"
        )));
    }
    let _ = writeln!(log, "fetching {}@{digest}", source.repository);
    let m = reg
        .manifest(digest)?
        .ok_or_else(|| err(format!("image {}@{digest} not found", source.repository)))?;
    let m = platform_manifest(&reg, m, source)?;
    let manifest: Value =
        serde_json::from_slice(&m.body).map_err(|e| err(format!("decoding manifest: {e}")))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| err("manifest without config"))?;
    let config: Value = reg
        .blob(config_digest)?
        .json()
        .map_err(|e| err(format!("decoding image config: {e}")))?;
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| err(format!("creating rootfs: {e}")))?;
    for layer in manifest["layers"].as_array().cloned().unwrap_or_default() {
        let d = layer["digest"]
            .as_str()
            .ok_or_else(|| err("layer without digest"))?;
        let _ = writeln!(log, "extracting layer {d}");
        image::apply_layer(&rootfs, reg.blob(d)?)?;
    }
    write(
        "metadata.json",
        image::rootfs_metadata(&config).to_string().as_bytes(),
    )?;
    let labels = config["config"]["Labels"].clone();
    write(
        "labels.json",
        if labels.is_object() {
            labels.to_string()
        } else {
            "{}".into()
        }
        .as_bytes(),
    )?;
    Ok(VersionResult {
        version: given.clone(),
        metadata,
    })
}

fn put(
    source: &Source,
    dir: &Path,
    params: &Map<String, Value>,
    log: &mut dyn Write,
) -> Result<VersionResult, ResourceError> {
    let reg = source.registry()?;
    let image = params
        .get("image")
        .and_then(Value::as_str)
        .ok_or_else(|| err("image is required (a path to an image tarball)"))?;
    let path = dir.join(image);
    let upload = image::read_image_tarball(&path)?;
    for (digest, bytes) in upload.blobs {
        let _ = writeln!(log, "uploading {digest}");
        reg.upload_blob(&digest, bytes)?;
    }
    let prefix = params
        .get("tag_prefix")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tag = match params.get("version").and_then(Value::as_str) {
        Some(v) => format!("{prefix}{v}"),
        None => source.tag().unwrap_or_else(|| "latest".into()),
    };
    let mut tags = vec![tag.clone()];
    if let Some(file) = params.get("additional_tags").and_then(Value::as_str) {
        let text = std::fs::read_to_string(dir.join(file))
            .map_err(|e| err(format!("reading additional_tags {file}: {e}")))?;
        tags.extend(text.split_whitespace().map(String::from));
    }
    for t in &tags {
        let _ = writeln!(log, "pushing {}:{t}", source.repository);
        reg.put_manifest(t, &upload.media_type, &upload.manifest)?;
    }
    let digest = client::sha256_digest(&upload.manifest);
    Ok(VersionResult {
        version: version(&tag, &digest),
        metadata: vec![],
    })
}

pub fn run(
    action: &str,
    dir: Option<&str>,
    request: &[u8],
    log: &mut dyn Write,
) -> Result<Value, ResourceError> {
    let req: Request =
        serde_json::from_slice(request).map_err(|e| err(format!("invalid payload: {e}")))?;
    if req.source.debug {
        let _ = writeln!(log, "repository: {}", req.source.repository);
    }
    let params = req.params.unwrap_or_default();
    let out = match action {
        "check" => serde_json::to_value(check(&req.source, req.version.as_ref())?),
        "in" => {
            let version = req.version.ok_or_else(|| err("no version given"))?;
            serde_json::to_value(get(
                &req.source,
                Path::new(require_dir(action, dir)?),
                &version,
                &params,
                log,
            )?)
        }
        "out" => serde_json::to_value(put(
            &req.source,
            Path::new(require_dir(action, dir)?),
            &params,
            log,
        )?),
        other => return Err(err(format!("unknown action '{other}' (check, in, out)"))),
    };
    out.map_err(|e| err(format!("encoding response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_source_fields_read_as_absent() {
        crate::resources::assert_null_is_absent::<Source>(
            serde_json::json!({"repository": "busybox"}),
            &[
                "tag",
                "tag_regex",
                "variant",
                "username",
                "password",
                "insecure",
                "platform",
                "debug",
            ],
        );
        crate::resources::assert_null_is_absent::<Request>(
            serde_json::json!({"source": {"repository": "busybox"}}),
            &["params", "version"],
        );
    }

    #[test]
    fn semver_tags_parse_with_specificity_and_variants() {
        assert_eq!(semver("1.2.3", None), Some((vec![1, 2, 3], 3)));
        assert_eq!(semver("v1.2", None), Some((vec![1, 2, 0], 2)));
        assert_eq!(
            semver("1.2.3-alpine", Some("alpine")),
            Some((vec![1, 2, 3], 3))
        );
        assert_eq!(semver("1.2.3-alpine", None), None);
        assert_eq!(semver("latest", None), None);
    }
}
