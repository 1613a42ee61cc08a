//! Which directories a container may use as its root filesystem, and the root filesystem of
//! the worker's own base resource types.
//!
//! A pipeline author chooses `rootfs_uri`, and an image's `rootfs` may be a symlink, so a
//! `raw://` directory is resolved on the host and must lie under one the operator allowed
//! (`--allowed-raw-rootfs`) or under the worker's volumes (where image volumes are). The
//! base resource types run the worker's own binary: their root is a skeleton holding only
//! the host's system directories, read-only, so nothing of the work dir, the web node's
//! data or key files is in view.

use crate::proto::garden::{BindMount, BindMountMode, ContainerSpec, GardenError, WORKER_ROOTFS};
use std::fs;
use std::path::{Path, PathBuf};

/// Host directories the base resource types need (programs, libraries, certificates).
const SYSTEM_DIRS: [&str; 9] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/etc/ssl",
];

/// Host directories under /etc bound whole (certificates, Debian's alternatives links).
const ETC_DIRS: [&str; 3] = [
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/ssh/ssh_config.d",
];

/// Small host files copied into the skeleton's /etc when the worker starts.
const ETC_FILES: [&str; 8] = [
    "passwd",
    "group",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "gitconfig",
    "ssh/ssh_config",
    "localtime",
];

/// Where a container's root filesystem comes from.
#[derive(Debug, PartialEq)]
pub struct Lower {
    /// The overlay's lower directory.
    pub dir: PathBuf,
    /// Read-only binds the root needs besides the spec's own (the base types' system dirs).
    pub binds: Vec<BindMount>,
}

pub struct RootfsPolicy {
    /// Canonical directories `raw://` roots may be in.
    allowed: Vec<PathBuf>,
    /// The base types' skeleton (empty mount points and a few /etc files).
    base: PathBuf,
}

impl RootfsPolicy {
    /// `allowed`: the operator's `--allowed-raw-rootfs` directories plus the worker's
    /// volumes directory. Builds the base skeleton under `work_dir`.
    pub fn new(work_dir: &Path, allowed: &[PathBuf]) -> std::io::Result<RootfsPolicy> {
        let mut canonical = Vec::new();
        for dir in allowed {
            fs::create_dir_all(dir)?;
            canonical.push(dir.canonicalize()?);
        }
        let base = work_dir.join("base-rootfs");
        build_skeleton(&base)?;
        Ok(RootfsPolicy {
            allowed: canonical,
            base,
        })
    }

    /// The lower directory (and extra binds) of `spec`'s root filesystem.
    pub fn lower(&self, spec: &ContainerSpec) -> Result<Lower, GardenError> {
        let uri = if spec.rootfs.is_empty() {
            &spec.image.uri
        } else {
            &spec.rootfs
        };
        if uri.is_empty() {
            return Err(GardenError::BadRequest("no image specified".into()));
        }
        if uri == WORKER_ROOTFS {
            return Ok(Lower {
                dir: self.base.clone(),
                binds: base_binds(),
            });
        }
        let malformed = || {
            GardenError::BadRequest(
                "malformatted rootfs: must be of form 'scheme://<abs_dir>'".into(),
            )
        };
        let path = uri.strip_prefix("raw://").ok_or_else(malformed)?;
        if !path.starts_with('/') {
            return Err(malformed());
        }
        // Resolved first: a symlink (or `..`) may not lead out of an allowed directory.
        let real = Path::new(path)
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| GardenError::BadRequest(format!("rootfs {path} is not a directory")))?;
        if !self.allowed.iter().any(|a| real.starts_with(a)) {
            return Err(GardenError::BadRequest(format!(
                "rootfs {path} is not in a directory the worker allows (--allowed-raw-rootfs)"
            )));
        }
        Ok(Lower {
            dir: real,
            binds: Vec::new(),
        })
    }
}

/// The skeleton: a mount point per system directory (a symlink where the host has one,
/// as on merged-/usr systems), writable /tmp, and copies of the /etc files programs read.
fn build_skeleton(base: &Path) -> std::io::Result<()> {
    if base.exists() {
        crate::worker_fs::remove_tree(base)?;
    }
    for d in ["etc/ssh", "tmp", "root", "proc", "dev", "sys"] {
        fs::create_dir_all(base.join(d))?;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(base.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    for dir in SYSTEM_DIRS.iter().chain(ETC_DIRS.iter()) {
        let host = Path::new(dir);
        let inside = base.join(dir.trim_start_matches('/'));
        match fs::symlink_metadata(host) {
            Ok(m) if m.file_type().is_symlink() => {
                std::os::unix::fs::symlink(fs::read_link(host)?, &inside)?;
            }
            Ok(m) if m.is_dir() => fs::create_dir_all(&inside)?,
            _ => {}
        }
    }
    for f in ETC_FILES {
        let host = Path::new("/etc").join(f);
        if host.is_file() {
            fs::copy(&host, base.join("etc").join(f))?;
        }
    }
    Ok(())
}

/// Read-only binds of the host's system directories (real directories only: symlinks are
/// in the skeleton) and of the worker's own binary, which the base types run.
fn base_binds() -> Vec<BindMount> {
    let ro = |p: &str| BindMount {
        src_path: p.to_string(),
        dst_path: p.to_string(),
        mode: BindMountMode::ReadOnly,
        ..Default::default()
    };
    let mut binds: Vec<BindMount> = SYSTEM_DIRS
        .iter()
        .chain(ETC_DIRS.iter())
        .filter(|d| fs::symlink_metadata(d).map(|m| m.is_dir()).unwrap_or(false))
        .map(|d| ro(d))
        .collect();
    if let Ok(exe) = std::env::current_exe() {
        let exe = exe.display().to_string();
        if !SYSTEM_DIRS
            .iter()
            .any(|d| exe.starts_with(&format!("{d}/")))
        {
            binds.push(ro(&exe));
        }
    }
    binds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rootfs: &str) -> ContainerSpec {
        ContainerSpec {
            rootfs: rootfs.into(),
            ..Default::default()
        }
    }

    #[test]
    fn raw_roots_must_resolve_inside_an_allowed_directory() {
        let work = tempfile::tempdir().expect("tmp");
        let allowed = work.path().join("allowed");
        fs::create_dir_all(allowed.join("img/rootfs")).expect("dirs");
        fs::create_dir_all(work.path().join("elsewhere")).expect("dirs");
        std::os::unix::fs::symlink("/", allowed.join("img/escape")).expect("link");
        let policy =
            RootfsPolicy::new(work.path(), std::slice::from_ref(&allowed)).expect("policy");
        let ok = policy
            .lower(&spec(&format!("raw://{}/img/rootfs", allowed.display())))
            .expect("allowed");
        assert_eq!(
            ok.dir,
            allowed.canonicalize().expect("c").join("img/rootfs")
        );
        for refused in [
            format!("raw://{}/elsewhere", work.path().display()),
            format!("raw://{}/img/escape", allowed.display()),
            format!("raw://{}/img/../../elsewhere", allowed.display()),
            "raw:///".to_string(),
        ] {
            let err = policy.lower(&spec(&refused)).unwrap_err();
            assert!(
                err.to_string().contains("--allowed-raw-rootfs"),
                "{refused}: {err}"
            );
        }
        assert_eq!(
            policy.lower(&spec("")).unwrap_err().to_string(),
            "no image specified"
        );
        assert!(matches!(
            policy.lower(&spec("docker:///busybox")),
            Err(GardenError::BadRequest(_))
        ));
        assert!(matches!(
            policy.lower(&spec("raw://relative")),
            Err(GardenError::BadRequest(_))
        ));
    }

    #[test]
    fn the_base_root_is_a_skeleton_with_the_system_directories_bound_read_only() {
        let work = tempfile::tempdir().expect("tmp");
        let policy = RootfsPolicy::new(work.path(), &[]).expect("policy");
        let lower = policy.lower(&spec(WORKER_ROOTFS)).expect("base");
        assert_eq!(lower.dir, work.path().join("base-rootfs"));
        assert!(lower.dir.join("tmp").is_dir());
        assert!(lower.dir.join("etc/passwd").is_file());
        assert!(lower
            .binds
            .iter()
            .all(|b| b.mode == BindMountMode::ReadOnly));
        assert!(lower.binds.iter().any(|b| b.dst_path == "/usr"));
        // Nothing of the host's writable or private trees is in view.
        for private in ["/tmp", "/root", "/home", "/var", "/work", "/etc"] {
            assert!(
                !lower.binds.iter().any(|b| b.src_path == private),
                "{private} is bound"
            );
        }
    }
}
