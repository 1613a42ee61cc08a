//! Flags of the single sign-on connectors of `concourse web` (upstream's names).

use clap::Args;
use std::path::PathBuf;

/// The OIDC connector (upstream's `--oidc-*` flags). OIDC is configured when
/// `--oidc-issuer` is given.
#[derive(Debug, Clone, Default, Args)]
pub struct OidcArgs {
    /// The auth provider name displayed to users on the login page.
    #[arg(long, env = "CONCOURSE_OIDC_DISPLAY_NAME")]
    pub oidc_display_name: Option<String>,
    /// (Required) An OIDC issuer URL that will be used to discover provider configuration
    /// using the .well-known/openid-configuration.
    #[arg(long, env = "CONCOURSE_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// (Required) Client id.
    #[arg(long, env = "CONCOURSE_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// (Required) Client secret.
    #[arg(long, env = "CONCOURSE_OIDC_CLIENT_SECRET")]
    pub oidc_client_secret: Option<String>,
    /// Any additional scopes of [openid] that need to be requested during authorization.
    /// Default to [openid, profile, email].
    #[arg(long, env = "CONCOURSE_OIDC_SCOPE", value_delimiter = ',')]
    pub oidc_scope: Vec<String>,
    /// The groups key indicates which claim to use to map external groups to Concourse teams.
    #[arg(long, env = "CONCOURSE_OIDC_GROUPS_KEY", default_value = "groups")]
    pub oidc_groups_key: String,
    /// The user name key indicates which claim to use to map an external user name to a
    /// Concourse user name.
    #[arg(long, env = "CONCOURSE_OIDC_USER_NAME_KEY", default_value = "username")]
    pub oidc_user_name_key: String,
    /// CA Certificate.
    #[arg(long, env = "CONCOURSE_OIDC_CA_CERT")]
    pub oidc_ca_cert: Vec<PathBuf>,
    /// Skip SSL validation.
    #[arg(long, env = "CONCOURSE_OIDC_SKIP_SSL_VALIDATION")]
    pub oidc_skip_ssl_validation: bool,
    /// Disable OIDC groups claims.
    #[arg(long, env = "CONCOURSE_OIDC_DISABLE_GROUPS")]
    pub oidc_disable_groups: bool,
    /// Ignore the email_verified claim from the upstream provider.
    #[arg(long, env = "CONCOURSE_OIDC_SKIP_EMAIL_VERIFIED_VALIDATION")]
    pub oidc_skip_email_verified_validation: bool,
}

impl OidcArgs {
    /// The connector's settings, or None when OIDC is not configured.
    pub fn config(&self) -> Option<crate::atc::auth::oidc::OidcConfig> {
        let issuer = self.oidc_issuer.clone().filter(|i| !i.is_empty())?;
        Some(crate::atc::auth::oidc::OidcConfig {
            display_name: self.oidc_display_name.clone(),
            issuer,
            client_id: self.oidc_client_id.clone().unwrap_or_default(),
            client_secret: self.oidc_client_secret.clone().unwrap_or_default(),
            scopes: self.oidc_scope.clone(),
            groups_key: self.oidc_groups_key.clone(),
            user_name_key: self.oidc_user_name_key.clone(),
            ca_certs: self.oidc_ca_cert.clone(),
            skip_ssl_validation: self.oidc_skip_ssl_validation,
            disable_groups: self.oidc_disable_groups,
            skip_email_verified_validation: self.oidc_skip_email_verified_validation,
        })
    }
}

/// The LDAP connector (upstream's `--ldap-*` flags). LDAP is configured when any is given.
#[derive(Debug, Clone, Default, Args)]
pub struct LdapArgs {
    /// The auth provider name displayed to users on the login page.
    #[arg(long, env = "CONCOURSE_LDAP_DISPLAY_NAME")]
    pub ldap_display_name: Option<String>,
    /// (Required) The host and optional port of the LDAP server. If port isn't supplied,
    /// it will be guessed based on the TLS configuration. 389 or 636.
    #[arg(long, env = "CONCOURSE_LDAP_HOST")]
    pub ldap_host: Option<String>,
    /// (Required) Bind DN for searching LDAP users and groups. Typically this is a
    /// read-only user.
    #[arg(long, env = "CONCOURSE_LDAP_BIND_DN")]
    pub ldap_bind_dn: Option<String>,
    /// (Required) Bind Password for the user specified by 'bind-dn'.
    #[arg(long, env = "CONCOURSE_LDAP_BIND_PW")]
    pub ldap_bind_pw: Option<String>,
    /// Required if LDAP host does not use TLS.
    #[arg(long, env = "CONCOURSE_LDAP_INSECURE_NO_SSL")]
    pub ldap_insecure_no_ssl: bool,
    /// Skip certificate verification.
    #[arg(long, env = "CONCOURSE_LDAP_INSECURE_SKIP_VERIFY")]
    pub ldap_insecure_skip_verify: bool,
    /// Start on insecure port, then negotiate TLS.
    #[arg(long, env = "CONCOURSE_LDAP_START_TLS")]
    pub ldap_start_tls: bool,
    /// CA certificate (PEM) the LDAP server's certificate must chain to.
    #[arg(long, env = "CONCOURSE_LDAP_CA_CERT")]
    pub ldap_ca_cert: Option<PathBuf>,
    /// The prompt when logging in through the UI. Defaults to 'Username'.
    #[arg(long, env = "CONCOURSE_LDAP_USERNAME_PROMPT")]
    pub ldap_username_prompt: Option<String>,
    /// BaseDN to start the search from. For example 'cn=users,dc=example,dc=com'.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_BASE_DN")]
    pub ldap_user_search_base_dn: Option<String>,
    /// Optional filter to apply when searching the directory. For example
    /// '(objectClass=person)'.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_FILTER")]
    pub ldap_user_search_filter: Option<String>,
    /// Attribute to match against the inputted username. This will be translated and
    /// combined with the other filter as '(<attr>=<username>)'.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_USERNAME")]
    pub ldap_user_search_username: Option<String>,
    /// Can either be: 'sub' - search the whole sub tree or 'one' - only search one level.
    /// Defaults to 'sub'.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_SCOPE")]
    pub ldap_user_search_scope: Option<String>,
    /// The attribute of the user entry that is the user's id. Defaults to 'uid'.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_ID_ATTR")]
    pub ldap_user_search_id_attr: Option<String>,
    /// The attribute of the user entry that is the user's email. Defaults to 'mail'.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_EMAIL_ATTR")]
    pub ldap_user_search_email_attr: Option<String>,
    /// The attribute of the user entry that is the user's display name.
    #[arg(long, env = "CONCOURSE_LDAP_USER_SEARCH_NAME_ATTR")]
    pub ldap_user_search_name_attr: Option<String>,
    /// BaseDN to start the search from. For example 'cn=groups,dc=example,dc=com'.
    #[arg(long, env = "CONCOURSE_LDAP_GROUP_SEARCH_BASE_DN")]
    pub ldap_group_search_base_dn: Option<String>,
    /// Optional filter to apply when searching the directory. For example
    /// '(objectClass=posixGroup)'.
    #[arg(long, env = "CONCOURSE_LDAP_GROUP_SEARCH_FILTER")]
    pub ldap_group_search_filter: Option<String>,
    /// Can either be: 'sub' - search the whole sub tree or 'one' - only search one level.
    /// Defaults to 'sub'.
    #[arg(long, env = "CONCOURSE_LDAP_GROUP_SEARCH_SCOPE")]
    pub ldap_group_search_scope: Option<String>,
    /// Adds an additional requirement to the filter that an attribute in the group match
    /// the user's attribute value. The exact filter being added is:
    /// (<groupAttr>=<userAttr value>)
    #[arg(long, env = "CONCOURSE_LDAP_GROUP_SEARCH_USER_ATTR")]
    pub ldap_group_search_user_attr: Option<String>,
    /// Adds an additional requirement to the filter that an attribute in the group match
    /// the user's attribute value. The exact filter being added is:
    /// (<groupAttr>=<userAttr value>)
    #[arg(long, env = "CONCOURSE_LDAP_GROUP_SEARCH_GROUP_ATTR")]
    pub ldap_group_search_group_attr: Option<String>,
    /// The attribute of the group that represents its name.
    #[arg(long, env = "CONCOURSE_LDAP_GROUP_SEARCH_NAME_ATTR")]
    pub ldap_group_search_name_attr: Option<String>,
}
