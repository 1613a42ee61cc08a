//! Third-party Python clients and libraries, each in its own virtualenv (two of them ship
//! the same `concoursepy` module). Missing network or venv support skips a test locally and
//! fails it in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A virtualenv under `dir` with `package` installed from PyPI: its python.
pub fn venv_with(dir: &Path, package: &str) -> Option<PathBuf> {
    let venv = dir.join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output();
    let why = match made {
        Ok(o) if o.status.success() => {
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", package])
                .output()
                .expect("pip");
            if pip.status.success() {
                return Some(venv.join("bin/python"));
            }
            format!(
                "pip install {package} failed: {}",
                String::from_utf8_lossy(&pip.stderr)
            )
        }
        other => format!("python3 -m venv failed: {other:?}"),
    };
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipping: {why}");
    None
}
