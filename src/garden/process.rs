//! Processes inside containers: their kept output, their exit status, and attachments.
//!
//! A process's stdout and stderr are read into `OutputLog`s as they come, whoever is
//! attached; every attachment replays a log from its start and then follows it. So a
//! client that lost its connection re-attaches by id and misses nothing, and the exit
//! status stays readable after the process ended, for as long as the container lives.

use crate::proto::garden::{GardenError, Process, ProcessIo, Signal, TtySpec};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};

/// Output kept per stream; past it the oldest bytes are dropped (a replay then starts later).
const OUTPUT_CAP: usize = 64 * 1024 * 1024;

/// The kept output as the chunks it arrived in, each with its absolute offset: dropping
/// the oldest past [`OUTPUT_CAP`] is popping whole chunks, never moving the rest (a flat
/// buffer moved up to 64 MiB on every append once full).
#[derive(Default)]
struct LogState {
    chunks: VecDeque<(u64, Bytes)>,
    /// Absolute offset of the first kept byte (grows when old output is dropped).
    base: u64,
    /// Absolute offset just past the last byte.
    end: u64,
    closed: bool,
}

/// One output stream of a process, kept in memory.
pub struct OutputLog {
    // std Mutex: held for copies only, never across an `.await`.
    state: Mutex<LogState>,
    /// Bytes kept ([`OUTPUT_CAP`]; smaller in tests).
    cap: u64,
    /// Bumped on every append and on close, to wake followers.
    version: watch::Sender<u64>,
    /// How far each attached follower has taken the log: appends wait while the slowest
    /// is a whole `cap` behind, so nothing it has not read is dropped (the process is
    /// held up instead, as a full pipe holds up its writer).
    followers: Mutex<Vec<Arc<AtomicU64>>>,
    /// Woken when a follower moves on or leaves.
    progress: Notify,
}

impl Default for OutputLog {
    fn default() -> Self {
        OutputLog {
            state: Mutex::new(LogState::default()),
            cap: OUTPUT_CAP as u64,
            version: watch::channel(0).0,
            followers: Mutex::new(Vec::new()),
            progress: Notify::new(),
        }
    }
}

impl OutputLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How far behind the end the slowest attached follower is (None: none attached).
    fn lag(&self, end: u64) -> Option<u64> {
        let followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        followers
            .iter()
            .map(|at| end.saturating_sub(at.load(Ordering::Acquire)))
            .max()
    }

    /// Appends output, first waiting while an attached follower would lose unread bytes.
    pub async fn append(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        loop {
            // Registered before the check, so progress made in between still wakes us.
            let moved = self.progress.notified();
            let end = self.lock().end;
            match self.lag(end) {
                Some(lag) if lag + bytes.len() as u64 > self.cap => moved.await,
                _ => break,
            }
        }
        let mut st = self.lock();
        let at = st.end;
        st.chunks.push_back((at, Bytes::copy_from_slice(bytes)));
        st.end += bytes.len() as u64;
        while st.end - st.base > self.cap {
            let Some((start, chunk)) = st.chunks.pop_front() else {
                break;
            };
            let chunk_end = start + chunk.len() as u64;
            let keep_from = st.end - self.cap;
            if chunk_end > keep_from {
                // Keep the chunk's tail: exactly the last `cap` bytes stay.
                let tail = chunk.slice((keep_from - start) as usize..);
                st.chunks.push_front((keep_from, tail));
                st.base = keep_from;
                break;
            }
            st.base = chunk_end;
        }
        drop(st);
        self.version.send_modify(|v| *v += 1);
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.version.send_modify(|v| *v += 1);
    }

    /// Bytes from absolute offset `from` (clamped to what is kept), at most 256 KiB, the
    /// offset after them, and whether that is the end of a closed log.
    fn read_from(&self, from: u64) -> (Bytes, u64, bool) {
        let st = self.lock();
        let start = from.max(st.base);
        if start >= st.end {
            return (Bytes::new(), st.end, st.closed);
        }
        // The chunk holding `start`: the last one starting at or before it.
        let i = st.chunks.partition_point(|(at, _)| *at <= start) - 1;
        let mut out = Vec::new();
        let mut at = start;
        for (chunk_start, chunk) in st.chunks.range(i..) {
            let from = (at - chunk_start) as usize;
            let take = (chunk.len() - from).min(256 * 1024 - out.len());
            out.extend_from_slice(&chunk[from..from + take]);
            at += take as u64;
            if out.len() >= 256 * 1024 {
                break;
            }
        }
        (Bytes::from(out), at, st.closed && at == st.end)
    }

    /// Sends everything from offset `from` (what is kept of it), then follows until the log
    /// closes or `tx` is dropped.
    pub async fn follow(self: Arc<Self>, tx: tokio::sync::mpsc::Sender<Bytes>, from: u64) {
        let mut changes = self.version.subscribe();
        let mut at = from;
        let taken = Arc::new(AtomicU64::new(from.max(self.lock().base)));
        self.followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(taken.clone());
        // Leaving (the client went, or the log ended) must not hold up the writer.
        struct Leave<'a>(&'a OutputLog, Arc<AtomicU64>);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut f = self.0.followers.lock().unwrap_or_else(|p| p.into_inner());
                f.retain(|a| !Arc::ptr_eq(a, &self.1));
                drop(f);
                self.0.progress.notify_waiters();
            }
        }
        let _leave = Leave(&self, taken.clone());
        loop {
            // Mark the version seen *before* reading, so an append racing the read wakes us.
            changes.borrow_and_update();
            let (chunk, next, done) = self.read_from(at);
            at = next;
            if !chunk.is_empty() {
                if tx.send(chunk).await.is_err() {
                    return;
                }
                taken.store(at, Ordering::Release);
                self.progress.notify_waiters();
                continue;
            }
            if done || changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Where a process's stdin goes: a pipe, or the pty master.
pub type StdinWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A started process's exit, however it was started.
pub type Exited = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<std::process::ExitStatus>> + Send>,
>;

/// What the containers keep about one process.
pub struct ProcessRecord {
    pub id: String,
    /// Host pid of the process we spawned (the group leader; in the linux backend the
    /// helper that forwards signals to the container's pid 1).
    pub pid: i32,
    pub stdout: Arc<OutputLog>,
    pub stderr: Arc<OutputLog>,
    stdin: tokio::sync::Mutex<Option<StdinWriter>>,
    pty_master: Option<OwnedFd>,
    exit: watch::Sender<Option<i32>>,
}

impl ProcessRecord {
    /// Records a spawned child and starts reading its output and waiting for its exit.
    /// `outputs` are the child's stdout/stderr (one reader for a pty), `stdin` its input.
    pub fn start(
        id: String,
        pid: i32,
        exited: Exited,
        stdin: Option<StdinWriter>,
        outputs: Vec<(Box<dyn AsyncRead + Send + Unpin>, bool)>,
        pty_master: Option<OwnedFd>,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Arc<ProcessRecord> {
        let record = Arc::new(ProcessRecord {
            id,
            pid,
            stdout: Arc::new(OutputLog::default()),
            stderr: Arc::new(OutputLog::default()),
            stdin: tokio::sync::Mutex::new(stdin),
            pty_master,
            exit: watch::channel(None).0,
        });
        let mut readers = Vec::new();
        for (mut reader, is_stdout) in outputs {
            let log = if is_stdout {
                record.stdout.clone()
            } else {
                record.stderr.clone()
            };
            readers.push(tasks.spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break, // a pty master reads EIO once the slave side is gone
                        Ok(n) => log.append(&buf[..n]).await,
                    }
                }
            }));
        }
        let r = record.clone();
        tasks.spawn(async move {
            let status = match exited.await {
                Ok(s) => exit_code(s),
                Err(_) => 255,
            };
            // Output may still be in flight; a daemon left holding the pipes must not keep
            // the exit status back forever.
            let _ =
                tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(readers))
                    .await;
            r.stdout.close();
            r.stderr.close();
            r.exit.send_replace(Some(status));
        });
        record
    }

    pub fn exit_status(&self) -> Option<i32> {
        *self.exit.borrow()
    }

    pub async fn wait_exit(&self) -> i32 {
        let mut rx = self.exit.subscribe();
        loop {
            if let Some(s) = *rx.borrow_and_update() {
                return s;
            }
            if rx.changed().await.is_err() {
                return 255;
            }
        }
    }

    pub async fn write_stdin(&self, data: &[u8]) {
        let mut guard = self.stdin.lock().await;
        if let Some(w) = guard.as_mut() {
            if w.write_all(data).await.is_err() || w.flush().await.is_err() {
                *guard = None;
            }
        }
    }

    pub async fn close_stdin(&self) {
        let mut guard = self.stdin.lock().await;
        if let Some(mut w) = guard.take() {
            let _ = w.shutdown().await;
        }
    }

    pub fn signal(&self, signal: Signal) -> Result<(), GardenError> {
        if self.exit_status().is_some() || self.pid <= 0 {
            return Ok(());
        }
        let sig = match signal {
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        // The child leads its own process group: signal the group so its children hear it too.
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(-self.pid, sig) };
        if rc != 0 {
            // SAFETY: as above.
            unsafe { libc::kill(self.pid, sig) };
        }
        Ok(())
    }

    pub fn set_tty(&self, tty: TtySpec) -> Result<(), GardenError> {
        if let (Some(master), Some(size)) = (&self.pty_master, tty.window_size) {
            set_window_size(master.as_raw_fd(), size.columns, size.rows);
        }
        Ok(())
    }
}

/// A wait status as Garden reports it: the exit code, or 128 + signal number.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub fn set_window_size(fd: i32, columns: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which is valid for the call.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// A pty pair: (master, slave).
pub fn open_pty(columns: u16, rows: u16) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut master = 0;
    let mut slave = 0;
    let ws = libc::winsize {
        ws_row: rows.max(1),
        ws_col: columns.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds into the provided ints; name and termios may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty succeeded, so both fds are open and owned by nobody else.
    let (m, s) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [m.as_raw_fd(), s.as_raw_fd()] {
        // SAFETY: fcntl on an fd we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((m, s))
}

/// One client's view of a process: forwards stdin and replays/follows output.
pub struct Attachment {
    record: Arc<ProcessRecord>,
    delivered: watch::Receiver<bool>,
}

impl Attachment {
    /// Connects `io` to the process. When the client's stdin ends, the process's stdin is
    /// closed; a client without stdin closes it at once only when `started` (a run without
    /// stdin), never on a re-attach.
    pub fn attach(
        record: Arc<ProcessRecord>,
        io: ProcessIo,
        started: bool,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Attachment {
        if let Some(mut stdin) = io.stdin {
            let r = record.clone();
            tasks.spawn(async move {
                while let Some(chunk) = stdin.recv().await {
                    r.write_stdin(&chunk).await;
                }
                r.close_stdin().await;
            });
        } else if started {
            let r = record.clone();
            tasks.spawn(async move { r.close_stdin().await });
        }
        let mut followers = Vec::new();
        let [out_from, err_from] = io.replay_from;
        if let Some(tx) = io.stdout {
            followers.push(tasks.spawn(record.stdout.clone().follow(tx, out_from)));
        }
        if let Some(tx) = io.stderr {
            followers.push(tasks.spawn(record.stderr.clone().follow(tx, err_from)));
        }
        let (done_tx, delivered) = watch::channel(false);
        tasks.spawn(async move {
            futures::future::join_all(followers).await;
            let _ = done_tx.send(true);
        });
        Attachment { record, delivered }
    }
}

#[async_trait]
impl Process for Attachment {
    fn id(&self) -> &str {
        &self.record.id
    }

    async fn wait(&self) -> Result<i32, GardenError> {
        let status = self.record.wait_exit().await;
        let mut d = self.delivered.clone();
        while !*d.borrow_and_update() {
            if d.changed().await.is_err() {
                break;
            }
        }
        Ok(status)
    }

    async fn set_tty(&self, tty: TtySpec) -> Result<(), GardenError> {
        self.record.set_tty(tty)
    }

    async fn signal(&self, signal: Signal) -> Result<(), GardenError> {
        self.record.signal(signal)
    }
}

#[cfg(test)]
mod output_log_tests {
    use super::*;
    use proptest::prelude::*;

    fn log(cap: u64) -> OutputLog {
        OutputLog {
            cap,
            ..OutputLog::default()
        }
    }

    /// Everything readable from `from` on, in 256 KiB reads.
    fn read_all(l: &OutputLog, mut from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (chunk, next, _) = l.read_from(from);
            if chunk.is_empty() {
                return out;
            }
            out.extend_from_slice(&chunk);
            from = next;
        }
    }

    proptest! {
        /// The log keeps exactly the last `cap` bytes written, and a read from any offset
        /// returns what was written there (or from the oldest kept byte).
        #[test]
        fn keeps_the_last_cap_bytes(
            writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30),
            cap in 1u64..100,
            from in 0u64..1000,
        ) {
            let l = log(cap);
            let mut all = Vec::new();
            for w in &writes {
                futures::executor::block_on(l.append(w));
                all.extend_from_slice(w);
            }
            let total = all.len() as u64;
            let base = total.saturating_sub(cap);
            prop_assert_eq!(read_all(&l, 0), all[base as usize..].to_vec());
            let start = from.clamp(base, total);
            prop_assert_eq!(read_all(&l, from), all[start as usize..].to_vec());
        }
    }

    #[test]
    fn a_read_ends_at_the_end_of_a_closed_log() {
        let l = log(10);
        futures::executor::block_on(l.append(b"hello"));
        assert!(!l.read_from(0).2);
        l.close();
        let (chunk, next, done) = l.read_from(0);
        assert_eq!((&chunk[..], next, done), (&b"hello"[..], 5, true));
    }

    /// A follower that has not read what would be dropped holds the writer up; once it
    /// reads on (or leaves), the writer goes on, and the follower saw every byte.
    #[tokio::test]
    async fn a_slow_follower_loses_nothing() {
        let l = Arc::new(log(8));
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let follower = tokio::spawn(l.clone().follow(tx, 0));
        let writer = {
            let l = l.clone();
            tokio::spawn(async move {
                for i in 0..50u8 {
                    l.append(&[i; 3]).await;
                }
                l.close();
            })
        };
        let mut seen = Vec::new();
        while let Some(chunk) = rx.recv().await {
            seen.extend_from_slice(&chunk);
        }
        writer.await.expect("writer");
        follower.await.expect("follower");
        let want: Vec<u8> = (0..50u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(seen, want);
    }
}
