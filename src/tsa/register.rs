//! The commands: registration with heartbeats (`forward-worker`, `register-worker`) and the
//! one-shot lifecycle commands, all against the store.

use super::channel::Io;
use super::connection::{ConnState, Forward};
use super::drain::{Drain, Drained};
use crate::db::{StoreError, WorkerState};
use crate::garden::client::GardenClient;
use crate::proto::worker::{TsaCommand, TsaEvent, TsaEventKind, Worker};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How long `forward-worker` waits for each of the two forwards.
const FORWARD_WAIT: Duration = Duration::from_secs(10);
/// Retry delay after a failed ping, registration or heartbeat.
const RETRY: Duration = Duration::from_secs(1);

/// Upstream's team check between the connection's key and the payload.
pub(super) fn check_team(key_team: Option<&str>, worker: &Worker) -> Result<(), String> {
    match key_team {
        None => Ok(()),
        Some(team) if worker.team.is_empty() => Err(format!(
            "key is authorized for team {team}, but worker is global"
        )),
        Some(team) if worker.team != team => Err(format!(
            "key is authorized for team {team}, but worker belongs to team {}",
            worker.team
        )),
        Some(_) => Ok(()),
    }
}

pub(super) async fn run_command(
    command: &TsaCommand,
    io: &mut Io,
    state: &ConnState,
) -> Result<(), String> {
    let worker = io.read_worker().await?;
    check_team(state.team.as_deref(), &worker)?;
    match command {
        TsaCommand::ForwardWorker {
            garden,
            baggageclaim,
        } => forward_worker(worker, garden, baggageclaim, io, state).await,
        TsaCommand::RegisterWorker => {
            check_direct_addresses(&worker, state.peer.ip())?;
            heartbeat(worker, io, state).await.and_then(Ended::outcome)
        }
        TsaCommand::LandWorker => {
            check_stored_team(state, &worker.name).await?;
            match state.shared.store.land_worker(&worker.name).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(format!("worker {} not found", worker.name)),
                Err(e) => Err(e.to_string()),
            }
        }
        // A worker already gone is retired enough (upstream tolerates the 404).
        TsaCommand::RetireWorker => {
            check_stored_team(state, &worker.name).await?;
            let retired = state.shared.store.retire_worker(&worker.name).await;
            retired.map(drop).map_err(|e| e.to_string())
        }
        TsaCommand::DeleteWorker => {
            check_stored_team(state, &worker.name).await?;
            let deleted = state.shared.store.delete_worker(&worker.name).await;
            deleted.map(drop).map_err(|e| e.to_string())
        }
        TsaCommand::ReportContainers(_) | TsaCommand::ReportVolumes(_) => {
            if worker.name.is_empty() {
                return Err("empty-worker-name".into());
            }
            // Container and volume rows are not tracked by the store yet: nothing to reconcile.
            Ok(())
        }
        TsaCommand::SweepContainers | TsaCommand::SweepVolumes => {
            if worker.name.is_empty() {
                return Err("empty-worker-name".into());
            }
            // Nothing is ever marked destroying yet (see report-*).
            io.write("[]").await;
            Ok(())
        }
    }
}

/// The payload check ([`check_team`]) only covers what the worker claims; a team key must
/// also not reach a stored worker of another team (or a global one) by naming it.
/// Checked before acting rather than in one guarded statement: a team key cannot register
/// a worker of another team under the name meanwhile (registration keeps a row's team), so
/// only a delete and re-registration through another key could slip between the two.
async fn check_stored_team(state: &ConnState, name: &str) -> Result<(), String> {
    let Some(team) = state.team.as_deref() else {
        return Ok(());
    };
    let stored = state
        .shared
        .store
        .worker(name)
        .await
        .map_err(|e| e.to_string())?;
    match stored {
        Some(row) if row.worker.team.is_empty() => Err(format!(
            "key is authorized for team {team}, but worker {name} is global"
        )),
        Some(row) if row.worker.team != team => Err(format!(
            "key is authorized for team {team}, but worker {name} belongs to team {}",
            row.worker.team
        )),
        _ => Ok(()),
    }
}

/// `register-worker` (our extension) heartbeats the payload's own addresses. Unchecked, any
/// worker key could point the web node at services only it can reach (`127.0.0.1:5432`),
/// so both addresses must be IP literals equal to the SSH peer's own IP: the worker can
/// only offer servers on its own host. (Upstream's `register-worker`, removed in 2019, used
/// the payload addresses as they came.)
pub fn check_direct_addresses(worker: &Worker, peer: IpAddr) -> Result<(), String> {
    let peer = peer.to_canonical();
    let garden = worker
        .garden_addr
        .parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical());
    if garden != Some(peer) {
        return Err(format!(
            "garden address ({}) must be an IP:port on the worker's own address ({peer})",
            worker.garden_addr
        ));
    }
    let baggageclaim = url::Url::parse(&worker.baggageclaim_url)
        .ok()
        .filter(|u| u.scheme() == "http" || u.scheme() == "https")
        .and_then(|u| match u.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip).to_canonical()),
            url::Host::Domain(_) => None,
        });
    if baggageclaim != Some(peer) {
        return Err(format!(
            "baggageclaim url ({}) must be http://IP:port on the worker's own address ({peer})",
            worker.baggageclaim_url
        ));
    }
    Ok(())
}

async fn forward_worker(
    mut worker: Worker,
    garden: &str,
    baggageclaim: &str,
    io: &mut Io,
    state: &ConnState,
) -> Result<(), String> {
    let mut forwards: HashMap<String, Forward> = HashMap::new();
    {
        let mut rx = state.forwards.lock().await;
        for _ in 0..2 {
            tokio::select! {
                forward = rx.recv() => match forward {
                    Some(f) => { forwards.insert(f.bind_addr.clone(), f); }
                    None => break,
                },
                _ = tokio::time::sleep(FORWARD_WAIT) => {}
                _ = io.interrupted.cancelled() => return Err("interrupted".into()),
            }
        }
    }
    let garden_port = forwards
        .get(garden)
        .map(|f| f.bound_port)
        .ok_or_else(|| format!("garden address ({garden}) not forwarded"))?;
    let baggageclaim_port = forwards
        .get(baggageclaim)
        .map(|f| f.bound_port)
        .ok_or_else(|| format!("baggageclaim address ({baggageclaim}) not forwarded"))?;
    let peer = &state.shared.config.peer_address;
    worker.garden_addr = format!("{peer}:{garden_port}");
    worker.baggageclaim_url = format!("http://{peer}:{baggageclaim_port}");

    let ended = heartbeat(worker, io, state).await;
    for forward in forwards.values() {
        forward.drain.cancel();
    }
    // Interrupted (signal or lost connection): let in-flight requests finish. Landed or
    // gone: the worker is going away, no need to wait.
    if matches!(ended, Ok(Ended::Interrupted)) {
        for forward in forwards.values() {
            tokio::select! {
                _ = forward.in_flight.wait() => {}
                _ = state.closed.cancelled() => {}
            }
        }
    }
    ended.and_then(Ended::outcome)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Interrupted,
    Landed,
    Gone,
}

impl Ended {
    /// The command's result. Only a worker that landed or is gone ends with status 0, which
    /// tells its beacon to stop for good; one the worker's own signal interrupted fails.
    /// (This TSA shutting down sends no status at all: see `channel::serve`.)
    fn outcome(self) -> Result<(), String> {
        match self {
            Ended::Interrupted => Err("registration interrupted".into()),
            Ended::Landed | Ended::Gone => Ok(()),
        }
    }
}

async fn event(io: &Io, kind: TsaEventKind) {
    let mut line = serde_json::to_vec(&TsaEvent { event: kind }).unwrap_or_default();
    line.push(b'\n');
    io.write(line).await;
}

/// Registers (retrying every second), then heartbeats every interval until the worker
/// lands, disappears, or the command is interrupted.
async fn heartbeat(mut worker: Worker, io: &Io, state: &ConnState) -> Result<Ended, String> {
    worker.prepare_registration().map_err(|e| e.to_string())?;
    let shared = &state.shared;
    let interval = shared.config.heartbeat_interval;
    let ttl = Some(shared.config.worker_ttl);
    let name = worker.name.clone();
    let mut drain = Drain::new(shared.config.drain_timeout);
    let pause = |d: Duration| async move {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = io.interrupted.cancelled() => true,
        }
    };

    loop {
        if io.interrupted.is_cancelled() {
            return Ok(Ended::Interrupted);
        }
        match ping(shared, &worker).await {
            Ok((containers, volumes)) => {
                worker.active_containers = containers;
                worker.active_volumes = volumes;
                match shared
                    .store
                    .register_worker(&worker, ttl, crate::clock::now())
                    .await
                {
                    Ok(_) => break,
                    Err(StoreError::Conflict(m)) => return Err(m),
                    Err(StoreError::NotFound(what)) => return Err(format!("{what} not found")),
                    Err(e) => tracing::warn!(worker = %name, error = %e, "tsa: registering failed"),
                }
            }
            Err(e) => tracing::info!(worker = %name, error = %e, "tsa: worker not reachable yet"),
        }
        if pause(RETRY).await {
            return Ok(Ended::Interrupted);
        }
    }
    tracing::info!(worker = %name, addr = %worker.garden_addr, "tsa: worker registered");
    event(io, TsaEventKind::Registered).await;

    let mut wait = interval;
    loop {
        if pause(wait).await {
            return Ok(Ended::Interrupted);
        }
        wait = RETRY;
        let (containers, volumes) = match ping(shared, &worker).await {
            Ok(counts) => counts,
            Err(e) => {
                tracing::info!(worker = %name, error = %e, "tsa: ping failed");
                continue;
            }
        };
        match shared
            .store
            .heartbeat_worker(&name, containers, volumes, ttl, crate::clock::now())
            .await
        {
            Ok(Some(row)) => {
                event(io, TsaEventKind::Heartbeated).await;
                if row.state == WorkerState::Landed {
                    return Ok(Ended::Landed);
                }
                let garden = GardenClient::with_http(
                    format!("http://{}", worker.garden_addr),
                    shared.http.clone(),
                );
                let look = drain.look(&row, &garden, shared.store.as_ref());
                let timeout = shared.config.garden_request_timeout;
                let drained = tokio::select! {
                    d = tokio::time::timeout(timeout, look) => d.ok().flatten(),
                    _ = io.interrupted.cancelled() => return Ok(Ended::Interrupted),
                };
                match drained {
                    Some(Drained::Landed) => return Ok(Ended::Landed),
                    Some(Drained::Retired) => return Ok(Ended::Gone),
                    None => {}
                }
                wait = interval;
            }
            Ok(None) => {
                tracing::info!(worker = %name, "tsa: worker is gone; ending its registration");
                return Ok(Ended::Gone);
            }
            Err(e) => tracing::warn!(worker = %name, error = %e, "tsa: heartbeat failed"),
        }
    }
}

#[derive(Deserialize)]
struct GardenContainers {
    #[serde(rename = "Handles", default)]
    handles: Option<Vec<String>>,
}

/// Counts Garden containers and Baggageclaim volumes through the worker's addresses.
async fn ping(shared: &super::connection::Shared, worker: &Worker) -> Result<(i64, i64), String> {
    let timeout = shared.config.garden_request_timeout;
    let containers: GardenContainers = get_json(
        &shared.http,
        &format!("http://{}/containers", worker.garden_addr),
        timeout,
    )
    .await?;
    let volumes: Option<Vec<serde_json::Value>> = get_json(
        &shared.http,
        &format!("{}/volumes", worker.baggageclaim_url.trim_end_matches('/')),
        timeout,
    )
    .await?;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Ok((
        count(containers.handles.map_or(0, |h| h.len())),
        count(volumes.map_or(0, |v| v.len())),
    ))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<T, String> {
    let resp = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("GET {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_registration_only_offers_servers_on_the_workers_own_ip() {
        let worker = |addr: &str, url: &str| Worker {
            garden_addr: addr.into(),
            baggageclaim_url: url.into(),
            ..Worker::default()
        };
        let v4: IpAddr = "10.0.0.7".parse().expect("ip");
        let ok = worker("10.0.0.7:7777", "http://10.0.0.7:7788");
        assert!(check_direct_addresses(&ok, v4).is_ok());
        // An IPv4 peer seen through a dual-stack socket is the same host.
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().expect("ip");
        assert!(check_direct_addresses(&ok, mapped).is_ok());
        let v6: IpAddr = "fd00::7".parse().expect("ip");
        let ok6 = worker("[fd00:0::7]:7777", "http://[fd00::7]:7788/");
        assert!(check_direct_addresses(&ok6, v6).is_ok());

        assert_eq!(
            check_direct_addresses(&worker("127.0.0.1:5432", "http://10.0.0.7:7788"), v4)
                .expect_err("another host"),
            "garden address (127.0.0.1:5432) must be an IP:port on the worker's own address (10.0.0.7)"
        );
        assert_eq!(
            check_direct_addresses(&worker("10.0.0.7:7777", "http://169.254.169.254/"), v4)
                .expect_err("another host"),
            "baggageclaim url (http://169.254.169.254/) must be http://IP:port on the worker's own address (10.0.0.7)"
        );
        for (addr, url) in [
            ("worker.local:7777", "http://10.0.0.7:7788"),
            ("10.0.0.7", "http://10.0.0.7:7788"),
            ("", "http://10.0.0.7:7788"),
            ("10.0.0.7:7777", "http://localhost:7788"),
            ("10.0.0.7:7777", "file:///etc/passwd"),
            ("10.0.0.7:7777", "http://10.0.0.7@127.0.0.1:7788"),
        ] {
            assert!(
                check_direct_addresses(&worker(addr, url), v4).is_err(),
                "{addr} {url}"
            );
        }
    }

    #[test]
    fn team_keys_only_register_their_own_team() {
        let worker = |team: &str| Worker {
            team: team.into(),
            ..Worker::default()
        };
        assert!(check_team(None, &worker("")).is_ok());
        assert!(check_team(None, &worker("a")).is_ok());
        assert!(check_team(Some("a"), &worker("a")).is_ok());
        assert_eq!(
            check_team(Some("a"), &worker("")).expect_err("global"),
            "key is authorized for team a, but worker is global"
        );
        assert_eq!(
            check_team(Some("a"), &worker("b")).expect_err("other team"),
            "key is authorized for team a, but worker belongs to team b"
        );
    }
}
