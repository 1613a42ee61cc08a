//! Flags of `concourse worker` and of the commands that land or retire one.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The name to set for the worker during registration.
    #[arg(long, env = "CONCOURSE_NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub tracing: crate::telemetry::TracingArgs,
    /// Directory in which to place container data.
    #[arg(long, env = "CONCOURSE_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: WorkerRuntimeArgs,
}

/// Flags of the worker's own servers, Garden and Baggageclaim (upstream's names).
#[derive(Debug, Clone, Args)]
pub struct WorkerRuntimeArgs {
    /// IP address on which to listen for the Garden server.
    #[arg(long, env = "CONCOURSE_BIND_IP", default_value = "127.0.0.1")]
    pub bind_ip: String,
    /// Port on which to listen for the Garden server.
    #[arg(long, env = "CONCOURSE_BIND_PORT", default_value_t = 7777)]
    pub bind_port: u16,
    /// Container runtime: linux (aliases containerd, guardian) or process (alias houdini).
    /// Default: linux when root on Linux, else process.
    #[arg(long, env = "CONCOURSE_RUNTIME")]
    pub runtime: Option<String>,
    /// A directory `rootfs_uri: raw:///DIR` may name (repeatable). Other `raw://` roots are
    /// refused: a pipeline author must not run on the host's own files. Image volumes and
    /// the base resource types need no entry.
    #[arg(
        long,
        env = "CONCOURSE_ALLOWED_RAW_ROOTFS",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub allowed_raw_rootfs: Vec<std::path::PathBuf>,
    /// Maximum number of containers (0 = no limit).
    #[arg(
        long,
        env = "CONCOURSE_CONTAINERD_MAX_CONTAINERS",
        default_value_t = 250
    )]
    pub containerd_max_containers: usize,
    /// Grace time after which an idle container is destroyed (0 = never, like upstream's worker).
    #[arg(
        long,
        env = "CONCOURSE_GARDEN_DEFAULT_GRACE_TIME",
        default_value = "0s"
    )]
    pub garden_default_grace_time: String,
    /// IP address on which to listen for the Baggageclaim server.
    #[arg(
        long,
        env = "CONCOURSE_BAGGAGECLAIM_BIND_IP",
        default_value = "127.0.0.1"
    )]
    pub baggageclaim_bind_ip: String,
    /// Port on which to listen for the Baggageclaim server.
    #[arg(long, env = "CONCOURSE_BAGGAGECLAIM_BIND_PORT", default_value_t = 7788)]
    pub baggageclaim_bind_port: u16,
    /// Driver to use for managing volumes: detect, naive or overlay.
    #[arg(long, env = "CONCOURSE_BAGGAGECLAIM_DRIVER", default_value = "detect")]
    pub baggageclaim_driver: String,
    /// Regular expression matching the interface whose address `/p2p-url` reports.
    #[arg(
        long,
        env = "CONCOURSE_BAGGAGECLAIM_P2P_INTERFACE_NAME_PATTERN",
        default_value = "eth0"
    )]
    pub baggageclaim_p2p_interface_name_pattern: String,
    /// 4 or 6: the address family for `/p2p-url`.
    #[arg(
        long,
        env = "CONCOURSE_BAGGAGECLAIM_P2P_INTERFACE_FAMILY",
        default_value_t = 4
    )]
    pub baggageclaim_p2p_interface_family: u8,
    /// Tags to advertise (repeatable or comma-separated).
    #[arg(
        long = "tag",
        alias = "tags",
        env = "CONCOURSE_TAG",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,
    /// The name of the team this worker will be assigned to.
    #[arg(long, env = "CONCOURSE_TEAM")]
    pub team: Option<String>,
    /// Whether the worker is removed as soon as it stalls.
    #[arg(long, env = "CONCOURSE_EPHEMERAL")]
    pub ephemeral: bool,
    /// TSA host to register through; without one the worker runs standalone.
    #[arg(long = "tsa-host", env = "CONCOURSE_TSA_HOST", value_delimiter = ',')]
    pub tsa_host: Vec<String>,
    #[command(flatten)]
    pub tsa: TsaClientArgs,
    /// An address the web node can reach this worker at directly: register with
    /// `register-worker` instead of tunnelling through the TSA (ours; upstream tunnels all).
    /// The TSA accepts it only when it is the IP this worker's SSH connection comes from.
    #[arg(long, env = "CONCOURSE_PEER_ADDRESS")]
    pub peer_address: Option<String>,
    #[command(flatten)]
    pub network: WorkerNetworkArgs,
}

/// Container networking of the linux runtime (upstream's `--containerd-*` names are
/// accepted as aliases, and their environment variables).
#[derive(Debug, Clone, Args)]
pub struct WorkerNetworkArgs {
    /// Network range containers get their addresses from; the first address is the
    /// worker's bridge (the containers' gateway).
    #[arg(
        long,
        visible_alias = "containerd-network-pool",
        env = "CONCOURSE_CONTAINERD_NETWORK_POOL",
        default_value = crate::garden::linux::network::DEFAULT_POOL
    )]
    pub network_pool: String,
    /// Network (CIDR) containers may not reach (repeatable or comma-separated).
    #[arg(
        long = "deny-network",
        visible_alias = "containerd-restricted-network",
        env = "CONCOURSE_CONTAINERD_RESTRICTED_NETWORK",
        value_delimiter = ','
    )]
    pub deny_network: Vec<String>,
    /// Nameserver for containers, replacing the host's (repeatable or comma-separated).
    #[arg(
        long = "dns-server",
        visible_alias = "containerd-dns-server",
        env = "CONCOURSE_CONTAINERD_DNS_SERVER",
        value_delimiter = ','
    )]
    pub dns_server: Vec<String>,
    /// Let containers connect to the worker host's own addresses (refused by default).
    #[arg(
        long,
        visible_alias = "containerd-allow-host-access",
        env = "CONCOURSE_CONTAINERD_ALLOW_HOST_ACCESS"
    )]
    pub allow_host_access: bool,
    /// MTU of containers' interfaces (default: that of the host's default-route interface).
    #[arg(
        long,
        visible_alias = "containerd-mtu",
        env = "CONCOURSE_CONTAINERD_MTU"
    )]
    pub network_mtu: Option<u32>,
}

impl Default for WorkerNetworkArgs {
    fn default() -> Self {
        WorkerNetworkArgs {
            network_pool: crate::garden::linux::network::DEFAULT_POOL.into(),
            deny_network: Vec::new(),
            dns_server: Vec::new(),
            allow_host_access: false,
            network_mtu: None,
        }
    }
}

impl WorkerNetworkArgs {
    /// The linux backend's network settings, each flag checked.
    pub fn config(&self) -> anyhow::Result<crate::garden::linux::network::NetworkConfig> {
        use anyhow::Context;
        let config = crate::garden::linux::network::NetworkConfig {
            pool: self
                .network_pool
                .parse()
                .map_err(anyhow::Error::msg)
                .context("--network-pool")?,
            deny: self
                .deny_network
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, String>>()
                .map_err(anyhow::Error::msg)
                .context("--deny-network")?,
            dns_servers: self
                .dns_server
                .iter()
                .map(|d| d.trim().parse())
                .collect::<Result<_, _>>()
                .context("--dns-server")?,
            allow_host_access: self.allow_host_access,
            mtu: self.network_mtu,
        };
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

/// How a worker authenticates to the TSA and checks it (upstream's flag names).
#[derive(Debug, Clone, Args)]
pub struct TsaClientArgs {
    /// File with the public key(s) of the TSA to accept (authorized_keys format).
    #[arg(long, env = "CONCOURSE_TSA_PUBLIC_KEY")]
    pub tsa_public_key: Option<PathBuf>,
    /// File with the private key to use when authenticating to the TSA.
    #[arg(long, env = "CONCOURSE_TSA_WORKER_PRIVATE_KEY")]
    pub tsa_worker_private_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerControlArgs {
    /// The name of the worker to land or retire.
    #[arg(long, env = "CONCOURSE_NAME")]
    pub name: Option<String>,
    /// The team of the worker (empty for a global worker).
    #[arg(long, env = "CONCOURSE_TEAM", default_value = "")]
    pub team: String,
    #[command(flatten)]
    pub tsa: TsaClientArgs,
    /// TSA host to forward the request through.
    #[arg(long = "tsa-host", env = "CONCOURSE_TSA_HOST")]
    pub tsa_host: Vec<String>,
}
