//! The YAML parser and the pipeline config loader (`src/config/yaml.rs`, `parse_pipeline`).
//!
//! Properties, for any bytes:
//! - `parse_yaml_value` never panics, and what it accepts stays inside the alias-expansion
//!   bound (at most 1,000,000 nodes, string bytes within twice `max_expanded_bytes`);
//! - an accepted value survives `to_yaml` → `parse_yaml_value` unchanged (what
//!   `get-pipeline` prints reads back as the same document);
//! - a pipeline the server would save (parsed, no validation errors) survives `to_json` →
//!   parse and `to_json` → `to_yaml` → parse unchanged, and `to_json` is stable
//!   (`set-pipeline` of `get-pipeline`'s output is a no-op).
#![no_main]

use concourse::config::{
    max_expanded_bytes, parse_pipeline, parse_yaml_value, to_json, to_yaml, validate_pipeline,
    Config,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// go-yaml's node limit after alias expansion (`MAX_NODES` in src/config/yaml.rs).
const MAX_NODES: usize = 1_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = parse_yaml_value(data) {
        check_bound(data.len(), &value);
        let text = to_yaml(&value);
        match parse_yaml_value(text.as_bytes()) {
            Ok(back) => assert_eq!(
                back, value,
                "to_yaml output reads back differently:\n{text}"
            ),
            Err(e) => panic!("to_yaml output does not parse: {e}\n{text}"),
        }
    }
    // Only what the server would save: a config with validation errors (unknown task config
    // fields, say, which the model keeps for the message but JSON drops) never reaches JSON.
    if let Ok(config) = parse_pipeline(data) {
        if validate_pipeline(&config).errors.is_empty() {
            check_round_trips(&config);
        }
    }
});

fn check_bound(len: usize, value: &Value) {
    let (mut nodes, mut bytes) = (0usize, 0usize);
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        nodes += 1;
        match v {
            Value::String(s) => bytes += s.len(),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (k, v) in map {
                    nodes += 1;
                    bytes += k.len();
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    assert!(nodes <= MAX_NODES, "{nodes} nodes from {len} bytes");
    let max = max_expanded_bytes(len);
    assert!(
        bytes <= 2 * max,
        "{bytes} bytes of strings from {len} bytes of YAML (bound {max})"
    );
}

fn check_round_trips(config: &Config) {
    let json = to_json(config);
    let text = serde_json::to_vec(&json).expect("to_json serializes");
    let from_json = match parse_pipeline(&text) {
        Ok(c) => c,
        Err(e) => panic!("to_json output does not parse: {e}\n{json}"),
    };
    assert_eq!(
        &from_json, config,
        "parse → to_json → parse changed the config"
    );
    assert_eq!(to_json(&from_json), json, "to_json is not stable");
    let yaml = to_yaml(&json);
    match parse_pipeline(yaml.as_bytes()) {
        Ok(c) => assert_eq!(&c, config, "to_yaml → parse changed the config\n{yaml}"),
        Err(e) => panic!("to_yaml output does not parse: {e}\n{yaml}"),
    }
}
