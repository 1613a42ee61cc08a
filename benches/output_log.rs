//! A process's kept output (Garden's `OutputLog`) under a process printing 200 MB in 64 KiB
//! pipe reads, past the 64 MiB it keeps, against the flat buffer it replaced (drop the
//! oldest bytes with `Vec::drain`, moving the rest on every append once full), in one run.
//! No follower is attached, so appends never wait. Run: `cargo bench --bench output_log`.

use concourse::garden::process::OutputLog;
use std::time::{Duration, Instant};

const CAP: usize = 64 * 1024 * 1024;
const TOTAL: usize = 200 * 1024 * 1024;
const READ: usize = 64 * 1024;

/// The replaced scheme, kept here as the baseline.
fn flat(chunk: &[u8]) -> Duration {
    let start = Instant::now();
    let mut data: Vec<u8> = Vec::new();
    let mut base = 0u64;
    for _ in 0..TOTAL / READ {
        data.extend_from_slice(chunk);
        if data.len() > CAP {
            let drop = data.len() - CAP;
            data.drain(..drop);
            base += drop as u64;
        }
    }
    std::hint::black_box((&data, base));
    start.elapsed()
}

fn chunked(chunk: &[u8]) -> Duration {
    let start = Instant::now();
    let log = OutputLog::default();
    for _ in 0..TOTAL / READ {
        futures::executor::block_on(log.append(chunk));
    }
    std::hint::black_box(&log);
    start.elapsed()
}

fn main() {
    let chunk = vec![b'y'; READ];
    let median = |f: &dyn Fn() -> Duration| {
        let mut s: Vec<Duration> = (0..5).map(|_| f()).collect();
        s.sort();
        s[2]
    };
    let base = median(&|| flat(&chunk));
    let new = median(&|| chunked(&chunk));
    println!(
        "200 MB of output in 64 KiB appends, 64 MiB kept (median of 5): flat buffer {:.0} ms, \
         chunk deque {:.0} ms ({:.1}x faster)",
        base.as_secs_f64() * 1e3,
        new.as_secs_f64() * 1e3,
        base.as_secs_f64() / new.as_secs_f64()
    );
}
