//! Operator commands: `get-wall`/`set-wall`/`clear-wall`, `active-users`,
//! `get-components`/`pause-component`/`unpause-component`, `completion`.

use super::client::{seg, Target};
use super::table::Table;
use super::{print_json, Global};
use crate::config::{format_go_duration, parse_go_duration};
use anyhow::{anyhow, bail, Result};
use chrono::{Datelike, NaiveDate};
use clap::CommandFactory;
use serde::{Deserialize, Serialize};

/// `atc.Wall`: `TTL` is a Go `time.Duration` (nanoseconds).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Wall {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(rename = "TTL", default, skip_serializing_if = "is_zero")]
    pub ttl: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, clap::Args)]
pub struct SetWallArgs {
    /// Message to broadcast. Supports emojis and links.
    #[arg(short = 'm', long, required = true)]
    pub message: String,
    /// Time-to-live for the message (e.g. 1h30m). Zero values will result in a message with no expiration.
    #[arg(long, value_parser = duration_ns, default_value = "0s")]
    pub ttl: i64,
}

#[derive(Debug, clap::Args)]
pub struct ActiveUsersArgs {
    /// Start date range of returned users' last login, defaults to 2 months from today
    #[arg(long, value_name = "yyyy-mm-dd")]
    pub since: Option<String>,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ComponentsArgs {
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PauseComponentArgs {
    /// Name of a component (repeatable)
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// All components
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Components related to starting and running pipelines
    #[arg(long)]
    pub runtime_components: bool,
    /// Components related to garbage collection of data in the database, and artifacts on workers
    #[arg(long)]
    pub gc_components: bool,
}

/// `atc.ComponentsRuntime` and `atc.ComponentsGarbageCollection`.
const RUNTIME_COMPONENTS: &[&str] = &["tracker", "scanner", "scheduler"];
const GC_COMPONENTS: &[&str] = &[
    "reaper",
    "collector_artifacts",
    "collector_builds",
    "collector_check_sessions",
    "collector_checks",
    "collector_containers",
    "collector_resource_cache_uses",
    "collector_resource_caches",
    "collector_task_caches",
    "collector_resource_configs",
    "collector_volumes",
    "collector_workers",
    "collector_pipelines",
    "pipeline_pauser",
];

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// Shell type
    #[arg(long, required = true, value_parser = ["bash", "zsh", "fish"])]
    pub shell: String,
}

async fn connect(g: &Global) -> Result<Target> {
    let t = Target::load(g.target.as_deref(), g.verbose)?;
    t.validate().await?;
    Ok(t)
}

/// A Go duration flag as the API carries it: nanoseconds.
fn duration_ns(s: &str) -> Result<i64, String> {
    parse_go_duration(s).map(|ns| ns as i64)
}

pub async fn get_wall(g: &Global) -> Result<()> {
    let t = connect(g).await?;
    let wall: Wall = t
        .client
        .get_json("/api/v1/wall", &[])
        .await
        .map_err(|e| anyhow!("failed to get wall message: {e}"))?;
    if wall.message.is_empty() {
        println!("No wall message is currently set");
        return Ok(());
    }
    println!("Wall Message: {}", wall.message);
    if wall.ttl == 0 {
        println!("No expiration set");
    } else {
        println!("Expires in: {}", format_go_duration(wall.ttl.into()));
    }
    Ok(())
}

pub async fn set_wall(g: &Global, a: &SetWallArgs) -> Result<()> {
    let t = connect(g).await?;
    let wall = Wall {
        message: a.message.clone(),
        ttl: a.ttl,
    };
    t.client
        .send(t.client.put("/api/v1/wall").json(&wall))
        .await
        .map_err(|e| anyhow!("failed to set wall message: {e}"))?;
    println!("Wall message set successfully");
    if a.ttl == 0 {
        println!("No expiration set");
    } else {
        println!(
            "Message will expire in {}",
            format_go_duration(a.ttl.into())
        );
    }
    Ok(())
}

pub async fn clear_wall(g: &Global) -> Result<()> {
    let t = connect(g).await?;
    t.client
        .send(t.client.request(reqwest::Method::DELETE, "/api/v1/wall"))
        .await
        .map_err(|e| anyhow!("failed to clear wall message: {e}"))?;
    println!("Wall message cleared successfully");
    Ok(())
}

/// `atc.User` as `GET /api/v1/users` returns it (every field `omitempty`).
#[derive(Debug, Serialize, Deserialize)]
pub struct User {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connector: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_login: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
}

pub async fn active_users(g: &Global, a: &ActiveUsersArgs) -> Result<()> {
    let today = chrono::Local::now().date_naive();
    let since = match &a.since {
        Some(s) => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| anyhow!("since time should be in the format: yyyy-mm-dd"))?;
            if d > today {
                bail!("since time can't be in the future");
            }
            d
        }
        None => today
            .checked_sub_months(chrono::Months::new(2))
            .unwrap_or(today),
    };
    let t = connect(g).await?;
    let since_q = format!(
        "{:04}-{:02}-{:02}",
        since.year(),
        since.month(),
        since.day()
    );
    let users: Vec<User> = t
        .client
        .get_json("/api/v1/users", &[("since".to_string(), since_q)])
        .await?;
    if a.json {
        return print_json(&users);
    }
    let mut table = Table::new(&["username", "connector", "last login"]);
    for u in &users {
        let last = chrono::DateTime::from_timestamp(u.last_login, 0)
            .map(|d| {
                d.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_default();
        table.push(vec![
            u.username.clone().into(),
            u.connector.clone().into(),
            last.into(),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

/// `atc.Component`; `interval` is a Go duration in nanoseconds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Component {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub interval: i64,
    #[serde(default)]
    pub last_ran: Option<String>,
    #[serde(default)]
    pub paused: bool,
}

pub async fn get_components(g: &Global, a: &ComponentsArgs) -> Result<()> {
    let t = connect(g).await?;
    let mut comps: Vec<Component> = t.client.get_json("/api/v1/components", &[]).await?;
    comps.sort_by_key(|c| c.name.to_lowercase());
    if a.json {
        return print_json(&comps);
    }
    let mut table = Table::new(&["name", "interval", "last ran", "paused"]);
    for c in &comps {
        let last = c
            .last_ran
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| {
                d.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        table.push(vec![
            c.name.clone().into(),
            format_go_duration(c.interval.into()).into(),
            last.into(),
            c.paused.to_string().into(),
        ]);
    }
    table.print(g.print_table_headers);
    Ok(())
}

pub async fn pause_component(g: &Global, a: &PauseComponentArgs, pause: bool) -> Result<()> {
    let t = connect(g).await?;
    let (action, done) = if pause {
        ("pause", "paused")
    } else {
        ("unpause", "unpaused")
    };
    if a.all {
        t.client
            .send(t.client.put(&format!("/api/v1/components/{action}")))
            .await?;
        println!("all components {done}");
        return Ok(());
    }
    let mut names = a.names.clone();
    if a.runtime_components {
        names.extend(RUNTIME_COMPONENTS.iter().map(|s| s.to_string()));
    }
    if a.gc_components {
        names.extend(GC_COMPONENTS.iter().map(|s| s.to_string()));
    }
    if names.is_empty() {
        bail!("--name or --all must be provided");
    }
    for n in &names {
        t.client
            .send(
                t.client
                    .put(&format!("/api/v1/components/{}/{action}", seg(n))),
            )
            .await?;
        println!("{done} '{n}'");
    }
    Ok(())
}

/// Static completion scripts generated from the clap tree (commands, aliases, long flags).
pub fn completion(a: &CompletionArgs) -> Result<()> {
    let cmd = super::cli::FlyArgs::command();
    let mut names = Vec::new();
    let mut flags_of = Vec::new();
    for sub in cmd.get_subcommands() {
        let flags: Vec<String> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .chain(["--target".to_string(), "--help".to_string()])
            .collect();
        for n in std::iter::once(sub.get_name()).chain(sub.get_visible_aliases()) {
            names.push(n.to_string());
            flags_of.push((n.to_string(), flags.join(" ")));
        }
    }
    match a.shell.as_str() {
        "bash" => {
            println!("_fly_compl() {{");
            println!("  local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" cmd=\"\" w");
            println!("  for w in \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\"; do");
            println!("    case \"$w\" in -*) ;; *) cmd=\"$w\"; break;; esac");
            println!("  done");
            println!("  local words");
            println!("  case \"$cmd\" in");
            for (n, f) in &flags_of {
                println!("    {n}) words=\"{f}\";;");
            }
            println!(
                "    *) words=\"{} --target --verbose --print-table-headers --version --help\";;",
                names.join(" ")
            );
            println!("  esac");
            println!("  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))");
            println!("}}");
            println!("complete -F _fly_compl fly");
        }
        "zsh" => {
            println!("#compdef fly");
            println!("autoload -U +X bashcompinit && bashcompinit");
            println!("_fly_compl() {{");
            println!("  local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" cmd=\"\" w words");
            println!("  for w in \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\"; do");
            println!("    case \"$w\" in -*) ;; *) cmd=\"$w\"; break;; esac");
            println!("  done");
            println!("  case \"$cmd\" in");
            for (n, f) in &flags_of {
                println!("    {n}) words=\"{f}\";;");
            }
            println!(
                "    *) words=\"{} --target --verbose --print-table-headers --version --help\";;",
                names.join(" ")
            );
            println!("  esac");
            println!("  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))");
            println!("}}");
            println!("complete -F _fly_compl fly");
        }
        _ => {
            println!("complete -c fly -f");
            for n in &names {
                println!("complete -c fly -n __fish_use_subcommand -a {n}");
            }
            for (n, f) in &flags_of {
                for flag in f.split(' ') {
                    println!(
                        "complete -c fly -n '__fish_seen_subcommand_from {n}' -l {}",
                        flag.trim_start_matches("--")
                    );
                }
            }
        }
    }
    Ok(())
}
