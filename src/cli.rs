//! Command-line flags of every role, with upstream's names. Each flag can also be set as
//! `CONCOURSE_<FLAG>` like upstream.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod sso;
mod worker;
pub use sso::*;
pub use worker::*;

#[derive(Debug, Parser)]
#[command(
    name = "concourse",
    version,
    about = "Concourse CI: web, worker, quickstart and fly in one binary"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web UI, API, scheduler and build engine (ATC) and the worker gateway (TSA).
    Web(WebArgs),
    /// Run a worker: Garden (containers), Baggageclaim (volumes) and the Beacon.
    Worker(WorkerArgs),
    /// Run web and one worker in a single process; embedded store unless Postgres is configured.
    Quickstart(QuickstartArgs),
    /// Apply (or report) database migrations and exit.
    Migrate(MigrateArgs),
    /// Generate an RSA or SSH key pair for the web node or a worker.
    GenerateKey(GenerateKeyArgs),
    /// Land a worker: it takes no new work and leaves once its builds finish.
    LandWorker(WorkerControlArgs),
    /// Retire a worker: like land, then it is removed for good.
    RetireWorker(WorkerControlArgs),
    /// The fly CLI (`concourse fly ...`, or invoke this binary as `fly`).
    Fly {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a built-in base resource type: `concourse resource TYPE check|in|out [DIR]`.
    Resource {
        #[arg(value_name = "TYPE")]
        type_: String,
        #[arg(value_name = "ACTION")]
        action: String,
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Error,
    Fatal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Minimum level of logs to see.
    #[arg(
        long,
        global = true,
        env = "CONCOURSE_LOG_LEVEL",
        value_enum,
        default_value = "info"
    )]
    pub log_level: LogLevel,
    /// Log line format.
    #[arg(
        long,
        global = true,
        env = "CONCOURSE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct PostgresArgs {
    /// The host to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_HOST")]
    pub postgres_host: Option<String>,
    /// The port to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_PORT", default_value_t = 5432)]
    pub postgres_port: u16,
    /// Path to a UNIX domain socket directory to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_SOCKET")]
    pub postgres_socket: Option<String>,
    /// The user to sign in as.
    #[arg(long, env = "CONCOURSE_POSTGRES_USER")]
    pub postgres_user: Option<String>,
    /// The user's password.
    #[arg(long, env = "CONCOURSE_POSTGRES_PASSWORD")]
    pub postgres_password: Option<String>,
    /// Whether or not to use SSL (disable, require, verify-ca, verify-full).
    #[arg(long, env = "CONCOURSE_POSTGRES_SSLMODE", default_value = "disable")]
    pub postgres_sslmode: String,
    /// The name of the database to use.
    #[arg(long, env = "CONCOURSE_POSTGRES_DATABASE", default_value = "atc")]
    pub postgres_database: String,
    /// Schema to keep the tables in (ours; tests give each run its own).
    #[arg(long, env = "CONCOURSE_POSTGRES_SCHEMA")]
    pub postgres_schema: Option<String>,
    /// Where the embedded store keeps its file when no Postgres is configured (ours).
    #[arg(long, env = "CONCOURSE_DATA_DIR", default_value = ".concourse")]
    pub data_dir: PathBuf,
}

impl PostgresArgs {
    /// Postgres is configured when a host or a socket is given.
    pub fn postgres(&self) -> Option<crate::db::PostgresConfig> {
        if self.postgres_host.is_none() && self.postgres_socket.is_none() {
            return None;
        }
        Some(crate::db::PostgresConfig {
            host: self
                .postgres_host
                .clone()
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: self.postgres_port,
            user: self
                .postgres_user
                .clone()
                .unwrap_or_else(|| "postgres".into()),
            password: self.postgres_password.clone().unwrap_or_default(),
            database: self.postgres_database.clone(),
            sslmode: self.postgres_sslmode.clone(),
            socket: self.postgres_socket.clone(),
            schema: self.postgres_schema.clone(),
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    #[command(flatten)]
    pub tracing: crate::telemetry::TracingArgs,
    /// IP address on which to listen for web traffic.
    #[arg(long, env = "CONCOURSE_BIND_IP", default_value = "0.0.0.0")]
    pub bind_ip: String,
    /// Port on which to listen for HTTP traffic.
    #[arg(long, env = "CONCOURSE_BIND_PORT", default_value_t = 8080)]
    pub bind_port: u16,
    /// URL used to reach any ATC from the outside world.
    #[arg(long, env = "CONCOURSE_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Name of the cluster, shown in the UI.
    #[arg(long, env = "CONCOURSE_CLUSTER_NAME", default_value = "")]
    pub cluster_name: String,
    /// The X-Frame-Options header sent with every response (empty: none).
    #[arg(long, env = "CONCOURSE_X_FRAME_OPTIONS", default_value = "deny")]
    pub x_frame_options: String,
    /// Build logs a job keeps when its config sets none (0: all).
    #[arg(
        long,
        env = "CONCOURSE_DEFAULT_BUILD_LOGS_TO_RETAIN",
        default_value_t = 0
    )]
    pub default_build_logs_to_retain: u64,
    /// The most build logs any job keeps (0: no maximum).
    #[arg(long, env = "CONCOURSE_MAX_BUILD_LOGS_TO_RETAIN", default_value_t = 0)]
    pub max_build_logs_to_retain: u64,
    /// Days a job keeps build logs when its config sets none (0: forever).
    #[arg(
        long,
        env = "CONCOURSE_DEFAULT_DAYS_TO_RETAIN_BUILD_LOGS",
        default_value_t = 0
    )]
    pub default_days_to_retain_build_logs: u64,
    /// The most days any job keeps build logs (0: no maximum).
    #[arg(
        long,
        env = "CONCOURSE_MAX_DAYS_TO_RETAIN_BUILD_LOGS",
        default_value_t = 0
    )]
    pub max_days_to_retain_build_logs: u64,
    /// The Content-Security-Policy header sent with every response (empty: none). The
    /// default allows only this server's own scripts, styles and connections.
    #[arg(long, env = "CONCOURSE_CONTENT_SECURITY_POLICY", default_value = crate::atc::ui::CONTENT_SECURITY_POLICY)]
    pub content_security_policy: String,
    /// Force the auth and CSRF cookies to be sent over HTTPS only (the `Secure` attribute).
    #[arg(long, env = "CONCOURSE_COOKIE_SECURE")]
    pub cookie_secure: bool,
    /// Length of time for an intercepted session to be idle (no input, no output) before
    /// it is closed; 0 = never.
    #[arg(long, env = "CONCOURSE_INTERCEPT_IDLE_TIMEOUT", default_value = "0m")]
    pub intercept_idle_timeout: String,
    /// List of username:password combinations for all your local users (plaintext or bcrypt).
    #[arg(long, env = "CONCOURSE_ADD_LOCAL_USER", value_delimiter = ',')]
    pub add_local_user: Vec<String>,
    /// A list of local Concourse users to be made owners of the main team.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_LOCAL_USER", value_delimiter = ',')]
    pub main_team_local_user: Vec<String>,
    /// A list of LDAP users to be made owners of the main team.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_LDAP_USER", value_delimiter = ',')]
    pub main_team_ldap_user: Vec<String>,
    /// A list of LDAP groups whose members are made owners of the main team.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_LDAP_GROUP", value_delimiter = ',')]
    pub main_team_ldap_group: Vec<String>,
    /// Connector to use when authenticating via 'fly login -u ... -p ...'.
    #[arg(
        long,
        env = "CONCOURSE_PASSWORD_CONNECTOR",
        default_value = "local",
        value_parser = ["local", "ldap"]
    )]
    pub password_connector: String,
    #[command(flatten)]
    pub ldap: LdapArgs,
    /// A list of OIDC users to be made owners of the main team.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_OIDC_USER", value_delimiter = ',')]
    pub main_team_oidc_user: Vec<String>,
    /// A list of OIDC groups whose members are made owners of the main team.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_OIDC_GROUP", value_delimiter = ',')]
    pub main_team_oidc_group: Vec<String>,
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// IP to listen on to expose Prometheus metrics.
    #[arg(long, env = "CONCOURSE_PROMETHEUS_BIND_IP")]
    pub prometheus_bind_ip: Option<String>,
    /// Port to listen on to expose Prometheus metrics.
    #[arg(long, env = "CONCOURSE_PROMETHEUS_BIND_PORT")]
    pub prometheus_bind_port: Option<u16>,
    /// Customize RBAC role-action mapping (a YAML map of role to action names).
    #[arg(long, env = "CONCOURSE_CONFIG_RBAC")]
    pub config_rbac: Option<PathBuf>,
    /// Length of time for which tokens are valid.
    #[arg(long, env = "CONCOURSE_AUTH_DURATION", default_value = "24h")]
    pub auth_duration: String,
    /// Directory holding fly-<platform>-<arch>.tgz archives for `fly sync`.
    #[arg(long, env = "CONCOURSE_CLI_ARTIFACTS_DIR")]
    pub cli_artifacts_dir: Option<PathBuf>,
    /// Enable the global resources feature flag.
    #[arg(long, env = "CONCOURSE_ENABLE_GLOBAL_RESOURCES")]
    pub enable_global_resources: bool,
    /// Serve the resource causality trees (`V/upstream`, `V/downstream`); off by default,
    /// as upstream, because they can be expensive.
    #[arg(long, env = "CONCOURSE_ENABLE_RESOURCE_CAUSALITY")]
    pub enable_resource_causality: bool,
    /// Deprecated and without effect: secrets are redacted from build output unless
    /// --disable-redact-secrets is given. Accepted so upstream command lines keep working.
    #[arg(long, env = "CONCOURSE_ENABLE_REDACT_SECRETS")]
    pub enable_redact_secrets: bool,
    /// Show the values of credentials in build output instead of `((redacted))`.
    #[arg(long, env = "CONCOURSE_DISABLE_REDACT_SECRETS")]
    pub disable_redact_secrets: bool,
    /// On SIGTERM or Ctrl-C, how long running builds may take to finish before they are
    /// aborted and the node exits; no new builds start meanwhile (a second signal ends
    /// the wait at once).
    #[arg(
        long,
        env = "CONCOURSE_SHUTDOWN_GRACE_PERIOD",
        default_value = "1m",
        value_parser = grace_period
    )]
    pub shutdown_grace_period: std::time::Duration,
    /// Method by which a worker is selected during container placement; several chain
    /// (volume-locality, fewest-build-containers, random, limit-active-tasks,
    /// limit-active-containers, limit-active-volumes).
    #[arg(
        long,
        env = "CONCOURSE_CONTAINER_PLACEMENT_STRATEGY",
        value_delimiter = ',',
        default_value = "volume-locality"
    )]
    pub container_placement_strategy: Vec<String>,
    /// Maximum allowed number of active build tasks per worker (limit-active-tasks).
    #[arg(
        long,
        env = "CONCOURSE_MAX_ACTIVE_TASKS_PER_WORKER",
        default_value_t = 0
    )]
    pub max_active_tasks_per_worker: i64,
    /// Maximum allowed number of active containers per worker (limit-active-containers).
    #[arg(
        long,
        env = "CONCOURSE_MAX_ACTIVE_CONTAINERS_PER_WORKER",
        default_value_t = 0
    )]
    pub max_active_containers_per_worker: i64,
    /// Maximum allowed number of active volumes per worker (limit-active-volumes).
    #[arg(
        long,
        env = "CONCOURSE_MAX_ACTIVE_VOLUMES_PER_WORKER",
        default_value_t = 0
    )]
    pub max_active_volumes_per_worker: i64,
    #[command(flatten)]
    pub creds: crate::atc::creds::flags::CredsArgs,
    #[command(flatten)]
    pub tsa: TsaArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

/// The TSA (worker registration over SSH) and the worker collector of `concourse web`.
#[derive(Debug, Clone, Args)]
pub struct TsaArgs {
    /// IP address on which to listen for SSH.
    #[arg(long, env = "CONCOURSE_TSA_BIND_IP", default_value = "0.0.0.0")]
    pub tsa_bind_ip: String,
    /// Port on which to listen for SSH.
    #[arg(long, env = "CONCOURSE_TSA_BIND_PORT", default_value_t = 2222)]
    pub tsa_bind_port: u16,
    /// Path to the private key (RSA) to use for the SSH server. Generated into the data
    /// directory when not given.
    #[arg(long, env = "CONCOURSE_TSA_HOST_KEY")]
    pub tsa_host_key: Option<PathBuf>,
    /// Path to a file containing public keys (authorized_keys format) of workers that may
    /// register any worker. Without keys, every worker key is refused.
    #[arg(long, env = "CONCOURSE_TSA_AUTHORIZED_KEYS")]
    pub tsa_authorized_keys: Option<PathBuf>,
    /// TEAM:PATH of a file of public keys of workers that may only register workers of TEAM.
    #[arg(
        long,
        env = "CONCOURSE_TSA_TEAM_AUTHORIZED_KEYS",
        value_delimiter = ','
    )]
    pub tsa_team_authorized_keys: Vec<String>,
    /// YAML file of team keys: a list of `{team: NAME, ssh_keys: [KEY, ...]}`.
    #[arg(long, env = "CONCOURSE_TSA_TEAM_AUTHORIZED_KEYS_FILE")]
    pub tsa_team_authorized_keys_file: Option<PathBuf>,
    /// Interval on which to heartbeat workers to the ATC (upstream: 30s; shorter here so
    /// a lost worker is noticed within seconds).
    #[arg(long, env = "CONCOURSE_TSA_HEARTBEAT_INTERVAL", default_value = "3s")]
    pub tsa_heartbeat_interval: String,
    /// How long a worker stays registered without a heartbeat before it is stalled.
    /// Default: twice the heartbeat interval, as upstream.
    #[arg(long, env = "CONCOURSE_TSA_WORKER_TTL")]
    pub tsa_worker_ttl: Option<String>,
    /// How long a landing or retiring worker waits for its running builds before it
    /// leaves anyway. 0 waits as long as they run.
    #[arg(long, env = "CONCOURSE_TSA_DRAIN_TIMEOUT", default_value = "1h")]
    pub tsa_drain_timeout: String,
    /// Timeout of the TSA's Garden and Baggageclaim requests (container/volume counts).
    #[arg(
        long,
        env = "CONCOURSE_TSA_GARDEN_REQUEST_TIMEOUT",
        default_value = "5m"
    )]
    pub tsa_garden_request_timeout: String,
    /// Network address of this web node, reachable by other web nodes; forwarded worker
    /// addresses use it.
    #[arg(long, env = "CONCOURSE_PEER_ADDRESS", default_value = "127.0.0.1")]
    pub peer_address: String,
    /// Interval on which to perform garbage collection (stalling unresponsive workers).
    #[arg(long, env = "CONCOURSE_GC_INTERVAL", default_value = "30s")]
    pub gc_interval: String,
}

#[derive(Debug, Clone, Args)]
// A laptop's quickstart listens on loopback unless told otherwise: its zero-setup user
// test:test must not be offered to the network.
#[command(mut_arg("bind_ip", |a| a.default_value("127.0.0.1")))]
pub struct QuickstartArgs {
    #[command(flatten)]
    pub web: WebArgs,
    /// Maximum number of containers of the in-process worker (0 = no limit).
    #[arg(
        long,
        env = "CONCOURSE_WORKER_CONTAINERD_MAX_CONTAINERS",
        default_value_t = 250
    )]
    pub worker_containerd_max_containers: usize,
    /// Directory in which to place container data of the in-process worker.
    #[arg(long, env = "CONCOURSE_WORKER_WORK_DIR")]
    pub worker_work_dir: Option<PathBuf>,
    /// Container runtime of the in-process worker: linux or process (default: linux when
    /// root on Linux, else process).
    #[arg(long, env = "CONCOURSE_WORKER_RUNTIME")]
    pub worker_runtime: Option<String>,
    /// A directory the in-process worker's `raw://` root filesystems may come from
    /// (repeatable; `concourse worker --allowed-raw-rootfs`).
    #[arg(
        long,
        env = "CONCOURSE_WORKER_ALLOWED_RAW_ROOTFS",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub worker_allowed_raw_rootfs: Vec<PathBuf>,
    /// Network range the in-process worker's containers get addresses from.
    #[arg(
        long,
        env = "CONCOURSE_WORKER_CONTAINERD_NETWORK_POOL",
        default_value = crate::garden::linux::network::DEFAULT_POOL
    )]
    pub worker_network_pool: String,
    /// Network (CIDR) the in-process worker's containers may not reach (repeatable).
    #[arg(
        long,
        env = "CONCOURSE_WORKER_CONTAINERD_RESTRICTED_NETWORK",
        value_delimiter = ','
    )]
    pub worker_deny_network: Vec<String>,
    /// Nameserver for the in-process worker's containers (repeatable).
    #[arg(
        long,
        env = "CONCOURSE_WORKER_CONTAINERD_DNS_SERVER",
        value_delimiter = ','
    )]
    pub worker_dns_server: Vec<String>,
    /// Let the in-process worker's containers connect to this host's own addresses.
    #[arg(long, env = "CONCOURSE_WORKER_CONTAINERD_ALLOW_HOST_ACCESS")]
    pub worker_allow_host_access: bool,
}

impl QuickstartArgs {
    /// The in-process worker's network flags, as `concourse worker` has them.
    pub fn worker_network(&self) -> WorkerNetworkArgs {
        WorkerNetworkArgs {
            network_pool: self.worker_network_pool.clone(),
            deny_network: self.worker_deny_network.clone(),
            dns_server: self.worker_dns_server.clone(),
            allow_host_access: self.worker_allow_host_access,
            network_mtu: None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Print the latest migration version and exit.
    #[arg(long)]
    pub supported_db_version: bool,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    Rsa,
    Ssh,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateKeyArgs {
    /// The type of key to generate.
    #[arg(short = 't', long = "type", value_enum, default_value = "rsa")]
    pub key_type: KeyType,
    /// File path where the key shall be created (the public key goes to FILE.pub for ssh).
    #[arg(short = 'f', long = "filename")]
    pub filename: PathBuf,
    /// The number of bits in the key (RSA only).
    #[arg(short = 'b', long = "bits", default_value_t = 4096)]
    pub bits: usize,
}

fn grace_period(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_network_flags_take_upstreams_names_and_are_checked() {
        let parse = |args: &[&str]| {
            let all = [&["concourse", "worker", "--work-dir", "/w"][..], args].concat();
            match Cli::try_parse_from(all).expect("parses").command {
                Command::Worker(w) => w.runtime.network,
                other => panic!("{other:?}"),
            }
        };
        let defaults = parse(&[]).config().expect("defaults");
        assert_eq!(defaults.pool.to_string(), "10.80.0.0/16");
        assert!(defaults.deny.is_empty() && !defaults.allow_host_access);
        let n = parse(&[
            "--containerd-network-pool",
            "10.9.0.0/24",
            "--deny-network",
            "192.0.2.0/24,198.51.100.7",
            "--containerd-restricted-network",
            "203.0.113.0/24",
            "--containerd-dns-server",
            "192.0.2.53",
            "--containerd-allow-host-access",
        ])
        .config()
        .expect("config");
        assert_eq!(n.pool.to_string(), "10.9.0.0/24");
        let deny: Vec<String> = n.deny.iter().map(|d| d.to_string()).collect();
        assert_eq!(deny, ["192.0.2.0/24", "198.51.100.7/32", "203.0.113.0/24"]);
        assert_eq!(
            n.dns_servers,
            ["192.0.2.53".parse::<std::net::IpAddr>().expect("ip")]
        );
        assert!(n.allow_host_access);
        let err = parse(&["--network-pool", "10.0.0.0/31"])
            .config()
            .unwrap_err();
        assert!(format!("{err:#}").contains("between 8 and 30"), "{err:#}");
        let err = parse(&["--deny-network", "nope"]).config().unwrap_err();
        assert!(format!("{err:#}").contains("--deny-network"), "{err:#}");
        let quickstart = Cli::try_parse_from([
            "concourse",
            "quickstart",
            "--worker-network-pool",
            "10.7.0.0/16",
            "--worker-deny-network",
            "192.0.2.0/24",
        ])
        .expect("quickstart parses");
        let Command::Quickstart(q) = quickstart.command else {
            panic!("quickstart")
        };
        let n = q.worker_network().config().expect("config");
        assert_eq!(n.pool.to_string(), "10.7.0.0/16");
        assert_eq!(n.deny.len(), 1);
    }
}
