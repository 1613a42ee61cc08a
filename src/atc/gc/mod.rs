//! Garbage collection components: the worker collector (worker-protocols.md §3.6), kept
//! check containers, and the automatic archiving of child pipelines.

mod build_logs;
mod builds;
mod containers;
mod pipelines;
mod workers;

pub use build_logs::{
    builds_to_reap, collect_build_logs, run_build_log_collector, Logged, Retention, RetentionLimits,
};
pub use builds::collect_build_containers;
pub use containers::{collect_check_containers, run_container_collector};
pub use pipelines::{archive_children_not_set_by, archive_orphaned_children};

pub use workers::{collect_workers, run_worker_collector};
