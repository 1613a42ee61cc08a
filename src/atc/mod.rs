//! The ATC: HTTP API and auth (scheduler, checker, build engine and GC arrive with the
//! build engine). It reaches workers only through the `proto` traits.

pub mod api;
pub mod auth;
pub mod creds;
pub mod engine;
pub mod gc;
pub mod idtoken;
pub mod metrics;
pub mod periodic;
pub mod pipelines;
pub mod scheduler;
pub mod server;
pub mod ui;
