//! The OIDC connector (upstream's `--oidc-*` flags, Dex's `oidc` connector): browser login
//! against any OpenID Connect provider with the authorization code flow and PKCE. The
//! provider's id token, checked against its published keys, says who the user is; its
//! `--oidc-groups-key` claim lists the groups that `set-team` configs map to roles.

use super::{jws, Identity};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The connector id, as upstream names it (team entries are `oidc:<user or group>`).
pub const OIDC: &str = "oidc";

/// How far a provider's clock may be ahead of ours or behind it.
const CLOCK_SKEW: i64 = 60;

#[derive(Debug, Clone, Default)]
pub struct OidcConfig {
    pub display_name: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Scopes asked for; empty means upstream's default `openid profile email`.
    pub scopes: Vec<String>,
    pub groups_key: String,
    pub user_name_key: String,
    pub ca_certs: Vec<PathBuf>,
    pub skip_ssl_validation: bool,
    pub disable_groups: bool,
    pub skip_email_verified_validation: bool,
}

/// The part of the provider's discovery document the flow uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

pub struct OidcConnector {
    config: OidcConfig,
    http: reqwest::Client,
    discovery: tokio::sync::OnceCell<Discovery>,
}

/// What the browser keeps (in a cookie) between the redirect to the provider and the
/// callback: the PKCE verifier and the nonce the id token must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub verifier: String,
    pub nonce: String,
}

impl Pending {
    fn new() -> Pending {
        let bytes: [u8; 32] = rand::random();
        Pending {
            verifier: B64.encode(bytes),
            nonce: super::random_hex(),
        }
    }
    /// `verifier.nonce`, both base64url / hex, so no cookie escaping is needed.
    pub fn to_cookie(&self) -> String {
        format!("{}.{}", self.verifier, self.nonce)
    }
    pub fn from_cookie(v: &str) -> Option<Pending> {
        let (verifier, nonce) = v.split_once('.')?;
        let ok = |s: &str, extra: &[u8]| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        (ok(verifier, b"-_") && ok(nonce, b"")).then(|| Pending {
            verifier: verifier.into(),
            nonce: nonce.into(),
        })
    }
    fn challenge(&self) -> String {
        B64.encode(<sha2::Sha256 as sha2::Digest>::digest(
            self.verifier.as_bytes(),
        ))
    }
}

impl OidcConnector {
    /// Checks the flags (issuer, client id and secret are required) and loads `--oidc-ca-cert`.
    pub fn new(config: OidcConfig) -> anyhow::Result<OidcConnector> {
        for (flag, value) in [
            ("--oidc-issuer", &config.issuer),
            ("--oidc-client-id", &config.client_id),
            ("--oidc-client-secret", &config.client_secret),
        ] {
            if value.is_empty() {
                anyhow::bail!("OIDC is configured but {flag} is missing");
            }
        }
        url::Url::parse(&config.issuer)
            .map_err(|e| anyhow::anyhow!("invalid --oidc-issuer '{}': {e}", config.issuer))?;
        let mut http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(config.skip_ssl_validation);
        for path in &config.ca_certs {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading --oidc-ca-cert {}: {e}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "--oidc-ca-cert {} is not a PEM certificate: {e}",
                    path.display()
                )
            })?;
            http = http.add_root_certificate(cert);
        }
        Ok(OidcConnector {
            config,
            http: http.build()?,
            discovery: tokio::sync::OnceCell::new(),
        })
    }

    pub fn display_name(&self) -> &str {
        self.config.display_name.as_deref().unwrap_or("OIDC")
    }

    fn scopes(&self) -> String {
        let mut scopes: Vec<&str> = if self.config.scopes.is_empty() {
            vec!["openid", "profile", "email"]
        } else {
            self.config.scopes.iter().map(String::as_str).collect()
        };
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        scopes.join(" ")
    }

    /// The provider's discovery document, fetched once (a failure is retried next login).
    async fn discovery(&self) -> Result<&Discovery, String> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let d: Discovery = self.get_json(&url).await?;
                if d.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
                    return Err(format!(
                        "the provider at {url} says its issuer is {}, not {}",
                        d.issuer, self.config.issuer
                    ));
                }
                Ok(d)
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("GET {url}: {}", r.status()));
        }
        r.json().await.map_err(|e| format!("GET {url}: {e}"))
    }

    /// Where to send the browser, and what it must bring back to the callback.
    pub async fn start(
        &self,
        redirect_uri: &str,
        state: &str,
    ) -> Result<(String, Pending), String> {
        let d = self.discovery().await?;
        let pending = Pending::new();
        let mut url = url::Url::parse(&d.authorization_endpoint)
            .map_err(|e| format!("the provider's authorization endpoint: {e}"))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &self.scopes())
            .append_pair("state", state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Redeems the provider's code and reads who logged in from its verified id token.
    pub async fn finish(
        &self,
        code: &str,
        redirect_uri: &str,
        pending: &Pending,
    ) -> Result<Identity, String> {
        let d = self.discovery().await?;
        let r = self
            .http
            .post(&d.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| format!("redeeming the code at {}: {e}", d.token_endpoint))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!(
                "the provider refused the code ({status}): {}",
                body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no reason given")
            ));
        }
        let Some(id_token) = body["id_token"].as_str() else {
            return Err("the provider's token response has no id_token".into());
        };
        let jwks: Value = self.get_json(&d.jwks_uri).await?;
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        let (_, claims) = jws::verify(id_token, &keys).map_err(|e| format!("id token: {e}"))?;
        self.identity(&claims, &d.issuer, &pending.nonce, crate::clock::now())
    }

    /// Checks an id token's claims (issuer, audience, expiry, nonce) and maps them to an
    /// identity as Dex's OIDC connector does.
    fn identity(
        &self,
        claims: &Value,
        issuer: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, String> {
        let c = &self.config;
        if claims["iss"].as_str() != Some(issuer) {
            return Err(format!(
                "id token issued by {}, not {issuer}",
                claims["iss"]
            ));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(a) => *a == c.client_id,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(&c.client_id)),
            _ => false,
        };
        if !audience_ok {
            return Err(format!("id token is not for client {}", c.client_id));
        }
        if claims["exp"]
            .as_i64()
            .is_none_or(|exp| exp + CLOCK_SKEW < now)
        {
            return Err("id token expired".into());
        }
        if claims["nonce"].as_str() != Some(nonce) {
            return Err("id token nonce does not match this login".into());
        }
        let sub = claims["sub"].as_str().unwrap_or_default();
        if sub.is_empty() {
            return Err("id token has no subject".into());
        }
        let Some(name) = claims[c.user_name_key.as_str()].as_str() else {
            return Err(format!(
                "missing \"{}\" claim (--oidc-user-name-key)",
                c.user_name_key
            ));
        };
        let wants_email = self.scopes().split(' ').any(|s| s == "email");
        let email = claims["email"].as_str().unwrap_or_default().to_string();
        if wants_email && !c.skip_email_verified_validation {
            if email.is_empty() {
                return Err("missing \"email\" claim".into());
            }
            if claims["email_verified"].as_bool() != Some(true) {
                return Err(format!("email {email} is not verified"));
            }
        }
        let groups = match &claims[c.groups_key.as_str()] {
            _ if c.disable_groups => Vec::new(),
            Value::Array(a) => a
                .iter()
                .filter_map(|g| g.as_str().map(String::from))
                .collect(),
            Value::String(g) => vec![g.clone()],
            _ => Vec::new(),
        };
        Ok(Identity {
            user_id: sub.to_string(),
            name: name.to_string(),
            preferred_username: claims["preferred_username"]
                .as_str()
                .unwrap_or(name)
                .to_string(),
            email,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connector(scopes: &[&str]) -> OidcConnector {
        OidcConnector::new(OidcConfig {
            issuer: "https://idp.example".into(),
            client_id: "concourse".into(),
            client_secret: "s".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            groups_key: "groups".into(),
            user_name_key: "username".into(),
            ..Default::default()
        })
        .expect("config")
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "aud": ["concourse"], "exp": 1000, "nonce": "n",
               "sub": "e-1", "username": "alice", "groups": ["devs", 3]})
    }

    #[test]
    fn claims_are_checked_and_mapped_as_dex_does() {
        let c = connector(&["openid", "groups"]);
        let id = c
            .identity(&claims(), "https://idp.example", "n", 900)
            .expect("valid");
        assert_eq!(
            id,
            Identity {
                user_id: "e-1".into(),
                name: "alice".into(),
                preferred_username: "alice".into(),
                email: String::new(),
                groups: vec!["devs".into()],
            }
        );
        let refused = |mut edit: Value, nonce: &str, now: i64| {
            let mut cl = claims();
            if let (Value::Object(cl), Value::Object(e)) = (&mut cl, edit.take()) {
                cl.extend(e);
            }
            c.identity(&cl, "https://idp.example", nonce, now)
                .expect_err("refused")
        };
        assert!(refused(json!({}), "other", 900).contains("nonce"));
        assert!(refused(json!({}), "n", 2000).contains("expired"));
        assert!(refused(json!({"aud": "someone-else"}), "n", 900).contains("client"));
        assert!(refused(json!({"iss": "https://evil"}), "n", 900).contains("issued by"));
        assert!(refused(json!({"username": null}), "n", 900).contains("\"username\""));
        // With the default scopes the email must be there and verified.
        let strict = connector(&[]);
        assert_eq!(strict.scopes(), "openid profile email");
        assert!(strict
            .identity(&claims(), "https://idp.example", "n", 900)
            .is_err());
    }

    #[test]
    fn the_pending_login_cookie_round_trips_and_refuses_junk() {
        let p = Pending::new();
        assert_eq!(Pending::from_cookie(&p.to_cookie()), Some(p.clone()));
        assert_eq!(p.challenge().len(), 43, "S256 of the verifier, base64url");
        for junk in ["", ".", "a.", ".b", "a;b.c", "a.b;c", "x"] {
            assert_eq!(Pending::from_cookie(junk), None, "{junk}");
        }
    }

    #[test]
    fn required_flags_are_named() {
        let e = OidcConnector::new(OidcConfig::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("--oidc-issuer"), "{e}");
    }
}
