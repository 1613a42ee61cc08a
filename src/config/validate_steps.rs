//! Step validation (upstream `atc/step_validator.go`): walks a job's plan with a context
//! path (`jobs.build.plan.do[0].get(repo)`) and records errors and warnings.

use super::duration::parse_go_duration;
use super::glob::path_match;
use super::steps::{Line, MaxInFlight, Step, StepConfig};
use super::validate::{validate_identifier_parts, with_line};
use super::Config;
use crate::proto::api::ConfigWarning;
use std::collections::HashSet;

pub(crate) struct StepValidator<'a> {
    config: &'a Config,
    context: Vec<String>,
    pub warnings: Vec<ConfigWarning>,
    pub errors: Vec<String>,
    seen_get_names: HashSet<String>,
    local_var_scopes: Vec<HashSet<String>>,
    line: Option<usize>,
}

/// Go's `%+q` of a string (ASCII-only quoting).
pub(crate) fn go_quote_ascii(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (' '..='~').contains(&c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn unknown_fields_message<'k>(keys: impl Iterator<Item = &'k String>) -> String {
    let mut names: Vec<&String> = keys.collect();
    names.sort();
    let quoted: Vec<String> = names.iter().map(|n| go_quote_ascii(n)).collect();
    format!("unknown fields [{}]", quoted.join(" "))
}

impl<'a> StepValidator<'a> {
    pub fn new(config: &'a Config, context: Vec<String>, line: Line) -> Self {
        StepValidator {
            config,
            context,
            warnings: vec![],
            errors: vec![],
            seen_get_names: HashSet::new(),
            local_var_scopes: vec![HashSet::new()],
            line: line.0,
        }
    }

    fn annotate(&self, message: &str) -> String {
        format!("{}: {}", self.context.concat(), message)
    }

    fn error(&mut self, message: &str) {
        let m = with_line(self.annotate(message), self.line);
        self.errors.push(m);
    }

    fn push(&mut self, ctx: impl Into<String>) {
        self.context.push(ctx.into());
    }

    fn pop(&mut self) {
        self.context.pop();
    }

    fn identifier(&mut self, name: &str) {
        match validate_identifier_parts(name, &self.context) {
            Err(e) => {
                let m = with_line(e, self.line);
                self.errors.push(m);
            }
            Ok(Some(w)) => self.warnings.push(w),
            Ok(None) => {}
        }
    }

    /// Upstream `Validate(step)`: unknown keys first, then the step itself.
    pub fn validate_step(&mut self, step: &Step) {
        let outer = self.line;
        if step.line.0.is_some() {
            self.line = step.line.0;
        }
        if !step.unknown_fields.is_empty() {
            self.error(&unknown_fields_message(step.unknown_fields.keys()));
        }
        self.validate_config(&step.config);
        self.line = outer;
    }

    pub fn validate_config(&mut self, config: &StepConfig) {
        match config {
            StepConfig::Task(t) => {
                self.push(format!(".task({})", t.name));
                self.identifier(&t.name);
                if t.config.is_none() && t.config_path.is_empty() {
                    self.error("must specify either `file:` or `config:`");
                }
                if t.config.is_some() && !t.config_path.is_empty() {
                    self.error("must specify one of `file:` or `config:`, not both");
                }
                if let Some(c) = &t.config {
                    if (!c.rootfs_uri.is_empty() || c.image_resource.is_some())
                        && !t.image_artifact_name.is_empty()
                    {
                        self.warnings.push(ConfigWarning {
                            kind: "pipeline".into(),
                            message: self.annotate("specifies image: on the step but also specifies an image under config: - the image: on the step takes precedence"),
                        });
                    }
                }
                if t.hermetic {
                    self.warnings.push(ConfigWarning {
                        kind: "pipeline".into(),
                        message: self.annotate(
                            "specifies `hermetic:` only works against worker containerd runtime",
                        ),
                    });
                }
                if let Some(c) = &t.config {
                    self.push(".config");
                    if !c.unknown_fields.is_empty() {
                        self.error(&unknown_fields_message(c.unknown_fields.keys()));
                    }
                    if let Err(errors) = c.validate() {
                        for e in errors {
                            self.error(&e);
                        }
                    }
                    self.pop();
                }
                self.pop();
            }
            StepConfig::Get(g) => {
                self.push(format!(".get({})", g.name));
                self.identifier(&g.name);
                if !self.seen_get_names.insert(g.name.clone()) {
                    self.error("repeated name");
                }
                let resource = g.resource_name().to_string();
                let config = self.config;
                if config.resource(&resource).is_none() {
                    self.error(&format!("unknown resource '{resource}'"));
                }
                self.push(".passed");
                for job_glob in &g.passed {
                    let mut found_job = false;
                    for job in &config.jobs {
                        if !path_match(job_glob, &job.name) {
                            continue;
                        }
                        found_job = true;
                        let mut interacts = false;
                        job.walk(&mut |s| match s {
                            StepConfig::Get(x) if x.resource_name() == resource => interacts = true,
                            StepConfig::Put(x) if x.resource_name() == resource => interacts = true,
                            _ => {}
                        });
                        if !interacts {
                            let name = job.name.clone();
                            self.error(&format!(
                                "job '{name}' does not interact with resource '{resource}'"
                            ));
                        }
                    }
                    if !found_job {
                        self.error(&format!("no matching job(s) for '{job_glob}'"));
                    }
                }
                self.pop();
                self.pop();
            }
            StepConfig::Put(p) => {
                self.push(format!(".put({})", p.name));
                self.identifier(&p.name);
                let resource = p.resource_name().to_string();
                if self.config.resource(&resource).is_none() {
                    self.error(&format!("unknown resource '{resource}'"));
                }
                self.pop();
            }
            StepConfig::Run(r) => {
                self.push(format!(".run({}.{})", r.type_, r.message));
                match validate_identifier_parts(&r.message, &self.context) {
                    Err(e) => self.error(&e),
                    Ok(Some(w)) => self.error(&w.message),
                    Ok(None) => {}
                }
                if !self.config.prototypes.iter().any(|p| p.name == r.type_) {
                    self.error(&format!("unknown prototype '{}'", r.type_));
                }
                self.pop();
            }
            StepConfig::SetPipeline(s) => {
                self.push(format!(".set_pipeline({})", s.name));
                self.identifier(&s.name);
                if s.file.is_empty() {
                    self.error("no file specified");
                }
                self.pop();
            }
            StepConfig::LoadVar(l) => {
                self.push(format!(".load_var({})", l.name));
                self.identifier(&l.name);
                self.declare_local_var(&l.name);
                if l.file.is_empty() {
                    self.error("no file specified");
                }
                self.pop();
            }
            StepConfig::Try(s) => {
                self.push(".try");
                self.validate_step(s);
                self.pop();
            }
            StepConfig::Do(d) => {
                self.push(".do");
                for (i, s) in d.steps.iter().enumerate() {
                    self.push(format!("[{i}]"));
                    self.validate_step(s);
                    self.pop();
                }
                self.pop();
            }
            StepConfig::InParallel(p) => {
                self.push(".in_parallel");
                for (i, s) in p.steps.iter().enumerate() {
                    self.push(format!(".steps[{i}]"));
                    self.validate_step(s);
                    self.pop();
                }
                self.pop();
            }
            StepConfig::Across(a) => {
                self.push(".across");
                self.local_var_scopes.push(HashSet::new());
                if a.vars.is_empty() {
                    self.error("no vars specified");
                }
                for (i, v) in a.vars.iter().enumerate() {
                    self.push(format!("[{i}]"));
                    self.declare_local_var(&v.var);
                    self.push(".max_in_flight");
                    if let Some(MaxInFlight::Limit(n)) = v.max_in_flight {
                        if n <= 0 {
                            self.error("must be greater than 0");
                        }
                    }
                    self.pop();
                    self.pop();
                }
                self.validate_config(&a.step);
                self.local_var_scopes.pop();
                self.pop();
            }
            StepConfig::Timeout(t) => {
                self.validate_config(&t.step);
                self.push(".timeout");
                if parse_go_duration(&t.duration).is_err() {
                    self.error(&format!("invalid duration '{}'", t.duration));
                }
                self.pop();
            }
            StepConfig::Retry(r) => {
                self.validate_config(&r.step);
                self.push(".attempts");
                if r.attempts <= 0 {
                    self.error("must be greater than 0");
                }
                self.pop();
            }
            StepConfig::OnSuccess(h)
            | StepConfig::OnFailure(h)
            | StepConfig::OnAbort(h)
            | StepConfig::OnError(h)
            | StepConfig::Ensure(h) => {
                self.validate_config(&h.step);
                let key = match config {
                    StepConfig::OnSuccess(_) => ".on_success",
                    StepConfig::OnFailure(_) => ".on_failure",
                    StepConfig::OnAbort(_) => ".on_abort",
                    StepConfig::OnError(_) => ".on_error",
                    _ => ".ensure",
                };
                self.push(key);
                self.validate_step(&h.hook);
                self.pop();
            }
        }
    }

    fn declare_local_var(&mut self, name: &str) {
        let current = self.local_var_scopes.len() - 1;
        if self.local_var_scopes[current].contains(name) {
            self.error("repeated var name");
        } else if self.local_var_scopes.iter().any(|s| s.contains(name)) {
            self.warnings.push(ConfigWarning {
                kind: "var_shadowed".into(),
                message: self.annotate(&format!("shadows local var '{name}'")),
            });
        }
        self.local_var_scopes[current].insert(name.to_string());
    }
}
