//! A small OCI distribution client: manifests, blobs, tags, uploads, with anonymous,
//! basic and bearer-token auth (the `WWW-Authenticate` challenge dance).

use crate::resources::ResourceError;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use std::sync::Mutex;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn err(msg: impl Into<String>) -> ResourceError {
    ResourceError::new(msg)
}

/// Where an image lives: `host[:port]/path`, Docker Hub when the first part is no host.
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    pub registry: String,
    pub name: String,
}

impl Repository {
    pub fn parse(s: &str) -> Result<Repository, ResourceError> {
        if s.is_empty() {
            return Err(err("repository is required"));
        }
        let (first, rest) = s.split_once('/').unwrap_or(("", s));
        let is_host = !first.is_empty()
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if is_host {
            Ok(Repository {
                registry: first.to_string(),
                name: rest.to_string(),
            })
        } else {
            let name = if s.contains('/') {
                s.to_string()
            } else {
                format!("library/{s}")
            };
            Ok(Repository {
                registry: "registry-1.docker.io".into(),
                name,
            })
        }
    }
}

pub struct Registry {
    http: Client,
    base: String,
    repo: Repository,
    basic: Option<(String, String)>,
    token: Mutex<Option<String>>,
}

pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub body: Vec<u8>,
}

impl Registry {
    pub fn new(
        repo: Repository,
        insecure: bool,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Registry, ResourceError> {
        let http = Client::builder()
            .danger_accept_invalid_certs(insecure)
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| err(format!("building HTTP client: {e}")))?;
        let scheme = if insecure { "http" } else { "https" };
        let basic = username.map(|u| (u, password.unwrap_or_default()));
        Ok(Registry {
            http,
            base: format!("{scheme}://{}/v2/{}", repo.registry, repo.name),
            repo,
            basic,
            token: Mutex::new(None),
        })
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    fn authed(&self, req: RequestBuilder) -> RequestBuilder {
        let token = self.token.lock().map(|t| t.clone()).unwrap_or(None);
        match (token, &self.basic) {
            (Some(t), _) => req.header(AUTHORIZATION, format!("Bearer {t}")),
            (None, Some((u, p))) => req.basic_auth(u, Some(p)),
            (None, None) => req,
        }
    }

    /// Sends a request, answering one bearer challenge if the registry asks for it.
    fn send(&self, make: &dyn Fn() -> RequestBuilder) -> Result<Response, ResourceError> {
        let resp = self
            .authed(make())
            .send()
            .map_err(|e| err(format!("contacting registry {}: {e}", self.repo.registry)))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some(params) = challenge
            .strip_prefix("Bearer ")
            .or_else(|| challenge.strip_prefix("bearer "))
        else {
            return Ok(resp);
        };
        let mut realm = String::new();
        let mut query = Vec::new();
        for part in split_challenge(params) {
            if let Some((k, v)) = part.split_once('=') {
                let v = v.trim_matches('"').to_string();
                if k.trim() == "realm" {
                    realm = v;
                } else {
                    query.push((k.trim().to_string(), v));
                }
            }
        }
        let mut token_req = self.http.get(&realm).query(&query);
        if let Some((u, p)) = &self.basic {
            token_req = token_req.basic_auth(u, Some(p));
        }
        let body: serde_json::Value = token_req
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| err(format!("getting registry token from {realm}: {e}")))?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .map(String::from);
        if let Ok(mut t) = self.token.lock() {
            *t = token;
        }
        self.authed(make())
            .send()
            .map_err(|e| err(format!("contacting registry {}: {e}", self.repo.registry)))
    }

    fn expect_ok(resp: Response, what: &str) -> Result<Response, ResourceError> {
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            Err(err(format!("{what}: {status}: {}", body.trim())))
        }
    }

    pub fn manifest(&self, reference: &str) -> Result<Option<Manifest>, ResourceError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let accept = [
            MEDIA_OCI_INDEX,
            MEDIA_OCI_MANIFEST,
            MEDIA_DOCKER_LIST,
            MEDIA_DOCKER_MANIFEST,
        ]
        .join(", ");
        let resp = self.send(&|| self.http.get(&url).header(ACCEPT, accept.clone()))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = Self::expect_ok(resp, &format!("fetching manifest {reference}"))?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let header_digest = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|h| h.to_str().ok())
            .map(String::from);
        let body = resp
            .bytes()
            .map_err(|e| err(format!("reading manifest: {e}")))?
            .to_vec();
        let digest = header_digest.unwrap_or_else(|| sha256_digest(&body));
        Ok(Some(Manifest {
            media_type,
            digest,
            body,
        }))
    }

    pub fn tags(&self) -> Result<Vec<String>, ResourceError> {
        let url = format!("{}/tags/list", self.base);
        let resp = self.send(&|| self.http.get(&url))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(vec![]);
        }
        let body: serde_json::Value = Self::expect_ok(resp, "listing tags")?
            .json()
            .map_err(|e| err(format!("decoding tags: {e}")))?;
        Ok(body["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn blob(&self, digest: &str) -> Result<Response, ResourceError> {
        let url = format!("{}/blobs/{digest}", self.base);
        Self::expect_ok(
            self.send(&|| self.http.get(&url))?,
            &format!("fetching blob {digest}"),
        )
    }

    pub fn has_blob(&self, digest: &str) -> Result<bool, ResourceError> {
        let url = format!("{}/blobs/{digest}", self.base);
        Ok(self.send(&|| self.http.head(&url))?.status().is_success())
    }

    /// Monolithic upload: POST for a location, then PUT the bytes with their digest.
    pub fn upload_blob(&self, digest: &str, bytes: Vec<u8>) -> Result<(), ResourceError> {
        if self.has_blob(digest)? {
            return Ok(());
        }
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = Self::expect_ok(self.send(&|| self.http.post(&url))?, "starting blob upload")?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| err("registry gave no upload location"))?;
        let mut target = if location.starts_with("http") {
            location.to_string()
        } else {
            let origin = self.base.split("/v2/").next().unwrap_or_default();
            format!("{origin}{location}")
        };
        target.push(if target.contains('?') { '&' } else { '?' });
        target.push_str(&format!("digest={digest}"));
        let resp = self.send(&|| {
            self.http
                .put(&target)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.clone())
        })?;
        Self::expect_ok(resp, &format!("uploading blob {digest}")).map(|_| ())
    }

    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<(), ResourceError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let resp = self.send(&|| {
            self.http
                .put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(body.to_vec())
        })?;
        Self::expect_ok(resp, &format!("pushing manifest {reference}")).map(|_| ())
    }
}

/// Splits `a="x,y",b=z` on commas outside quotes.
fn split_challenge(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_resolve_like_docker() {
        assert_eq!(
            Repository::parse("busybox").expect("ok"),
            Repository {
                registry: "registry-1.docker.io".into(),
                name: "library/busybox".into()
            }
        );
        assert_eq!(
            Repository::parse("concourse/git").expect("ok").name,
            "concourse/git"
        );
        assert_eq!(
            Repository::parse("localhost:5000/a/b").expect("ok"),
            Repository {
                registry: "localhost:5000".into(),
                name: "a/b".into()
            }
        );
        assert_eq!(
            Repository::parse("ghcr.io/x").expect("ok").registry,
            "ghcr.io"
        );
        assert!(Repository::parse("").is_err());
    }

    #[test]
    fn challenges_split_outside_quotes() {
        let parts =
            split_challenge(r#"realm="https://auth",service="reg",scope="repository:a:pull,push""#);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], r#"scope="repository:a:pull,push""#);
    }
}
