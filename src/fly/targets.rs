//! Target bookkeeping and account info: `targets`, `status`, `userinfo`, `sync`,
//! `delete-target`, `edit-target`.

use super::cli::{AllArg, CurlArgs, EditTargetArgs, JsonArg, SyncArgs};
use super::client::{fail, fly_version, Client, FlyError, Target};
use super::rc::{token_expiry, Flyrc, TargetProps};
use super::table::Table;
use super::{print_json, Global};
use crate::proto::api;
use anyhow::{anyhow, bail, Context, Result};

/// The `expiry` column: RFC 1123 in UTC, `n/a` without a token.
pub fn expiry_cell(props: &TargetProps) -> String {
    let Some(token) = props
        .token
        .as_ref()
        .filter(|t| !t.kind.is_empty() && !t.value.is_empty())
    else {
        return "n/a".into();
    };
    match token_expiry(&token.value).and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(t) => t.format("%a, %d %b %Y %H:%M:%S UTC").to_string(),
        None => "n/a: invalid token".into(),
    }
}

pub fn targets(g: &Global) -> Result<()> {
    let rc = Flyrc::load()?;
    let mut table = Table::new(&["name", "url", "team", "expiry"]);
    for (name, props) in &rc.targets {
        table.push(vec![
            name.clone().into(),
            props.api.clone().into(),
            props.team.clone().into(),
            expiry_cell(props).into(),
        ]);
    }
    table.sort_by_first_column();
    table.print(g.print_table_headers);
    Ok(())
}

pub async fn status(g: &Global) -> Result<()> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    if t.props.bearer().is_none() {
        return Err(fail("logged out"));
    }
    match t
        .client
        .get_json::<api::UserInfo>("/api/v1/user", &[])
        .await
    {
        Ok(_) => {
            println!("logged in successfully");
            Ok(())
        }
        Err(e) => Err(fail(format!(
            "please login again.\n\ntoken validation failed with error: {e}"
        ))),
    }
}

pub async fn userinfo(g: &Global, a: &JsonArg) -> Result<()> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    t.validate().await?;
    let user: api::UserInfo = t.client.get_json("/api/v1/user", &[]).await?;
    if a.json {
        return print_json(&user);
    }
    let mut roles: Vec<String> = user
        .teams
        .iter()
        .flat_map(|(team, rs)| rs.iter().map(move |r| format!("{team}/{r}")))
        .collect();
    roles.sort();
    let mut table = Table::new(&["username", "team/role"]);
    table.push(vec![
        user.display_user_id.clone().into(),
        roles.join(",").into(),
    ]);
    table.print(g.print_table_headers);
    Ok(())
}

/// `amd64|arm64` and `linux|darwin|windows`, as upstream's GOARCH/GOOS.
fn platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    (arch, os)
}

pub async fn sync(g: &Global, a: &SyncArgs) -> Result<()> {
    let client = match (&a.concourse_url, g.target.as_deref()) {
        (Some(url), _) => {
            let mut props = TargetProps {
                api: url.trim_end_matches('/').to_string(),
                insecure: a.insecure,
                ..Default::default()
            };
            if let Some(ca) = &a.ca_cert {
                props.ca_cert = String::from_utf8_lossy(&super::read_path(ca)?).into_owned();
            }
            props.client_cert_path = a.client_cert.clone().unwrap_or_default();
            props.client_key_path = a.client_key.clone().unwrap_or_default();
            Client::new(&props.api, &props, g.verbose)?
        }
        (None, name) => Target::load(name, g.verbose)?.client,
    };
    let info = client.info().await?;
    if info.version == fly_version() && !a.force {
        println!("version {} already matches; skipping", info.version);
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| fail(format!("update failed: {e}")))?;
    let dir = exe
        .parent()
        .ok_or_else(|| fail("update failed: executable has no parent directory"))?;
    let tmp = dir.join(format!(".fly-sync-{}", std::process::id()));
    std::fs::write(&tmp, b"").map_err(|e| fail(format!("update failed: {e}")))?;
    let result = download(&client, &tmp).await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let replaced = set_executable(&tmp).and_then(|()| std::fs::rename(&tmp, &exe));
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(format!("failed to apply update: {e}")));
    }
    println!("done");
    Ok(())
}

fn set_executable(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `GET /api/v1/cli` for this platform, streamed into `to` (a file beside the executable,
/// so the final rename is atomic).
async fn download(client: &Client, to: &std::path::Path) -> Result<()> {
    use std::io::Write;
    let (arch, os) = platform();
    let query = [("arch", arch), ("platform", os)];
    let mut resp = client
        .execute(client.get("/api/v1/cli").query(&query))
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        super::client::check_status(status, body.as_bytes())?;
        bail!("unexpected status {status}");
    }
    println!("downloading fly from {}...", client.url);
    println!();
    let total = resp.content_length();
    if total.is_none() {
        println!("warning: failed to parse Content-Length: missing or invalid");
    }
    let mut file = std::fs::File::create(to)?;
    let mut done: u64 = 0;
    let tty = super::ui::stdout_is_tty();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FlyError::Network(super::client::error_chain(&e)))?
    {
        file.write_all(&chunk)?;
        done += chunk.len() as u64;
        if tty {
            print!("\r{}", progress(done, total));
            let _ = std::io::stdout().flush();
        }
    }
    if tty {
        println!();
    }
    if let Some(total) = total {
        if done != total {
            bail!("download incomplete: {done} of {total} bytes");
        }
    }
    file.sync_all().context("writing the new fly")?;
    Ok(())
}

/// A one-line progress bar: `[=====>    ] 12.3 MiB / 40.0 MiB`.
fn progress(done: u64, total: Option<u64>) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let width = 40usize;
            let filled = ((done.min(total) as f64 / total as f64) * width as f64) as usize;
            format!(
                "[{}>{}] {:.1} MiB / {:.1} MiB",
                "=".repeat(filled),
                " ".repeat(width - filled),
                mib(done),
                mib(total)
            )
        }
        None => format!("{:.1} MiB", mib(done)),
    }
}

/// The target URL with `path` (and its query) in place of the URL's own.
fn curl_url(api: &str, path: &str) -> Result<String> {
    let mut url = url::Url::parse(api).map_err(|e| anyhow!("{e}"))?;
    let (p, q) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    url.set_path(p);
    url.set_query(q);
    Ok(url.to_string())
}

/// Quotes arguments containing spaces, like upstream's `--print-and-exit`.
fn printable(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn curl(g: &Global, a: &CurlArgs) -> Result<()> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    t.validate().await?;
    let token = t.props.token.clone().unwrap_or_default();
    let mut args = vec![
        "curl".to_string(),
        "-H".into(),
        format!("Authorization: {} {}", token.kind, token.value),
    ];
    args.extend(a.rest.iter().cloned());
    args.push(curl_url(&t.props.api, &a.path)?);
    if a.print_and_exit {
        println!("{}", printable(&args));
        return Ok(());
    }
    let status = std::process::Command::new(&args[0])
        .args(&args[1..])
        .status()?;
    if !status.success() {
        bail!("exit status {}", status.code().unwrap_or(1));
    }
    Ok(())
}

pub fn delete_target(g: &Global, a: &AllArg) -> Result<()> {
    let name = g
        .target
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(FlyError::NoTarget)?;
    let mut rc = Flyrc::load()?;
    rc.target(name)?;
    if a.all {
        rc.targets.clear();
        rc.save()?;
        println!("deleted all targets");
    } else {
        rc.targets.remove(name);
        rc.save()?;
        println!("deleted target: {name}");
    }
    Ok(())
}

pub fn edit_target(g: &Global, a: &EditTargetArgs) -> Result<()> {
    let name = g
        .target
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(FlyError::NoTarget)?;
    if a.target_name.is_none() && a.concourse_url.is_none() && a.team_name.is_none() {
        bail!("no attributes specified to update");
    }
    let mut rc = Flyrc::load()?;
    let mut props = rc.target(name)?.clone();
    if let Some(url) = &a.concourse_url {
        props.api = url.trim_end_matches('/').to_string();
    }
    if let Some(team) = &a.team_name {
        props.team = team.clone();
    }
    let new_name = a.target_name.clone().unwrap_or_else(|| name.to_string());
    if new_name != name && rc.targets.contains_key(&new_name) {
        return Err(anyhow!("target '{new_name}' already exists"));
    }
    rc.targets.remove(name);
    rc.targets.insert(new_name, props);
    rc.save()?;
    println!("Updated target: {name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fly::rc::TargetToken;
    use base64::Engine;

    #[test]
    fn curl_replaces_the_targets_path_and_query() {
        assert_eq!(
            curl_url("http://ci:8080/", "/api/v1/info?x=1").unwrap(),
            "http://ci:8080/api/v1/info?x=1"
        );
        assert_eq!(
            curl_url("https://ci/base", "api/v1/teams").unwrap(),
            "https://ci/api/v1/teams"
        );
        let args: Vec<String> = ["curl", "-H", "Authorization: bearer x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(printable(&args), "curl -H \"Authorization: bearer x\"");
    }

    #[test]
    fn progress_bar_shows_the_share_downloaded() {
        let p = progress(512 * 1024, Some(1024 * 1024));
        assert_eq!(
            p,
            format!("[{}>{}] 0.5 MiB / 1.0 MiB", "=".repeat(20), " ".repeat(20))
        );
        assert_eq!(progress(1024 * 1024, None), "1.0 MiB");
    }

    #[test]
    fn expiry_column_shows_rfc1123_utc_or_why_not() {
        let mut raw = vec![1u8; 20];
        raw.extend_from_slice(&1_136_214_245u64.to_le_bytes());
        let value = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw);
        let mut props = TargetProps {
            token: Some(TargetToken {
                kind: "bearer".into(),
                value,
            }),
            ..Default::default()
        };
        assert_eq!(expiry_cell(&props), "Mon, 02 Jan 2006 15:04:05 UTC");
        props.token = Some(TargetToken {
            kind: "bearer".into(),
            value: "eyJhbGciOi.jwt.thing".into(),
        });
        assert_eq!(expiry_cell(&props), "n/a: invalid token");
        props.token = None;
        assert_eq!(expiry_cell(&props), "n/a");
    }
}
