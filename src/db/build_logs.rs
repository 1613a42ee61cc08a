//! Build logs read in bounded pages. A supertrait of [`Store`](super::Store), so each
//! backend keeps these in its own `build_logs.rs`.

use super::Result;
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
pub trait BuildLogStore {
    /// Events with id greater than `after`, oldest first: at most `max_events`, and no more
    /// once they hold `max_bytes` (by [`approx_size`]); at least one when any is there. A
    /// reader of a huge log holds one bounded page at a time, however big its events are.
    async fn build_events_page(
        &self,
        build_id: i64,
        after: i64,
        max_events: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Value)>>;
}

/// Roughly the bytes a JSON value holds: its text plus a little per node.
pub fn approx_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 8,
        Value::Array(a) => a.iter().map(approx_size).sum::<usize>() + 8,
        Value::Object(o) => {
            o.iter()
                .map(|(k, v)| k.len() + approx_size(v))
                .sum::<usize>()
                + 8
        }
        _ => 8,
    }
}
