//! User namespaces of unprivileged containers, mapped as upstream Garden maps them: the
//! container's root is the host's highest usable id (an unprivileged nobody on the host),
//! every other id is itself. So container root has no power over host files, devices or
//! kernel knobs, and files a non-root user writes keep the uid other steps expect.
//!
//! The namespace is made by the container's init after it built its mount tree (so the
//! mounts and the other namespaces stay owned by the host, out of container root's reach);
//! the Garden writes the maps; processes join it last, after the other namespaces.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The host id container root (uid and gid 0) maps to: Garden's `maxID`.
pub const ROOT_HOST_ID: u32 = 4_294_967_294;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub root_host_id: u32,
}

pub const MAPPING: Mapping = Mapping {
    root_host_id: ROOT_HOST_ID,
};

/// Whether this kernel lets us make user namespaces.
pub fn supported() -> bool {
    Path::new("/proc/self/ns/user").exists()
        && fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

impl Mapping {
    /// `/proc/PID/uid_map` (and gid_map) text: 0 → root_host_id, 1.. → themselves.
    pub fn map_text(&self) -> String {
        format!("0 {} 1\n1 1 {}\n", self.root_host_id, self.root_host_id - 1)
    }

    /// The host id of a container id.
    pub fn host_id(&self, id: u32) -> u32 {
        if id == 0 {
            self.root_host_id
        } else {
            id
        }
    }

    /// Writes the maps of the user namespace `pid` is in.
    pub fn write(&self, pid: i32) -> std::io::Result<()> {
        let text = self.map_text();
        fs::write(format!("/proc/{pid}/uid_map"), &text)?;
        fs::write(format!("/proc/{pid}/gid_map"), &text)
    }

    /// Hands what host root owns under `dir` to container root (ids other than 0 are the
    /// same on both sides), never following symlinks: what a privileged step or the worker
    /// wrote becomes writable by the unprivileged container's root, as upstream's
    /// baggageclaim namespaces a volume on its way to an unprivileged container.
    pub fn own_tree(&self, dir: &Path) -> std::io::Result<()> {
        super::for_each_path(dir, &mut |p| self.own(p))
    }

    /// Gives `path` to container root where host root owns it (uid and gid apart).
    pub fn own(&self, path: &Path) -> std::io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        let uid = (meta.uid() == 0).then_some(self.root_host_id);
        let gid = (meta.gid() == 0).then_some(self.root_host_id);
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(path, uid, gid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_maps_to_the_highest_id_and_the_rest_to_themselves() {
        assert_eq!(MAPPING.map_text(), "0 4294967294 1\n1 1 4294967293\n");
        assert_eq!(MAPPING.host_id(0), ROOT_HOST_ID);
        assert_eq!(MAPPING.host_id(1000), 1000);
    }

    #[test]
    fn owning_a_tree_moves_only_what_host_root_owns() {
        if !crate::worker_fs::archive::is_root() {
            return; // chown needs root
        }
        let dir = tempfile::tempdir().expect("tmp");
        fs::create_dir(dir.path().join("sub")).expect("sub");
        fs::write(dir.path().join("sub/root-file"), b"x").expect("file");
        fs::write(dir.path().join("user-file"), b"x").expect("file");
        std::os::unix::fs::lchown(dir.path().join("user-file"), Some(1000), Some(0))
            .expect("chown");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).expect("link");
        MAPPING.own_tree(dir.path()).expect("own");
        let ids = |p: &str| {
            let m = fs::symlink_metadata(dir.path().join(p)).expect("meta");
            (m.uid(), m.gid())
        };
        assert_eq!(ids("sub/root-file"), (ROOT_HOST_ID, ROOT_HOST_ID));
        assert_eq!(ids("user-file"), (1000, ROOT_HOST_ID));
        assert_eq!(ids("link"), (ROOT_HOST_ID, ROOT_HOST_ID));
        let target = fs::metadata("/etc/passwd").expect("passwd");
        assert_eq!(target.uid(), 0, "symlinks are not followed");
    }
}
