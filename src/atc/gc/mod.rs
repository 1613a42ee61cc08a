//! Garbage collection components: the worker collector (worker-protocols.md §3.6) and
//! the automatic archiving of child pipelines.

mod pipelines;
mod workers;

pub use pipelines::{archive_children_not_set_by, archive_orphaned_children};

pub use workers::{collect_workers, run_worker_collector};
