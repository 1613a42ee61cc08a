//! The pipeline validator (`src/config/validate*.rs`) behind every parse mode.
//!
//! Properties, for any bytes:
//! - the three parse modes nest: what `--strict` accepts the server accepts as the same
//!   config, and what the server accepts the lenient mode accepts as the same config;
//! - `validate_pipeline` never panics and returns its findings as values: each error is one
//!   section formatted as upstream's `invalid <section>:\n\t<msg>\n`, each warning has a
//!   kind and a message;
//! - validation depends on the config, not on how it was written: a valid config read back
//!   from its own JSON validates the same (no errors, equal warnings), up to ` (line N)`.
#![no_main]

use concourse::config::{parse_pipeline, parse_pipeline_with, to_json, validate_pipeline};
use concourse::config::{Config, ParseMode, Validation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = parse_pipeline_with(data, ParseMode::Strict);
    let server = parse_pipeline_with(data, ParseMode::Server);
    let lenient = parse_pipeline_with(data, ParseMode::Lenient);
    if let Ok(c) = &strict {
        assert_eq!(
            server.as_ref().ok(),
            Some(c),
            "strict accepted, server did not agree"
        );
    }
    if let Ok(c) = &server {
        assert_eq!(
            lenient.as_ref().ok(),
            Some(c),
            "server accepted, lenient did not agree"
        );
    }
    for config in [&strict, &server, &lenient].into_iter().flatten() {
        check(config);
    }
});

fn check(config: &Config) {
    let validation = validate_pipeline(config);
    for e in &validation.errors {
        assert!(
            e.starts_with("invalid ") && e.contains(":\n\t") && e.ends_with('\n'),
            "malformed validation error {e:?}"
        );
    }
    for w in &validation.warnings {
        assert!(
            !w.kind.is_empty() && !w.message.is_empty(),
            "empty warning {w:?}"
        );
    }
    let json = serde_json::to_vec(&to_json(config)).expect("to_json serializes");
    let again = match parse_pipeline(&json) {
        Ok(c) => c,
        Err(e) => panic!("to_json output does not parse: {e}"),
    };
    // A config without errors is what the server saves and serves as JSON; read back, it
    // validates the same. (With errors, JSON may drop what they were about: unknown task
    // config fields are kept in the model for the message, not in `to_json`.)
    if validation.errors.is_empty() {
        assert_eq!(
            without_lines(&validate_pipeline(&again)),
            without_lines(&validation),
            "the same config validates differently when read from its JSON"
        );
    }
}

/// Errors and warnings with every ` (line N)` removed, in their order.
fn without_lines(v: &Validation) -> (Vec<String>, Vec<(String, String)>) {
    let errors = v.errors.iter().map(|e| strip_lines(e)).collect();
    let warnings = v
        .warnings
        .iter()
        .map(|w| (w.kind.clone(), strip_lines(&w.message)))
        .collect();
    (errors, warnings)
}

fn strip_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(" (line ") {
        let after = &rest[i + " (line ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}
