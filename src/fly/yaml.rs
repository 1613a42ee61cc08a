//! The one place fly turns YAML into JSON values and back. Upstream fly goes through
//! `sigs.k8s.io/yaml` (go-yaml v2 semantics, JSON round-trip), so this delegates to the
//! config module, which reads and writes YAML exactly that way for the server too.

use serde_json::Value;

/// Parses one YAML document into a JSON value (YAML 1.1 scalars, like go-yaml v2).
pub fn parse(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    crate::config::parse_yaml_value(text.as_bytes()).map_err(|e| e.to_string())
}

/// Renders a value as YAML with sorted map keys, ending with a newline.
pub fn emit(value: &Value) -> String {
    let mut out = crate::config::to_yaml(value);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
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
    fn strings_that_would_read_back_as_other_types_are_quoted() {
        let v = json!({"a": "true", "b": "123", "c": "", "e": "plain"});
        let text = emit(&v);
        assert!(text.contains("e: plain\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), v);
    }

    #[test]
    fn round_trips_through_the_parser() {
        let v = json!({"list": [[1, 2], {"k": null}], "empty": {}, "none": [], "s": "a\nb\n", "q": "yes", "n": -3});
        assert_eq!(parse(&emit(&v)).unwrap(), v);
        assert_eq!(parse("").unwrap(), Value::Null);
    }
}
