//! The `fly` CLI: speaks the ATC HTTP API, keeps targets in `~/.flyrc`.
//! Shares `proto` and `config` only; never the server's modules.
//!
//! Layout: `cli` (flags), `client` (HTTP, errors, version check), `rc` (flyrc), `refs`
//! (pipeline/job arguments), `table`/`ui` (output), `yaml`, and one file per command group.

mod admin;
pub mod builds;
pub mod cli;
pub mod client;
mod containers;
mod diff;
mod execute;
mod intercept;
mod jobs;
mod login;
mod misc;
mod pipelines;
pub mod rc;
mod resources;
mod setpipeline;
pub mod table;
mod targets;
mod teams;
pub mod ui;
mod validate;
mod vars;
mod workers;
pub mod yaml;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use cli::{Command, FlyArgs};
use client::FlyError;
use std::ffi::OsString;

/// What every command gets from the global flags.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub target: Option<String>,
    pub verbose: bool,
    pub print_table_headers: bool,
}

/// Runs fly with its arguments (without the program name); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    exit_quietly_on_broken_pipe();
    let argv = std::iter::once(OsString::from("fly")).chain(watch_timestamps(args));
    let parsed = match FlyArgs::try_parse_from(argv) {
        Ok(p) => p,
        Err(e) => return render_parse_error(e),
    };
    if parsed.version {
        println!("{}", client::fly_version());
        return 0;
    }
    let Some(command) = parsed.command else {
        let _ = FlyArgs::command().print_help();
        return 0;
    };
    let global = Global {
        target: parsed.target,
        verbose: parsed.verbose,
        print_table_headers: parsed.print_table_headers,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        let mut result = run(&global, &command).await;
        if is_unauthorized(&result)
            && ui::stdin_is_tty()
            && ui::stdout_is_tty()
            && global.target.is_some()
        {
            eprintln!("could not find a valid token.");
            result = match login::relogin(&global).await {
                Ok(()) => run(&global, &command).await,
                Err(e) => Err(e),
            };
        }
        match result {
            Ok(()) => 0,
            Err(e) => render_error(&global, e),
        }
    })
}

/// In upstream `fly watch -t` means `--timestamps` (the command's own short flag shadows the
/// global `-t, --target` after the command name). clap cannot shadow a global short flag, so
/// a bare `-t` after `watch`/`w` is rewritten to `--timestamps` before parsing.
fn watch_timestamps(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "-t" || a == "--target" {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        if a != "watch" && a != "w" {
            return args;
        }
        break;
    }
    args.into_iter()
        .enumerate()
        .map(|(j, a)| {
            if j > i && a == "-t" {
                OsString::from("--timestamps")
            } else {
                a
            }
        })
        .collect()
}

/// Go programs die of SIGPIPE when a reader like `head` goes away; Rust ignores the signal
/// and `println!` panics instead. Turn that panic into a quiet exit.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn is_unauthorized(r: &anyhow::Result<()>) -> bool {
    matches!(r, Err(e) if matches!(e.downcast_ref::<FlyError>(), Some(FlyError::Unauthorized)))
}

async fn run(g: &Global, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Login(a) => login::login(g, a).await,
        Command::Logout(a) => login::logout(g, a).await,
        Command::Targets => targets::targets(g),
        Command::Status => targets::status(g).await,
        Command::Userinfo(a) => targets::userinfo(g, a).await,
        Command::Sync(a) => targets::sync(g, a).await,
        Command::Curl(a) => targets::curl(g, a).await,
        Command::DeleteTarget(a) => targets::delete_target(g, a),
        Command::EditTarget(a) => targets::edit_target(g, a),
        Command::SetPipeline(a) => setpipeline::set_pipeline(g, a).await,
        Command::GetPipeline(a) => pipelines::get_pipeline(g, a).await,
        Command::DestroyPipeline(a) => pipelines::destroy_pipeline(g, a).await,
        Command::Pipelines(a) => pipelines::pipelines(g, a).await,
        Command::PausePipeline(a) => pipelines::pause_pipeline(g, a, true).await,
        Command::UnpausePipeline(a) => pipelines::pause_pipeline(g, a, false).await,
        Command::ExposePipeline(a) => pipelines::expose_pipeline(g, a, true).await,
        Command::HidePipeline(a) => pipelines::expose_pipeline(g, a, false).await,
        Command::RenamePipeline(a) => pipelines::rename_pipeline(g, a).await,
        Command::OrderPipelines(a) => pipelines::order_pipelines(g, a).await,
        Command::ArchivePipeline(a) => pipelines::archive_pipeline(g, a).await,
        Command::PausedPipelines(a) => pipelines::paused_pipelines(g, a).await,
        Command::Checklist(a) => pipelines::checklist(g, a).await,
        Command::ValidatePipeline(a) => validate::validate_pipeline(a),
        Command::FormatPipeline(a) => validate::format_pipeline(a),
        Command::Jobs(a) => jobs::jobs(g, a).await,
        Command::PausedJobs(a) => jobs::paused_jobs(g, a).await,
        Command::PauseJob(a) => jobs::pause_job(g, a, true).await,
        Command::UnpauseJob(a) => jobs::pause_job(g, a, false).await,
        Command::Builds(a) => builds::builds(g, a).await,
        Command::TriggerJob(a) => builds::trigger_job(g, a).await,
        Command::Execute(a) => execute::execute(g, a).await,
        Command::AbortBuild(a) => builds::abort_build(g, a).await,
        Command::Watch(a) => builds::watch(g, a).await,
        Command::RerunBuild(a) => builds::rerun_build(g, a).await,
        Command::Resources(a) => resources::resources(g, a).await,
        Command::ResourceVersions(a) => resources::resource_versions(g, a).await,
        Command::PinResource(a) => resources::pin_resource(g, a).await,
        Command::UnpinResource(a) => resources::unpin_resource(g, a).await,
        Command::EnableResourceVersion(a) => resources::set_version_enabled(g, a, true).await,
        Command::DisableResourceVersion(a) => resources::set_version_enabled(g, a, false).await,
        Command::CheckResource(a) => resources::check_resource(g, a).await,
        Command::CheckResourceType(a) => resources::check_resource_type(g, a).await,
        Command::Workers(a) => workers::workers(g, a).await,
        Command::PruneWorker(a) => workers::prune_worker(g, a).await,
        Command::LandWorker(a) => workers::land_worker(g, a).await,
        Command::Containers(a) => containers::containers(g, a).await,
        Command::Volumes(a) => containers::volumes(g, a).await,
        Command::Hijack(a) => intercept::intercept(g, a).await,
        Command::ClearTaskCache(a) => containers::clear_task_cache(g, a).await,
        Command::Teams(a) => teams::teams(g, a).await,
        Command::GetTeam(a) => teams::get_team(g, a).await,
        Command::SetTeam(a) => teams::set_team(g, a).await,
        Command::RenameTeam(a) => teams::rename_team(g, a).await,
        Command::DestroyTeam(a) => teams::destroy_team(g, a).await,
        Command::ActiveUsers(a) => admin::active_users(g, a).await,
        Command::Health(a) => misc::health(g, a).await,
        Command::OrderInstancedPipelines(a) => misc::order_instanced_pipelines(g, a).await,
        Command::ScheduleJob(a) => misc::schedule_job(g, a).await,
        Command::ClearResourceCache(a) => misc::clear_resource_cache(g, a).await,
        Command::ClearVersions(a) => misc::clear_versions(g, a).await,
        Command::GetWall => admin::get_wall(g).await,
        Command::SetWall(a) => admin::set_wall(g, a).await,
        Command::ClearWall => admin::clear_wall(g).await,
        Command::GetComponents(a) => admin::get_components(g, a).await,
        Command::PauseComponent(a) => admin::pause_component(g, a, true).await,
        Command::UnpauseComponent(a) => admin::pause_component(g, a, false).await,
        Command::Completion(a) => admin::completion(a),
    }
}

/// Upstream's `handleError` (fly/main.go).
fn render_error(g: &Global, err: anyhow::Error) -> i32 {
    let target = g.target.clone().unwrap_or_default();
    let Some(fe) = err.downcast_ref::<FlyError>() else {
        eprintln!("error: {}", error_text(&err));
        return 1;
    };
    match fe {
        FlyError::Unauthorized => {
            eprintln!("not authorized. run the following to log in:");
            eprintln!();
            eprintln!("    fly -t {target} login");
            eprintln!();
        }
        FlyError::NoTarget => {
            eprintln!("no target specified. specify the target with -t or log in like so:");
            eprintln!();
            eprintln!("    fly -t (alias) login -c (concourse url)");
            eprintln!();
        }
        FlyError::VersionMismatch(msg) => {
            eprintln!("{msg}");
            ui::warn("cowardly refusing to run due to significant version discrepancy");
        }
        FlyError::Network(msg) => {
            eprintln!("could not reach the Concourse server called {target}:");
            eprintln!();
            eprintln!("    {msg}");
            eprintln!();
            eprintln!("is the targeted Concourse running? better go catch it lol");
        }
        FlyError::Fail(msg) => eprintln!("{msg}"),
        FlyError::Exit(code) => return *code,
        other => eprintln!("error: {other}"),
    }
    1
}

/// anyhow's context chain, outermost first, like Go's `%w` wrapping.
fn error_text(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// clap errors in go-flags' words where they differ; help exits 0.
fn render_parse_error(e: clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            0
        }
        ErrorKind::MissingRequiredArgument => {
            let flags: Vec<String> = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(v)) => v.iter().map(|s| describe_flag(s)).collect(),
                _ => Vec::new(),
            };
            if flags.len() == 1 {
                eprintln!("error: the required flag '{}' was not specified", flags[0]);
            } else if !flags.is_empty() {
                eprintln!(
                    "error: the required flags '{}' were not specified",
                    flags.join("' and '")
                );
            } else {
                eprint!("{}", e.render());
            }
            1
        }
        ErrorKind::InvalidSubcommand => match e.get(ContextKind::InvalidSubcommand) {
            Some(ContextValue::String(s)) => {
                eprintln!("error: Unknown command '{s}'");
                1
            }
            _ => {
                eprint!("{}", e.render());
                1
            }
        },
        ErrorKind::UnknownArgument => match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(s)) => {
                eprintln!("error: unknown flag '{}'", s.trim_start_matches('-'));
                1
            }
            _ => {
                eprint!("{}", e.render());
                1
            }
        },
        _ => {
            eprint!("{}", e.render());
            1
        }
    }
}

/// `--pipeline <PIPELINE>` → `-p, --pipeline` (looked up among the subcommands' flags).
fn describe_flag(s: &str) -> String {
    let long = s
        .split_whitespace()
        .next()
        .unwrap_or(s)
        .trim_start_matches("--")
        .to_string();
    let cmd = FlyArgs::command();
    for sub in cmd.get_subcommands() {
        for arg in sub.get_arguments() {
            if arg.get_long() == Some(long.as_str()) {
                return match arg.get_short() {
                    Some(c) => format!("-{c}, --{long}"),
                    None => format!("--{long}"),
                };
            }
        }
    }
    format!("--{long}")
}

/// Prints a value as upstream's `--json` does: 2-space indent and a newline.
pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Reads a `-c` style path: `-` is stdin; otherwise the (glob-expanded) path must exist.
pub(crate) fn read_path(path: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    let resolved = resolve_path(path)?;
    std::fs::read(&resolved)
        .map_err(|e| anyhow::anyhow!("could not read {}: {e}", resolved.display()))
}

/// Expands a path flag like go-flags' `atc.PathFlag`: exactly one match is required.
pub(crate) fn resolve_path(path: &str) -> anyhow::Result<std::path::PathBuf> {
    let matches = glob(path);
    match matches.len() {
        0 => anyhow::bail!("path '{path}' does not exist"),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        _ => anyhow::bail!(
            "path '{path}' resolves to multiple entries: {}",
            matches
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Existing paths matching `pattern` (`*`, `?`, `[...]` within one component), sorted.
fn glob(pattern: &str) -> Vec<std::path::PathBuf> {
    use std::path::{Component, PathBuf};
    let p = std::path::Path::new(pattern);
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in p.components() {
        let part = comp.as_os_str().to_string_lossy().into_owned();
        let wild = matches!(comp, Component::Normal(_)) && part.contains(['*', '?', '[']);
        let mut next = Vec::new();
        for base in &current {
            if !wild {
                next.push(base.join(&part));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                base.clone()
            };
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                if (!name.starts_with('.') || part.starts_with('.')) && wildcard(&part, &name) {
                    next.push(base.join(name));
                }
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty() && p.exists())
        .collect()
}

fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return !n.is_empty() && n[0] == '[' && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let set = &p[1..end];
                let (negate, set) = match set.first() {
                    Some('!') | Some('^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<FlyArgs, clap::Error> {
        FlyArgs::try_parse_from(std::iter::once("fly").chain(args.iter().copied()))
    }

    #[test]
    fn target_may_come_before_or_after_the_command() {
        let a = parse(&["-t", "ci", "pipelines"]).unwrap();
        assert_eq!(a.target.as_deref(), Some("ci"));
        let b = parse(&["pipelines", "--target=ci"]).unwrap();
        assert_eq!(b.target.as_deref(), Some("ci"));
        let c = parse(&["-tci", "ps"]).unwrap();
        assert_eq!(c.target.as_deref(), Some("ci"));
        assert!(matches!(c.command, Some(Command::Pipelines(_))));
    }

    #[test]
    fn aliases_and_repeated_flags_work() {
        let a = parse(&[
            "-t", "ci", "sp", "-p", "x", "-c", "f.yml", "-v", "a=1", "-v", "b=2", "-l", "v.yml",
        ])
        .unwrap();
        let Some(Command::SetPipeline(sp)) = a.command else {
            panic!("set-pipeline")
        };
        assert_eq!(sp.vars.var, vec!["a=1", "b=2"]);
        assert_eq!(sp.vars.load_vars_from, vec!["v.yml"]);
        assert!(parse(&["-v"]).unwrap().version);
    }

    #[test]
    fn path_flags_are_glob_expanded_and_must_match_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), "a").unwrap();
        std::fs::write(dir.path().join("b.yml"), "b").unwrap();
        let base = dir.path().to_string_lossy();
        assert_eq!(read_path(&format!("{base}/a.y?l")).unwrap(), b"a");
        assert_eq!(read_path(&format!("{base}/[b]*")).unwrap(), b"b");
        let many = format!("{base}/*.yml");
        assert!(read_path(&many)
            .unwrap_err()
            .to_string()
            .starts_with(&format!("path '{many}' resolves to multiple entries")));
        let none = format!("{base}/nope*.yml");
        assert_eq!(
            read_path(&none).unwrap_err().to_string(),
            format!("path '{none}' does not exist")
        );
    }

    #[test]
    fn missing_required_flags_are_named_like_go_flags() {
        let e = parse(&["-t", "ci", "get-pipeline"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let Some(ContextValue::Strings(v)) = e.get(ContextKind::InvalidArg) else {
            panic!("context")
        };
        assert_eq!(describe_flag(&v[0]), "-p, --pipeline");
    }
}
