//! Worker commands: `workers`, `prune-worker`, `land-worker` (fly-cli.md §4.5).

use super::client::{fail, seg, FlyError, Target};
use super::table::{Cell, Table};
use super::{print_json, ui, Global};
use crate::proto::worker::Worker;
use anyhow::{bail, Result};
use serde::Deserialize;

#[derive(Debug, clap::Args)]
pub struct WorkersArgs {
    /// Print additional information for each worker
    #[arg(short = 'd', long)]
    pub details: bool,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneWorkerArgs {
    /// Worker to prune
    #[arg(short = 'w', long)]
    pub worker: Option<String>,
    /// Prune all stalled workers
    #[arg(short = 'a', long)]
    pub all_stalled: bool,
}

#[derive(Debug, clap::Args)]
pub struct LandWorkerArgs {
    /// Worker to land
    #[arg(short = 'w', long, required = true)]
    pub worker: String,
}

async fn connect(g: &Global) -> Result<Target> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    t.validate().await?;
    Ok(t)
}

async fn list(t: &Target) -> Result<Vec<Worker>> {
    t.client.get_json("/api/v1/workers", &[]).await
}

fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// `IsWorkerVersionCompatible`: same major as the server's worker version and a minor at
/// least as high. No server worker version → always compatible; none on the worker → not.
pub fn compatible(worker_version: &str, server: &str) -> bool {
    if server.is_empty() {
        return true;
    }
    match (major_minor(worker_version), major_minor(server)) {
        (Some(w), Some(s)) => w.0 == s.0 && w.1 >= s.1,
        _ => false,
    }
}

/// `Nd`, `NhMm`, `MmSs` or `Ns` since `start`; None when unknown.
pub fn age(start: i64, now: i64) -> Option<String> {
    let age = now - start;
    if start <= 0 || age < 0 {
        return None;
    }
    let (minute, hour, day) = (60, 3600, 86400);
    Some(if age / day > 0 {
        format!("{}d", age / day)
    } else if age / hour > 0 {
        format!("{}h{}m", age / hour, age % hour / minute)
    } else if age / minute > 0 {
        format!("{}m{}s", age / minute, age % minute)
    } else {
        format!("{age}s")
    })
}

fn or_none(s: String) -> Cell {
    if s.is_empty() {
        Cell::none()
    } else {
        Cell::new(s)
    }
}

fn table(workers: &[(&Worker, bool)], details: bool) -> Table {
    let mut headers = vec![
        "name",
        "containers",
        "platform",
        "tags",
        "team",
        "state",
        "version",
        "age",
    ];
    if details {
        headers.extend([
            "garden address",
            "baggageclaim url",
            "active tasks",
            "resource types",
        ]);
    }
    let now = crate::clock::now();
    let mut table = Table::new(&headers);
    for (w, outdated) in workers {
        let version = match (w.version.is_empty(), outdated) {
            (true, false) => Cell::none(),
            (true, true) => Cell::colored("none", ui::RED),
            (false, true) => Cell::colored(w.version.clone(), ui::RED),
            (false, false) => Cell::new(w.version.clone()),
        };
        let mut row = vec![
            Cell::new(w.name.clone()),
            Cell::new(w.active_containers.to_string()),
            Cell::new(w.platform.clone()),
            or_none(w.tags.clone().unwrap_or_default().join(", ")),
            or_none(w.team.clone()),
            Cell::new(w.state.map(|s| s.as_str()).unwrap_or_default()),
            version,
            match age(w.start_time, now) {
                Some(a) => Cell::new(a),
                None => Cell::colored("n/a", ui::FAINT),
            },
        ];
        if details {
            let types: Vec<&str> = w.resource_types.iter().map(|t| t.type_.as_str()).collect();
            row.extend([
                or_none(w.garden_addr.clone()),
                or_none(w.baggageclaim_url.clone()),
                or_none(w.active_tasks.to_string()),
                or_none(types.join(", ")),
            ]);
        }
        table.push(row);
    }
    table
}

pub async fn workers(g: &Global, a: &WorkersArgs) -> Result<()> {
    let t = connect(g).await?;
    let mut workers = list(&t).await?;
    if a.json {
        return print_json(&workers);
    }
    workers.sort_by(|x, y| x.name.cmp(&y.name));
    let required = t.client.info().await?.worker_version;
    let stalled_state = Some(crate::proto::worker::WorkerState::Stalled);
    let (mut running, mut outdated, mut stalled) = (Vec::new(), Vec::new(), Vec::new());
    for w in &workers {
        if w.state == stalled_state {
            stalled.push((w, false));
        } else if compatible(&w.version, &required) {
            running.push((w, false));
        } else {
            outdated.push((w, true));
        }
    }
    if !ui::stdout_is_tty() {
        let all: Vec<_> = running.into_iter().chain(outdated).chain(stalled).collect();
        table(&all, a.details).print(g.print_table_headers);
        return Ok(());
    }
    let bold = |s: &str| ui::paint(s, ui::BOLD, true);
    table(&running, a.details).print(g.print_table_headers);
    if !outdated.is_empty() {
        println!(
            "\n\nthe following workers need to be updated to version {}:\n",
            bold(&required)
        );
        table(&outdated, a.details).print(g.print_table_headers);
    }
    if !stalled.is_empty() {
        println!("\n\nthe following workers have not checked in recently:\n");
        table(&stalled, a.details).print(g.print_table_headers);
        println!("\nthese stalled workers can be cleaned up by running:\n");
        let target = g.target.clone().unwrap_or_default();
        println!(
            "    {}\n",
            bold(&format!("fly -t {target} prune-worker -w (name)"))
        );
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
struct PruneError {
    #[serde(default)]
    stderr: String,
}

pub async fn prune_worker(g: &Global, a: &PruneWorkerArgs) -> Result<()> {
    let named = a.worker.clone().filter(|w| !w.is_empty());
    if named.is_none() && !a.all_stalled {
        return Err(fail("Either a worker name or --all-stalled are required"));
    }
    let t = connect(g).await?;
    let mut names: Vec<String> = named.into_iter().collect();
    if a.all_stalled {
        let stalled = Some(crate::proto::worker::WorkerState::Stalled);
        names.extend(
            list(&t)
                .await?
                .into_iter()
                .filter(|w| w.state == stalled)
                .map(|w| w.name),
        );
        if names.is_empty() {
            print!(
                "{}",
                ui::paint(
                    "WARNING: No stalled workers found.\n",
                    ui::RED,
                    ui::stdout_is_tty()
                )
            );
        }
    }
    for name in names {
        let rb = t
            .client
            .put(&format!("/api/v1/workers/{}/prune", seg(&name)))
            .header("Content-Type", "application/json");
        match t.client.send(rb).await {
            Ok(_) => println!("pruned '{name}'"),
            Err(FlyError::Unexpected {
                code: 400, body, ..
            }) => {
                let e: PruneError = serde_json::from_str(&body)?;
                bail!("{}", e.stderr);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub async fn land_worker(g: &Global, a: &LandWorkerArgs) -> Result<()> {
    let t = connect(g).await?;
    let team = list(&t)
        .await?
        .into_iter()
        .find(|w| w.name == a.worker)
        .map(|w| w.team)
        .unwrap_or_default();
    // Upstream sends a whole `atc.Worker` with only `team` set.
    let body = Worker {
        team,
        ..Worker::default()
    };
    let rb = t
        .client
        .put(&format!("/api/v1/workers/{}/land", seg(&a.worker)))
        .json(&body);
    t.client.send(rb).await?;
    println!("landed '{}'", a.worker);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_versions_need_the_same_major_and_at_least_the_minor() {
        assert!(compatible("3.0", "3.0"));
        assert!(compatible("3.1", "3.0"));
        assert!(!compatible("2.9", "3.0"));
        assert!(!compatible("3.0", "3.1"));
        assert!(!compatible("", "3.0"));
        assert!(compatible("", ""));
    }

    #[test]
    fn ages_read_like_upstream() {
        assert_eq!(age(0, 100), None);
        assert_eq!(age(200, 100), None);
        assert_eq!(age(100, 145), Some("45s".into()));
        assert_eq!(age(1, 1 + 125), Some("2m5s".into()));
        assert_eq!(age(1, 1 + 3 * 3600 + 7 * 60), Some("3h7m".into()));
        assert_eq!(age(1, 1 + 2 * 86400 + 5), Some("2d".into()));
    }
}
