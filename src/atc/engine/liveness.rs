//! Noticing that a step's worker went away. A killed or partitioned worker does not always
//! break the Garden streams (a blackholed network keeps them open forever), but the worker
//! collector stalls it once its TTL passes: steps watch the worker's row for that.

use crate::db::{Store, WorkerState};
use std::time::Duration;

/// How often a running step looks at its worker's row.
pub const POLL: Duration = Duration::from_secs(1);

/// Resolves, with the error message for the build, once worker `name` is stalled or gone.
/// Store errors are not the worker's fault: the watch carries on through them.
pub async fn worker_lost(store: &dyn Store, name: &str, every: Duration) -> String {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.worker(name).await {
            Ok(Some(w)) if w.state == WorkerState::Stalled => {
                return format!("worker {name} stalled (it stopped heartbeating)")
            }
            Ok(None) => return format!("worker {name} disappeared"),
            Ok(Some(_)) | Err(_) => {}
        }
    }
}

/// The message for a worker call that failed while `doing` something (e.g. `running sh`)
/// on worker `name`. The Garden and Baggageclaim clients report broken connections
/// (refused, reset, EOF before an answer) as `connection: ...`, `garden connection: ...`
/// or `baggageclaim unreachable: ...`;
/// those mean the worker is out of reach, whatever the step was doing.
pub fn worker_error(name: &str, doing: &str, e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    const LOST: [&str; 3] = [
        "connection:",
        "garden connection:",
        "baggageclaim unreachable:",
    ];
    if LOST.iter().any(|p| text.starts_with(p)) {
        format!("lost connection to worker {name}: {text}")
    } else {
        format!("{doing} on worker {name}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::garden::GardenError;
    use crate::proto::worker::Worker;

    async fn store_with(name: &str) -> (tempfile::TempDir, std::sync::Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp");
        let store = crate::db::open_embedded(&dir.path().join("c.db"))
            .await
            .expect("store");
        let w = Worker {
            name: name.into(),
            garden_addr: "127.0.0.1:1".into(),
            baggageclaim_url: "http://127.0.0.1:2".into(),
            ..Default::default()
        };
        store
            .register_worker(&w, Some(Duration::from_secs(1)), 0)
            .await
            .expect("register");
        (dir, store)
    }

    #[tokio::test]
    async fn a_stalled_worker_is_noticed_and_named() {
        let (_dir, store) = store_with("w1").await;
        let watch = worker_lost(store.as_ref(), "w1", Duration::from_millis(10));
        tokio::pin!(watch);
        // Running: the watch keeps going.
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut watch)
            .await
            .is_err());
        store
            .stall_unresponsive_workers(10_000_000_000)
            .await
            .expect("stall");
        let msg = tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("noticed");
        assert!(msg.contains("worker w1 stalled"), "{msg}");
    }

    #[test]
    fn broken_connections_name_the_worker() {
        let eof = GardenError::other("connection: decode failed: EOF");
        assert_eq!(
            worker_error("w", "running sh", &eof),
            "lost connection to worker w: connection: decode failed: EOF"
        );
        let missing = GardenError::ExecutableNotFound {
            message: "no sh".into(),
        };
        assert_eq!(
            worker_error("w", "running sh", &missing),
            "running sh on worker w: no sh"
        );
    }

    #[tokio::test]
    async fn a_deleted_worker_is_noticed() {
        let (_dir, store) = store_with("w2").await;
        store.delete_worker("w2").await.expect("delete");
        let msg = tokio::time::timeout(
            Duration::from_secs(5),
            worker_lost(store.as_ref(), "w2", Duration::from_millis(10)),
        )
        .await
        .expect("noticed");
        assert_eq!(msg, "worker w2 disappeared");
    }
}
