//! `((var))` interpolation (upstream `vars/`): references, resolvers, interpolation of parsed
//! values, and fly's side of it — `render_template` with the `-v/-y/-i/-l` vars.

use super::emit::to_yaml;
use super::yaml::{self, Duplicates};
use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// `((source:path.field."quoted.field"))`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Reference {
    pub source: String,
    pub path: String,
    pub fields: Vec<String>,
}

impl Reference {
    /// Upstream `ParseReference`.
    pub fn parse(name: &str) -> Result<Reference, VarsError> {
        let mut r = Reference::default();
        let mut input = name;
        if let Some(i) = find_unquoted(input, ':') {
            r.source = input[..i].to_string();
            if r.source.contains('"') {
                return Err(VarsError::InvalidVar(format!(
                    "invalid var '{name}': source must not be quoted"
                )));
            }
            input = &input[i + 1..];
        }
        let mut segments = vec![];
        loop {
            let (seg, rest, more) = match find_unquoted(input, '.') {
                Some(i) => (&input[..i], &input[i + 1..], true),
                None => (input, "", false),
            };
            let seg = seg.trim().replace('"', "");
            if seg.is_empty() {
                return Err(VarsError::InvalidVar(format!(
                    "invalid var '{name}': empty field"
                )));
            }
            segments.push(seg);
            input = rest;
            if !more {
                break;
            }
        }
        r.path = segments.remove(0);
        r.fields = segments;
        Ok(r)
    }

    pub fn without_source(&self) -> Reference {
        Reference {
            source: String::new(),
            ..self.clone()
        }
    }

    /// `source:path` without fields: what upstream tracks as "the var" for redaction.
    pub fn identifier(&self) -> String {
        if self.source.is_empty() {
            self.path.clone()
        } else {
            format!("{}:{}", self.source, self.path)
        }
    }
}

fn find_unquoted(s: &str, needle: char) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        if c == needle && !quoted {
            return Some(i);
        }
        if c == '"' {
            quoted = !quoted;
        }
    }
    None
}

fn segment(seg: &str) -> String {
    if seg.contains([',', '.', ':', '/', ' ']) {
        format!("{seg:?}")
    } else {
        seg.to_string()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.source.is_empty() {
            write!(f, "{}:", self.source)?;
        }
        write!(f, "{}", segment(&self.path))?;
        for field in &self.fields {
            write!(f, ".{}", segment(field))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VarsError {
    #[error("undefined vars: {}", .0.join(", "))]
    Undefined(Vec<String>),
    #[error("missing source '{source_name}' in var: {name}")]
    MissingSource { name: String, source_name: String },
    #[error("missing field '{field}' in var: {name}")]
    MissingField { name: String, field: String },
    #[error("cannot access field '{field}' of non-map value ('{go_type}') from var: {name}")]
    InvalidField {
        name: String,
        field: String,
        go_type: String,
    },
    #[error("cannot interpolate non-primitive value ({go_type}) from var: {name}")]
    InvalidInterpolation { name: String, go_type: String },
    #[error("{0}")]
    InvalidVar(String),
    /// A resolver (credential manager) failed.
    #[error("{0}")]
    Source(String),
}

/// Go's `%T` of a decoded value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A source of var values (static vars, var sources, credential managers).
pub trait Variables {
    /// `Ok(None)` when the var is not defined here; `Err` stops the lookup.
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError>;
    /// The vars this source knows (for "unused vars" checks); empty when unknowable.
    fn list(&self) -> Vec<Reference> {
        vec![]
    }
}

/// Indexes `fields` into a value (upstream `vars.Traverse`).
pub fn traverse(mut val: Value, name: &str, fields: &[String]) -> Result<Value, VarsError> {
    for seg in fields {
        val = match val {
            Value::Object(mut m) => m.remove(seg).ok_or_else(|| VarsError::MissingField {
                name: name.to_string(),
                field: seg.clone(),
            })?,
            other => {
                return Err(VarsError::InvalidField {
                    name: name.to_string(),
                    field: seg.clone(),
                    go_type: go_type(&other).to_string(),
                })
            }
        };
    }
    Ok(val)
}

/// Static vars: only source-less references.
impl Variables for Map<String, Value> {
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError> {
        if !r.source.is_empty() {
            return Ok(None);
        }
        match self.get(&r.path) {
            None => Ok(None),
            Some(v) => traverse(v.clone(), &r.to_string(), &r.fields).map(Some),
        }
    }
    fn list(&self) -> Vec<Reference> {
        self.keys()
            .map(|k| Reference {
                path: k.clone(),
                ..Reference::default()
            })
            .collect()
    }
}

/// The first source that has a var wins (upstream `MultiVars`).
pub struct MultiVars<'a>(pub Vec<&'a dyn Variables>);

impl Variables for MultiVars<'_> {
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError> {
        for v in &self.0 {
            if let Some(found) = v.get(r)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
    fn list(&self) -> Vec<Reference> {
        self.0.iter().flat_map(|v| v.list()).collect()
    }
}

/// `((name:path))` goes to the source called `name` (upstream `NamedVariables`).
pub struct NamedVars<'a>(pub BTreeMap<String, &'a dyn Variables>);

impl Variables for NamedVars<'_> {
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError> {
        if r.source.is_empty() {
            return Ok(None);
        }
        match self.0.get(&r.source) {
            Some(v) => v.get(&r.without_source()),
            None => Err(VarsError::MissingSource {
                name: r.to_string(),
                source_name: r.source.clone(),
            }),
        }
    }
}

fn is_var_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || "-/.:@\"".contains(c) || c.is_alphabetic()
}

/// Every `((name))` in a string, in order (upstream's interpolation regex).
pub fn var_names(s: &str) -> Vec<String> {
    let mut names = vec![];
    let mut i = 0;
    while let Some(off) = s[i..].find("((") {
        let start = i + off + 2;
        let len: usize = s[start..]
            .chars()
            .take_while(|c| is_var_char(*c))
            .map(char::len_utf8)
            .sum();
        if len > 0 && s[start + len..].starts_with("))") {
            names.push(s[start..start + len].to_string());
            i = start + len + 2;
        } else {
            i = i + off + 1;
        }
    }
    names
}

fn is_single_var(s: &str) -> bool {
    s.starts_with("((")
        && s.ends_with("))")
        && s.len() > 4
        && s[2..s.len() - 2].chars().all(is_var_char)
}

/// Interpolation state: which vars were looked up, which were missing.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    /// Identifiers (`source:path`) of every var that resolved.
    pub used: BTreeSet<String>,
    /// References that did not resolve.
    pub missing: BTreeSet<String>,
}

/// Interpolates every string and map key of `value`. With `expect_all_keys`, any var that
/// does not resolve makes the whole call fail with `undefined vars: a, b`.
pub fn interpolate(
    value: &Value,
    vars: &dyn Variables,
    expect_all_keys: bool,
) -> Result<Value, VarsError> {
    interpolate_tracked(value, vars, expect_all_keys, &mut Tracker::default())
}

/// As [`interpolate`], recording the vars used (for redaction) in `tracker`.
pub fn interpolate_tracked(
    value: &Value,
    vars: &dyn Variables,
    expect_all_keys: bool,
    tracker: &mut Tracker,
) -> Result<Value, VarsError> {
    let out = walk(value, vars, tracker)?;
    if expect_all_keys && !tracker.missing.is_empty() {
        return Err(VarsError::Undefined(
            tracker.missing.iter().cloned().collect(),
        ));
    }
    Ok(out)
}

fn lookup(
    name: &str,
    vars: &dyn Variables,
    tracker: &mut Tracker,
) -> Result<Option<Value>, VarsError> {
    let r = Reference::parse(name)?;
    match vars.get(&r) {
        Ok(Some(v)) => {
            tracker.used.insert(r.identifier());
            Ok(Some(v))
        }
        Ok(None) => {
            tracker.missing.insert(r.to_string());
            Ok(None)
        }
        Err(e) => {
            tracker.missing.insert(r.to_string());
            Err(e)
        }
    }
}

fn walk(value: &Value, vars: &dyn Variables, tracker: &mut Tracker) -> Result<Value, VarsError> {
    match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = walk(v, vars, tracker)?;
                let k = match interpolate_string(k, vars, tracker)? {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(VarsError::InvalidInterpolation {
                            name: k.clone(),
                            go_type: go_type(&other).to_string(),
                        })
                    }
                };
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|v| walk(v, vars, tracker))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::String(s) => interpolate_string(s, vars, tracker),
        other => Ok(other.clone()),
    }
}

fn interpolate_string(
    s: &str,
    vars: &dyn Variables,
    tracker: &mut Tracker,
) -> Result<Value, VarsError> {
    let mut text = s.to_string();
    for name in var_names(s) {
        if let Some(found) = lookup(&name, vars, tracker)? {
            if is_single_var(s) {
                return Ok(found);
            }
            let spliced = match &found {
                Value::String(v) => v.clone(),
                Value::Number(n) if !n.is_f64() => n.to_string(),
                other => {
                    return Err(VarsError::InvalidInterpolation {
                        name,
                        go_type: go_type(other).to_string(),
                    })
                }
            };
            text = text.replace(&format!("(({name}))"), &spliced);
        }
    }
    Ok(Value::String(text))
}

/// Static vars given on fly's command line. Build with [`StaticVars::builder`] to get fly's
/// precedence (flags over files, later files over earlier ones).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticVars(pub Map<String, Value>);

impl Variables for StaticVars {
    fn get(&self, r: &Reference) -> Result<Option<Value>, VarsError> {
        Variables::get(&self.0, r)
    }
    fn list(&self) -> Vec<Reference> {
        Variables::list(&self.0)
    }
}

impl StaticVars {
    pub fn builder() -> StaticVarsBuilder {
        StaticVarsBuilder::default()
    }
}

/// Collects `-l` files and `-v`/`-y`/`-i` flags in command-line order.
#[derive(Debug, Default, Clone)]
pub struct StaticVarsBuilder {
    files: Vec<Map<String, Value>>,
    flags: Vec<(Reference, Value)>,
    instance: Vec<(Reference, Value)>,
}

fn split_pair(flag: &str) -> Result<(Reference, &str), ConfigError> {
    let (k, v) = flag.split_once('=').ok_or_else(|| {
        ConfigError::new(format!(
            "invalid variable pair '{flag}' (must be name=value)"
        ))
    })?;
    let r = Reference::parse(k).map_err(|e| ConfigError::new(e.to_string()))?;
    Ok((r, v))
}

impl StaticVarsBuilder {
    /// `-v name=string` (`name` may be dotted: `-v a.b=x` sets field `b` of var `a`).
    pub fn var(&mut self, flag: &str) -> Result<&mut Self, ConfigError> {
        let (r, v) = split_pair(flag)?;
        self.flags.push((r, Value::String(v.to_string())));
        Ok(self)
    }

    /// `-y name=<yaml>`.
    pub fn yaml_var(&mut self, flag: &str) -> Result<&mut Self, ConfigError> {
        let (r, v) = split_pair(flag)?;
        let value = yaml::parse(v.as_bytes(), Duplicates::LastWins)?.0;
        self.flags.push((r, value));
        Ok(self)
    }

    /// `-i name=<yaml>` (instance var; also a var, overriding `-v`/`-y`).
    pub fn instance_var(&mut self, flag: &str) -> Result<&mut Self, ConfigError> {
        let (r, v) = split_pair(flag)?;
        let value = yaml::parse(v.as_bytes(), Duplicates::LastWins)?.0;
        self.instance.push((r, value));
        Ok(self)
    }

    /// `-l file` contents.
    pub fn var_file(&mut self, contents: &[u8]) -> Result<&mut Self, ConfigError> {
        let value = yaml::parse(contents, Duplicates::LastWins)
            .map_err(|e| e.prefixed("could not unmarshal template variables: "))?
            .0;
        match value {
            Value::Object(m) => self.files.push(m),
            Value::Null => self.files.push(Map::new()),
            other => {
                return Err(ConfigError::new(format!(
                    "could not unmarshal template variables: json: cannot unmarshal {} into Go value of type vars.StaticVariables",
                    super::decode::json_type(&other)
                )))
            }
        }
        Ok(self)
    }

    /// The instance vars given with `-i`, expanded (`-i a.b=1` → `{a: {b: 1}}`).
    pub fn instance_vars(&self) -> Map<String, Value> {
        expand(&self.instance)
    }

    pub fn build(&self) -> StaticVars {
        let mut out = Map::new();
        for file in &self.files {
            for (k, v) in file {
                out.insert(k.clone(), v.clone());
            }
        }
        let mut pairs = self.flags.clone();
        pairs.extend(self.instance.iter().cloned());
        for (k, v) in expand(&pairs) {
            out.insert(k, v);
        }
        StaticVars(out)
    }
}

/// Upstream `KVPairs.Expand`: dotted references build nested maps.
fn expand(pairs: &[(Reference, Value)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (r, v) in pairs {
        upsert(&mut out, &r.path, &r.fields, v.clone());
    }
    out
}

fn upsert(out: &mut Map<String, Value>, path: &str, fields: &[String], value: Value) {
    match out.get_mut(path) {
        Some(Value::Object(node)) if !fields.is_empty() => {
            upsert(node, &fields[0], &fields[1..], value)
        }
        _ => {
            out.insert(path.to_string(), construct(fields, value));
        }
    }
}

fn construct(fields: &[String], value: Value) -> Value {
    fields.iter().rev().fold(value, |acc, f| {
        let mut m = Map::new();
        m.insert(f.clone(), acc);
        Value::Object(m)
    })
}

/// fly-side rendering: rejects duplicate keys, substitutes the vars it knows and leaves the
/// rest as `((x))` for the server. Returns the rendered YAML document.
pub fn render_template(doc: &[u8], vars: &StaticVars) -> Result<Vec<u8>, ConfigError> {
    render_template_with(doc, vars)
}

/// As [`render_template`] with any resolver — e.g. the `set_pipeline` step's
/// `MultiVars(vec![&instance_vars, &vars, &first_var_file, ...])`, where precedence differs
/// from fly's.
pub fn render_template_with(doc: &[u8], vars: &dyn Variables) -> Result<Vec<u8>, ConfigError> {
    yaml::parse(doc, Duplicates::Reject)
        .map_err(|e| e.prefixed("error parsing yaml before applying templates: "))?;
    let (value, _) = yaml::parse(doc, Duplicates::LastWins)?;
    let rendered = interpolate(&value, vars, false).map_err(|e| ConfigError::new(e.to_string()))?;
    Ok(to_yaml(&rendered).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn references_parse_sources_paths_and_quoted_fields() {
        let r = Reference::parse("vs:\"var:with.and_colon\".some_key").unwrap();
        assert_eq!(r.source, "vs");
        assert_eq!(r.path, "var:with.and_colon");
        assert_eq!(r.fields, vec!["some_key"]);
        assert_eq!(r.to_string(), "vs:\"var:with.and_colon\".some_key");
        assert_eq!(
            Reference::parse("a..b").unwrap_err().to_string(),
            "invalid var 'a..b': empty field"
        );
        assert_eq!(Reference::parse(".:x").unwrap().source, ".");
    }

    #[test]
    fn whole_string_vars_keep_their_type_and_spliced_ones_must_be_primitive() {
        let v = vars(json!({"n": 3, "m": {"k": "v"}, "s": "str", "f": 1.5}));
        assert_eq!(interpolate(&json!("((n))"), &v, true).unwrap(), json!(3));
        assert_eq!(
            interpolate(&json!("((m.k))-((n))"), &v, true).unwrap(),
            json!("v-3")
        );
        assert_eq!(
            interpolate(&json!({"((s))": "((m))"}), &v, true).unwrap(),
            json!({"str": {"k": "v"}})
        );
        assert_eq!(
            interpolate(&json!("x-((m))"), &v, true)
                .unwrap_err()
                .to_string(),
            "cannot interpolate non-primitive value (map[string]interface {}) from var: m"
        );
        assert_eq!(
            interpolate(&json!(["((a))", "((b)) ((n))"]), &v, true)
                .unwrap_err()
                .to_string(),
            "undefined vars: a, b"
        );
        assert_eq!(
            interpolate(&json!("((a))"), &v, false).unwrap(),
            json!("((a))")
        );
        assert_eq!(
            interpolate(&json!("((m.x))"), &v, false)
                .unwrap_err()
                .to_string(),
            "missing field 'x' in var: m.x"
        );
        assert_eq!(
            interpolate(&json!("((s.x))"), &v, false)
                .unwrap_err()
                .to_string(),
            "cannot access field 'x' of non-map value ('string') from var: s.x"
        );
    }

    #[test]
    fn named_and_chained_sources_resolve_and_record_used_vars() {
        let cluster = vars(json!({"a": "cluster-a", "shared": "cluster"}));
        let team = vars(json!({"shared": "team", "t": {"k": "v"}}));
        let vs = vars(json!({"secret": "s3cr3t"}));
        let mut by_name: BTreeMap<String, &dyn Variables> = BTreeMap::new();
        by_name.insert("vs".into(), &vs);
        let named = NamedVars(by_name);
        let chain = MultiVars(vec![&named, &team, &cluster]);
        let mut tracker = Tracker::default();
        let out = interpolate_tracked(
            &json!({"x": "((vs:secret))", "y": "((shared))-((a))", "z": "((t.k))", "w": "((missing))"}),
            &chain,
            false,
            &mut tracker,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"x": "s3cr3t", "y": "team-cluster-a", "z": "v", "w": "((missing))"})
        );
        assert_eq!(
            tracker.used.iter().collect::<Vec<_>>(),
            vec!["a", "shared", "t", "vs:secret"]
        );
        assert_eq!(
            interpolate(&json!("((nope:x))"), &chain, false)
                .unwrap_err()
                .to_string(),
            "missing source 'nope' in var: nope:x"
        );
    }

    #[test]
    fn var_names_follow_upstream_pattern() {
        assert_eq!(
            var_names("a ((x)) (((y))) ((no space)) ((.:\"local.var\"))"),
            vec!["x", "y", ".:\"local.var\""]
        );
    }

    #[test]
    fn flags_override_files_and_later_files_override_earlier() {
        let mut b = StaticVars::builder();
        b.var_file(b"a: file1\nb: file1\n").unwrap();
        b.var_file(b"b: file2\nc: {x: 1}\n").unwrap();
        b.var("a=flag").unwrap();
        b.var("d.e=nested").unwrap();
        b.yaml_var("f=[1, 2]").unwrap();
        b.instance_var("g=true").unwrap();
        let v = b.build();
        assert_eq!(
            Value::Object(v.0),
            json!({"a": "flag", "b": "file2", "c": {"x": 1}, "d": {"e": "nested"}, "f": [1, 2], "g": true})
        );
        assert_eq!(
            b.var("novalue").unwrap_err().message,
            "invalid variable pair 'novalue' (must be name=value)"
        );
    }

    #[test]
    fn render_template_substitutes_known_vars_and_keeps_unknown() {
        let mut b = StaticVars::builder();
        b.var("name=world").unwrap();
        b.yaml_var("flag=true").unwrap();
        let out = render_template(
            b"a: hello-((name))\nb: ((flag))\nc: ((unknown))\n",
            &b.build(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a: hello-world\nb: true\nc: ((unknown))\n"
        );
        let err = render_template(b"a: 1\na: 2\n", &StaticVars::default()).unwrap_err();
        assert_eq!(
            err.message,
            "error parsing yaml before applying templates: yaml: unmarshal errors:\n  line 2: mapping key \"a\" already defined at line 1"
        );
    }
}
