//! The worker registration language shared by the TSA, the Beacon and the ATC: the worker
//! payload (`atc.Worker`, worker-protocols.md §3.4), worker states (§3.6) and the TSA's
//! exec commands (§3.2).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A worker as registered and as listed by `GET /api/v1/workers`. Upstream's JSON names and
/// `omitempty` rules, so upstream workers and fly decode it unchanged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Worker {
    /// Garden `host:port` (rewritten by the TSA for forwarded workers).
    #[serde(rename = "addr", default)]
    pub garden_addr: String,
    #[serde(default)]
    pub baggageclaim_url: String,
    /// Empty string is treated as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_empty_string"
    )]
    pub certs_path: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub http_proxy_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub https_proxy_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(default)]
    pub active_containers: i64,
    #[serde(default)]
    pub active_volumes: i64,
    #[serde(default)]
    pub active_tasks: i64,
    #[serde(default)]
    pub max_active_tasks: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_types: Vec<WorkerResourceType>,
    #[serde(default)]
    pub platform: String,
    /// `null` when the worker has none; empty strings are dropped on decode.
    #[serde(default, deserialize_with = "tags")]
    pub tags: Option<Vec<String>>,
    /// Empty for a global worker.
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub ephemeral: bool,
    /// Set by the ATC in responses; `""` (None) in worker payloads.
    #[serde(
        default,
        serialize_with = "state_or_empty",
        deserialize_with = "empty_as_no_state"
    )]
    pub state: Option<WorkerState>,
}

/// Why the ATC refuses a registration payload (upstream's 400 messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("missing garden address")]
    MissingGardenAddress,
    #[error("invalid worker version, only numeric characters are allowed")]
    InvalidVersion,
}

impl Worker {
    /// Checks a payload for registration and fills defaults: `name` defaults to `addr`.
    pub fn prepare_registration(&mut self) -> Result<(), RegistrationError> {
        if self.garden_addr.is_empty() {
            return Err(RegistrationError::MissingGardenAddress);
        }
        if !self.version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(RegistrationError::InvalidVersion);
        }
        if self.name.is_empty() {
            self.name = self.garden_addr.clone();
        }
        Ok(())
    }
}

/// A base resource type a worker provides (resource-protocol.md §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct WorkerResourceType {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub unique_version_history: bool,
}

/// Worker states (worker-protocols.md §3.6).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    Running,
    Stalled,
    Landing,
    Landed,
    Retiring,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Running => "running",
            WorkerState::Stalled => "stalled",
            WorkerState::Landing => "landing",
            WorkerState::Landed => "landed",
            WorkerState::Retiring => "retiring",
        }
    }

    /// Only running workers may get new containers.
    pub fn is_placeable(self) -> bool {
        self == WorkerState::Running
    }

    /// The state after a heartbeat: draining states are kept, anything else runs again
    /// (a stalled worker that heartbeats recovers).
    pub fn after_heartbeat(self) -> WorkerState {
        match self {
            WorkerState::Landing | WorkerState::Landed | WorkerState::Retiring => self,
            WorkerState::Running | WorkerState::Stalled => WorkerState::Running,
        }
    }

    /// `prune-worker` refuses running workers.
    pub fn can_prune(self) -> bool {
        self != WorkerState::Running
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkerState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "running" => WorkerState::Running,
            "stalled" => WorkerState::Stalled,
            "landing" => WorkerState::Landing,
            "landed" => WorkerState::Landed,
            "retiring" => WorkerState::Retiring,
            other => return Err(format!("unknown worker state: {other}")),
        })
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn non_empty_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?
        .map(|tags| tags.into_iter().filter(|t| !t.is_empty()).collect()))
}

fn state_or_empty<S: Serializer>(state: &Option<WorkerState>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.map_or("", WorkerState::as_str))
}

fn empty_as_no_state<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WorkerState>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A newline-delimited event the TSA writes to a `forward-worker`/`register-worker` channel.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TsaEvent {
    pub event: TsaEventKind,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TsaEventKind {
    Registered,
    Heartbeated,
}

/// Labels the beacon asks the TSA to forward (only labels: they must equal the
/// `--garden`/`--baggageclaim` values of `forward-worker`).
pub const GARDEN_FORWARD_LABEL: &str = "0.0.0.0:7777";
pub const BAGGAGECLAIM_FORWARD_LABEL: &str = "0.0.0.0:7788";

/// One TSA exec command (worker-protocols.md §3.2). Every command reads one worker JSON
/// object from the channel's stdin first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsaCommand {
    /// Register through reverse tunnels named by their `BindIP:BindPort` labels.
    ForwardWorker {
        garden: String,
        baggageclaim: String,
    },
    /// Our extension: register a worker whose payload addresses are directly reachable.
    RegisterWorker,
    LandWorker,
    RetireWorker,
    DeleteWorker,
    ReportContainers(Vec<String>),
    ReportVolumes(Vec<String>),
    SweepContainers,
    SweepVolumes,
}

/// Why an exec string is not a command; displayed as upstream's `invalid command: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid command: {0}")]
pub struct InvalidCommand(pub String);

impl TsaCommand {
    /// Parses an exec string, split on single spaces like upstream.
    pub fn parse(exec: &str) -> Result<TsaCommand, InvalidCommand> {
        let mut argv = exec.split(' ');
        let name = argv.next().unwrap_or_default();
        let args: Vec<&str> = argv.collect();
        let no_args = |cmd: TsaCommand| match args.iter().find(|a| !a.is_empty()) {
            Some(extra) if extra.starts_with('-') => Err(InvalidCommand(format!(
                "unknown flag `{}'",
                extra.trim_start_matches('-')
            ))),
            Some(extra) => Err(InvalidCommand(format!("unexpected argument: {extra}"))),
            None => Ok(cmd),
        };
        match name {
            "forward-worker" => parse_forward(&args),
            "register-worker" => no_args(TsaCommand::RegisterWorker),
            "land-worker" => no_args(TsaCommand::LandWorker),
            "retire-worker" => no_args(TsaCommand::RetireWorker),
            "delete-worker" => no_args(TsaCommand::DeleteWorker),
            "sweep-containers" => no_args(TsaCommand::SweepContainers),
            "sweep-volumes" => no_args(TsaCommand::SweepVolumes),
            "report-containers" => Ok(TsaCommand::ReportContainers(handles(&args))),
            "report-volumes" => Ok(TsaCommand::ReportVolumes(handles(&args))),
            other => Err(InvalidCommand(format!("unknown command: {other}"))),
        }
    }

    /// The exec string for this command (what the beacon sends).
    pub fn to_exec(&self) -> String {
        match self {
            TsaCommand::ForwardWorker {
                garden,
                baggageclaim,
            } => format!("forward-worker --garden {garden} --baggageclaim {baggageclaim}"),
            TsaCommand::RegisterWorker => "register-worker".into(),
            TsaCommand::LandWorker => "land-worker".into(),
            TsaCommand::RetireWorker => "retire-worker".into(),
            TsaCommand::DeleteWorker => "delete-worker".into(),
            TsaCommand::ReportContainers(h) => std::iter::once("report-containers".to_string())
                .chain(h.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            TsaCommand::ReportVolumes(h) => std::iter::once("report-volumes".to_string())
                .chain(h.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            TsaCommand::SweepContainers => "sweep-containers".into(),
            TsaCommand::SweepVolumes => "sweep-volumes".into(),
        }
    }
}

fn handles(args: &[&str]) -> Vec<String> {
    args.iter()
        .filter(|a| !a.is_empty())
        .map(|a| a.to_string())
        .collect()
}

fn parse_forward(args: &[&str]) -> Result<TsaCommand, InvalidCommand> {
    let mut garden = None;
    let mut baggageclaim = None;
    let mut args = args.iter().filter(|a| !a.is_empty());
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (*arg, None),
        };
        let slot = match flag {
            "--garden" => &mut garden,
            "--baggageclaim" => &mut baggageclaim,
            f if f.starts_with('-') => {
                return Err(InvalidCommand(format!(
                    "unknown flag `{}'",
                    f.trim_start_matches('-')
                )))
            }
            other => return Err(InvalidCommand(format!("unexpected argument: {other}"))),
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().map(|v| v.to_string()).unwrap_or_default(),
        };
        // An empty label (`--garden=`) names no forward, and `to_exec` could not say it.
        if value.is_empty() {
            return Err(InvalidCommand(format!(
                "expected argument for flag `{flag}'"
            )));
        }
        *slot = Some(value);
    }
    Ok(TsaCommand::ForwardWorker {
        garden: garden.ok_or_else(|| {
            InvalidCommand("the required flag `--garden' was not specified".into())
        })?,
        baggageclaim: baggageclaim.ok_or_else(|| {
            InvalidCommand("the required flag `--baggageclaim' was not specified".into())
        })?,
    })
}

/// How the ATC reaches a registered worker's Garden and Baggageclaim: over HTTP at the
/// payload's addresses, or in-process for quickstart's own worker. The roles wire an
/// implementation in; the ATC never knows which it got.
pub trait WorkerConnector: Send + Sync {
    fn connect(
        &self,
        worker: &Worker,
    ) -> (
        std::sync::Arc<dyn super::garden::Garden>,
        std::sync::Arc<dyn super::baggageclaim::Baggageclaim>,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_upstream_example_payload_decodes_and_round_trips() {
        let text = r#"{"addr":"","baggageclaim_url":"","active_containers":0,"active_volumes":0,"active_tasks":0,
 "max_active_tasks":0,"resource_types":[{"type":"git","image":"/usr/local/concourse/resource-types/git/rootfs.tgz",
 "version":"1.19.0","privileged":false,"unique_version_history":false}],"platform":"linux","tags":null,
 "team":"","name":"worker-1","version":"3.0","start_time":1754600000,"ephemeral":false,"state":""}"#;
        let worker: Worker = serde_json::from_str(text).expect("decodes");
        assert_eq!(worker.name, "worker-1");
        assert_eq!(worker.resource_types[0].type_, "git");
        assert_eq!(worker.state, None);
        assert_eq!(worker.tags, None);
        let again = serde_json::to_value(&worker).expect("encodes");
        assert_eq!(again["state"], json!(""));
        assert_eq!(again["tags"], json!(null));
        assert!(again.get("certs_path").is_none(), "omitempty");
        assert_eq!(
            serde_json::from_value::<Worker>(again).expect("decodes"),
            worker
        );
    }

    #[test]
    fn empty_tags_and_certs_path_are_dropped_and_states_use_upstream_names() {
        let worker: Worker = serde_json::from_value(json!({
            "tags": ["", "a"], "certs_path": "", "state": "landing", "resource_types": null
        }))
        .expect("decodes");
        assert_eq!(worker.tags, Some(vec!["a".to_string()]));
        assert_eq!(worker.certs_path, None);
        assert_eq!(worker.state, Some(WorkerState::Landing));
        assert!(serde_json::from_value::<Worker>(json!({"state": "bogus"})).is_err());
    }

    #[test]
    fn registration_needs_an_address_and_a_numeric_version() {
        let mut worker = Worker::default();
        assert_eq!(
            worker
                .prepare_registration()
                .expect_err("no addr")
                .to_string(),
            "missing garden address"
        );
        worker.garden_addr = "1.2.3.4:7777".into();
        worker.version = "3.0-rc".into();
        assert_eq!(
            worker
                .prepare_registration()
                .expect_err("bad version")
                .to_string(),
            "invalid worker version, only numeric characters are allowed"
        );
        worker.version = "3.0".into();
        worker.prepare_registration().expect("valid");
        assert_eq!(worker.name, "1.2.3.4:7777", "name defaults to addr");
    }

    #[test]
    fn heartbeats_keep_draining_states_and_revive_stalled_workers() {
        assert_eq!(WorkerState::Stalled.after_heartbeat(), WorkerState::Running);
        assert_eq!(WorkerState::Landing.after_heartbeat(), WorkerState::Landing);
        assert_eq!(WorkerState::Landed.after_heartbeat(), WorkerState::Landed);
        assert_eq!(
            WorkerState::Retiring.after_heartbeat(),
            WorkerState::Retiring
        );
        assert!(!WorkerState::Running.can_prune());
    }

    #[test]
    fn commands_parse_like_upstream() {
        assert_eq!(
            TsaCommand::parse("forward-worker --garden 0.0.0.0:7777 --baggageclaim 0.0.0.0:7788"),
            Ok(TsaCommand::ForwardWorker {
                garden: GARDEN_FORWARD_LABEL.into(),
                baggageclaim: BAGGAGECLAIM_FORWARD_LABEL.into()
            })
        );
        assert_eq!(
            TsaCommand::parse("forward-worker --garden=a:1 --baggageclaim=b:2"),
            Ok(TsaCommand::ForwardWorker {
                garden: "a:1".into(),
                baggageclaim: "b:2".into()
            })
        );
        assert_eq!(
            TsaCommand::parse("report-containers h1 h2"),
            Ok(TsaCommand::ReportContainers(vec!["h1".into(), "h2".into()]))
        );
        assert_eq!(
            TsaCommand::parse("report-volumes"),
            Ok(TsaCommand::ReportVolumes(vec![]))
        );
        assert_eq!(TsaCommand::parse("land-worker"), Ok(TsaCommand::LandWorker));
        assert_eq!(
            TsaCommand::parse("foo").expect_err("unknown").to_string(),
            "invalid command: unknown command: foo"
        );
        assert_eq!(
            TsaCommand::parse("forward-worker --garden")
                .expect_err("no value")
                .to_string(),
            "invalid command: expected argument for flag `--garden'"
        );
        assert!(TsaCommand::parse("land-worker --x").is_err());
    }

    #[test]
    fn an_empty_forward_label_is_refused() {
        // Found by fuzz/fuzz_targets/tsa_command.rs: `--baggageclaim=` was accepted as an
        // empty label, whose `to_exec` (`... --baggageclaim `) no longer parsed.
        for exec in [
            "forward-worker --garden= --baggageclaim=b:2",
            "forward-worker --garden=a:1 --baggageclaim=",
        ] {
            let flag = if exec.contains("--garden= ") {
                "--garden"
            } else {
                "--baggageclaim"
            };
            assert_eq!(
                TsaCommand::parse(exec).expect_err(exec).to_string(),
                format!("invalid command: expected argument for flag `{flag}'")
            );
        }
    }

    proptest! {
        #[test]
        fn no_exec_string_panics(s in ".{0,80}") {
            let _ = TsaCommand::parse(&s);
        }

        #[test]
        fn parsed_commands_round_trip(s in "(forward-worker|land-worker|report-volumes|sweep-volumes)( [a-z0=:-]{1,8}){0,4}") {
            if let Ok(cmd) = TsaCommand::parse(&s) {
                prop_assert_eq!(TsaCommand::parse(&cmd.to_exec()), Ok(cmd));
            }
        }
    }
}
