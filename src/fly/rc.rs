//! `~/.flyrc`: the saved targets (spec fly-cli.md §2). Written the way upstream writes it
//! (JSON-tag marshalling, so alphabetical keys and omitted empty optionals; mode 0600).

use super::yaml;
use anyhow::{anyhow, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetToken {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetProps {
    #[serde(default)]
    pub api: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_cert: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_cert_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_key_path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default)]
    pub team: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TargetToken>,
}

impl TargetProps {
    /// The saved token, if there is one with a value.
    pub fn bearer(&self) -> Option<&TargetToken> {
        self.token.as_ref().filter(|t| !t.value.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flyrc {
    #[serde(default)]
    pub targets: BTreeMap<String, TargetProps>,
}

/// `$FLY_HOME/.flyrc`, else `$HOME/.flyrc`.
pub fn flyrc_path() -> Result<PathBuf> {
    let home = std::env::var_os("FLY_HOME")
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()))
        .ok_or_else(|| anyhow!("could not determine home directory (set HOME or FLY_HOME)"))?;
    Ok(PathBuf::from(home).join(".flyrc"))
}

impl Flyrc {
    pub fn parse(text: &str) -> Result<Flyrc> {
        let value = yaml::parse(text).map_err(|e| anyhow!("{e}"))?;
        if value.is_null() {
            return Ok(Flyrc::default());
        }
        let mut rc: Flyrc = serde_json::from_value(value)?;
        for props in rc.targets.values_mut() {
            if props.team.is_empty() {
                props.team = "main".into();
            }
        }
        Ok(rc)
    }

    pub fn render(&self) -> String {
        yaml::emit(&serde_json::to_value(self).unwrap_or_default())
    }

    /// Loads the file; a missing file means no targets.
    pub fn load() -> Result<Flyrc> {
        let path = flyrc_path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Flyrc::parse(&text).with_context(|| format!("could not read {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Flyrc::default()),
            Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
        }
    }

    pub fn save(&self) -> Result<()> {
        let path = flyrc_path()?;
        write_private(&path, self.render().as_bytes())
            .with_context(|| format!("could not write {}", path.display()))
    }

    /// The named target, or `unknown target: NAME`.
    pub fn target(&self, name: &str) -> Result<&TargetProps> {
        self.targets
            .get(name)
            .ok_or_else(|| anyhow!("unknown target: {name}"))
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(data)
    }
    #[cfg(not(unix))]
    {
        opts.open(path)?.write_all(data)
    }
}

/// The expiry (unix seconds) encoded in an opaque ATC token: 20 random bytes followed by
/// the expiry as 8 little-endian bytes, std base64 without padding.
pub fn token_expiry(token: &str) -> Option<i64> {
    if token.len() != 38 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(token)
        .ok()?;
    let raw: [u8; 8] = bytes.get(20..28)?.try_into().ok()?;
    i64::try_from(u64::from_le_bytes(raw)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyrc_round_trips_with_alphabetical_keys_and_omitted_empties() {
        let mut rc = Flyrc::default();
        rc.targets.insert(
            "ci".into(),
            TargetProps {
                api: "https://ci.example.com".into(),
                team: "main".into(),
                insecure: true,
                ca_cert: "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n".into(),
                token: Some(TargetToken {
                    kind: "bearer".into(),
                    value: "AbC+/x".into(),
                }),
                ..Default::default()
            },
        );
        rc.targets.insert(
            "other".into(),
            TargetProps {
                api: "http://x:8080".into(),
                team: "dev".into(),
                ..Default::default()
            },
        );
        let text = rc.render();
        assert_eq!(
            text,
            "targets:\n  ci:\n    api: https://ci.example.com\n    ca_cert: |\n      -----BEGIN CERTIFICATE-----\n      abc\n      -----END CERTIFICATE-----\n    insecure: true\n    team: main\n    token:\n      type: bearer\n      value: AbC+/x\n  other:\n    api: http://x:8080\n    team: dev\n"
        );
        assert_eq!(Flyrc::parse(&text).unwrap(), rc);
    }

    #[test]
    fn empty_team_reads_as_main_and_empty_file_has_no_targets() {
        let rc = Flyrc::parse("targets:\n  a:\n    api: http://a\n").unwrap();
        assert_eq!(rc.targets["a"].team, "main");
        assert!(Flyrc::parse("").unwrap().targets.is_empty());
        assert_eq!(Flyrc::default().render(), "targets: {}\n");
    }

    #[test]
    fn logged_out_token_is_kept_but_empty() {
        let mut rc = Flyrc::default();
        rc.targets.insert(
            "a".into(),
            TargetProps {
                api: "http://a".into(),
                team: "main".into(),
                token: Some(TargetToken::default()),
                ..Default::default()
            },
        );
        let text = rc.render();
        assert!(
            text.contains("    token:\n      type: \"\"\n      value: \"\"\n"),
            "{text}"
        );
        let back = Flyrc::parse(&text).unwrap();
        assert_eq!(back, rc);
        assert!(back.targets["a"].bearer().is_none());
    }

    #[test]
    fn token_expiry_is_decoded_from_the_last_eight_bytes() {
        let mut raw = vec![7u8; 20];
        raw.extend_from_slice(&1_700_000_000u64.to_le_bytes());
        let token = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw);
        assert_eq!(token.len(), 38);
        assert_eq!(token_expiry(&token), Some(1_700_000_000));
        assert_eq!(token_expiry("not-a-token"), None);
        assert_eq!(token_expiry(&"!".repeat(38)), None);
    }
}
