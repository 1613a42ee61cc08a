//! Build events: steps emit them here; one writer task per build appends whatever has
//! queued in a single store round trip (batches form by themselves under load) and then
//! wakes live watchers through the [`Hub`], so an SSE stream does not wait for a poll.

use super::redact::Secrets;
use crate::clock::now;
use crate::db::Store;
use crate::proto::event::{self as ev, BuildEvent};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot};

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
}

/// Where a stream's events go.
#[derive(Clone)]
enum Sink {
    /// The build's writer task, which stores them.
    Store(mpsc::UnboundedSender<Msg>),
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

impl Events {
    /// Starts the writer task of `build_id`.
    pub fn start(store: Arc<dyn Store>, hub: Hub, build_id: i64) -> Events {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut waiters = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        Msg::Event(e) => batch.push(e.to_json()),
                        Msg::Flush(w) => waiters.push(w),
                    }
                    next = rx.try_recv().ok();
                }
                if !batch.is_empty() {
                    // A failed append is retried with the next batch; nothing is dropped
                    // while the store is briefly unreachable.
                    match store.append_build_events(build_id, &batch).await {
                        Ok(_) => {
                            batch.clear();
                            hub.notify(build_id);
                        }
                        Err(e) => {
                            tracing::warn!(build = build_id, error = %e, "saving build events");
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            if !waiters.is_empty() {
                                let _ = store.append_build_events(build_id, &batch).await;
                                batch.clear();
                                hub.notify(build_id);
                            }
                        }
                    }
                }
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        });
        Events::to(Sink::Store(tx))
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
                let _ = tx.send(Msg::Event(event));
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
        if sink.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
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
}

impl LineBuffer {
    pub fn new(origin: Origin, source: &'static str) -> Self {
        LineBuffer {
            origin,
            source,
            pending: Vec::new(),
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        if let Some(pos) = self.pending.iter().rposition(|&b| b == b'\n' || b == b'\r') {
            let rest = self.pending.split_off(pos + 1);
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.emit(&text);
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
        self.pending = rest;
    }

    pub fn finish(mut self) {
        self.flush();
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.emit(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events() -> (Events, mpsc::UnboundedReceiver<Msg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = Events::to(Sink::Store(tx));
        (events, rx)
    }

    fn payloads(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Msg::Event(BuildEvent::Log(l))) = rx.try_recv() {
            out.push(l.payload);
        }
        out
    }

    #[test]
    fn output_without_newlines_is_cut_into_bounded_events() {
        let (events, mut rx) = events();
        let mut buf = LineBuffer::new(events.origin("o"), "stdout");
        // 200 KB of multi-byte characters, in odd-sized chunks, never a newline.
        let text = "é".repeat(100_000);
        for chunk in text.as_bytes().chunks(3333) {
            buf.push(chunk);
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
        buf.push(b"one\ntw");
        assert_eq!(payloads(&mut rx), ["one\n"]);
        buf.push(b"o\n");
        assert_eq!(payloads(&mut rx), ["two\n"]);
        buf.push(b"tail");
        buf.finish();
        assert_eq!(payloads(&mut rx), ["tail"]);
    }

    fn next(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Value {
        match rx.try_recv() {
            Ok(Msg::Event(e)) => serde_json::to_value(e).unwrap()["data"].clone(),
            _ => panic!("an event"),
        }
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
}
