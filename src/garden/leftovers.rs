//! What a worker killed without a shutdown leaves running: processes outlive the Garden
//! that started them (they are not its process group, and the process backend has no cgroup
//! to kill them by). Each container directory keeps a list of the processes started in it,
//! with their start times so a recycled pid is never taken for one of them; the next start
//! of the worker kills what is still alive before removing the directory.

use std::io::Write;
use std::path::Path;

/// The list, one `PID START_TIME` line per process, in the container's directory.
const RECORD: &str = ".garden-processes";

/// The process's start time (clock ticks since boot, `/proc/PID/stat` field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Notes process `pid`, just started in the container at `dir`. Best effort: a process
/// not noted is only missed by the next start's reaping.
pub fn record(dir: &Path, pid: u32) {
    let Some(start) = start_time(pid) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(RECORD))
        .and_then(|mut f| writeln!(f, "{pid} {start}"));
    if let Err(e) = written {
        tracing::debug!(pid, error = %e, "noting a container process");
    }
}

/// Whether `pid` still runs as the process that started at `start` (a zombie has ended).
fn running(pid: u32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("X");
    let started = fields.nth(18).and_then(|t| t.parse::<u64>().ok());
    !matches!(state, "Z" | "X") && started == Some(start)
}

/// Kills the processes noted in container directory `dir` that still run (each with its
/// process group, which holds what it started), and waits (up to 10 s) until they have
/// ended: SIGKILL is delivered asynchronously, and the container's cgroups cannot be
/// removed while a process is still in them. Returns how many it killed.
pub fn kill_recorded(dir: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(dir.join(RECORD)) else {
        return 0;
    };
    let mut killed = 0;
    let mut dying = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(pid)), Some(Ok(start))) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(pid) = u32::try_from(pid) else {
            continue;
        };
        let Ok(id) = libc::pid_t::try_from(pid) else {
            continue;
        };
        if id <= 1 || start_time(pid) != Some(start) {
            continue;
        }
        // SAFETY: kill takes integers. The group exists only if the process leads one
        // (a Garden process does); otherwise the call fails harmlessly.
        unsafe {
            libc::kill(-id, libc::SIGKILL);
            libc::kill(id, libc::SIGKILL);
        }
        killed += 1;
        dying.push((pid, start));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while dying.iter().any(|(pid, start)| running(*pid, *start))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noted_processes_are_killed_and_recycled_pids_are_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("sleep");
        record(dir.path(), child.id());
        // A line whose start time is not the live process's: a pid since recycled.
        let mine = std::process::id();
        let wrong = start_time(mine).expect("own start time") + 1;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(RECORD))
            .expect("open");
        writeln!(f, "{mine} {wrong}\ngarbage\n").expect("write");
        assert_eq!(kill_recorded(dir.path()), 1);
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(kill_recorded(tempfile::tempdir().expect("tmp").path()), 0);
    }
}
