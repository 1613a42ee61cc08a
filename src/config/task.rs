//! Task configs (inline `config:` or a task file) and container limits (upstream `atc/task.go`,
//! `atc/container_limits.go`).

use super::decode::{list, sorted, Ctx, Fields, Out};
use super::duration::parse_go_duration;
use super::yaml::{self, Duplicates, LineMap};
use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Environment for a task: every value stringified (upstream `TaskEnv` of `CoercedString`).
pub type TaskEnv = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerLimits {
    /// CPU shares.
    pub cpu: Option<u64>,
    /// Memory in bytes (all units binary).
    pub memory: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageResource {
    pub name: String,
    pub type_: String,
    pub source: Option<Map<String, Value>>,
    pub version: BTreeMap<String, String>,
    pub params: Map<String, Value>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskRunConfig {
    pub path: String,
    pub args: Vec<String>,
    pub dir: String,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskInputConfig {
    pub name: String,
    pub path: String,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskOutputConfig {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskCacheConfig {
    pub path: String,
    pub ttl: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskConfig {
    pub platform: String,
    pub rootfs_uri: String,
    pub image_resource: Option<ImageResource>,
    pub container_limits: Option<ContainerLimits>,
    pub params: TaskEnv,
    pub run: TaskRunConfig,
    pub inputs: Vec<TaskInputConfig>,
    pub outputs: Vec<TaskOutputConfig>,
    pub caches: Vec<TaskCacheConfig>,
    /// Keys that are not task config fields (reported by validation).
    pub unknown_fields: Map<String, Value>,
}

/// Parses a task file like upstream's `atc.NewTaskConfig`: unknown keys and validation
/// failures are errors.
pub fn parse_task_config(doc: &[u8]) -> Result<TaskConfig, ConfigError> {
    let (value, lines) = yaml::parse(doc, Duplicates::LastWins)
        .map_err(|e| e.prefixed("error converting YAML to JSON: "))?;
    let ctx = Ctx {
        lines: &lines,
        coerce: false,
        strict: false,
    };
    let config = TaskConfig::decode(&value, ctx, "", "")
        .map_err(|e| e.prefixed("error unmarshaling JSON: while decoding JSON: "))?;
    if !config.unknown_fields.is_empty() {
        let mut names: Vec<&str> = config.unknown_fields.keys().map(|k| k.as_str()).collect();
        names.sort();
        let line = config
            .unknown_fields
            .keys()
            .filter_map(|k| lines.line(&format!("/{}", yaml::escape_pointer(k))))
            .min();
        return Err(ConfigError {
            message: format!("unknown fields: [{}]", names.join(" ")),
            line,
        });
    }
    config.validate().map_err(|errors| ConfigError {
        message: format!("invalid task configuration:\n{}", errors.join("\n")),
        line: None,
    })?;
    Ok(config)
}

impl TaskConfig {
    pub(crate) fn decode(
        v: &Value,
        ctx: Ctx,
        ptr: &str,
        field: &str,
    ) -> Result<TaskConfig, ConfigError> {
        let mut f = Fields::new(v, ctx, ptr, "TaskConfig", field, "atc.TaskConfig")?;
        let platform = f.string("platform")?;
        let rootfs_uri = f.string("rootfs_uri")?;
        let image_resource = match f.raw("image_resource") {
            None => None,
            Some(v) => Some(ImageResource::decode(
                &v,
                ctx,
                &f.child_ptr("image_resource"),
                &f.child_field("image_resource"),
            )?),
        };
        let container_limits = match f.raw("container_limits") {
            None => None,
            Some(v) => Some(ContainerLimits::decode(
                &v,
                ctx,
                &f.child_ptr("container_limits"),
            )?),
        };
        let params = task_env(&mut f, "params")?;
        let run = match f.raw("run") {
            None => TaskRunConfig::default(),
            Some(v) => {
                let mut r = Fields::new(
                    &v,
                    ctx,
                    &f.child_ptr("run"),
                    "TaskRunConfig",
                    &f.child_field("run"),
                    "atc.TaskRunConfig",
                )?;
                let run = TaskRunConfig {
                    path: r.string("path")?,
                    args: r.strings("args")?,
                    dir: r.string("dir")?,
                    user: r.string("user")?,
                };
                r.finish()?;
                run
            }
        };
        let inputs_v = f.raw("inputs");
        let inputs = list(
            inputs_v,
            &f,
            "inputs",
            "[]atc.TaskInputConfig",
            |item, p| {
                let mut i = Fields::new(
                    item,
                    ctx,
                    &p,
                    "TaskInputConfig",
                    "inputs",
                    "atc.TaskInputConfig",
                )?;
                let input = TaskInputConfig {
                    name: i.string("name")?,
                    path: i.string("path")?,
                    optional: i.bool("optional")?,
                };
                i.finish()?;
                Ok(input)
            },
        )?;
        let outputs_v = f.raw("outputs");
        let outputs = list(
            outputs_v,
            &f,
            "outputs",
            "[]atc.TaskOutputConfig",
            |item, p| {
                let mut o = Fields::new(
                    item,
                    ctx,
                    &p,
                    "TaskOutputConfig",
                    "outputs",
                    "atc.TaskOutputConfig",
                )?;
                let output = TaskOutputConfig {
                    name: o.string("name")?,
                    path: o.string("path")?,
                };
                o.finish()?;
                Ok(output)
            },
        )?;
        let caches_v = f.raw("caches");
        let caches = list(
            caches_v,
            &f,
            "caches",
            "[]atc.TaskCacheConfig",
            |item, p| {
                let mut c = Fields::new(
                    item,
                    ctx,
                    &p,
                    "TaskCacheConfig",
                    "caches",
                    "atc.TaskCacheConfig",
                )?;
                let cache = TaskCacheConfig {
                    path: c.string("path")?,
                    ttl: c.string("ttl")?,
                };
                c.finish()?;
                if !cache.ttl.is_empty() {
                    let line = ctx.lines.line(&p);
                    let nanos = parse_go_duration(&cache.ttl).map_err(|e| ConfigError {
                        message: format!("invalid cache ttl '{}': {}", cache.ttl, e),
                        line,
                    })?;
                    if nanos < 1_000_000_000 {
                        return Err(ConfigError {
                            message: format!("cache ttl must be at least 1s, got '{}'", cache.ttl),
                            line,
                        });
                    }
                }
                Ok(cache)
            },
        )?;
        let unknown_fields = f.unknown();
        Ok(TaskConfig {
            platform,
            rootfs_uri,
            image_resource,
            container_limits,
            params,
            run,
            inputs,
            outputs,
            caches,
            unknown_fields,
        })
    }

    /// Upstream `TaskConfig.Validate`: the list of problems, in upstream's wording.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = vec![];
        if self.platform.is_empty() {
            errors.push("missing 'platform'".to_string());
        }
        for (i, input) in self.inputs.iter().enumerate() {
            if input.name.is_empty() {
                errors.push(format!("  input in position {i} is missing a name"));
            }
        }
        for (i, output) in self.outputs.iter().enumerate() {
            if output.name.is_empty() {
                errors.push(format!("  output in position {i} is missing a name"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn to_value(&self) -> Value {
        let mut o = Out::default();
        o.str("platform", &self.platform)
            .str("rootfs_uri", &self.rootfs_uri);
        if let Some(ir) = &self.image_resource {
            o.put("image_resource", ir.to_value());
        }
        if let Some(l) = &self.container_limits {
            o.put("container_limits", l.to_value());
        }
        o.string_map("params", &self.params);
        let run = &self.run;
        if !(run.path.is_empty()
            && run.args.is_empty()
            && run.dir.is_empty()
            && run.user.is_empty())
        {
            let mut r = Out::default();
            r.put("path", Value::String(run.path.clone()))
                .strings("args", &run.args)
                .str("dir", &run.dir)
                .str("user", &run.user);
            o.put("run", r.value());
        }
        if !self.inputs.is_empty() {
            let inputs = self
                .inputs
                .iter()
                .map(|i| {
                    let mut x = Out::default();
                    x.put("name", Value::String(i.name.clone()))
                        .str("path", &i.path)
                        .bool("optional", i.optional);
                    x.value()
                })
                .collect();
            o.put("inputs", Value::Array(inputs));
        }
        if !self.outputs.is_empty() {
            let outputs = self
                .outputs
                .iter()
                .map(|i| {
                    let mut x = Out::default();
                    x.put("name", Value::String(i.name.clone()))
                        .str("path", &i.path);
                    x.value()
                })
                .collect();
            o.put("outputs", Value::Array(outputs));
        }
        if !self.caches.is_empty() {
            let caches = self
                .caches
                .iter()
                .map(|c| {
                    let mut x = Out::default();
                    x.str("path", &c.path).str("ttl", &c.ttl);
                    x.value()
                })
                .collect();
            o.put("caches", Value::Array(caches));
        }
        o.value()
    }
}

impl ImageResource {
    pub(crate) fn decode(
        v: &Value,
        ctx: Ctx,
        ptr: &str,
        field: &str,
    ) -> Result<ImageResource, ConfigError> {
        let mut f = Fields::new(v, ctx, ptr, "ImageResource", field, "atc.ImageResource")?;
        let ir = ImageResource {
            name: f.string("name")?,
            type_: f.string("type")?,
            source: f.object("source", "atc.Source")?,
            version: version_map(&mut f, "version")?,
            params: f.object("params", "atc.Params")?.unwrap_or_default(),
            tags: f.strings("tags")?,
        };
        f.finish()?;
        Ok(ir)
    }

    pub fn to_value(&self) -> Value {
        let mut o = Out::default();
        o.put("name", Value::String(self.name.clone()))
            .put("type", Value::String(self.type_.clone()))
            .put("source", source_value(&self.source))
            .string_map("version", &self.version)
            .map("params", &self.params)
            .strings("tags", &self.tags);
        o.value()
    }
}

pub(crate) fn source_value(s: &Option<Map<String, Value>>) -> Value {
    match s {
        None => Value::Null,
        Some(m) => sorted(&Value::Object(m.clone())),
    }
}

/// An `atc.Version` (`map[string]string`); with coercion on, scalars become strings.
pub(crate) fn version_map(
    f: &mut Fields,
    key: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    f.string_map(key, "atc.Version")
}

/// `TaskEnv`: strings stay, numbers keep their JSON text, anything else is JSON-encoded.
pub(crate) fn task_env(f: &mut Fields, key: &str) -> Result<TaskEnv, ConfigError> {
    match f.raw(key) {
        None => Ok(TaskEnv::new()),
        Some(Value::Object(m)) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), coerced_string(v)))
            .collect()),
        Some(other) => Err(f.err(key, &other, "atc.TaskEnv")),
    }
}

pub(crate) fn coerced_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_json_number(n),
        other => go_json(other),
    }
}

/// Go's `json.Marshal` text: sorted keys, HTML-safe escapes.
pub(crate) fn go_json(v: &Value) -> String {
    let text = serde_json::to_string(&sorted(v)).unwrap_or_default();
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's JSON encoding of a float64 (`1e+21`, `1e-7`, else plain decimal).
pub(crate) fn go_json_number(n: &serde_json::Number) -> String {
    match n.as_f64().filter(|_| n.is_f64()) {
        None => n.to_string(),
        Some(f) => {
            let abs = f.abs();
            if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                let s = format!("{f:e}");
                match s.split_once('e') {
                    Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
                    _ => s,
                }
            } else {
                format!("{f}")
            }
        }
    }
}

impl ContainerLimits {
    pub(crate) fn decode(v: &Value, ctx: Ctx, ptr: &str) -> Result<ContainerLimits, ConfigError> {
        let mut f = Fields::new(
            v,
            ctx,
            ptr,
            "ContainerLimits",
            "container_limits",
            "atc.ContainerLimits",
        )?;
        let line = ctx.lines.line(ptr);
        let cpu = match f.raw("cpu") {
            None => None,
            Some(Value::Number(n)) => {
                Some(n.as_f64().map(|x| x.max(0.0) as u64).unwrap_or_default())
            }
            Some(_) => {
                return Err(ConfigError {
                    message: "cpu limit must be an integer".into(),
                    line,
                })
            }
        };
        let memory = match f.raw("memory") {
            None => None,
            Some(Value::Number(n)) => {
                Some(n.as_f64().map(|x| x.max(0.0) as u64).unwrap_or_default())
            }
            Some(Value::String(s)) => {
                Some(parse_memory_limit(&s).map_err(|message| ConfigError { message, line })?)
            }
            Some(_) => Some(0),
        };
        f.finish()?;
        Ok(ContainerLimits { cpu, memory })
    }

    pub fn to_value(&self) -> Value {
        let mut o = Out::default();
        if let Some(c) = self.cpu {
            o.put("cpu", Value::from(c));
        }
        if let Some(m) = self.memory {
            o.put("memory", Value::from(m));
        }
        o.value()
    }
}

/// `^\d+([KMG]i?B?)?$`, case-insensitive; every unit is binary (`1GB` = 1073741824).
pub fn parse_memory_limit(limit: &str) -> Result<u64, String> {
    let bad = || "could not parse container memory limit".to_string();
    let digits_len = limit.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits_len == 0 {
        return Err(bad());
    }
    let (digits, unit) = limit.split_at(digits_len);
    let unit = unit.to_ascii_uppercase();
    let multiplier: u64 = match unit.as_str() {
        "" => 1,
        "K" | "KB" | "KI" | "KIB" => 1 << 10,
        "M" | "MB" | "MI" | "MIB" => 1 << 20,
        "G" | "GB" | "GI" | "GIB" => 1 << 30,
        _ => return Err(bad()),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {digits:?}: value out of range"))?;
    Ok(value.wrapping_mul(multiplier))
}

/// For callers holding a task config outside any pipeline (fly execute): the line table of
/// an inline config is unknown, so decode with an empty one.
pub fn task_config_from_value(v: &Value) -> Result<TaskConfig, ConfigError> {
    let lines = LineMap::default();
    let ctx = Ctx {
        lines: &lines,
        coerce: false,
        strict: false,
    };
    TaskConfig::decode(v, ctx, "", "")
}

/// A step's `container_limits` as a plan carries it (JSON), read as the config parser does.
pub fn container_limits_from_value(v: &Value) -> Result<ContainerLimits, ConfigError> {
    let lines = LineMap::default();
    let ctx = Ctx {
        lines: &lines,
        coerce: false,
        strict: false,
    };
    ContainerLimits::decode(v, ctx, "")
}

/// A plan's task `params` as environment strings (upstream `TaskEnv`).
pub fn task_env_from(params: &Map<String, Value>) -> TaskEnv {
    params
        .iter()
        .map(|(k, v)| (k.clone(), coerced_string(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_are_binary() {
        assert_eq!(parse_memory_limit("1GB"), Ok(1 << 30));
        assert_eq!(parse_memory_limit("1g"), Ok(1 << 30));
        assert_eq!(parse_memory_limit("1GiB"), Ok(1 << 30));
        assert_eq!(parse_memory_limit("512"), Ok(512));
        assert_eq!(parse_memory_limit("2kb"), Ok(2048));
        assert_eq!(
            parse_memory_limit("1TB").unwrap_err(),
            "could not parse container memory limit"
        );
    }

    #[test]
    fn task_files_reject_unknown_fields_and_missing_platform() {
        assert_eq!(
            parse_task_config(b"platform: linux\nfoo: 1\nbar: 2\n")
                .unwrap_err()
                .message,
            "unknown fields: [bar foo]"
        );
        assert_eq!(
            parse_task_config(b"run: {path: ls}\ninputs: [{path: x}]\noutputs: [{path: out}]\n").unwrap_err().message,
            "invalid task configuration:\nmissing 'platform'\n  input in position 0 is missing a name\n  output in position 0 is missing a name"
        );
    }

    #[test]
    fn task_params_are_coerced_to_strings() {
        let c = parse_task_config(
            b"platform: linux\nparams: {A: 1, B: true, C: {x: 1}, D: ~, E: 1.5}\n",
        )
        .unwrap();
        assert_eq!(c.params["A"], "1");
        assert_eq!(c.params["B"], "true");
        assert_eq!(c.params["C"], "{\"x\":1}");
        assert_eq!(c.params["D"], "");
        assert_eq!(c.params["E"], "1.5");
    }

    #[test]
    fn cache_ttl_must_be_at_least_a_second() {
        let e =
            parse_task_config(b"platform: linux\ncaches: [{path: x, ttl: 10ms}]\n").unwrap_err();
        assert!(
            e.message
                .ends_with("cache ttl must be at least 1s, got '10ms'"),
            "{}",
            e.message
        );
    }
}
