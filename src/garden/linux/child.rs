//! What runs between `fork` and `exec` to make a container and put processes in it.
//!
//! A container has an init: the spawned child C stays in the host's pid namespace (the
//! Garden holds it; killing it ends the container); after unsharing, C forks A, pid 1 of
//! the new pid namespace, which builds the mount tree, pivots into the rootfs and then only
//! reaps orphans. A process joins A's namespaces: its spawned child C' does `setns` into
//! them and forks B, which drops privileges and execs; C' forwards signals to B and exits
//! with B's status (128 + signal when it was killed, so an OOM kill reads 137).
//! It all runs in a stage (see `stage`): a fresh single-threaded process, so the plans,
//! built by the worker, travel to it as JSON.

use super::syscall::{LinuxSyscall, Syscall};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

#[derive(Serialize, Deserialize)]
pub struct BindPlan {
    pub src: CString,
    /// Target as a host path inside the rootfs (before pivot_root).
    pub dst: CString,
    pub read_only: bool,
}

/// What the container init needs, as C strings and integers.
#[derive(Serialize, Deserialize)]
pub struct InitPlan {
    pub rootfs: CString,
    pub binds: Vec<BindPlan>,
    pub proc_dir: CString,
    pub sys_dir: CString,
    pub dev: DevPlan,
    /// Kernel interfaces hidden from unprivileged containers, as runc's defaults: (path in
    /// the rootfs, is a directory). Files get `/dev/null` bound over them, directories an
    /// empty read-only tmpfs.
    pub masked: Vec<(CString, bool)>,
    /// Paths under /proc made read-only (bound onto themselves, remounted read-only).
    pub read_only: Vec<CString>,
    /// The container's own cgroups, mounted read-only under `cgroup_dir` (its
    /// /sys/fs/cgroup): (target, fstype, options). A target equal to `cgroup_dir` is the
    /// unified (v2) hierarchy; otherwise a tmpfs holds one directory per hierarchy.
    pub cgroup_dir: CString,
    pub cgroup_mounts: Vec<(CString, CString, CString)>,
    pub hostname: Vec<u8>,
    pub cgroup_procs: Vec<CString>,
    pub unshare_flags: libc::c_int,
    /// Unprivileged: pid 1 makes the user namespace once its mount tree is built (the
    /// Garden writes its id maps), so the mounts stay owned by the host.
    pub user_namespace: bool,
}

/// What a process joining a container needs.
#[derive(Serialize, Deserialize)]
pub struct ProcessPlan {
    /// The init's namespaces as `/proc/<pid>/ns/` paths (ipc, uts, net, pid, cgroup, mnt,
    /// then user: once in the user namespace the host's namespaces can no longer be joined).
    pub namespaces: Vec<CString>,
    pub cgroup_procs: Vec<CString>,
    pub workdir: CString,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
    pub drop_caps: Vec<libc::c_int>,
    pub rlimits: Vec<(u32, u64)>,
    pub tty: bool,
    /// `PR_SET_NO_NEW_PRIVS`: setuid binaries and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// Seccomp filters installed last (none for privileged containers).
    #[serde(with = "filters")]
    pub seccomp: Vec<Vec<libc::sock_filter>>,
}

/// Seccomp programs as plain tuples (libc's `sock_filter` is not serializable).
mod filters {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Insn = (u16, u8, u8, u32);

    pub fn serialize<S: Serializer>(f: &[Vec<libc::sock_filter>], s: S) -> Result<S::Ok, S::Error> {
        let plain: Vec<Vec<Insn>> = f
            .iter()
            .map(|p| p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect())
            .collect();
        plain.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Vec<libc::sock_filter>>, D::Error> {
        let plain = Vec::<Vec<Insn>>::deserialize(d)?;
        Ok(plain
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
                    .collect()
            })
            .collect())
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// A file system mounted inside the container's /dev.
#[derive(Serialize, Deserialize)]
pub struct DevMount {
    pub dir: CString,
    pub source: CString,
    pub fstype: CString,
    pub flags: libc::c_ulong,
    pub data: CString,
}

/// The /dev of a container: a tmpfs with the harmless host devices bound in.
#[derive(Serialize, Deserialize)]
pub struct DevPlan {
    pub dir: CString,
    /// (host device, node inside the rootfs' /dev)
    pub nodes: Vec<(CString, CString)>,
    /// (target, link) inside the rootfs' /dev
    pub links: Vec<(CString, CString)>,
    pub mounts: Vec<DevMount>,
}

impl DevPlan {
    pub fn standard(rootfs: &str) -> DevPlan {
        let dev = format!("{rootfs}/dev");
        let nodes = ["null", "zero", "full", "random", "urandom", "tty"]
            .iter()
            .map(|n| (c(&format!("/dev/{n}")), c(&format!("{dev}/{n}"))))
            .collect();
        let links = [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
            ("pts/ptmx", "ptmx"),
        ]
        .iter()
        .map(|(t, l)| (c(t), c(&format!("{dev}/{l}"))))
        .collect();
        let mounts = vec![
            DevMount {
                dir: c(&format!("{dev}/shm")),
                source: c("shm"),
                fstype: c("tmpfs"),
                flags: (libc::MS_NOSUID | libc::MS_NODEV) as libc::c_ulong,
                data: c("mode=1777"),
            },
            DevMount {
                dir: c(&format!("{dev}/pts")),
                source: c("devpts"),
                fstype: c("devpts"),
                flags: (libc::MS_NOSUID | libc::MS_NOEXEC) as libc::c_ulong,
                data: c("newinstance,ptmxmode=0666,mode=0620"),
            },
        ];
        DevPlan {
            dir: c(&dev),
            nodes,
            links,
            mounts,
        }
    }
}

/// Builds the container's mount tree and pivots into it (runs in the init, pid 1).
pub fn setup_mounts(plan: &InitPlan, sys: &dyn Syscall) -> io::Result<()> {
    let empty = c"";
    sys.mount(
        empty,
        c"/",
        empty,
        (libc::MS_REC | libc::MS_PRIVATE) as libc::c_ulong,
        empty,
    )?;
    sys.mount(
        &plan.rootfs,
        &plan.rootfs,
        empty,
        (libc::MS_BIND | libc::MS_REC) as libc::c_ulong,
        empty,
    )?;
    for b in &plan.binds {
        sys.mount(
            &b.src,
            &b.dst,
            empty,
            (libc::MS_BIND | libc::MS_REC) as libc::c_ulong,
            empty,
        )?;
        if b.read_only {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC;
            sys.mount(empty, &b.dst, empty, flags as libc::c_ulong, empty)?;
        }
    }
    sys.mount(
        c"proc",
        &plan.proc_dir,
        c"proc",
        (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong,
        empty,
    )?;
    sys.mount(
        c"tmpfs",
        &plan.dev.dir,
        c"tmpfs",
        (libc::MS_NOSUID | libc::MS_STRICTATIME) as libc::c_ulong,
        c"mode=755",
    )?;
    for (host, node) in &plan.dev.nodes {
        sys.create_file(node)?;
        sys.mount(host, node, empty, libc::MS_BIND as libc::c_ulong, empty)?;
    }
    for m in &plan.dev.mounts {
        sys.mkdir(&m.dir, 0o755)?;
        let _ = sys.mount(&m.source, &m.dir, &m.fstype, m.flags, &m.data); // not essential to run a process
    }
    for (target, link) in &plan.dev.links {
        sys.symlink(target, link)?;
    }
    let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let _ = sys.mount(
        c"sysfs",
        &plan.sys_dir,
        c"sysfs",
        ro as libc::c_ulong,
        empty,
    ); // refused in some setups; not essential
    mount_own_cgroups(plan, sys);
    mask_kernel_interfaces(plan, sys)?;
    sys.chdir(&plan.rootfs)?;
    sys.pivot_root(c".", c".")?;
    sys.umount(c".", libc::MNT_DETACH)?;
    sys.chdir(c"/")
}

/// Read-only views of the container's own cgroups (it has its own cgroup namespace), so
/// tools reading their limits work. Not essential: failures leave /sys/fs/cgroup empty.
fn mount_own_cgroups(plan: &InitPlan, sys: &dyn Syscall) {
    let empty = c"";
    let ro =
        (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
    let unified = plan
        .cgroup_mounts
        .iter()
        .any(|(t, _, _)| *t == plan.cgroup_dir);
    if !unified
        && (plan.cgroup_mounts.is_empty()
            || sys
                .mount(c"tmpfs", &plan.cgroup_dir, c"tmpfs", 0, c"mode=755")
                .is_err())
    {
        return;
    }
    for (target, fstype, data) in &plan.cgroup_mounts {
        if !unified {
            let _ = sys.mkdir(target, 0o755);
        }
        let _ = sys.mount(fstype, target, fstype, ro, data);
    }
    if !unified {
        let flags =
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let _ = sys.mount(
            empty,
            &plan.cgroup_dir,
            empty,
            flags as libc::c_ulong,
            c"mode=755",
        );
    }
}

/// Masks and write-protects what lets container root reach the kernel (core_pattern,
/// sysrq, kcore, keys, ...). A path this kernel lacks is skipped.
fn mask_kernel_interfaces(plan: &InitPlan, sys: &dyn Syscall) -> io::Result<()> {
    let empty = c"";
    let missing = |r: io::Result<()>| match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    };
    for (path, dir) in &plan.masked {
        missing(if *dir {
            sys.mount(
                c"tmpfs",
                path,
                c"tmpfs",
                libc::MS_RDONLY as libc::c_ulong,
                empty,
            )
        } else {
            sys.mount(
                c"/dev/null",
                path,
                empty,
                libc::MS_BIND as libc::c_ulong,
                empty,
            )
        })?;
    }
    for path in &plan.read_only {
        missing(sys.mount(
            path,
            path,
            empty,
            (libc::MS_BIND | libc::MS_REC) as libc::c_ulong,
            empty,
        ))?;
        let flags = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        missing(sys.mount(empty, path, empty, flags as libc::c_ulong, empty))?;
    }
    Ok(())
}

/// Drops what the process must not have and moves to its working directory (runs in B).
pub fn drop_privileges(plan: &ProcessPlan, sys: &dyn Syscall) -> io::Result<()> {
    for cap in &plan.drop_caps {
        sys.drop_bounding_cap(*cap)?;
    }
    sys.set_ids(plan.uid, plan.gid, &plan.groups)?;
    if plan.no_new_privs {
        sys.no_new_privs()?;
    }
    sys.chdir(&plan.workdir)?;
    for filter in &plan.seccomp {
        sys.seccomp(filter)?;
    }
    Ok(())
}

/// Where a forwarding handler sends signals (per process: each copy has its own).
static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let t = TARGET.load(Ordering::Relaxed);
    if t > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(t, sig) };
    }
}

const FORWARDED: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Forwards the signals a container user may send to `target`.
///
/// # Safety
/// Only in a stage: it replaces process-wide signal handlers.
unsafe fn install_forwarding(target: libc::pid_t) {
    TARGET.store(target, Ordering::Relaxed);
    for sig in FORWARDED {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Closes every descriptor from `fd` up.
///
/// # Safety
/// Only in a stage: descriptors Rust code still owns become dangling.
pub(super) unsafe fn close_from(fd: libc::c_uint) {
    if libc::syscall(libc::SYS_close_range, fd, libc::c_uint::MAX, 0) != 0 {
        for f in fd..1024 {
            libc::close(f as libc::c_int);
        }
    }
}

fn status_code(status: libc::c_int) -> libc::c_int {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Waits for `pid`; with `reap_all`, also reaps every other child meanwhile (pid 1's job).
///
/// # Safety
/// With `reap_all` it reaps children it does not own: only for a forked pid 1.
unsafe fn wait_for(pid: libc::pid_t, reap_all: bool) -> libc::c_int {
    loop {
        let mut status = 0;
        let r = libc::waitpid(if reap_all { -1 } else { pid }, &mut status, 0);
        if r == pid {
            return status_code(status);
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            return 255;
        }
    }
}

/// Writes `0` to a procfs or sysfs knob.
///
/// # Safety
/// `path` must name a file that is safe to write in the current mount namespace (the child
/// calls it on its own `/proc`).
unsafe fn write_zero(path: &CString) -> io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let rc = libc::write(fd, b"0".as_ptr().cast(), 1);
    libc::close(fd);
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new network namespace starts with `lo` down; hermetic processes still use localhost.
///
/// # Safety
/// Only in the container's own network namespace.
unsafe fn loopback_up() {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return;
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0 {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
    }
    libc::close(fd);
}

extern "C" fn wake(_sig: libc::c_int) {}

/// Pid 1: reap whatever is reparented to us, forever.
///
/// # Safety
/// Only as the container's pid 1 in a forked child: it blocks SIGCHLD and never returns.
unsafe fn init_loop() -> ! {
    let mut sa: libc::sigaction = std::mem::zeroed();
    sa.sa_sigaction = wake as extern "C" fn(libc::c_int) as usize;
    libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut());
    let mut block: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut block);
    libc::sigaddset(&mut block, libc::SIGCHLD);
    libc::sigprocmask(libc::SIG_BLOCK, &block, std::ptr::null_mut());
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    loop {
        let mut status = 0;
        while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
        libc::sigsuspend(&empty);
    }
}

/// A stage becoming a container's init. Never returns on success: C waits for A, A is
/// pid 1 until killed. The worker's handoff ends once both closed their copy of the
/// stage's socket, i.e. once the mount tree is ready.
///
/// # Safety
/// Only in a stage: it forks, and its process becomes the container's.
pub unsafe fn enter_init(plan: &InitPlan) -> io::Result<()> {
    libc::setpgid(0, 0);
    for procs in &plan.cgroup_procs {
        write_zero(procs)?;
    }
    if libc::unshare(plan.unshare_flags) != 0 {
        return Err(io::Error::last_os_error());
    }
    LinuxSyscall.sethostname(&plan.hostname)?;
    if plan.unshare_flags & libc::CLONE_NEWNET != 0 {
        loopback_up();
    }
    let a = libc::fork();
    if a < 0 {
        return Err(io::Error::last_os_error());
    }
    if a > 0 {
        // C: the container's handle on the host side.
        install_forwarding(a);
        close_from(3);
        let code = wait_for(a, false);
        libc::_exit(code);
    }
    libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0,
    );
    setup_mounts(plan, &LinuxSyscall)?;
    if plan.user_namespace && libc::unshare(libc::CLONE_NEWUSER) != 0 {
        return Err(io::Error::last_os_error());
    }
    close_from(3);
    init_loop()
}

/// A stage becoming a container's process: only B returns (to exec); C' ends in `_exit`.
///
/// # Safety
/// Only in a stage: it forks, and its process becomes the container's.
pub unsafe fn enter_process(plan: &ProcessPlan) -> io::Result<()> {
    libc::setpgid(0, 0);
    for procs in &plan.cgroup_procs {
        write_zero(procs)?;
    }
    // All opened first: once in the container's mount namespace its paths are not ours.
    let namespaces = plan
        .namespaces
        .iter()
        .map(|p| {
            std::fs::File::open(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p.as_bytes()),
            )
            .map(OwnedFd::from)
        })
        .collect::<io::Result<Vec<_>>>()?;
    for ns in &namespaces {
        if libc::setns(ns.as_raw_fd(), 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let b = libc::fork();
    if b < 0 {
        return Err(io::Error::last_os_error());
    }
    if b > 0 {
        install_forwarding(b);
        close_from(3);
        let code = wait_for(b, false);
        libc::_exit(code);
    }
    // B: the process itself, a member of the container's pid namespace.
    libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0,
    );
    if plan.tty {
        libc::setsid();
        libc::ioctl(0, libc::TIOCSCTTY, 0);
    }
    crate::garden::backend::apply_rlimits(&plan.rlimits)?;
    drop_privileges(plan, &LinuxSyscall)
}

#[cfg(test)]
mod tests {
    use super::super::syscall::RecordingSyscall;
    use super::*;

    fn init_plan() -> InitPlan {
        InitPlan {
            rootfs: c("/w/c/rootfs"),
            binds: vec![
                BindPlan {
                    src: c("/w/volumes/live/v/volume"),
                    dst: c("/w/c/rootfs/tmp/build/in"),
                    read_only: false,
                },
                BindPlan {
                    src: c("/certs"),
                    dst: c("/w/c/rootfs/etc/ssl/certs"),
                    read_only: true,
                },
            ],
            proc_dir: c("/w/c/rootfs/proc"),
            sys_dir: c("/w/c/rootfs/sys"),
            dev: DevPlan::standard("/w/c/rootfs"),
            masked: vec![
                (c("/w/c/rootfs/proc/kcore"), false),
                (c("/w/c/rootfs/proc/scsi"), true),
            ],
            read_only: vec![c("/w/c/rootfs/proc/sys")],
            cgroup_dir: c("/w/c/rootfs/sys/fs/cgroup"),
            cgroup_mounts: vec![(
                c("/w/c/rootfs/sys/fs/cgroup/memory"),
                c("cgroup"),
                c("memory"),
            )],
            hostname: b"handle".to_vec(),
            cgroup_procs: vec![],
            unshare_flags: 0,
            user_namespace: true,
        }
    }

    fn process_plan() -> ProcessPlan {
        ProcessPlan {
            namespaces: vec![],
            cgroup_procs: vec![],
            workdir: c("/tmp/build/in"),
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            drop_caps: vec![21],
            rlimits: vec![],
            tty: false,
            no_new_privs: true,
            seccomp: vec![vec![libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            }]],
        }
    }

    #[test]
    fn volumes_are_bound_at_their_paths_before_pivoting_into_the_rootfs() {
        let sys = RecordingSyscall::default();
        setup_mounts(&init_plan(), &sys).expect("recorded");
        let calls = sys.calls();
        let pos = |needle: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} in {calls:#?}"))
        };
        assert!(
            pos("mount /w/volumes/live/v/volume on /w/c/rootfs/tmp/build/in") < pos("pivot_root")
        );
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("mount  on /w/c/rootfs/etc/ssl/certs")
                    && c.contains("flags 0x5021")),
            "{calls:#?}"
        );
        assert!(pos("mount proc on /w/c/rootfs/proc type proc") < pos("chdir /w/c/rootfs"));
        assert!(
            pos("mount /dev/null on /w/c/rootfs/dev/null") > pos("mount tmpfs on /w/c/rootfs/dev")
        );
        assert_eq!(calls.last().map(String::as_str), Some("chdir /"));
        // The container's own cgroups, read-only, under its /sys/fs/cgroup.
        assert!(
            pos("mount cgroup on /w/c/rootfs/sys/fs/cgroup/memory type cgroup flags 0xf data memory")
                > pos("mount tmpfs on /w/c/rootfs/sys/fs/cgroup type tmpfs")
        );
        // Kernel interfaces are hidden after /proc is mounted, before pivoting.
        assert!(
            pos("mount /dev/null on /w/c/rootfs/proc/kcore")
                > pos("mount proc on /w/c/rootfs/proc type proc")
        );
        assert!(pos("mount tmpfs on /w/c/rootfs/proc/scsi type tmpfs") < pos("pivot_root"));
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("mount  on /w/c/rootfs/proc/sys")
                    && c.contains("flags 0x102f")),
            "{calls:#?}"
        );
    }

    #[test]
    fn privileges_drop_capabilities_then_ids_then_enter_the_working_directory_then_seccomp() {
        let sys = RecordingSyscall::default();
        drop_privileges(&process_plan(), &sys).expect("recorded");
        assert_eq!(
            sys.calls(),
            [
                "drop cap 21",
                "ids 1000:1000 groups [1000]",
                "no_new_privs",
                "chdir /tmp/build/in",
                "seccomp 1 instructions"
            ]
        );
    }
}
