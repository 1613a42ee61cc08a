//! The scheduler: decides which versions each job's next build uses (`resolve`), and
//! (with the build engine) when builds are created and started.

pub mod resolve;
