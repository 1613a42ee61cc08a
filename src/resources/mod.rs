//! Base resource types built into the binary: `concourse resource TYPE check|in|out [DIR]`
//! speaks the resource protocol (shared/spec/resource-protocol.md) on stdin/stdout, so a
//! worker advertises these like upstream's base resource types without shipping images.

pub mod git;
pub mod mock;
pub mod registry_image;
pub mod time;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// A version: a flat map of strings.
pub type Version = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataField {
    pub name: String,
    pub value: String,
}

/// What `in` and `out` print on stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionResult {
    pub version: Version,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataField>,
}

/// A failure of a resource script: printed to stderr, exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResourceError(pub String);

impl ResourceError {
    pub fn new(msg: impl Into<String>) -> Self {
        ResourceError(msg.into())
    }
}

/// The resource types this binary provides, with the version advertised to the ATC.
pub const BASE_TYPES: &[(&str, &str)] = &[
    ("mock", "0.13.0"),
    ("time", "1.7.0"),
    ("git", "1.19.0"),
    ("registry-image", "1.9.0"),
];

/// Runs one script of a base type. `request` is the JSON read from stdin; `dir` is argv[1]
/// for `in`/`out`. Returns the JSON to print on stdout. Logs go to `log` (stderr).
pub fn run(
    type_: &str,
    action: &str,
    dir: Option<&str>,
    request: &[u8],
    log: &mut dyn Write,
) -> Result<Value, ResourceError> {
    match type_ {
        "mock" => mock::run(action, dir, request, log),
        "time" => time::run(action, dir, request, log),
        "git" => git::run(action, dir, request, log),
        "registry-image" => registry_image::run(action, dir, request, log),
        other => Err(ResourceError::new(format!(
            "unknown base resource type '{other}'"
        ))),
    }
}

/// Entry point of `concourse resource`: stdin → script → stdout; exit 1 on failure.
pub fn main(type_: &str, action: &str, args: &[String]) -> i32 {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("reading request from stdin: {e}");
        return 1;
    }
    let mut stderr = std::io::stderr();
    match run(
        type_,
        action,
        args.first().map(String::as_str),
        &request,
        &mut stderr,
    ) {
        Ok(out) => {
            let mut stdout = std::io::stdout();
            let _ = serde_json::to_writer(&mut stdout, &out);
            let _ = stdout.write_all(b"\n");
            0
        }
        Err(e) => {
            let _ = writeln!(stderr, "{e}");
            1
        }
    }
}

/// For `#[serde(default, deserialize_with = "crate::resources::null_as_default")]`: an
/// explicit `null` reads like an absent field (the default), as upstream's Go decoding does.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Test helper: each of `fields` set to `null` on top of `base` parses exactly like `base`
/// without it.
#[cfg(test)]
pub fn assert_null_is_absent<T>(base: Value, fields: &[&str])
where
    T: serde::de::DeserializeOwned + std::fmt::Debug,
{
    let absent: T = serde_json::from_value(base.clone()).expect("base parses");
    for f in fields {
        let mut with_null = base.clone();
        with_null[*f] = Value::Null;
        let parsed: Result<T, _> = serde_json::from_value(with_null);
        match parsed {
            Ok(v) => assert_eq!(format!("{v:?}"), format!("{absent:?}"), "{f}: null"),
            Err(e) => panic!("{f}: null is refused: {e}"),
        }
    }
}

/// `dir` must be given for `in`/`out`.
pub fn require_dir<'a>(action: &str, dir: Option<&'a str>) -> Result<&'a str, ResourceError> {
    dir.ok_or_else(|| ResourceError::new(format!("usage: {action} <destination directory>")))
}
