//! Wiring of each role: build the components, bind, run, shut down. No domain logic here.

pub mod connector;
pub mod keys;
pub mod quickstart;
pub mod tsa;
pub mod web;
pub mod worker;

use crate::cli::{Cli, Command, LogFormat, LogLevel};

/// Runs the chosen role; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    // fly and resource scripts need no runtime of ours; dispatch them before it exists.
    let cli = match cli.command {
        Command::Fly { args } => {
            return crate::fly::main(args.into_iter().map(Into::into).collect())
        }
        Command::Resource {
            type_,
            action,
            args,
        } => return crate::resources::main(&type_, &action, &args),
        command => Cli { command, ..cli },
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return 1;
        }
    };
    // The span exporter's gRPC channel belongs to the runtime.
    let exporter = {
        let _in_runtime = runtime.enter();
        let tracing = match &cli.command {
            Command::Web(a) => Some((&a.tracing, "concourse-web")),
            Command::Quickstart(a) => Some((&a.web.tracing, "concourse-web")),
            Command::Worker(a) => Some((&a.tracing, "concourse-worker")),
            _ => None,
        };
        match tracing
            .map(|(args, service)| args.exporter(service))
            .transpose()
        {
            Ok(e) => e.flatten(),
            Err(e) => {
                eprintln!("error: {e:#}");
                return 1;
            }
        }
    };
    let (layer, provider) = exporter.map(|e| (e.layer, e.provider)).unzip();
    init_tracing(cli.log.log_level, cli.log.log_format, layer);
    if matches!(
        cli.command,
        Command::Web(_) | Command::Quickstart(_) | Command::Worker(_)
    ) {
        crate::memory::trim_every(crate::memory::TRIM_EVERY);
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Web(args) => web::run(args, None).await,
            Command::Quickstart(args) => {
                let worker = web::QuickstartWorker {
                    network: args.worker_network(),
                    work_dir: args.worker_work_dir,
                    runtime: args.worker_runtime,
                    allowed_raw_rootfs: args.worker_allowed_raw_rootfs,
                    max_containers: args.worker_containerd_max_containers,
                };
                web::run(args.web, Some(worker)).await
            }
            Command::Migrate(args) => web::migrate(args).await,
            Command::GenerateKey(args) => keys::generate(&args),
            Command::Worker(args) => worker::run(args).await,
            Command::LandWorker(args) => worker::control(args, false).await,
            Command::RetireWorker(args) => worker::control(args, true).await,
            other => Err(anyhow::anyhow!(
                "`{}` is not available in this build yet",
                command_name(&other)
            )),
        }
    });
    if let Some(provider) = provider {
        // Sends what is still queued; the runtime (the channel's) is still there.
        let _in_runtime = runtime.enter();
        if let Err(e) = provider.shutdown() {
            eprintln!("tracing: flushing spans: {e}");
        }
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Web(_) => "web",
        Command::Worker(_) => "worker",
        Command::Quickstart(_) => "quickstart",
        Command::Migrate(_) => "migrate",
        Command::GenerateKey(_) => "generate-key",
        Command::LandWorker(_) => "land-worker",
        Command::RetireWorker(_) => "retire-worker",
        Command::Fly { .. } => "fly",
        Command::Resource { .. } => "resource",
    }
}

fn init_tracing(
    level: LogLevel,
    format: LogFormat,
    spans: Option<Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>>,
) {
    use tracing_subscriber::prelude::*;
    let name = |level: LogLevel| match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Error => "error",
        LogLevel::Fatal => "fatal",
    };
    let directives = |level: &str| {
        let level = if level == "fatal" { "error" } else { level };
        format!("{level},hyper=warn,tokio_postgres=warn")
    };
    let from_env = std::env::var("CONCOURSE_LOG").is_ok();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONCOURSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives(name(level))));
    // Reloadable, so `PUT /api/v1/log-level` changes it at run time.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    // Colours only on a terminal: log files and collectors get plain `key=value`.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    // The level filters the log lines only: the span exporter has its own filter.
    if tracing_subscriber::registry()
        .with(spans)
        .with(fmt.with_filter(filter))
        .try_init()
        .is_ok()
    {
        crate::atc::api::admin::install_log_level(name(level), move |new| {
            // CONCOURSE_LOG (a developer's directive list) is kept as it is.
            from_env
                || handle
                    .reload(tracing_subscriber::EnvFilter::new(directives(new)))
                    .is_ok()
        });
    }
}
