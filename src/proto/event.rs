//! Build events (shared/spec/build-events.md §3-4, upstream `atc/event`): one typed
//! variant per event, serialized as the envelope `{"event", "version", "data"}` that the
//! store keeps and the events endpoint streams.
//!
//! Payload fields are declared in the order the engine has always written them (the
//! store keeps the JSON text, with `serde_json`'s `preserve_order`), so stored rows and
//! the wire stay byte-for-byte what they were. Decoding is lenient about missing fields
//! (upstream omits zero times, `null` lists) but strict about types.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The plan node an event belongs to; a build-level event has an empty one (`{}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `stdout` or `stderr` on log events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

impl Origin {
    pub fn id(id: impl Into<String>) -> Origin {
        Origin {
            id: id.into(),
            source: String::new(),
        }
    }
}

/// A resource version as the resource printed it (upstream: an object of strings).
pub type Version = serde_json::Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetadataField {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// The payload of events that say only which step, and when.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct At {
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// `started`, `succeeded`, `failed`, `errored` or `aborted`; kept a string so a
    /// client can report a status it does not know.
    pub status: String,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    pub time: i64,
    pub origin: Origin,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Error {
    pub message: String,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SelectedWorker {
    pub selected_worker: String,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamingVolume {
    pub volume: String,
    pub source_worker: String,
    pub dest_worker: String,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WaitingForStreamedVolume {
    pub volume: String,
    pub dest_worker: String,
    pub origin: Origin,
    pub time: i64,
}

/// `initialize-task` and `start-task`: upstream's shadow of the task config, without
/// params.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskConfigEvent {
    pub config: TaskConfig,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskConfig {
    pub platform: String,
    /// The task's `rootfs_uri`, usually empty.
    pub image: String,
    pub run: TaskRunConfig,
    /// `null` when the task has none.
    pub inputs: Option<Vec<TaskInputConfig>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskRunConfig {
    pub path: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub args: Vec<String>,
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskInputConfig {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FinishTask {
    pub exit_status: i32,
    pub origin: Origin,
    pub time: i64,
}

/// `finish-get` and `finish-put`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FinishResource {
    pub exit_status: i32,
    /// `null` when the step failed.
    pub version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<MetadataField>>,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InitializeCheck {
    /// The resource or type checked; `image` for a task's image.
    pub name: String,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Finish {
    pub succeeded: bool,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetPipelineChanged {
    pub changed: bool,
    pub origin: Origin,
    pub time: i64,
}

/// `image-check` and `image-get`: the public plan of the sub-step fetching a task's image.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImagePlan {
    pub plan: Value,
    pub origin: Origin,
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AcrossSubsteps {
    pub substeps: Vec<AcrossSubstep>,
    pub origin: Origin,
    pub time: i64,
}

/// One value combination of an across step and the public plan run for it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AcrossSubstep {
    pub step: Value,
    #[serde(deserialize_with = "null_as_empty")]
    pub values: Vec<Value>,
}

/// An event this code does not know (a newer server's type or major version), kept as
/// it came.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RawEvent {
    pub event: String,
    pub version: String,
    #[serde(default)]
    pub data: Value,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Declares [`BuildEvent`] from one line per event: variant, payload, upstream's name and
/// current version. Anything else decodes to `Unknown`.
macro_rules! build_events {
    ($($(#[$doc:meta])* $variant:ident($payload:ty) = $name:literal, $version:literal;)*) => {
        #[derive(Debug, Clone, PartialEq)]
        pub enum BuildEvent {
            $($(#[$doc])* $variant($payload),)*
            /// A type this code does not know, or a version of another major.
            Unknown(RawEvent),
        }

        impl BuildEvent {
            /// Upstream's event type (`"finish-task"`).
            pub fn name(&self) -> &str {
                match self {
                    $(BuildEvent::$variant(_) => $name,)*
                    BuildEvent::Unknown(r) => &r.event,
                }
            }

            /// The version written with it (`"4.0"`).
            pub fn version(&self) -> &str {
                match self {
                    $(BuildEvent::$variant(_) => $version,)*
                    BuildEvent::Unknown(r) => &r.version,
                }
            }

            /// The version this code reads of an event type, if it knows the type.
            pub fn supported_version(name: &str) -> Option<&'static str> {
                match name {
                    $($name => Some($version),)*
                    _ => None,
                }
            }
        }

        impl Serialize for BuildEvent {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(BuildEvent::$variant(data) => Envelope { event: $name, version: $version, data }.serialize(s),)*
                    BuildEvent::Unknown(r) => r.serialize(s),
                }
            }
        }

        impl<'de> Deserialize<'de> for BuildEvent {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = RawEvent::deserialize(d)?;
                // Upstream's parser rule: the same major version reads the same fields.
                match raw.event.as_str() {
                    $($name if same_major($version, &raw.version) => {
                        <$payload>::deserialize(raw.data)
                            .map(BuildEvent::$variant)
                            .map_err(|e| D::Error::custom(format!("{} event: {e}", $name)))
                    })*
                    _ => Ok(BuildEvent::Unknown(raw)),
                }
            }
        }
    };
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    event: &'a str,
    version: &'a str,
    data: &'a T,
}

fn same_major(a: &str, b: &str) -> bool {
    a.split('.').next() == b.split('.').next()
}

build_events! {
    /// The build started or finished; `pending` is never sent.
    Status(Status) = "status", "1.0";
    Log(Log) = "log", "5.1";
    /// A step, or the whole build, errored (`interrupted`, `timeout exceeded`, ...).
    Error(Error) = "error", "4.1";
    WaitingForWorker(At) = "waiting-for-worker", "1.0";
    SelectedWorker(SelectedWorker) = "selected-worker", "1.0";
    StreamingVolume(StreamingVolume) = "streaming-volume", "1.0";
    WaitingForStreamedVolume(WaitingForStreamedVolume) = "waiting-for-streamed-volume", "1.0";
    InitializeTask(TaskConfigEvent) = "initialize-task", "4.0";
    StartTask(TaskConfigEvent) = "start-task", "5.0";
    FinishTask(FinishTask) = "finish-task", "4.0";
    InitializeGet(At) = "initialize-get", "2.0";
    StartGet(At) = "start-get", "1.0";
    FinishGet(FinishResource) = "finish-get", "5.1";
    InitializePut(At) = "initialize-put", "2.0";
    StartPut(At) = "start-put", "1.0";
    FinishPut(FinishResource) = "finish-put", "5.1";
    InitializeCheck(InitializeCheck) = "initialize-check", "1.0";
    /// Generic steps (set_pipeline, load_var, across, run) begin.
    Initialize(At) = "initialize", "1.0";
    Start(At) = "start", "1.0";
    Finish(Finish) = "finish", "1.0";
    SetPipelineChanged(SetPipelineChanged) = "set-pipeline-changed", "1.0";
    ImageCheck(ImagePlan) = "image-check", "1.1";
    ImageGet(ImagePlan) = "image-get", "1.1";
    AcrossSubsteps(AcrossSubsteps) = "across-substeps", "1.0";
}

/// The origin and time of a payload that has them, borrowed (`$m` empty) or mutably
/// (`$m` = `mut`): one list of payload shapes for both accessors.
macro_rules! origin_and_time {
    ($event:expr $(, $m:ident)?) => {{
        use BuildEvent::*;
        match $event {
            Log(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            Error(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            WaitingForWorker(p) | InitializeGet(p) | StartGet(p) | InitializePut(p)
            | StartPut(p) | Initialize(p) | Start(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            SelectedWorker(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            StreamingVolume(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            WaitingForStreamedVolume(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            InitializeTask(p) | StartTask(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            FinishTask(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            FinishGet(p) | FinishPut(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            InitializeCheck(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            Finish(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            SetPipelineChanged(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            ImageCheck(p) | ImageGet(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            AcrossSubsteps(p) => Some((&$($m)? p.origin, &$($m)? p.time)),
            Status(_) | Unknown(_) => None,
        }
    }};
}

impl BuildEvent {
    /// The envelope as the store keeps it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an event serializes: every map key is a string")
    }

    /// The plan node the event belongs to: none for a `status`, and an unknown event's
    /// payload is not looked into.
    pub fn origin(&self) -> Option<&Origin> {
        origin_and_time!(self).map(|(o, _)| o)
    }

    /// The payload's time (0 when it has none).
    pub fn time(&self) -> i64 {
        match self {
            BuildEvent::Status(s) => s.time,
            e => origin_and_time!(e).map_or(0, |(_, t)| *t),
        }
    }

    /// The origin and time fields, to fill in when a step emits the event.
    pub fn origin_and_time_mut(&mut self) -> Option<(&mut Origin, &mut i64)> {
        origin_and_time!(self, mut)
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
