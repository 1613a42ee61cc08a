//! A build's journal: what its engine has done so far, kept in the store as it goes, so the
//! web node that adopts the build (this one restarted, or another) resumes it where it was
//! instead of erroring it.
//!
//! Resuming replays the plan from its root. A step the journal holds as finished is not run
//! again: it puts back what it left (artifacts, vars, a put's version) and answers with its
//! recorded outcome, so composite steps (retries, hooks, `ensure`, `across`, `in_parallel`)
//! take the same paths as before. A task whose process was running re-attaches to it by id
//! and streams the rest of its output: each stream's offset in the build log is written in
//! the same transaction as the log events that carry it. Timeouts count from the start the
//! journal keeps.

use super::runtime::{Artifact, Fail, StepResult};
use crate::db::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a finished step ended, as its caller saw it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Errored(String),
    Interrupted,
}

impl Outcome {
    pub fn of(r: &StepResult) -> Outcome {
        match r {
            Ok(true) => Outcome::Succeeded,
            Ok(false) => Outcome::Failed,
            Err(Fail::Errored(m)) => Outcome::Errored(m.clone()),
            Err(Fail::Interrupted) => Outcome::Interrupted,
        }
    }
    pub fn result(&self) -> StepResult {
        match self {
            Outcome::Succeeded => Ok(true),
            Outcome::Failed => Ok(false),
            Outcome::Errored(m) => Err(Fail::Errored(m.clone())),
            Outcome::Interrupted => Err(Fail::Interrupted),
        }
    }
}

/// A local var a step set (`load_var`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LocalVar {
    pub name: String,
    pub value: Value,
    pub secret: bool,
}

/// A running task's process: where it is and what its outputs are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TaskProcess {
    pub worker: String,
    pub container: String,
    pub process: String,
    /// Output name (before `output_mapping`) and its volume.
    pub outputs: Vec<(String, String)>,
}

/// A container or volume the build made, for its cleanup after a resume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Held {
    pub worker: String,
    pub handle: String,
    pub volume: bool,
}

/// One step's entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StepEntry {
    /// When the step first started (Unix ms): its `timeout` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<(String, Artifact)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<LocalVar>,
    /// A put's version (the implicit get's `version_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskProcess>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
}

fn step_key(plan_id: &str) -> String {
    format!("step:{plan_id}")
}
/// A step's journal key and its entry as stored.
fn step_record(plan_id: &str, entry: &StepEntry) -> (String, Value) {
    let v = serde_json::to_value(entry).unwrap_or(Value::Null);
    (step_key(plan_id), v)
}
fn timer_key(plan_id: &str) -> String {
    format!("timer:{plan_id}")
}
/// The key of a step's output stream offset (bytes of it in the build log).
pub fn output_key(plan_id: &str, stream: &str) -> String {
    format!("out:{plan_id}:{stream}")
}
const ABORTED: &str = "aborted";

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The journal of one build. Without a store (periodic checks) it records nothing.
pub struct Journal {
    store: Option<Arc<dyn Store>>,
    build_id: i64,
    entries: Mutex<HashMap<String, Value>>,
}

impl Journal {
    /// A journal that keeps nothing.
    pub fn off() -> Journal {
        Journal {
            store: None,
            build_id: 0,
            entries: Mutex::default(),
        }
    }

    /// A new build's journal (nothing to read back).
    pub fn fresh(store: Arc<dyn Store>, build_id: i64) -> Journal {
        Journal {
            store: Some(store),
            build_id,
            entries: Mutex::default(),
        }
    }

    /// A started build's journal as its last owner left it.
    pub async fn load(store: Arc<dyn Store>, build_id: i64) -> crate::db::Result<Journal> {
        let entries = store.journal(build_id).await?.into_iter().collect();
        Ok(Journal {
            store: Some(store),
            build_id,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_value(self.lock().get(key)?.clone()).ok()
    }

    /// Keeps an entry here and writes it to the store. A failed write is logged: the step
    /// then runs again if the build is resumed.
    async fn put(&self, key: String, value: Value) {
        let Some(store) = &self.store else { return };
        self.lock().insert(key.clone(), value.clone());
        if let Err(e) = store.put_journal(self.build_id, &[(key, value)]).await {
            tracing::warn!(build_id = self.build_id, error = %e, "writing the build journal");
        }
    }

    pub fn is_on(&self) -> bool {
        self.store.is_some()
    }

    pub fn step(&self, plan_id: &str) -> Option<StepEntry> {
        self.get(&step_key(plan_id))
    }

    /// The step's finished entry, if it finished before.
    pub fn finished(&self, plan_id: &str) -> Option<StepEntry> {
        self.step(plan_id).filter(|e| e.outcome.is_some())
    }

    pub async fn put_step(&self, plan_id: &str, entry: &StepEntry) {
        if self.is_on() {
            let (key, v) = step_record(plan_id, entry);
            self.put(key, v).await;
        }
    }

    /// Records a step's entry without waiting for the store: it is stored, in order, with
    /// the build's events (what a step's end records: lost with the node, the step runs
    /// again on resume, as when a write fails). Written at once when `events` stores nothing.
    pub async fn note_step(
        &self,
        plan_id: &str,
        entry: &StepEntry,
        events: &super::events::Events,
    ) {
        if !self.is_on() {
            return;
        }
        let (key, v) = step_record(plan_id, entry);
        if events.mark(&key, v.clone()) {
            self.lock().insert(key, v);
        } else {
            self.put(key, v).await;
        }
    }

    /// When the step first started (Unix ms), recorded now if this is its first start.
    pub async fn step_started(&self, plan_id: &str) -> i64 {
        let mut entry = self.step(plan_id).unwrap_or_default();
        if let Some(at) = entry.started_ms {
            return at;
        }
        let at = now_ms();
        entry.started_ms = Some(at);
        self.put_step(plan_id, &entry).await;
        at
    }

    /// When the `timeout` node `plan_id` first started (Unix ms).
    pub async fn timer_started(&self, plan_id: &str) -> i64 {
        let key = timer_key(plan_id);
        if let Some(at) = self.get::<i64>(&key) {
            return at;
        }
        let at = now_ms();
        self.put(key, Value::from(at)).await;
        at
    }

    /// How many bytes of a step's stdout and stderr are in the build log.
    pub fn output_offsets(&self, plan_id: &str) -> [u64; 2] {
        ["stdout", "stderr"].map(|s| self.get::<u64>(&output_key(plan_id, s)).unwrap_or(0))
    }

    /// Every container and volume the build's journaled steps made.
    pub fn held(&self) -> Vec<Held> {
        let entries = self.lock();
        let mut held: Vec<Held> = entries
            .iter()
            .filter(|(k, _)| k.starts_with("step:"))
            .filter_map(|(_, v)| serde_json::from_value::<StepEntry>(v.clone()).ok())
            .flat_map(|e| e.held)
            .collect();
        held.dedup();
        held
    }

    pub fn aborted(&self) -> bool {
        self.lock().contains_key(ABORTED)
    }

    /// The build was aborted: a resume goes on aborting it (its hooks run).
    pub async fn mark_aborted(&self) {
        if !self.aborted() {
            self.put(ABORTED.into(), Value::Bool(true)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Succeeded),
            Just(Outcome::Failed),
            ".*".prop_map(Outcome::Errored),
            Just(Outcome::Interrupted),
        ]
    }

    proptest! {
        /// An entry reads back as written, and its outcome answers as the step did.
        #[test]
        fn step_entries_round_trip(
            o in outcome(),
            started in proptest::option::of(0i64..i64::MAX),
            names in proptest::collection::vec("[a-z]{1,8}", 0..4),
        ) {
            let entry = StepEntry {
                started_ms: started,
                outcome: Some(o.clone()),
                artifacts: names.iter().map(|n| (n.clone(), Artifact {
                    worker: "w".into(), handle: format!("h-{n}"),
                })).collect(),
                vars: names.iter().map(|n| LocalVar {
                    name: n.clone(), value: Value::from(n.len()), secret: n.len() % 2 == 0,
                }).collect(),
                ..Default::default()
            };
            let back: StepEntry =
                serde_json::from_value(serde_json::to_value(&entry).unwrap()).unwrap();
            prop_assert_eq!(&back, &entry);
            prop_assert_eq!(Outcome::of(&o.result()), o);
        }
    }
}
