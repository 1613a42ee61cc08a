//! The embedded store's connections: the writer, the readers and their turns, how work
//! reaches them on the blocking pool, SQLite's errors as the store's, and migrations.

use super::super::migrations::{self, CREATE_SCHEMA_MIGRATIONS};
use super::super::sql::sqlite;
use super::super::*;
use super::counting::count_statements;
use super::leases;
use anyhow::Context as _;
use rusqlite::{ffi, params, Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

pub(crate) struct EmbeddedStore {
    /// The one connection that writes. A `std` mutex, not tokio's: it is only taken inside
    /// `spawn_blocking` and never held across an `.await`. One connection also serializes
    /// writers, which SQLite needs anyway.
    pub(super) conn: Arc<Mutex<Connection>>,
    /// Connections that only read (`query_only`): in WAL mode they run beside each other
    /// and beside the writer, so API reads do not queue behind one mutex.
    pub(super) readers: Arc<Vec<Mutex<Connection>>>,
    pub(super) next_reader: std::sync::atomic::AtomicUsize,
    /// A permit per connection, taken before a blocking thread is: callers beyond what the
    /// connections can serve wait as tasks. Waiting on the mutexes instead parked a
    /// blocking-pool thread per caller, ~500 of them with 1,000 resources checking.
    pub(super) writer_turn: Arc<tokio::sync::Semaphore>,
    pub(super) reader_turns: Arc<tokio::sync::Semaphore>,
    /// Statements run on any of its connections (`concourse_db_queries_total`).
    pub(super) queries: Arc<AtomicU64>,
    /// A connection that only asks `PRAGMA data_version` (see `data_version`): its own, as
    /// the number is per connection, and never held long.
    pub(super) version: Arc<Mutex<Connection>>,
    /// Leases live in a file of their own (see `leases`).
    pub(super) leases: Arc<Mutex<Connection>>,
}

/// Read connections: enough for the API's concurrent clients on a small machine;
/// `CONCOURSE_EMBEDDED_READERS` changes it (0: reads share the writer's connection).
pub(super) fn readers() -> usize {
    std::env::var("CONCOURSE_EMBEDDED_READERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let e = match e {
            // A shared decoder's error, carried through a row callback by `rows::lift`.
            rusqlite::Error::FromSqlConversionFailure(i, t, inner) => {
                match inner.downcast::<StoreError>() {
                    Ok(store) => return *store,
                    Err(inner) => rusqlite::Error::FromSqlConversionFailure(i, t, inner),
                }
            }
            e => e,
        };
        if is_unique_violation(&e) {
            StoreError::Conflict(e.to_string())
        } else {
            StoreError::Backend(format!("sqlite: {e}"))
        }
    }
}

pub(super) fn constraint_code(e: &rusqlite::Error) -> Option<std::ffi::c_int> {
    match e {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(failure.extended_code)
        }
        _ => None,
    }
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        constraint_code(e),
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) | Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

pub(super) fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    constraint_code(e) == Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

impl EmbeddedStore {
    /// Opens the database file at `path` (or `path/concourse.db` when `path` is a directory).
    pub(crate) async fn open(path: &Path) -> anyhow::Result<Self> {
        let path: PathBuf = if path.is_dir() {
            path.join("concourse.db")
        } else {
            path.to_path_buf()
        };
        let shown = path.display().to_string();
        type Opened = (Connection, Vec<Mutex<Connection>>, Connection, Connection);
        let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<Opened> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut conn = Connection::open(&path)?;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                anyhow::bail!("could not switch to WAL mode (journal mode is {mode})");
            }
            conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;")?;
            migrate(&mut conn)?;
            let reader = || -> anyhow::Result<Connection> {
                let r = Connection::open(&path)?;
                r.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")?;
                Ok(r)
            };
            let readers = (0..readers())
                .map(|_| reader().map(Mutex::new))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let leases = leases::open(&path)?;
            Ok((conn, readers, reader()?, leases))
        })
        .await
        .context("opening the embedded store")?
        .with_context(|| format!("opening the embedded store at {shown}"))?;
        let (conn, readers, version, leases) = opened;
        // Counting starts after the migrations: the metric is about the running server.
        let queries = Arc::new(AtomicU64::new(0));
        count_statements(&conn, &queries);
        for r in &readers {
            count_statements(&r.lock().unwrap_or_else(|p| p.into_inner()), &queries);
        }
        count_statements(&version, &queries);
        count_statements(&leases, &queries);
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            reader_turns: Arc::new(tokio::sync::Semaphore::new(readers.len())),
            readers: Arc::new(readers),
            next_reader: Default::default(),
            writer_turn: Arc::new(tokio::sync::Semaphore::new(1)),
            queries,
            version: Arc::new(Mutex::new(version)),
            leases: Arc::new(Mutex::new(leases)),
        })
    }

    /// Runs `f`, which only reads, on a free read connection (or, all busy, the next one
    /// in turn). It sees everything committed before it starts.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.call(f).await;
        }
        let readers = self.readers.clone();
        let start = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let turn = self.reader_turns.clone().acquire_owned().await.ok();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let n = readers.len();
            let free = (0..n).find_map(|i| readers[(start + i) % n].try_lock().ok());
            let mut conn = match free {
                Some(c) => c,
                None => readers[start % n]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            };
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("embedded store task: {e}")))?
    }

    /// Runs `f` on the connection on the blocking pool. Transactions that write begin
    /// IMMEDIATE: a deferred one that reads first fails at once with SQLITE_BUSY (no busy
    /// timeout applies) when another process sharing the file wrote in between.
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let turn = self.writer_turn.clone().acquire_owned().await.ok();
        on_connection(&self.conn, turn, f).await
    }
}

/// Runs `f` on `conn` on the blocking pool, keeping `turn` (a semaphore permit, or `()`)
/// until it is done, even if the caller stops waiting.
pub(super) async fn on_connection<T, F, K>(
    conn: &Arc<Mutex<Connection>>,
    turn: K,
    f: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    K: Send + 'static,
{
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        // A panic while holding the lock leaves no half-done work behind: an open
        // transaction rolls back when dropped. So a poisoned lock is still usable.
        let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    })
    .await
    .map_err(|e| StoreError::Backend(format!("embedded store task: {e}")))?
}

/// Applies missing migrations in one write transaction (`BEGIN IMMEDIATE` takes SQLite's
/// write lock, so two processes opening the file cannot both migrate).
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(CREATE_SCHEMA_MIGRATIONS)?;
    let applied: Vec<i64> = tx
        .prepare(migrations::APPLIED_MIGRATIONS)?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let now = crate::clock::now();
    for migration in migrations::EMBEDDED {
        if applied.contains(&migration.version) {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(|e| {
            StoreError::Backend(format!(
                "migration {:04}_{}: {e}",
                migration.version, migration.name
            ))
        })?;
        tx.execute(
            &sqlite(migrations::RECORD_MIGRATION),
            params![migration.version, migration.name, now],
        )?;
    }
    tx.commit()?;
    Ok(())
}
