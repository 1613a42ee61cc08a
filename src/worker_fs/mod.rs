//! The worker's file-system code that both of its servers use: Garden (container roots,
//! stream in/out of a container) and Baggageclaim (volumes). Neither imports the other.

pub mod archive;

use std::path::Path;
use std::{fs, io};

/// Removes a tree, treating "already gone" as success.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Asks the file system to place each new subdirectory of `dir` in a block group of its
/// own (ext4's "top of directory hierarchy" flag, `chattr +T`), as it does for the root's.
/// Containers and volumes are made and deleted by the thousand in one directory; left
/// together, each new inode's search walks past every one freed in the last minutes, which
/// ext4 without a journal will not reuse yet (a 2,000-build burst spent 40 % of its CPU in
/// that search; BENCHMARKS.md). Placement only: file systems without the flag are left as
/// they are, and `Ok(false)` says so.
pub fn spread_subdirectories(dir: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
        let f = fs::File::open(dir)?;
        let mut flags: libc::c_int = 0;
        // SAFETY: both calls read or write one int through a pointer to a live local.
        unsafe {
            if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
                return Ok(false);
            }
            if flags & FS_TOPDIR_FL != 0 {
                return Ok(true);
            }
            flags |= FS_TOPDIR_FL;
            if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) != 0 {
                return Ok(false);
            }
            let mut read: libc::c_int = 0;
            let set = libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut read) == 0
                && read & FS_TOPDIR_FL != 0;
            Ok(set)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        fs::metadata(dir).map(|_| false)
    }
}

/// A random handle shaped like a UUID (v4).
pub fn new_handle() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On ext2/3/4 (`/tmp` on the machines here) the flag must stick; elsewhere the call
    /// must leave the directory alone and say so.
    #[test]
    fn spread_directories_carry_the_top_directory_flag_on_ext4() {
        let dir = std::env::temp_dir().join(format!("spread-{}", new_handle()));
        fs::create_dir(&dir).unwrap();
        let first = spread_subdirectories(&dir);
        let again = spread_subdirectories(&dir);
        let ext = statfs_magic(&dir) == Some(0xEF53);
        let _ = fs::remove_dir(&dir);
        assert_eq!(
            first.as_ref().ok(),
            again.as_ref().ok(),
            "{first:?} then {again:?}"
        );
        if ext {
            assert!(first.unwrap(), "ext4 accepts the top directory flag");
        }
        assert!(
            spread_subdirectories(&dir).is_err(),
            "a missing directory is an error"
        );
    }

    fn statfs_magic(dir: &Path) -> Option<i64> {
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C path and a pointer to a zeroed struct the kernel fills.
        (unsafe { libc::statfs(path.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
    }
}
