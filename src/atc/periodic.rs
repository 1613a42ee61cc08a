//! One runner for the web node's periodic components (scheduler, collectors, key
//! rotation, remote-abort watch): a pass on an interval or when woken, optionally only
//! while holding a lease, each pass in a tracing span, ending when shutdown fires.

use crate::db::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a pass learns of the runner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tick {
    /// The lease was taken since the previous pass (a leased component's cue to pick up
    /// what the previous holder left).
    pub took_lease: bool,
}

struct Lease {
    store: Arc<dyn Store>,
    name: &'static str,
    ttl: Duration,
}

pub struct Periodic {
    name: &'static str,
    interval: Duration,
    wake: Option<Arc<Notify>>,
    lease: Option<Lease>,
}

impl Periodic {
    /// Passes every `interval` (at least 10 ms apart), the first at once.
    pub fn every(name: &'static str, interval: Duration) -> Periodic {
        Periodic {
            name,
            interval: interval.max(Duration::from_millis(10)),
            wake: None,
            lease: None,
        }
    }

    /// Also passes as soon as `wake` is notified.
    pub fn or_when(mut self, wake: Arc<Notify>) -> Periodic {
        self.wake = Some(wake);
        self
    }

    /// Passes only while this node holds lease `name`, renewed before every pass, so it
    /// lapses only when the holder stops passing: another node then takes over within
    /// `ttl` plus one interval. Released at shutdown, so a successor need not wait.
    pub fn leased(mut self, store: Arc<dyn Store>, name: &'static str, ttl: Duration) -> Periodic {
        self.lease = Some(Lease { store, name, ttl });
        self
    }

    pub async fn run<F, Fut, E>(self, shutdown: CancellationToken, mut pass: F)
    where
        F: FnMut(Tick) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        // One id per process (a restarted node is a new holder); the pid tells operators
        // and tests which process it is.
        let holder = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let mut leading = false;
        let mut renewed = std::time::Instant::now();
        loop {
            let mut tick = Tick::default();
            // A holder renewed within one interval (and a fifth of the TTL) still holds it
            // by most of the TTL: passes a wake-up brings in between skip the round trip.
            let fresh = |l: &Lease| renewed.elapsed() < self.interval.min(l.ttl / 5);
            if let Some(lease) = self.lease.as_ref().filter(|l| !(leading && fresh(l))) {
                let asked = std::time::Instant::now();
                let lead = match lease
                    .store
                    .try_acquire_lease(lease.name, &holder, lease.ttl, crate::clock::now())
                    .await
                {
                    Ok(lead) => {
                        renewed = asked;
                        lead
                    }
                    Err(e) => {
                        // Unsure whether we still hold it: stand down rather than risk two
                        // holders.
                        tracing::warn!(component = self.name, error = %e, "renewing the lease");
                        false
                    }
                };
                if lead != leading {
                    tracing::info!(component = self.name, holder = %holder, leading = lead, "lease changed hands");
                    tick.took_lease = lead;
                    leading = lead;
                    crate::atc::metrics::metrics().lock_held(lease.name, lead);
                }
            }
            if leading || self.lease.is_none() {
                let span = tracing::debug_span!("pass", component = self.name);
                if let Err(e) = pass(tick).instrument(span).await {
                    tracing::warn!(component = self.name, error = %e, "pass failed");
                }
            }
            let woken = async {
                match &self.wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = woken => {}
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
        if let (Some(lease), true) = (&self.lease, leading) {
            let _ = lease.store.release_lease(lease.name, &holder).await;
            crate::atc::metrics::metrics().lock_held(lease.name, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn passes_when_woken_and_stops_at_shutdown() {
        let wake = Arc::new(Notify::new());
        let passes = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let counted = passes.clone();
        let runner = tokio::spawn(
            Periodic::every("test", Duration::from_secs(3600))
                .or_when(wake.clone())
                .run(shutdown.clone(), move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, String>(()) }
                }),
        );
        while passes.load(Ordering::SeqCst) < 3 {
            wake.notify_one();
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        runner.await.expect("runner ends at shutdown");
    }
}
