//! The linux backend: namespaces, overlayfs rootfs, pivot_root, cgroups, capabilities.

use std::path::Path;

/// Whether this host can run the linux backend (root, namespaces, overlayfs).
pub fn supported() -> bool {
    false
}

/// Undoes mounts left in a container directory by an earlier run.
pub fn cleanup_leftover(_dir: &Path) {}
