//! The worker half of `concourse quickstart`: Garden and Baggageclaim in this process,
//! registered straight into the store (a channel, not SSH) and kept alive by a heartbeat
//! loop that counts containers and volumes through the in-process implementations.

use super::worker::WorkerParts;
use crate::db::Store;
use crate::proto::worker::Worker;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Heartbeats every interval; the TTL is twice that. Longer than a remote worker's: this
/// worker cannot be lost apart from the web node it lives in, and a short TTL only lets a
/// busy process (heartbeat late behind its own load) stall its own worker.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long landing or retiring waits for builds (the TSA's `--tsa-drain-timeout` default).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Worker addresses that say "reach me in this process" (the ATC uses the in-process
/// Garden and Baggageclaim for this worker; nothing listens on the network).
pub const IN_PROCESS_GARDEN: &str = "in-process:garden";
pub const IN_PROCESS_BAGGAGECLAIM: &str = "in-process://baggageclaim";

fn payload(name: String) -> Worker {
    Worker {
        garden_addr: IN_PROCESS_GARDEN.into(),
        baggageclaim_url: IN_PROCESS_BAGGAGECLAIM.into(),
        ..super::worker::base_payload(name)
    }
}

/// Opens the in-process worker under `work_dir`, registers it and heartbeats until
/// `shutdown`. Returns the parts so the caller can hand them to the ATC.
pub async fn start_worker(
    store: Arc<dyn Store>,
    work_dir: &Path,
    runtime: Option<String>,
    allowed_raw_rootfs: Vec<std::path::PathBuf>,
    network: crate::cli::WorkerNetworkArgs,
    max_containers: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<(Arc<WorkerParts>, tokio::task::JoinHandle<()>)> {
    let parts = Arc::new(WorkerParts::open_default_with(
        work_dir,
        runtime,
        allowed_raw_rootfs,
        network,
        max_containers,
    )?);
    let worker = payload(super::worker::hostname_or("quickstart"));
    let name = worker.name.clone();
    store
        .register_worker(&worker, Some(HEARTBEAT * 2), crate::clock::now())
        .await?;
    tracing::info!(worker = %name, "in-process worker registered");
    let beat_parts = parts.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        let mut drain = crate::tsa::drain::Drain::new(Some(DRAIN_TIMEOUT));
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
            let now = crate::clock::now();
            match store
                .heartbeat_worker(&worker.name, containers, volumes, Some(HEARTBEAT * 2), now)
                .await
            {
                // Landed or retired by an operator: leaves once its builds are done.
                Ok(Some(row)) => {
                    let garden = beat_parts.garden();
                    drain.look(&row, garden.as_ref(), store.as_ref()).await;
                }
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
