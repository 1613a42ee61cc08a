//! Argument syntaxes naming pipelines and jobs (spec §1.2): `PIPELINE[/k:v,...]`,
//! `PIPELINE[/vars]/JOB`, and how instance vars are shown and sent.

use crate::proto::instance_vars::{flatten, to_query};
use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

/// A pipeline name plus optional instance vars (upstream `atc.PipelineRef`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineRef {
    pub name: String,
    pub instance_vars: Option<Map<String, Value>>,
}

impl PipelineRef {
    pub fn named(name: &str) -> PipelineRef {
        PipelineRef {
            name: name.to_string(),
            instance_vars: None,
        }
    }

    /// Parses `-p` values: text before the first `/` is the name, the rest instance vars.
    pub fn parse(s: &str) -> Result<PipelineRef> {
        match s.split_once('/') {
            None => Ok(PipelineRef::named(s)),
            Some((name, vars)) => Ok(PipelineRef {
                name: name.into(),
                instance_vars: Some(parse_instance_vars(vars)?),
            }),
        }
    }

    /// From an API object's `name` and `instance_vars`.
    pub fn from_api(name: &str, vars: Option<&Value>) -> PipelineRef {
        let instance_vars = vars
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .cloned();
        PipelineRef {
            name: name.into(),
            instance_vars,
        }
    }

    /// Query pairs identifying the instance: `vars.<path>=<json>`, sorted by path.
    pub fn query(&self) -> Vec<(String, String)> {
        to_query(self.instance_vars.as_ref())
    }

    /// `name/k:v,k2:v2` (upstream `PipelineRef.String()`).
    pub fn display(&self) -> String {
        let flat = flatten(self.instance_vars.as_ref());
        if flat.is_empty() {
            return self.name.clone();
        }
        let parts: Vec<String> = flat
            .into_iter()
            .map(|(k, v)| format!("{k}:{}", display_value(&v)))
            .collect();
        format!("{}/{}", self.name, parts.join(","))
    }
}

/// One YAML scalar or flow value as fly reads it (empty is null).
fn parse_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    super::parse_yaml_value(text.as_bytes()).map_err(|e| e.to_string())
}

/// Strings print unquoted unless they would re-parse as something else.
fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let reparsed = parse_yaml(s).ok();
            let needs_quotes = s.is_empty()
                || s.contains([',', ':', '"', '\''])
                || reparsed.as_ref() != Some(&Value::String(s.clone()));
            if needs_quotes {
                serde_json::to_string(s).unwrap_or_default()
            } else {
                s.clone()
            }
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Splits a dotted var path; segments may be double-quoted to contain `.`.
pub fn parse_path(s: &str) -> Result<Vec<String>> {
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                segs.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        bail!("invalid var path '{s}': unterminated quote");
    }
    if cur.is_empty() && !was_quoted && !segs.is_empty() {
        bail!("invalid var path '{s}': empty segment");
    }
    segs.push(cur);
    if segs.iter().any(String::is_empty) && !was_quoted {
        bail!("invalid var path '{s}': empty segment");
    }
    Ok(segs)
}

/// Sets `value` at `path` inside `map`, creating intermediate maps.
pub fn set_path(map: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert(first.clone(), value);
        return;
    }
    let entry = map
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(inner) = entry {
        set_path(inner, rest, value);
    }
}

/// Index of the first char satisfying `stop` outside of quotes (and, for values, outside
/// of flow collections).
fn find_unquoted(s: &str, quotes: &str, flow_aware: bool, stop: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    let (mut braces, mut brackets) = (0i32, 0i32);
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c == stop && (!flow_aware || (braces == 0 && brackets == 0)) {
            return Some(i);
        }
        if flow_aware {
            match c {
                '{' => braces += 1,
                '}' => braces -= 1,
                '[' => brackets += 1,
                ']' => brackets -= 1,
                _ => {}
            }
        }
        if quotes.contains(c) {
            quote = Some(c);
        }
    }
    None
}

/// `k:v,k2:v2` → nested map; values are YAML, keys dotted paths.
pub fn parse_instance_vars(s: &str) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut rest = s;
    let mut any = false;
    while let Some(colon) = find_unquoted(rest, "\"", false, ':') {
        let raw_key = &rest[..colon];
        let path = parse_path(raw_key)?;
        rest = &rest[colon + 1..];
        let (raw_value, more) = match find_unquoted(rest, "\"'", true, ',') {
            Some(comma) => (&rest[..comma], Some(&rest[comma + 1..])),
            None => (rest, None),
        };
        let value =
            parse_yaml(raw_value).map_err(|e| anyhow!("invalid value for key '{raw_key}': {e}"))?;
        set_path(&mut out, &path, value);
        any = true;
        match more {
            Some(m) => rest = m,
            None => break,
        }
    }
    if !any {
        bail!("instance vars should be formatted as <key1:value1>(,<key2:value2>)");
    }
    Ok(out)
}

/// `PIPELINE[/vars]/NAME` (jobs, resources): the last `/` splits off the name.
pub fn parse_pipeline_child(s: &str, what: &str) -> Result<(PipelineRef, String)> {
    let (pipeline, child) = s
        .rsplit_once('/')
        .ok_or_else(|| anyhow!("argument format should be <pipeline>/<{what}>"))?;
    if pipeline.is_empty() || child.is_empty() {
        bail!("argument format should be <pipeline>/<{what}>");
    }
    Ok((PipelineRef::parse(pipeline)?, child.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pipeline_flag_splits_name_and_instance_vars() {
        let r = PipelineRef::parse("p/branch:main,n:1").unwrap();
        assert_eq!(r.name, "p");
        assert_eq!(
            Value::Object(r.instance_vars.clone().unwrap()),
            json!({"branch": "main", "n": 1})
        );
        assert_eq!(r.display(), "p/branch:main,n:1");
        assert_eq!(
            PipelineRef::parse("plain").unwrap(),
            PipelineRef::named("plain")
        );
    }

    #[test]
    fn instance_var_values_may_be_quoted_and_keys_dotted() {
        let r = PipelineRef::parse(r#"p/a.b:1,s:"x,y:z",l:[1,2]"#).unwrap();
        assert_eq!(
            Value::Object(r.instance_vars.clone().unwrap()),
            json!({"a": {"b": 1}, "s": "x,y:z", "l": [1, 2]})
        );
        assert_eq!(r.display(), r#"p/a.b:1,l:[1,2],s:"x,y:z""#);
        assert!(PipelineRef::parse("p/nocolon").is_err());
    }

    #[test]
    fn strings_that_look_like_other_types_are_quoted_in_display() {
        let r = PipelineRef::from_api("p", Some(&json!({"v": "1", "b": "true", "s": "ok"})));
        assert_eq!(r.display(), r#"p/b:"true",s:ok,v:"1""#);
    }

    #[test]
    fn job_flag_splits_at_the_last_slash() {
        let (p, j) = parse_pipeline_child("p/branch:main/build", "job").unwrap();
        assert_eq!(p.display(), "p/branch:main");
        assert_eq!(j, "build");
        let (p, j) = parse_pipeline_child("p/j", "job").unwrap();
        assert_eq!((p.name.as_str(), j.as_str()), ("p", "j"));
        assert_eq!(
            parse_pipeline_child("nojob", "job")
                .unwrap_err()
                .to_string(),
            "argument format should be <pipeline>/<job>"
        );
    }

    #[test]
    fn instance_vars_go_on_the_wire_as_json_per_flattened_path() {
        let r = PipelineRef::parse("p/branch:main,a.b:1").unwrap();
        assert_eq!(
            r.query(),
            vec![
                ("vars.a.b".to_string(), "1".to_string()),
                ("vars.branch".to_string(), "\"main\"".to_string())
            ]
        );
        assert!(PipelineRef::named("p").query().is_empty());
    }

    #[test]
    fn var_paths_allow_quoted_segments() {
        assert_eq!(parse_path(r#"a."b.c".d"#).unwrap(), vec!["a", "b.c", "d"]);
        assert!(parse_path("a..b").is_err());
    }
}
