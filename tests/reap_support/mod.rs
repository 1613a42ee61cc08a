//! A standalone `concourse worker` process for the restart tests, and what they look at on
//! the host: processes, mounts under the work dir, container cgroups. [`Leftovers`] puts
//! the host back even when a test fails halfway.

use crate::common;
use concourse::baggageclaim::client::BaggageclaimClient;
use concourse::garden::GardenClient;
use concourse::proto::baggageclaim::{Baggageclaim, Strategy, VolumeRequest};
use concourse::proto::garden::{
    BindMount, BindMountMode, ContainerSpec, Garden, ProcessIo, ProcessSpec,
};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
/// The property the engine labels a volume with: the container it is mounted in.
const CONTAINER_LABEL: &str = "concourse:container";

pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test}: CI runs as root");
    eprintln!("skipping {test}: needs root (overlay mounts)");
    false
}

pub fn busybox() -> bool {
    let there = Path::new("/bin/busybox").exists();
    if !there {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs busybox-static"
        );
        eprintln!("skipping: needs /bin/busybox");
    }
    there
}

/// A minimal image: static busybox as `sh` and `sleep`.
pub fn busybox_rootfs(at: &Path) {
    let bin = at.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    for applet in ["sh", "sleep", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
    }
    std::fs::create_dir_all(at.join("etc")).expect("etc");
    std::fs::write(at.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(at.join("etc/group"), "root:x:0:\n").expect("group");
}

/// Whether `pid` runs (a zombie waiting for its new parent to reap it does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s[s.rfind(')')? + 1..]
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Mount points at or under `dir`, deepest last.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut found: Vec<String> = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    found.sort_by_key(|m| m.len());
    found
}

/// The cgroup directories of container `handle` (v1 controllers and v2).
pub fn cgroups_of(handle: &str) -> Vec<PathBuf> {
    let suffix = format!("-{handle}");
    let mut groups = Vec::new();
    for c in ["memory", "cpu", "pids", "devices", ""] {
        let parent = Path::new("/sys/fs/cgroup").join(c).join("concourse-garden");
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(&suffix) {
                groups.push(entry.path());
            }
        }
    }
    groups
}

fn cgroup_pids(handle: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = cgroups_of(handle)
        .iter()
        .filter_map(|g| std::fs::read_to_string(g.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

/// Undoes whatever a test leaves (killed processes, mounts under the work dir, container
/// cgroups) when dropped; [`Leftovers::check_clean`] asserts there was nothing to undo.
pub struct Leftovers {
    work: PathBuf,
    pub pids: Vec<u32>,
    pub handles: Vec<String>,
}

impl Leftovers {
    pub fn new(work: &Path) -> Leftovers {
        Leftovers {
            work: work.to_path_buf(),
            pids: Vec::new(),
            handles: Vec::new(),
        }
    }

    pub fn check_clean(&self) {
        let live: Vec<u32> = self.pids.iter().copied().filter(|p| alive(*p)).collect();
        assert!(live.is_empty(), "processes left: {live:?}");
        assert_eq!(mounts_under(&self.work), Vec::<String>::new());
        for h in &self.handles {
            assert_eq!(cgroups_of(h), Vec::<PathBuf>::new());
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in &self.pids {
            if alive(*pid) {
                // SAFETY: kill takes integers; these are the test's own container processes.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
        }
        for m in mounts_under(&self.work).iter().rev() {
            if let Ok(c) = std::ffi::CString::new(m.as_str()) {
                // SAFETY: a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        for h in &self.handles {
            for g in cgroups_of(h) {
                for pid in std::fs::read_to_string(g.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                {
                    // SAFETY: kill takes integers.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                let deadline = Instant::now() + Duration::from_secs(5);
                while std::fs::remove_dir(&g).is_err() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// `concourse worker` without a TSA, on ephemeral ports; SIGKILLed when dropped.
pub struct Worker {
    child: Child,
    garden: GardenClient,
    bc: BaggageclaimClient,
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Worker {
    pub fn start(work: &Path, runtime: &str, extra: &[String]) -> Worker {
        let mut child = Command::new(common::bin())
            .args(["worker", "--runtime", runtime, "--work-dir"])
            .arg(work)
            .args(["--bind-port", "0", "--baggageclaim-bind-port", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start worker");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if std::env::var_os("TEST_SERVER_LOGS").is_some() {
                    eprintln!("[worker] {line}");
                }
                if line.contains("worker listening") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let Ok(line) = rx.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            panic!("the worker never listened; TEST_SERVER_LOGS=1 shows its log");
        };
        let field = |name: &str| {
            let at = line.find(&format!("{name}=")).expect("address in the log") + name.len() + 1;
            line[at..]
                .split_whitespace()
                .next()
                .expect("address")
                .to_string()
        };
        Worker {
            garden: GardenClient::new(format!("http://{}", field("garden"))),
            bc: BaggageclaimClient::new(format!("http://{}", field("baggageclaim"))),
            child,
        }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A volume `parent`, its copy-on-write `copy` mounted in container `handle` (labelled
    /// with it, as the engine does), and a process in it that started a child and waits
    /// for it. Returns the processes' host pids and the copy's handle.
    pub async fn container_with_process(
        &self,
        handle: &str,
        rootfs: &str,
        scratch: &Path,
    ) -> (Vec<u32>, String) {
        self.bc
            .create_volume(VolumeRequest::new("parent", Strategy::Empty))
            .await
            .expect("parent volume");
        let mut req = VolumeRequest::new(
            "copy",
            Strategy::Cow {
                volume: "parent".into(),
            },
        );
        req.properties.insert(CONTAINER_LABEL.into(), handle.into());
        let copy = self.bc.create_volume(req).await.expect("copy");
        self.garden
            .create(ContainerSpec {
                handle: handle.into(),
                rootfs: rootfs.into(),
                bind_mounts: vec![BindMount {
                    src_path: copy.path.clone(),
                    dst_path: "/data".into(),
                    mode: BindMountMode::ReadWrite,
                    origin: 0,
                }],
                ..Default::default()
            })
            .await
            .expect("container");
        // The process runtime runs on the host: the script writes host pids where the test
        // reads them. In a linux container they are namespaced: the cgroup lists them.
        let pidfile = scratch.join("pids");
        let script = if rootfs.is_empty() {
            format!(
                "sleep 1000 & echo $$ $! > {0}.tmp; mv {0}.tmp {0}; wait",
                pidfile.display()
            )
        } else {
            "sleep 1000 & wait".to_string()
        };
        let process = self
            .garden
            .run(
                handle,
                ProcessSpec {
                    path: "sh".into(),
                    args: vec!["-c".into(), script],
                    ..Default::default()
                },
                ProcessIo {
                    stdin: None,
                    stdout: None,
                    stderr: None,
                    ..Default::default()
                },
            )
            .await
            .expect("run");
        drop(process);
        let deadline = Instant::now() + DEADLINE;
        let pids = loop {
            let pids: Vec<u32> = if rootfs.is_empty() {
                std::fs::read_to_string(&pidfile)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            } else {
                cgroup_pids(handle)
            };
            // The shell and its sleeping child (plus the init of a linux container).
            if pids.len() >= 2 {
                break pids;
            }
            assert!(
                Instant::now() < deadline,
                "the container's processes never ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        (pids, copy.handle)
    }

    pub async fn volume_handles(&self) -> Vec<String> {
        let mut handles: Vec<String> = self
            .bc
            .list_volumes(Default::default())
            .await
            .expect("volumes")
            .into_iter()
            .map(|v| v.handle)
            .collect();
        handles.sort();
        handles
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}
