//! The seccomp filter of unprivileged container processes: what Docker's default profile
//! refuses to a container without CAP_SYS_ADMIN (kernel modules, keyrings, mounts, new
//! namespaces, clock and swap changes, kexec, bpf, perf, io_uring, …) answers EPERM;
//! everything else is allowed. `clone3` answers ENOSYS, as Docker's does, so libc falls
//! back to `clone`, whose namespace flags can be inspected (clone3 passes them in memory).
//!
//! Classic BPF, built before fork (the child may not allocate) and installed last, after
//! `no_new_privs`, just before exec. With user namespaces, container root has
//! CAP_SYS_ADMIN over namespaces it makes itself; this filter is what keeps it from making
//! them (and mounting in them) at all.

use libc::sock_filter;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16; // little-endian: the low half of args[0]

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// x32 system calls carry this bit in their number on x86_64; they would slip past a
/// filter written for x86_64 numbers, so they are refused outright.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// clone flags that make new namespaces.
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

const DENIED_COMMON: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_fanotify_init,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_get_mempolicy,
    libc::SYS_init_module,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_io_uring_setup,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mbind,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_set_mempolicy,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS_umount2,
    libc::SYS_unshare,
    libc::SYS_userfaultfd,
    libc::SYS_vhangup,
];

#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = &[
    libc::SYS_ioperm,
    libc::SYS_iopl,
    libc::SYS_nfsservctl,
    libc::SYS__sysctl,
    libc::SYS_sysfs,
    libc::SYS_uselib,
    libc::SYS_ustat,
];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ARCH: &[libc::c_long] = &[];

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The default filter, as one program.
pub fn default_filter() -> Vec<sock_filter> {
    let eperm = RET_ERRNO | libc::EPERM as u32;
    let mut p = vec![
        stmt(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_W_ABS, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([jump(JGE_K, X32_SYSCALL_BIT, 0, 1), stmt(RET_K, eperm)]);
    for nr in DENIED_COMMON.iter().chain(DENIED_ARCH) {
        p.extend([jump(JEQ_K, *nr as u32, 0, 1), stmt(RET_K, eperm)]);
    }
    p.extend([
        jump(JEQ_K, libc::SYS_clone3 as u32, 0, 1),
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
        jump(JEQ_K, libc::SYS_clone as u32, 0, 4),
        stmt(LD_W_ABS, ARG0_LOW),
        jump(JSET_K, NAMESPACE_FLAGS, 0, 1),
        stmt(RET_K, eperm),
        stmt(RET_K, RET_ALLOW),
        stmt(RET_K, RET_ALLOW),
    ]);
    p
}

/// The filters a process installs (one program today; a list so privileged processes
/// install none).
pub fn default_filters() -> Vec<Vec<sock_filter>> {
    vec![default_filter()]
}

/// Installs `filter` on the calling thread. Needs `no_new_privs` (or CAP_SYS_ADMIN).
/// Allocation-free: safe between fork and exec.
pub fn install(filter: &[sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    // SAFETY: `prog` points at `filter`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the filter as the kernel would, on one system call.
    fn eval(p: &[sock_filter], nr: u32, arch: u32, arg0: u32) -> u32 {
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG0_LOW => arg0,
                        k => panic!("load of offset {k}"),
                    }
                }
                RET_K => return i.k,
                code => {
                    let taken = match code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        JSET_K => acc & i.k != 0,
                        _ => panic!("opcode {code:#x}"),
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    #[test]
    fn dangerous_calls_are_refused_and_the_rest_allowed() {
        let p = default_filter();
        assert!(p.len() < 4096, "BPF programs are at most 4096 instructions");
        let eperm = RET_ERRNO | libc::EPERM as u32;
        for nr in [
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_keyctl,
            libc::SYS_bpf,
            libc::SYS_init_module,
            libc::SYS_kexec_load,
        ] {
            assert_eq!(eval(&p, nr as u32, AUDIT_ARCH, 0), eperm, "syscall {nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_ptrace,
            libc::SYS_chroot,
        ] {
            assert_eq!(
                eval(&p, nr as u32, AUDIT_ARCH, 0),
                RET_ALLOW,
                "syscall {nr}"
            );
        }
        assert_eq!(
            eval(&p, libc::SYS_clone3 as u32, AUDIT_ARCH, 0),
            RET_ERRNO | libc::ENOSYS as u32
        );
        let fork_flags = (libc::CLONE_CHILD_SETTID | libc::SIGCHLD) as u32;
        let thread_flags = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u32;
        let clone = libc::SYS_clone as u32;
        assert_eq!(eval(&p, clone, AUDIT_ARCH, fork_flags), RET_ALLOW);
        assert_eq!(eval(&p, clone, AUDIT_ARCH, thread_flags), RET_ALLOW);
        assert_eq!(
            eval(
                &p,
                clone,
                AUDIT_ARCH,
                fork_flags | libc::CLONE_NEWUSER as u32
            ),
            eperm
        );
        assert_eq!(eval(&p, clone, AUDIT_ARCH, libc::CLONE_NEWNS as u32), eperm);
        assert_eq!(
            eval(&p, libc::SYS_read as u32, 0x4000_0003, 0),
            RET_KILL_PROCESS,
            "another architecture's calls (i386) are not let through"
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            eval(&p, X32_SYSCALL_BIT | libc::SYS_read as u32, AUDIT_ARCH, 0),
            eperm
        );
    }
}
