//! Where reordering puts things: pipeline groups within a team (`ordering`) and instances
//! within a group (`secondary_ordering`), computed once for both backends.

use super::{canonical_json, Result, StoreError};
use serde_json::Value;

/// `wanted` first in the given order (repeats ignored), then the rest of `current` in its
/// order; Err with the first wanted item not in `current`.
fn reorder<'a, T: PartialEq>(
    current: &'a [T],
    wanted: &'a [T],
) -> std::result::Result<Vec<&'a T>, &'a T> {
    if let Some(unknown) = wanted.iter().find(|w| !current.contains(w)) {
        return Err(unknown);
    }
    let mut ordered: Vec<&T> = Vec::with_capacity(current.len());
    for item in wanted.iter().chain(current.iter()) {
        if !ordered.contains(&item) {
            ordered.push(item);
        }
    }
    Ok(ordered)
}

/// The new `ordering` of each pipeline-name group of a team: `names` first in the given
/// order, then the others in their current order. `current` is every group name in current
/// order. An unknown name is [`StoreError::NotFound`].
pub(crate) fn new_ordering(current: &[String], names: &[String]) -> Result<Vec<(String, i64)>> {
    let ordered = reorder(current, names)
        .map_err(|unknown| StoreError::NotFound(format!("pipeline {unknown}")))?;
    Ok(ordered
        .into_iter()
        .zip(1..)
        .map(|(n, i)| (n.clone(), i))
        .collect())
}

/// The new `secondary_ordering` of each instance of a group, by pipeline id: the instances
/// with the `wanted` vars first, then the others in their current order. `current` is
/// (id, vars) of every instance in current order; vars compare as [`canonical_json`], so
/// key order does not matter. Unknown vars are [`StoreError::NotFound`].
pub(crate) fn new_instance_ordering(
    name: &str,
    current: &[(i64, Option<Value>)],
    wanted: &[Option<Value>],
) -> Result<Vec<(i64, i64)>> {
    let key = |v: &Option<Value>| v.as_ref().map(canonical_json);
    let current_keys: Vec<Option<String>> = current.iter().map(|(_, v)| key(v)).collect();
    let wanted_keys: Vec<Option<String>> = wanted.iter().map(key).collect();
    let ordered = reorder(&current_keys, &wanted_keys).map_err(|unknown| {
        StoreError::NotFound(format!(
            "pipeline {name} with instance vars {}",
            unknown.as_deref().unwrap_or("{}")
        ))
    })?;
    Ok(ordered
        .into_iter()
        .zip(1..)
        .filter_map(|(k, i)| {
            let at = current_keys.iter().position(|c| c == k)?;
            Some((current[at].0, i))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordering_puts_named_groups_first_then_the_rest() {
        let current: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let ordered = new_ordering(&current, &["c".into(), "c".into()]).expect("known names");
        assert_eq!(
            ordered,
            vec![("c".into(), 1), ("a".into(), 2), ("b".into(), 3)]
        );
        let err = new_ordering(&current, &["x".into()]).expect_err("unknown name");
        assert_eq!(err.to_string(), "pipeline x not found");
    }

    #[test]
    fn instance_ordering_matches_vars_whatever_their_key_order() {
        let current = vec![
            (10, None),
            (11, Some(json!({"b": 1, "a": "x"}))),
            (12, Some(json!({"a": "y"}))),
        ];
        let ordered = new_instance_ordering(
            "p",
            &current,
            &[Some(json!({"a": "y"})), Some(json!({"a": "x", "b": 1}))],
        )
        .expect("known vars");
        assert_eq!(ordered, vec![(12, 1), (11, 2), (10, 3)]);
        let err = new_instance_ordering("p", &current, &[Some(json!({"a": "z"}))])
            .expect_err("unknown vars");
        assert!(
            matches!(&err, StoreError::NotFound(w) if w.contains(r#"{"a":"z"}"#)),
            "{err:?}"
        );
    }
}
