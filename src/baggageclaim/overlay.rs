//! The overlay driver: a COW child is an overlayfs mount whose lower layers are its
//! parent's layers, so a chain of COW volumes never stacks overlay on overlay (the kernel
//! allows only two levels) and a child's writes land in its own upper directory.
//!
//! Layout: `<overlays>/<handle>/{upper,work}` plus `lowers` (one lower dir per line,
//! topmost first), read again to remount after a reboot.

use super::driver::{Driver, DriverKind};
use crate::worker_fs::remove_tree;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct OverlayDriver {
    dir: PathBuf,
}

impl OverlayDriver {
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        crate::worker_fs::spread_subdirectories(&dir)?;
        Ok(OverlayDriver { dir })
    }

    fn layers(&self, handle: &str) -> PathBuf {
        self.dir.join(handle)
    }

    fn lowers_of(&self, handle: &str) -> io::Result<Vec<PathBuf>> {
        let text = fs::read_to_string(self.layers(handle).join("lowers"))?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect())
    }

    fn mount(&self, handle: &str, data: &Path) -> io::Result<()> {
        let layers = self.layers(handle);
        let lowers = self.lowers_of(handle)?;
        let lowerdir = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let options = format!(
            "lowerdir={lowerdir},upperdir={},workdir={}",
            layers.join("upper").display(),
            layers.join("work").display()
        );
        mount_overlay(data, &options)
    }
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other("path with a NUL byte"))
}

fn mount_overlay(target: &Path, options: &str) -> io::Result<()> {
    let target = cstr(target)?;
    let options = CString::new(options).map_err(|_| io::Error::other("options with a NUL byte"))?;
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn unmount(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: `t` is a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()), // not mounted, or gone
        _ => Err(e),
    }
}

fn is_mountpoint(path: &Path) -> bool {
    match (fs::metadata(path), path.parent().map(fs::metadata)) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}

/// Whether overlay mounts work here: root, kernel support, and a trial mount in `dir`.
pub fn overlay_works(dir: &Path) -> bool {
    if !crate::worker_fs::archive::is_root() {
        return false;
    }
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = (|| -> io::Result<()> {
        for d in ["lower", "upper", "work", "merged"] {
            fs::create_dir_all(probe.join(d))?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            probe.join("lower").display(),
            probe.join("upper").display(),
            probe.join("work").display()
        );
        mount_overlay(&probe.join("merged"), &options)?;
        unmount(&probe.join("merged"))
    })()
    .is_ok();
    let _ = remove_tree(&probe);
    ok
}

impl Driver for OverlayDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Overlay
    }

    fn create_empty(&self, data: &Path) -> io::Result<()> {
        fs::create_dir(data)
    }

    fn create_cow(
        &self,
        handle: &str,
        parent_handle: &str,
        parent_data: &Path,
        child_data: &Path,
    ) -> io::Result<()> {
        let parent_layers = self.layers(parent_handle);
        let mut lowers = Vec::new();
        if parent_layers.join("upper").is_dir() {
            lowers.push(parent_layers.join("upper"));
            lowers.extend(self.lowers_of(parent_handle)?);
        } else {
            lowers.push(parent_data.to_path_buf());
        }
        let layers = self.layers(handle);
        remove_tree(&layers)?;
        fs::create_dir_all(layers.join("upper"))?;
        fs::create_dir_all(layers.join("work"))?;
        let text: String = lowers
            .iter()
            .map(|p| format!("{}\n", p.display()))
            .collect();
        fs::write(layers.join("lowers"), text)?;
        fs::create_dir(child_data)?;
        // The upper dir takes the parent root's mode and owner, as a copy would.
        if let Ok(meta) = fs::metadata(parent_data) {
            fs::set_permissions(layers.join("upper"), meta.permissions())?;
            std::os::unix::fs::chown(layers.join("upper"), Some(meta.uid()), Some(meta.gid()))?;
        }
        self.mount(handle, child_data)
    }

    fn destroy(&self, handle: &str, data: &Path) -> io::Result<()> {
        if self.layers(handle).exists() {
            unmount(data)?;
            remove_tree(&self.layers(handle))?;
        }
        Ok(())
    }

    fn recover(&self, handle: &str, _parent: Option<&str>, data: &Path) -> io::Result<()> {
        if self.layers(handle).join("upper").is_dir() && !is_mountpoint(data) {
            self.mount(handle, data)?;
        }
        Ok(())
    }

    fn release(&self, handle: &str, data: &Path) -> io::Result<()> {
        if self.layers(handle).join("upper").is_dir() {
            unmount(data)?;
        }
        Ok(())
    }

    fn children_share_parent_data(&self) -> bool {
        true
    }

    fn cleanup_orphans(&self, live: &[String]) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) && !name.starts_with(".probe-") {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}
