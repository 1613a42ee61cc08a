//! The one place fly turns YAML into JSON values and back. Upstream fly goes through
//! `sigs.k8s.io/yaml` (JSON round-trip, go-yaml v2 emitter), so output has sorted keys,
//! sequences at their parent key's indentation and quoted ambiguous strings.
//!
//! Kept self-contained (rather than `config::to_yaml`) so flyrc, vars and output work on
//! their own; the shape matches what the config module emits.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Parses one YAML document into a JSON value. An empty document is `null`.
pub fn parse(text: &str) -> Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.into_iter().next() {
        None => Ok(Value::Null),
        Some(doc) => to_json(doc),
    }
}

fn to_json(y: Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null | Yaml::BadValue => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(s) => {
            let f = parse_real(&s).ok_or_else(|| format!("invalid number: {s}"))?;
            Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::String(s))
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Array(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".into(),
                    other => return Err(format!("unsupported map key: {other:?}")),
                };
                m.insert(key, to_json(v)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) => return Err("YAML aliases are not supported".into()),
    })
}

fn parse_real(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Renders a value as YAML with sorted map keys, ending with a newline.
pub fn emit(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn write_map(out: &mut String, m: &Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for k in keys {
        let v = &m[k];
        let key = string_scalar(k, indent);
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{}{key}:\n", pad(indent)));
                write_map(out, inner, indent + 2);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push_str(&format!("{}{key}:\n", pad(indent)));
                write_seq(out, items, indent);
            }
            _ => out.push_str(&format!(
                "{}{key}: {}\n",
                pad(indent),
                scalar(v, indent + 2)
            )),
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        let mut nested = String::new();
        match item {
            Value::Object(m) if !m.is_empty() => write_map(&mut nested, m, indent + 2),
            Value::Array(a) if !a.is_empty() => write_seq(&mut nested, a, indent + 2),
            _ => {
                out.push_str(&format!("{}- {}\n", pad(indent), scalar(item, indent + 2)));
                continue;
            }
        }
        // The first line of the nested block moves up beside the dash.
        out.push_str(&pad(indent));
        out.push_str("- ");
        out.push_str(&nested[indent + 2..]);
    }
}

/// A scalar (or empty collection) in flow position; `indent` is where a block scalar's
/// lines start.
fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_scalar(s, indent),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string_scalar(s: &str, indent: usize) -> String {
    if s.contains('\n') && literal_ok(s) {
        let body = s.strip_suffix('\n').unwrap_or(s);
        let chomp = if s.ends_with('\n') { "" } else { "-" };
        let mut out = format!("|{chomp}");
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad(indent));
                out.push_str(line);
            }
        }
        return out;
    }
    if plain_ok(s) {
        return s.to_string();
    }
    if s.chars().all(|c| !c.is_control()) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    serde_json::to_string(s).unwrap_or_default()
}

fn literal_ok(s: &str) -> bool {
    !s.ends_with("\n\n")
        && !s.starts_with(' ')
        && !s.starts_with('\n')
        && s.lines().all(|l| !l.ends_with(' ') && !l.ends_with('\t'))
        && s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control())
}

/// Whether a string can be written unquoted and still read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s || s.chars().any(|c| c.is_control()) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    !resolves_to_non_string(s)
}

/// YAML 1.1 (what go-yaml and upstream read) resolves these plain scalars to non-strings.
fn resolves_to_non_string(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | "null"
            | "~"
            | "<<"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s).replace('_', "");
    if body.is_empty() {
        return false;
    }
    if body.parse::<f64>().is_ok()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
    {
        return true;
    }
    if let Some(hex) = body.strip_prefix("0x") {
        if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return true;
        }
    }
    if let Some(bin) = body.strip_prefix("0b") {
        if !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1') {
            return true;
        }
    }
    // Sexagesimal (1:30) and timestamps (2006-01-02...).
    let b = s.as_bytes();
    if b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return true;
    }
    if s.contains(':')
        && s.split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emits_sorted_keys_and_sequences_at_parent_indent() {
        let v = json!({"jobs": [{"name": "j", "plan": [{"get": "r"}]}], "a": {"b": 1}});
        assert_eq!(
            emit(&v),
            "a:\n  b: 1\njobs:\n- name: j\n  plan:\n  - get: r\n"
        );
    }

    #[test]
    fn quotes_strings_that_would_read_back_as_other_types() {
        let v = json!({"a": "true", "b": "123", "c": "", "d": "x: y", "e": "plain", "f": "it's: x", "g": 1.5});
        assert_eq!(
            emit(&v),
            "a: 'true'\nb: '123'\nc: ''\nd: 'x: y'\ne: plain\nf: 'it''s: x'\ng: 1.5\n"
        );
    }

    #[test]
    fn multiline_strings_become_literal_blocks() {
        let v = json!({"c": {"s": "line1\nline2\n"}, "d": "a\nb"});
        assert_eq!(
            emit(&v),
            "c:\n  s: |\n    line1\n    line2\nd: |-\n  a\n  b\n"
        );
    }

    #[test]
    fn round_trips_through_the_parser() {
        let v = json!({"list": [[1, 2], {"k": null}], "empty": {}, "none": [], "s": "a\nb\n", "q": "yes", "n": -3});
        assert_eq!(parse(&emit(&v)).unwrap(), v);
    }
}
