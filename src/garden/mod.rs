//! Garden: the worker's container server. A container is a root filesystem, a set of
//! bind-mounted volumes, limits and properties; processes run inside it, outlive their
//! clients and keep their output for re-attachment. Wire protocol: spec/worker-protocols.md §1.
//!
//! - `containers`: the container table, also the in-process `Garden` implementation;
//! - `backend`: the backend traits and the `process` backend (no isolation);
//! - `linux`: the `linux` backend (namespaces, overlayfs, cgroups) behind a `Syscall` trait;
//! - `leftovers`: processes of an earlier run, killed at the next start;
//! - `process`: kept output, exit status and attachments of processes;
//! - `server`: the HTTP routes, including the hijacked run/attach connections;
//! - `client`: the HTTP client implementing the same trait.

pub mod backend;
pub mod client;
pub mod containers;
mod http1;
mod leftovers;
pub mod linux;
pub mod process;
pub mod server;
mod stream_buffer;

pub use backend::BackendKind;
pub use client::GardenClient;
pub use containers::{Containers, GardenConfig};
