//! The shared language of every component: wire types and client traits, no I/O.
//!
//! A type that crosses a process boundary (HTTP API, build events, worker protocols)
//! is defined here once; `atc`, `fly`, `db` and the worker side all import it from here.

pub mod api;
pub mod baggageclaim;
pub mod garden;
pub mod stream;
pub mod worker;
