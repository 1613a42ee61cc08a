//! One turn at a time per key: callers naming the same key wait for each other, callers
//! naming others do not wait at all. Used where racing steps must share what the first of
//! them makes (an image's check, a config's kept check container) without serializing
//! unrelated work behind one lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct Turns(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Turns {
    /// Waits until no one else holds `key`'s turn, and holds it until the guard drops.
    pub async fn take(&self, key: &str) -> OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // Only the map holds a turn nobody holds or awaits.
            turns.retain(|_, t| Arc::strong_count(t) > 1);
            turns.entry(key.to_string()).or_default().clone()
        };
        turn.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn one_key_takes_turns_and_others_do_not_wait() {
        let turns = Turns::default();
        let first = turns.take("k").await;
        assert!(
            turns.take("other").now_or_never().is_some(),
            "another key waits"
        );
        assert!(
            turns.take("k").now_or_never().is_none(),
            "two turns on k at once"
        );
        drop(first);
        assert!(
            turns.take("k").now_or_never().is_some(),
            "k's turn not given back"
        );
        // Nothing holds or awaits a turn now: the next call drops them all but its own.
        let _x = turns.take("x").await;
        assert_eq!(turns.len(), 1);
    }
}
