//! The queue between a process's output and its (later) stdout/stderr connection of the
//! Garden server's process routes.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Bytes queued per output stream for a slow or absent reader.
const STREAM_BYTES: usize = 4 << 20;
/// How long a full stream queue waits for its connection to come before giving up.
const STREAM_ABANDON: Duration = Duration::from_secs(60);

/// A process's output between the process and its (later) stdout/stderr connection: at
/// most [`STREAM_BYTES`] queued. A full queue holds up the process's follower (and, once it
/// is a whole kept log behind, the process), as a full pipe would, rather than dropping
/// output. A connection that fails, or never drains anything for [`STREAM_ABANDON`], gives
/// its queue up: its follower leaves and the process is not held up by a client that left.
/// A connected reader is waited for however slow it is.
#[derive(Default)]
pub(super) struct StreamBuffer {
    // std Mutex: push/pop only, never held across an `.await`.
    queue: Mutex<StreamQueue>,
    changed: watch::Sender<u64>,
    /// A chunk was taken (or the queue given up): a waiting push looks again.
    room: Notify,
}

#[derive(Default)]
struct StreamQueue {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    closed: bool,
    abandoned: bool,
    /// The stdout/stderr connection came: a full queue waits for it without a limit.
    connected: bool,
}

impl StreamBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, StreamQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Queues a chunk once there is room; false when the queue was given up.
    pub(super) async fn push(&self, b: Bytes) -> bool {
        loop {
            // Registered before looking, so a pop in between still wakes us.
            let room = self.room.notified();
            {
                let mut q = self.lock();
                if q.abandoned {
                    return false;
                }
                if q.bytes == 0 || q.bytes + b.len() <= STREAM_BYTES {
                    q.bytes += b.len();
                    q.chunks.push_back(b);
                    drop(q);
                    self.changed.send_modify(|v| *v += 1);
                    return true;
                }
            }
            if tokio::time::timeout(STREAM_ABANDON, room).await.is_err() && !self.lock().connected {
                self.abandon();
                return false;
            }
        }
    }
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.changed.send_modify(|v| *v += 1);
    }
    pub(super) fn connect(&self) {
        self.lock().connected = true;
    }
    /// Nobody will read the rest.
    pub(super) fn abandon(&self) {
        self.lock().abandoned = true;
        self.room.notify_waiters();
    }
    /// The next chunk, or `None` once closed and drained.
    pub(super) async fn pop(&self) -> Option<Bytes> {
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            {
                let mut q = self.lock();
                if let Some(b) = q.chunks.pop_front() {
                    q.bytes -= b.len();
                    drop(q);
                    self.room.notify_waiters();
                    return Some(b);
                }
                if q.closed {
                    return None;
                }
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A full stream queue holds the next chunk back until its reader takes one (nothing is
    /// dropped); once the reader is gone, pushes are refused so the follower can leave.
    #[tokio::test]
    async fn a_full_stream_queue_holds_output_back_and_a_gone_reader_releases_it() {
        let buf = Arc::new(StreamBuffer::default());
        buf.connect();
        let chunk = Bytes::from(vec![b'x'; STREAM_BYTES / 4]);
        for _ in 0..4 {
            assert!(buf.push(chunk.clone()).await);
        }
        let mut held = std::pin::pin!(buf.push(Bytes::from_static(b"last")));
        assert!(
            futures::poll!(held.as_mut()).is_pending(),
            "a full queue waits"
        );
        assert_eq!(buf.pop().await.map(|b| b.len()), Some(STREAM_BYTES / 4));
        assert!(held.await, "room was made");
        buf.close();
        let mut total = 0;
        while let Some(b) = buf.pop().await {
            total += b.len();
        }
        assert_eq!(
            total,
            3 * STREAM_BYTES / 4 + 4,
            "everything pushed was read"
        );

        let gone = StreamBuffer::default();
        gone.connect();
        gone.abandon();
        assert!(!gone.push(Bytes::from_static(b"x")).await);
    }
}
