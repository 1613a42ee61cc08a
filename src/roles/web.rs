//! `concourse web` (and the web half of `quickstart`): open the store, configure auth and
//! the main team, serve the API until SIGINT/SIGTERM.

use crate::atc::api::AppState;
use crate::atc::auth::{self, Auth};
use crate::cli::{MigrateArgs, PostgresArgs, WebArgs};
use crate::db::{self, Store};
use crate::proto::api::{FeatureFlags, Info, RoleAuth, TeamAuth, API_VERSION, WORKER_VERSION};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long an address in use is retried: a node restarted at once after a crash may find
/// its port still held for a moment.
const BIND_PATIENCE: Duration = Duration::from_secs(10);

/// Listens on `addr` (SO_REUSEADDR, so connections of a previous process lingering in
/// TIME_WAIT do not block it), retrying with backoff while the address is in use, for up
/// to [`BIND_PATIENCE`]; then fails naming the address and the flag that set it.
async fn listen(addr: &str, flag: &str) -> anyhow::Result<TcpListener> {
    let at = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("{flag} {addr}: not an address to listen on"))?;
    let deadline = std::time::Instant::now() + BIND_PATIENCE;
    let mut pause = Duration::from_millis(50);
    loop {
        let socket = match at {
            std::net::SocketAddr::V4(_) => TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(at).and_then(|()| socket.listen(1024)) {
            Ok(listener) => return Ok(listener),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() + pause < deadline =>
            {
                tracing::warn!(addr = %at, "address in use; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        format!("still in use after {}s", BIND_PATIENCE.as_secs())
                    }
                    _ => "cannot listen".to_string(),
                };
                return Err(e).with_context(|| format!("{flag} {at}: {why}"));
            }
        }
    }
}

/// Opens PostgreSQL when configured, else the embedded store under `--data-dir`.
pub async fn open_store(pg: &PostgresArgs) -> anyhow::Result<Arc<dyn Store>> {
    match pg.postgres() {
        // Its errors name the address already.
        Some(config) => db::connect_postgres(&config).await,
        None => {
            tokio::fs::create_dir_all(&pg.data_dir)
                .await
                .with_context(|| format!("creating data directory {}", pg.data_dir.display()))?;
            let path = pg.data_dir.join("concourse.db");
            tracing::info!(path = %path.display(), "using the embedded store");
            db::open_embedded(&path)
                .await
                .with_context(|| format!("opening embedded store {}", path.display()))
        }
    }
}

/// Main team auth from `--main-team-local-user` and `--main-team-{ldap,oidc}-user/group`:
/// everything under `owner`, like upstream.
fn main_team_auth(args: &WebArgs) -> TeamAuth {
    let prefixed = |connector: &str, names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| format!("{connector}:{}", n.to_lowercase()))
            .collect()
    };
    let mut users = prefixed(auth::LOCAL, &args.main_team_local_user);
    users.extend(prefixed(auth::LDAP, &args.main_team_ldap_user));
    users.extend(prefixed(auth::oidc::OIDC, &args.main_team_oidc_user));
    let mut groups = prefixed(auth::LDAP, &args.main_team_ldap_group);
    groups.extend(prefixed(auth::oidc::OIDC, &args.main_team_oidc_group));
    let mut auth = TeamAuth::new();
    auth.insert("owner".into(), RoleAuth { users, groups });
    auth
}

/// Runs the web node on `--bind-ip:--bind-port`. `quickstart` is Some for `concourse
/// quickstart`, carrying the worker's work dir.
/// quickstart's in-process worker: where it keeps containers and volumes, and its runtime.
#[derive(Debug, Clone, Default)]
pub struct QuickstartWorker {
    pub work_dir: Option<PathBuf>,
    pub runtime: Option<String>,
    pub allowed_raw_rootfs: Vec<PathBuf>,
    pub network: crate::cli::WorkerNetworkArgs,
    /// `--worker-containerd-max-containers` (0 = no limit).
    pub max_containers: usize,
}

pub async fn run(mut args: WebArgs, quickstart: Option<QuickstartWorker>) -> anyhow::Result<()> {
    if quickstart.is_some()
        && args.add_local_user.is_empty()
        && args.main_team_local_user.is_empty()
        && args.main_team_ldap_user.is_empty()
        && args.main_team_ldap_group.is_empty()
        && args.main_team_oidc_user.is_empty()
        && args.main_team_oidc_group.is_empty()
    {
        let loopback = args
            .bind_ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            anyhow::bail!(
                "quickstart on {} needs users: pass --add-local-user USER:PASS and \
                 --main-team-local-user USER (the default user test:test is only offered on 127.0.0.1)",
                args.bind_ip
            );
        }
        tracing::warn!(
            "no users configured: adding local user test:test as owner of the main team, \
             reachable only on {} (with --bind-ip elsewhere, quickstart needs --add-local-user)",
            args.bind_ip
        );
        args.add_local_user.push("test:test".into());
        args.main_team_local_user.push("test".into());
    }
    let addr = format!("{}:{}", args.bind_ip, args.bind_port);
    let listener = listen(&addr, "--bind-ip/--bind-port").await?;
    let (shutdown, force) = (CancellationToken::new(), CancellationToken::new());
    let (signal, forced) = (shutdown.clone(), force.clone());
    tokio::spawn(async move {
        // The first signal drains (see `serve`); a second one ends the wait at once.
        wait_for_signal().await;
        signal.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: not waiting for running builds");
        forced.cancel();
    });
    let worker = quickstart.map(|w| QuickstartWorker {
        work_dir: Some(
            w.work_dir
                .unwrap_or_else(|| args.postgres.data_dir.join("worker")),
        ),
        runtime: w.runtime,
        allowed_raw_rootfs: w.allowed_raw_rootfs,
        network: w.network,
        max_containers: w.max_containers,
    });
    serve(args, listener, shutdown, force, worker).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The API's state from the flags: users, the main team, the store, the external URL.
async fn app_state(
    args: &WebArgs,
    local: std::net::SocketAddr,
    shutdown: &CancellationToken,
) -> anyhow::Result<AppState> {
    let auth_duration = crate::config::parse_duration(&args.auth_duration)
        .ok()
        .with_context(|| format!("invalid --auth-duration '{}'", args.auth_duration))?;
    let intercept_idle_timeout = crate::config::parse_duration(&args.intercept_idle_timeout)
        .ok()
        .with_context(|| {
            format!(
                "invalid --intercept-idle-timeout '{}'",
                args.intercept_idle_timeout
            )
        })?;
    let users = auth::local_users(&args.add_local_user)?;
    let main_auth = main_team_auth(args);
    // Identity-provider flags are checked before the team auth that may name them.
    let ldap = auth::ldap::LdapConnector::from_flags(&args.ldap)?;
    let oidc = match args.oidc.config() {
        Some(c) => Some(Arc::new(auth::oidc::OidcConnector::new(c)?)),
        None => None,
    };
    if auth::password_connector_id(&args.password_connector, ldap.is_some())? != auth::LOCAL
        && !users.is_empty()
    {
        // Upstream's rule: local users log in only through the password connector.
        anyhow::bail!("can only set --add-local-user with --password-connector=local");
    }
    crate::atc::api::teams::validate_auth(&main_auth)
        .map_err(|e| anyhow::anyhow!("default team auth not configured: {e}"))?;

    let store = open_store(&args.postgres).await?;
    store
        .upsert_team("main", &main_auth, true)
        .await
        .context("configuring the main team")?;

    let external_url = args
        .external_url
        .clone()
        .unwrap_or_else(|| {
            format!(
                "http://{}:{}",
                if args.bind_ip == "0.0.0.0" {
                    "localhost"
                } else {
                    &args.bind_ip
                },
                local.port()
            )
        })
        .trim_end_matches('/')
        .to_string();
    Ok(AppState {
        auth: Arc::new(
            Auth::new(store.clone(), users, auth_duration)
                .with_ldap(ldap, &args.password_connector)?
                .with_oidc(oidc),
        ),
        store,
        info: Info {
            version: API_VERSION.into(),
            worker_version: WORKER_VERSION.into(),
            feature_flags: FeatureFlags {
                global_resources: args.enable_global_resources,
                build_rerun: true,
                cache_streamed_volumes: false,
                resource_causality: args.enable_resource_causality,
            },
            external_url: external_url.clone(),
            cluster_name: args.cluster_name.clone(),
            concourse_rs_version: env!("CARGO_PKG_VERSION").into(),
        },
        external_url,
        cli_artifacts_dir: args.cli_artifacts_dir.clone(),
        builds: crate::atc::engine::Handle::default(),
        engine: None,
        web_headers: Arc::new(crate::atc::ui::WebHeaders::new(
            &args.x_frame_options,
            &args.content_security_policy,
        )?),
        streams: Default::default(),
        cookies: crate::atc::api::session::SessionCookies {
            secure: args.cookie_secure,
        },
        intercept_idle_timeout: Some(intercept_idle_timeout).filter(|d| !d.is_zero()),
        shutdown: shutdown.child_token(),
        rbac: Arc::new(match &args.config_rbac {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --config-rbac {}", path.display()))?;
                crate::atc::api::rbac::Rbac::parse(&text)?
            }
            None => Default::default(),
        }),
        job_shapes: Default::default(),
        listings: Default::default(),
    })
}

/// The build engine's runtime from the flags: placement and redaction.
fn runtime(
    args: &WebArgs,
    state: &AppState,
    connector: super::connector::Connector,
    placer: crate::atc::engine::placement::Placer,
    creds: Option<crate::atc::creds::Manager>,
) -> crate::atc::engine::runtime::Runtime {
    let mut runtime = crate::atc::engine::runtime::Runtime::new(
        state.store.clone(),
        Arc::new(connector),
        state.external_url.clone(),
    );
    runtime.placer = placer;
    runtime.redact_secrets = !args.disable_redact_secrets;
    runtime.global_resources = args.enable_global_resources;
    runtime.creds = crate::atc::creds::Creds::new(creds);
    if args.enable_redact_secrets {
        tracing::warn!(
            "--enable-redact-secrets is deprecated and has no effect: secrets are redacted unless --disable-redact-secrets is given"
        );
    }
    runtime
}

/// Serves the web node on an already-bound listener until `shutdown` fires and running
/// builds have drained (`force` cuts the drain short).
/// This node's name as the owner of the builds it runs: kept in the data directory, so a
/// restarted node takes its running builds back at once (another node would wait for its
/// hold on them to lapse). Random where it cannot be kept.
fn node_id(data_dir: &std::path::Path) -> String {
    let path = data_dir.join("node-id");
    let fresh = format!("{:016x}", rand::random::<u64>());
    let kept = std::fs::read_to_string(&path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .or_else(|| {
            std::fs::create_dir_all(data_dir).ok()?;
            std::fs::write(&path, &fresh).ok()?;
            Some(fresh.clone())
        })
        .unwrap_or(fresh);
    kept
}

pub async fn serve(
    args: WebArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
    force: CancellationToken,
    quickstart_worker: Option<QuickstartWorker>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    // Components end when `components` fires: once the node has drained after `shutdown`,
    // or when the API fails. They keep running while builds drain: the API and event
    // streams for watchers, the TSA for workers' tunnels.
    let components = CancellationToken::new();
    let mut state = app_state(&args, local, &components).await?;
    // Key generation and file reads block: keep them off the async workers.
    let (tsa_args, store_args) = (args.tsa.clone(), args.postgres.clone());
    let tsa_config =
        tokio::task::spawn_blocking(move || super::tsa::config(&tsa_args, &store_args))
            .await
            .context("configuring the TSA")??;
    let gc_interval = super::tsa::gc_interval(&args.tsa)?;
    let placer = crate::atc::engine::placement::Placer::parse(
        &args.container_placement_strategy,
        crate::atc::engine::placement::Limits {
            tasks: args.max_active_tasks_per_worker,
            containers: args.max_active_containers_per_worker,
            volumes: args.max_active_volumes_per_worker,
        },
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let tsa_addr = format!("{}:{}", args.tsa.tsa_bind_ip, args.tsa.tsa_bind_port);
    let tsa_listener = listen(&tsa_addr, "--tsa-bind-ip/--tsa-bind-port").await?;
    let tsa_local = tsa_listener.local_addr()?;

    let tracker = TaskTracker::new();
    tracker.spawn(super::tsa::reload_keys_on_sighup(
        super::tsa::KeyFiles::from_args(&args.tsa)?,
        tsa_config.keys.clone(),
        components.clone(),
    ));
    let store = state.store.clone();
    tracker.spawn(crate::atc::gc::run_worker_collector(
        store.clone(),
        gc_interval,
        components.clone(),
    ));
    tracker.spawn(crate::atc::gc::run_build_log_collector(
        store.clone(),
        crate::atc::gc::RetentionLimits {
            default_builds: args.default_build_logs_to_retain,
            max_builds: args.max_build_logs_to_retain,
            default_days: args.default_days_to_retain_build_logs,
            max_days: args.max_days_to_retain_build_logs,
        },
        gc_interval,
        components.clone(),
    ));
    let tsa_token = components.clone();
    tracker.spawn(async move {
        if let Err(e) = crate::tsa::run(tsa_listener, tsa_config, store, tsa_token.clone()).await {
            tracing::error!(error = %e, "tsa failed");
            tsa_token.cancel();
        }
    });
    // quickstart: the worker lives in this process; its parts stay alive while we serve.
    let mut connector = super::connector::Connector::default();
    let worker = match &quickstart_worker {
        Some(w) => {
            let dir = w.work_dir.clone().unwrap_or_default();
            let (parts, heartbeat) = super::quickstart::start_worker(
                state.store.clone(),
                &dir,
                w.runtime.clone(),
                w.allowed_raw_rootfs.clone(),
                w.network.clone(),
                w.max_containers,
                components.clone(),
            )
            .await?;
            tracker.spawn(async move {
                let _ = heartbeat.await;
            });
            connector.in_process = Some((parts.garden(), parts.baggageclaim()));
            Some(parts)
        }
        None => None,
    };
    let creds = args.creds.manager().context("configuring vault")?;
    let runtime = runtime(&args, &state, connector, placer, creds);
    let holder = node_id(&args.postgres.data_dir);
    let engine = crate::atc::engine::Engine::new(Arc::new(runtime), state.builds.clone(), holder);
    state.engine = Some(engine.clone());
    tracker.spawn(crate::atc::gc::run_container_collector(
        engine.clone(),
        gc_interval,
        components.clone(),
    ));
    let engine_tasks = engine.rt.tasks.clone();
    tracker.spawn(engine.clone().watch_remote_aborts(components.clone()));
    tracker.spawn(engine.clone().keep_builds(components.clone()));
    tracker.spawn(crate::atc::scheduler::run(
        engine.clone(),
        shutdown.child_token(),
    ));
    {
        let (engine, grace) = (engine.clone(), args.shutdown_grace_period);
        let (shutdown, components, force) = (shutdown.clone(), components.clone(), force);
        // quickstart's worker stops with it: its builds cannot outlive it, so they end.
        let hand_over = quickstart_worker.is_none();
        tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = components.cancelled() => return,
            }
            engine.drain(grace, &force, hand_over).await;
            components.cancel();
        });
    }
    tracker.spawn(crate::atc::idtoken::run_lifecycle(
        state.store.clone(),
        components.clone(),
    ));
    // Upstream serves metrics only when both are given.
    if let (Some(ip), Some(port)) = (&args.prometheus_bind_ip, args.prometheus_bind_port) {
        let listener = TcpListener::bind((ip.as_str(), port))
            .await
            .with_context(|| format!("binding --prometheus-bind-ip {ip}:{port}"))?;
        eprintln!(
            "concourse prometheus listening on {}",
            listener.local_addr()?
        );
        tracker.spawn(crate::atc::metrics::serve(
            listener,
            state.store.clone(),
            components.clone(),
        ));
    }
    tracker.close();

    // Tests and scripts read these lines to find ephemeral ports.
    tracing::info!(addr = %local, tsa = %tsa_local, "listening");
    eprintln!("concourse tsa listening on {tsa_local}");
    eprintln!("concourse web listening on {local}");
    let served = crate::atc::server::run(listener, state, components.clone())
        .await
        .context("serving the API");
    components.cancel();
    shutdown.cancel();
    if tokio::time::timeout(std::time::Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("tsa and collectors did not stop within 10s");
    }
    engine_tasks.close();
    if !engine_tasks.is_empty() {
        // Not waited for: a build may run for hours. The node that next takes the
        // scheduler lease ends what they leave `started`.
        tracing::warn!(
            tasks = engine_tasks.len(),
            "builds and checks still running end with this process"
        );
    }
    // quickstart's in-process worker stops as `concourse worker` does: its containers go.
    if let Some(parts) = worker {
        parts.containers.close().await;
        parts.volumes.close().await;
    }
    served
}

/// `concourse migrate`: opening the store applies every pending migration.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if args.supported_db_version {
        println!("{}", db::supported_db_version());
        return Ok(());
    }
    open_store(&args.postgres).await?;
    println!("migrated to version {}", db::supported_db_version());
    Ok(())
}
