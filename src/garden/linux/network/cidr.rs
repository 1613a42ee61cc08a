//! IPv4 networks in CIDR notation: the pool, denied networks.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: its first address and prefix length (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u32,
    prefix: u8,
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Cidr, String> {
        if prefix > 32 {
            return Err(format!("prefix length {prefix} is over 32"));
        }
        Ok(Cidr {
            net: u32::from(addr) & Self::mask_of(prefix),
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.net)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of addresses in the network.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_of(self.prefix) == self.net
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        let shorter = self.prefix.min(other.prefix);
        let m = Self::mask_of(shorter);
        self.net & m == other.net & m
    }

    /// The address `offset` into the network.
    pub fn nth(&self, offset: u32) -> Option<Ipv4Addr> {
        (u64::from(offset) < self.size()).then(|| Ipv4Addr::from(self.net + offset))
    }

    /// The bridge's (gateway's) address: the first one after the network address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.net.wrapping_add(1))
    }

    /// Offsets containers may get: after the gateway, before the broadcast address.
    pub(super) fn container_offsets(&self) -> std::ops::Range<u32> {
        2..(self.size() - 1) as u32
    }
}

impl FromStr for Cidr {
    type Err = String;
    /// `a.b.c.d/n`, or a bare address (a /32).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (
                a,
                p.parse::<u8>()
                    .map_err(|_| format!("{s:?}: bad prefix length"))?,
            ),
            None => (s.trim(), 32),
        };
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IPv4 address or CIDR"))?;
        Cidr::new(addr, prefix).map_err(|e| format!("{s:?}: {e}"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_normalize_and_refuse_nonsense() {
        let c: Cidr = "10.80.3.7/16".parse().expect("cidr");
        assert_eq!(c.to_string(), "10.80.0.0/16");
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 80, 0, 1));
        assert_eq!(c.size(), 65536);
        assert!(c.contains(Ipv4Addr::new(10, 80, 255, 255)));
        assert!(!c.contains(Ipv4Addr::new(10, 81, 0, 0)));
        let host: Cidr = "192.168.1.9".parse().expect("bare address");
        assert_eq!(host.to_string(), "192.168.1.9/32");
        assert_eq!("0.0.0.0/0".parse::<Cidr>().expect("all").size(), 1 << 32);
        for bad in [
            "10.80.0.0/33",
            "10.80.0/16",
            "::1/128",
            "x",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} must not parse");
        }
        let a: Cidr = "10.0.0.0/8".parse().expect("a");
        assert!(a.overlaps(&"10.200.1.0/24".parse().expect("b")));
        assert!(!a.overlaps(&"11.0.0.0/8".parse().expect("c")));
    }
}
