//! Property tests: no input makes the config parsers panic, and YAML output round-trips.

use concourse::config::vars::{interpolate, var_names, Reference};
use concourse::config::{
    glob_match, parse_pipeline, parse_task_config, parse_yaml_value, render_template, to_json,
    to_yaml, validate_pipeline, StaticVars, STEP_PRECEDENCE,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "jobs",
    "resources",
    "resource_types",
    "prototypes",
    "groups",
    "var_sources",
    "display",
    "user_data",
    "name",
    "type",
    "source",
    "plan",
    "passed",
    "trigger",
    "version",
    "params",
    "config",
    "platform",
    "run",
    "path",
    "args",
    "inputs",
    "outputs",
    "steps",
    "limit",
    "fail_fast",
    "values",
    "var",
    "max_in_flight",
    "file",
    "image",
    "serial",
    "check_every",
    "tags",
    "caches",
    "ttl",
    "memory",
    "cpu",
    "container_limits",
    "image_resource",
    "build_log_retention",
    "builds",
    "days",
    "background_image",
    "<<",
    "vars",
    "optional",
    "resource",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9 ._:/()-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("((x))"),
            Just("((a:b.c))"),
            Just("every"),
            Just("never"),
            Just("1m"),
            Just("all"),
            Just("linux"),
            Just("1GB")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_string),
        3 => proptest::sample::select(&STEP_PRECEDENCE[..]).prop_map(str::to_string),
        1 => "[a-z_]{1,6}",
    ]
}

/// Random nesting of maps, lists and scalars whose keys are mostly config and step keys.
fn document() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|entries| Value::Object(
                entries.into_iter().collect::<Map<String, Value>>()
            )),
        ]
    })
}

/// Strings that look like other YAML types or need quoting in some position.
const TRICKY: &[&str] = &[
    "yes",
    "~",
    "0x1F",
    "1_000",
    "- a",
    "a: b",
    "#c",
    " lead",
    "trail ",
    "multi\nline\n",
    "two\n\n",
    "\ttab",
    "<<",
    "&a",
    "*a",
    "!tag",
    "%x",
    "@x",
    "`x",
    ".inf",
    "1e3",
    "a\n b",
    "x\r\ny",
    "\u{85}",
    "\u{feff}",
    "'q'",
    "\"dq\"",
    "-c",
    "-",
    "--flag=1",
    "-x: y",
    "${FOO}",
    "a{b}",
    "x,y",
    "a]b",
    "-1",
    "-.5",
    "-y",
    "-:",
    "--",
    "---",
    "...",
    "-#",
    "a:b",
    "http://x:80/",
    "-\n",
    "? x",
    "?x",
    ":x",
    "[a]",
    "{a}",
    "a #b",
    "a#b",
    "1.",
    "+1",
    ".5",
    "0o7",
    "0b1",
    "1e400",
    "2001-01-01",
    "null",
    "NULL",
    "off",
];

fn tricky_key() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::sample::select(TRICKY).prop_map(str::to_string),
    ]
}

/// Arbitrary JSON (any strings and keys, including ones that look like other YAML types).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::String),
        proptest::sample::select(TRICKY).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((tricky_key(), inner), 0..4)
                .prop_map(|e| Value::Object(e.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(c) = parse_pipeline(&bytes) {
            let _ = validate_pipeline(&c);
        }
        let _ = render_template(&bytes, &StaticVars::default());
        let _ = parse_task_config(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        for name in var_names(&text) {
            let _ = Reference::parse(&name);
        }
        let _ = Reference::parse(&text);
        let _ = glob_match(&text, "some-job");
        let _ = concourse::config::path_match(&text, "some-job/x");
        let _ = glob_match(&text, &text);
        let _ = concourse::config::path_match(&text, &text);
    }

    #[test]
    fn yaml_ish_documents_never_panic_and_accepted_ones_round_trip(doc in document()) {
        for text in [to_yaml(&doc), serde_json::to_string(&doc).unwrap()] {
            if let Ok(c) = parse_pipeline(text.as_bytes()) {
                let _ = validate_pipeline(&c);
                let json = to_json(&c);
                let again = parse_pipeline(serde_json::to_string(&json).unwrap().as_bytes());
                prop_assert_eq!(again.as_ref().ok(), Some(&c), "JSON round trip of {}", text);
                let again = parse_pipeline(to_yaml(&json).as_bytes());
                prop_assert_eq!(again.as_ref().ok(), Some(&c), "YAML round trip of {}", text);
            }
            let _ = render_template(text.as_bytes(), &StaticVars::default());
            let _ = parse_task_config(text.as_bytes());
            let vars = serde_json::json!({"x": {"y": 1}, "a": "s"});
            let _ = interpolate(&doc, vars.as_object().unwrap(), true);
        }
    }

    #[test]
    fn rendering_without_vars_keeps_the_document(doc in document()) {
        let text = to_yaml(&doc);
        match render_template(text.as_bytes(), &StaticVars::default()) {
            Ok(rendered) => prop_assert_eq!(
                parse_yaml_value(&rendered).unwrap(),
                parse_yaml_value(text.as_bytes()).unwrap()
            ),
            // A malformed reference such as `((:))` fails rendering, as upstream's does.
            Err(e) => prop_assert!(e.message.starts_with("invalid var '"), "{}", e),
        }
    }

    #[test]
    fn to_yaml_round_trips_arbitrary_json(v in any_json()) {
        let text = to_yaml(&v);
        let back = parse_yaml_value(text.as_bytes());
        prop_assert_eq!(back.as_ref().ok(), Some(&v), "{}", text);
    }
}

#[test]
fn deeply_nested_documents_are_refused_not_crashed() {
    for open in ["[", "{a: ", "- "] {
        let doc = open.repeat(100_000);
        let _ = parse_pipeline(doc.as_bytes());
        let _ = render_template(doc.as_bytes(), &StaticVars::default());
    }
    // Alias bombs are refused instead of expanded.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let err = parse_pipeline(bomb.as_bytes()).unwrap_err();
    assert!(err.message.contains("excessive aliasing"), "{err}");
    // The deepest plan the depth limit lets through still parses, validates and serializes.
    let depth = 97;
    let plan = format!("{}{{get: r}}{}", "{do: [".repeat(depth), "]}".repeat(depth));
    let doc =
        format!("resources: [{{name: r, type: mock}}]\njobs: [{{name: j, plan: [{plan}]}}]\n");
    let config = parse_pipeline(doc.as_bytes()).expect("nested plan within the depth limit");
    assert!(validate_pipeline(&config).errors.is_empty());
    let json = to_json(&config);
    assert_eq!(parse_pipeline(to_yaml(&json).as_bytes()).unwrap(), config);
}
