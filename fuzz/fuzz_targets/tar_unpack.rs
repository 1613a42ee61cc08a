//! Baggageclaim's tar stream-in (`concourse::worker_fs::archive::unpack`).
//!
//! Each input is an uncompressed tar, unpacked into `root/` of a fresh temporary directory
//! that also holds `outside/victim` and, inside `root/`, symlinks a hostile container could
//! have planted there (`planted -> ../outside`, `planted-abs -> <tmp>/outside`). Whether
//! the unpack succeeds or not:
//! - nothing is created, changed or linked outside `root/`: the temporary directory still
//!   holds exactly `root/` and `outside/`, `outside/` exactly `victim`, with its content,
//!   mode, mtime and link count unchanged;
//! - `root/` is still a directory;
//! - no relative symlink the unpack created under `root/` climbs above `root/`.
//!
//! The input's length picks the stream-in `path` (`""`, `sub`, or `../a/./b`, which
//! stream-in cleans to `a/b`) and whether devices are allowed, so seeds stay plain tars.
#![no_main]

use concourse::worker_fs::archive::{unpack, Compression, UnpackOptions};
use libfuzzer_sys::fuzz_target;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path};

const VICTIM: &[u8] = b"must not change";

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path();
    let root = base.join("root");
    let outside = base.join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    fs::write(&victim, VICTIM).unwrap();
    std::os::unix::fs::symlink("../outside", root.join("planted")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("planted-abs")).unwrap();
    let before = fs::symlink_metadata(&victim).unwrap();

    let sub = ["", "sub", "../a/./b"][data.len() % 3];
    let options = UnpackOptions {
        allow_devices: data.len() % 2 == 0,
    };
    let _ = unpack(data, Compression::None, &root, sub, options);

    assert_eq!(
        names(base),
        ["outside", "root"],
        "entries appeared beside root/"
    );
    assert_eq!(names(&outside), ["victim"], "entries appeared in outside/");
    let after = fs::symlink_metadata(&victim).unwrap();
    assert!(after.file_type().is_file(), "outside/victim was replaced");
    assert_eq!(
        fs::read(&victim).unwrap(),
        VICTIM,
        "outside/victim was written"
    );
    assert_eq!(after.ino(), before.ino(), "outside/victim was replaced");
    assert_eq!(after.mode(), before.mode(), "outside/victim's mode changed");
    assert_eq!(after.uid(), before.uid(), "outside/victim's owner changed");
    assert_eq!(
        after.mtime(),
        before.mtime(),
        "outside/victim's mtime changed"
    );
    assert_eq!(after.nlink(), 1, "outside/victim was hard-linked");
    let meta = fs::symlink_metadata(&root).unwrap();
    assert!(meta.is_dir(), "root/ is no longer a directory");
    check_symlinks(&root, Path::new(""));

    // Archives may leave directories without write or search permission: make everything
    // removable again so the temporary directory is cleaned up when not running as root.
    make_removable(base);
});

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every relative symlink under `root/rel` (other than the planted ones) stays inside root.
fn check_symlinks(root: &Path, rel: &Path) {
    let Ok(entries) = fs::read_dir(root.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = rel.join(entry.file_name());
        let Ok(meta) = fs::symlink_metadata(root.join(&path)) else {
            continue;
        };
        if meta.is_dir() {
            check_symlinks(root, &path);
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(root.join(&path)).unwrap();
            if path == Path::new("planted") || path == Path::new("planted-abs") {
                continue;
            }
            if target.is_absolute() {
                continue; // the container's own root once mounted
            }
            let mut depth = rel.components().count() as i64;
            for c in target.components() {
                match c {
                    Component::ParentDir => depth -= 1,
                    Component::Normal(_) => depth += 1,
                    _ => {}
                }
                assert!(
                    depth >= 0,
                    "symlink {} -> {} climbs out of the root",
                    path.display(),
                    target.display()
                );
            }
        }
    }
}

fn make_removable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&entry.path());
            }
        }
    }
}
