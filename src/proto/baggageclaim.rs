//! Baggageclaim: the volume server's wire types and client trait (spec: worker-protocols.md §2).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use super::stream::ByteStream;

/// Volume properties (string to string), also the shape of a list filter.
pub type Properties = BTreeMap<String, String>;

/// How a new volume gets its content (`strategy.type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Strategy {
    /// A new empty volume.
    Empty,
    /// A writable copy-on-write child of a live parent volume.
    Cow { volume: String },
    /// A host directory copied in, or a host file unpacked as a gzip tarball.
    Import {
        path: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        follow_symlinks: bool,
    },
}

/// `POST /volumes` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handle: String,
    pub strategy: Strategy,
    #[serde(default)]
    pub properties: Properties,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Owner of the volume root (as seen inside an unprivileged container) when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl VolumeRequest {
    pub fn new(handle: impl Into<String>, strategy: Strategy) -> Self {
        VolumeRequest {
            handle: handle.into(),
            strategy,
            properties: Properties::new(),
            privileged: false,
            uid: None,
            gid: None,
        }
    }
}

/// A volume as the API returns it. `path` is the data directory on the worker host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub handle: String,
    pub path: String,
    #[serde(default)]
    pub properties: Properties,
    #[serde(default)]
    pub privileged: bool,
}

/// `{"handle":"h"}` from `POST /volumes-async`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncHandle {
    pub handle: String,
}

/// `{"value":"v"}` for `PUT /volumes/:handle/properties/:key`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyRequest {
    pub value: String,
}

/// `{"value":bool}` for `PUT /volumes/:handle/privileged`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegedRequest {
    pub value: bool,
}

/// `{"error":"message"}`, the body of every failing route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Compression of a streamed tar (`Content-Encoding` / `Accept-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    Gzip,
    Zstd,
    /// Accepted on the wire by upstream; not implemented here (answered with 400).
    S2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::S2 => "s2",
        }
    }
}

impl std::str::FromStr for Encoding {
    type Err = BaggageclaimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "raw" => Ok(Encoding::Raw),
            "gzip" => Ok(Encoding::Gzip),
            "zstd" => Ok(Encoding::Zstd),
            "s2" => Ok(Encoding::S2),
            other => Err(BaggageclaimError::BadRequest(format!(
                "unsupported encoding: {other:?}"
            ))),
        }
    }
}

/// What a Baggageclaim call can fail with; each variant is one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaggageclaimError {
    /// 404: unknown volume (or a missing path inside one).
    #[error("{0}")]
    NotFound(String),
    /// 400: malformed JSON, hostile or malformed archive, bad encoding, bad parameters.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the stream exceeded its size limit.
    #[error("{0}")]
    Forbidden(String),
    /// 422: a request that parses but cannot be done (unknown strategy, missing parent).
    #[error("{0}")]
    Unprocessable(String),
    /// 500: anything else.
    #[error("{0}")]
    Other(String),
}

impl BaggageclaimError {
    pub fn other(msg: impl std::fmt::Display) -> Self {
        BaggageclaimError::Other(msg.to_string())
    }
    pub fn bad_request(msg: impl std::fmt::Display) -> Self {
        BaggageclaimError::BadRequest(msg.to_string())
    }
    pub fn status(&self) -> u16 {
        match self {
            BaggageclaimError::NotFound(_) => 404,
            BaggageclaimError::BadRequest(_) => 400,
            BaggageclaimError::Forbidden(_) => 403,
            BaggageclaimError::Unprocessable(_) => 422,
            BaggageclaimError::Other(_) => 500,
        }
    }
    pub fn from_status(status: u16, message: String) -> Self {
        match status {
            404 => BaggageclaimError::NotFound(message),
            400 => BaggageclaimError::BadRequest(message),
            403 => BaggageclaimError::Forbidden(message),
            422 => BaggageclaimError::Unprocessable(message),
            _ => BaggageclaimError::Other(message),
        }
    }
}

/// The result of polling an async volume creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncVolume {
    Pending,
    Done(Volume),
}

/// A Baggageclaim server: the HTTP client (`baggageclaim::client`) and the in-process
/// volume store (`baggageclaim::Volumes`) both implement it.
///
/// Volumes have no TTL: one lives until it is destroyed. A parent with live COW children
/// cannot be destroyed out from under them (the children keep their content).
#[async_trait]
pub trait Baggageclaim: Send + Sync {
    async fn create_volume(&self, request: VolumeRequest) -> Result<Volume, BaggageclaimError>;
    /// Starts creating a volume in the background; returns its handle at once.
    async fn create_volume_async(
        &self,
        request: VolumeRequest,
    ) -> Result<String, BaggageclaimError>;
    /// `Pending` while creation runs; the volume, or the creation error, when it ended.
    async fn create_volume_async_result(
        &self,
        handle: &str,
    ) -> Result<AsyncVolume, BaggageclaimError>;
    /// Forgets an async creation; a volume it finishes later is destroyed.
    async fn forget_volume_async(&self, handle: &str) -> Result<(), BaggageclaimError>;
    /// Volumes whose properties include every pair of `filter`.
    async fn list_volumes(&self, filter: Properties) -> Result<Vec<Volume>, BaggageclaimError>;
    async fn lookup_volume(&self, handle: &str) -> Result<Volume, BaggageclaimError>;
    async fn destroy_volume(&self, handle: &str) -> Result<(), BaggageclaimError>;
    /// Destroys several volumes; unknown handles are ignored.
    async fn destroy_volumes(&self, handles: &[String]) -> Result<(), BaggageclaimError>;
    /// Purges leftovers of dead or half-created volumes.
    async fn cleanup_orphans(&self) -> Result<(), BaggageclaimError>;
    async fn set_property(
        &self,
        handle: &str,
        key: &str,
        value: &str,
    ) -> Result<(), BaggageclaimError>;
    async fn privileged(&self, handle: &str) -> Result<bool, BaggageclaimError>;
    async fn set_privileged(&self, handle: &str, privileged: bool)
        -> Result<(), BaggageclaimError>;
    /// Unpacks a tar (compressed with `encoding`) at `path` in the volume. `limit_mb` bounds
    /// the compressed size (`None` or 0 = unlimited).
    async fn stream_in(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
        limit_mb: Option<f64>,
        body: ByteStream,
    ) -> Result<(), BaggageclaimError>;
    /// A tar of `path` in the volume (its contents for a directory, the file alone otherwise).
    async fn stream_out(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
    ) -> Result<ByteStream, BaggageclaimError>;
    /// Streams `path` straight into another Baggageclaim's stream-in URL.
    async fn stream_p2p_out(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
        stream_in_url: &str,
    ) -> Result<(), BaggageclaimError>;
    /// The base URL other workers reach this Baggageclaim at.
    async fn p2p_url(&self) -> Result<String, BaggageclaimError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_use_upstream_names() {
        let r: VolumeRequest = serde_json::from_str(
            r#"{"handle":"h","strategy":{"type":"cow","volume":"p"},"properties":{"a":"b"}}"#,
        )
        .expect("parses");
        assert_eq!(r.strategy, Strategy::Cow { volume: "p".into() });
        let s = serde_json::to_string(&Strategy::Import {
            path: "/x".into(),
            follow_symlinks: false,
        })
        .expect("ok");
        assert_eq!(s, r#"{"type":"import","path":"/x"}"#);
        assert!(serde_json::from_str::<Strategy>(r#"{"type":"btrfs"}"#).is_err());
    }
}
