//! Garbage collection components. So far: the worker collector (worker-protocols.md §3.6).

mod workers;

pub use workers::{collect_workers, run_worker_collector};
