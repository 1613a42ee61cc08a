//! `concourse worker`: Garden and Baggageclaim on their ports, over one work dir.
//! Without `--tsa-host` the worker runs standalone (nothing registers it anywhere).

use crate::baggageclaim::{self, DriverKind, Volumes, VolumesConfig};
use crate::cli::{WorkerArgs, WorkerRuntimeArgs};
use crate::garden::backend::{Backend, BackendKind, ProcessBackend};
use crate::garden::{self, Containers, GardenConfig};
use crate::proto::baggageclaim::Baggageclaim;
use crate::proto::garden::Garden;
use anyhow::{bail, Context};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A worker's two servers as in-process objects (what quickstart hands the ATC).
pub struct WorkerParts {
    pub containers: Arc<Containers>,
    pub volumes: Arc<Volumes>,
}

impl WorkerParts {
    /// Opens the volume store and the container table under `work_dir`.
    pub fn open(work_dir: &Path, args: &WorkerRuntimeArgs) -> anyhow::Result<WorkerParts> {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("creating work dir {}", work_dir.display()))?;
        let work_dir = work_dir.canonicalize().context("resolving --work-dir")?;
        let mut vconfig = VolumesConfig::under(&work_dir);
        vconfig.driver = match args.baggageclaim_driver.as_str() {
            "detect" | "" => None,
            other => Some(other.parse::<DriverKind>().map_err(anyhow::Error::msg)?),
        };
        vconfig.bind_port = args.baggageclaim_bind_port;
        vconfig.p2p_interface_pattern = args.baggageclaim_p2p_interface_name_pattern.clone();
        vconfig.p2p_interface_family = args.baggageclaim_p2p_interface_family;
        let volumes_dir = vconfig.dir.clone();
        let volumes = Volumes::open(vconfig).context("opening volumes")?;

        let kind = match &args.runtime {
            Some(r) => r.parse::<BackendKind>().map_err(anyhow::Error::msg)?,
            None => BackendKind::detect(),
        };
        let backend: Arc<dyn Backend> = match kind {
            BackendKind::Process => Arc::new(ProcessBackend),
            BackendKind::Linux => Arc::new(
                garden::linux::LinuxBackend::with_config(garden::linux::LinuxConfig {
                    work_dir: work_dir.clone(),
                    // Image volumes live under the volumes dir; the rest the operator names.
                    allowed_raw_rootfs: std::iter::once(volumes_dir)
                        .chain(args.allowed_raw_rootfs.iter().cloned())
                        .collect(),
                    network: args.network.config()?,
                    stage: Default::default(),
                })
                .context("starting the linux runtime")?,
            ),
        };
        let gconfig = GardenConfig {
            dir: work_dir.join("containers"),
            default_grace_time: parse_duration(&args.garden_default_grace_time)
                .map_err(|e| anyhow::anyhow!("--garden-default-grace-time: {e}"))?,
            max_containers: args.containerd_max_containers,
        };
        let containers = Containers::new(backend, gconfig).context("opening containers")?;
        reap_copies(&containers, &volumes);
        tracing::info!(runtime = ?kind, driver = ?volumes.driver_kind(), work_dir = %work_dir.display(), "worker ready");
        Ok(WorkerParts {
            containers,
            volumes,
        })
    }

    /// The parts with upstream's defaults (runtime and driver detected), for quickstart's
    /// in-process worker.
    pub fn open_default(work_dir: &Path, runtime: Option<String>) -> anyhow::Result<WorkerParts> {
        Self::open_default_with(work_dir, runtime, Vec::new(), Default::default(), 250)
    }

    /// As `open_default`, with the given `raw://` directories and container network flags.
    pub fn open_default_with(
        work_dir: &Path,
        runtime: Option<String>,
        allowed_raw_rootfs: Vec<std::path::PathBuf>,
        network: crate::cli::WorkerNetworkArgs,
        max_containers: usize,
    ) -> anyhow::Result<WorkerParts> {
        let args = WorkerRuntimeArgs {
            allowed_raw_rootfs,
            bind_ip: "127.0.0.1".into(),
            bind_port: 7777,
            runtime,
            containerd_max_containers: max_containers,
            garden_default_grace_time: "0s".into(),
            baggageclaim_bind_ip: "127.0.0.1".into(),
            baggageclaim_bind_port: 7788,
            baggageclaim_driver: "detect".into(),
            baggageclaim_p2p_interface_name_pattern: "eth0".into(),
            baggageclaim_p2p_interface_family: 4,
            tags: Vec::new(),
            team: None,
            ephemeral: false,
            tsa_host: Vec::new(),
            tsa: crate::cli::TsaClientArgs {
                tsa_public_key: None,
                tsa_worker_private_key: None,
            },
            peer_address: None,
            network,
        };
        Self::open(work_dir, &args)
    }

    pub fn garden(&self) -> Arc<dyn Garden> {
        Arc::new(self.containers.clone())
    }

    pub fn baggageclaim(&self) -> Arc<dyn Baggageclaim> {
        Arc::new(self.volumes.clone())
    }

    /// Serves Garden and Baggageclaim on the given listeners until `shutdown` fires.
    pub async fn serve(
        &self,
        garden_listener: tokio::net::TcpListener,
        baggageclaim_listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let g = garden::server::run(garden_listener, self.garden(), shutdown.clone());
        let b =
            baggageclaim::server::run(baggageclaim_listener, self.baggageclaim(), shutdown.clone());
        let (g, b) = tokio::join!(g, b);
        g.context("garden server")?;
        b.context("baggageclaim server")?;
        self.containers.close().await;
        self.volumes.close().await;
        Ok(())
    }
}

/// Destroys volume copies whose container is gone. Run at start: Garden has just destroyed
/// the containers an earlier run left, so the copies made for them go too (with their
/// overlay mounts), while caches and other volumes stay.
fn reap_copies(containers: &Containers, volumes: &Volumes) {
    let live: std::collections::HashSet<String> = containers.handles().into_iter().collect();
    let reaped = volumes.reap_copies(crate::atc::engine::labels::CONTAINER, &live);
    if !reaped.is_empty() {
        tracing::info!(
            volumes = reaped.len(),
            "destroyed volume copies of an earlier run's containers"
        );
    }
}

/// Runs `concourse worker` until SIGINT or SIGTERM.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let Some(work_dir) = args.work_dir.clone() else {
        bail!("the required flag `--work-dir' was not specified")
    };
    let rt = &args.runtime;
    // Without root there is no isolation: say so, and only when asked for by name.
    match rt.runtime.as_deref() {
        None if !crate::garden::linux::supported() => bail!(
            "the linux runtime needs root, namespaces and overlayfs; to run tasks without any \
             isolation, as this user, pass --runtime process (alias houdini)"
        ),
        Some("process" | "houdini") => tracing::warn!(
            "--runtime process: tasks run unisolated, as this worker's own user, on its filesystem"
        ),
        _ => {}
    }
    let parts = WorkerParts::open(&work_dir, rt)?;
    let garden_addr = format!("{}:{}", rt.bind_ip, rt.bind_port);
    let bc_addr = format!("{}:{}", rt.baggageclaim_bind_ip, rt.baggageclaim_bind_port);
    let gl = tokio::net::TcpListener::bind(&garden_addr)
        .await
        .with_context(|| format!("binding garden to {garden_addr}"))?;
    let bl = tokio::net::TcpListener::bind(&bc_addr)
        .await
        .with_context(|| format!("binding baggageclaim to {bc_addr}"))?;
    tracing::info!(garden = %gl.local_addr()?, baggageclaim = %bl.local_addr()?, name = ?args.name, "worker listening");
    let beacon = if rt.tsa_host.is_empty() {
        tracing::info!("no --tsa-host given: running standalone");
        None
    } else {
        let garden_addr = gl.local_addr()?.to_string();
        let bc_addr = bl.local_addr()?.to_string();
        Some(beacon_config(&args, garden_addr, bc_addr)?)
    };
    let shutdown = CancellationToken::new();
    let control = beacon.clone();
    let registration = beacon.map(|config| {
        let token = shutdown.clone();
        tokio::spawn(async move {
            match crate::beacon::run(config, token.clone()).await {
                // Landed or removed by the ATC: the worker's job is done.
                Ok(crate::beacon::Ended::Finished) => {
                    tracing::info!("the TSA ended the registration (landed or retired); exiting");
                    token.cancel();
                }
                Ok(crate::beacon::Ended::Stopped) => {}
                Err(e) => {
                    tracing::error!(error = %e, "registration failed; exiting");
                    token.cancel();
                }
            }
        })
    });
    let signal_token = shutdown.clone();
    let signals = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut usr1), Ok(mut usr2)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        ) else {
            return;
        };
        loop {
            // SIGUSR1 lands, SIGUSR2 retires (worker-protocols.md): the registration ends
            // when the ATC has drained the worker, and the process exits with it.
            let retire = tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = usr1.recv() => false,
                _ = usr2.recv() => true,
            };
            let Some(config) = &control else {
                tracing::warn!("no --tsa-host: nothing to land or retire from");
                continue;
            };
            let done = if retire {
                crate::beacon::retire(config).await
            } else {
                crate::beacon::land(config).await
            };
            match done {
                Ok(()) => tracing::info!(retire, "asked the TSA to drain this worker"),
                Err(e) => tracing::error!(error = %e, retire, "landing or retiring failed"),
            }
        }
        tracing::info!("shutting down the worker; containers keep running until the process exits");
        signal_token.cancel();
    });
    let result = parts.serve(gl, bl, shutdown).await;
    signals.abort();
    if let Some(r) = registration {
        let _ = r.await;
    }
    result
}

/// The machine's hostname (upstream's default worker name), or `fallback`.
pub(crate) fn hostname_or(fallback: &str) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| fallback.into())
}

fn hostname() -> String {
    hostname_or("worker")
}

/// What every worker of this binary reports: name, platform, worker version, start
/// time, and the base resource types built into the binary (`concourse resource TYPE
/// ...`), whose image is the binary itself.
pub(crate) fn base_payload(name: String) -> crate::proto::worker::Worker {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    crate::proto::worker::Worker {
        name,
        platform: "linux".into(),
        version: crate::proto::api::WORKER_VERSION.into(),
        start_time: crate::clock::now(),
        resource_types: crate::resources::BASE_TYPES
            .iter()
            .map(|(t, v)| crate::proto::worker::WorkerResourceType {
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

fn tsa_keys(
    tsa: &crate::cli::TsaClientArgs,
) -> anyhow::Result<(Vec<russh::keys::PublicKey>, russh::keys::PrivateKey)> {
    let public = tsa
        .tsa_public_key
        .as_deref()
        .context("--tsa-public-key is required with --tsa-host")?;
    let private = tsa
        .tsa_worker_private_key
        .as_deref()
        .context("--tsa-worker-private-key is required with --tsa-host")?;
    Ok((
        crate::tsa::load_authorized_keys(public)?,
        crate::tsa::load_private_key(private)?,
    ))
}

/// The worker payload and how to reach the TSA, from `concourse worker`'s flags.
fn beacon_config(
    args: &WorkerArgs,
    garden_addr: String,
    baggageclaim_addr: String,
) -> anyhow::Result<crate::beacon::BeaconConfig> {
    let rt = &args.runtime;
    let (public, private) = tsa_keys(&rt.tsa)?;
    let mut worker = crate::proto::worker::Worker {
        team: rt.team.clone().unwrap_or_default(),
        ephemeral: rt.ephemeral,
        tags: (!rt.tags.is_empty()).then(|| rt.tags.clone()),
        ..base_payload(args.name.clone().unwrap_or_else(hostname))
    };
    let direct = match &rt.peer_address {
        Some(peer) => {
            let port = |a: &str| a.rsplit(':').next().unwrap_or_default().to_string();
            worker.garden_addr = format!("{peer}:{}", port(&garden_addr));
            worker.baggageclaim_url = format!("http://{peer}:{}", port(&baggageclaim_addr));
            true
        }
        None => false,
    };
    let mut config = crate::beacon::BeaconConfig::new(
        rt.tsa_host.clone(),
        public,
        private,
        worker,
        garden_addr,
        baggageclaim_addr,
    );
    config.direct = direct;
    Ok(config)
}

/// `concourse land-worker` / `retire-worker`: one command through the TSA.
pub async fn control(args: crate::cli::WorkerControlArgs, retire: bool) -> anyhow::Result<()> {
    let (public, private) = tsa_keys(&args.tsa)?;
    let hosts = if args.tsa_host.is_empty() {
        vec!["127.0.0.1:2222".to_string()]
    } else {
        args.tsa_host.clone()
    };
    let worker = crate::proto::worker::Worker {
        name: args.name.clone().unwrap_or_else(hostname),
        team: args.team.clone(),
        ..Default::default()
    };
    let config = crate::beacon::BeaconConfig::new(
        hosts,
        public,
        private,
        worker,
        String::new(),
        String::new(),
    );
    let name = config.worker.name.clone();
    if retire {
        crate::beacon::retire(&config).await?;
        println!("retiring worker '{name}'");
    } else {
        crate::beacon::land(&config).await?;
        println!("landing worker '{name}'");
    }
    Ok(())
}

/// Go-style durations (`0`, `30s`, `1m30s`, `500ms`, `4h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" || s.is_empty() {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[num_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("invalid duration {s:?}")),
        };
        total += n * scale;
        rest = &rest[num_len + unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }
}
