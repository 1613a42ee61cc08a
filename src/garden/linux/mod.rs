//! The linux backend: each container is an overlayfs rootfs (over a `raw://` directory,
//! an image volume, or the host's root read-only) with its volumes bind-mounted at their
//! paths, a cgroup holding its limits, its own mount, pid, uts, ipc and network namespaces
//! (see `network`: an eth0 on the worker's bridge unless the container has no outbound
//! rules) with a pivot_root into the rootfs; processes run with capabilities dropped
//! unless privileged, as the process's user.
//!
//! Each container has a small init (pid 1 of its pid namespace, see `child`) holding its
//! namespaces; every process joins them, so processes of one container see each other.

mod cgroup;
pub mod child;
pub mod network;
pub mod rootfs;
mod seccomp;
pub mod stage;
pub mod stages;
pub mod syscall;
mod userns;

use super::backend::{under, Backend, BackendKind, Sandbox, Spawn};
use crate::proto::garden::{BindMountMode, ContainerSpec, GardenError, Metrics, ProcessSpec};
use crate::worker_fs::archive::{ensure_dir_inside, resolve_inside};
use crate::worker_fs::remove_tree;
use child::{BindPlan, InitPlan, ProcessPlan};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use syscall::{LinuxSyscall, Syscall};

/// Whether this host can run the linux backend (root, namespaces, overlayfs).
pub fn supported() -> bool {
    crate::worker_fs::archive::is_root()
        && Path::new("/proc/self/ns/pid").exists()
        && fs::read_to_string("/proc/filesystems")
            .map(|f| f.contains("overlay"))
            .unwrap_or(false)
}

/// "v1" or "v2": the cgroup hierarchy containers are put in, if there is one.
pub fn cgroup_version() -> Option<&'static str> {
    cgroup::detect().map(|v| match v {
        cgroup::Version::V1 => "v1",
        cgroup::Version::V2 => "v2",
    })
}

fn c_str(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn unmount(p: &Path) {
    let _ = LinuxSyscall.umount(&cpath(p), libc::MNT_DETACH);
}

/// Undoes mounts and cgroups left in a container directory by an earlier run.
pub fn cleanup_leftover(dir: &Path) {
    if dir.join("rootfs").exists() {
        unmount(&dir.join("rootfs"));
    }
    cgroup::Cgroup::remove_leftover(&cgroup_name(dir));
}

/// A container's cgroup name: its handle, prefixed with a digest of its directory so two
/// Gardens on one host (or two test runs) never share a group.
fn cgroup_name(dir: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dir.as_os_str().as_bytes());
    let prefix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let handle = dir
        .file_name()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{prefix}-{handle}")
}

/// Capabilities an unprivileged container keeps (Docker's default set).
const KEPT_CAPS: [libc::c_int; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const CAP_MKNOD: libc::c_int = 27;

/// runc's default masked paths: kernel state an unprivileged container must not read.
const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths: kernel knobs (core_pattern, sysrq) it must not write.
const READ_ONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the linux runtime is given by the worker.
#[derive(Debug, Clone, Default)]
pub struct LinuxConfig {
    /// The worker's work dir: holds the base types' root; names the bridge and firewall
    /// chains of this worker.
    pub work_dir: PathBuf,
    /// Directories `raw://` root filesystems may come from: the operator's
    /// `--allowed-raw-rootfs` and the worker's volumes directory (image volumes).
    pub allowed_raw_rootfs: Vec<PathBuf>,
    pub network: network::NetworkConfig,
    /// The `concourse` executable the stage server runs (see `stages`); empty: this one.
    /// Tests that embed a Garden name the real binary.
    pub stage: PathBuf,
}

pub struct LinuxBackend {
    stages: std::sync::Arc<stages::Stages>,
    cgroups: Option<cgroup::Version>,
    rootfs: rootfs::RootfsPolicy,
    /// Whether unprivileged containers get a user namespace (the kernel allows it).
    user_namespaces: bool,
    network: std::sync::Arc<network::Network>,
}

impl LinuxBackend {
    /// The pid of the process that forks this backend's containers and processes, while
    /// it runs (see `stages`).
    pub fn stage_server(&self) -> Option<u32> {
        self.stages.server_pid()
    }

    pub fn with_config(config: LinuxConfig) -> std::io::Result<LinuxBackend> {
        config.network.validate().map_err(std::io::Error::other)?;
        if !supported() {
            return Err(std::io::Error::other(
                "the linux runtime needs root, namespaces and overlayfs",
            ));
        }
        let cgroups = cgroup::detect();
        if cgroups.is_none() {
            tracing::warn!("no cgroup hierarchy found: container limits are not enforced");
        }
        let user_namespaces = userns::supported();
        if !user_namespaces {
            tracing::warn!(
                "user namespaces are unavailable: unprivileged containers' root is the host's root"
            );
        }
        let rootfs = rootfs::RootfsPolicy::new(&config.work_dir, &config.allowed_raw_rootfs)?;
        let network = network::Network::new(&config.work_dir, config.network);
        Ok(LinuxBackend {
            cgroups,
            rootfs,
            user_namespaces,
            network: std::sync::Arc::new(network),
            stages: std::sync::Arc::new(stages::Stages::new(&config.stage)),
        })
    }
}

struct LinuxSandbox {
    handle: String,
    dir: PathBuf,
    rootfs: PathBuf,
    spec: ContainerSpec,
    cgroup: Option<cgroup::Cgroup>,
    /// The init's host-side process (C): killing it ends the container.
    init: std::sync::Mutex<Option<stages::Launched>>,
    /// Host pid of the container's pid 1, whose namespaces processes join.
    init_pid: i32,
    /// (uid, gid) pairs the writable bind mounts were already handed to.
    chowned: std::sync::Mutex<std::collections::HashSet<(u32, u32)>>,
    /// The user namespace's id mapping (unprivileged containers).
    userns: Option<userns::Mapping>,
    /// The container's address (none: hermetic, loopback only), released on destroy.
    net: std::sync::Mutex<Option<(std::sync::Arc<network::Network>, network::Lease)>>,
    resolv_conf: String,
    stages: std::sync::Arc<stages::Stages>,
}

impl Backend for LinuxBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Linux
    }

    fn create(
        &self,
        handle: &str,
        spec: &ContainerSpec,
        dir: &Path,
    ) -> Result<Box<dyn Sandbox>, GardenError> {
        let lower = self.rootfs.lower(spec)?;
        let mut spec = spec.clone();
        spec.bind_mounts.splice(0..0, lower.binds);
        let other =
            |what: &str, e: &dyn std::fmt::Display| GardenError::Other(format!("{what}: {e}"));
        let rootfs = dir.join("rootfs");
        for d in ["upper", "work", "rootfs"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| other("creating container", &e))?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.dir.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let opts = CString::new(options).map_err(|e| other("rootfs", &e))?;
        LinuxSyscall
            .mount(c"overlay", &cpath(&rootfs), c"overlay", 0, &opts)
            .map_err(|e| other("mounting the rootfs", &e))?;
        let mut sandbox = LinuxSandbox {
            handle: handle.to_string(),
            dir: dir.to_path_buf(),
            rootfs,
            userns: (!spec.privileged && self.user_namespaces).then_some(userns::MAPPING),
            spec,
            cgroup: None,
            init: std::sync::Mutex::new(None),
            init_pid: 0,
            chowned: Default::default(),
            net: Default::default(),
            resolv_conf: self.network.resolv_conf(),
            stages: self.stages.clone(),
        };
        if !sandbox.spec.netout_rules.is_empty() {
            // Rules are not enforced one by one: any rule means "may reach the network",
            // which is what Concourse's single allow-all rule asks for.
            let lease = match self.network.allocate() {
                Ok(l) => l,
                Err(e) => {
                    let _ = sandbox.destroy();
                    return Err(e);
                }
            };
            *sandbox.net.get_mut().unwrap_or_else(|p| p.into_inner()) =
                Some((self.network.clone(), lease));
        }
        if let Err(e) = sandbox
            .prepare(self.cgroups)
            .and_then(|()| sandbox.start_init())
            .and_then(|()| sandbox.attach_network())
        {
            let _ = sandbox.destroy();
            return Err(e);
        }
        Ok(Box::new(sandbox))
    }

    fn close(&self) {
        self.stages.stop();
        self.network.close();
    }
}

impl LinuxSandbox {
    /// Mount points, /etc/hosts and resolv.conf, the cgroup. Directories are made from the
    /// host side without following symlinks the image may hold.
    fn prepare(&mut self, cgroups: Option<cgroup::Version>) -> Result<(), GardenError> {
        let bad = |e: crate::worker_fs::archive::ArchiveError| {
            GardenError::BadRequest(format!("preparing the rootfs: {e}"))
        };
        for d in ["proc", "dev", "sys", "tmp", "etc"] {
            ensure_dir_inside(&self.rootfs, Path::new(d)).map_err(bad)?;
        }
        for m in &self.spec.bind_mounts {
            // A mount nested in another bind mount needs its mount point in that mount's
            // source (the rootfs copy would be hidden by the parent mount), as runc does.
            let outer = self
                .spec
                .bind_mounts
                .iter()
                .filter(|o| {
                    let prefix = format!("{}/", o.dst_path.trim_end_matches('/'));
                    m.dst_path.starts_with(&prefix)
                })
                .max_by_key(|o| o.dst_path.len());
            let (base, rel) = match outer {
                Some(o) => (
                    PathBuf::from(&o.src_path),
                    Path::new(&m.dst_path[o.dst_path.trim_end_matches('/').len() + 1..]),
                ),
                None => (
                    self.rootfs.clone(),
                    Path::new(m.dst_path.trim_start_matches('/')),
                ),
            };
            if Path::new(&m.src_path).is_dir() {
                ensure_dir_inside(&base, rel).map_err(bad)?;
            } else if let Some(parent) = rel.parent() {
                let at = ensure_dir_inside(&base, parent)
                    .map_err(bad)?
                    .join(rel.file_name().unwrap_or_default());
                if fs::symlink_metadata(&at).is_err() {
                    fs::write(&at, b"").map_err(|e| {
                        GardenError::Other(format!("bind mount {}: {e}", m.dst_path))
                    })?;
                }
            }
        }
        let etc = resolve_inside(&self.rootfs, Path::new("etc")).map_err(bad)?;
        let host = self.handle.chars().take(63).collect::<String>();
        let mut hosts =
            format!("127.0.0.1 localhost {host}\n::1 localhost ip6-localhost ip6-loopback\n");
        if let Some((_, lease)) = &*self.net.lock().unwrap_or_else(|p| p.into_inner()) {
            hosts.push_str(&format!("{} {host}\n", lease.ip));
        }
        for (name, content) in [
            ("hosts", hosts),
            ("hostname", format!("{host}\n")),
            ("resolv.conf", self.resolv_conf.clone()),
        ] {
            let f = etc.join(name);
            if fs::symlink_metadata(&f)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                let _ = fs::remove_file(&f);
            }
            let _ = fs::write(&f, content);
        }
        // Images without users (e.g. clearlinux) still run as a named root, like Garden.
        for (name, content) in [
            ("passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("group", "root:x:0:\n"),
        ] {
            let f = etc.join(name);
            if fs::symlink_metadata(&f).is_err() {
                let _ = fs::write(&f, content);
            }
        }
        // Container root may write where the image's root may: its /, /tmp and home, even
        // when host root owns them (an operator's raw directory, a privileged step's image).
        // So are the directories leading to its mount points (the task's working directory
        // among them), as in upstream's namespaced images where all of root's is its root's.
        if let Some(map) = self.userns {
            let mut dirs: Vec<PathBuf> = ["tmp", "root", "home", "var/tmp", "run"]
                .iter()
                .map(PathBuf::from)
                .collect();
            for m in &self.spec.bind_mounts {
                let rel = Path::new(m.dst_path.trim_start_matches('/'));
                dirs.extend(rel.ancestors().skip(1).map(Path::to_path_buf));
            }
            dirs.push(PathBuf::new());
            for d in dirs {
                if let Ok(p) = resolve_inside(&self.rootfs, &d) {
                    let _ = map.own(&p);
                }
            }
        }
        if let Some(v) = cgroups {
            let cg = cgroup::Cgroup::create(
                v,
                &cgroup_name(&self.dir),
                &self.spec.limits,
                self.spec.privileged,
            )
            .map_err(|e| GardenError::Other(format!("creating the container's cgroup: {e}")))?;
            self.cgroup = Some(cg);
        }
        Ok(())
    }

    fn init_plan(&self) -> InitPlan {
        let rootfs = self.rootfs.display().to_string();
        let mut binds = self.spec.bind_mounts.clone();
        binds.sort_by(|a, b| a.dst_path.cmp(&b.dst_path)); // parents before children
                                                           // Always a network namespace of its own: loopback only (hermetic) until
                                                           // `attach_network` gives it an eth0.
        let mut flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET;
        // Its own cgroup namespace: it sees its groups as the root, not the host's tree.
        if self.cgroup.is_some() && Path::new("/proc/self/ns/cgroup").exists() {
            flags |= libc::CLONE_NEWCGROUP;
        }
        let cgroup_dir = self.rootfs.join("sys/fs/cgroup");
        let cgroup_mounts = match (&self.cgroup, flags & libc::CLONE_NEWCGROUP != 0) {
            (Some(cg), true) => cg
                .container_mounts()
                .into_iter()
                .map(|(dir, fstype, data)| {
                    let target = if dir.is_empty() {
                        cgroup_dir.clone()
                    } else {
                        cgroup_dir.join(dir)
                    };
                    (cpath(&target), c_str(fstype), c_str(&data))
                })
                .collect(),
            _ => vec![],
        };
        InitPlan {
            rootfs: cpath(&self.rootfs),
            binds: binds
                .iter()
                .map(|m| BindPlan {
                    src: cpath(Path::new(&m.src_path)),
                    dst: cpath(&under(&self.rootfs, &m.dst_path)),
                    read_only: m.mode == BindMountMode::ReadOnly,
                })
                .collect(),
            proc_dir: cpath(&self.rootfs.join("proc")),
            sys_dir: cpath(&self.rootfs.join("sys")),
            dev: {
                let mut dev = child::DevPlan::standard(&rootfs);
                // Privileged containers also get FUSE, as upstream's runtimes give them.
                if self.spec.privileged && Path::new("/dev/fuse").exists() {
                    dev.nodes.push((
                        cpath(Path::new("/dev/fuse")),
                        cpath(&self.rootfs.join("dev/fuse")),
                    ));
                }
                dev
            },
            masked: if self.spec.privileged {
                vec![]
            } else {
                MASKED_PATHS
                    .iter()
                    .filter_map(|p| {
                        // The host's /proc and /sys have the same entries (one kernel).
                        let meta = fs::metadata(p).ok()?;
                        Some((cpath(&under(&self.rootfs, p)), meta.is_dir()))
                    })
                    .collect()
            },
            cgroup_dir: cpath(&cgroup_dir),
            cgroup_mounts,
            read_only: if self.spec.privileged {
                vec![]
            } else {
                READ_ONLY_PATHS
                    .iter()
                    .filter(|p| Path::new(p).exists())
                    .map(|p| cpath(&under(&self.rootfs, p)))
                    .collect()
            },
            hostname: self.handle.bytes().take(63).collect(),
            cgroup_procs: self.cgroup_procs(),
            unshare_flags: flags,
            user_namespace: self.userns.is_some(),
        }
    }

    fn cgroup_procs(&self) -> Vec<CString> {
        self.cgroup
            .as_ref()
            .map(|c| c.procs_files().iter().map(|p| cpath(p)).collect())
            .unwrap_or_default()
    }

    /// Starts the container's init and learns its pid 1's host pid. The handoff ends
    /// once the init's mount tree is ready (see `child::enter_init`).
    fn start_init(&mut self) -> Result<(), GardenError> {
        let starting =
            |e: std::io::Error| GardenError::Other(format!("starting the container: {e}"));
        let (handoff, theirs) =
            stage::Handoff::new(&stage::Plan::Init(self.init_plan())).map_err(starting)?;
        let null: std::os::fd::OwnedFd = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(starting)?
            .into();
        let init = self
            .stages
            .launch([&null, &null, &null], &theirs)
            .map_err(starting)?;
        drop(theirs); // the stage holds the only copy: its closing ends the handoff
        if let Err(e) = handoff.finish() {
            init.kill();
            let _ = init.wait(true);
            return Err(starting(e));
        }
        crate::garden::leftovers::record(&self.dir, init.pid as u32);
        let children = format!("/proc/{0}/task/{0}/children", init.pid);
        *self.init.lock().unwrap_or_else(|p| p.into_inner()) = Some(init);
        // C forked pid 1 before the handoff ended; the kernel lists it at once.
        for _ in 0..500 {
            if let Some(pid) = fs::read_to_string(&children)
                .ok()
                .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()))
            {
                self.init_pid = pid;
                // The init made its user namespace before the handoff ended.
                if let Some(map) = self.userns {
                    map.write(pid).map_err(|e| {
                        GardenError::Other(format!("mapping the container's user ids: {e}"))
                    })?;
                }
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(GardenError::Other(
            "starting the container: its init did not appear".into(),
        ))
    }

    /// The container's eth0, once its init (holding the network namespace) runs.
    fn attach_network(&self) -> Result<(), GardenError> {
        match &*self.net.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((network, lease)) => network.attach(lease, self.init_pid),
            None => Ok(()),
        }
    }

    fn plan(&self, spec: &ProcessSpec, tty: bool) -> Result<ProcessPlan, GardenError> {
        let (uid, gid, groups) = resolve_user(&self.rootfs, &spec.user)?;
        self.chown_mounts(uid, gid)?;
        let workdir = if spec.dir.is_empty() {
            "/".to_string()
        } else {
            spec.dir.clone()
        };
        // The working directory is made from the host side (under its volume when it is in one).
        let p = Path::new(&workdir);
        let (root, rel) = match self
            .spec
            .bind_mounts
            .iter()
            .filter(|m| p.starts_with(&m.dst_path))
            .max_by_key(|m| m.dst_path.len())
        {
            Some(m) => (
                PathBuf::from(&m.src_path),
                p.strip_prefix(&m.dst_path)
                    .unwrap_or(Path::new(""))
                    .to_path_buf(),
            ),
            None => (
                self.rootfs.clone(),
                PathBuf::from(workdir.trim_start_matches('/')),
            ),
        };
        let existed = resolve_inside(&root, &rel).is_ok_and(|p| p.exists());
        let made = ensure_dir_inside(&root, &rel)
            .map_err(|e| GardenError::BadRequest(format!("working directory {workdir}: {e}")))?;
        // A working directory we made belongs to the process's user, as Garden makes it.
        if !existed {
            let host = |id| self.userns.map_or(id, |m| m.host_id(id));
            std::os::unix::fs::lchown(&made, Some(host(uid)), Some(host(gid)))
                .map_err(|e| GardenError::Other(format!("working directory {workdir}: {e}")))?;
        }
        let mut namespaces = Vec::new();
        let cgroup_ns = Path::new(&format!("/proc/{}/ns/cgroup", self.init_pid)).exists()
            && self.cgroup.is_some();
        let mut namespaces_of = vec!["ipc", "uts", "net", "pid"];
        if cgroup_ns {
            namespaces_of.push("cgroup");
        }
        // The user namespace last: once in it, the host's namespaces cannot be joined.
        namespaces_of.push("mnt");
        if self.userns.is_some() {
            namespaces_of.push("user");
        }
        for ns in namespaces_of {
            let path = format!("/proc/{}/ns/{ns}", self.init_pid);
            if let Err(e) = fs::metadata(&path) {
                return Err(GardenError::Other(format!(
                    "container {} is gone: {e}",
                    self.handle
                )));
            }
            namespaces.push(cpath(Path::new(&path)));
        }
        let last_cap: libc::c_int = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40);
        // Without a devices cgroup to refuse them (cgroup v2 has none without eBPF), making
        // device nodes is not kept either.
        let devices_enforced = self.cgroup.as_ref().is_some_and(|c| c.enforces_devices());
        let drop_caps = if self.spec.privileged {
            vec![]
        } else {
            (0..=last_cap)
                .filter(|c| !KEPT_CAPS.contains(c) || (*c == CAP_MKNOD && !devices_enforced))
                .collect()
        };
        Ok(ProcessPlan {
            namespaces,
            cgroup_procs: self.cgroup_procs(),
            workdir: CString::new(workdir)
                .map_err(|_| GardenError::bad_request("working directory with a NUL byte"))?,
            uid,
            gid,
            groups,
            drop_caps,
            rlimits: super::backend::rlimits(spec)?,
            tty,
            no_new_privs: !self.spec.privileged,
            seccomp: if self.spec.privileged {
                Vec::new()
            } else {
                seccomp::default_filters()
            },
        })
    }
}

/// `name`, `uid`, `name:group` or `uid:gid`, looked up in the rootfs' passwd and group files.
fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), GardenError> {
    if user.is_empty() || user == "root" || user == "0" {
        return Ok((0, 0, vec![0]));
    }
    let read = |name: &str| {
        resolve_inside(rootfs, Path::new("etc"))
            .ok()
            .and_then(|etc| fs::read_to_string(etc.join(name)).ok())
            .unwrap_or_default()
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read("passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || f[2] == u));
    let (uid, mut gid) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)),
        (None, Ok(n)) => (n, n),
        (None, Err(_)) => {
            return Err(GardenError::Other(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )));
        }
    };
    if let Some(g) = g {
        let groups = read("group");
        gid = match groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == g || f[2] == g))
        {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                GardenError::Other(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    Ok((uid, gid, vec![gid]))
}

impl LinuxSandbox {
    /// A non-root process gets the writable volumes (inputs, outputs, caches) chowned to
    /// it, as upstream does, so it can use what earlier steps made; a root process gets
    /// only the mount points back, leaving the files as the earlier step left them.
    fn chown_mounts(&self, uid: u32, gid: u32) -> Result<(), GardenError> {
        let mut done = self.chowned.lock().unwrap_or_else(|p| p.into_inner());
        if !done.insert((uid, gid)) {
            return Ok(());
        }
        for m in &self.spec.bind_mounts {
            if m.mode == BindMountMode::ReadWrite && Path::new(&m.src_path).is_dir() {
                let src = Path::new(&m.src_path);
                let done = match (uid, self.userns) {
                    // The mount point is root's (as without a user namespace); what host
                    // root wrote inside becomes container root's, the rest keeps its owner.
                    (0, Some(map)) => {
                        let root = Some(map.root_host_id);
                        std::os::unix::fs::lchown(src, root, root).and_then(|()| map.own_tree(src))
                    }
                    (0, None) => std::os::unix::fs::lchown(src, Some(uid), Some(gid)),
                    (_, Some(map)) => chown_tree(src, uid, map.host_id(gid)),
                    (_, None) => chown_tree(src, uid, gid),
                };
                done.map_err(|e| {
                    GardenError::Other(format!("chowning {} for uid {uid}: {e}", m.dst_path))
                })?;
            }
        }
        Ok(())
    }
}

/// Calls `f` on `dir` and everything under it, never following symlinks.
fn for_each_path(
    dir: &Path,
    f: &mut dyn FnMut(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    f(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            for_each_path(&entry.path(), f)?;
        } else {
            f(&entry.path())?;
        }
    }
    Ok(())
}

/// Chowns `dir` and everything under it, never following symlinks.
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    for_each_path(dir, &mut |p| {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))
    })
}

impl Sandbox for LinuxSandbox {
    fn root(&self) -> &Path {
        &self.rootfs
    }

    fn command(&self, spec: &ProcessSpec, env: &[String], tty: bool) -> Result<Spawn, GardenError> {
        let plan = stage::Plan::process(self.plan(spec, tty)?, spec, env)?;
        let (handoff, theirs) = stage::Handoff::new(&plan)
            .map_err(|e| GardenError::Other(format!("running {}: {e}", spec.path)))?;
        Ok(Spawn::Stage {
            stages: self.stages.clone(),
            handoff,
            theirs,
        })
    }

    fn destroy(&self) -> Result<(), GardenError> {
        if let Some(init) = self.init.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // Killing pid 1 ends every process inside; C follows.
            if self.init_pid > 0 {
                // SAFETY: kill takes integers.
                unsafe { libc::kill(self.init_pid, libc::SIGKILL) };
            }
            init.kill();
            let _ = init.wait(true);
        }
        if let Some((network, lease)) = self.net.lock().unwrap_or_else(|p| p.into_inner()).take() {
            network.release(&lease);
        }
        if let Some(cg) = &self.cgroup {
            cg.destroy()
                .map_err(|e| GardenError::Other(format!("removing the container's cgroup: {e}")))?;
        }
        unmount(&self.rootfs);
        remove_tree(&self.dir).map_err(|e| GardenError::Other(format!("removing container: {e}")))
    }

    fn metrics(&self) -> Metrics {
        let mut m = Metrics::default();
        if let Some(cg) = &self.cgroup {
            m.memory_stat.total_usage_toward_limit = cg.memory_usage();
            m.pid_stat.current = cg.pids_current();
        }
        m.pid_stat.max = self.spec.limits.pid_limits.max;
        m
    }

    fn oom_killed(&self) -> bool {
        self.cgroup
            .as_ref()
            .map(|c| c.oom_killed())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_through_the_rootfs_passwd_and_group_files() {
        let root = tempfile::tempdir().expect("tmp");
        fs::create_dir(root.path().join("etc")).expect("etc");
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nconcourse:x:1000:1001::/home:/bin/sh\n",
        )
        .expect("passwd");
        fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        assert_eq!(
            resolve_user(root.path(), "").expect("default"),
            (0, 0, vec![0])
        );
        assert_eq!(
            resolve_user(root.path(), "concourse").expect("name"),
            (1000, 1001, vec![1001])
        );
        assert_eq!(
            resolve_user(root.path(), "concourse:staff").expect("name:group"),
            (1000, 50, vec![50])
        );
        assert_eq!(
            resolve_user(root.path(), "2000:3000").expect("ids"),
            (2000, 3000, vec![3000])
        );
        let err = resolve_user(root.path(), "ghost").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
    }
}
