//! Coordination of several web nodes on the embedded store: leases and cross-node aborts
//! (one process owns the file, but the semantics match PostgreSQL's).
//!
//! Leases are kept in a second file beside the database. The scheduler renews its lease
//! every second; in the database, that commit made every read connection drop its whole
//! page cache (SQLite does on any change by another connection), so an idle node re-read
//! its pipelines from the file every second.

use super::super::sql::{self, sqlite};
use super::super::*;
use super::EmbeddedStore;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// Opens (creating) the leases file of the database at `db`.
pub(super) fn open(db: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(db.with_extension("leases.db"))?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS leases (
             name text PRIMARY KEY,
             holder text NOT NULL,
             expires_at bigint NOT NULL
         );",
    )?;
    Ok(conn)
}

#[async_trait]
impl ClusterStore for EmbeddedStore {
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool> {
        let expires_at = worker_expiry(Some(ttl), now);
        let (name, holder) = (name.to_string(), holder.to_string());
        super::on_connection(&self.leases, (), move |conn| {
            Ok(conn
                .query_row(
                    &sqlite(sql::LEASE_TAKE),
                    params![name, holder, expires_at, now],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        super::on_connection(&self.leases, (), move |conn| {
            Ok(conn.execute(&sqlite(sql::LEASE_RELEASE), params![name, holder])? > 0)
        })
        .await
    }

    async fn request_build_abort(&self, build_id: i64) -> Result<bool> {
        self.call(move |conn| Ok(conn.execute(&super::builds::SQL.request_abort, [build_id])? > 0))
            .await
    }

    async fn builds_to_stop(&self, ids: &[i64]) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        let list = Value::from(ids.clone()).to_string();
        self.call(move |conn| {
            let keep: Vec<i64> = conn
                .prepare_cached(&super::builds::SQL.still_running)?
                .query_map([list], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids.into_iter().filter(|id| !keep.contains(id)).collect())
        })
        .await
    }
}
