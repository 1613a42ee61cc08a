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
