//! Image contents: unpacking layers into a rootfs (with OCI whiteouts), image metadata,
//! and reading OCI-layout or `docker save` tarballs for pushing.

use super::client::{sha256_digest, MEDIA_OCI_MANIFEST};
use crate::resources::ResourceError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

fn err(msg: impl Into<String>) -> ResourceError {
    ResourceError::new(msg)
}

/// Refuses entries that would land outside the rootfs.
fn safe_join(root: &Path, entry: &Path) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for c in entry.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Applies one layer (a possibly gzip-compressed tar) onto `rootfs`.
pub fn apply_layer(rootfs: &Path, layer: impl Read) -> Result<(), ResourceError> {
    let mut buffered = std::io::BufReader::new(layer);
    let gz = {
        use std::io::BufRead;
        let head = buffered
            .fill_buf()
            .map_err(|e| err(format!("reading layer: {e}")))?;
        head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
    };
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive
        .entries()
        .map_err(|e| err(format!("reading layer: {e}")))?
    {
        let mut entry = entry.map_err(|e| err(format!("reading layer entry: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| err(format!("layer entry path: {e}")))?
            .into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        let Some(target) = safe_join(rootfs, &path) else {
            continue;
        };
        if name == ".wh..wh..opq" {
            // Opaque directory: drop everything the lower layers put there.
            if let Some(dir) = target.parent() {
                if let Ok(children) = std::fs::read_dir(dir) {
                    for child in children.flatten() {
                        let _ = remove(&child.path());
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if let Some(dir) = target.parent() {
                let _ = remove(&dir.join(hidden));
            }
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
        }
        // A file replacing a directory (or the reverse) must not merge with it.
        if let Ok(meta) = std::fs::symlink_metadata(&target) {
            if meta.is_dir() != entry.header().entry_type().is_dir() {
                let _ = remove(&target);
            }
        }
        entry
            .unpack_in(rootfs)
            .map_err(|e| err(format!("unpacking {}: {e}", path.display())))?;
    }
    Ok(())
}

fn remove(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    }
}

/// `metadata.json` of the rootfs image format, from the image config blob.
pub fn rootfs_metadata(config: &Value) -> Value {
    let c = &config["config"];
    let list = |k: &str| {
        c.get(k)
            .filter(|v| v.is_array())
            .cloned()
            .unwrap_or(json!([]))
    };
    json!({
        "env": list("Env"),
        "user": c.get("User").and_then(Value::as_str).unwrap_or_default(),
        "cmd": list("Cmd"),
        "entrypoint": list("Entrypoint"),
    })
}

/// An image to push: its config and (compressed) layers, plus a manifest describing them.
pub struct Upload {
    pub blobs: Vec<(String, Vec<u8>)>,
    pub manifest: Vec<u8>,
    pub media_type: String,
}

/// Reads an OCI image tarball (OCI layout) or a `docker save` tarball.
pub fn read_image_tarball(path: &Path) -> Result<Upload, ResourceError> {
    let file = std::fs::File::open(path)
        .map_err(|e| err(format!("opening image {}: {e}", path.display())))?;
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut archive = tar::Archive::new(file);
    for entry in archive
        .entries()
        .map_err(|e| err(format!("reading image tarball: {e}")))?
    {
        let mut entry = entry.map_err(|e| err(format!("reading image tarball: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| err(format!("image entry path: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut buf = Vec::new();
        entry
            .read_to_end(&mut buf)
            .map_err(|e| err(format!("reading {name}: {e}")))?;
        files.insert(name, buf);
    }
    let json_of = |name: &str| -> Result<Value, ResourceError> {
        let bytes = files
            .get(name)
            .ok_or_else(|| err(format!("image tarball has no {name}")))?;
        serde_json::from_slice(bytes).map_err(|e| err(format!("decoding {name}: {e}")))
    };
    let blob_path = |digest: &str| format!("blobs/{}", digest.replacen(':', "/", 1));
    if files.contains_key("index.json") {
        let index = json_of("index.json")?;
        let mut manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .ok_or_else(|| err("index.json lists no manifest"))?
            .to_string();
        let mut manifest: Value = json_of(&blob_path(&manifest_digest))?;
        // A nested index: take its first (linux) manifest.
        if manifest.get("manifests").is_some() {
            manifest_digest = manifest["manifests"][0]["digest"]
                .as_str()
                .ok_or_else(|| err("nested index lists no manifest"))?
                .to_string();
            manifest = json_of(&blob_path(&manifest_digest))?;
        }
        let mut blobs = Vec::new();
        let mut descriptors = vec![manifest["config"].clone()];
        descriptors.extend(manifest["layers"].as_array().cloned().unwrap_or_default());
        for d in descriptors {
            let digest = d["digest"]
                .as_str()
                .ok_or_else(|| err("descriptor without digest"))?
                .to_string();
            let bytes = files
                .get(&blob_path(&digest))
                .cloned()
                .ok_or_else(|| err(format!("image tarball lacks blob {digest}")))?;
            blobs.push((digest, bytes));
        }
        let body = files
            .get(&blob_path(&manifest_digest))
            .cloned()
            .unwrap_or_default();
        let media_type = manifest["mediaType"]
            .as_str()
            .unwrap_or(MEDIA_OCI_MANIFEST)
            .to_string();
        return Ok(Upload {
            blobs,
            manifest: body,
            media_type,
        });
    }
    // docker save: manifest.json → config file + uncompressed layer tars.
    let docker = json_of("manifest.json")?;
    let entry = &docker[0];
    let config_name = entry["Config"]
        .as_str()
        .ok_or_else(|| err("manifest.json has no Config"))?;
    let config = files
        .get(config_name)
        .cloned()
        .ok_or_else(|| err(format!("image tarball lacks {config_name}")))?;
    let config_digest = sha256_digest(&config);
    let mut blobs = vec![(config_digest.clone(), config.clone())];
    let mut layers = Vec::new();
    for layer in entry["Layers"].as_array().cloned().unwrap_or_default() {
        let name = layer.as_str().ok_or_else(|| err("bad layer name"))?;
        let raw = files
            .get(name)
            .ok_or_else(|| err(format!("image tarball lacks {name}")))?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, raw)
            .map_err(|e| err(format!("compressing {name}: {e}")))?;
        let compressed = gz
            .finish()
            .map_err(|e| err(format!("compressing {name}: {e}")))?;
        let digest = sha256_digest(&compressed);
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": compressed.len()}));
        blobs.push((digest, compressed));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    });
    Ok(Upload {
        blobs,
        manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
        media_type: MEDIA_OCI_MANIFEST.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn whiteouts_remove_lower_files() {
        let dir = tempfile::tempdir().expect("temp");
        apply_layer(
            dir.path(),
            &layer(&[("etc/a", b"1"), ("etc/b", b"2"), ("opt/x/y", b"3")])[..],
        )
        .expect("layer 1");
        apply_layer(
            dir.path(),
            &layer(&[
                ("etc/.wh.a", b""),
                ("opt/x/.wh..wh..opq", b""),
                ("opt/x/z", b"4"),
            ])[..],
        )
        .expect("layer 2");
        assert!(!dir.path().join("etc/a").exists());
        assert!(dir.path().join("etc/b").exists());
        assert!(!dir.path().join("opt/x/y").exists());
        assert!(dir.path().join("opt/x/z").exists());
    }

    #[test]
    fn entries_cannot_escape_the_rootfs() {
        assert_eq!(safe_join(Path::new("/r"), Path::new("../etc/passwd")), None);
        assert_eq!(
            safe_join(Path::new("/r"), Path::new("/etc/passwd")),
            Some(PathBuf::from("/r/etc/passwd"))
        );
    }
}
