//! Instance vars on the wire (atc-api.md §1.3): a pipeline instance is named in a query by
//! `vars=<json object>` and/or `vars.<dotted.path>=<json>`; fly sends the dotted form.

use serde_json::{Map, Value};

/// The instance vars a query names; None when it names none (the non-instanced pipeline).
/// The error says which var is malformed.
pub fn from_query(query: &str) -> Result<Option<Map<String, Value>>, String> {
    let mut vars: Option<Map<String, Value>> = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "vars" {
            let parsed: Value =
                serde_json::from_str(&v).map_err(|e| format!("malformed instance vars: {e}"))?;
            let Value::Object(obj) = parsed else {
                return Err("malformed instance vars: not an object".into());
            };
            vars.get_or_insert_with(Map::new).extend(obj);
        } else if let Some(path) = k.strip_prefix("vars.") {
            let value: Value = serde_json::from_str(&v)
                .map_err(|e| format!("malformed instance var '{path}': {e}"))?;
            insert_path(vars.get_or_insert_with(Map::new), path, value)?;
        }
    }
    Ok(vars)
}

fn insert_path(map: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), String> {
    let malformed = || format!("malformed instance var '{path}'");
    let segments = split_path(path).ok_or_else(malformed)?;
    let (last, parents) = segments.split_last().ok_or_else(malformed)?;
    let mut at = map;
    for seg in parents {
        let entry = at
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        at = entry.as_object_mut().ok_or_else(malformed)?;
    }
    at.insert(last.clone(), value);
    Ok(())
}

/// Splits a dotted path; a segment may be a JSON string, so it can hold `.` (as
/// [`flatten`] writes it).
fn split_path(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = path;
    loop {
        let (seg, after) = if rest.starts_with('"') {
            let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            let seg = de.next()?.ok()?;
            (seg, &rest[de.byte_offset()..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        out.push(seg);
        match after.strip_prefix('.') {
            Some(r) => rest = r,
            None if after.is_empty() => return Some(out),
            None => return None,
        }
    }
}

/// Query pairs naming the instance: `vars.<path>=<json>`, sorted by path.
pub fn to_query(vars: Option<&Map<String, Value>>) -> Vec<(String, String)> {
    flatten(vars)
        .into_iter()
        .map(|(path, v)| {
            (
                format!("vars.{path}"),
                serde_json::to_string(&v).unwrap_or_default(),
            )
        })
        .collect()
}

/// Nested maps as dotted paths, sorted; a segment holding `.`, `:`, `"`, `/` or `,` is
/// double-quoted. Non-map values (lists too) are leaves.
pub fn flatten(vars: Option<&Map<String, Value>>) -> Vec<(String, Value)> {
    fn walk(prefix: &str, m: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
        for (k, v) in m {
            let path = if prefix.is_empty() {
                path_segment(k)
            } else {
                format!("{prefix}.{}", path_segment(k))
            };
            match v {
                Value::Object(inner) if !inner.is_empty() => walk(&path, inner, out),
                _ => out.push((path, v.clone())),
            }
        }
    }
    let mut out = Vec::new();
    if let Some(m) = vars {
        walk("", m, &mut out);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn path_segment(k: &str) -> String {
    if k.contains(['.', ':', '"', '/', ',']) || k.is_empty() {
        serde_json::to_string(k).unwrap_or_default()
    } else {
        k.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_and_dotted_forms_merge() {
        let q = "vars=%7B%22a%22%3A1%7D&vars.b.c=%22x%22";
        let vars = from_query(q).expect("parses").map(Value::Object);
        assert_eq!(vars, Some(json!({"a": 1, "b": {"c": "x"}})));
        assert_eq!(from_query("limit=3").expect("parses"), None);
        for bad in ["vars=nope", "vars=%5B1%5D", "vars.a=%7B"] {
            assert!(from_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dotted_query_round_trips() {
        let vars = json!({"branch": "main", "a": {"b": 1, "c.d": true}});
        let pairs = to_query(vars.as_object());
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        assert_eq!(
            from_query(&q).expect("parses").map(Value::Object),
            Some(vars)
        );
    }
}
