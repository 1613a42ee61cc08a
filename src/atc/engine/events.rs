//! Build events: steps emit them here; one writer task per build appends what has queued
//! in bounded batches (they form by themselves under load) and then wakes live watchers
//! through the [`Hub`], so an SSE stream does not wait for a poll. The queue is bounded in
//! bytes: process output waits for room, so memory does not grow with a build's log.

use super::redact::Secrets;
use crate::clock::now;
use crate::db::Store;
use crate::db::StoreError;
use crate::proto::event::{self as ev, BuildEvent};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, Notify};

/// Wakes event streams: carries the id of a build that has new events.
#[derive(Clone)]
pub struct Hub(broadcast::Sender<i64>);

impl Default for Hub {
    fn default() -> Self {
        Hub(broadcast::channel(1024).0)
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.0.subscribe()
    }
    pub fn notify(&self, build_id: i64) {
        let _ = self.0.send(build_id);
    }
}

enum Msg {
    Event(BuildEvent),
    Flush(oneshot::Sender<()>),
    /// A journal entry stored with the batch that holds the events before it: how much of
    /// a process's output the log has (see [`LineBuffer::tracked`]).
    Mark(String, Value),
}

/// A batch for the writer: events, journal marks (latest per key) and waiting flushes.
#[derive(Default)]
struct Batch {
    events: Vec<Value>,
    marks: Vec<(String, Value)>,
    flushes: Vec<oneshot::Sender<()>>,
    bytes: usize,
}

/// Bytes of events one build may have queued for its writer before log output waits for
/// the store: the web node's memory per build, however fast a task prints.
const QUEUE_BYTES: usize = 4 << 20;
/// The most one append round trip carries, so the store never takes memory in big lumps.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_EVENTS: usize = 1000;
/// How long the writer waits for more of a burst of events before storing what it has.
const LINGER: Duration = Duration::from_millis(10);
/// How long a batch is retried while the store is unreachable before it is given up (and
/// with it the room it holds, so emitters never wait forever).
const APPEND_PATIENCE: Duration = Duration::from_secs(60);

/// What a build's emitters queue for its writer task, counted in (estimated) bytes.
#[derive(Default)]
struct Queue {
    msgs: VecDeque<(Msg, usize)>,
    bytes: usize,
    /// Flushes among `msgs`: a batch with one is stored without lingering.
    flushes: usize,
    /// Every emitter has gone: the writer ends once the queue is empty.
    closed: bool,
}

/// The queue between a build's emitters and its writer. Emitting never blocks (most
/// events come from synchronous engine code and are small); log output, the only
/// volume, awaits [`Events::room`] so a fast printer is slowed to the store's pace.
#[derive(Default)]
struct Channel {
    // std Mutex: held for queue edits only, never across an `.await`.
    queue: Mutex<Queue>,
    /// Something was queued (or the emitters left).
    queued: Notify,
    /// The writer stored a batch: room was made.
    drained: Notify,
}

impl Channel {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, msg: Msg, size: usize) {
        let mut q = self.lock();
        q.flushes += usize::from(matches!(msg, Msg::Flush(_)));
        q.msgs.push_back((msg, size));
        q.bytes += size;
        drop(q);
        self.queued.notify_one();
    }

    /// Waits until the queue holds at most [`QUEUE_BYTES`].
    async fn room(&self) {
        loop {
            let drained = self.drained.notified();
            if self.lock().bytes <= QUEUE_BYTES {
                return;
            }
            drained.await;
        }
    }

    /// The next batch: events up to the size caps and the flushes queued among them, in
    /// order. None once the emitters left and everything is stored.
    async fn next_batch(&self) -> Option<Batch> {
        self.first_message().await;
        self.linger().await;
        loop {
            let queued = self.queued.notified();
            {
                let mut q = self.lock();
                if !q.msgs.is_empty() {
                    let mut b = Batch::default();
                    while let Some((msg, size)) = q.msgs.pop_front() {
                        match msg {
                            Msg::Event(e) => b.events.push(e.to_json()),
                            Msg::Flush(w) => {
                                q.flushes -= 1;
                                b.flushes.push(w)
                            }
                            Msg::Mark(key, value) => {
                                b.marks.retain(|(k, _)| *k != key);
                                b.marks.push((key, value));
                            }
                        }
                        b.bytes += size;
                        if b.bytes >= BATCH_BYTES || b.events.len() >= BATCH_EVENTS {
                            break;
                        }
                    }
                    return Some(b);
                }
                if q.closed {
                    return None;
                }
            }
            queued.await;
        }
    }

    /// Waits until something is queued or the emitters left.
    async fn first_message(&self) {
        loop {
            let queued = self.queued.notified();
            {
                let q = self.lock();
                if !q.msgs.is_empty() || q.closed {
                    return;
                }
            }
            queued.await;
        }
    }

    /// A build emits in bursts (a step's events come a few ms apart): waiting up to
    /// [`LINGER`] for the rest of one stores it in one statement, not one per event. Cut
    /// short by a flush (someone waits for the store), a full batch, or the emitters leaving.
    async fn linger(&self) {
        let until = tokio::time::Instant::now() + LINGER;
        loop {
            let queued = self.queued.notified();
            {
                let q = self.lock();
                if q.flushes > 0 || q.closed || q.bytes >= BATCH_BYTES {
                    return;
                }
            }
            if tokio::time::timeout_at(until, queued).await.is_err() {
                return;
            }
        }
    }

    /// The batch's bytes are stored (or given up): emitters waiting for room go on.
    fn release(&self, bytes: usize) {
        self.lock().bytes -= bytes;
        self.drained.notify_waiters();
    }
}

/// The emitters' end of a [`Channel`]; the last one to go closes it.
struct Sender(Arc<Channel>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.queued.notify_one();
    }
}

/// Roughly what an event occupies queued and serialized: its text plus the envelope.
fn event_size(event: &BuildEvent) -> usize {
    256 + match event {
        BuildEvent::Log(l) => l.payload.len(),
        BuildEvent::Error(e) => e.message.len(),
        _ => 0,
    }
}

/// Where a stream's events go.
#[derive(Clone)]
enum Sink {
    /// The build's writer task, which stores them.
    Store(Arc<Sender>),
    /// Nowhere (periodic checks keep no build log).
    Discard,
    /// The last `limit` bytes of log and error text.
    Collect {
        text: Arc<Mutex<String>>,
        limit: usize,
    },
}

/// The event stream of one running build. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    sink: Sink,
    secrets: Arc<Mutex<Secrets>>,
}

/// Appends one batch, retrying while the store is unreachable, for up to
/// [`APPEND_PATIENCE`]. A build that is gone (its pipeline destroyed) or written by another
/// node takes no more events.
async fn append(store: &dyn Store, build_id: i64, batch: &[Value], marks: &[(String, Value)]) {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let appended = if marks.is_empty() {
            store.append_build_events(build_id, batch).await
        } else {
            store
                .append_build_events_journaled(build_id, batch, marks)
                .await
        };
        match appended {
            Ok(_) => return,
            Err(e @ (StoreError::NotFound(_) | StoreError::Conflict(_))) => {
                tracing::warn!(build_id = build_id, error = %e, "dropping build events");
                return;
            }
            Err(e) if started.elapsed() >= APPEND_PATIENCE => {
                tracing::error!(build_id = build_id, error = %e, events = batch.len(),
                    "giving up saving build events");
                return;
            }
            Err(e) => {
                tracing::warn!(build_id = build_id, error = %e, "saving build events; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl Events {
    /// Starts the writer task of `build_id`.
    pub fn start(store: Arc<dyn Store>, hub: Hub, build_id: i64) -> Events {
        let channel = Arc::new(Channel::default());
        let writer = channel.clone();
        tokio::spawn(async move {
            while let Some(b) = writer.next_batch().await {
                if !b.events.is_empty() || !b.marks.is_empty() {
                    append(store.as_ref(), build_id, &b.events, &b.marks).await;
                }
                if !b.events.is_empty() {
                    hub.notify(build_id);
                }
                writer.release(b.bytes);
                for w in b.flushes {
                    let _ = w.send(());
                }
            }
        });
        Events::to(Sink::Store(Arc::new(Sender(channel))))
    }

    fn to(sink: Sink) -> Events {
        Events {
            sink,
            secrets: Arc::default(),
        }
    }

    /// A sink that drops everything (periodic checks keep no build log).
    pub fn discard() -> Events {
        Events::to(Sink::Discard)
    }

    /// A sink that keeps only the text of `log` and `error` events (the last `limit`
    /// bytes, redacted like any event): what a periodic check that failed said.
    pub fn collect(limit: usize) -> (Events, Arc<Mutex<String>>) {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Sink::Collect {
            text: text.clone(),
            limit,
        };
        (Events::to(sink), text)
    }

    /// This stream with redaction of secrets off (`--disable-redact-secrets`).
    pub fn without_redaction(self) -> Events {
        *self.lock_secrets() = Secrets::disabled();
        self
    }

    /// Values to replace with `((redacted))` in every later event that carries user text.
    pub fn add_secrets(&self, values: impl IntoIterator<Item = String>) {
        let mut s = self.lock_secrets();
        for v in values {
            s.add(&v);
        }
    }

    fn lock_secrets(&self) -> std::sync::MutexGuard<'_, Secrets> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every event goes through here, so no emitter can bypass redaction of the fields
    /// that carry interpolated or process-written text: log payloads, error messages, the
    /// task config shadow and the image sub-steps' plans.
    pub fn emit(&self, mut event: BuildEvent) {
        let secrets = self.lock_secrets();
        let redact = |text: &mut String| *text = secrets.redact(text);
        match &mut event {
            BuildEvent::Log(l) => redact(&mut l.payload),
            BuildEvent::Error(e) => redact(&mut e.message),
            BuildEvent::InitializeTask(t) | BuildEvent::StartTask(t) => {
                let c = &mut t.config;
                [
                    &mut c.platform,
                    &mut c.image,
                    &mut c.run.path,
                    &mut c.run.dir,
                ]
                .into_iter()
                .chain(c.run.args.iter_mut())
                .chain(
                    c.inputs
                        .iter_mut()
                        .flatten()
                        .flat_map(|i| [&mut i.name, &mut i.path]),
                )
                .for_each(redact);
            }
            BuildEvent::ImageCheck(p) | BuildEvent::ImageGet(p) => {
                secrets.redact_value(&mut p.plan)
            }
            _ => {}
        }
        drop(secrets);
        match &self.sink {
            Sink::Store(tx) => {
                let size = event_size(&event);
                tx.0.push(Msg::Event(event), size);
            }
            Sink::Discard => {}
            Sink::Collect { text, limit } => {
                let piece = match event {
                    BuildEvent::Log(l) => l.payload,
                    BuildEvent::Error(e) => format!("{}\n", e.message),
                    _ => return,
                };
                let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
                t.push_str(&piece);
                if t.len() > *limit {
                    let mut cut = t.len() - limit;
                    while !t.is_char_boundary(cut) {
                        cut += 1;
                    }
                    t.drain(..cut);
                }
            }
        }
    }

    /// Waits until every event emitted so far is stored.
    pub async fn flush(&self) {
        let Sink::Store(sink) = &self.sink else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        sink.0.push(Msg::Flush(tx), 0);
        let _ = rx.await;
    }

    /// Waits while this build's unstored events exceed [`QUEUE_BYTES`]: what a producer of
    /// volume (a process's output) awaits between events.
    pub async fn room(&self) {
        if let Sink::Store(sink) = &self.sink {
            sink.0.room().await;
        }
    }

    /// Queues a journal entry to be stored with the events emitted before it. False when
    /// this stream stores nothing (the entry is then not queued).
    pub(super) fn mark(&self, key: &str, value: Value) -> bool {
        if let Sink::Store(sink) = &self.sink {
            sink.0.push(Msg::Mark(key.to_string(), value), 0);
            return true;
        }
        false
    }

    pub fn status(&self, status: &str, time: i64) {
        self.emit(BuildEvent::Status(ev::Status {
            status: status.to_string(),
            time,
        }));
    }

    pub fn origin(&self, id: &str) -> Origin {
        Origin {
            events: self.clone(),
            id: id.to_string(),
        }
    }
}

/// The payload of `finish-get` and `finish-put`: the version and metadata the resource
/// printed, or only the exit status when it failed. Metadata that is not a list of
/// `{name, value}` is left out, as upstream cannot read it either.
pub fn finished(exit_status: i32, printed: Option<(Value, Value)>) -> ev::FinishResource {
    let (version, metadata) = match printed {
        Some((version, metadata)) => (
            match version {
                Value::Object(v) => Some(v),
                _ => None,
            },
            serde_json::from_value(metadata).ok(),
        ),
        None => (None, None),
    };
    ev::FinishResource {
        exit_status,
        version,
        metadata,
        ..Default::default()
    }
}

/// Events of one plan node.
#[derive(Clone)]
pub struct Origin {
    pub events: Events,
    pub id: String,
}

impl Origin {
    /// An event of this plan node: its payload's origin is set to this node and, unless
    /// the emitter set one, its time to now.
    pub fn emit(&self, mut event: BuildEvent) {
        if let Some((origin, time)) = event.origin_and_time_mut() {
            *origin = ev::Origin::id(&self.id);
            if *time == 0 {
                *time = now();
            }
        }
        self.events.emit(event);
    }

    pub fn log(&self, source: &str, text: &str) {
        self.events.emit(BuildEvent::Log(ev::Log {
            time: now(),
            origin: ev::Origin {
                id: self.id.clone(),
                source: source.to_string(),
            },
            payload: text.to_string(),
        }));
    }

    /// Logs a line the ATC itself writes (stdout), newline added.
    pub fn say(&self, line: &str) {
        self.log("stdout", &format!("{line}\n"));
    }

    pub fn error(&self, message: &str) {
        self.emit(BuildEvent::Error(ev::Error {
            message: message.to_string(),
            ..Default::default()
        }));
    }

    pub fn selected_worker(&self, name: &str) {
        self.emit(BuildEvent::SelectedWorker(ev::SelectedWorker {
            selected_worker: name.to_string(),
            ..Default::default()
        }));
    }
}

/// The most text one log event carries, and the most a partial line may hold: a process
/// printing without newlines must not grow the web node's memory or one event unboundedly.
pub const MAX_LOG_EVENT: usize = 64 * 1024;

/// Turns a process's output chunks into log events: split at the last newline, a partial
/// line held until more arrives, the stream ends or it reaches [`MAX_LOG_EVENT`],
/// incomplete UTF-8 held back; no event longer than [`MAX_LOG_EVENT`].
pub struct LineBuffer {
    origin: Origin,
    source: &'static str,
    pending: Vec<u8>,
    /// Journal key and stream offset of the first pending byte, when the log's progress
    /// through the stream is journaled.
    tracked: Option<(String, u64)>,
}

impl LineBuffer {
    pub fn new(origin: Origin, source: &'static str) -> Self {
        LineBuffer {
            origin,
            source,
            pending: Vec::new(),
            tracked: None,
        }
    }

    /// As [`LineBuffer::new`] for a stream whose first `from` bytes are in the log already;
    /// every event it emits is followed by a journal mark of the offset it reached, stored
    /// with that event, so a resumed build re-attaches exactly there.
    pub fn tracked(origin: Origin, source: &'static str, from: u64) -> Self {
        let key = super::journal::output_key(&origin.id, source);
        LineBuffer {
            tracked: Some((key, from)),
            ..LineBuffer::new(origin, source)
        }
    }

    /// `n` raw bytes of the stream went into events.
    fn consumed(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some((key, at)) = &mut self.tracked {
            *at += n as u64;
            let _ = self.origin.events.mark(key, Value::from(*at));
        }
    }

    /// Takes a chunk of output; returns once the build's event queue has room again, so
    /// the reader of the process's output (and so the worker) is held to the store's pace.
    pub async fn push(&mut self, chunk: &[u8]) {
        self.push_now(chunk);
        self.origin.events.room().await;
    }

    fn push_now(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        if let Some(pos) = self.pending.iter().rposition(|&b| b == b'\n' || b == b'\r') {
            let rest = self.pending.split_off(pos + 1);
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.emit(&text);
            self.consumed(pos + 1);
            self.pending = rest;
        }
        if self.pending.len() >= MAX_LOG_EVENT {
            self.flush();
        }
    }

    /// One event per [`MAX_LOG_EVENT`] bytes at most, cut at character boundaries.
    fn emit(&self, mut text: &str) {
        while !text.is_empty() {
            let mut end = text.len().min(MAX_LOG_EVENT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            self.origin.log(self.source, &text[..end]);
            text = &text[end..];
        }
    }

    /// Emits whatever is held (the stream ended or a second has passed).
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.emit(&text);
        self.consumed(valid);
        self.pending = rest;
    }

    pub fn finish(mut self) {
        self.flush();
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.emit(&text);
            self.consumed(self.pending.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events() -> (Events, Arc<Channel>) {
        let channel = Arc::new(Channel::default());
        let events = Events::to(Sink::Store(Arc::new(Sender(channel.clone()))));
        (events, channel)
    }

    fn take(rx: &Channel) -> Option<BuildEvent> {
        match rx.lock().msgs.pop_front() {
            Some((Msg::Event(e), _)) => Some(e),
            _ => None,
        }
    }

    fn payloads(rx: &mut Arc<Channel>) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(BuildEvent::Log(l)) = take(rx) {
            out.push(l.payload);
        }
        out
    }

    /// A tracked stream's offset marks follow the events that carry its bytes, so the
    /// offset stored with a batch never counts a byte that is not in the log; a batch keeps
    /// only the last mark per stream.
    #[tokio::test]
    async fn tracked_output_marks_the_offset_each_event_reached() {
        let (events, rx) = events();
        let mut buf = LineBuffer::tracked(events.origin("7"), "stdout", 100);
        buf.push_now(b"ab\ncd");
        buf.flush();
        buf.push_now("\u{e9}".as_bytes().split_at(1).0);
        buf.flush();
        buf.finish();
        let mut seen = Vec::new();
        for (msg, _) in rx.lock().msgs.iter() {
            match msg {
                Msg::Event(BuildEvent::Log(l)) => seen.push(l.payload.clone()),
                Msg::Mark(k, v) => seen.push(format!("{k}={v}")),
                _ => {}
            }
        }
        assert_eq!(
            seen,
            [
                "ab\n",
                "out:7:stdout=103",
                "cd",
                "out:7:stdout=105",
                "\u{fffd}",
                "out:7:stdout=106"
            ]
        );
        drop(events);
        let batch = rx.next_batch().await.expect("a batch");
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.marks, [("out:7:stdout".to_string(), json!(106))]);
    }

    #[test]
    fn output_without_newlines_is_cut_into_bounded_events() {
        let (events, mut rx) = events();
        let mut buf = LineBuffer::new(events.origin("o"), "stdout");
        // 200 KB of multi-byte characters, in odd-sized chunks, never a newline.
        let text = "é".repeat(100_000);
        for chunk in text.as_bytes().chunks(3333) {
            buf.push_now(chunk);
            assert!(
                buf.pending.len() < MAX_LOG_EVENT + 3333,
                "bounded while held"
            );
        }
        buf.finish();
        let got = payloads(&mut rx);
        assert!(got.len() >= 3, "{} events", got.len());
        assert!(got.iter().all(|p| p.len() <= MAX_LOG_EVENT));
        assert_eq!(got.concat(), text, "nothing lost, no character split");
    }

    #[test]
    fn lines_end_events_and_a_partial_line_waits() {
        let (events, mut rx) = events();
        let mut buf = LineBuffer::new(events.origin("o"), "stdout");
        buf.push_now(b"one\ntw");
        assert_eq!(payloads(&mut rx), ["one\n"]);
        buf.push_now(b"o\n");
        assert_eq!(payloads(&mut rx), ["two\n"]);
        buf.push_now(b"tail");
        buf.finish();
        assert_eq!(payloads(&mut rx), ["tail"]);
    }

    fn next(rx: &mut Arc<Channel>) -> Value {
        serde_json::to_value(take(rx).expect("an event")).unwrap()["data"].clone()
    }

    #[test]
    fn logs_errors_and_task_config_are_redacted_but_other_events_are_not() {
        let (events, mut rx) = events();
        events.add_secrets(["hunter2".to_string()]);
        let origin = events.origin("p1");
        origin.say("pw hunter2");
        assert_eq!(next(&mut rx)["payload"], "pw ((redacted))\n");
        origin.error("missing image artifact source: hunter2");
        assert_eq!(
            next(&mut rx)["message"],
            "missing image artifact source: ((redacted))"
        );
        let config: ev::TaskConfig = serde_json::from_value(
            json!({"run": {"path": "hunter2", "args": ["hunter2"], "dir": "hunter2"}}),
        )
        .unwrap();
        let task = ev::TaskConfigEvent {
            config,
            ..Default::default()
        };
        for event in [
            BuildEvent::InitializeTask(task.clone()),
            BuildEvent::StartTask(task),
        ] {
            origin.emit(event);
            assert_eq!(
                next(&mut rx)["config"]["run"],
                json!({"path": "((redacted))", "args": ["((redacted))"], "dir": "((redacted))"})
            );
        }
        origin.emit(BuildEvent::ImageGet(ev::ImagePlan {
            plan: json!({"get": {"source": {"password": "hunter2"}}}),
            ..Default::default()
        }));
        assert_eq!(
            next(&mut rx)["plan"]["get"]["source"]["password"],
            super::super::redact::REDACTED
        );
        // A resource's version and metadata are shown as they are, as upstream does.
        let version = json!({"v": "hunter2"}).as_object().cloned();
        origin.emit(BuildEvent::FinishGet(ev::FinishResource {
            version,
            ..Default::default()
        }));
        assert_eq!(next(&mut rx)["version"]["v"], "hunter2");
    }

    #[test]
    fn without_redaction_nothing_is_replaced() {
        let (events, mut rx) = events();
        let events = events.without_redaction();
        events.add_secrets(["hunter2".to_string()]);
        events.origin("p1").say("pw hunter2");
        assert_eq!(next(&mut rx)["payload"], "pw hunter2\n");
    }

    #[tokio::test]
    async fn output_waits_for_room_and_batches_are_capped() {
        let (events, rx) = events();
        let mut buf = LineBuffer::new(events.origin("o"), "stdout");
        let line = format!("{}\n", "x".repeat(1023));
        // Below the bound a push returns at once; fill the queue just past it.
        buf.push(line.as_bytes()).await;
        while rx.lock().bytes <= QUEUE_BYTES {
            buf.push_now(line.as_bytes());
        }
        let queued = rx.lock().bytes;
        {
            let mut blocked = std::pin::pin!(buf.push(line.as_bytes()));
            assert!(
                futures::poll!(blocked.as_mut()).is_pending(),
                "a full queue holds the producer"
            );
            let b = rx.next_batch().await.expect("a batch");
            let (batch, bytes) = (b.events, b.bytes);
            assert!(bytes <= BATCH_BYTES + line.len() + 256 && batch.len() <= BATCH_EVENTS);
            assert!(bytes < queued, "one batch is not the whole queue");
            rx.release(bytes);
            blocked.await;
        }
        drop(buf);
        drop(events);
        let mut total = 0;
        while let Some(b) = rx.next_batch().await {
            total += b.events.len();
            rx.release(b.bytes);
        }
        assert!(total > 0 && rx.lock().bytes == 0, "drained, then closed");
    }
}
