//! Pipeline validation (upstream `atc/configvalidate/validate.go`, `atc/configwarning.go`):
//! errors are grouped per section as `invalid <section>:\n\t<msg>\n`, warnings are returned
//! alongside. Where the source line is known, ` (line N)` is appended to a message; upstream's
//! wording before it is unchanged.

use super::glob::{path_match, Glob};
use super::steps::StepConfig;
use super::validate_steps::StepValidator;
use super::vars::var_names;
use super::{Config, JobConfig, Validation};
use crate::proto::api::ConfigWarning;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub(crate) fn with_line(msg: String, line: Option<usize>) -> String {
    match line {
        Some(n) => format!("{msg} (line {n})"),
        None => msg,
    }
}

fn format_err(section: &str, messages: &[String]) -> String {
    let indented: Vec<String> = messages
        .join("\n")
        .split('\n')
        .map(|l| format!("\t{l}"))
        .collect();
    format!("invalid {}:\n{}\n", section, indented.join("\n"))
}

/// `[\p{Ll}\p{Lt}\p{Lm}\p{Lo}\d]` with Go's ASCII-only `\d`.
fn is_id_letter(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    c.is_ascii_digit()
        || matches!(
            c.general_category(),
            G::LowercaseLetter | G::TitlecaseLetter | G::ModifierLetter | G::OtherLetter
        )
}

/// Upstream `ValidateIdentifier` with its context given as parts (joined without separator);
/// `Err` for the empty identifier, a warning for an invalid one.
pub(crate) fn validate_identifier_parts(
    identifier: &str,
    context: &[String],
) -> Result<Option<ConfigWarning>, String> {
    let ctx = context.concat();
    if identifier.is_empty() {
        return Err(format!("{ctx}: identifier cannot be an empty string"));
    }
    let n = context.len();
    if n >= 2
        && (context[n - 1].contains("set_pipeline") || context[n - 1].contains("task"))
        && context[n - 2] == ".across"
    {
        return Ok(None);
    }
    let warn = |reason: String| {
        Ok(Some(ConfigWarning {
            kind: "invalid_identifier".into(),
            message: format!("{ctx}: '{identifier}' is not a valid identifier: {reason}"),
        }))
    };
    if identifier.bytes().all(|b| b.is_ascii_digit()) {
        return warn("cannot be just numbers".into());
    }
    let mut chars = identifier.chars();
    let first = chars.next().unwrap_or(' ');
    if !is_id_letter(first) {
        return warn("must start with a lowercase letter or a number".into());
    }
    if let Some(bad) = chars.find(|c| !(is_id_letter(*c) || matches!(c, '-' | '_' | '.'))) {
        return warn(format!("illegal character '{bad}'"));
    }
    Ok(None)
}

/// Checks a team or pipeline name (ctx `team` / `pipeline`) like upstream's
/// `atc.ValidateIdentifier`: `Err` when empty, a warning when not a valid identifier.
pub fn validate_identifier(ctx: &str, name: &str) -> Result<Option<ConfigWarning>, String> {
    validate_identifier_parts(name, &[ctx.to_string()])
}

/// A location: `<section>.<name>`, or `<section>[i]` when unnamed.
fn identifier(section: &str, index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{section}[{index}]")
    } else {
        format!("{section}.{name}")
    }
}

#[derive(Default)]
struct Section {
    errors: Vec<String>,
    warnings: Vec<ConfigWarning>,
}

impl Section {
    fn ident(&mut self, name: &str, ctx: &str, line: Option<usize>) {
        match validate_identifier_parts(name, &[ctx.to_string()]) {
            Err(e) => self.errors.push(with_line(e, line)),
            Ok(Some(w)) => self.warnings.push(w),
            Ok(None) => {}
        }
    }
}

pub(crate) fn validate(c: &Config) -> Validation {
    let mut v = Validation::default();
    let mut add = |section: &str, s: Section| {
        v.warnings.extend(s.warnings);
        if !s.errors.is_empty() {
            v.errors.push(format_err(section, &s.errors));
        }
    };
    add("groups", validate_groups(c));
    add("resources", validate_resources(c));
    let mut seen_types = HashMap::new();
    add(
        "resource types",
        validate_types(c, "resource_types", &mut seen_types),
    );
    add(
        "prototypes",
        validate_types(c, "prototypes", &mut seen_types),
    );
    add("variable sources", validate_var_sources(c));
    add("jobs", validate_jobs(c));
    add("display config", validate_display(c));
    let mut cycle = Section::default();
    if let Some(e) = validate_cycle(c) {
        cycle.errors.push(e);
    }
    add("jobs", cycle);
    v
}

fn line_of(c: &Config, ptr: &str) -> Option<usize> {
    c.source_lines.0.line(ptr)
}

fn validate_groups(c: &Config) -> Section {
    let mut s = Section::default();
    let mut grouped: Vec<(&str, bool)> = c.jobs.iter().map(|j| (j.name.as_str(), false)).collect();
    let mut counts: Vec<(&str, usize)> = vec![];
    for (i, group) in c.groups.iter().enumerate() {
        let line = line_of(c, &format!("/groups/{i}"));
        let ident = identifier("groups", i, &group.name);
        s.ident(&group.name, &ident, line);
        match counts.iter_mut().find(|(n, _)| *n == group.name) {
            Some((_, n)) => *n += 1,
            None => counts.push((&group.name, 1)),
        }
        for job_glob in &group.jobs {
            let Ok(g) = Glob::compile(job_glob) else {
                s.errors.push(with_line(
                    format!(
                        "invalid glob expression '{}' for group '{}'",
                        job_glob, group.name
                    ),
                    line,
                ));
                continue;
            };
            let mut matched = false;
            for (name, is_grouped) in grouped.iter_mut() {
                if g.matches(name) {
                    *is_grouped = true;
                    matched = true;
                }
            }
            if !matched {
                s.errors.push(with_line(
                    format!("no jobs match '{}' for group '{}'", job_glob, group.name),
                    line,
                ));
            }
        }
        for resource in &group.resources {
            if c.resource(resource).is_none() {
                s.errors.push(with_line(
                    format!("group '{}' has unknown resource '{}'", group.name, resource),
                    line,
                ));
            }
        }
    }
    for (name, count) in counts {
        if count > 1 {
            s.errors.push(format!(
                "group '{name}' appears {count} times. Duplicate names are not allowed."
            ));
        }
    }
    if !c.groups.is_empty() {
        for (name, is_grouped) in grouped {
            if !is_grouped {
                let line = c.job(name).and_then(|j| j.line.0);
                s.errors
                    .push(with_line(format!("job '{name}' belongs to no group"), line));
            }
        }
    }
    s
}

fn validate_resources(c: &Config) -> Section {
    let mut s = Section::default();
    let mut names: HashMap<&str, String> = HashMap::new();
    for (i, r) in c.resources.iter().enumerate() {
        let line = r.line.0;
        let loc = format!("resources[{i}]");
        let ident = identifier("resources", i, &r.name);
        s.ident(&r.name, &ident, line);
        if let Some(other) = names.get(r.name.as_str()) {
            s.errors.push(with_line(
                format!("{other} and {loc} have the same name ('{}')", r.name),
                line,
            ));
        } else if !r.name.is_empty() {
            names.insert(&r.name, loc);
        }
        if r.name.is_empty() {
            s.errors
                .push(with_line(format!("{ident} has no name"), line));
        }
        if r.type_.is_empty() {
            s.errors
                .push(with_line(format!("{ident} has no type"), line));
        }
    }
    let mut used = std::collections::HashSet::new();
    for job in &c.jobs {
        job.walk(&mut |st| match st {
            StepConfig::Get(g) => {
                used.insert(g.resource_name().to_string());
            }
            StepConfig::Put(p) => {
                used.insert(p.resource_name().to_string());
            }
            _ => {}
        });
    }
    for r in &c.resources {
        if !used.contains(&r.name) {
            s.errors.push(with_line(
                format!("resource '{}' is not used", r.name),
                r.line.0,
            ));
        }
    }
    s
}

fn validate_types(c: &Config, section: &str, seen: &mut HashMap<String, String>) -> Section {
    let mut s = Section::default();
    let types = if section == "prototypes" {
        &c.prototypes
    } else {
        &c.resource_types
    };
    for (i, t) in types.iter().enumerate() {
        let line = t.line.0;
        let loc = format!("{section}[{i}]");
        let ident = identifier(section, i, &t.name);
        s.ident(&t.name, &ident, line);
        if let Some(other) = seen.get(&t.name) {
            s.errors.push(with_line(
                format!("{other} and {loc} have the same name ('{}')", t.name),
                line,
            ));
        } else if !t.name.is_empty() {
            seen.insert(t.name.clone(), loc);
        }
        if t.name.is_empty() {
            s.errors
                .push(with_line(format!("{ident} has no name"), line));
        }
        if t.type_.is_empty() {
            s.errors
                .push(with_line(format!("{ident} has no type"), line));
        }
    }
    s
}

const CREDENTIAL_MANAGERS: [&str; 8] = [
    "conjur",
    "credhub",
    "dummy",
    "idtoken",
    "kubernetes",
    "secretsmanager",
    "ssm",
    "vault",
];

fn validate_var_sources(c: &Config) -> Section {
    let mut s = Section::default();
    let mut names: HashMap<&str, String> = HashMap::new();
    for (i, vs) in c.var_sources.iter().enumerate() {
        let line = vs.line.0;
        let loc = format!("var_sources[{i}]");
        let ident = identifier("var_sources", i, &vs.name);
        s.ident(&vs.name, &ident, line);
        if !CREDENTIAL_MANAGERS.contains(&vs.type_.as_str()) {
            s.errors.push(with_line(
                format!("unknown credential manager type: {}", vs.type_),
                line,
            ));
            continue;
        }
        if !matches!(
            vs.type_.as_str(),
            "vault" | "dummy" | "ssm" | "secretsmanager" | "idtoken"
        ) {
            s.errors.push(with_line(
                format!(
                    "credential manager type {} is not supported in pipeline yet",
                    vs.type_
                ),
                line,
            ));
        }
        if let Some(other) = names.get(vs.name.as_str()) {
            s.errors.push(with_line(
                format!("{other} and {loc} have the same name ('{}')", vs.name),
                line,
            ));
        }
        names.insert(&vs.name, loc);
        match credential_manager_check(&vs.type_, &vs.config) {
            Ok(()) => {}
            Err(CredsProblem::Create(why)) => s.errors.push(with_line(
                format!("failed to create credential manager {}: {}", vs.name, why),
                line,
            )),
            Err(CredsProblem::Invalid(why)) => s.errors.push(with_line(
                format!("credential manager {} is invalid: {}", vs.name, why),
                line,
            )),
        }
    }
    if let Err(pending) = order_var_sources(c) {
        s.errors.push(format!(
            "failed to order by dependency: could not resolve inter-dependent var sources: {}",
            pending.join(", ")
        ));
    }
    s
}

enum CredsProblem {
    Create(String),
    Invalid(String),
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The checks of upstream's credential manager factories that need no network.
fn credential_manager_check(kind: &str, config: &Value) -> Result<(), CredsProblem> {
    match kind {
        "dummy" => {
            let Value::Object(m) = config else {
                return Err(CredsProblem::Create(format!(
                    "invalid dummy credential manager config: {}",
                    go_type_name(config)
                )));
            };
            match m.get("vars") {
                Some(Value::Object(_)) => Ok(()),
                other => Err(CredsProblem::Create(format!(
                    "invalid vars config: {}",
                    other.map(go_type_name).unwrap_or("<nil>")
                ))),
            }
        }
        "idtoken" => match super::idtoken::parse_idtoken_config(config) {
            Ok(_) => Ok(()),
            Err(super::idtoken::IdTokenProblem::Create(why)) => Err(CredsProblem::Create(why)),
            Err(super::idtoken::IdTokenProblem::Invalid(why)) => Err(CredsProblem::Invalid(why)),
        },
        "ssm" | "secretsmanager" => {
            let mut allowed = vec![
                "access_key",
                "secret_key",
                "session_token",
                "region",
                "pipeline_secret_template",
                "team_secret_template",
            ];
            allowed.push(if kind == "ssm" {
                "shared_path"
            } else {
                "shared_secret_template"
            });
            let m = mapstructure_keys(config, &allowed)?;
            let has = |k: &str| {
                m.get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            if !has("access_key") && !has("secret_key") && !has("session_token") {
                return Ok(());
            }
            if !has("access_key") {
                return Err(CredsProblem::Invalid(
                    "must provide aws access key id".into(),
                ));
            }
            if !has("secret_key") {
                return Err(CredsProblem::Invalid(
                    "must provide aws secret access key".into(),
                ));
            }
            Ok(())
        }
        "vault" => {
            let Value::Object(_) = config else {
                return Err(CredsProblem::Create("invalid vault config format".into()));
            };
            let m = mapstructure_keys(config, &VAULT_KEYS)?;
            let url = m.get("url").and_then(Value::as_str).unwrap_or("");
            // A `((var))` in the URL is resolved later; only literal URLs can be judged now.
            if !url.contains("((") {
                let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
                if scheme != "http" && scheme != "https" {
                    return Err(CredsProblem::Invalid(format!(
                        "invalid scheme \"{scheme}\": must be http or https"
                    )));
                }
                let host = url.split_once("://").map(|(_, r)| r).unwrap_or("");
                if host.split(['/', ':', '?']).next().unwrap_or("").is_empty() {
                    return Err(CredsProblem::Invalid("URL must specify a host".into()));
                }
            }
            let has = |k: &str| {
                m.get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            if has("client_token") || has("client_token_path") || has("auth_backend") {
                Ok(())
            } else {
                Err(CredsProblem::Invalid(
                    "must configure client token or auth backend".into(),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// mapstructure keys of upstream's `VaultManager` (untagged fields match their Go name).
const VAULT_KEYS: [&str; 25] = [
    "url",
    "path_prefix",
    "lookup_templates",
    "shared_path",
    "namespace",
    "login_timeout",
    "query_timeout",
    "enable_kv_mount_cache",
    "disable_srv_lookup",
    "ca_cert",
    "cacertfile",
    "capath",
    "clientcertfile",
    "clientkeyfile",
    "client_cert",
    "client_key",
    "server_name",
    "insecure_skip_verify",
    "client_token",
    "client_token_path",
    "auth_backend",
    "auth_backend_max_ttl",
    "auth_retry_max",
    "auth_retry_initial",
    "auth_params",
];

/// go-viper/mapstructure with `ErrorUnused`: keys match case-insensitively; others are an
/// error. Returns the config with keys lower-cased.
fn mapstructure_keys(
    config: &Value,
    allowed: &[&str],
) -> Result<serde_json::Map<String, Value>, CredsProblem> {
    let m = match config {
        Value::Object(m) => m.clone(),
        Value::Null => serde_json::Map::new(),
        other => {
            return Err(CredsProblem::Create(format!(
                "decoding failed due to the following error(s):\n\n'' expected a map or struct, got \"{}\"",
                match other {
                    Value::Array(_) => "slice",
                    Value::String(_) => "string",
                    Value::Bool(_) => "bool",
                    _ => "float64",
                }
            )))
        }
    };
    let mut invalid: Vec<&String> = m
        .keys()
        .filter(|k| !allowed.contains(&k.to_lowercase().as_str()))
        .collect();
    if !invalid.is_empty() {
        invalid.sort();
        let names: Vec<&str> = invalid.iter().map(|k| k.as_str()).collect();
        return Err(CredsProblem::Create(format!(
            "decoding failed due to the following error(s):\n\n'' has invalid keys: {}",
            names.join(", ")
        )));
    }
    Ok(m.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect())
}

fn config_var_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.extend(var_names(s)),
        Value::Array(a) => a.iter().for_each(|x| config_var_names(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.extend(var_names(k));
                config_var_names(x, out);
            }
        }
        _ => {}
    }
}

/// Upstream `VarSourceConfigs.OrderByDependency`: the names left pending on failure.
pub fn order_var_sources(c: &Config) -> Result<Vec<String>, Vec<String>> {
    let mut ordered: Vec<String> = vec![];
    let mut added: BTreeMap<String, bool> = BTreeMap::new();
    let mut pending: Vec<(String, Vec<String>)> = vec![];
    for vs in &c.var_sources {
        let mut names = vec![];
        config_var_names(&vs.config, &mut names);
        let deps: Vec<String> = names
            .iter()
            .filter_map(|n| {
                let parts: Vec<&str> = n.split(':').collect();
                (parts.len() > 1).then(|| parts[0].to_string())
            })
            .collect();
        if deps.iter().all(|d| added.contains_key(d)) {
            ordered.push(vs.name.clone());
            added.insert(vs.name.clone(), true);
        } else {
            pending.push((vs.name.clone(), deps));
            continue;
        }
        let mut left = vec![];
        for (name, deps) in pending.drain(..) {
            if deps.iter().all(|d| added.contains_key(d)) {
                ordered.push(name.clone());
                added.insert(name, true);
            } else {
                left.push((name, deps));
            }
        }
        pending = left;
    }
    if pending.is_empty() {
        Ok(ordered)
    } else {
        Err(pending.into_iter().map(|(n, _)| n).collect())
    }
}

fn validate_jobs(c: &Config) -> Section {
    let mut s = Section::default();
    if c.jobs.is_empty() {
        s.errors
            .push("jobs: pipeline must contain at least one job".into());
        return s;
    }
    let mut names: HashMap<&str, String> = HashMap::new();
    for (i, job) in c.jobs.iter().enumerate() {
        let line = job.line.0;
        let loc = format!("jobs[{i}]");
        let ident = identifier("jobs", i, &job.name);
        s.ident(&job.name, &ident, line);
        if let Some(other) = names.get(job.name.as_str()) {
            s.errors.push(with_line(
                format!("{other} and {loc} have the same name ('{}')", job.name),
                line,
            ));
        } else if !job.name.is_empty() {
            names.insert(&job.name, loc);
        }
        if job.name.is_empty() {
            s.errors
                .push(with_line(format!("{ident} has no name"), line));
        }
        validate_retention(job, &ident, &mut s);
        let mut validator = StepValidator::new(c, vec![ident.clone(), ".plan".into()], job.line);
        validator.validate_config(&job.step_config());
        s.warnings.extend(validator.warnings);
        s.errors.extend(validator.errors);
    }
    s
}

fn validate_retention(job: &JobConfig, ident: &str, s: &mut Section) {
    let line = job.line.0;
    if job.build_logs_to_retain != 0 {
        s.warnings.push(ConfigWarning {
            kind: "deprecated_field".into(),
            message: format!(
                "{ident}.build_logs_to_retain is deprecated. Use build_log_retention instead."
            ),
        });
    }
    if job.build_log_retention.is_some() && job.build_logs_to_retain != 0 {
        s.errors.push(with_line(
            format!("{ident} can't use both build_log_retention and build_logs_to_retain"),
            line,
        ));
    } else if job.build_logs_to_retain < 0 {
        s.errors.push(with_line(
            format!(
                "{ident} has negative build_logs_to_retain: {}",
                job.build_logs_to_retain
            ),
            line,
        ));
    }
    if let Some(r) = &job.build_log_retention {
        if r.builds < 0 {
            s.errors.push(with_line(
                format!(
                    "{ident} has negative build_log_retention.builds: {}",
                    r.builds
                ),
                line,
            ));
        }
        if r.days < 0 {
            s.errors.push(with_line(
                format!("{ident} has negative build_log_retention.days: {}", r.days),
                line,
            ));
        }
        if r.minimum_succeeded_builds < 0 {
            s.errors.push(with_line(
                format!(
                    "{ident} has negative build_log_retention.min_success_builds: {}",
                    r.minimum_succeeded_builds
                ),
                line,
            ));
        }
        if r.builds > 0 && r.minimum_succeeded_builds > r.builds {
            s.errors.push(with_line(
                format!(
                    "{ident} has build_log_retention.min_success_builds: {} greater than build_log_retention.min_success_builds: {}",
                    r.minimum_succeeded_builds, r.builds
                ),
                line,
            ));
        }
    }
}

fn validate_display(c: &Config) -> Section {
    let mut s = Section::default();
    let Some(d) = &c.display else { return s };
    let line = line_of(c, "/display");
    let image = &d.background_image;
    match go_url_scheme(image) {
        Err(()) => s.errors.push(with_line(
            format!("background_image is not a valid URL: {image}"),
            line,
        )),
        Ok(scheme) => match scheme.as_str() {
            "" | "http" | "https" => {}
            _ => s.errors.push(with_line(
                "background_image scheme must be either http, https or relative".into(),
                line,
            )),
        },
    }
    s
}

/// The scheme Go's `url.Parse` would find (lower-cased), or `Err` where it fails.
fn go_url_scheme(raw: &str) -> Result<String, ()> {
    if raw.chars().any(|c| (c as u32) < 0x20 || c == '\u{7f}') {
        return Err(());
    }
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err(()),
            ':' => return Ok(raw[..i].to_ascii_lowercase()),
            _ => return Ok(String::new()),
        }
    }
    Ok(String::new())
}

fn validate_cycle(c: &Config) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Visiting,
        Visited,
    }
    fn detect(j: &JobConfig, visited: &mut HashMap<String, State>, c: &Config) -> Option<String> {
        match visited.get(&j.name) {
            Some(State::Visiting) => {
                return Some(with_line(
                    format!("pipeline contains a cycle that starts at Job '{}'", j.name),
                    j.line.0,
                ))
            }
            Some(State::Visited) => return None,
            None => {}
        }
        visited.insert(j.name.clone(), State::Visiting);
        let mut passed: Vec<String> = vec![];
        j.walk(&mut |s| {
            if let StepConfig::Get(g) = s {
                passed.extend(g.passed.iter().cloned());
            }
        });
        for glob in &passed {
            for next in &c.jobs {
                if path_match(glob, &next.name) {
                    if let Some(e) = detect(next, visited, c) {
                        return Some(e);
                    }
                }
            }
        }
        visited.insert(j.name.clone(), State::Visited);
        None
    }
    for job in &c.jobs {
        let mut visited = HashMap::new();
        if let Some(e) = detect(job, &mut visited, c) {
            return Some(e);
        }
    }
    None
}
