//! The one HTTP client of fly: base URL, bearer token, `--verbose` dumps, mapping of
//! response statuses to upstream's errors, and the version check against `/api/v1/info`.

use super::rc::{Flyrc, TargetProps, TargetToken};
use super::ui;
use crate::config::refs::PipelineRef;
use crate::proto::api;
use anyhow::{anyhow, Context, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// Errors upstream renders specially (fly/main.go); everything else is `error: <msg>`.
#[derive(Debug, thiserror::Error)]
pub enum FlyError {
    #[error("not authorized")]
    Unauthorized,
    #[error("{}", if .0.is_empty() { "forbidden".to_string() } else { format!("forbidden: {}", .0) })]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Unexpected Response\nStatus: {status}\nBody:\n{body}")]
    Unexpected {
        status: String,
        code: u16,
        body: String,
    },
    #[error("{0}")]
    Network(String),
    #[error("{0}")]
    VersionMismatch(String),
    #[error("no target specified")]
    NoTarget,
    /// A message printed as-is to stderr (no `error:` prefix), exit 1.
    #[error("{0}")]
    Fail(String),
    /// Exit with this code; whatever needed printing has been printed.
    #[error("exit status {0}")]
    Exit(i32),
}

impl FlyError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FlyError::NotFound(_))
    }
}

/// Whether an anyhow error is our 404.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<FlyError>()
        .is_some_and(FlyError::is_not_found)
}

pub fn fail(msg: impl Into<String>) -> anyhow::Error {
    FlyError::Fail(msg.into()).into()
}

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment.
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A response whose status was 2xx.
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Go's `resp.Status`: `404 Not Found`.
    pub fn status_text(&self) -> String {
        let reason = self.status.canonical_reason().unwrap_or("");
        format!("{} {reason}", self.status.as_u16())
            .trim_end()
            .to_string()
    }

    /// The "Unexpected Response" error for this response.
    pub fn unexpected(&self) -> FlyError {
        FlyError::Unexpected {
            status: self.status_text(),
            code: self.status.as_u16(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).context("could not decode the server's response")
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub url: String,
    pub token: Option<TargetToken>,
    verbose: bool,
}

impl Client {
    pub fn new(url: &str, props: &TargetProps, verbose: bool) -> Result<Client> {
        let mut b = reqwest::Client::builder();
        if props.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        if !props.ca_cert.is_empty() {
            for cert in reqwest::Certificate::from_pem_bundle(props.ca_cert.as_bytes())
                .context("invalid CA certificate")?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if !props.client_cert_path.is_empty() && !props.client_key_path.is_empty() {
            let mut pem = std::fs::read(&props.client_cert_path)
                .with_context(|| format!("could not read {}", props.client_cert_path))?;
            pem.extend(
                std::fs::read(&props.client_key_path)
                    .with_context(|| format!("could not read {}", props.client_key_path))?,
            );
            b = b
                .identity(reqwest::Identity::from_pem(&pem).context("invalid client certificate")?);
        }
        Ok(Client {
            http: b.build()?,
            url: url.trim_end_matches('/').to_string(),
            token: props.token.clone(),
            verbose,
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        // A logged-out target keeps an empty token, and upstream still sends it (as
        // `Bearer `), so the server answers 401 rather than serving it anonymously.
        if let Some(t) = &self.token {
            // Upstream's client normalises the saved type to `Bearer`.
            let kind = if t.kind.eq_ignore_ascii_case("bearer") || t.kind.is_empty() {
                "Bearer"
            } else {
                t.kind.as_str()
            };
            rb = rb.header("Authorization", format!("{kind} {}", t.value));
        }
        rb
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    /// Sends without interpreting the status (network errors only).
    pub async fn execute(&self, rb: RequestBuilder) -> Result<reqwest::Response, FlyError> {
        let req = rb.build().map_err(|e| FlyError::Network(error_chain(&e)))?;
        if self.verbose {
            dump_request(&req);
        }
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| FlyError::Network(error_chain(&e)))?;
        Ok(resp)
    }

    /// Sends and reads the whole response whatever its status (network errors only).
    pub async fn send_raw(&self, rb: RequestBuilder) -> Result<Resp, FlyError> {
        let resp = self.execute(rb).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| FlyError::Network(error_chain(&e)))?
            .to_vec();
        if self.verbose {
            eprintln!("HTTP/1.1 {status}");
            for (k, v) in &headers {
                eprintln!("{k}: {}", v.to_str().unwrap_or("<binary>"));
            }
            eprintln!("\n{}\n", String::from_utf8_lossy(&body));
        }
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Sends and maps non-2xx statuses to upstream's errors.
    pub async fn send(&self, rb: RequestBuilder) -> Result<Resp, FlyError> {
        let resp = self.send_raw(rb).await?;
        check_status(resp.status, &resp.body)?;
        if let Some(w) = resp
            .headers
            .get("X-Concourse-Policy-Check-Warning")
            .and_then(|v| v.to_str().ok())
        {
            show_policy_warning(w);
        }
        Ok(resp)
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T> {
        let resp = self.send(self.get(path).query(query)).await?;
        resp.json()
    }

    pub async fn info(&self) -> Result<api::Info> {
        self.get_json("/api/v1/info", &[]).await
    }
}

fn show_policy_warning(w: &str) {
    let tty = ui::stderr_is_tty();
    for part in w.split(" * ") {
        eprintln!("{}", ui::paint(part, ui::YELLOW, tty));
    }
    eprintln!(
        "{}",
        ui::paint(
            "policy check is in soft-enforcement mode; the action was allowed",
            ui::YELLOW,
            tty
        )
    );
}

fn dump_request(req: &reqwest::Request) {
    eprintln!("{} {} HTTP/1.1", req.method(), req.url());
    for (k, v) in req.headers() {
        eprintln!("{k}: {}", v.to_str().unwrap_or("<binary>"));
    }
    if let Some(body) = req.body().and_then(|b| b.as_bytes()) {
        eprintln!("\n{}", String::from_utf8_lossy(body));
    }
    eprintln!();
}

/// An error with its causes, like Go's wrapped error text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

/// Upstream's `populateResponse` status mapping.
pub fn check_status(status: StatusCode, body: &[u8]) -> Result<(), FlyError> {
    match status.as_u16() {
        200..=299 => Ok(()),
        401 => Err(FlyError::Unauthorized),
        403 => Err(FlyError::Forbidden(
            String::from_utf8_lossy(body).trim_end().to_string(),
        )),
        404 => {
            let details: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.get("detail").and_then(|d| d.as_str()).map(String::from))
                .collect();
            Err(FlyError::NotFound(if details.is_empty() {
                "resource not found".into()
            } else {
                details.join(" ")
            }))
        }
        code => Err(FlyError::Unexpected {
            status: format!("{} {}", code, status.canonical_reason().unwrap_or(""))
                .trim_end()
                .to_string(),
            code,
            body: String::from_utf8_lossy(body).into_owned(),
        }),
    }
}

/// fly's own version: `FAKE_FLY_VERSION` if set, else the API version we speak.
pub fn fly_version() -> String {
    std::env::var("FAKE_FLY_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| api::API_VERSION.to_string())
}

#[derive(Debug, PartialEq, Eq)]
pub enum VersionCheck {
    Ok,
    /// Only the patch differs: warn and go on.
    Warn(String),
    /// Major or minor differ: refuse.
    Abort(String),
}

fn parse_semver(v: &str) -> Option<(u64, u64, u64)> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    Some((
        parts[0].parse().ok()?,
        parts[1].parse().ok()?,
        parts[2].parse().ok()?,
    ))
}

fn is_dev(v: &str) -> bool {
    v.split_once(['-', '+'])
        .is_some_and(|(_, rest)| rest.split(['.', '-', '+']).any(|p| p == "dev"))
}

/// Spec §3: equal versions or a dev fly pass; patch drift warns; major/minor drift aborts.
pub fn check_version(fly: &str, server: &str, target: &str) -> VersionCheck {
    if fly == server || is_dev(fly) {
        return VersionCheck::Ok;
    }
    let msg = format!(
        "fly version ({fly}) is out of sync with the target ({server}). to sync up, run the following:\n\n    fly -t {target} sync\n"
    );
    match (parse_semver(fly), parse_semver(server)) {
        (Some(a), Some(b)) if a.0 == b.0 && a.1 == b.1 => VersionCheck::Warn(msg),
        _ => VersionCheck::Abort(msg),
    }
}

fn print_version_warning(msg: &str) {
    let tty = ui::stderr_is_tty();
    eprintln!("{}", ui::paint("WARNING:\n", ui::RED, tty));
    eprintln!("{}", ui::paint(msg, ui::RED, tty));
}

/// A saved target with a client for it.
pub struct Target {
    pub name: String,
    pub props: TargetProps,
    pub client: Client,
}

impl Target {
    /// Loads `-t NAME` from the flyrc (missing `-t` → the "no target specified" help).
    pub fn load(name: Option<&str>, verbose: bool) -> Result<Target> {
        let name = name.filter(|n| !n.is_empty()).ok_or(FlyError::NoTarget)?;
        let rc = Flyrc::load()?;
        let props = rc.target(name)?.clone();
        let client = Client::new(&props.api, &props, verbose)?;
        Ok(Target {
            name: name.to_string(),
            props,
            client,
        })
    }

    pub fn team(&self) -> &str {
        &self.props.team
    }

    /// The strict version check most commands run first.
    pub async fn validate(&self) -> Result<()> {
        let info = self.client.info().await?;
        match check_version(&fly_version(), &info.version, &self.name) {
            VersionCheck::Ok => Ok(()),
            VersionCheck::Warn(msg) => {
                print_version_warning(&msg);
                Ok(())
            }
            VersionCheck::Abort(msg) => Err(FlyError::VersionMismatch(msg).into()),
        }
    }

    /// The warning-only variant used by `login`.
    pub async fn validate_warn_only(&self) -> Result<()> {
        let info = self.client.info().await?;
        match check_version(&fly_version(), &info.version, &self.name) {
            VersionCheck::Ok => {}
            VersionCheck::Warn(msg) | VersionCheck::Abort(msg) => print_version_warning(&msg),
        }
        Ok(())
    }

    /// `--team NAME` checks the team exists and the user has a role on it; default is the
    /// target's team.
    pub async fn resolve_team(&self, team: Option<&str>) -> Result<String> {
        match team.filter(|t| !t.is_empty()) {
            Some(team) => Ok(self.find_team(team).await?.name),
            None => Ok(self.team().to_string()),
        }
    }

    /// `GET /api/v1/teams/NAME` with upstream's `FindTeam` messages.
    pub async fn find_team(&self, team: &str) -> Result<api::Team> {
        let c = &self.client;
        match c.send(c.get(&format!("/api/v1/teams/{}", seg(team)))).await {
            Ok(resp) => {
                let mut found: api::Team = resp.json()?;
                if found.name.is_empty() {
                    found.name = team.to_string();
                }
                Ok(found)
            }
            Err(FlyError::Forbidden(_)) => Err(anyhow!("you do not have a role on team '{team}'")),
            Err(FlyError::NotFound(_)) => Err(anyhow!("team '{team}' does not exist")),
            Err(e) => Err(e.into()),
        }
    }
}

/// `/api/v1/teams/T/pipelines/P` (the instance vars go in the query, see [`PipelineRef::query`]).
pub fn pipeline_path(team: &str, pipeline: &PipelineRef) -> String {
    format!(
        "/api/v1/teams/{}/pipelines/{}",
        seg(team),
        seg(&pipeline.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_or_dev_versions_pass() {
        assert_eq!(check_version("8.2.5", "8.2.5", "ci"), VersionCheck::Ok);
        assert_eq!(check_version("0.0.0-dev", "7.1.0", "ci"), VersionCheck::Ok);
    }

    #[test]
    fn patch_drift_warns_and_minor_drift_aborts() {
        assert!(matches!(
            check_version("8.2.5", "8.2.4", "ci"),
            VersionCheck::Warn(_)
        ));
        let VersionCheck::Abort(msg) = check_version("8.2.5", "8.3.0", "ci") else {
            panic!("should abort")
        };
        assert_eq!(msg, "fly version (8.2.5) is out of sync with the target (8.3.0). to sync up, run the following:\n\n    fly -t ci sync\n");
        assert!(matches!(
            check_version("8.2.5", "0.0.0-dev", "ci"),
            VersionCheck::Abort(_)
        ));
        assert!(matches!(
            check_version("8.2.5", "9.2.5", "ci"),
            VersionCheck::Abort(_)
        ));
    }

    #[test]
    fn statuses_map_to_upstream_errors() {
        assert!(matches!(
            check_status(StatusCode::UNAUTHORIZED, b""),
            Err(FlyError::Unauthorized)
        ));
        assert_eq!(
            check_status(StatusCode::FORBIDDEN, b"forbidden")
                .unwrap_err()
                .to_string(),
            "forbidden: forbidden"
        );
        assert_eq!(
            check_status(StatusCode::FORBIDDEN, b"")
                .unwrap_err()
                .to_string(),
            "forbidden"
        );
        assert_eq!(
            check_status(StatusCode::NOT_FOUND, b"")
                .unwrap_err()
                .to_string(),
            "resource not found"
        );
        assert_eq!(
            check_status(
                StatusCode::NOT_FOUND,
                br#"{"errors":[{"detail":"a"},{"detail":"b"}]}"#
            )
            .unwrap_err()
            .to_string(),
            "a b"
        );
        assert_eq!(
            check_status(StatusCode::INTERNAL_SERVER_ERROR, b"boom")
                .unwrap_err()
                .to_string(),
            "Unexpected Response\nStatus: 500 Internal Server Error\nBody:\nboom"
        );
        assert!(check_status(StatusCode::NO_CONTENT, b"").is_ok());
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("my-pipe_1.0"), "my-pipe_1.0");
    }
}
