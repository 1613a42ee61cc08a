//! Per-container networking of the linux backend, as upstream's Guardian/containerd do:
//! every container with outbound rules has its own network namespace with an `eth0` (one
//! end of a veth pair whose host end is on this worker's bridge), an address from the
//! network pool and a default route via the bridge; the host masquerades the pool's
//! traffic out of its other interfaces. Containers never reach the host itself (its
//! Garden, Baggageclaim, anything bound on 0.0.0.0) unless `allow_host_access`, nor the
//! denied networks. Hermetic containers (no rules) keep a loopback-only namespace.
//!
//! Like Guardian, this drives the `ip` and `iptables` binaries (iproute2, iptables) for the
//! host setup, and per container speaks rtnetlink itself (see `netlink`). Rules live in this worker's own chains, hooked first into the
//! filter FORWARD/INPUT and nat POSTROUTING chains, and are removed with the bridge when
//! the worker stops. Names derive from the work dir, so two workers (or test runs) on one
//! host never share a bridge or a chain; a starting worker removes what killed workers
//! left (see `reap_orphans`).

mod cidr;
mod netlink;

use crate::proto::garden::GardenError;
pub use cidr::Cidr;
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The worker's network settings (`--network-pool`, `--deny-network`, ...).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub pool: Cidr,
    /// Networks containers may not reach.
    pub deny: Vec<Cidr>,
    /// Nameservers replacing the host's in containers' resolv.conf.
    pub dns_servers: Vec<IpAddr>,
    /// Whether containers may connect to the worker host's own addresses.
    pub allow_host_access: bool,
    /// MTU of containers' interfaces; default: the host's default-route interface's.
    pub mtu: Option<u32>,
}

pub const DEFAULT_POOL: &str = "10.80.0.0/16";

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            pool: DEFAULT_POOL.parse().expect("default pool"),
            deny: Vec::new(),
            dns_servers: Vec::new(),
            allow_host_access: false,
            mtu: None,
        }
    }
}

impl NetworkConfig {
    /// Checks what the command line cannot: a pool with room for containers.
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=30).contains(&self.pool.prefix()) {
            return Err(format!(
                "network pool {}: the prefix length must be between 8 and 30",
                self.pool
            ));
        }
        Ok(())
    }
}

/// An address handed to one container, and its host-side interface.
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    offset: u32,
    /// Host end of the veth pair (its peer is the container's eth0).
    veth: String,
}

#[derive(Default)]
struct State {
    /// Whether the bridge and rules are in place (made at the first container).
    ready: bool,
    used: BTreeSet<u32>,
    /// Where the next search for a free address starts: addresses are handed out round
    /// robin, so a just-released one (still in neighbour caches) is reused last.
    next: u32,
    /// Numbers veth names, never reused while this worker runs.
    serial: u32,
}

/// What a worker's host-side objects are named, from its work dir: a digest of the path,
/// so they fit the kernel's 15-byte interface names and differ between workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    pub bridge: String,
    /// Every host end of a container's veth pair starts with it.
    pub veth_prefix: String,
    /// Every firewall chain of the worker starts with it.
    pub chain_prefix: String,
}

impl HostNames {
    pub fn of(work_dir: &Path) -> HostNames {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(work_dir.as_os_str().as_bytes());
        let id: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
        HostNames::from_id(&id)
    }

    fn from_id(id: &str) -> HostNames {
        HostNames {
            bridge: format!("{BRIDGE_PREFIX}{id}"),
            veth_prefix: format!("cv{id}-"),
            chain_prefix: format!("concourse-{id}-"),
        }
    }

    /// This worker's chains: (table, chain, the built-in chain it hangs off, match).
    fn chains(&self) -> [(&'static str, String, &'static str, Vec<String>); 3] {
        let chain = |kind: &str| format!("{}{kind}", self.chain_prefix);
        [
            ("filter", chain("fwd"), "FORWARD", vec![]),
            (
                "filter",
                chain("in"),
                "INPUT",
                vec!["-i".into(), self.bridge.clone()],
            ),
            ("nat", chain("nat"), "POSTROUTING", vec![]),
        ]
    }

    /// Removes this worker's rules, chains, veths and bridge, whatever of them exists.
    fn teardown(&self) {
        let chains = self.chains();
        for table in ["filter", "nat"] {
            let Ok(listing) = iptables(table, &["-S"]) else {
                continue; // no iptables: no rules of ours either
            };
            for (t, chain, builtin, matching) in chains.iter().filter(|c| c.0 == table) {
                if !listing.contains(chain.as_str()) {
                    continue;
                }
                let mut rule: Vec<&str> = matching.iter().map(String::as_str).collect();
                rule.extend(["-j", chain]);
                // Inserted once per setup; a crash between setups could leave several.
                for _ in 0..8 {
                    if iptables(t, &[&["-D", builtin][..], &rule].concat()).is_err() {
                        break;
                    }
                }
                let _ = iptables(t, &["-F", chain]);
                let _ = iptables(t, &["-X", chain]);
            }
        }
        let prefix = self.veth_prefix.clone();
        for entry in std::fs::read_dir("/sys/class/net").into_iter().flatten() {
            let name = entry
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(&prefix) {
                let _ = run(&["ip", "link", "del", &name]);
            }
        }
        if link_exists(&self.bridge) {
            let _ = run(&["ip", "link", "del", &self.bridge]);
        }
    }
}

const BRIDGE_PREFIX: &str = "cgbr";

/// What a bridge's alias says of its worker: its pid, the pid's start time (so a reused
/// pid is not taken for it) and its pid namespace (pids of another one mean nothing here).
fn owner_tag(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the command name's closing parenthesis (field 2).
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    let pidns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!(
        "concourse worker pid={pid} start={start} pidns={}",
        pidns.display()
    ))
}

/// Removes the bridges, rules and interfaces of workers on this host that were killed
/// (so never removed their own): a bridge's alias names its worker's process.
fn reap_orphans() {
    let Some(own_ns) = std::fs::read_link("/proc/self/ns/pid").ok() else {
        return;
    };
    for entry in std::fs::read_dir("/sys/class/net").into_iter().flatten() {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(BRIDGE_PREFIX) else {
            continue;
        };
        let alias = std::fs::read_to_string(entry.path().join("ifalias")).unwrap_or_default();
        let field = |k: &str| {
            alias
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k).map(str::to_string))
        };
        let (Some(pid), Some(ns)) = (field("pid="), field("pidns=")) else {
            continue; // not tagged by a worker: leave it alone
        };
        if ns != own_ns.display().to_string() {
            continue;
        }
        let alive = pid
            .parse::<u32>()
            .ok()
            .and_then(owner_tag)
            .is_some_and(|tag| tag == alias.trim());
        if !alive {
            tracing::info!(bridge = %name, "removing the network of a worker that is gone");
            HostNames::from_id(id).teardown();
        }
    }
}

/// This worker's bridge, rules and address allocations.
pub struct Network {
    config: NetworkConfig,
    names: HostNames,
    state: Mutex<State>,
}

/// Runs a command, its output captured; the error says which command failed and why.
fn run(args: &[&str]) -> Result<String, String> {
    run_with_input(args, None)
}

fn run_with_input(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "{}: {e} (the linux runtime's networking needs iproute2, util-linux and iptables)",
            args[0]
        )
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// iptables with `-w`: wait for the xtables lock (legacy backend) instead of failing.
fn iptables(table: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["iptables", "-w", "-t", table];
    all.extend_from_slice(args);
    run(&all)
}

/// The host's side of container links gets no IPv6 address: the rules are IPv4 only, and
/// a link-local address on the bridge would let containers reach the host over IPv6.
fn no_ipv6(link: &str) {
    let knob = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    if Path::new(&knob).exists() {
        if let Err(e) = std::fs::write(&knob, "1") {
            tracing::warn!(link, error = %e, "could not disable IPv6 on a container link");
        }
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The MTU of the interface the host's default route goes out of (1500 without one).
fn default_route_mtu() -> u32 {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[1] == "00000000")
        .and_then(|f| {
            std::fs::read_to_string(format!("/sys/class/net/{}/mtu", f[0]))
                .ok()
                .and_then(|m| m.trim().parse().ok())
        })
        .unwrap_or(1500)
}

/// The host's IPv4 addresses with their networks, as (interface, network).
fn host_networks() -> Vec<(String, Cidr)> {
    run(&["ip", "-o", "-4", "addr", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let at = f.iter().position(|w| *w == "inet")?;
            Some((f.get(1)?.to_string(), f.get(at + 1)?.parse().ok()?))
        })
        .collect()
}

impl Network {
    /// The network of a worker whose work dir is `work_dir`. Removes the bridge, rules
    /// and interfaces a predecessor on the same work dir left (it was killed before it
    /// could); nothing new is made until the first container needs it.
    pub fn new(work_dir: &Path, config: NetworkConfig) -> Network {
        let n = Network {
            config,
            names: HostNames::of(work_dir),
            state: Mutex::new(State::default()),
        };
        n.names.teardown();
        reap_orphans();
        n
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    fn bridge(&self) -> String {
        self.names.bridge.clone()
    }

    fn veth_prefix(&self) -> String {
        self.names.veth_prefix.clone()
    }

    /// Hands out an address (making the bridge and rules first if needed).
    pub fn allocate(&self) -> Result<Lease, GardenError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !st.ready {
            self.setup()
                .map_err(|e| GardenError::Other(format!("setting up container networking: {e}")))?;
            st.ready = true;
        }
        let range = self.config.pool.container_offsets();
        let count = range.end - range.start;
        let start = if range.contains(&st.next) {
            st.next
        } else {
            range.start
        };
        let offset = (0..count)
            .map(|i| range.start + (start - range.start + i) % count)
            .find(|o| !st.used.contains(o))
            .ok_or_else(|| {
                GardenError::Other(format!(
                    "network pool {} has no free address left",
                    self.config.pool
                ))
            })?;
        st.used.insert(offset);
        st.next = offset + 1;
        st.serial = st.serial.wrapping_add(1) & 0xff_ffff;
        let ip = self
            .config
            .pool
            .nth(offset)
            .expect("offset inside the pool");
        Ok(Lease {
            ip,
            offset,
            veth: format!("{}{:x}", self.veth_prefix(), st.serial),
        })
    }

    /// Gives the container whose init is `pid` its eth0: the veth pair, the address and
    /// the default route (see `netlink`).
    pub fn attach(&self, lease: &Lease, pid: i32) -> Result<(), GardenError> {
        let mtu = self.config.mtu.unwrap_or_else(default_route_mtu);
        let o = lease.ip.octets();
        // A MAC derived from the address: a reused address keeps its MAC, so no stale
        // neighbour entry on the host points at a container that is gone.
        let veth = netlink::Veth {
            host: &lease.veth,
            mtu,
            mac: [0x0a, 0x58, o[0], o[1], o[2], o[3]],
            pid,
            bridge: &self.bridge(),
        };
        let (prefix, gateway) = (self.config.pool.prefix(), self.config.pool.gateway());
        let steps = || -> std::io::Result<()> {
            let host = netlink::Socket::open()?;
            host.add_veth(&veth)
                .map_err(|e| std::io::Error::other(format!("adding {}: {e}", lease.veth)))?;
            no_ipv6(&lease.veth);
            host.enslave_up(&lease.veth, veth.bridge).map_err(|e| {
                std::io::Error::other(format!("putting {} on {}: {e}", lease.veth, veth.bridge))
            })?;
            netlink::in_namespace_of(pid, || {
                netlink::Socket::open()?.configure("eth0", lease.ip, prefix, gateway)
            })
            .map_err(|e| std::io::Error::other(format!("configuring eth0: {e}")))
        };
        steps().map_err(|e| GardenError::Other(format!("setting up the container's network: {e}")))
    }

    /// Removes the container's interface (if its namespace has not taken it along
    /// already) and frees its address.
    pub fn release(&self, lease: &Lease) {
        if link_exists(&lease.veth) {
            let _ = netlink::Socket::open().and_then(|s| s.delete_link(&lease.veth));
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.used.remove(&lease.offset);
    }

    /// Removes the bridge and the rules (the worker stops). Containers are gone by now.
    pub fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.ready {
            self.names.teardown();
            st.ready = false;
        }
    }

    /// The bridge with the gateway address, forwarding on, and the rules.
    fn setup(&self) -> Result<(), String> {
        self.config.validate()?;
        let pool = self.config.pool;
        let bridge = self.bridge();
        let gateway = format!("{}/{}", pool.gateway(), pool.prefix());
        // Another interface holding part of the pool (often another worker with the same
        // pool) makes routes to containers ambiguous: say which flag fixes it.
        if let Some((iface, net)) = host_networks()
            .into_iter()
            .find(|(i, n)| *i != bridge && n.overlaps(&pool))
        {
            tracing::warn!(%pool, interface = %iface, network = %net,
                "the container network pool overlaps a network of this host; set --network-pool to a free range");
        }
        if !link_exists(&bridge) {
            run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        }
        // Whose it is: a worker starting later removes it if this one was killed.
        if let Some(tag) = owner_tag(std::process::id()) {
            run(&["ip", "link", "set", "dev", &bridge, "alias", &tag])?;
        }
        run(&["ip", "addr", "replace", &gateway, "dev", &bridge])?;
        no_ipv6(&bridge);
        run(&["ip", "link", "set", &bridge, "up"])?;
        // Already on is enough: a worker in a container may see /proc/sys read-only, with
        // forwarding set for it (`sysctls` in compose).
        let forwarding = "/proc/sys/net/ipv4/ip_forward";
        if std::fs::read_to_string(forwarding).is_ok_and(|v| v.trim() != "1") {
            std::fs::write(forwarding, "1")
                .map_err(|e| format!("enabling IPv4 forwarding: {e}"))?;
        }
        let pool_s = pool.to_string();
        let [(_, fwd, _, _), (_, input, _, _), (_, nat, _, _)] = self.names.chains();
        let mut rules: Vec<(&str, &str, Vec<String>)> = Vec::new();
        let v = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        // Masquerade what leaves for elsewhere; traffic among containers stays as it is.
        rules.push((
            "nat",
            &nat,
            v(&["-s", &pool_s, "!", "-o", &bridge, "-j", "MASQUERADE"]),
        ));
        for d in &self.config.deny {
            let d = d.to_string();
            rules.push((
                "filter",
                &fwd,
                v(&["-i", &bridge, "-d", &d, "-j", "REJECT"]),
            ));
            rules.push(("filter", &input, v(&["-d", &d, "-j", "REJECT"])));
        }
        rules.push(("filter", &fwd, v(&["-i", &bridge, "-j", "ACCEPT"])));
        let replies = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"];
        rules.push((
            "filter",
            &fwd,
            [v(&["-o", &bridge]), v(&replies), v(&["-j", "ACCEPT"])].concat(),
        ));
        // Nobody elsewhere opens connections to containers (there are no port mappings).
        rules.push(("filter", &fwd, v(&["-o", &bridge, "-j", "DROP"])));
        if !self.config.allow_host_access {
            // The host's replies to its own connections into containers still pass.
            rules.push((
                "filter",
                &input,
                [v(&replies), v(&["-j", "ACCEPT"])].concat(),
            ));
            rules.push(("filter", &input, v(&["-j", "REJECT"])));
        }
        for (table, chain, _, _) in self.names.chains() {
            if iptables(table, &["-N", &chain]).is_err() {
                iptables(table, &["-F", &chain])?;
            }
        }
        for (table, chain, rule) in &rules {
            let mut args = vec!["-A", chain];
            args.extend(rule.iter().map(String::as_str));
            iptables(table, &args)?;
        }
        // First in the built-in chains, so a host policy (Docker's FORWARD DROP) or its
        // rules do not decide for containers.
        for (table, chain, builtin, matching) in self.names.chains() {
            let mut rule: Vec<&str> = matching.iter().map(String::as_str).collect();
            rule.extend(["-j", &chain]);
            let check = [&["-C", builtin][..], &rule].concat();
            if iptables(table, &check).is_err() {
                iptables(table, &[&["-I", builtin, "1"][..], &rule].concat())?;
            }
        }
        Ok(())
    }

    /// The container's resolv.conf: the host's, with `dns_servers` instead of its
    /// nameservers when given. A loopback nameserver (systemd-resolved's stub) is
    /// unreachable from a container: resolved's own upstream list is used instead, or
    /// the line is left out.
    pub fn resolv_conf(&self) -> String {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let is_loopback_ns = |l: &str| nameserver(l).is_some_and(|ip| ip.is_loopback());
        if self.config.dns_servers.is_empty() {
            let text = if host.lines().any(is_loopback_ns) {
                std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or(host)
            } else {
                host
            };
            return text
                .lines()
                .filter(|l| !is_loopback_ns(l))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        let mut out: String = self
            .config
            .dns_servers
            .iter()
            .map(|ip| format!("nameserver {ip}\n"))
            .collect();
        for l in host.lines().filter(|l| nameserver_line(l).is_none()) {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// The address of a `nameserver ADDR` line.
fn nameserver(line: &str) -> Option<IpAddr> {
    nameserver_line(line)?.parse().ok()
}

fn nameserver_line(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next() == Some("nameserver")).then(|| words.next().unwrap_or(""))
}

impl Drop for Network {
    /// A backend dropped without `close` (a test, a panic) still leaves no rules behind.
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pools_too_small_or_too_large_are_refused() {
        let config = |p: &str| NetworkConfig {
            pool: p.parse().expect("pool"),
            ..Default::default()
        };
        assert!(config("10.80.0.0/16").validate().is_ok());
        assert!(config("10.80.0.0/30").validate().is_ok());
        assert!(config("10.80.0.0/31").validate().is_err());
        assert!(config("10.0.0.0/7").validate().is_err());
    }

    /// Allocation without the host setup (which needs root): the state as after it.
    fn ready_network(pool: &str) -> Network {
        let n = Network {
            config: NetworkConfig {
                pool: pool.parse().expect("pool"),
                ..Default::default()
            },
            names: HostNames::from_id("000000"),
            state: Mutex::new(State::default()),
        };
        n.state.lock().expect("state").ready = true;
        n
    }

    fn forget(n: &Network, lease: &Lease) {
        n.state.lock().expect("state").used.remove(&lease.offset);
    }

    #[test]
    fn addresses_skip_the_gateway_and_broadcast_and_run_out() {
        let n = ready_network("10.213.7.0/29");
        let leases: Vec<Lease> = (0..5).map(|_| n.allocate().expect("lease")).collect();
        let ips: Vec<String> = leases.iter().map(|l| l.ip.to_string()).collect();
        assert_eq!(
            ips,
            [
                "10.213.7.2",
                "10.213.7.3",
                "10.213.7.4",
                "10.213.7.5",
                "10.213.7.6"
            ]
        );
        assert!(n.allocate().is_err(), "a /29 holds five containers");
        forget(&n, &leases[1]);
        assert_eq!(n.allocate().expect("freed").ip.to_string(), "10.213.7.3");
        n.state.lock().expect("state").ready = false; // nothing to tear down
    }

    proptest! {
        /// Whatever the order of allocations and releases, live leases are distinct,
        /// inside the pool, never the network, gateway or broadcast address, and veth
        /// names fit the kernel's 15 bytes.
        #[test]
        fn live_leases_are_distinct_and_inside_the_pool(
            prefix in 24u8..=30,
            ops in proptest::collection::vec(any::<bool>(), 1..80),
        ) {
            let pool = format!("10.213.9.0/{prefix}");
            let n = ready_network(&pool);
            let cidr: Cidr = pool.parse().expect("pool");
            let mut live: Vec<Lease> = Vec::new();
            for allocate in ops {
                if allocate || live.is_empty() {
                    match n.allocate() {
                        Ok(l) => live.push(l),
                        Err(_) => prop_assert_eq!(live.len() as u64, cidr.size() - 3),
                    }
                } else {
                    let l = live.remove(live.len() / 2);
                    forget(&n, &l);
                }
                let mut ips: Vec<Ipv4Addr> = live.iter().map(|l| l.ip).collect();
                ips.sort();
                ips.dedup();
                prop_assert_eq!(ips.len(), live.len());
                for l in &live {
                    prop_assert!(cidr.contains(l.ip));
                    prop_assert!(l.ip != cidr.network() && l.ip != cidr.gateway());
                    prop_assert!(u64::from(l.offset) < cidr.size() - 1);
                    prop_assert!(l.veth.len() <= 15);
                }
            }
            n.state.lock().expect("state").ready = false;
        }
    }

    #[test]
    fn resolv_conf_takes_the_given_dns_servers_and_keeps_search_lines() {
        let n = Network {
            config: NetworkConfig {
                dns_servers: vec!["192.0.2.53".parse().expect("ip")],
                ..Default::default()
            },
            names: HostNames::from_id("000000"),
            state: Mutex::new(State::default()),
        };
        let conf = n.resolv_conf();
        assert!(conf.starts_with("nameserver 192.0.2.53\n"), "{conf}");
        assert_eq!(conf.matches("nameserver").count(), 1, "{conf}");
        assert!(nameserver("nameserver 127.0.0.53").is_some_and(|i| i.is_loopback()));
        assert_eq!(nameserver("search example"), None);
    }
}
