//! Per-container cgroups (v1 or v2) for memory, cpu and pids limits, and OOM detection.

use crate::proto::garden::Limits;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
const GROUP: &str = "concourse-garden";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// v1 when the memory controller is mounted on its own (also in hybrid setups), else v2.
pub fn detect() -> Option<Version> {
    if Path::new(ROOT)
        .join("memory/memory.limit_in_bytes")
        .exists()
    {
        Some(Version::V1)
    } else if Path::new(ROOT).join("cgroup.controllers").exists() {
        Some(Version::V2)
    } else {
        None
    }
}

pub struct Cgroup {
    version: Version,
    /// v1: one directory per controller (memory, cpu, pids); v2: one.
    dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value} to {}: {e}", path.display()),
        )
    })
}

/// Mount options of a cgroup v1 hierarchy that are not its controllers.
const GENERIC_MOUNT_OPTIONS: [&str; 8] = [
    "rw",
    "ro",
    "relatime",
    "noatime",
    "nosuid",
    "nodev",
    "noexec",
    "clone_children",
];

/// null, zero, full, random, urandom, tty, console, ptmx and the pty slaves (devpts).
const ALLOWED_DEVICES: [&str; 9] = [
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The host's v1 hierarchies: mount point -> its controllers. Read once: the mount table
/// holds every container's and volume's mounts, and reading it for each container cost
/// more than the rest of a container's cgroup setup; hierarchies do not move while a
/// worker runs.
fn v1_hierarchies() -> &'static std::collections::HashMap<PathBuf, String> {
    static HIERARCHIES: std::sync::OnceLock<std::collections::HashMap<PathBuf, String>> =
        std::sync::OnceLock::new();
    HIERARCHIES.get_or_init(|| {
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 3 && f[2] == "cgroup").then(|| {
                    let controllers: Vec<&str> = f[3]
                        .split(',')
                        .filter(|o| !GENERIC_MOUNT_OPTIONS.contains(o))
                        .collect();
                    (PathBuf::from(f[1]), controllers.join(","))
                })
            })
            .collect()
    })
}

impl Cgroup {
    pub fn create(
        version: Version,
        handle: &str,
        limits: &Limits,
        privileged: bool,
    ) -> io::Result<Cgroup> {
        let dirs: Vec<PathBuf> = match version {
            Version::V1 => ["memory", "cpu", "pids", "devices"]
                .iter()
                .map(|c| Path::new(ROOT).join(c).join(GROUP).join(handle))
                .filter(|d| {
                    d.parent()
                        .and_then(|p| p.parent())
                        .map(|p| p.exists())
                        .unwrap_or(false)
                })
                .collect(),
            Version::V2 => {
                let parent = Path::new(ROOT).join(GROUP);
                fs::create_dir_all(&parent)?;
                for c in ["+memory", "+cpu", "+pids"] {
                    let _ = write(&Path::new(ROOT).join("cgroup.subtree_control"), c);
                    let _ = write(&parent.join("cgroup.subtree_control"), c);
                }
                vec![parent.join(handle)]
            }
        };
        for d in &dirs {
            fs::create_dir_all(d)?;
        }
        let cg = Cgroup { version, dirs };
        cg.apply(limits)?;
        if !privileged {
            cg.restrict_devices()?;
        }
        Ok(cg)
    }

    /// What to mount inside the container at /sys/fs/cgroup so it sees its own groups (it
    /// has its own cgroup namespace): (directory under /sys/fs/cgroup, fstype, options).
    /// v1: one hierarchy per controller it joined, with that hierarchy's controllers; v2:
    /// the unified hierarchy at the top.
    pub fn container_mounts(&self) -> Vec<(String, &'static str, String)> {
        match self.version {
            Version::V2 => vec![(String::new(), "cgroup2", String::new())],
            Version::V1 => self
                .dirs
                .iter()
                .filter_map(|d| {
                    let rel = d.strip_prefix(ROOT).ok()?;
                    let name = rel.components().next()?.as_os_str().to_str()?.to_string();
                    let host = Path::new(ROOT).join(&name).canonicalize().ok()?;
                    let controllers = v1_hierarchies().get(&host)?.clone();
                    Some((name, "cgroup", controllers))
                })
                .collect(),
        }
    }

    /// Whether the devices controller refuses devices outside [`ALLOWED_DEVICES`].
    pub fn enforces_devices(&self) -> bool {
        self.version == Version::V1 && self.file("devices", "devices.deny").is_some()
    }

    /// Unprivileged containers may open and make only the devices runc allows by default.
    fn restrict_devices(&self) -> io::Result<()> {
        let (Some(deny), Some(allow)) = (
            self.file("devices", "devices.deny"),
            self.file("devices", "devices.allow"),
        ) else {
            return Ok(());
        };
        write(&deny, "a")?;
        for rule in ALLOWED_DEVICES {
            write(&allow, rule)?;
        }
        Ok(())
    }

    fn file(&self, controller: &str, name: &str) -> Option<PathBuf> {
        match self.version {
            Version::V1 => self
                .dirs
                .iter()
                .find(|d| d.components().any(|c| c.as_os_str() == controller))
                .map(|d| d.join(name)),
            Version::V2 => self.dirs.first().map(|d| d.join(name)),
        }
    }

    fn apply(&self, limits: &Limits) -> io::Result<()> {
        let mem = limits.memory_limits.limit_in_bytes;
        let shares = limits
            .cpu_limits
            .limit_in_shares
            .max(limits.cpu_limits.weight);
        let pids = limits.pid_limits.max;
        match self.version {
            Version::V1 => {
                if mem > 0 {
                    if let Some(f) = self.file("memory", "memory.limit_in_bytes") {
                        write(&f, &mem.to_string())?;
                    }
                    // Without swap accounting this file is absent; with it, swap must not dodge the limit.
                    if let Some(f) = self
                        .file("memory", "memory.memsw.limit_in_bytes")
                        .filter(|f| f.exists())
                    {
                        write(&f, &mem.to_string())?;
                    }
                }
                if shares > 0 {
                    if let Some(f) = self.file("cpu", "cpu.shares") {
                        write(&f, &shares.max(2).to_string())?;
                    }
                }
                if pids > 0 {
                    if let Some(f) = self.file("pids", "pids.max") {
                        write(&f, &pids.to_string())?;
                    }
                }
            }
            Version::V2 => {
                if mem > 0 {
                    if let Some(f) = self.file("memory", "memory.max") {
                        write(&f, &mem.to_string())?;
                    }
                    if let Some(f) = self
                        .file("memory", "memory.swap.max")
                        .filter(|f| f.exists())
                    {
                        let _ = write(&f, "0");
                    }
                }
                if shares > 0 {
                    // cpu.shares [2, 262144] onto cpu.weight [1, 10000], as runc converts.
                    let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                    if let Some(f) = self.file("cpu", "cpu.weight") {
                        write(&f, &weight.to_string())?;
                    }
                }
                if pids > 0 {
                    if let Some(f) = self.file("pids", "pids.max") {
                        write(&f, &pids.to_string())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes itself into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    pub fn oom_killed(&self) -> bool {
        let (file, key) = match self.version {
            Version::V1 => (self.file("memory", "memory.oom_control"), "oom_kill "),
            Version::V2 => (self.file("memory", "memory.events"), "oom_kill "),
        };
        file.and_then(|f| fs::read_to_string(f).ok())
            .map(|text| {
                text.lines().any(|l| {
                    l.strip_prefix(key)
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                        > 0
                })
            })
            .unwrap_or(false)
    }

    pub fn memory_usage(&self) -> u64 {
        let f = match self.version {
            Version::V1 => self.file("memory", "memory.usage_in_bytes"),
            Version::V2 => self.file("memory", "memory.current"),
        };
        f.and_then(|f| fs::read_to_string(f).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn pids_current(&self) -> u64 {
        self.file("pids", "pids.current")
            .and_then(|f| fs::read_to_string(f).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Kills what is left inside and removes the directories.
    pub fn destroy(&self) -> io::Result<()> {
        for d in &self.dirs {
            for attempt in 0..2000 {
                if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
                    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill takes integers.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if attempt == 1999 => return Err(e),
                    // Killed processes take a moment to leave the group (blocking thread).
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
        }
        Ok(())
    }

    /// Removes a leftover group of an earlier run.
    pub fn remove_leftover(handle: &str) {
        for c in ["memory", "cpu", "pids", "devices", ""] {
            let d = Path::new(ROOT).join(c).join(GROUP).join(handle);
            if d.exists() {
                let cg = Cgroup {
                    version: if c.is_empty() {
                        Version::V2
                    } else {
                        Version::V1
                    },
                    dirs: vec![d],
                };
                let _ = cg.destroy();
            }
        }
    }
}
