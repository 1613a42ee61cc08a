//! The worker half of `concourse quickstart`: Garden and Baggageclaim in this process,
//! registered straight into the store (a channel, not SSH) and kept alive by a heartbeat
//! loop that counts containers and volumes through the in-process implementations.

use super::worker::WorkerParts;
use crate::db::Store;
use crate::proto::worker::{Worker, WorkerResourceType};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Heartbeats every interval; the TTL is twice that, like a TSA-registered worker.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Worker addresses that say "reach me in this process" (the ATC uses the in-process
/// Garden and Baggageclaim for this worker; nothing listens on the network).
pub const IN_PROCESS_GARDEN: &str = "in-process:garden";
pub const IN_PROCESS_BAGGAGECLAIM: &str = "in-process://baggageclaim";

fn payload(name: &str) -> Worker {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Worker {
        name: name.to_string(),
        garden_addr: IN_PROCESS_GARDEN.into(),
        baggageclaim_url: IN_PROCESS_BAGGAGECLAIM.into(),
        platform: "linux".into(),
        version: crate::proto::api::WORKER_VERSION.into(),
        start_time: crate::atc::auth::now(),
        resource_types: crate::resources::BASE_TYPES
            .iter()
            .map(|(t, v)| WorkerResourceType {
                type_: t.to_string(),
                image: exe.clone(),
                version: v.to_string(),
                privileged: false,
                unique_version_history: false,
            })
            .collect(),
        ..Default::default()
    }
}

/// Opens the in-process worker under `work_dir`, registers it and heartbeats until
/// `shutdown`. Returns the parts so the caller can hand them to the ATC.
pub async fn start_worker(
    store: Arc<dyn Store>,
    work_dir: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<(Arc<WorkerParts>, tokio::task::JoinHandle<()>)> {
    let parts = Arc::new(WorkerParts::open_default(work_dir)?);
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "quickstart".into());
    let worker = payload(&name);
    store
        .register_worker(&worker, Some(HEARTBEAT * 2), crate::atc::auth::now())
        .await?;
    tracing::info!(worker = %name, "in-process worker registered");
    let beat_parts = parts.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let containers = beat_parts
                .garden()
                .list(Default::default())
                .await
                .map(|c| c.len() as i64)
                .unwrap_or(0);
            let volumes = beat_parts
                .baggageclaim()
                .list_volumes(Default::default())
                .await
                .map(|v| v.len() as i64)
                .unwrap_or(0);
            let now = crate::atc::auth::now();
            match store
                .heartbeat_worker(&worker.name, containers, volumes, Some(HEARTBEAT * 2), now)
                .await
            {
                Ok(Some(_)) => {}
                // Pruned or deleted: come back, as a restarted worker would.
                Ok(None) => {
                    if let Err(e) = store
                        .register_worker(&worker, Some(HEARTBEAT * 2), now)
                        .await
                    {
                        tracing::warn!(error = %e, "re-registering the in-process worker");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "heartbeating the in-process worker"),
            }
        }
    });
    Ok((parts, handle))
}
