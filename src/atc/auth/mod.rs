//! Who is asking, and what may they do: the connectors users log in through (local users
//! here, LDAP in `ldap`), access tokens (upstream's opaque format, stored server-side
//! with their claims), and team roles.

pub mod jws;
pub mod ldap;
pub mod oidc;
pub mod requester;
pub mod throttle;
pub mod token;

pub use requester::{Requester, Role};

use crate::clock::now;
use crate::db::{Store, StoreError, UserLogin};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// fly's OAuth client is hard-wired upstream: id `fly`, secret `Zmx5`.
pub const FLY_CLIENT_ID: &str = "fly";
pub const FLY_CLIENT_SECRET: &str = "Zmx5";
/// The web login client and the TSA client; tokens issued to either are accepted.
pub const WEB_CLIENT_ID: &str = "concourse-web";
pub const TSA_CLIENT_ID: &str = "concourse-worker";

#[derive(Debug, Clone)]
struct LocalUser {
    /// The spelling given on the command line; identities carry it.
    name: String,
    bcrypt_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Invalid username or password")]
    InvalidCredentials,
    #[error("Invalid client credentials.")]
    InvalidClient,
    /// Too many failed logins for this user or from this address; try after the wait.
    #[error("too many failed logins; try again later")]
    TooManyAttempts(Duration),
    /// The identity provider failed (unreachable, misconfigured): not the user's fault.
    #[error("{0}")]
    Connector(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Who a connector says the user is; the token's claims are made from it, as Dex makes
/// them from a connector's identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub user_id: String,
    pub name: String,
    pub preferred_username: String,
    pub email: String,
    pub groups: Vec<String>,
}

/// The connector ids users log in through, as upstream names them.
pub const LOCAL: &str = "local";
pub const LDAP: &str = "ldap";

/// The connector `--password-connector` names, if it is one that is configured.
pub fn password_connector_id(name: &str, ldap_configured: bool) -> anyhow::Result<&'static str> {
    match name {
        LOCAL => Ok(LOCAL),
        LDAP if ldap_configured => Ok(LDAP),
        LDAP => anyhow::bail!(
            "--password-connector ldap needs LDAP configured (--ldap-host and the other --ldap-* flags)"
        ),
        other => anyhow::bail!("invalid --password-connector '{other}': expected local or ldap"),
    }
}

/// Parses `--add-local-user` entries (`USER:PASS`, plaintext or a bcrypt hash). Plaintext
/// passwords are hashed here so they are never kept.
pub fn local_users(entries: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut users = Vec::new();
    // An empty entry (`--add-local-user=`, an empty env var) names nobody.
    for entry in entries.iter().filter(|e| !e.is_empty()) {
        let Some((user, pass)) = entry.split_once(':') else {
            anyhow::bail!("invalid --add-local-user '{entry}': expected USERNAME:PASSWORD");
        };
        // Upstream ignores entries with an empty user or password.
        if user.is_empty() || pass.is_empty() {
            continue;
        }
        let hash = if is_bcrypt_hash(pass) {
            pass.to_string()
        } else {
            bcrypt::hash(pass, bcrypt::DEFAULT_COST)?
        };
        users.push((user.to_string(), hash));
    }
    Ok(users)
}

fn is_bcrypt_hash(s: &str) -> bool {
    let mut parts = s.split('$');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(""), Some("2a" | "2b" | "2y"), Some(cost), Some(rest))
            if cost.len() == 2 && cost.chars().all(|c| c.is_ascii_digit()) && rest.len() == 53
    )
}

/// The audience of the browser flow's authorization codes (never accepted as a token).
const CODE_AUDIENCE: &str = "concourse-sky-code";

/// Issues and verifies access tokens.
pub struct Auth {
    store: Arc<dyn Store>,
    users: HashMap<String, LocalUser>,
    duration: Duration,
    throttle: throttle::LoginThrottle,
    ldap: Option<ldap::LdapConnector>,
    oidc: Option<Arc<oidc::OidcConnector>>,
    /// Which connector `fly login -u -p` (the password grant) checks: `--password-connector`.
    password_connector: &'static str,
}

impl Auth {
    pub fn new(store: Arc<dyn Store>, users: Vec<(String, String)>, duration: Duration) -> Self {
        let users = users
            .into_iter()
            .map(|(name, bcrypt_hash)| (name.to_lowercase(), LocalUser { name, bcrypt_hash }))
            .collect();
        Auth {
            store,
            users,
            duration,
            throttle: Default::default(),
            ldap: None,
            oidc: None,
            password_connector: LOCAL,
        }
    }

    /// Adds the LDAP connector; `password_connector` is `local` or `ldap`.
    pub fn with_ldap(
        mut self,
        ldap: Option<ldap::LdapConnector>,
        password_connector: &str,
    ) -> anyhow::Result<Self> {
        self.password_connector = password_connector_id(password_connector, ldap.is_some())?;
        self.ldap = ldap;
        Ok(self)
    }

    /// Adds the OIDC connector (browser login only, as upstream).
    pub fn with_oidc(mut self, oidc: Option<Arc<oidc::OidcConnector>>) -> Self {
        self.oidc = oidc;
        self
    }

    /// The OIDC connector, when configured.
    pub fn oidc(&self) -> Option<&oidc::OidcConnector> {
        self.oidc.as_deref()
    }

    /// The browser login's connectors, `(id, display name)`, in upstream's order: local
    /// users (when there are any) first.
    pub fn connectors(&self) -> Vec<(&'static str, String)> {
        let mut all = Vec::new();
        if self.has_local_users() {
            all.push((LOCAL, "Username/Password".to_string()));
        }
        if let Some(l) = &self.ldap {
            all.push((LDAP, l.display_name().to_string()));
        }
        if let Some(o) = &self.oidc {
            all.push((oidc::OIDC, o.display_name().to_string()));
        }
        all
    }

    /// The label of a connector's username field; `None` for an unknown connector.
    pub fn username_prompt(&self, connector: &str) -> Option<String> {
        match connector {
            LOCAL => Some("username".into()),
            LDAP => self.ldap.as_ref().map(|l| l.username_prompt().to_string()),
            _ => None,
        }
    }

    pub fn has_local_users(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The password grant: checks the user with `--password-connector` and issues a
    /// token for `client_id`.
    pub async fn password_grant(
        &self,
        username: &str,
        password: &str,
        client_id: &str,
        from: Option<IpAddr>,
    ) -> Result<Issued, AuthError> {
        self.login(self.password_connector, username, password, client_id, from)
            .await
    }

    /// Checks a username and password with `connector` and issues a token for
    /// `client_id`. Failed attempts are limited per user and per client address (`from`,
    /// when known), whichever connector checks them.
    pub async fn login(
        &self,
        connector: &str,
        username: &str,
        password: &str,
        client_id: &str,
        from: Option<IpAddr>,
    ) -> Result<Issued, AuthError> {
        let attempt = throttle::Attempt::new(username, from);
        self.throttle
            .admit(&attempt, tokio::time::Instant::now())
            .map_err(AuthError::TooManyAttempts)?;
        let (connector, ident) = match (connector, &self.ldap) {
            (LDAP, Some(ldap)) => match ldap.login(username, password).await {
                Ok(Some(ident)) => (LDAP, ident),
                Ok(None) => return Err(AuthError::InvalidCredentials),
                Err(e) => {
                    // An outage says nothing about the password: it does not count as a
                    // failed login, or users would be locked out after it.
                    self.throttle
                        .succeeded(&attempt, tokio::time::Instant::now());
                    return Err(AuthError::Connector(e.to_string()));
                }
            },
            (LOCAL, _) => {
                let user = self.check_password(username, password).await?;
                let ident = Identity {
                    user_id: user.name.clone(),
                    name: user.name.clone(),
                    preferred_username: user.name.clone(),
                    email: user.name,
                    groups: Vec::new(),
                };
                (LOCAL, ident)
            }
            _ => return Err(AuthError::InvalidCredentials),
        };
        self.throttle
            .succeeded(&attempt, tokio::time::Instant::now());
        self.issue(&ident, connector, client_id).await
    }

    async fn check_password(&self, username: &str, password: &str) -> Result<LocalUser, AuthError> {
        let user = self
            .users
            .get(&username.to_lowercase())
            .ok_or(AuthError::InvalidCredentials)?
            .clone();
        let hash = user.bcrypt_hash.clone();
        let password = password.to_string();
        // bcrypt is deliberately slow: keep it off the async workers.
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if !ok {
            return Err(AuthError::InvalidCredentials);
        }
        Ok(user)
    }

    /// A token for someone a redirect connector (OIDC) vouched for.
    pub async fn issue_for(
        &self,
        ident: &Identity,
        connector: &str,
        client_id: &str,
    ) -> Result<Issued, AuthError> {
        self.issue(ident, connector, client_id).await
    }

    async fn issue(
        &self,
        ident: &Identity,
        connector: &str,
        client_id: &str,
    ) -> Result<Issued, AuthError> {
        let now = now();
        let exp = now + self.duration.as_secs() as i64;
        let sub = format!("{}:{connector}", ident.user_id);
        let claims = json!({
            "iss": "concourse",
            "sub": sub,
            "aud": client_id,
            "iat": now,
            "exp": exp,
            "email": ident.email,
            "email_verified": true,
            "name": ident.name,
            "preferred_username": ident.preferred_username,
            "groups": ident.groups,
            "federated_claims": {"connector_id": connector, "user_id": ident.user_id},
        });
        let token = token::generate(exp);
        self.store.save_access_token(&token, &claims, exp).await?;
        self.store
            .record_user_login(&UserLogin {
                username: ident.preferred_username.clone(),
                connector: connector.to_string(),
                sub,
                at: now,
            })
            .await?;
        Ok(Issued {
            token,
            expires_in: exp - now,
        })
    }

    /// Resolves an `Authorization` header value to a requester. `Ok(None)` = no token;
    /// `Err(Invalid)` = a token was presented but is not valid (unknown, expired, wrong
    /// audience); `Err(Store)` = the token table could not be read (after riding out a
    /// blip), which says nothing about the token.
    pub async fn verify(&self, header: Option<&str>) -> Result<Option<Value>, TokenError> {
        let Some(header) = header else {
            return Ok(None);
        };
        let mut parts = header.split(' ');
        let (Some(scheme), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Invalid);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Invalid);
        }
        let claims = match retry_unavailable(|| self.store.access_token(token)).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(TokenError::Invalid),
            Err(e) => return Err(TokenError::Store(e)),
        };
        let leeway = 60;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp + leeway < now() {
            return Err(TokenError::Invalid);
        }
        let accepted = [FLY_CLIENT_ID, WEB_CLIENT_ID, TSA_CLIENT_ID];
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted.contains(&a.as_str()),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .any(|a| accepted.contains(&a)),
            _ => false,
        };
        if !aud_ok {
            return Err(TokenError::Invalid);
        }
        Ok(Some(claims))
    }

    /// The browser flow's authorization code for `token`: one use, two minutes, bound to
    /// the login's `state`. Kept in the token table (so any web node redeems it) under an
    /// audience `verify` refuses, so a code is never a bearer token itself.
    pub async fn code_for(&self, token: &str, state: &str) -> Result<String, StoreError> {
        let code = random_hex();
        let exp = now() + 120;
        let claims = json!({"aud": CODE_AUDIENCE, "token": token, "state": state, "exp": exp});
        self.store.save_access_token(&code, &claims, exp).await?;
        Ok(code)
    }

    /// The token a code stands for, once: the code is gone after this call either way.
    pub async fn redeem_code(&self, code: &str, state: &str) -> Option<String> {
        let claims = self.store.access_token(code).await.ok()??;
        let _ = self.store.delete_access_token(code).await;
        let field = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        let fresh = claims.get("exp").and_then(Value::as_i64).unwrap_or(0) >= now();
        (field("aud") == CODE_AUDIENCE && fresh && secrets_match(field("state"), state))
            .then(|| field("token").to_string())
    }

    pub async fn revoke(&self, header_or_cookie: &str) -> Result<(), StoreError> {
        let token = header_or_cookie.split(' ').next_back().unwrap_or_default();
        self.store.delete_access_token(token).await
    }
}

/// Why a presented token was not accepted.
#[derive(Debug)]
pub enum TokenError {
    /// Unknown, expired, malformed or for another audience.
    Invalid,
    /// The store could not tell: never to be answered as "not authorized".
    Store(StoreError),
}

/// How long a request rides out a database blip (a restart, a dropped connection) before
/// it is answered 503.
const DB_PATIENCE: Duration = Duration::from_secs(2);

/// `op` again while the store is [`StoreError::Unavailable`], for up to [`DB_PATIENCE`]:
/// for reads only, which are safe to repeat.
pub async fn retry_unavailable<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = std::time::Instant::now() + DB_PATIENCE;
    let mut pause = Duration::from_millis(50);
    loop {
        match op().await {
            Err(StoreError::Unavailable(_)) if std::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            result => return result,
        }
    }
}

pub struct Issued {
    pub token: String,
    pub expires_in: i64,
}

/// 32 random bytes as 64 hex characters (CSRF tokens, login codes and states).
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets (CSRF and webhook tokens) in time that depends only on their
/// lengths, so a network observer cannot learn a token byte by byte.
pub fn secrets_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("abc123", "abc123"));
        assert!(!secrets_match("abc123", "abc124"));
        assert!(!secrets_match("abc123", "abc12"));
        assert!(!secrets_match("", "a"));
    }

    #[test]
    fn bcrypt_hashes_are_recognised_and_kept() {
        let hash = bcrypt::hash("secret", 4).expect("hashing");
        assert!(is_bcrypt_hash(&hash));
        assert!(!is_bcrypt_hash("secret"));
        let users = local_users(&[
            format!("alice:{hash}"),
            "bob:pw".into(),
            ":x".into(),
            "".into(),
        ])
        .expect("users");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].1, hash);
        assert!(bcrypt::verify("pw", &users[1].1).expect("verify"));
    }

    #[test]
    fn local_user_without_colon_is_an_error() {
        let err = local_users(&["alice".into()]).unwrap_err();
        assert!(err.to_string().contains("USERNAME:PASSWORD"), "{err}");
    }
}
