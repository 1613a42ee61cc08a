//! `concourse`: one executable for every role. Parses the command line and dispatches;
//! when invoked through a link named `fly` it is the fly CLI.

use clap::Parser;
use concourse::{cli, fly, roles};
use std::ffi::OsString;
use std::path::Path;

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| {
            Path::new(a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    // The worker's stage server, which forks containers' inits and processes (see
    // garden::linux::stages).
    if args
        .get(1)
        .is_some_and(|a| a == concourse::garden::linux::stages::ARG)
    {
        concourse::garden::linux::stages::main();
    }
    if argv0 == "fly" {
        args.remove(0);
        std::process::exit(fly::main(args));
    }
    if args.get(1).map(|a| a == "fly").unwrap_or(false) {
        std::process::exit(fly::main(args.split_off(2)));
    }
    let cli = cli::Cli::parse_from(args);
    concourse::memory::few_arenas();
    std::process::exit(roles::run(cli));
}
