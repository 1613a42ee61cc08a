//! The ATC: HTTP API, auth, and (later) scheduler, checker, build engine and GC.
