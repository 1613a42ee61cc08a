//! The per-container link changes spoken to the kernel directly (rtnetlink), not through
//! `ip` and `nsenter`: spawning those three times per container was a fifth of the CPU of
//! a burst of builds (perf, 10 builds at once). The one-time host setup (bridge, rules)
//! still drives the binaries.
//!
//! Each request is one netlink message, acknowledged (`NLM_F_ACK`) so a refusal comes back
//! as its errno. The container's side is configured from a short-lived thread that joined
//! the container's network namespace: a netlink socket belongs to the namespace it was
//! made in, and `setns` of the network namespace affects only the calling thread.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const NLA_F_NESTED: u16 = 0x8000;

const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// One netlink request being built: the header, a fixed part, then attributes; nested
/// attributes are closed by [`Message::end`] with the offset [`Message::begin`] gave.
struct Message(Vec<u8>);

impl Message {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Message {
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        b.extend_from_slice(&1u32.to_ne_bytes()); // sequence: one request per socket turn
        b.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
        let mut m = Message(b);
        m.put(fixed);
        m
    }

    /// Bytes followed by padding to the next 4-byte boundary.
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Message {
        let len = (4 + data.len()) as u16;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.put(data);
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Message {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Message {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn begin(&mut self, kind: u16) -> usize {
        let at = self.0.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// `struct ifinfomsg`: any family, a link by index (0: by `IFLA_IFNAME`), flags to set.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
pub struct Socket(OwnedFd);

impl Socket {
    pub fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2); the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends one request and waits for its acknowledgement: Ok, or the kernel's errno.
    fn request(&self, msg: Message) -> io::Result<()> {
        let bytes = msg.finish();
        // SAFETY: a zeroed sockaddr_nl addressed to the kernel (port 0).
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the buffer and address outlive the call.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: recv into a buffer we own, at most its length.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if let Some(answer) = acknowledgement(&buf[..n as usize]) {
                return answer;
            }
        }
    }
}

/// The first acknowledgement in `reply`: Ok (error 0) or the errno it carries; None when
/// `reply` holds none (other messages only).
fn acknowledgement(mut reply: &[u8]) -> Option<io::Result<()>> {
    while reply.len() >= 16 {
        let len = u32::from_ne_bytes(reply[0..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(reply[4..6].try_into().ok()?);
        if len < 16 || len > reply.len() {
            return Some(Err(io::Error::other("a malformed netlink reply")));
        }
        if kind == NLMSG_ERROR {
            if len < 20 {
                return Some(Err(io::Error::other("a truncated netlink error")));
            }
            let errno = i32::from_ne_bytes(reply[16..20].try_into().ok()?);
            return Some(match errno {
                0 => Ok(()),
                e => Err(io::Error::from_raw_os_error(-e)),
            });
        }
        reply = &reply[((len + 3) & !3).min(reply.len())..];
    }
    None
}

fn index_of(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::other(format!("no interface named {name}"))),
        i => Ok(i as i32),
    }
}

/// What a container's eth0 gets.
pub struct Veth<'a> {
    /// The host end's name.
    pub host: &'a str,
    pub mtu: u32,
    /// The container end's MAC.
    pub mac: [u8; 6],
    /// The container's init, whose network namespace takes the container end.
    pub pid: i32,
    pub bridge: &'a str,
}

impl Socket {
    /// The pair (`host` here, `eth0` in `pid`'s namespace) — `ip link add … type veth peer
    /// name eth0 … netns PID`.
    pub fn add_veth(&self, v: &Veth) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, v.host).attr_u32(IFLA_MTU, v.mtu);
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin(IFLA_INFO_DATA);
        let peer = m.begin(VETH_INFO_PEER);
        m.put(&ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, "eth0")
            .attr_u32(IFLA_MTU, v.mtu)
            .attr(IFLA_ADDRESS, &v.mac)
            .attr_u32(IFLA_NET_NS_PID, v.pid as u32);
        m.end(peer);
        m.end(data);
        m.end(info);
        self.request(m)
    }

    /// `ip link set NAME master BRIDGE up`.
    pub fn enslave_up(&self, name: &str, bridge: &str) -> io::Result<()> {
        let master = index_of(bridge)?;
        let up = libc::IFF_UP as u32;
        let mut m = Message::new(RTM_NEWLINK, 0, &ifinfomsg(index_of(name)?, up, up));
        m.attr_u32(IFLA_MASTER, master as u32);
        self.request(m)
    }

    /// `ip link del NAME`.
    pub fn delete_link(&self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        self.request(m)
    }

    /// `ip addr add IP/PREFIX dev NAME`, `ip link set NAME up`, `ip route add default via
    /// GATEWAY`: the container side, from a socket in its namespace.
    pub fn configure(
        &self,
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> io::Result<()> {
        let index = index_of(name)?;
        let mut addr = [0u8; 8];
        addr[0] = libc::AF_INET as u8;
        addr[1] = prefix;
        addr[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &addr);
        m.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        self.request(m)?;
        let up = libc::IFF_UP as u32;
        self.request(Message::new(RTM_NEWLINK, 0, &ifinfomsg(index, up, up)))?;
        // struct rtmsg: family, dst_len 0 (default), src_len, tos, table, protocol,
        // scope (universe), type, flags.
        let route = [
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            0,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &route);
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.request(m)
    }
}

/// Runs `f` on a thread of its own inside the network namespace of `pid`.
pub fn in_namespace_of<T: Send>(
    pid: i32,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns of the network namespace changes only this thread, which ends
            // with the scope.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_length_and_padded_nested_attributes() {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, "abc"); // 4 + 4 bytes: no padding
        let at = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth"); // 4 + 5 bytes, padded to 12
        m.end(at);
        let b = m.finish();
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(b.len(), 16 + 16 + 8 + 4 + 12);
        let flags = u16::from_ne_bytes(b[6..8].try_into().unwrap());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        // The nest's length covers its header and its padded child.
        assert_eq!(u16::from_ne_bytes(b[40..42].try_into().unwrap()), 16);
        assert_eq!(
            u16::from_ne_bytes(b[42..44].try_into().unwrap()),
            IFLA_LINKINFO | NLA_F_NESTED
        );
    }

    fn error_reply(errno: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&36u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&[0; 10]);
        b.extend_from_slice(&errno.to_ne_bytes());
        b.extend_from_slice(&[0; 16]); // the request's header, echoed
        b
    }

    #[test]
    fn acknowledgements_are_ok_or_the_errno_and_garbage_is_refused() {
        assert!(matches!(acknowledgement(&error_reply(0)), Some(Ok(()))));
        let e = acknowledgement(&error_reply(-libc::EEXIST))
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(acknowledgement(&[]).is_none());
        let mut bad = error_reply(0);
        bad[0..4].copy_from_slice(&999u32.to_ne_bytes());
        assert!(matches!(acknowledgement(&bad), Some(Err(_))));
    }

    proptest::proptest! {
        /// Whatever the socket returns, reading it ends without a panic.
        #[test]
        fn any_reply_is_read_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = acknowledgement(&bytes);
        }
    }
}
