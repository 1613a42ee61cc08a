//! Settings of an `idtoken` var source (upstream's idtoken credential manager), parsed both
//! when a pipeline is validated and when a build signs a token.

use super::duration::parse_go_duration;
use serde_json::Value;

/// Tokens live an hour unless `expires_in` says otherwise, and never more than a day.
pub const DEFAULT_EXPIRES_IN_SECS: i64 = 3600;
pub const MAX_EXPIRES_IN_SECS: i64 = 24 * 3600;

/// What the `sub` claim names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectScope {
    Team,
    Pipeline,
    Instance,
    Job,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
    /// The JWK key type that signs with this algorithm.
    pub fn kty(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RSA",
            Algorithm::Es256 => "EC",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdTokenConfig {
    pub audience: Vec<String>,
    pub subject_scope: SubjectScope,
    pub expires_in_secs: i64,
    pub algorithm: Algorithm,
}

/// Upstream tells apart a config it cannot read (creating the manager fails) from one it
/// reads but rejects (validation fails); the messages differ accordingly.
#[derive(Debug, Clone, PartialEq)]
pub enum IdTokenProblem {
    Create(String),
    Invalid(String),
}

pub fn parse_idtoken_config(config: &Value) -> Result<IdTokenConfig, IdTokenProblem> {
    let create =
        |why: String| IdTokenProblem::Create(format!("invalid idtoken provider config: {why}"));
    let m = match config {
        Value::Object(m) => m.clone(),
        other => return Err(create(go_type(other).to_string())),
    };
    let mut audience = Vec::new();
    let mut scope = String::new();
    let mut algorithm = String::new();
    let mut expires_in_ns = i128::from(DEFAULT_EXPIRES_IN_SECS) * 1_000_000_000;
    for (k, v) in &m {
        match (k.as_str(), v) {
            ("audience", Value::Array(items)) => {
                audience = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    // Upstream wraps a nil error here, hence Go's `%!w(<nil>)`.
                    .ok_or_else(|| create("invalid audience value: %!w(<nil>)".into()))?;
            }
            ("audience", _) => return Err(create("audience must be a list of strings".into())),
            ("subject_scope", Value::String(s)) => scope = s.clone(),
            ("subject_scope", _) => return Err(create("subject_scope must be a string".into())),
            ("algorithm", Value::String(s)) => algorithm = s.clone(),
            ("algorithm", _) => return Err(create("algorithm must be a string".into())),
            ("expires_in", Value::String(d)) => {
                expires_in_ns = parse_go_duration(d)
                    .map_err(|e| create(format!("invalid expires_in value: {e}")))?;
            }
            ("expires_in", _) => return Err(create("expires_in must be a string".into())),
            (other, _) => return Err(create(format!("unknown setting: {other}"))),
        }
    }
    let subject_scope = match scope.as_str() {
        "" | "pipeline" => SubjectScope::Pipeline,
        "team" => SubjectScope::Team,
        "instance" => SubjectScope::Instance,
        "job" => SubjectScope::Job,
        other => {
            return Err(IdTokenProblem::Invalid(format!(
                "invalid subject_scope value: {other}"
            )))
        }
    };
    if expires_in_ns > i128::from(MAX_EXPIRES_IN_SECS) * 1_000_000_000 {
        return Err(IdTokenProblem::Invalid(
            "expires_in must be <= 24h0m0s".into(),
        ));
    }
    let algorithm = match algorithm.as_str() {
        "" | "RS256" => Algorithm::Rs256,
        "ES256" => Algorithm::Es256,
        other => {
            return Err(IdTokenProblem::Invalid(format!(
                "invalid algorithm value: {other}. Only RS256 and ES256 are supported"
            )))
        }
    };
    Ok(IdTokenConfig {
        audience,
        subject_scope,
        // Sub-second or negative lifetimes round to an already expired token.
        expires_in_secs: (expires_in_ns / 1_000_000_000).max(0) as i64,
        algorithm,
    })
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(config: Value) -> IdTokenProblem {
        parse_idtoken_config(&config).expect_err("should be refused")
    }

    #[test]
    fn defaults_are_pipeline_scope_rs256_and_one_hour() {
        let c = parse_idtoken_config(&json!({"audience": ["sts.amazonaws.com"]})).unwrap();
        assert_eq!(
            c,
            IdTokenConfig {
                audience: vec!["sts.amazonaws.com".into()],
                subject_scope: SubjectScope::Pipeline,
                expires_in_secs: 3600,
                algorithm: Algorithm::Rs256,
            }
        );
        assert_eq!(
            parse_idtoken_config(&json!({})).unwrap().audience,
            Vec::<String>::new()
        );
    }

    #[test]
    fn custom_settings_are_read() {
        let c = parse_idtoken_config(&json!({
            "subject_scope": "team", "expires_in": "90m", "algorithm": "ES256", "audience": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(c.subject_scope, SubjectScope::Team);
        assert_eq!(c.expires_in_secs, 5400);
        assert_eq!(c.algorithm, Algorithm::Es256);
        assert_eq!(c.audience, ["a", "b"]);
        for (scope, want) in [
            ("instance", SubjectScope::Instance),
            ("job", SubjectScope::Job),
        ] {
            let c = parse_idtoken_config(&json!({ "subject_scope": scope })).unwrap();
            assert_eq!(c.subject_scope, want);
        }
    }

    #[test]
    fn unreadable_configs_fail_creation() {
        let create =
            |s: &str| IdTokenProblem::Create(format!("invalid idtoken provider config: {s}"));
        assert_eq!(
            problem(json!({"audience": "x"})),
            create("audience must be a list of strings")
        );
        assert_eq!(
            problem(json!({"audience": [1]})),
            create("invalid audience value: %!w(<nil>)")
        );
        assert_eq!(
            problem(json!({"subject_scope": 1})),
            create("subject_scope must be a string")
        );
        assert_eq!(
            problem(json!({"algorithm": true})),
            create("algorithm must be a string")
        );
        assert_eq!(
            problem(json!({"expires_in": 60})),
            create("expires_in must be a string")
        );
        assert_eq!(
            problem(json!({"expires_in": "soon"})),
            create("invalid expires_in value: time: invalid duration \"soon\"")
        );
        assert_eq!(
            problem(json!({"issuer": "x"})),
            create("unknown setting: issuer")
        );
        assert_eq!(problem(json!("x")), create("string"));
        assert_eq!(problem(Value::Null), create("<nil>"));
    }

    #[test]
    fn out_of_range_settings_fail_validation() {
        let invalid = |s: &str| IdTokenProblem::Invalid(s.into());
        assert_eq!(
            problem(json!({"subject_scope": "world"})),
            invalid("invalid subject_scope value: world")
        );
        assert_eq!(
            problem(json!({"expires_in": "25h"})),
            invalid("expires_in must be <= 24h0m0s")
        );
        assert_eq!(
            problem(json!({"algorithm": "HS256"})),
            invalid("invalid algorithm value: HS256. Only RS256 and ES256 are supported")
        );
        assert!(parse_idtoken_config(&json!({"expires_in": "24h"})).is_ok());
    }
}
