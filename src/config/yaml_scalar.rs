//! Plain YAML scalars resolved as go-yaml v2 does (`resolve.go`), shared by the parser
//! and the emitter (which must quote strings that would re-read as something else).

use serde_json::{Number, Value};

/// Resolves a plain scalar like go-yaml v2 (`resolve.go`): YAML 1.1 booleans, `~`/null, Go
/// base-prefixed integers with underscores, floats in YAML style, everything else a string.
pub fn resolve_plain(s: &str) -> Result<Value, String> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false))
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Err("json: unsupported value: +Inf".into())
        }
        "-.inf" | "-.Inf" | "-.INF" => return Err("json: unsupported value: -Inf".into()),
        ".nan" | ".NaN" | ".NAN" => return Err("json: unsupported value: NaN".into()),
        _ => {}
    }
    let first = s.as_bytes()[0];
    let float = |text: &str| {
        // Go's ParseFloat fails on overflow, and go-yaml then keeps the string.
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
    };
    if first == b'.' {
        // go-yaml tries `strconv.ParseFloat` on the text as written.
        if is_yaml_float(s) {
            if let Some(v) = float(s) {
                return Ok(v);
            }
        }
        return Ok(Value::String(s.to_string()));
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Ok(Value::String(s.to_string()));
    }
    let plain = s.replace('_', "");
    if let Some(v) = parse_go_int(&plain) {
        return Ok(v);
    }
    if is_yaml_float(&plain) {
        if let Some(v) = float(&plain) {
            return Ok(v);
        }
    }
    Ok(Value::String(s.to_string()))
}

/// `strconv.ParseInt(s, 0, 64)` then `ParseUint`, plus go-yaml's own `0b` handling.
fn parse_go_int(s: &str) -> Option<Value> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u128 + 1 {
            return Some(Value::from((-(magnitude as i128)) as i64));
        }
        None
    } else if magnitude <= i64::MAX as u128 {
        Some(Value::from(magnitude as i64))
    } else if magnitude <= u64::MAX as u128 {
        Some(Value::from(magnitude as u64))
    } else {
        None
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
pub fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}
