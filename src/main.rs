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
    // A container's init or process on its way in (see garden::linux::stage).
    if args
        .get(1)
        .is_some_and(|a| a == concourse::garden::linux::stage::ARG)
    {
        concourse::garden::linux::stage::main(&args[2..]);
    }
    if argv0 == "fly" {
        args.remove(0);
        std::process::exit(fly::main(args));
    }
    if args.get(1).map(|a| a == "fly").unwrap_or(false) {
        std::process::exit(fly::main(args.split_off(2)));
    }
    let cli = cli::Cli::parse_from(args);
    few_malloc_arenas();
    std::process::exit(roles::run(cli));
}

/// glibc gives threads that allocate at once arenas of their own (up to eight per core) and
/// keeps what each frees for reuse there. The servers' many short-lived blocking-pool threads
/// spread the heap over them: two arenas hold an idle web node with 200 pipelines ~9 MB
/// smaller (BENCHMARKS.md). `MALLOC_ARENA_MAX` still decides when it is set.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: a plain setting of the allocator, made before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
