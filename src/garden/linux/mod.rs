//! The linux backend: namespaces, overlayfs rootfs, pivot_root, cgroups, capabilities.

use std::path::Path;

/// Whether this host can run the linux backend (root, namespaces, overlayfs).
pub fn supported() -> bool {
    false
}

/// Undoes mounts left in a container directory by an earlier run.
pub fn cleanup_leftover(_dir: &Path) {}

/// The linux backend (not available on this host yet).
pub struct LinuxBackend;

impl LinuxBackend {
    pub fn new(_work_dir: &Path) -> std::io::Result<LinuxBackend> {
        Err(std::io::Error::other("the linux runtime is not available; use --runtime process"))
    }
}

impl super::backend::Backend for LinuxBackend {
    fn kind(&self) -> super::backend::BackendKind {
        super::backend::BackendKind::Linux
    }
    fn create(
        &self,
        _handle: &str,
        _spec: &crate::proto::garden::ContainerSpec,
        _dir: &Path,
    ) -> Result<Box<dyn super::backend::Sandbox>, crate::proto::garden::GardenError> {
        Err(crate::proto::garden::GardenError::other("linux runtime unavailable"))
    }
}
