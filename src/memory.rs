//! How the servers use glibc's allocator. Its defaults suit short programs: threads that
//! allocate at once get arenas of their own (up to eight per core), and what is freed stays
//! with the process unless it happens to sit at the top of an arena. A web node's bursts
//! (a round of checks, a dashboard's first load) then leave it holding their peak for good:
//! 1,000 resources checked left quickstart at 187 MB, 72 MB of it in use (BENCHMARKS.md).

use std::time::Duration;

/// How often freed memory is handed back to the kernel.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Two arenas instead of up to eight per core: the servers' many short-lived blocking-pool
/// threads otherwise spread the heap over all of them. `MALLOC_ARENA_MAX` still decides
/// when it is set. Call before any other thread exists.
pub fn few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: a plain setting of the allocator, made while the process has one thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Hands the whole free pages of every arena back to the kernel every `every`, from
/// a thread of its own for the life of the process (`malloc_trim` walks the free lists: a
/// few milliseconds at most, off the runtime's threads).
pub fn trim_every(every: Duration) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                // SAFETY: malloc_trim only releases memory the allocator holds free.
                unsafe {
                    libc::malloc_trim(0);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "not trimming the heap: starting its thread");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = every;
}
