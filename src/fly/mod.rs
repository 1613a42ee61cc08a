//! The `fly` CLI: speaks the ATC HTTP API, keeps targets in `~/.flyrc`.
//! Shares `proto` and `config` only; never the server's modules.

/// Runs fly with its arguments (without the program name); returns the exit code.
pub fn main(_args: Vec<std::ffi::OsString>) -> i32 {
    eprintln!("fly: not implemented yet");
    1
}
