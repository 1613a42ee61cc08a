//! `concourse_db_queries_total` for the embedded store: SQLite reports each statement a
//! connection starts through its trace hook, which counts it.

use rusqlite::{ffi, Connection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts each statement `conn` starts into `queries`, through SQLite's own trace hook
/// (rusqlite's `trace_v2` takes a plain `fn`, which cannot say which store it counts for).
pub(super) fn count_statements(conn: &Connection, queries: &Arc<AtomicU64>) {
    unsafe extern "C" fn started(
        _event: std::ffi::c_uint,
        counter: *mut std::ffi::c_void,
        _stmt: *mut std::ffi::c_void,
        sql: *mut std::ffi::c_void,
    ) -> std::ffi::c_int {
        // A trigger's statements arrive as `-- TRIGGER …` within the one that fired them.
        // SAFETY: SQLite passes the statement's text, NUL-terminated (so the second byte is
        // read only when the first is not the end); `counter` is the reference this
        // connection holds (below) for as long as it is open.
        let text = sql as *const u8;
        let comment = unsafe { *text == b'-' && *text.add(1) == b'-' };
        if !comment {
            unsafe { &*(counter as *const AtomicU64) }.fetch_add(1, Ordering::Relaxed);
        }
        0
    }
    // One reference per connection, given to SQLite for the connection's life. Connections
    // can outlive the store's struct (a blocking task holds its `Arc`), and rusqlite has no
    // close hook to give it back, so it stays: a few bytes per connection opened.
    let counter = Arc::into_raw(queries.clone()) as *mut std::ffi::c_void;
    // SAFETY: the handle is open (we own `conn`), and the callback only reads the text and
    // the counter it is given.
    unsafe {
        ffi::sqlite3_trace_v2(
            conn.handle(),
            ffi::SQLITE_TRACE_STMT as std::ffi::c_uint,
            Some(started),
            counter,
        );
    }
}
