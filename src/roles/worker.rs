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
        let volumes = Volumes::open(vconfig).context("opening volumes")?;

        let kind = match &args.runtime {
            Some(r) => r.parse::<BackendKind>().map_err(anyhow::Error::msg)?,
            None => BackendKind::detect(),
        };
        let backend: Arc<dyn Backend> = match kind {
            BackendKind::Process => Arc::new(ProcessBackend),
            BackendKind::Linux => Arc::new(
                garden::linux::LinuxBackend::new(&work_dir)
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
        tracing::info!(runtime = ?kind, driver = ?volumes.driver_kind(), work_dir = %work_dir.display(), "worker ready");
        Ok(WorkerParts {
            containers,
            volumes,
        })
    }

    /// The parts with upstream's defaults (runtime and driver detected), for quickstart's
    /// in-process worker.
    pub fn open_default(work_dir: &Path) -> anyhow::Result<WorkerParts> {
        let args = WorkerRuntimeArgs {
            bind_ip: "127.0.0.1".into(),
            bind_port: 7777,
            runtime: None,
            containerd_max_containers: 250,
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

/// Runs `concourse worker` until SIGINT or SIGTERM.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let Some(work_dir) = args.work_dir.clone() else {
        bail!("the required flag `--work-dir' was not specified")
    };
    let rt = &args.runtime;
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
    if rt.tsa_host.is_empty() {
        tracing::info!("no --tsa-host given: running standalone");
    } else {
        tracing::warn!(tsa = ?rt.tsa_host, "registration through the TSA is not part of this build; running standalone");
    }
    let shutdown = CancellationToken::new();
    let signal_token = shutdown.clone();
    let signals = tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down the worker; containers keep running until the process exits");
        signal_token.cancel();
    });
    let result = parts.serve(gl, bl, shutdown).await;
    signals.abort();
    result
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
