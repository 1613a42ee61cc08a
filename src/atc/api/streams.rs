//! Caps on open build-event streams, in total and per client, so one client (or many)
//! cannot hold the web node's tasks and store reads open without bound.

use super::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Total streams a web node serves at once.
pub const MAX_STREAMS: usize = 2048;
/// Streams one client (a user, or an anonymous address) holds at once.
pub const MAX_STREAMS_PER_CLIENT: usize = 64;

#[derive(Debug)]
pub struct StreamLimits {
    total: usize,
    per_client: usize,
    // Never held across .await: a counter update.
    open: Mutex<(usize, HashMap<String, usize>)>,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits::new(MAX_STREAMS, MAX_STREAMS_PER_CLIENT)
    }
}

/// One open stream; dropping it (the stream ended or the client left) frees its place.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    client: Option<String>,
}

impl StreamLimits {
    pub fn new(total: usize, per_client: usize) -> Self {
        StreamLimits {
            total,
            per_client,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// A place for `client`'s new stream (None: counted in the total only), or 429 saying
    /// which limit was reached.
    pub fn acquire(self: &Arc<Self>, client: Option<&str>) -> Result<StreamPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = client.and_then(|c| open.1.get(c).copied()).unwrap_or(0);
        if open.0 >= self.total {
            return Err(ApiError::too_many_requests(
                "too many build event streams open on this web node",
            ));
        }
        if mine >= self.per_client {
            return Err(ApiError::too_many_requests(format!(
                "too many build event streams open for this client (at most {})",
                self.per_client
            )));
        }
        open.0 += 1;
        if let Some(c) = client {
            *open.1.entry(c.to_string()).or_default() += 1;
        }
        Ok(StreamPermit {
            limits: self.clone(),
            client: client.map(String::from),
        })
    }

    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 -= 1;
        if let Some(c) = &self.client {
            if let Some(n) = open.1.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_client_and_in_total_and_freed_on_drop() {
        let limits = Arc::new(StreamLimits::new(3, 2));
        let a1 = limits.acquire(Some("a")).expect("a1");
        let _a2 = limits.acquire(Some("a")).expect("a2");
        assert!(limits.acquire(Some("a")).is_err(), "a's third");
        let _anon = limits.acquire(None).expect("anonymous");
        assert!(limits.acquire(Some("c")).is_err(), "total reached");
        drop(a1);
        assert_eq!(limits.open(), 2);
        limits.acquire(Some("c")).expect("a place was freed");
    }
}
