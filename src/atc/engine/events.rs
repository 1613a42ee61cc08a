//! Build events: steps emit them here; one writer task per build appends whatever has
//! queued in a single store round trip (batches form by themselves under load) and then
//! wakes live watchers through the [`Hub`], so an SSE stream does not wait for a poll.

use crate::db::Store;
use serde_json::{json, Value};
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
    Event(Value),
    Flush(oneshot::Sender<()>),
}

/// The event stream of one running build. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::UnboundedSender<Msg>,
    secrets: Arc<Mutex<Vec<String>>>,
}

pub fn now() -> i64 {
    crate::atc::auth::now()
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
                        Msg::Event(e) => batch.push(e),
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
        Events {
            tx,
            secrets: Arc::default(),
        }
    }

    /// A sink that drops everything (periodic checks keep no build log).
    pub fn discard() -> Events {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if let Msg::Flush(w) = m {
                    let _ = w.send(());
                }
            }
        });
        Events {
            tx,
            secrets: Arc::default(),
        }
    }

    /// Values to replace with `((redacted))` in every later log line.
    pub fn add_secrets(&self, values: impl IntoIterator<Item = String>) {
        let mut s = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        for v in values {
            if !v.is_empty() && !s.contains(&v) {
                s.push(v);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        s.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn emit(&self, event: &str, version: &str, data: Value) {
        let _ = self.tx.send(Msg::Event(
            json!({"event": event, "version": version, "data": data}),
        ));
    }

    /// Waits until every event emitted so far is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub fn status(&self, status: &str, time: i64) {
        self.emit("status", "1.0", json!({"status": status, "time": time}));
    }

    pub fn origin(&self, id: &str) -> Origin {
        Origin {
            events: self.clone(),
            id: id.to_string(),
        }
    }

    fn redact(&self, text: &str) -> String {
        let s = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for secret in s.iter() {
            out = out.replace(secret.as_str(), "((redacted))");
        }
        out
    }
}

/// Events of one plan node.
#[derive(Clone)]
pub struct Origin {
    pub events: Events,
    pub id: String,
}

impl Origin {
    fn origin(&self) -> Value {
        json!({"id": self.id})
    }

    /// An event whose payload gets `origin` and `time`.
    pub fn emit(&self, event: &str, version: &str, mut data: Value) {
        if let Value::Object(m) = &mut data {
            m.insert("origin".into(), self.origin());
            m.entry("time").or_insert(json!(now()));
        }
        self.events.emit(event, version, data);
    }

    pub fn log(&self, source: &str, text: &str) {
        let payload = self.events.redact(text);
        self.events.emit(
            "log",
            "5.1",
            json!({"time": now(), "origin": {"id": self.id, "source": source}, "payload": payload}),
        );
    }

    /// Logs a line the ATC itself writes (stdout), newline added.
    pub fn say(&self, line: &str) {
        self.log("stdout", &format!("{line}\n"));
    }

    pub fn error(&self, message: &str) {
        self.emit("error", "4.1", json!({ "message": message }));
    }

    pub fn selected_worker(&self, name: &str) {
        self.emit("selected-worker", "1.0", json!({ "selected_worker": name }));
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

    fn capture() -> (Events, mpsc::UnboundedReceiver<Msg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = Events {
            tx,
            secrets: Arc::default(),
        };
        (events, rx)
    }

    fn payloads(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Msg::Event(e)) = rx.try_recv() {
            out.push(
                e["data"]["payload"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        out
    }

    #[test]
    fn output_without_newlines_is_cut_into_bounded_events() {
        let (events, mut rx) = capture();
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
        let (events, mut rx) = capture();
        let mut buf = LineBuffer::new(events.origin("o"), "stdout");
        buf.push(b"one\ntw");
        assert_eq!(payloads(&mut rx), ["one\n"]);
        buf.push(b"o\n");
        assert_eq!(payloads(&mut rx), ["two\n"]);
        buf.push(b"tail");
        buf.finish();
        assert_eq!(payloads(&mut rx), ["tail"]);
    }
}
