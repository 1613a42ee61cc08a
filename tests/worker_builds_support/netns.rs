//! A network namespace joined to the host by a veth pair, for a worker the web node must
//! not be able to reach. Removed on drop, also when the test fails half-way.

use std::process::Command;

pub struct NetNs {
    pub name: String,
    host_veth: String,
    /// The host end's address: what the worker dials (the web node's TSA listens there).
    pub host_ip: String,
    /// The namespace end's address: where the worker is (unreachable from the host).
    pub ns_ip: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl NetNs {
    /// A namespace named after this process (so parallel runs do not collide), with
    /// 10.213.N.1 on the host end and 10.213.N.2 inside, loopback up.
    pub fn create() -> NetNs {
        let id = std::process::id();
        let net = format!("10.213.{}", id % 250);
        let ns = NetNs {
            name: format!("cw-{id}"),
            host_veth: format!("cwh{id}"),
            host_ip: format!("{net}.1"),
            ns_ip: format!("{net}.2"),
        };
        let inner = format!("cwn{id}");
        let host_cidr = format!("{}/24", ns.host_ip);
        let ns_cidr = format!("{}/24", ns.ns_ip);
        let n = ns.name.as_str();
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", n],
            vec![
                "ip",
                "link",
                "add",
                &ns.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                &inner,
            ],
            vec!["ip", "link", "set", &inner, "netns", n],
            vec!["ip", "addr", "add", &host_cidr, "dev", &ns.host_veth],
            vec!["ip", "link", "set", &ns.host_veth, "up"],
            vec![
                "ip", "netns", "exec", n, "ip", "addr", "add", &ns_cidr, "dev", &inner,
            ],
            vec!["ip", "netns", "exec", n, "ip", "link", "set", &inner, "up"],
            vec!["ip", "netns", "exec", n, "ip", "link", "set", "lo", "up"],
            // Nothing from outside may open a connection into the namespace; the
            // worker's own outgoing connections (and their replies) still pass.
            vec![
                "ip",
                "netns",
                "exec",
                n,
                "iptables",
                "-A",
                "INPUT",
                "-i",
                &inner,
                "-p",
                "tcp",
                "--syn",
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ],
        ];
        for step in &steps {
            if let Err(e) = run(step) {
                panic!("setting up the network namespace: {e}");
            }
        }
        ns
    }

    /// Drops every packet in and out of the namespace from now on.
    pub fn partition(&self) {
        for chain in ["INPUT", "OUTPUT"] {
            let args = [
                "ip", "netns", "exec", &self.name, "iptables", "-I", chain, "1",
            ];
            let lo_ok = [&args[..], &["!", "-i", "lo", "-j", "DROP"]].concat();
            let out_ok = [&args[..], &["!", "-o", "lo", "-j", "DROP"]].concat();
            let rule = if chain == "INPUT" { lo_ok } else { out_ok };
            if let Err(e) = run(&rule) {
                panic!("partitioning the namespace: {e}");
            }
        }
    }

    /// `ip netns exec NAME`, to which the caller appends the program and its arguments.
    pub fn exec(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the host end removes the pair; the namespace goes with its last process.
        let _ = run(&["ip", "link", "del", &self.host_veth]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Whether `ip` and `iptables` are installed (the CI script installs iptables).
pub fn tools_present() -> bool {
    ["ip", "iptables"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
