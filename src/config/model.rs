//! The pipeline config model outside steps (upstream `atc/config.go`, `atc/job_config.go`):
//! decoding from the YAML-as-JSON value and upstream's JSON marshal.

use super::decode::{list, sorted, Ctx, Fields, Out};
use super::duration::{format_go_duration, parse_go_duration};
use super::steps::{
    resource_version, source_json, DoStep, GetStep, HookStep, Line, PutStep, Step, StepConfig,
};
use super::yaml::LineMap;
use super::{Config, ConfigError};
use crate::proto::api::{DisplayConfig, GroupConfig};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The line table of a parsed document; never part of equality.
#[derive(Debug, Clone, Default)]
pub struct SourceLines(pub LineMap);

impl PartialEq for SourceLines {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarSourceConfig {
    pub name: String,
    pub type_: String,
    pub config: Value,
    pub line: Line,
}

/// `check_every`: `never`, or a Go duration (kept in nanoseconds; may be zero or negative
/// exactly as upstream would keep it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckEvery {
    Never,
    Interval(i64),
}

impl CheckEvery {
    /// The periodic interval, `None` for `never` (and for a non-positive interval: default).
    pub fn interval(&self) -> Option<Duration> {
        match self {
            CheckEvery::Never => None,
            CheckEvery::Interval(n) if *n > 0 => Some(Duration::from_nanos(*n as u64)),
            CheckEvery::Interval(_) => None,
        }
    }

    fn to_value(self) -> Value {
        match self {
            CheckEvery::Never => Value::from("never"),
            CheckEvery::Interval(0) => Value::from(""),
            CheckEvery::Interval(n) => Value::from(format_go_duration(n as i128)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceConfig {
    pub name: String,
    pub old_name: String,
    pub public: bool,
    pub webhook_token: String,
    #[doc(alias = "type")]
    pub type_: String,
    pub source: Option<Map<String, Value>>,
    pub check_every: Option<CheckEvery>,
    pub check_timeout: String,
    pub tags: Vec<String>,
    pub version: BTreeMap<String, String>,
    pub icon: String,
    pub expose_build_created_by: bool,
    pub line: Line,
}

/// A custom resource type; prototypes share the shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceType {
    pub name: String,
    pub type_: String,
    pub source: Option<Map<String, Value>>,
    pub defaults: Map<String, Value>,
    pub privileged: bool,
    pub check_every: Option<CheckEvery>,
    pub tags: Vec<String>,
    pub params: Map<String, Value>,
    pub line: Line,
}

pub type Prototype = ResourceType;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildLogRetention {
    pub builds: i64,
    pub minimum_succeeded_builds: i64,
    pub days: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobConfig {
    pub name: String,
    pub old_name: String,
    pub public: bool,
    pub disable_manual_trigger: bool,
    pub disable_reruns: bool,
    pub serial: bool,
    pub interruptible: bool,
    pub serial_groups: Vec<String>,
    /// `max_in_flight` as written; see [`JobConfig::max_in_flight`].
    pub raw_max_in_flight: i64,
    pub tags: Vec<String>,
    pub build_logs_to_retain: i64,
    pub build_log_retention: Option<BuildLogRetention>,
    pub on_success: Option<Box<Step>>,
    pub on_failure: Option<Box<Step>>,
    pub on_abort: Option<Box<Step>>,
    pub on_error: Option<Box<Step>>,
    pub ensure: Option<Box<Step>>,
    pub plan: Vec<Step>,
    pub line: Line,
}

impl JobConfig {
    /// Effective limit of running builds: 1 when serial or in serial groups, 0 = unlimited.
    pub fn max_in_flight(&self) -> i64 {
        if self.serial || !self.serial_groups.is_empty() {
            1
        } else {
            self.raw_max_in_flight
        }
    }

    /// The whole job as one step: the plan as a `do`, wrapped by the job hooks
    /// (outermost `ensure`, then `on_error`, `on_abort`, `on_failure`, `on_success`).
    pub fn step_config(&self) -> StepConfig {
        let mut step = StepConfig::Do(DoStep {
            steps: self.plan.clone(),
            tags: vec![],
        });
        type Wrap = fn(HookStep) -> StepConfig;
        let hooks: [(&Option<Box<Step>>, Wrap); 5] = [
            (&self.on_success, StepConfig::OnSuccess),
            (&self.on_failure, StepConfig::OnFailure),
            (&self.on_abort, StepConfig::OnAbort),
            (&self.on_error, StepConfig::OnError),
            (&self.ensure, StepConfig::Ensure),
        ];
        for (hook, make) in hooks {
            if let Some(h) = hook {
                step = make(HookStep {
                    step: Box::new(step),
                    hook: h.clone(),
                });
            }
        }
        step
    }

    /// Calls `f` on every step config of the job without building [`Self::step_config`]:
    /// the plan first, then the hooks from the innermost (`on_success`) to `ensure` — the
    /// order upstream's `StepRecursor` visits them in.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a StepConfig)) {
        for step in &self.plan {
            step.config.walk(f);
        }
        for hook in [
            &self.on_success,
            &self.on_failure,
            &self.on_abort,
            &self.on_error,
            &self.ensure,
        ]
        .into_iter()
        .flatten()
        {
            hook.config.walk(f);
        }
    }

    /// Every `get` in the job (plan and hooks, any depth): the job's inputs.
    pub fn inputs(&self) -> Vec<&GetStep> {
        let mut out = vec![];
        self.walk(&mut |s| {
            if let StepConfig::Get(g) = s {
                out.push(g);
            }
        });
        out
    }

    /// Every `put` in the job: the job's outputs.
    pub fn outputs(&self) -> Vec<&PutStep> {
        let mut out = vec![];
        self.walk(&mut |s| {
            if let StepConfig::Put(p) = s {
                out.push(p);
            }
        });
        out
    }
}

const TOP_LEVEL: [&str; 8] = [
    "groups",
    "var_sources",
    "resources",
    "resource_types",
    "prototypes",
    "jobs",
    "display",
    "user_data",
];

/// Go's decoder matches field names case-insensitively, so `Jobs:` is `jobs:`.
fn is_top_level(key: &str) -> bool {
    TOP_LEVEL.contains(&key.to_lowercase().as_str())
}

/// Decodes the whole document (already YAML-parsed). Unknown top-level keys are dropped unless
/// `strict_top_level`.
pub(crate) fn decode_config(
    v: &Value,
    lines: LineMap,
    strict_top_level: bool,
    strict: bool,
) -> Result<Config, ConfigError> {
    let ctx = Ctx {
        lines: &lines,
        coerce: true,
        strict,
    };
    let top = match v {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(super::decode::type_error(
                ctx,
                "",
                other,
                "",
                "",
                "atc.skeletonConfig",
            ));
        }
    };
    if strict_top_level {
        if let Some(k) = top.keys().find(|k| !is_top_level(k)) {
            return Err(ConfigError {
                message: format!("json: unknown field {k:?}"),
                line: lines.line(&format!("/{}", super::yaml::escape_pointer(k))),
            });
        }
    }
    let stripped: Map<String, Value> = top.into_iter().filter(|(k, _)| is_top_level(k)).collect();
    let doc = Value::Object(stripped);
    let mut f = Fields::new(&doc, ctx, "", "Config", "", "atc.Config")?;

    let groups_v = f.raw("groups");
    let groups = list(groups_v, &f, "groups", "atc.GroupConfigs", |item, p| {
        let mut g = Fields::new(item, ctx, &p, "GroupConfig", "groups", "atc.GroupConfig")?;
        let group = GroupConfig {
            name: g.string("name")?,
            jobs: g.strings("jobs")?,
            resources: g.strings("resources")?,
        };
        g.finish()?;
        Ok(group)
    })?;

    let vs_v = f.raw("var_sources");
    let var_sources = list(
        vs_v,
        &f,
        "var_sources",
        "atc.VarSourceConfigs",
        |item, p| {
            let mut g = Fields::new(
                item,
                ctx,
                &p,
                "VarSourceConfig",
                "var_sources",
                "atc.VarSourceConfig",
            )?;
            let vs = VarSourceConfig {
                name: g.string("name")?,
                type_: g.string("type")?,
                config: g.raw("config").unwrap_or(Value::Null),
                line: Line(lines.line(&p)),
            };
            g.finish()?;
            Ok(vs)
        },
    )?;

    let res_v = f.raw("resources");
    let resources = list(res_v, &f, "resources", "atc.ResourceConfigs", |item, p| {
        let mut r = Fields::new(
            item,
            ctx,
            &p,
            "ResourceConfig",
            "resources",
            "atc.ResourceConfig",
        )?;
        let res = ResourceConfig {
            name: r.string("name")?,
            old_name: r.string("old_name")?,
            public: r.bool("public")?,
            webhook_token: r.string("webhook_token")?,
            type_: r.string("type")?,
            source: r.object("source", "atc.Source")?,
            check_every: check_every(&mut r)?,
            check_timeout: r.string("check_timeout")?,
            tags: r.strings("tags")?,
            version: resource_version(&mut r)?,
            icon: r.string("icon")?,
            expose_build_created_by: r.bool("expose_build_created_by")?,
            line: Line(lines.line(&p)),
        };
        r.finish()?;
        Ok(res)
    })?;

    let types = decode_resource_types(&mut f, ctx, "resource_types", "ResourceType")?;
    let prototypes = decode_resource_types(&mut f, ctx, "prototypes", "Prototype")?;

    let jobs_v = f.raw("jobs");
    let jobs = list(jobs_v, &f, "jobs", "atc.JobConfigs", |item, p| {
        decode_job(item, ctx, &p)
    })?;

    let display = match f.raw("display") {
        None => None,
        Some(d) => {
            let mut g = Fields::new(
                &d,
                ctx,
                "/display",
                "DisplayConfig",
                "display",
                "atc.DisplayConfig",
            )?;
            let display = DisplayConfig {
                background_image: g.string("background_image")?,
                background_filter: g.string("background_filter")?,
            };
            g.finish()?;
            Some(display)
        }
    };
    let user_data = f.raw("user_data");
    Ok(Config {
        jobs,
        resources,
        groups,
        display,
        user_data,
        resource_types: types,
        var_sources,
        prototypes,
        source_lines: SourceLines(lines.clone()),
    })
}

fn check_every(f: &mut Fields) -> Result<Option<CheckEvery>, ConfigError> {
    match f.raw("check_every") {
        None => Ok(None),
        Some(Value::String(s)) => {
            if s.is_empty() {
                Ok(Some(CheckEvery::Interval(0)))
            } else if s == "never" {
                Ok(Some(CheckEvery::Never))
            } else {
                let line = f.ctx.lines.line(&f.child_ptr("check_every"));
                let nanos =
                    parse_go_duration(&s).map_err(|message| ConfigError { message, line })?;
                Ok(Some(CheckEvery::Interval(nanos as i64)))
            }
        }
        Some(_) => Err(ConfigError {
            message: "non-string value provided".into(),
            line: f.ctx.lines.line(&f.child_ptr("check_every")),
        }),
    }
}

fn decode_resource_types(
    f: &mut Fields,
    ctx: Ctx,
    key: &str,
    strct: &'static str,
) -> Result<Vec<ResourceType>, ConfigError> {
    let v = f.raw(key);
    let go = if key == "prototypes" {
        "atc.Prototypes"
    } else {
        "atc.ResourceTypes"
    };
    list(v, f, key, go, |item, p| {
        decode_resource_type(item, ctx, &p, strct, key)
    })
}

fn decode_resource_type(
    item: &Value,
    ctx: Ctx,
    p: &str,
    strct: &'static str,
    key: &str,
) -> Result<ResourceType, ConfigError> {
    let mut r = Fields::new(item, ctx, p, strct, key, "atc.ResourceType")?;
    let rt = ResourceType {
        name: r.string("name")?,
        type_: r.string("type")?,
        source: r.object("source", "atc.Source")?,
        defaults: r.object("defaults", "atc.Source")?.unwrap_or_default(),
        privileged: r.bool("privileged")?,
        check_every: check_every(&mut r)?,
        tags: r.strings("tags")?,
        params: r.object("params", "atc.Params")?.unwrap_or_default(),
        line: Line(ctx.lines.line(p)),
    };
    r.finish()?;
    Ok(rt)
}

fn decode_job(item: &Value, ctx: Ctx, p: &str) -> Result<JobConfig, ConfigError> {
    let mut j = Fields::new(item, ctx, p, "JobConfig", "jobs", "atc.JobConfig")?;
    let hook = |j: &mut Fields, key: &str| -> Result<Option<Box<Step>>, ConfigError> {
        match j.raw(key) {
            None => Ok(None),
            Some(v) => Ok(Some(Box::new(Step::parse(&v, ctx, &j.child_ptr(key))?))),
        }
    };
    let job = JobConfig {
        name: j.string("name")?,
        old_name: j.string("old_name")?,
        public: j.bool("public")?,
        disable_manual_trigger: j.bool("disable_manual_trigger")?,
        disable_reruns: j.bool("disable_reruns")?,
        serial: j.bool("serial")?,
        interruptible: j.bool("interruptible")?,
        serial_groups: j.strings("serial_groups")?,
        raw_max_in_flight: j.int("max_in_flight")?,
        tags: j.strings("tags")?,
        build_logs_to_retain: j.int("build_logs_to_retain")?,
        build_log_retention: match j.raw("build_log_retention") {
            None => None,
            Some(v) => {
                let mut b = Fields::new(
                    &v,
                    ctx,
                    &j.child_ptr("build_log_retention"),
                    "BuildLogRetention",
                    "jobs.build_log_retention",
                    "atc.BuildLogRetention",
                )?;
                let r = BuildLogRetention {
                    builds: b.int("builds")?,
                    minimum_succeeded_builds: b.int("minimum_succeeded_builds")?,
                    days: b.int("days")?,
                };
                b.finish()?;
                Some(r)
            }
        },
        on_success: hook(&mut j, "on_success")?,
        on_failure: hook(&mut j, "on_failure")?,
        on_abort: hook(&mut j, "on_abort")?,
        on_error: hook(&mut j, "on_error")?,
        ensure: hook(&mut j, "ensure")?,
        plan: {
            let v = j.raw("plan");
            list(v, &j, "plan", "[]atc.Step", |item, p| {
                Step::parse(item, ctx, &p)
            })?
        },
        line: Line(ctx.lines.line(p)),
    };
    j.finish()?;
    Ok(job)
}

impl ResourceConfig {
    pub fn to_value(&self) -> Value {
        let mut o = Out::default();
        o.put("name", Value::String(self.name.clone()))
            .str("old_name", &self.old_name)
            .bool("public", self.public)
            .str("webhook_token", &self.webhook_token)
            .put("type", Value::String(self.type_.clone()))
            .put("source", source_json(&self.source));
        if let Some(c) = self.check_every {
            o.put("check_every", c.to_value());
        }
        o.str("check_timeout", &self.check_timeout)
            .strings("tags", &self.tags)
            .string_map("version", &self.version)
            .str("icon", &self.icon)
            .bool("expose_build_created_by", self.expose_build_created_by);
        o.value()
    }
}

impl ResourceType {
    pub fn to_value(&self) -> Value {
        let mut o = Out::default();
        o.put("name", Value::String(self.name.clone()))
            .put("type", Value::String(self.type_.clone()))
            .put("source", source_json(&self.source))
            .map("defaults", &self.defaults)
            .bool("privileged", self.privileged);
        if let Some(c) = self.check_every {
            o.put("check_every", c.to_value());
        }
        o.strings("tags", &self.tags).map("params", &self.params);
        o.value()
    }
}

impl ResourceType {
    /// Reads [`ResourceType::to_value`]'s form (a build plan's types) as a pipeline's save
    /// would read the type.
    pub fn from_value(v: &Value) -> Result<ResourceType, ConfigError> {
        let lines = LineMap::default();
        let ctx = Ctx {
            lines: &lines,
            coerce: true,
            strict: true,
        };
        decode_resource_type(v, ctx, "", "ResourceType", "resource_types")
    }
}

impl serde::Serialize for ResourceType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ResourceType::from_value(&v).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl JobConfig {
    pub fn to_value(&self) -> Value {
        let mut o = Out::default();
        o.put("name", Value::String(self.name.clone()))
            .str("old_name", &self.old_name)
            .bool("public", self.public)
            .bool("disable_manual_trigger", self.disable_manual_trigger)
            .bool("disable_reruns", self.disable_reruns)
            .bool("serial", self.serial)
            .bool("interruptible", self.interruptible)
            .strings("serial_groups", &self.serial_groups)
            .int("max_in_flight", self.raw_max_in_flight)
            .strings("tags", &self.tags)
            .int("build_logs_to_retain", self.build_logs_to_retain);
        if let Some(r) = &self.build_log_retention {
            let mut b = Out::default();
            b.int("builds", r.builds)
                .int("minimum_succeeded_builds", r.minimum_succeeded_builds)
                .int("days", r.days);
            o.put("build_log_retention", b.value());
        }
        for (key, hook) in [
            ("on_success", &self.on_success),
            ("on_failure", &self.on_failure),
            ("on_abort", &self.on_abort),
            ("on_error", &self.on_error),
            ("ensure", &self.ensure),
        ] {
            if let Some(h) = hook {
                o.put(key, h.to_value());
            }
        }
        o.put(
            "plan",
            Value::Array(self.plan.iter().map(Step::to_value).collect()),
        );
        o.value()
    }
}

impl serde::Serialize for JobConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl serde::Serialize for ResourceConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl serde::Serialize for Config {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        config_value(self).serialize(s)
    }
}

/// Upstream's JSON marshal of `atc.Config`.
pub(crate) fn config_value(c: &Config) -> Value {
    let mut o = Out::default();
    if !c.groups.is_empty() {
        let groups = c
            .groups
            .iter()
            .map(|g| {
                let mut x = Out::default();
                x.put("name", Value::String(g.name.clone()))
                    .strings("jobs", &g.jobs)
                    .strings("resources", &g.resources);
                x.value()
            })
            .collect();
        o.put("groups", Value::Array(groups));
    }
    if !c.var_sources.is_empty() {
        let vs = c
            .var_sources
            .iter()
            .map(|v| {
                let mut x = Out::default();
                x.put("name", Value::String(v.name.clone()))
                    .put("type", Value::String(v.type_.clone()))
                    .put("config", sorted(&v.config));
                x.value()
            })
            .collect();
        o.put("var_sources", Value::Array(vs));
    }
    if !c.resources.is_empty() {
        o.put(
            "resources",
            Value::Array(c.resources.iter().map(ResourceConfig::to_value).collect()),
        );
    }
    if !c.resource_types.is_empty() {
        o.put(
            "resource_types",
            Value::Array(
                c.resource_types
                    .iter()
                    .map(ResourceType::to_value)
                    .collect(),
            ),
        );
    }
    if !c.prototypes.is_empty() {
        o.put(
            "prototypes",
            Value::Array(c.prototypes.iter().map(ResourceType::to_value).collect()),
        );
    }
    if !c.jobs.is_empty() {
        o.put(
            "jobs",
            Value::Array(c.jobs.iter().map(JobConfig::to_value).collect()),
        );
    }
    if let Some(d) = &c.display {
        let mut x = Out::default();
        x.str("background_image", &d.background_image)
            .str("background_filter", &d.background_filter);
        o.put("display", x.value());
    }
    if let Some(u) = &c.user_data {
        o.put("user_data", sorted(u));
    }
    o.value()
}
