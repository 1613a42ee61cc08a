//! Pipeline and task configuration: parse YAML/JSON into the config model, `((var))`
//! interpolation, and validation with upstream's messages. Pure: no I/O beyond what the
//! caller hands in, and no knowledge of the store.
//!
//! Layout: `yaml` (YAML → JSON value with go-yaml v2 semantics and a line table), `emit`
//! (`to_yaml`), `decode` (Go-style field decoding), `model` (config outside steps), `steps`
//! (step model and JSON) and `step_parse`, `task`, `vars` (interpolation and fly's template
//! rendering), `validate` and `validate_steps` (upstream `configvalidate`), `glob`,
//! `duration`.

mod decode;
mod duration;
mod emit;
mod glob;
pub mod idtoken;
mod model;
pub mod refs;
mod step_parse;
mod steps;
mod task;
mod validate;
mod validate_steps;
pub mod vars;
mod yaml;
mod yaml_scalar;

pub use duration::{format_go_duration, parse_duration, parse_go_duration};
pub use glob::{path_match, Glob};
pub use model::{
    BuildLogRetention, CheckEvery, JobConfig, Prototype, ResourceConfig, ResourceType, SourceLines,
    VarSourceConfig,
};
pub use steps::{
    AcrossStep, AcrossVarConfig, DoStep, GetStep, HookStep, InParallelStep, InputsConfig, Line,
    LoadVarStep, MaxInFlight, PutStep, RetryStep, RunStep, SetPipelineStep, Step, StepConfig,
    TaskStep, TimeoutStep, VersionConfig, STEP_PRECEDENCE,
};
pub use task::{
    container_limits_from_value, parse_memory_limit, parse_task_config, task_config_from_value,
    task_env_from, ContainerLimits, ImageResource, TaskCacheConfig, TaskConfig, TaskEnv,
    TaskInputConfig, TaskOutputConfig, TaskRunConfig,
};
pub use validate::{order_var_sources, validate_identifier};
pub use vars::{render_template, render_template_with, StaticVars};
/// The alias-expansion bound on a document of `len` bytes (for the fuzz targets).
#[doc(hidden)]
pub use yaml::max_expanded_bytes;
pub use yaml::LineMap;

use crate::proto::api::ConfigWarning;
use serde_json::Value;

/// A parsed pipeline config (upstream `atc.Config`). Serializes like upstream's JSON marshal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub jobs: Vec<JobConfig>,
    pub resources: Vec<ResourceConfig>,
    pub groups: Vec<crate::proto::api::GroupConfig>,
    pub display: Option<crate::proto::api::DisplayConfig>,
    pub user_data: Option<Value>,
    pub resource_types: Vec<ResourceType>,
    pub var_sources: Vec<VarSourceConfig>,
    pub prototypes: Vec<Prototype>,
    /// Where things were in the source document (for `(line N)` in messages).
    pub source_lines: SourceLines,
}

impl Config {
    pub fn job(&self, name: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| j.name == name)
    }
    pub fn resource(&self, name: &str) -> Option<&ResourceConfig> {
        self.resources.iter().find(|r| r.name == name)
    }
    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types.iter().find(|r| r.name == name)
    }
}

/// A config error for the user: upstream's message, and the 1-based YAML line when known
/// (shown as a ` (line N)` suffix by `Display`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.display())]
pub struct ConfigError {
    pub message: String,
    pub line: Option<usize>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
            line: None,
        }
    }

    pub(crate) fn at(message: impl Into<String>, line: usize) -> ConfigError {
        ConfigError {
            message: message.into(),
            line: Some(line),
        }
    }

    pub(crate) fn prefixed(mut self, prefix: &str) -> ConfigError {
        self.message.insert_str(0, prefix);
        self
    }

    fn display(&self) -> String {
        match self.line {
            // go-yaml style messages (`yaml: line 3: ...`) already say where.
            Some(n) if !self.message.contains(&format!("line {n}")) => {
                format!("{} (line {n})", self.message)
            }
            _ => self.message.clone(),
        }
    }
}

/// Outcome of validation: warnings never block a save, errors do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Validation {
    pub warnings: Vec<ConfigWarning>,
    /// One string per failing section, formatted like upstream
    /// (`invalid jobs:\n\t<msg>\n\t<msg>\n`).
    pub errors: Vec<String>,
}

/// How strictly a pipeline document is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// The server's save (`atc.UnmarshalConfig`): unknown top-level keys are dropped, unknown
    /// keys elsewhere (outside steps and task configs) are errors, a repeated key keeps its
    /// last value.
    #[default]
    Server,
    /// `fly validate-pipeline` without `--strict` (`yaml.Unmarshal`): unknown keys are
    /// ignored everywhere.
    Lenient,
    /// `fly validate-pipeline --strict` (`yaml.UnmarshalStrict`): unknown keys anywhere,
    /// top level included, and repeated keys are errors.
    Strict,
}

/// Parses a pipeline document (YAML or JSON) into the config model, as the server does.
/// Messages are upstream's (`error unmarshaling JSON: while decoding JSON: json: unknown
/// field "x"`); the API adds its `malformed config: ` prefix.
pub fn parse_pipeline(doc: &[u8]) -> Result<Config, ConfigError> {
    parse_pipeline_with(doc, ParseMode::Server)
}

/// `fly validate-pipeline --strict`: see [`ParseMode::Strict`].
pub fn parse_pipeline_strict(doc: &[u8]) -> Result<Config, ConfigError> {
    parse_pipeline_with(doc, ParseMode::Strict)
}

/// Parses a pipeline document in the given mode.
pub fn parse_pipeline_with(doc: &[u8], mode: ParseMode) -> Result<Config, ConfigError> {
    let dups = if mode == ParseMode::Strict {
        yaml::Duplicates::Reject
    } else {
        yaml::Duplicates::LastWins
    };
    let (value, lines) =
        yaml::parse(doc, dups).map_err(|e| e.prefixed("error converting YAML to JSON: "))?;
    let strict_top_level = mode == ParseMode::Strict;
    let strict = mode != ParseMode::Lenient;
    model::decode_config(&value, lines, strict_top_level, strict)
        .map_err(|e| e.prefixed("error unmarshaling JSON: while decoding JSON: "))
}

/// Parses a config rendered from `template` (fly's `((var))` rendering re-emits the
/// document with sorted keys) with the template's line numbers, so messages name the lines
/// the author wrote. Rendering changes values, not where nodes are; a node a var expanded
/// into structure has no template line and its messages go without one.
pub fn parse_rendered_pipeline(
    rendered: &[u8],
    template: &[u8],
    mode: ParseMode,
) -> Result<Config, ConfigError> {
    let mut cfg = parse_pipeline_with(rendered, mode)?;
    if let Ok((_, lines)) = yaml::parse(template, yaml::Duplicates::LastWins) {
        let (value, _) = yaml::parse(rendered, yaml::Duplicates::LastWins)?;
        let strict = mode != ParseMode::Lenient;
        cfg = model::decode_config(&value, lines, mode == ParseMode::Strict, strict)
            .map_err(|e| e.prefixed("error unmarshaling JSON: while decoding JSON: "))?;
    }
    Ok(cfg)
}

/// Runs upstream's `configvalidate` over a parsed config.
pub fn validate_pipeline(config: &Config) -> Validation {
    validate::validate(config)
}

/// The config as upstream's JSON (what `GET .../config` returns under `config`).
pub fn to_json(config: &Config) -> Value {
    model::config_value(config)
}

/// Whether `name` matches a group's job glob (`*`, `?`, `[...]`, `{a,b}`).
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, ConfigError> {
    Ok(Glob::compile(pattern)?.matches(name))
}

/// Renders a YAML value with sorted map keys (get-pipeline, format-pipeline, diffs).
pub fn to_yaml(value: &Value) -> String {
    emit::to_yaml(value)
}

/// Parses any YAML document into a JSON value with go-yaml v2 semantics (var files, `-y`
/// values, `load_var` of YAML).
pub fn parse_yaml_value(doc: &[u8]) -> Result<Value, ConfigError> {
    yaml::parse(doc, yaml::Duplicates::LastWins).map(|(v, _)| v)
}

/// The `invalid_identifier` warning for a team or pipeline name, if it needs one.
/// Empty names are refused before this is asked (they are errors, not warnings).
pub fn identifier_warning(ctx: &str, name: &str) -> Option<ConfigWarning> {
    validate_identifier(ctx, name).ok().flatten()
}

/// Parses one step from its JSON form (a stored plan, or a step after interpolation).
pub fn parse_step(value: &Value) -> Result<Step, ConfigError> {
    let lines = LineMap::default();
    let ctx = decode::Ctx {
        lines: &lines,
        coerce: false,
        strict: false,
    };
    Step::parse(value, ctx, "")
}
