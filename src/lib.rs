//! Concourse CI rebuilt in Rust. The library holds every component; `src/main.rs` is the
//! one executable (`concourse`, or `fly` through a link) that dispatches to them.
//! Integration tests in tests/ drive the same components through their public APIs.

pub mod atc;
pub mod baggageclaim;
pub mod beacon;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod fly;
pub mod garden;
pub mod memory;
pub mod proto;
pub mod resources;
pub mod roles;
pub mod telemetry;
pub mod tsa;
pub mod worker_fs;
