//! Backends: what a container is on this host. `process` (no isolation, like upstream's
//! Houdini) lives here; `linux` (namespaces, overlayfs, cgroups) in `linux/`.

use crate::proto::garden::{ContainerSpec, GardenError, Metrics, ProcessSpec};
use std::fs;
use std::path::{Path, PathBuf};

/// Which backend a Garden runs (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Namespaces, overlayfs, pivot_root, cgroups (`linux`, `containerd`, `guardian`).
    Linux,
    /// No isolation: one directory per container (`process`, `houdini`).
    Process,
}

impl BackendKind {
    /// Linux when running as root on Linux with namespaces available, else process.
    pub fn detect() -> BackendKind {
        if super::linux::supported() {
            BackendKind::Linux
        } else {
            BackendKind::Process
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linux" | "containerd" | "guardian" => Ok(BackendKind::Linux),
            "process" | "houdini" => Ok(BackendKind::Process),
            other => Err(format!(
                "unknown runtime {other:?} (linux, containerd, guardian, process, houdini)"
            )),
        }
    }
}

/// A process to start; the caller gives it stdio.
pub enum Spawn {
    /// The process backend: a command to spawn.
    Command(tokio::process::Command),
    /// The linux backend: a stage for the stage server to launch with the stage's end of
    /// the handoff (dropped after the launch), then the handoff (see `linux::stage`).
    Stage {
        stages: std::sync::Arc<super::linux::stages::Stages>,
        handoff: super::linux::stage::Handoff,
        theirs: std::os::fd::OwnedFd,
    },
}

/// A created container as its backend sees it. Blocking methods.
pub trait Sandbox: Send + Sync {
    /// Where the container's `/` is on the host (for paths not under a bind mount).
    fn root(&self) -> &Path;
    /// What runs `spec` in the container with the final `env`; the caller sets stdio.
    /// With `tty`, stdin is the pty slave and must become the controlling terminal.
    fn command(&self, spec: &ProcessSpec, env: &[String], tty: bool) -> Result<Spawn, GardenError>;
    /// Undoes everything `create` did. Processes are already dead.
    fn destroy(&self) -> Result<(), GardenError>;
    fn metrics(&self) -> Metrics {
        Metrics::default()
    }
    /// Whether the kernel OOM-killed something in this container.
    fn oom_killed(&self) -> bool {
        false
    }
}

/// Makes containers. Blocking; called on `spawn_blocking`.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// Creates the container `handle` in the fresh directory `dir`.
    fn create(
        &self,
        handle: &str,
        spec: &ContainerSpec,
        dir: &Path,
    ) -> Result<Box<dyn Sandbox>, GardenError>;
    /// Undoes what the backend set up for its containers (the linux backend's bridge and
    /// firewall rules); called once every container is destroyed, at shutdown.
    fn close(&self) {}
}

/// `dir` joined with an absolute container path (never leaving `dir` lexically).
pub fn under(dir: &Path, container_path: &str) -> PathBuf {
    let mut out = dir.to_path_buf();
    for c in Path::new(container_path).components() {
        if let std::path::Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

/// A process's rlimits (`{"nofile": 1024, ...}`, upstream's names) as (resource, value)
/// pairs, soft and hard limit alike.
pub fn rlimits(spec: &ProcessSpec) -> Result<Vec<(u32, u64)>, GardenError> {
    let Some(serde_json::Value::Object(map)) = &spec.rlimits else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (name, value) in map {
        let Some(v) = value.as_u64() else { continue }; // null: not set
        let resource = match name.as_str() {
            "as" => libc::RLIMIT_AS,
            "core" => libc::RLIMIT_CORE,
            "cpu" => libc::RLIMIT_CPU,
            "data" => libc::RLIMIT_DATA,
            "fsize" => libc::RLIMIT_FSIZE,
            "locks" => libc::RLIMIT_LOCKS,
            "memlock" => libc::RLIMIT_MEMLOCK,
            "msgqueue" => libc::RLIMIT_MSGQUEUE,
            "nice" => libc::RLIMIT_NICE,
            "nofile" => libc::RLIMIT_NOFILE,
            "nproc" => libc::RLIMIT_NPROC,
            "rss" => libc::RLIMIT_RSS,
            "rtprio" => libc::RLIMIT_RTPRIO,
            "sigpending" => libc::RLIMIT_SIGPENDING,
            "stack" => libc::RLIMIT_STACK,
            other => return Err(GardenError::BadRequest(format!("unknown rlimit: {other}"))),
        };
        out.push((resource as u32, v));
    }
    Ok(out)
}

/// Applies rlimits between fork and exec (only `setrlimit` calls).
///
/// # Safety
/// Async-signal-safe; meant for `pre_exec`.
pub unsafe fn apply_rlimits(limits: &[(u32, u64)]) -> std::io::Result<()> {
    for &(resource, value) in limits {
        let lim = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        if libc::setrlimit(resource as _, &lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The process backend: a directory per container, volumes symlinked at their paths under it.
/// With no mount namespace, a process sees host paths: an argument naming a bind mount's
/// container path is given the host directory instead, and an absolute program path is
/// looked up in a `raw://` root filesystem first (a custom resource type's image).
pub struct ProcessBackend;

struct ProcessSandbox {
    dir: PathBuf,
    /// The host directory of a `raw://` rootfs, if any.
    rootfs: Option<PathBuf>,
    /// (container path, host path) of each bind mount.
    mounts: Vec<(String, String)>,
}

impl ProcessSandbox {
    /// The host program for `path`: inside the raw rootfs when it exists there.
    fn program(&self, path: &str) -> PathBuf {
        if let (Some(root), true) = (&self.rootfs, path.starts_with('/')) {
            let inside = under(root, path);
            if inside.is_file() {
                return inside;
            }
        }
        PathBuf::from(path)
    }

    /// `arg`, or the host path when it is exactly a bind mount's container path.
    fn arg<'a>(&'a self, arg: &'a str) -> &'a str {
        let trimmed = arg.trim_end_matches('/');
        self.mounts
            .iter()
            .find(|(dst, _)| !trimmed.is_empty() && dst.trim_end_matches('/') == trimmed)
            .map_or(arg, |(_, src)| src.as_str())
    }
}

impl Backend for ProcessBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Process
    }

    fn create(
        &self,
        handle: &str,
        spec: &ContainerSpec,
        dir: &Path,
    ) -> Result<Box<dyn Sandbox>, GardenError> {
        if !spec.rootfs.is_empty() || !spec.image.uri.is_empty() {
            tracing::debug!(handle, rootfs = %spec.rootfs, "process backend ignores the image");
        }
        fs::create_dir_all(dir)
            .map_err(|e| GardenError::other(format!("creating container dir: {e}")))?;
        for m in &spec.bind_mounts {
            let at = under(dir, &m.dst_path);
            if let Some(parent) = at.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| GardenError::other(format!("bind mount {}: {e}", m.dst_path)))?;
            }
            let _ = fs::remove_dir(&at);
            std::os::unix::fs::symlink(&m.src_path, &at)
                .map_err(|e| GardenError::other(format!("bind mount {}: {e}", m.dst_path)))?;
        }
        Ok(Box::new(ProcessSandbox {
            dir: dir.to_path_buf(),
            rootfs: spec
                .rootfs
                .strip_prefix("raw://")
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from),
            mounts: spec
                .bind_mounts
                .iter()
                .map(|m| (m.dst_path.clone(), m.src_path.clone()))
                .collect(),
        }))
    }
}

impl Sandbox for ProcessSandbox {
    fn root(&self) -> &Path {
        &self.dir
    }

    fn command(&self, spec: &ProcessSpec, env: &[String], tty: bool) -> Result<Spawn, GardenError> {
        let dir = under(&self.dir, if spec.dir.is_empty() { "/" } else { &spec.dir });
        fs::create_dir_all(&dir)
            .map_err(|e| GardenError::other(format!("creating working directory: {e}")))?;
        let limits = rlimits(spec)?;
        let mut cmd = tokio::process::Command::new(self.program(&spec.path));
        cmd.args(spec.args.iter().map(|a| self.arg(a)))
            .current_dir(&dir)
            .env_clear();
        for kv in env {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            cmd.env(k, v);
        }
        // SAFETY: only async-signal-safe calls (setsid, ioctl, setpgid, setrlimit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if tty {
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::setpgid(0, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                apply_rlimits(&limits)
            });
        }
        Ok(Spawn::Command(cmd))
    }

    fn destroy(&self) -> Result<(), GardenError> {
        // Symlinked volumes are removed as links; their targets are left alone.
        crate::worker_fs::remove_tree(&self.dir)
            .map_err(|e| GardenError::other(format!("removing container: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::garden::{BindMount, BindMountMode};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn process_backend_gives_host_paths_for_image_scripts_and_mounts() {
        let tmp = tempfile::tempdir().expect("temp");
        let image = tmp.path().join("image");
        let script = image.join("rootfs/opt/resource/in");
        fs::create_dir_all(script.parent().expect("parent")).expect("mkdir");
        fs::write(&script, "#!/bin/sh\n").expect("write");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        let vol = tmp.path().join("vol");
        fs::create_dir(&vol).expect("mkdir");
        let spec = ContainerSpec {
            rootfs: format!("raw://{}/rootfs", image.display()),
            bind_mounts: vec![BindMount {
                src_path: vol.display().to_string(),
                dst_path: "/tmp/build/get".into(),
                mode: BindMountMode::ReadWrite,
                origin: 0,
            }],
            ..Default::default()
        };
        let sandbox = ProcessBackend
            .create("h", &spec, &tmp.path().join("container"))
            .expect("create");
        let process = ProcessSpec {
            path: "/opt/resource/in".into(),
            args: vec!["/tmp/build/get".into(), "/tmp/build/other".into()],
            dir: "/tmp/build/get".into(),
            ..Default::default()
        };
        let command = |p: &ProcessSpec| match sandbox.command(p, &[], false).expect("command") {
            Spawn::Command(cmd) => cmd,
            Spawn::Stage { .. } => panic!("the process backend spawns commands"),
        };
        let cmd = command(&process);
        let std = cmd.as_std();
        assert_eq!(std.get_program(), script.as_os_str());
        let args: Vec<_> = std.get_args().collect();
        assert_eq!(
            args,
            vec![vol.as_os_str(), std::ffi::OsStr::new("/tmp/build/other")]
        );
        // A program not in the image is left alone.
        let other = ProcessSpec {
            path: "/bin/sh".into(),
            ..process
        };
        let cmd = command(&other);
        assert_eq!(cmd.as_std().get_program(), "/bin/sh");
    }
}
