//! Static vars from the command line (`-l` files, `-v`, `-y`, `-i`) for fly-side
//! `((var))` rendering. Later files override earlier ones; flags override files.

use super::cli::VarsArgs;
use super::yaml;
use crate::config::refs::{parse_path, set_path};
use crate::config::StaticVars;
use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

/// Splits `NAME=VALUE` at the first `=`.
fn split_pair(s: &str) -> Result<(&str, &str)> {
    s.split_once('=')
        .ok_or_else(|| anyhow!("invalid variable '{s}': must be formatted as NAME=VALUE"))
}

fn parse_yaml_value(name: &str, raw: &str) -> Result<Value> {
    yaml::parse(raw).map_err(|e| anyhow!("invalid value for '{name}': {e}"))
}

/// The vars the templates see, plus the instance vars given with `-i`.
pub fn static_vars(
    args: &VarsArgs,
    instance_var_flags: &[String],
) -> Result<(StaticVars, Map<String, Value>)> {
    let mut vars = Map::new();
    for path in &args.load_vars_from {
        let text = super::read_path(path)
            .map_err(|e| anyhow!("could not read template variables file ({path}): {e}"))?;
        let text = String::from_utf8_lossy(&text);
        match yaml::parse(&text)
            .map_err(|e| anyhow!("could not unmarshal template variables ({path}): {e}"))?
        {
            Value::Object(m) => vars.extend(m),
            Value::Null => {}
            _ => bail!("could not unmarshal template variables ({path}): not a map of variables"),
        }
    }
    for flag in &args.var {
        let (name, value) = split_pair(flag)?;
        set_path(
            &mut vars,
            &parse_path(name)?,
            Value::String(value.to_string()),
        );
    }
    for flag in &args.yaml_var {
        let (name, value) = split_pair(flag)?;
        set_path(
            &mut vars,
            &parse_path(name)?,
            parse_yaml_value(name, value)?,
        );
    }
    let mut instance_vars = Map::new();
    for flag in instance_var_flags {
        let (name, value) = split_pair(flag)?;
        let path = parse_path(name)?;
        let value = parse_yaml_value(name, value)?;
        set_path(&mut vars, &path, value.clone());
        set_path(&mut instance_vars, &path, value);
    }
    Ok((StaticVars(vars), instance_vars))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_override_files_and_dotted_names_set_fields() {
        let dir = tempfile::tempdir().unwrap();
        let f1 = dir.path().join("a.yml");
        let f2 = dir.path().join("b.yml");
        std::fs::write(&f1, "x: from-a\nz: from-a\nobj: {k: 1}\n").unwrap();
        std::fs::write(&f2, "z: from-b\n").unwrap();
        let args = VarsArgs {
            var: vec!["x=flag".into(), "obj.k2=s".into()],
            yaml_var: vec!["n=[1, 2]".into()],
            load_vars_from: vec![f1.to_string_lossy().into(), f2.to_string_lossy().into()],
        };
        let (vars, inst) = static_vars(&args, &["branch=main".into()]).unwrap();
        assert_eq!(
            Value::Object(vars.0),
            json!({"x": "flag", "z": "from-b", "obj": {"k": 1, "k2": "s"}, "n": [1, 2], "branch": "main"})
        );
        assert_eq!(Value::Object(inst), json!({"branch": "main"}));
    }

    #[test]
    fn values_split_at_the_first_equals() {
        let args = VarsArgs {
            var: vec!["a=b=c".into()],
            ..Default::default()
        };
        assert_eq!(
            Value::Object(static_vars(&args, &[]).unwrap().0 .0),
            json!({"a": "b=c"})
        );
        let bad = VarsArgs {
            var: vec!["novalue".into()],
            ..Default::default()
        };
        assert!(static_vars(&bad, &[]).is_err());
    }
}
