//! The per-section diff `set-pipeline` shows between the stored config and the new one
//! (both as upstream's config JSON). Entries are matched by name and compared by their
//! YAML, so `300` and `300.0` are equal.

use super::ui;
use super::yaml;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

/// (config key, section heading, entry label), after `groups`.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("var_sources", "variable source:", "variable source"),
    ("resources", "resources:", "resource"),
    ("resource_types", "resource types:", "resource type"),
    ("jobs", "jobs:", "job"),
];

/// Integral floats become integers so JSON/YAML number drift is not a change.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        _ => v.clone(),
    }
}

fn entries<'a>(config: &'a Value, key: &str) -> Vec<&'a Value> {
    config
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn to_yaml(v: &Value) -> String {
    yaml::emit(&normalize(v))
}

fn is_empty(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

enum Change<'a> {
    Changed(&'a Value, &'a Value),
    Removed(&'a Value),
    Added(&'a Value),
}

/// Groups also count as changed when they moved.
fn group_changes<'a>(old: &[&'a Value], new: &[&'a Value]) -> Vec<Change<'a>> {
    let mut changes = Vec::new();
    for (i, g) in old.iter().enumerate() {
        match new.iter().position(|n| name_of(n) == name_of(g)) {
            None => changes.push(Change::Removed(g)),
            Some(j) => {
                if to_yaml(g) != to_yaml(new[j]) {
                    changes.push(Change::Changed(g, new[j]));
                }
                if i != j {
                    changes.push(Change::Changed(g, new[j]));
                }
            }
        }
    }
    for g in new {
        if !old.iter().any(|o| name_of(o) == name_of(g)) {
            changes.push(Change::Added(g));
        }
    }
    changes
}

fn named_changes<'a>(old: &[&'a Value], new: &[&'a Value]) -> Vec<Change<'a>> {
    let mut changes = Vec::new();
    for e in old {
        match new.iter().find(|x| name_of(x) == name_of(e)) {
            None => changes.push(Change::Removed(e)),
            Some(x) if to_yaml(e) != to_yaml(x) => changes.push(Change::Changed(e, x)),
            Some(_) => {}
        }
    }
    for e in new {
        if !old.iter().any(|x| name_of(x) == name_of(e)) {
            changes.push(Change::Added(e));
        }
    }
    changes
}

/// Renders every difference like upstream's `atc.Config.Diff`; returns the text and
/// whether anything differs. Upstream writes `\b\b` before `+`/`-` lines so they land in
/// the two-space indent on a terminal; we write what the terminal shows.
pub fn diff_configs(old: &Value, new: &Value, color: bool) -> (String, bool) {
    let mut out = String::new();
    let mut any = false;

    let groups = group_changes(&entries(old, "groups"), &entries(new, "groups"));
    any |= render_section(&mut out, "groups:", "group", &groups, color);
    for (key, heading, label) in SECTIONS {
        let changes = named_changes(&entries(old, key), &entries(new, key));
        any |= render_section(&mut out, heading, label, &changes, color);
    }

    for (key, label) in [
        ("display", "display configuration"),
        ("user_data", "user_data"),
    ] {
        let (a, b) = (old.get(key), new.get(key));
        if is_empty(a) && is_empty(b) {
            continue;
        }
        let ya = a.filter(|v| !v.is_null()).map(to_yaml).unwrap_or_default();
        let yb = b.filter(|v| !v.is_null()).map(to_yaml).unwrap_or_default();
        if ya == yb {
            continue;
        }
        any = true;
        let verb = if ya.is_empty() {
            "has been added"
        } else if yb.is_empty() {
            "has been removed"
        } else {
            "has changed"
        };
        out.push_str(&format!(
            "  {}\n",
            ui::paint(&format!("{label} {verb}:"), ui::YELLOW, color)
        ));
        render_lines(&mut out, &ya, &yb, color);
    }
    (out, any)
}

fn render_section(
    out: &mut String,
    heading: &str,
    label: &str,
    changes: &[Change],
    color: bool,
) -> bool {
    if changes.is_empty() {
        return false;
    }
    out.push_str(heading);
    out.push('\n');
    for c in changes {
        let (header, a, b) = match c {
            Change::Changed(a, b) => (
                format!("{label} {} has changed:", name_of(a)),
                to_yaml(a),
                to_yaml(b),
            ),
            Change::Removed(a) => (
                format!("{label} {} has been removed:", name_of(a)),
                to_yaml(a),
                String::new(),
            ),
            Change::Added(b) => (
                format!("{label} {} has been added:", name_of(b)),
                String::new(),
                to_yaml(b),
            ),
        };
        out.push_str(&format!("  {}\n", ui::paint(&header, ui::YELLOW, color)));
        render_lines(out, &a, &b, color);
    }
    true
}

/// Unchanged lines indented two spaces; `+`/`-` sit in the indent. Like upstream (which
/// splits on `\n`), each entry ends with an empty line.
fn render_lines(out: &mut String, a: &str, b: &str, color: bool) {
    let al: Vec<&str> = a.lines().collect();
    let bl: Vec<&str> = b.lines().collect();
    let diff = TextDiff::from_slices(&al, &bl);
    for change in diff.iter_all_changes() {
        let text = change.value();
        match change.tag() {
            ChangeTag::Equal => out.push_str(&format!("  {text}\n")),
            ChangeTag::Insert => out.push_str(&format!(
                "{} {}\n",
                ui::paint("+", ui::GREEN, color),
                ui::paint(text, ui::GREEN, color)
            )),
            ChangeTag::Delete => out.push_str(&format!(
                "{} {}\n",
                ui::paint("-", ui::RED, color),
                ui::paint(text, ui::RED, color)
            )),
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identical_configs_have_no_diff_even_with_float_drift() {
        let a = json!({"jobs": [{"name": "j", "plan": [{"get": "r", "timeout": 300}]}]});
        let b = json!({"jobs": [{"name": "j", "plan": [{"get": "r", "timeout": 300.0}]}]});
        let (text, any) = diff_configs(&a, &b, false);
        assert!(!any, "{text}");
        assert_eq!(text, "");
    }

    #[test]
    fn changed_added_and_removed_entries_are_rendered_per_section() {
        let old =
            json!({"jobs": [{"name": "a", "serial": true}, {"name": "gone"}], "resources": []});
        let new = json!({"jobs": [{"name": "a", "serial": false}, {"name": "b"}], "resources": [{"name": "r", "type": "git"}]});
        let (text, any) = diff_configs(&old, &new, false);
        assert!(any);
        assert_eq!(
            text,
            "resources:\n  resource r has been added:\n+ name: r\n+ type: git\n\n\
             jobs:\n  job a has changed:\n  name: a\n- serial: true\n+ serial: false\n\n  \
             job gone has been removed:\n- name: gone\n\n  \
             job b has been added:\n+ name: b\n\n"
        );
    }

    #[test]
    fn reordered_groups_count_as_a_change() {
        let old = json!({"groups": [{"name": "x"}, {"name": "y"}]});
        let new = json!({"groups": [{"name": "y"}, {"name": "x"}]});
        let (text, any) = diff_configs(&old, &new, false);
        assert!(any);
        assert!(
            text.starts_with("groups:\n  group x has changed:\n  name: x\n"),
            "{text}"
        );
    }

    #[test]
    fn colours_mark_headers_and_changed_lines() {
        let (text, _) = diff_configs(&json!({}), &json!({"jobs": [{"name": "j"}]}), true);
        assert_eq!(
            text,
            "jobs:\n  \x1b[33mjob j has been added:\x1b[0m\n\x1b[32m+\x1b[0m \x1b[32mname: j\x1b[0m\n\n"
        );
    }
}
