//! Garden: the container server's wire types and client trait (spec: worker-protocols.md §1).
//!
//! Field names follow Go's `encoding/json` output of upstream's types: snake_case request
//! specs, PascalCase `ContainerInfo`/`Metrics`, `Handle`/`Handles` in create/list responses.
//! Every field is optional on input, because Go clients send empty objects everywhere and
//! omit zero scalars.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// The container property naming the build a container belongs to: the engine sets it,
/// and both the ATC and the worker side (the TSA's drain check) read it.
pub const BUILD_ID: &str = "concourse:build-id";

pub use super::stream::ByteStream;

/// Container properties (string to string), also the shape of a list filter.
pub type Properties = BTreeMap<String, String>;

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// The rootfs of the worker's own base resource types (`concourse resource TYPE ...`):
/// the host's system directories read-only, nothing else of the host (the linux runtime
/// builds it; see `garden::linux::rootfs`). Upstream ships a rootfs per base type instead.
pub const WORKER_ROOTFS: &str = "worker:///base-resource-types";

/// `POST /containers` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub handle: String,
    /// Idle time in nanoseconds after which the server destroys the container; 0 = server default.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub grace_time: u64,
    /// `raw:///abs/dir`, or [`WORKER_ROOTFS`]; empty means "use `image`". With both empty
    /// the linux runtime answers "no image specified" (the process runtime runs on the host).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rootfs: String,
    pub image: ImageRef,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bind_mounts: Vec<BindMount>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: Properties,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    pub limits: Limits,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub netout_rules: Vec<NetOutRule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub netin: Vec<NetIn>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uri: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
}

/// `mode` 0 is read-only and is omitted on the wire, so a missing `mode` means read-only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u8", into = "u8")]
pub enum BindMountMode {
    #[default]
    ReadOnly,
    ReadWrite,
}
impl From<u8> for BindMountMode {
    fn from(v: u8) -> Self {
        if v == 1 {
            BindMountMode::ReadWrite
        } else {
            BindMountMode::ReadOnly
        }
    }
}
impl From<BindMountMode> for u8 {
    fn from(m: BindMountMode) -> u8 {
        match m {
            BindMountMode::ReadOnly => 0,
            BindMountMode::ReadWrite => 1,
        }
    }
}
fn is_read_only(m: &BindMountMode) -> bool {
    *m == BindMountMode::ReadOnly
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindMount {
    pub src_path: String,
    pub dst_path: String,
    #[serde(skip_serializing_if = "is_read_only")]
    pub mode: BindMountMode,
    /// 0 = a host path, 1 = a path inside the container.
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub origin: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub bandwidth_limits: BandwidthLimits,
    pub cpu_limits: CpuLimits,
    pub disk_limits: DiskLimits,
    pub memory_limits: MemoryLimits,
    pub pid_limits: PidLimits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BandwidthLimits {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub rate: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub burst: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuLimits {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub weight: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub limit_in_shares: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskLimits {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub inode_soft: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub inode_hard: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub byte_soft: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub byte_hard: u64,
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub scope: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryLimits {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub limit_in_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidLimits {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub max: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetOutRule {
    /// 0 all, 1 tcp, 2 udp, 3 icmp, 4 icmpv6.
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub protocol: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<IpRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmps: Option<IcmpControl>,
    #[serde(skip_serializing_if = "is_false")]
    pub log: bool,
}

impl NetOutRule {
    /// What the ATC sends for every non-hermetic container: any protocol, anywhere.
    pub fn allow_all() -> NetOutRule {
        NetOutRule {
            networks: vec![IpRange {
                start: "0.0.0.0".into(),
                end: "255.255.255.255".into(),
            }],
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpRange {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IcmpControl {
    #[serde(rename = "type")]
    pub type_: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetIn {
    pub host_port: u32,
    pub container_port: u32,
}

/// `POST /containers/:handle/net/in` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetInRequest {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub handle: String,
    pub host_port: u32,
    pub container_port: u32,
}

/// `POST /containers/:handle/processes` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessSpec {
    /// Caller-chosen id, so the process can be re-attached; generated when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub path: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<ProcessLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<TtySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bind_mounts: Vec<BindMount>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessLimits {
    pub cpu_limits: CpuLimits,
    pub memory_limits: MemoryLimits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TtySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_size: Option<WindowSize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowSize {
    pub columns: u16,
    pub rows: u16,
}

/// One NDJSON message on a process's control connection, in either direction (§1.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessPayload {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub process_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stream_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<TtySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u8>,
}

/// Payload `source` numbers.
pub const SOURCE_STDIN: u8 = 0;
pub const SOURCE_STDOUT: u8 = 1;
pub const SOURCE_STDERR: u8 = 2;

/// Signals a client can send to a process: 0 terminate (SIGTERM), 1 kill (SIGKILL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Kill,
}
impl Signal {
    pub fn wire(self) -> u8 {
        match self {
            Signal::Terminate => 0,
            Signal::Kill => 1,
        }
    }
    /// Upstream treats any other value as "close stdin", hence `None`.
    pub fn from_wire(v: u8) -> Option<Signal> {
        match v {
            0 => Some(Signal::Terminate),
            1 => Some(Signal::Kill),
            _ => None,
        }
    }
}

/// `GET /capacity`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capacity {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub memory_in_bytes: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub disk_in_bytes: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub schedulable_disk_in_bytes: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub max_containers: u64,
}

/// `{"Handle":"h"}`; also accepts `handle`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleResponse {
    #[serde(rename = "Handle", alias = "handle")]
    pub handle: String,
}

/// `{"Handles":[...]}`; also accepts `handles` and `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlesResponse {
    #[serde(
        rename = "Handles",
        alias = "handles",
        default,
        deserialize_with = "null_as_default"
    )]
    pub handles: Vec<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Container state in `ContainerInfo.State`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    #[default]
    Active,
    Stopped,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerInfo {
    pub state: ContainerState,
    #[serde(deserialize_with = "null_as_default")]
    pub events: Vec<String>,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
    #[serde(rename = "ContainerIP")]
    pub container_ip: String,
    #[serde(rename = "ContainerIPv6")]
    pub container_ipv6: String,
    #[serde(rename = "ExternalIP")]
    pub external_ip: String,
    pub container_path: String,
    #[serde(rename = "ProcessIDs", deserialize_with = "null_as_default")]
    pub process_ids: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub properties: Properties,
    #[serde(deserialize_with = "null_as_default")]
    pub mapped_ports: Vec<PortMapping>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStat {
    pub cache: u64,
    pub rss: u64,
    pub total_rss: u64,
    pub total_cache: u64,
    pub swap: u64,
    pub anon: u64,
    pub file: u64,
    #[serde(rename = "TotalUsageTowardLimit")]
    pub total_usage_toward_limit: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CpuStat {
    pub usage: u64,
    pub user: u64,
    pub system: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DiskStat {
    pub total_bytes_used: u64,
    pub total_inodes_used: u64,
    pub exclusive_bytes_used: u64,
    pub exclusive_inodes_used: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkStat {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PidStat {
    pub current: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metrics {
    #[serde(rename = "MemoryStat")]
    pub memory_stat: MemoryStat,
    #[serde(rename = "CPUStat")]
    pub cpu_stat: CpuStat,
    #[serde(rename = "DiskStat")]
    pub disk_stat: DiskStat,
    #[serde(rename = "NetworkStat")]
    pub network_stat: Option<NetworkStat>,
    #[serde(rename = "PidStat")]
    pub pid_stat: PidStat,
    /// Nanoseconds since the container was created.
    #[serde(rename = "Age")]
    pub age: u64,
    #[serde(rename = "CPUEntitlement")]
    pub cpu_entitlement: u64,
}

/// One entry of `bulk_info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfoEntry {
    #[serde(rename = "Info")]
    pub info: ContainerInfo,
    #[serde(rename = "Err")]
    pub err: Option<WireError>,
}

/// One entry of `bulk_metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerMetricsEntry {
    #[serde(rename = "Metrics")]
    pub metrics: Metrics,
    #[serde(rename = "Err")]
    pub err: Option<WireError>,
}

/// `{"value":"v"}` for property get/set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyValue {
    pub value: String,
}

/// `PUT /containers/:handle/stop` body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StopRequest {
    pub kill: bool,
}

/// The error body every failing route answers with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireError {
    #[serde(rename = "Type")]
    pub type_: String,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Handle")]
    pub handle: String,
    #[serde(rename = "ProcessID")]
    pub process_id: String,
    #[serde(rename = "Binary")]
    pub binary: String,
}

/// What a Garden call can fail with. The first four map to upstream's typed errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GardenError {
    #[error("unknown handle: {0}")]
    ContainerNotFound(String),
    #[error("unknown process: {0}")]
    ProcessNotFound(String),
    #[error("{message}")]
    ExecutableNotFound { message: String },
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Unrecoverable(String),
    /// Input the server refuses (malformed JSON, hostile tar, bad rootfs): a 4xx.
    #[error("{0}")]
    BadRequest(String),
    /// Anything else (upstream's generic error): a 500.
    #[error("{0}")]
    Other(String),
}

impl GardenError {
    pub fn other(msg: impl std::fmt::Display) -> Self {
        GardenError::Other(msg.to_string())
    }
    pub fn bad_request(msg: impl std::fmt::Display) -> Self {
        GardenError::BadRequest(msg.to_string())
    }

    /// HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            GardenError::ContainerNotFound(_) | GardenError::ProcessNotFound(_) => 404,
            GardenError::BadRequest(_) => 400,
            GardenError::ServiceUnavailable(_) => 503,
            _ => 500,
        }
    }

    pub fn to_wire(&self) -> WireError {
        let mut w = WireError {
            message: self.to_string(),
            ..Default::default()
        };
        match self {
            GardenError::ContainerNotFound(h) => {
                w.type_ = "ContainerNotFoundError".into();
                w.handle = h.clone();
            }
            GardenError::ProcessNotFound(p) => {
                w.type_ = "ProcessNotFoundError".into();
                w.process_id = p.clone();
            }
            GardenError::ExecutableNotFound { .. } => w.type_ = "ExecutableNotFoundError".into(),
            GardenError::ServiceUnavailable(_) => w.type_ = "ServiceUnavailableError".into(),
            GardenError::Unrecoverable(_) => w.type_ = "UnrecoverableError".into(),
            GardenError::BadRequest(_) | GardenError::Other(_) => {}
        }
        w
    }

    /// Maps an error body back to a typed error (`status` decides 4xx vs generic).
    pub fn from_wire(w: WireError, status: u16) -> Self {
        match w.type_.as_str() {
            "ContainerNotFoundError" => GardenError::ContainerNotFound(w.handle),
            "ProcessNotFoundError" => GardenError::ProcessNotFound(w.process_id),
            "ExecutableNotFoundError" => GardenError::ExecutableNotFound { message: w.message },
            "ServiceUnavailableError" => GardenError::ServiceUnavailable(w.message),
            "UnrecoverableError" => GardenError::Unrecoverable(w.message),
            _ if (400..500).contains(&status) => GardenError::BadRequest(w.message),
            _ => GardenError::Other(w.message),
        }
    }
}

/// Where a process's standard streams go. `None` means "not wanted": stdin stays empty
/// (closed at once), output is still kept by the server for a later attach.
///
/// Closing (dropping) the stdin sender closes the process's stdin. The output senders
/// receive everything the process wrote *from its start*, also on a re-attach; they are
/// dropped once the process has exited and all output was delivered.
#[derive(Debug, Default)]
pub struct ProcessIo {
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub stdout: Option<mpsc::Sender<Bytes>>,
    pub stderr: Option<mpsc::Sender<Bytes>>,
    /// Where the stdout and stderr replays of an attach start (absolute byte offsets: what
    /// the client already has). Ours only: upstream Garden replays from the start.
    pub replay_from: [u64; 2],
}

/// A running (or finished) process as seen by one attached client.
///
/// Dropping it detaches: the process keeps running and keeps its output.
#[async_trait]
pub trait Process: Send + Sync {
    fn id(&self) -> &str;
    /// Exit status, available once the process exited *and* all its output reached the
    /// `ProcessIo` senders of this attachment. May be called more than once.
    async fn wait(&self) -> Result<i32, GardenError>;
    async fn set_tty(&self, tty: TtySpec) -> Result<(), GardenError>;
    async fn signal(&self, signal: Signal) -> Result<(), GardenError>;
}

/// A Garden server: the HTTP client (`garden::client`) and the in-process backends
/// (`garden::Containers`) both implement it; the ATC holds an `Arc<dyn Garden>` per worker.
///
/// Every call naming a handle resets that container's grace timer.
#[async_trait]
pub trait Garden: Send + Sync {
    async fn ping(&self) -> Result<(), GardenError>;
    async fn capacity(&self) -> Result<Capacity, GardenError>;
    /// Creates a container and returns its handle (the spec's, or a generated one).
    async fn create(&self, spec: ContainerSpec) -> Result<String, GardenError>;
    /// Handles of containers whose properties include every pair of `filter`.
    async fn list(&self, filter: Properties) -> Result<Vec<String>, GardenError>;
    /// Kills every process and deletes the container and its filesystem.
    async fn destroy(&self, handle: &str) -> Result<(), GardenError>;
    /// Signals every process (SIGTERM then SIGKILL after 10 s, or SIGKILL at once).
    async fn stop(&self, handle: &str, kill: bool) -> Result<(), GardenError>;
    async fn info(&self, handle: &str) -> Result<ContainerInfo, GardenError>;
    async fn bulk_info(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, ContainerInfoEntry>, GardenError>;
    async fn metrics(&self, handle: &str) -> Result<Metrics, GardenError>;
    async fn bulk_metrics(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, ContainerMetricsEntry>, GardenError>;
    async fn properties(&self, handle: &str) -> Result<Properties, GardenError>;
    async fn property(&self, handle: &str, key: &str) -> Result<String, GardenError>;
    async fn set_property(&self, handle: &str, key: &str, value: &str) -> Result<(), GardenError>;
    async fn remove_property(&self, handle: &str, key: &str) -> Result<(), GardenError>;
    async fn set_grace_time(&self, handle: &str, grace_time: Duration) -> Result<(), GardenError>;
    async fn bandwidth_limits(&self, handle: &str) -> Result<BandwidthLimits, GardenError>;
    async fn cpu_limits(&self, handle: &str) -> Result<CpuLimits, GardenError>;
    async fn disk_limits(&self, handle: &str) -> Result<DiskLimits, GardenError>;
    async fn memory_limits(&self, handle: &str) -> Result<MemoryLimits, GardenError>;
    /// Maps a port; returns the actual (host, container) ports.
    async fn net_in(
        &self,
        handle: &str,
        host_port: u32,
        container_port: u32,
    ) -> Result<(u32, u32), GardenError>;
    async fn net_out(&self, handle: &str, rules: Vec<NetOutRule>) -> Result<(), GardenError>;
    /// Unpacks an uncompressed tar at `destination` inside the container.
    async fn stream_in(
        &self,
        handle: &str,
        user: &str,
        destination: &str,
        tar: ByteStream,
    ) -> Result<(), GardenError>;
    /// A tar of `source` inside the container.
    async fn stream_out(
        &self,
        handle: &str,
        user: &str,
        source: &str,
    ) -> Result<ByteStream, GardenError>;
    /// Starts a process. The process outlives the returned handle and every connection.
    async fn run(
        &self,
        handle: &str,
        spec: ProcessSpec,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError>;
    /// Attaches to a process by id, replaying its output from the start. A process that
    /// already exited can still be attached while the container lives: `wait` returns its
    /// status. Unknown id ⇒ `ProcessNotFound`.
    async fn attach(
        &self,
        handle: &str,
        process_id: &str,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_go_client_spec_with_empty_objects_parses() {
        let body = r#"{"handle":"h","rootfs":"raw:///r","image":{},"bind_mounts":[{"src_path":"/a","dst_path":"/b"}],
            "limits":{"bandwidth_limits":{},"cpu_limits":{"limit_in_shares":512},"disk_limits":{},"memory_limits":{},"pid_limits":{}}}"#;
        let spec: ContainerSpec = serde_json::from_str(body).expect("valid spec");
        assert_eq!(spec.bind_mounts[0].mode, BindMountMode::ReadOnly);
        assert_eq!(spec.limits.cpu_limits.limit_in_shares, 512);
    }

    #[test]
    fn errors_round_trip_through_the_wire_shape() {
        for e in [
            GardenError::ContainerNotFound("h".into()),
            GardenError::ProcessNotFound("p".into()),
            GardenError::ExecutableNotFound {
                message: "nope".into(),
            },
            GardenError::Other("boom".into()),
            GardenError::BadRequest("bad".into()),
        ] {
            assert_eq!(GardenError::from_wire(e.to_wire(), e.status()), e);
        }
        assert_eq!(
            GardenError::ContainerNotFound("h".into()).to_wire().message,
            "unknown handle: h"
        );
    }

    #[test]
    fn handles_accept_either_case_and_null() {
        let a: HandlesResponse = serde_json::from_str(r#"{"handles":null}"#).expect("parses");
        assert!(a.handles.is_empty());
        let b: HandleResponse = serde_json::from_str(r#"{"handle":"x"}"#).expect("parses");
        assert_eq!(b.handle, "x");
        assert_eq!(
            serde_json::to_string(&b).expect("serializes"),
            r#"{"Handle":"x"}"#
        );
    }
}
