//! Every privileged call the linux backend makes, behind one trait, so the container
//! set-up sequence can be checked without root (see `RecordingSyscall`).
//!
//! The real implementation runs between `fork` and `exec`: no allocation, no locks, only
//! raw system calls on pre-built C strings.

use std::ffi::CStr;
use std::io;

pub trait Syscall: Sync {
    fn mount(
        &self,
        source: &CStr,
        target: &CStr,
        fstype: &CStr,
        flags: libc::c_ulong,
        data: &CStr,
    ) -> io::Result<()>;
    fn umount(&self, target: &CStr, flags: libc::c_int) -> io::Result<()>;
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()>;
    fn chdir(&self, path: &CStr) -> io::Result<()>;
    fn mkdir(&self, path: &CStr, mode: libc::mode_t) -> io::Result<()>;
    fn create_file(&self, path: &CStr) -> io::Result<()>;
    fn symlink(&self, target: &CStr, link: &CStr) -> io::Result<()>;
    fn sethostname(&self, name: &[u8]) -> io::Result<()>;
    fn drop_bounding_cap(&self, cap: libc::c_int) -> io::Result<()>;
    fn set_ids(&self, uid: libc::uid_t, gid: libc::gid_t, groups: &[libc::gid_t])
        -> io::Result<()>;
    fn no_new_privs(&self) -> io::Result<()>;
    /// Installs a seccomp filter on the calling thread (after `no_new_privs`).
    fn seccomp(&self, filter: &[libc::sock_filter]) -> io::Result<()>;
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The real thing.
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: &CStr,
        target: &CStr,
        fstype: &CStr,
        flags: libc::c_ulong,
        data: &CStr,
    ) -> io::Result<()> {
        let ptr = |c: &CStr| {
            if c.is_empty() {
                std::ptr::null()
            } else {
                c.as_ptr()
            }
        };
        // SAFETY: every pointer is a NUL-terminated string (or null) valid for the call.
        check(unsafe {
            libc::mount(
                ptr(source),
                target.as_ptr(),
                ptr(fstype),
                flags,
                ptr(data).cast(),
            )
        })
    }
    fn umount(&self, target: &CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: `target` is NUL-terminated.
        check(unsafe { libc::umount2(target.as_ptr(), flags) })
    }
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()> {
        // SAFETY: pivot_root takes two NUL-terminated paths.
        check(
            unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) }
                as libc::c_int,
        )
    }
    fn chdir(&self, path: &CStr) -> io::Result<()> {
        // SAFETY: `path` is NUL-terminated.
        check(unsafe { libc::chdir(path.as_ptr()) })
    }
    fn mkdir(&self, path: &CStr, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: `path` is NUL-terminated.
        match check(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }
    fn create_file(&self, path: &CStr) -> io::Result<()> {
        // SAFETY: `path` is NUL-terminated; the fd is closed at once.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd)?;
        // SAFETY: `fd` was just opened by us.
        unsafe { libc::close(fd) };
        Ok(())
    }
    fn symlink(&self, target: &CStr, link: &CStr) -> io::Result<()> {
        // SAFETY: both are NUL-terminated.
        match check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }
    fn sethostname(&self, name: &[u8]) -> io::Result<()> {
        // SAFETY: pointer and length describe `name`.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
    }
    fn drop_bounding_cap(&self, cap: libc::c_int) -> io::Result<()> {
        // SAFETY: prctl with integer arguments.
        match check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()), // a cap this kernel does not know
            other => other,
        }
    }
    fn set_ids(
        &self,
        uid: libc::uid_t,
        gid: libc::gid_t,
        groups: &[libc::gid_t],
    ) -> io::Result<()> {
        // SAFETY: `groups` is a valid slice for the call; the id calls take integers.
        unsafe {
            check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))
        }
    }

    fn no_new_privs(&self) -> io::Result<()> {
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
    }

    fn seccomp(&self, filter: &[libc::sock_filter]) -> io::Result<()> {
        super::seccomp::install(filter)
    }
}

/// A double that records each call as a line of text (tests only; it allocates).
#[cfg(test)]
#[derive(Default)]
pub struct RecordingSyscall {
    pub calls: std::sync::Mutex<Vec<String>>,
}

#[cfg(test)]
impl RecordingSyscall {
    fn push(&self, s: String) -> io::Result<()> {
        self.calls.lock().expect("not poisoned").push(s);
        Ok(())
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

#[cfg(test)]
impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: &CStr,
        target: &CStr,
        fstype: &CStr,
        flags: libc::c_ulong,
        data: &CStr,
    ) -> io::Result<()> {
        self.push(format!(
            "mount {} on {} type {} flags {:#x} data {}",
            source.to_string_lossy(),
            target.to_string_lossy(),
            fstype.to_string_lossy(),
            flags,
            data.to_string_lossy()
        ))
    }
    fn umount(&self, target: &CStr, _flags: libc::c_int) -> io::Result<()> {
        self.push(format!("umount {}", target.to_string_lossy()))
    }
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()> {
        self.push(format!(
            "pivot_root {} {}",
            new_root.to_string_lossy(),
            put_old.to_string_lossy()
        ))
    }
    fn chdir(&self, path: &CStr) -> io::Result<()> {
        self.push(format!("chdir {}", path.to_string_lossy()))
    }
    fn mkdir(&self, path: &CStr, _mode: libc::mode_t) -> io::Result<()> {
        self.push(format!("mkdir {}", path.to_string_lossy()))
    }
    fn create_file(&self, path: &CStr) -> io::Result<()> {
        self.push(format!("create {}", path.to_string_lossy()))
    }
    fn symlink(&self, target: &CStr, link: &CStr) -> io::Result<()> {
        self.push(format!(
            "symlink {} -> {}",
            link.to_string_lossy(),
            target.to_string_lossy()
        ))
    }
    fn sethostname(&self, name: &[u8]) -> io::Result<()> {
        self.push(format!("hostname {}", String::from_utf8_lossy(name)))
    }
    fn drop_bounding_cap(&self, cap: libc::c_int) -> io::Result<()> {
        self.push(format!("drop cap {cap}"))
    }
    fn set_ids(
        &self,
        uid: libc::uid_t,
        gid: libc::gid_t,
        groups: &[libc::gid_t],
    ) -> io::Result<()> {
        self.push(format!("ids {uid}:{gid} groups {groups:?}"))
    }
    fn no_new_privs(&self) -> io::Result<()> {
        self.push("no_new_privs".into())
    }
    fn seccomp(&self, filter: &[libc::sock_filter]) -> io::Result<()> {
        self.push(format!("seccomp {} instructions", filter.len()))
    }
}
