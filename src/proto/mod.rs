//! The shared language of every component: wire types and client traits, no I/O.
//!
//! A type that crosses a process boundary (HTTP API, build events, worker protocols)
//! is defined here once; `atc`, `fly`, `db` and the worker side all import it from here.

pub mod api;
pub mod baggageclaim;
pub mod event;
pub mod garden;
pub mod instance_vars;
pub mod plan;
pub mod stream;
pub mod worker;

/// The HTTP client the ATC talks to a worker's Garden or Baggageclaim with. Idle
/// connections close soon: through a forwarded worker's tunnel an idle keep-alive
/// connection would hold up the beacon's drain when it stops.
pub fn worker_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}
