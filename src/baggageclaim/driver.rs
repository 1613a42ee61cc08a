//! Drivers: how a volume's data directory is made, and what copy-on-write means.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which driver a Baggageclaim uses (`--baggageclaim-driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// Plain directories; a COW child is a full copy of its parent.
    Naive,
    /// COW children are overlayfs mounts over their parent's layers.
    Overlay,
}

impl DriverKind {
    /// Overlay where it works (root, kernel support, a mount succeeds), naive elsewhere.
    pub fn detect(overlays_dir: &Path) -> DriverKind {
        if super::overlay::overlay_works(overlays_dir) {
            DriverKind::Overlay
        } else {
            DriverKind::Naive
        }
    }
}

impl std::str::FromStr for DriverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "naive" => Ok(DriverKind::Naive),
            "overlay" => Ok(DriverKind::Overlay),
            other => Err(format!(
                "unknown baggageclaim driver {other:?} (naive, overlay, detect)"
            )),
        }
    }
}

/// What a driver does to a volume's directories. Blocking; called on `spawn_blocking`.
///
/// `data` is `<volume dir>/volume`, the path the API reports; `volume_dir` its parent,
/// where the driver may keep its own files.
pub trait Driver: Send + Sync {
    fn kind(&self) -> DriverKind;
    fn create_empty(&self, data: &Path) -> io::Result<()>;
    /// Makes `child_data` a writable copy of `parent_data`.
    fn create_cow(
        &self,
        handle: &str,
        parent_handle: &str,
        parent_data: &Path,
        child_data: &Path,
    ) -> io::Result<()>;
    /// Undoes what create_* did beyond the plain directory (unmounts, layer dirs).
    fn destroy(&self, handle: &str, data: &Path) -> io::Result<()>;
    /// Re-establishes a volume found on disk at start (remounts after a reboot).
    fn recover(&self, handle: &str, parent_handle: Option<&str>, data: &Path) -> io::Result<()>;
    /// Lets go of a volume at shutdown, keeping its data (unmounts; `recover` remounts).
    fn release(&self, _handle: &str, _data: &Path) -> io::Result<()> {
        Ok(())
    }
    /// Whether a COW child reads its parent's files (then parents outlive their children).
    fn children_share_parent_data(&self) -> bool;
    /// Leftover driver data of handles not in `live` (cleanup-orphans).
    fn cleanup_orphans(&self, live: &[String]) -> io::Result<()>;
}

pub struct NaiveDriver;

impl Driver for NaiveDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Naive
    }
    fn create_empty(&self, data: &Path) -> io::Result<()> {
        fs::create_dir(data)
    }
    fn create_cow(
        &self,
        _handle: &str,
        _parent: &str,
        parent_data: &Path,
        child_data: &Path,
    ) -> io::Result<()> {
        fs::create_dir(child_data)?;
        copy_tree(parent_data, child_data, false)
    }
    fn destroy(&self, _handle: &str, _data: &Path) -> io::Result<()> {
        Ok(())
    }
    fn recover(&self, _handle: &str, _parent: Option<&str>, _data: &Path) -> io::Result<()> {
        Ok(())
    }
    fn children_share_parent_data(&self) -> bool {
        false
    }
    fn cleanup_orphans(&self, _live: &[String]) -> io::Result<()> {
        Ok(())
    }
}

/// Copies the contents of `src` into the existing directory `dst`, keeping modes, owners,
/// times and symlinks (`cp -a`), or following symlinks when asked.
pub fn copy_tree(src: &Path, dst: &Path, follow_symlinks: bool) -> io::Result<()> {
    let mut from = PathBuf::from(src);
    from.push(".");
    let out = Command::new("cp")
        .arg(if follow_symlinks { "-aL" } else { "-a" })
        .arg("--reflink=auto")
        .arg(&from)
        .arg(dst)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "copying {} to {}: {}",
            src.display(),
            dst.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
