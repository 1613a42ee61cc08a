//! The UI's static files, built into the binary. Scripts are concatenated into one
//! `app.js` (one request, no bundler) and every asset is addressed as
//! `/public/<name>?id=<first 8 hex of sha256>` so it can be cached for a year.

use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub id: String,
}

macro_rules! files {
    ($dir:literal: $($name:literal),*) => {
        &[$(($name, include_str!(concat!("public/", $dir, "/", $name)))),*]
    };
}

/// Page scripts in load order: `core.js` defines the shared helpers the others use,
/// `main.js` starts the router.
const SCRIPTS: &[(&str, &str)] = files!("js":
    "core.js",
    "chrome.js",
    "dashboard.js",
    "pipeline.js",
    "job.js",
    "build.js",
    "build_page.js",
    "resource.js",
    "pages.js",
    "main.js"
);

/// Stylesheets: `base.css` (variables, themes, chrome) first, then one per page.
const STYLES: &[(&str, &str)] = files!("css":
    "base.css",
    "dashboard.css",
    "pipeline.css",
    "job.css",
    "build.css",
    "resource.css"
);

fn concat(files: &[(&str, &str)]) -> Vec<u8> {
    files
        .iter()
        .map(|(_, body)| *body)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn concat_dir(dir: &std::path::Path, files: &[(&str, &str)]) -> Option<Vec<u8>> {
    let parts: Option<Vec<String>> = files
        .iter()
        .map(|(n, _)| std::fs::read_to_string(dir.join(n)).ok())
        .collect();
    parts.map(|p| p.join("\n").into_bytes())
}

/// For working on the pages: `CONCOURSE_WEB_PUBLIC_DIR=src/atc/ui/public` serves the files
/// from disk, read on every request, instead of the copies built into the binary.
pub fn dev_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("CONCOURSE_WEB_PUBLIC_DIR").map(Into::into)
}

/// An asset read from the development directory (see `dev_dir`).
pub fn from_dir(dir: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    match name {
        "app.js" => concat_dir(&dir.join("js"), SCRIPTS),
        "app.css" => concat_dir(&dir.join("css"), STYLES),
        "favicon.svg" => std::fs::read(dir.join(name)).ok(),
        _ => None,
    }
}

fn asset(name: &'static str, content_type: &'static str, body: Vec<u8>) -> Asset {
    let digest = Sha256::digest(&body);
    let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    Asset {
        name,
        content_type,
        body,
        id,
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![
        asset("app.js", "text/javascript; charset=utf-8", concat(SCRIPTS)),
        asset("app.css", "text/css; charset=utf-8", concat(STYLES)),
        asset(
            "favicon.svg",
            "image/svg+xml",
            include_bytes!("public/favicon.svg").to_vec(),
        ),
    ]
});

pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The cache-busting URL of a built-in asset.
pub fn url(name: &str) -> String {
    match get(name) {
        Some(a) => format!("/public/{}?id={}", a.name, a.id),
        None => format!("/public/{name}"),
    }
}

pub const INDEX: &str = include_str!("public/index.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_content_hash() {
        for name in ["app.js", "app.css", "favicon.svg"] {
            let a = get(name).expect(name);
            assert_eq!(a.id.len(), 8);
            assert!(!a.body.is_empty());
            assert_eq!(url(name), format!("/public/{name}?id={}", a.id));
        }
    }

    /// The budget: any page ships at most 250 KB of JS + CSS before compression.
    #[test]
    fn scripts_and_styles_stay_within_budget() {
        let total = get("app.js").unwrap().body.len() + get("app.css").unwrap().body.len();
        assert!(total <= 250 * 1024, "{total} bytes of JS + CSS");
    }
}
