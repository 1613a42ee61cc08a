//! Claims and compact JWS serialisation of the tokens an `idtoken` var source hands out.

use super::keys::SigningKey;
use crate::config::idtoken::{IdTokenConfig, SubjectScope};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Whom a token is about: the build's team, pipeline (with instance vars) and job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenSubject {
    pub team: String,
    pub pipeline: String,
    pub instance_vars: Option<Map<String, Value>>,
    pub job: String,
}

impl TokenSubject {
    /// Upstream's `InstanceVars.String()`: `k:v,k2:v2`, dotted paths, sorted.
    fn instance_vars_string(&self) -> String {
        let r = crate::config::refs::PipelineRef {
            name: String::new(),
            instance_vars: self.instance_vars.clone().filter(|m| !m.is_empty()),
        };
        r.display().trim_start_matches('/').to_string()
    }

    /// The `sub` claim; slashes inside names are escaped so the parts stay apart.
    pub fn subject(&self, scope: SubjectScope) -> String {
        let esc = |s: &str| s.replace('/', "%2F");
        let (team, pipeline) = (esc(&self.team), esc(&self.pipeline));
        match scope {
            SubjectScope::Team => team,
            SubjectScope::Pipeline => format!("{team}/{pipeline}"),
            SubjectScope::Instance => {
                format!("{team}/{pipeline}/{}", esc(&self.instance_vars_string()))
            }
            SubjectScope::Job => format!(
                "{team}/{pipeline}/{}/{}",
                esc(&self.instance_vars_string()),
                esc(&self.job)
            ),
        }
    }
}

pub fn claims(config: &IdTokenConfig, issuer: &str, who: &TokenSubject, now: i64) -> Value {
    let mut c = json!({
        "iss": issuer,
        "sub": who.subject(config.subject_scope),
        "iat": now,
        "exp": now + config.expires_in_secs,
        "team": who.team,
        "pipeline": who.pipeline,
        "job": who.job,
    });
    // As go-jose encodes it: one audience is a string, none is left out.
    match config.audience.as_slice() {
        [] => {}
        [one] => c["aud"] = one.clone().into(),
        many => c["aud"] = many.into(),
    }
    if let Some(vars) = who.instance_vars.as_ref().filter(|m| !m.is_empty()) {
        c["instance_vars"] = Value::Object(vars.clone());
    }
    c
}

/// `header.payload.signature`, each base64url without padding.
pub fn sign_jwt(key: &SigningKey, claims: &Value) -> anyhow::Result<String> {
    let header = json!({"alg": key.algorithm().name(), "kid": key.kid, "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(&header)?),
        B64.encode(serde_json::to_vec(claims)?)
    );
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", B64.encode(signature)))
}
