//! Failed-login limits: password guessing against one user, or from one client address,
//! is refused with "try again later" once it passes a budget per window. Counts live in
//! memory (each web node limits on its own) and are bounded.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Upstream has no such limit; these leave room for typos and shared NAT addresses.
pub const USER_FAILURES: u32 = 5;
pub const ADDRESS_FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Keys tracked per kind before old ones are evicted (random usernames must not grow
/// memory without bound).
const MAX_KEYS: usize = 10_000;
/// Usernames are counted by their first this-many bytes, so a key costs little memory
/// however long the name sent.
const MAX_USER_KEY: usize = 256;

/// A window of failures for one key: counting starts at the first failure and resets
/// when the window has passed.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Counts<K> {
    limit: u32,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new(limit: u32) -> Self {
        Counts {
            limit,
            windows: HashMap::new(),
        }
    }

    fn live(&self, key: &K, now: Instant) -> Option<Window> {
        self.windows
            .get(key)
            .copied()
            .filter(|w| now.duration_since(w.start) < WINDOW)
    }

    /// How long until `key` may try again, if its budget is spent.
    fn blocked_for(&self, key: &K, now: Instant) -> Option<Duration> {
        self.live(key, now)
            .filter(|w| w.failures >= self.limit)
            .map(|w| WINDOW.saturating_sub(now.duration_since(w.start)))
    }

    fn add(&mut self, key: &K, now: Instant) {
        if self.live(key, now).is_none() {
            self.make_room(now);
            self.windows.insert(
                key.clone(),
                Window {
                    start: now,
                    failures: 0,
                },
            );
        }
        if let Some(w) = self.windows.get_mut(key) {
            w.failures += 1;
        }
    }

    fn remove_one(&mut self, key: &K, now: Instant) {
        if self.live(key, now).is_some() {
            if let Some(w) = self.windows.get_mut(key) {
                w.failures = w.failures.saturating_sub(1);
            }
        }
    }

    /// Drops expired windows once the map is full; if every window is live, the oldest.
    fn make_room(&mut self, now: Instant) {
        if self.windows.len() < MAX_KEYS {
            return;
        }
        self.windows
            .retain(|_, w| now.duration_since(w.start) < WINDOW);
        if self.windows.len() >= MAX_KEYS {
            let oldest = self
                .windows
                .iter()
                .min_by_key(|(_, w)| w.start)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.windows.remove(&k);
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    users: Counts<String>,
    addresses: Counts<IpAddr>,
}

/// Who is attempting a login: the username as typed (compared case-insensitively, like
/// local users) and the TCP peer, when the server knows it.
#[derive(Debug, Clone)]
pub struct Attempt {
    user: String,
    address: Option<IpAddr>,
}

impl Attempt {
    pub fn new(user: &str, address: Option<IpAddr>) -> Self {
        let mut end = user.len().min(MAX_USER_KEY);
        while !user.is_char_boundary(end) {
            end -= 1;
        }
        Attempt {
            user: user[..end].to_lowercase(),
            address: address.map(network),
        }
    }
}

/// The unit one client controls: an IPv4 address, or an IPv6 /64 (one host typically
/// holds a whole /64, so counting single addresses would give it 2^64 budgets).
fn network(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The limits. A std `Mutex`: it is held only to update counters, never across `.await`.
#[derive(Debug)]
pub struct LoginThrottle {
    inner: Mutex<Inner>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(USER_FAILURES, ADDRESS_FAILURES)
    }
}

impl LoginThrottle {
    pub fn new(user_failures: u32, address_failures: u32) -> Self {
        LoginThrottle {
            inner: Mutex::new(Inner {
                users: Counts::new(user_failures),
                addresses: Counts::new(address_failures),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters stay consistent even if a holder panicked: each update is one field.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits an attempt, counting it as a failure until [`LoginThrottle::succeeded`] says
    /// otherwise; counting first means parallel guesses cannot all slip past the check
    /// while the password hashes are compared. Err: how long until the next try.
    pub fn admit(&self, attempt: &Attempt, now: Instant) -> Result<(), Duration> {
        let mut inner = self.lock();
        let user = inner.users.blocked_for(&attempt.user, now);
        let address = attempt
            .address
            .and_then(|a| inner.addresses.blocked_for(&a, now));
        if let Some(wait) = user.into_iter().chain(address).max() {
            return Err(wait);
        }
        inner.users.add(&attempt.user, now);
        if let Some(a) = &attempt.address {
            inner.addresses.add(a, now);
        }
        Ok(())
    }

    /// The admitted attempt logged in: it does not count against anyone.
    pub fn succeeded(&self, attempt: &Attempt, now: Instant) {
        let mut inner = self.lock();
        inner.users.remove_one(&attempt.user, now);
        if let Some(a) = &attempt.address {
            inner.addresses.remove_one(a, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &LoginThrottle, a: &Attempt, now: Instant, times: u32) {
        for _ in 0..times {
            t.admit(a, now).expect("admitted");
        }
    }

    #[test]
    fn a_user_is_blocked_after_its_failures_until_the_window_passes() {
        let t = LoginThrottle::new(5, 20);
        let start = Instant::now();
        let alice = Attempt::new("Alice", None);
        fail(&t, &alice, start, 5);
        let later = start + Duration::from_secs(10);
        assert_eq!(
            t.admit(&Attempt::new("alice", None), later),
            Err(Duration::from_secs(50))
        );
        assert!(t.admit(&Attempt::new("bob", None), later).is_ok());
        assert!(t.admit(&alice, start + WINDOW).is_ok());
    }

    #[test]
    fn successful_logins_do_not_count() {
        let t = LoginThrottle::new(2, 20);
        let now = Instant::now();
        let a = Attempt::new("alice", None);
        for _ in 0..10 {
            t.admit(&a, now).expect("admitted");
            t.succeeded(&a, now);
        }
        fail(&t, &a, now, 2);
        assert!(t.admit(&a, now).is_err());
    }

    #[test]
    fn an_address_is_blocked_whichever_users_it_tries() {
        let t = LoginThrottle::new(5, 3);
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for user in ["a", "b", "c"] {
            fail(&t, &Attempt::new(user, Some(ip)), now, 1);
        }
        assert!(t.admit(&Attempt::new("d", Some(ip)), now).is_err());
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(t.admit(&Attempt::new("d", Some(other)), now).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let t = LoginThrottle::new(5, 2);
        let now = Instant::now();
        for ip in ["2001:db8::1", "2001:db8::2"] {
            fail(
                &t,
                &Attempt::new("a", Some(ip.parse().expect("ip"))),
                now,
                1,
            );
        }
        let same_64: IpAddr = "2001:db8::ffff:1".parse().expect("ip");
        assert!(t.admit(&Attempt::new("b", Some(same_64)), now).is_err());
        let other_64: IpAddr = "2001:db8:0:1::1".parse().expect("ip");
        assert!(t.admit(&Attempt::new("b", Some(other_64)), now).is_ok());
    }

    #[test]
    fn long_usernames_are_counted_by_their_start() {
        let t = LoginThrottle::new(1, 20);
        let now = Instant::now();
        let long = "é".repeat(MAX_USER_KEY);
        fail(&t, &Attempt::new(&format!("{long}a"), None), now, 1);
        assert!(t
            .admit(&Attempt::new(&format!("{long}b"), None), now)
            .is_err());
        assert!(t
            .lock()
            .users
            .windows
            .keys()
            .all(|k| k.len() <= MAX_USER_KEY));
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let t = LoginThrottle::new(5, 20);
        let now = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            fail(&t, &Attempt::new(&format!("user{i}"), None), now, 1);
        }
        assert!(t.lock().users.windows.len() <= MAX_KEYS);
    }
}
