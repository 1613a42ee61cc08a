//! Pipeline and task configuration: parse YAML/JSON into the config model, `((var))`
//! interpolation, and validation with upstream's messages. Pure: no I/O beyond what the
//! caller hands in, and no knowledge of the store.
//!
//! NOTE: skeleton — the public signatures below are the contract other modules code against.

use crate::proto::api::ConfigWarning;
use serde::Serialize;
use serde_json::Value;

/// A parsed pipeline config (upstream `atc.Config`). Serializes like upstream's JSON marshal.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Config {
    pub jobs: Vec<JobConfig>,
    pub resources: Vec<ResourceConfig>,
    pub groups: Vec<crate::proto::api::GroupConfig>,
    pub display: Option<crate::proto::api::DisplayConfig>,
    pub user_data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct JobConfig {
    pub name: String,
    pub old_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ResourceConfig {
    pub name: String,
    pub old_name: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// A config error for the user: the message, and the 1-based YAML line when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
    pub line: Option<usize>,
}

/// Outcome of validation: warnings never block a save, errors do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Validation {
    pub warnings: Vec<ConfigWarning>,
    /// One string per failing section, formatted like upstream
    /// (`invalid jobs:\n\t<msg>\n\t<msg>\n`).
    pub errors: Vec<String>,
}

/// Parses a pipeline document (YAML or JSON) into the config model.
pub fn parse_pipeline(_doc: &[u8]) -> Result<Config, ConfigError> {
    unimplemented!("config::parse_pipeline")
}

/// Runs upstream's `configvalidate` over a parsed config.
pub fn validate_pipeline(_config: &Config) -> Validation {
    unimplemented!("config::validate_pipeline")
}

/// The config as upstream's JSON (what `GET .../config` returns under `config`).
pub fn to_json(config: &Config) -> Value {
    serde_json::to_value(config).unwrap_or(Value::Null)
}

/// Whether `name` matches a group's job glob (`*`, `?`, `[...]`, `{a,b}`).
pub fn glob_match(_pattern: &str, _name: &str) -> Result<bool, ConfigError> {
    unimplemented!("config::glob_match")
}

/// Renders a YAML value with sorted map keys (get-pipeline, format-pipeline, diffs).
pub fn to_yaml(_value: &Value) -> String {
    unimplemented!("config::to_yaml")
}

/// Static vars given on fly's command line (`-v`, `-y`, `-l`, `-i`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticVars(pub serde_json::Map<String, Value>);

/// fly-side rendering: rejects duplicate keys, substitutes the vars it knows and leaves the
/// rest as `((x))` for the server. Returns the rendered YAML document.
pub fn render_template(_doc: &[u8], _vars: &StaticVars) -> Result<Vec<u8>, ConfigError> {
    unimplemented!("config::render_template")
}

/// The `invalid_identifier` warning for a team or pipeline name, if it needs one.
pub fn identifier_warning(_ctx: &str, _name: &str) -> Option<ConfigWarning> {
    unimplemented!("config::identifier_warning")
}
