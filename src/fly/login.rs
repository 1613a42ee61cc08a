//! `login` (password grant or browser hand-off) and `logout` (spec §4.1, auth.md §6).

use super::cli::{LoginArgs, LogoutArgs};
use super::client::{error_chain, Client, FlyError, Target};
use super::rc::{Flyrc, TargetProps, TargetToken};
use super::{ui, Global};
use crate::proto::api;
use anyhow::{anyhow, bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENT_ID: &str = "fly";
const CLIENT_SECRET: &str = "Zmx5";
const SCOPES: &str = "openid profile email federated:id groups";

pub async fn login(g: &Global, a: &LoginArgs) -> Result<()> {
    let name = g
        .target
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("name for the target must be specified (--target/-t)"))?;
    let mut props = match &a.concourse_url {
        Some(url) => TargetProps {
            api: url.trim_end_matches('/').to_string(),
            team: a.team_name.clone().unwrap_or_else(|| "main".into()),
            ..Default::default()
        },
        None => {
            let saved = Flyrc::load()?.target(name)?.clone();
            TargetProps {
                token: None,
                team: a.team_name.clone().unwrap_or(saved.team.clone()),
                ..saved
            }
        }
    };
    props.insecure = a.insecure;
    props.token = None;
    if let Some(path) = &a.ca_cert {
        props.ca_cert = String::from_utf8_lossy(&super::read_path(path)?).into_owned();
    }
    if let Some(p) = &a.client_cert {
        props.client_cert_path = p.clone();
    }
    if let Some(p) = &a.client_key {
        props.client_key_path = p.clone();
    }
    let team = props.team.clone();
    let target = Target {
        name: name.to_string(),
        client: Client::new(&props.api, &props, g.verbose)?,
        props,
    };

    println!("logging in to team '{team}'");
    println!();
    target.validate_warn_only().await?;

    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let token = match (given(&a.username), given(&a.password)) {
        (Some(u), Some(p)) => password_grant(&target.client, &u, &p).await?,
        _ => match browser_flow(&target.client.url, a.open_browser).await? {
            Some(t) => t,
            None => return Err(FlyError::Exit(0).into()),
        },
    };

    println!();
    let mut props = target.props.clone();
    props.token = Some(token.clone());
    let authed = Client::new(&props.api, &props, g.verbose)?;
    verify_team(&authed, &team).await?;

    let mut rc = Flyrc::load()?;
    rc.targets.insert(name.to_string(), props);
    rc.save()?;
    println!("target saved");
    Ok(())
}

/// The interactive re-login fly does after a 401 on a TTY: browser flow, saved URL/team.
pub async fn relogin(g: &Global) -> Result<()> {
    let args = LoginArgs {
        concourse_url: None,
        insecure: false,
        username: None,
        password: None,
        team_name: None,
        ca_cert: None,
        client_cert: None,
        client_key: None,
        open_browser: false,
    };
    let saved = Flyrc::load()?;
    let insecure = g
        .target
        .as_deref()
        .and_then(|n| saved.targets.get(n))
        .is_some_and(|p| p.insecure);
    login(g, &LoginArgs { insecure, ..args }).await
}

async fn verify_team(c: &Client, team: &str) -> Result<()> {
    let resp = c.send(c.get("/api/v1/user")).await?;
    let raw: serde_json::Value = resp.json()?;
    let user: api::UserInfo = serde_json::from_value(raw.clone()).unwrap_or_default();
    if user.is_admin {
        let teams: Vec<api::Team> = c.get_json("/api/v1/teams", &[]).await?;
        if !teams.iter().any(|t| t.name == team) {
            bail!("team '{team}' does not exist");
        }
        return Ok(());
    }
    if raw.get("teams").is_none_or(|t| t.is_null()) {
        bail!("unable to verify role on team");
    }
    if !user.teams.contains_key(team) {
        bail!("you are not a member of '{team}' or the team does not exist");
    }
    Ok(())
}

/// Go `x/oauth2`'s error text for a failed token request.
fn oauth_error(status: reqwest::StatusCode, body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        error: String,
        #[serde(default)]
        error_description: String,
    }
    match serde_json::from_str::<E>(body) {
        Ok(e) if e.error_description.is_empty() => format!("oauth2: {:?}", e.error),
        Ok(e) => format!("oauth2: {:?} {:?}", e.error, e.error_description),
        Err(_) => format!("oauth2: cannot fetch token: {status}\nResponse: {body}"),
    }
}

/// OAuth2 password grant at `/sky/issuer/token`: Basic client auth first, then the
/// credentials in the form if that fails (x/oauth2's auto-detection).
pub async fn password_grant(c: &Client, username: &str, password: &str) -> Result<TargetToken> {
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
        ("scope", SCOPES),
    ];
    let url = "/sky/issuer/token";
    let first = c
        .execute(
            c.request(reqwest::Method::POST, url)
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .form(&form),
        )
        .await?;
    let (status, body) = (
        first.status(),
        first
            .text()
            .await
            .map_err(|e| FlyError::Network(error_chain(&e)))?,
    );
    let (status, body) = if status.is_success() {
        (status, body)
    } else {
        let mut form2 = form.to_vec();
        form2.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
        let second = c
            .execute(c.request(reqwest::Method::POST, url).form(&form2))
            .await?;
        (
            second.status(),
            second
                .text()
                .await
                .map_err(|e| FlyError::Network(error_chain(&e)))?,
        )
    };
    if !status.is_success() {
        bail!("{}", oauth_error(status, &body));
    }
    let token: api::TokenResponse =
        serde_json::from_str(&body).map_err(|e| anyhow!("oauth2: cannot parse json: {e}"))?;
    Ok(TargetToken {
        kind: token.token_type,
        value: token.access_token,
    })
}

/// `TYPE VALUE` as pasted or handed over by the web UI.
pub fn parse_token(s: &str) -> Result<TargetToken> {
    let s = s.trim();
    match s.split_once(' ') {
        Some((kind, value)) => Ok(TargetToken {
            kind: kind.to_string(),
            value: value.to_string(),
        }),
        None => bail!("invalid token: {s}"),
    }
}

/// Browser login: a local listener receives `?token=` from `/fly_success`, or the user
/// pastes the token. `None` = interrupted.
async fn browser_flow(api_url: &str, open: bool) -> Result<Option<TargetToken>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let login_url = format!("{api_url}/login?fly_port={port}");
    println!("navigate to the following URL in your browser:");
    println!();
    println!("  {login_url}");
    println!();
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        let _ = std::process::Command::new(opener)
            .arg(&login_url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    let manual_tx = tx.clone();
    // Blocking stdin read; the process exits once a token arrives either way.
    std::thread::spawn(move || {
        if let Ok(line) = ui::read_hidden("or enter token manually (input hidden): ") {
            if !line.trim().is_empty() {
                let _ = manual_tx.blocking_send(line);
            }
        }
    });
    let api = api_url.to_string();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if let Some(token) = serve_callback(stream, &api).await {
                let _ = tx.send(token).await;
                return;
            }
        }
    });
    let token = tokio::select! {
        t = rx.recv() => t,
        _ = tokio::signal::ctrl_c() => {
            println!("^C");
            server.abort();
            return Ok(None);
        }
    };
    server.abort();
    match token {
        Some(t) => Ok(Some(parse_token(&t)?)),
        None => bail!("no token received"),
    }
}

/// Answers one request on the local listener; returns the token if it carried one.
async fn serve_callback(mut stream: tokio::net::TcpStream, api: &str) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..]).await.ok()?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]).into_owned();
    let mut first = head.lines().next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let cors = format!("Access-Control-Allow-Origin: {api}\r\n");
    // Chrome's private-network preflight before the web UI's fetch.
    if method == "OPTIONS" {
        let pna = if header("Access-Control-Request-Private-Network").as_deref() == Some("true") {
            "Access-Control-Allow-Private-Network: true\r\n"
        } else {
            ""
        };
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\n{cors}{pna}Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await;
        return None;
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let token = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    // A browser navigation (not the UI's fetch) goes on to the success page.
    let response = if token.is_some() && header("Upgrade-Insecure-Requests").is_some() {
        format!("HTTP/1.1 302 Found\r\n{cors}Location: {api}/fly_success?noop=true\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    } else {
        format!("HTTP/1.1 200 OK\r\n{cors}Content-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    token
}

pub async fn logout(g: &Global, a: &LogoutArgs) -> Result<()> {
    match (g.target.as_deref().filter(|n| !n.is_empty()), a.all) {
        (Some(_), true) | (None, false) => bail!("must specify either --target or --all"),
        (Some(name), false) => logout_target(name, g.verbose).await,
        (None, true) => {
            let names: Vec<String> = Flyrc::load()?.targets.keys().cloned().collect();
            let mut errors = Vec::new();
            for name in names {
                if let Err(e) = logout_target(&name, g.verbose).await {
                    errors.push(format!("{name}: {e:#}"));
                }
            }
            if !errors.is_empty() {
                bail!("{}", errors.join("\n"));
            }
            println!("logged out of all targets");
            Ok(())
        }
    }
}

/// Revokes the token on the server, then empties it locally (kept when revoking fails).
async fn logout_target(name: &str, verbose: bool) -> Result<()> {
    let props = Flyrc::load()?
        .target(name)
        .map_err(|e| anyhow!("failed to load target {name:?}: {e}"))?
        .clone();
    if let Some(token) = props
        .token
        .as_ref()
        .filter(|t| !t.kind.is_empty() && !t.value.is_empty())
    {
        revoke(&props, token, verbose)
            .await
            .map_err(|e| anyhow!("failed to logout from API: {e}"))?;
    }
    let mut rc = Flyrc::load()?;
    if let Some(p) = rc.targets.get_mut(name) {
        p.token = Some(TargetToken::default());
    }
    rc.save()
        .map_err(|e| anyhow!("failed to remove target {name:?}: {e}"))?;
    println!("logged out of target: {name}");
    Ok(())
}

/// `GET /sky/logout` with the auth cookie.
async fn revoke(props: &TargetProps, token: &TargetToken, verbose: bool) -> Result<()> {
    let anonymous = TargetProps {
        token: None,
        ..props.clone()
    };
    let c = Client::new(&props.api, &anonymous, verbose)?;
    // Go's net/http quotes cookie values containing a space.
    let cookie = format!("skymarshal_auth=\"{} {}\"", token.kind, token.value);
    let resp = c
        .send_raw(c.get("/sky/logout").header("Cookie", cookie))
        .await
        .map_err(|e| anyhow!("logout request failed: {e}"))?;
    if resp.status != reqwest::StatusCode::OK {
        bail!("logout failed with status: {}", resp.status_text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_tokens_need_a_type_and_a_value() {
        assert_eq!(
            parse_token("bearer abc\n").unwrap(),
            TargetToken {
                kind: "bearer".into(),
                value: "abc".into()
            }
        );
        assert_eq!(
            parse_token("abc").unwrap_err().to_string(),
            "invalid token: abc"
        );
    }

    async fn exchange(request: &str) -> (String, Option<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve_callback(stream, "http://atc").await
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        (response, server.await.unwrap())
    }

    #[tokio::test]
    async fn the_local_listener_takes_the_token_and_sends_browsers_on() {
        let (resp, token) = exchange(
            "GET /?token=bearer%20a%2Bb HTTP/1.1\r\nHost: x\r\nUpgrade-Insecure-Requests: 1\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 302 Found\r\n"), "{resp}");
        assert!(
            resp.contains("Location: http://atc/fly_success?noop=true\r\n"),
            "{resp}"
        );
        assert!(
            resp.contains("Access-Control-Allow-Origin: http://atc\r\n"),
            "{resp}"
        );
        assert_eq!(token.as_deref(), Some("bearer a+b"));

        let (resp, token) = exchange("GET /?token=bearer%20x HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert_eq!(token.as_deref(), Some("bearer x"));
    }

    #[tokio::test]
    async fn private_network_preflights_are_allowed_without_taking_a_token() {
        let (resp, token) = exchange(
            "OPTIONS /?token=x HTTP/1.1\r\nAccess-Control-Request-Private-Network: true\r\nAccess-Control-Request-Method: GET\r\n\r\n",
        )
        .await;
        assert!(
            resp.contains("Access-Control-Allow-Private-Network: true\r\n"),
            "{resp}"
        );
        assert_eq!(token, None);
    }

    #[test]
    fn oauth_errors_read_like_go_x_oauth2() {
        let body =
            r#"{"error":"access_denied","error_description":"Invalid username or password"}"#;
        assert_eq!(
            oauth_error(reqwest::StatusCode::UNAUTHORIZED, body),
            r#"oauth2: "access_denied" "Invalid username or password""#
        );
    }
}
