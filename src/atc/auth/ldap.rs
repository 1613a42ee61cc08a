//! The LDAP connector, with the semantics of upstream's (Dex's `connector/ldap`): bind as
//! the service account, find the user by the username attribute, bind as that entry with
//! the password given, then find the user's groups (`(<groupAttr>=<user's userAttr>)`).

use super::Identity;
use crate::cli::LdapArgs;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use std::sync::Arc;
use std::time::Duration;

/// Connection and per-operation limit: a directory that stops answering fails the login
/// instead of holding it.
const LDAP_TIMEOUT: Duration = Duration::from_secs(10);

// LDAP result codes (RFC 4511 appendix A) that mean "wrong password", as Dex reads them.
const INVALID_CREDENTIALS: u32 = 49;
const CONSTRAINT_VIOLATION: u32 = 19;

#[derive(Debug, Clone)]
pub struct LdapConnector {
    display_name: String,
    url: String,
    settings_tls: Option<Arc<rustls::ClientConfig>>,
    start_tls: bool,
    skip_verify: bool,
    bind_dn: String,
    bind_pw: String,
    username_prompt: String,
    user: UserSearch,
    group: GroupSearch,
}

#[derive(Debug, Clone)]
struct UserSearch {
    base_dn: String,
    filter: String,
    username: String,
    scope: Scope,
    id_attr: String,
    email_attr: String,
    name_attr: String,
}

#[derive(Debug, Clone)]
struct GroupSearch {
    base_dn: String,
    filter: String,
    scope: Scope,
    user_attr: String,
    group_attr: String,
    name_attr: String,
}

/// A directory or configuration failure (not a wrong password): the login fails with it.
#[derive(Debug, thiserror::Error)]
#[error("ldap: {0}")]
pub struct LdapError(String);

fn fail(what: impl std::fmt::Display) -> LdapError {
    LdapError(what.to_string())
}

/// Escapes a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL
/// become `\XX`, so a username cannot widen or rewrite the filter it is put in.
pub fn escape_filter(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `(attr=value)`, and'ed with the configured filter if there is one.
fn search_filter(extra: &str, attr: &str, value: &str) -> String {
    let own = format!("({attr}={})", escape_filter(value));
    if extra.is_empty() {
        own
    } else {
        format!("(&{extra}{own})")
    }
}

fn parse_scope(flag: &str, value: Option<&str>) -> Result<Scope, String> {
    match value.unwrap_or_default() {
        "" | "sub" => Ok(Scope::Subtree),
        "one" => Ok(Scope::OneLevel),
        other => Err(format!("{flag} must be 'sub' or 'one', not '{other}'")),
    }
}

/// The first value of `name` on the entry (attribute names are case-insensitive); `DN`
/// means the entry's DN when the entry has no attribute of that name, as in Dex.
fn attr_values(entry: &SearchEntry, name: &str) -> Vec<String> {
    let found = entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone());
    match found {
        Some(v) => v,
        None if name == "DN" => vec![entry.dn.clone()],
        None => Vec::new(),
    }
}

fn attr(entry: &SearchEntry, name: &str) -> String {
    attr_values(entry, name)
        .into_iter()
        .next()
        .unwrap_or_default()
}

impl LdapConnector {
    /// The connector from the `--ldap-*` flags: `Ok(None)` when none is given; every
    /// missing or invalid flag is named in the error.
    pub fn from_flags(a: &LdapArgs) -> anyhow::Result<Option<LdapConnector>> {
        fn given(o: &Option<String>) -> Option<&str> {
            o.as_deref().filter(|s| !s.is_empty())
        }
        let any = [
            &a.ldap_display_name,
            &a.ldap_host,
            &a.ldap_bind_dn,
            &a.ldap_bind_pw,
            &a.ldap_username_prompt,
            &a.ldap_user_search_base_dn,
            &a.ldap_user_search_filter,
            &a.ldap_user_search_username,
            &a.ldap_user_search_scope,
            &a.ldap_user_search_id_attr,
            &a.ldap_user_search_email_attr,
            &a.ldap_user_search_name_attr,
            &a.ldap_group_search_base_dn,
            &a.ldap_group_search_filter,
            &a.ldap_group_search_scope,
            &a.ldap_group_search_user_attr,
            &a.ldap_group_search_group_attr,
            &a.ldap_group_search_name_attr,
        ]
        .into_iter()
        .any(|o| given(o).is_some())
            || a.ldap_ca_cert.is_some()
            || a.ldap_insecure_no_ssl
            || a.ldap_insecure_skip_verify
            || a.ldap_start_tls;
        if !any {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let mut required = |flag: &str, o: &Option<String>| match given(o) {
            Some(v) => v.to_string(),
            None => {
                errors.push(format!("{flag} is required"));
                String::new()
            }
        };
        let host = required("--ldap-host", &a.ldap_host);
        let bind_dn = required("--ldap-bind-dn", &a.ldap_bind_dn);
        let bind_pw = required("--ldap-bind-pw", &a.ldap_bind_pw);
        let user_base = required("--ldap-user-search-base-dn", &a.ldap_user_search_base_dn);
        let username = required("--ldap-user-search-username", &a.ldap_user_search_username);
        let user_scope = parse_scope(
            "--ldap-user-search-scope",
            a.ldap_user_search_scope.as_deref(),
        );
        let group_scope = parse_scope(
            "--ldap-group-search-scope",
            a.ldap_group_search_scope.as_deref(),
        );
        for scope in [&user_scope, &group_scope] {
            if let Err(e) = scope {
                errors.push(e.clone());
            }
        }
        if a.ldap_insecure_no_ssl && a.ldap_start_tls {
            errors.push("--ldap-insecure-no-ssl and --ldap-start-tls exclude each other".into());
        }
        if given(&a.ldap_group_search_base_dn).is_some() {
            for (flag, o) in [
                (
                    "--ldap-group-search-user-attr",
                    &a.ldap_group_search_user_attr,
                ),
                (
                    "--ldap-group-search-group-attr",
                    &a.ldap_group_search_group_attr,
                ),
                (
                    "--ldap-group-search-name-attr",
                    &a.ldap_group_search_name_attr,
                ),
            ] {
                if given(o).is_none() {
                    errors.push(format!(
                        "{flag} is required with --ldap-group-search-base-dn"
                    ));
                }
            }
        }
        let tls = match &a.ldap_ca_cert {
            Some(path) => match ca_config(path) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            anyhow::bail!("invalid LDAP configuration: {}", errors.join("; "));
        }
        // Without a port, Dex guesses from the TLS setting: 389 plain, 636 otherwise.
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let host = if has_port {
            host
        } else if a.ldap_insecure_no_ssl {
            format!("{host}:389")
        } else {
            format!("{host}:636")
        };
        let scheme = if a.ldap_insecure_no_ssl || a.ldap_start_tls {
            "ldap"
        } else {
            "ldaps"
        };
        let url = format!("{scheme}://{host}");
        url::Url::parse(&url).map_err(|e| anyhow::anyhow!("invalid --ldap-host '{host}': {e}"))?;
        let or = |o: &Option<String>, d: &str| given(o).unwrap_or(d).to_string();
        Ok(Some(LdapConnector {
            display_name: or(&a.ldap_display_name, "LDAP"),
            url,
            settings_tls: tls,
            start_tls: a.ldap_start_tls,
            skip_verify: a.ldap_insecure_skip_verify,
            bind_dn,
            bind_pw,
            username_prompt: or(&a.ldap_username_prompt, "Username"),
            user: UserSearch {
                base_dn: user_base,
                filter: or(&a.ldap_user_search_filter, ""),
                username,
                scope: user_scope.unwrap_or(Scope::Subtree),
                id_attr: or(&a.ldap_user_search_id_attr, "uid"),
                email_attr: or(&a.ldap_user_search_email_attr, "mail"),
                name_attr: or(&a.ldap_user_search_name_attr, ""),
            },
            group: GroupSearch {
                base_dn: or(&a.ldap_group_search_base_dn, ""),
                filter: or(&a.ldap_group_search_filter, ""),
                scope: group_scope.unwrap_or(Scope::Subtree),
                user_attr: or(&a.ldap_group_search_user_attr, ""),
                group_attr: or(&a.ldap_group_search_group_attr, ""),
                name_attr: or(&a.ldap_group_search_name_attr, ""),
            },
        }))
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    pub fn username_prompt(&self) -> &str {
        &self.username_prompt
    }

    async fn connect(&self) -> Result<Ldap, LdapError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(LDAP_TIMEOUT)
            .set_starttls(self.start_tls)
            .set_no_tls_verify(self.skip_verify);
        if let Some(config) = &self.settings_tls {
            settings = settings.set_config(config.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| fail(format!("connecting to {}: {e}", self.url)))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn service_bind(&self, ldap: &mut Ldap) -> Result<(), LdapError> {
        ldap.with_timeout(LDAP_TIMEOUT)
            .simple_bind(&self.bind_dn, &self.bind_pw)
            .await
            .and_then(|r| r.success())
            .map(|_| ())
            .map_err(|e| {
                fail(format!(
                    "initial bind for user '{}' failed: {e}",
                    self.bind_dn
                ))
            })
    }

    async fn search(
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let (entries, _) = ldap
            .with_timeout(LDAP_TIMEOUT)
            .search(base, scope, filter, attrs)
            .await
            .and_then(|r| r.success())
            .map_err(|e| fail(format!("search with filter '{filter}' failed: {e}")))?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// Checks `username`/`password` against the directory. `Ok(None)`: unknown user or
    /// wrong password; `Err`: the directory or its configuration failed.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Identity>, LdapError> {
        // An empty password would be an anonymous bind, which servers accept: refuse it.
        if password.is_empty() || username.is_empty() {
            return Ok(None);
        }
        let mut ldap = self.connect().await?;
        let result = self.login_on(&mut ldap, username, password).await;
        let _ = ldap.unbind().await;
        result
    }

    async fn login_on(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &str,
    ) -> Result<Option<Identity>, LdapError> {
        self.service_bind(ldap).await?;
        let u = &self.user;
        let filter = search_filter(&u.filter, &u.username, username);
        let mut attrs = vec![u.id_attr.as_str(), u.email_attr.as_str(), &u.username];
        for extra in [&u.name_attr, &self.group.user_attr] {
            if !extra.is_empty() {
                attrs.push(extra);
            }
        }
        let mut found = Self::search(ldap, &u.base_dn, u.scope, &filter, attrs).await?;
        let user = match found.len() {
            0 => return Ok(None),
            1 => found.remove(0),
            n => return Err(fail(format!("filter '{filter}' returned {n} entries"))),
        };
        let bound = ldap
            .with_timeout(LDAP_TIMEOUT)
            .simple_bind(&user.dn, password)
            .await
            .map_err(|e| fail(format!("binding as '{}': {e}", user.dn)))?;
        match bound.rc {
            0 => {}
            INVALID_CREDENTIALS | CONSTRAINT_VIOLATION => return Ok(None),
            rc => {
                return Err(fail(format!(
                    "binding as '{}': result code {rc}: {}",
                    user.dn, bound.text
                )))
            }
        }
        let mut ident = self.identity(&user)?;
        // The user's own bind may not see groups: search them as the service account.
        self.service_bind(ldap).await?;
        ident.groups = self.groups(ldap, &user).await?;
        Ok(Some(ident))
    }

    /// Id and email are required, as in Dex; a configured name attribute too.
    fn identity(&self, user: &SearchEntry) -> Result<Identity, LdapError> {
        let u = &self.user;
        let mut missing = Vec::new();
        let mut get = |name: &str| {
            let v = attr(user, name);
            if v.is_empty() {
                missing.push(name.to_string());
            }
            v
        };
        let user_id = get(&u.id_attr);
        let email = get(&u.email_attr);
        let preferred = get(&u.username);
        let name = if u.name_attr.is_empty() {
            preferred.clone()
        } else {
            get(&u.name_attr)
        };
        if !missing.is_empty() {
            return Err(fail(format!(
                "entry '{}' is missing required attribute(s) {}",
                user.dn,
                missing.join(", ")
            )));
        }
        Ok(Identity {
            user_id,
            name,
            preferred_username: preferred,
            email,
            groups: Vec::new(),
        })
    }

    async fn groups(&self, ldap: &mut Ldap, user: &SearchEntry) -> Result<Vec<String>, LdapError> {
        let g = &self.group;
        if g.base_dn.is_empty() {
            return Ok(Vec::new());
        }
        let mut names = Vec::new();
        for value in attr_values(user, &g.user_attr) {
            let filter = search_filter(&g.filter, &g.group_attr, &value);
            let entries = Self::search(
                ldap,
                &g.base_dn,
                g.scope,
                &filter,
                vec![g.name_attr.as_str()],
            )
            .await?;
            for group in entries {
                let name = attr(&group, &g.name_attr);
                if name.is_empty() {
                    // A group without its name attribute means a misconfiguration.
                    return Err(fail(format!(
                        "group entry '{}' is missing required attribute '{}'",
                        group.dn, g.name_attr
                    )));
                }
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }
}

/// A TLS client config trusting only the CA certificates in `path` (PEM).
fn ca_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let bad = |e: &dyn std::fmt::Display| format!("--ldap-ca-cert {}: {e}", path.display());
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no certificates found"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_per_rfc4515() {
        assert_eq!(escape_filter("alice"), "alice");
        assert_eq!(escape_filter("*"), "\\2a");
        assert_eq!(escape_filter("a)(uid=*"), "a\\29\\28uid=\\2a");
        assert_eq!(escape_filter("back\\slash"), "back\\5cslash");
        assert_eq!(escape_filter("nul\0"), "nul\\00");
        assert_eq!(escape_filter("é"), "é");
        assert_eq!(
            search_filter("(objectClass=person)", "uid", "*)(|(uid=*"),
            "(&(objectClass=person)(uid=\\2a\\29\\28|\\28uid=\\2a))"
        );
        assert_eq!(search_filter("", "cn", "x"), "(cn=x)");
    }

    fn flags(args: &[&str]) -> LdapArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            ldap: LdapArgs,
        }
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        T::try_parse_from(all).expect("flags parse").ldap
    }

    #[test]
    fn no_flags_means_no_connector() {
        assert!(LdapConnector::from_flags(&flags(&[]))
            .expect("valid")
            .is_none());
    }

    #[test]
    fn missing_and_invalid_flags_are_named() {
        let err = LdapConnector::from_flags(&flags(&[
            "--ldap-host",
            "ldap.example.com",
            "--ldap-user-search-scope",
            "base",
            "--ldap-group-search-base-dn",
            "ou=groups,dc=example,dc=org",
        ]))
        .unwrap_err()
        .to_string();
        for named in [
            "--ldap-bind-dn is required",
            "--ldap-bind-pw is required",
            "--ldap-user-search-base-dn is required",
            "--ldap-user-search-username is required",
            "--ldap-user-search-scope must be 'sub' or 'one', not 'base'",
            "--ldap-group-search-name-attr is required with --ldap-group-search-base-dn",
        ] {
            assert!(err.contains(named), "{named} in: {err}");
        }
        assert!(!err.contains("--ldap-host"), "{err}");
        let err = LdapConnector::from_flags(&flags(&["--ldap-ca-cert", "/nonexistent/ca.pem"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--ldap-ca-cert /nonexistent/ca.pem"), "{err}");
    }

    fn entry(dn: &str, attrs: &[(&str, &str)]) -> SearchEntry {
        let mut e = SearchEntry {
            dn: dn.into(),
            attrs: Default::default(),
            bin_attrs: Default::default(),
        };
        for (k, v) in attrs {
            e.attrs
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
        e
    }

    #[test]
    fn identities_need_id_and_email_and_dn_names_the_entry() {
        let c = LdapConnector::from_flags(&flags(&[
            "--ldap-host",
            "h",
            "--ldap-bind-dn",
            "cn=admin",
            "--ldap-bind-pw",
            "pw",
            "--ldap-user-search-base-dn",
            "ou=people",
            "--ldap-user-search-username",
            "uid",
        ]))
        .expect("valid")
        .expect("configured");
        let dn = "uid=alice,ou=people";
        // Attribute names are case-insensitive, as in LDAP.
        let alice = entry(dn, &[("UID", "alice"), ("mail", "a@example.org")]);
        let ident = c.identity(&alice).expect("identity");
        assert_eq!(
            (
                ident.user_id.as_str(),
                ident.email.as_str(),
                ident.name.as_str()
            ),
            ("alice", "a@example.org", "alice")
        );
        assert_eq!(attr_values(&alice, "DN"), [dn]);
        let err = c.identity(&entry(dn, &[("uid", "alice")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing required attribute(s) mail"),
            "{err}"
        );
    }

    #[test]
    fn ports_are_guessed_from_the_tls_setting() {
        let base = [
            "--ldap-bind-dn",
            "cn=admin,dc=example,dc=org",
            "--ldap-bind-pw",
            "pw",
            "--ldap-user-search-base-dn",
            "ou=people,dc=example,dc=org",
            "--ldap-user-search-username",
            "uid",
        ];
        let url = |extra: &[&str]| {
            let mut a: Vec<&str> = base.to_vec();
            a.extend_from_slice(extra);
            LdapConnector::from_flags(&flags(&a))
                .expect("valid")
                .expect("configured")
                .url
        };
        assert_eq!(url(&["--ldap-host", "h"]), "ldaps://h:636");
        assert_eq!(
            url(&["--ldap-host", "h", "--ldap-insecure-no-ssl"]),
            "ldap://h:389"
        );
        assert_eq!(
            url(&["--ldap-host", "h:1389", "--ldap-start-tls"]),
            "ldap://h:1389"
        );
        let c = LdapConnector::from_flags(&flags(&[&base[..], &["--ldap-host", "h"]].concat()))
            .expect("valid")
            .expect("configured");
        assert_eq!(c.display_name(), "LDAP");
        assert_eq!(c.username_prompt(), "Username");
        assert_eq!(
            (c.user.id_attr.as_str(), c.user.email_attr.as_str()),
            ("uid", "mail")
        );
    }
}
