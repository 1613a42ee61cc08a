//! Baggageclaim: the worker's volume server. Volumes are directories on the worker host
//! (`<work-dir>/volumes/live/<handle>/volume`) that Garden bind-mounts into containers;
//! they are created empty, as copy-on-write children, or imported, and filled and read
//! by streaming tars. Wire protocol: spec/worker-protocols.md §2.
//!
//! - `volumes`: the store, also the in-process `Baggageclaim` implementation;
//! - `server`: the HTTP routes over any `Arc<dyn Baggageclaim>`, `run(listener, shutdown)`;
//! - `client`: the HTTP client implementing the same trait;
//! - `driver`, `overlay`: how COW is realised (`naive` copies, `overlay` mounts);
//! - `archive`: tar in/out with the hostile-archive checks, shared with Garden.

pub mod client;
pub mod driver;
pub mod overlay;
pub mod server;
pub mod volumes;

pub use client::BaggageclaimClient;
pub use driver::DriverKind;
pub use volumes::{Volumes, VolumesConfig};
