//! Block-style YAML output with sorted keys (get-pipeline, format-pipeline, diffs, fly's
//! rendered templates). A string is written plain only when it would parse back as that same
//! string; otherwise it is quoted, so `parse(to_yaml(v)) == v` for every JSON value.

use super::yaml_scalar::resolve_plain;
use serde_json::Value;
use std::fmt::Write;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, value, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, value, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn sorted_entries(v: &Value) -> Vec<(&String, &Value)> {
    let entries: Vec<_> = v
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    // go-yaml's order is not guaranteed to be a total order for every input, and std's sort
    // may panic on such comparators, so merge-sort by hand.
    merge_sort(entries)
}

fn merge_sort<'a>(mut v: Vec<(&'a String, &'a Value)>) -> Vec<(&'a String, &'a Value)> {
    if v.len() <= 1 {
        return v;
    }
    let right = v.split_off(v.len() / 2);
    let (left, right) = (merge_sort(v), merge_sort(right));
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        if key_order(b.0, a.0) == std::cmp::Ordering::Less {
            out.extend(r.next());
        } else {
            out.extend(l.next());
        }
    }
    out.extend(l);
    out.extend(r);
    out
}

/// go-yaml v2's map key order (what fly prints): letters compare as characters, runs of
/// digits compare as numbers (`a9` before `a10`), and a non-letter sorts before a letter.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Writes map entries; the first line is assumed to be already indented by the caller.
fn write_map(out: &mut String, v: &Value, ind: usize) {
    for (i, (k, val)) in sorted_entries(v).into_iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        let k = key(k);
        // YAML limits implicit keys to 1024 characters; a longer one is written explicitly.
        if k.chars().count() > 1000 {
            out.push_str("? ");
            out.push_str(&k);
            out.push('\n');
            indent(out, ind);
        } else {
            out.push_str(&k);
        }
        out.push(':');
        write_value_after_key(out, val, ind);
    }
}

fn write_value_after_key(out: &mut String, val: &Value, ind: usize) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            indent(out, ind + 2);
            write_map(out, val, ind + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            indent(out, ind);
            write_seq(out, val, ind);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, ind + 2));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, v: &Value, ind: usize) {
    let items = v.as_array().map(|a| a.as_slice()).unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, item, ind + 2),
            Value::Array(a) if !a.is_empty() => write_seq(out, item, ind + 2),
            other => {
                out.push_str(&scalar(other, ind + 2));
                out.push('\n');
            }
        }
    }
}

fn key(k: &str) -> String {
    if k == "<<" || !plain_ok(k) {
        quote(k)
    } else {
        k.to_string()
    }
}

fn scalar(v: &Value, ind: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or_default();
                let s = format!("{f:?}");
                // `1e21` resolves as a float, but `inf`/`NaN` cannot occur in a JSON value.
                s
            } else {
                n.to_string()
            }
        }
        Value::String(s) => string(s, ind),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn string(s: &str, ind: usize) -> String {
    if plain_ok(s) {
        return s.to_string();
    }
    if let Some(block) = literal_block(s, ind) {
        return block;
    }
    quote(s)
}

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s || s.contains('\n') || s.contains('\r') || s.contains('\t') {
        return false;
    }
    if !matches!(resolve_plain(s), Ok(Value::String(ref r)) if r == s) {
        return false;
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or(' ');
    let second = chars.next();
    if ",[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    // `-x` (like `-c` in task args) is a plain scalar; `- x`, a lone `-` and `?`/`:` starts
    // are quoted.
    if first == '-' && !matches!(second, Some(c) if c != ' ') {
        return false;
    }
    if first == '?' || first == ':' || s.starts_with("---") || s.starts_with("...") {
        // Also document markers: `---`/`...` at the start of a line end or start a document.
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    s.chars().all(|c| {
        !c.is_control() && c != '\u{feff}' && c != '\u{2028}' && c != '\u{2029}' && c != '\u{85}'
    }) && s != "<<"
}

/// A literal block for multi-line text (task scripts stay readable in get-pipeline).
fn literal_block(s: &str, ind: usize) -> Option<String> {
    if !s.contains('\n') || s.starts_with([' ', '\n', '\t']) {
        return None;
    }
    if s.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}')
    }) {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    if body
        .split('\n')
        .any(|l| !l.is_empty() && l.trim().is_empty())
    {
        return None;
    }
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let pad = " ".repeat(ind.max(1));
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}') => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: shortest repr, exponent form beyond 1e21.
pub fn go_float_g(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map(|d| ('-', d)).unwrap_or(('+', e));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: Value) {
        let text = to_yaml(&v);
        let (back, _) =
            super::super::yaml::parse(text.as_bytes(), super::super::yaml::Duplicates::Reject)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, v, "{text}");
    }

    #[test]
    fn strings_that_look_like_other_types_are_quoted() {
        assert_eq!(
            to_yaml(
                &json!({"a": "yes", "b": "1", "c": "null", "d": "x: y", "e": "*x", "f": "plain"})
            ),
            "a: \"yes\"\nb: \"1\"\nc: \"null\"\nd: \"x: y\"\ne: \"*x\"\nf: plain\n"
        );
    }

    #[test]
    fn nested_values_round_trip() {
        roundtrip(
            json!({"jobs": [{"name": "a", "plan": [{"get": "x", "passed": ["a", "b"]}, {"in_parallel": {"steps": []}}]}],
            "s": "line1\nline2\n", "t": "a\n\n", "u": "no newline\nend", "e": {}, "l": [[1, [2]], {"k": null}], "f": 1.5, "g": -0.0}),
        );
        roundtrip(json!("top"));
        roundtrip(json!([]));
        roundtrip(json!({"<<": 1, "~": "~", "": ""}));
    }

    #[test]
    fn keys_longer_than_yamls_implicit_key_limit_round_trip() {
        // Found by fuzz/fuzz_targets/yaml_parse.rs: a key of over 1024 characters was
        // written as an implicit key, which YAML (and our parser) refuses.
        let long = "k: \n".repeat(300);
        let plain = "p".repeat(1500);
        roundtrip(json!({&long: 1, "a": {&plain: {&long: [1, {&long: null}], "b": []}}}));
        roundtrip(json!([{&long: "x", &plain: {}}, {&plain: [[1]]}]));
    }

    #[test]
    fn keys_sort_like_go_yaml_v2() {
        let mut keys = vec!["a10", "a9", "b", "_x", "A", "a"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, vec!["_x", "A", "a", "a9", "a10", "b"]);
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float_g(1.5), "1.5");
        assert_eq!(go_float_g(1e21), "1e+21");
        assert_eq!(go_float_g(1e-7), "1e-07");
    }
}
