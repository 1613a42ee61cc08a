//! Build ownership and the build journal on the embedded store.

use super::super::sql::{Dialect, JournalSql};
use super::super::*;
use super::rows::first;
use super::EmbeddedStore;
use rusqlite::{params, Transaction};
use std::sync::LazyLock;

static SQL: LazyLock<JournalSql> = LazyLock::new(|| JournalSql::new(Dialect::Sqlite));

/// Writes journal entries (data as JSON text) inside the caller's transaction.
pub(super) fn put(tx: &Transaction<'_>, build_id: i64, entries: &[(String, String)]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut put = tx.prepare_cached(&SQL.put)?;
    for (key, data) in entries {
        match put.execute(params![build_id, key, data]) {
            Ok(_) => {}
            Err(e) if super::is_foreign_key_violation(&e) => {
                return Err(StoreError::NotFound(format!("build {build_id}")))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn as_text(entries: &[JournalEntry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

#[async_trait]
impl JournalStore for EmbeddedStore {
    async fn claim_build(
        &self,
        build_id: i64,
        holder: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool> {
        let holder = holder.to_string();
        self.call(move |conn| {
            Ok(conn.execute(&SQL.claim, params![build_id, holder, expires, now])? > 0)
        })
        .await
    }

    async fn renew_builds(&self, holder: &str, expires: i64) -> Result<Vec<i64>> {
        let holder = holder.to_string();
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(&SQL.renew)?
                .query_map(params![holder, expires], first)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn orphaned_builds(&self, now: i64) -> Result<Vec<i64>> {
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(&SQL.orphans)?
                .query_map([now], first)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn release_builds(&self, holder: &str, ids: &[i64]) -> Result<()> {
        let (holder, ids) = (holder.to_string(), Value::from(ids.to_vec()).to_string());
        self.call(move |conn| {
            conn.execute(&SQL.release, params![holder, ids])?;
            Ok(())
        })
        .await
    }

    async fn put_journal(&self, build_id: i64, entries: &[JournalEntry]) -> Result<()> {
        let entries = as_text(entries);
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            put(&tx, build_id, &entries)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn journal(&self, build_id: i64) -> Result<Vec<JournalEntry>> {
        self.call(move |conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached(&SQL.entries)?
                .query_map([build_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::from_str(&v).ok()?)))
                .collect())
        })
        .await
    }

    async fn append_build_events_journaled(
        &self,
        build_id: i64,
        events: &[Value],
        entries: &[JournalEntry],
    ) -> Result<i64> {
        let events: Vec<String> = events.iter().map(Value::to_string).collect();
        let entries = as_text(entries);
        self.call(move |conn| super::builds::append_build_events(conn, build_id, &events, &entries))
            .await
    }
}
