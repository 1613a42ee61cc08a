//! Helpers for tests that need PostgreSQL: each test gets its own random schema in the
//! database named by the environment, dropped afterwards.
//!
//! `CONCOURSE_TEST_POSTGRES_HOST` enables them (with optional `_PORT`, `_USER` default
//! `postgres`, `_PASSWORD`, `_DATABASE` default `test`). Locally, tests skip with a message
//! when it is unset; in CI (`CI` set) they must never skip, so they panic instead.

use super::PostgresConfig;
use rand::Rng;

/// A config for a fresh schema `test_<random>` when PostgreSQL is configured.
pub fn postgres_from_env() -> Option<PostgresConfig> {
    let host = std::env::var("CONCOURSE_TEST_POSTGRES_HOST")
        .ok()
        .filter(|h| !h.is_empty())?;
    let var = |name: &str, default: &str| {
        std::env::var(format!("CONCOURSE_TEST_POSTGRES_{name}"))
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let port = var("PORT", "5432");
    Some(PostgresConfig {
        host,
        port: port.parse().unwrap_or_else(|_| {
            panic!("CONCOURSE_TEST_POSTGRES_PORT={port:?} is not a port number")
        }),
        user: var("USER", "postgres"),
        password: var("PASSWORD", ""),
        database: var("DATABASE", "test"),
        sslmode: "disable".into(),
        socket: None,
        schema: Some(format!("test_{:016x}", rand::thread_rng().gen::<u64>())),
    })
}

/// [`postgres_from_env`], or None after saying why the test skips.
///
/// # Panics
/// When PostgreSQL is not configured and `CI` is set: CI must never skip a test.
pub fn require_postgres(test_name: &str) -> Option<PostgresConfig> {
    let config = postgres_from_env();
    if config.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test_name}: CONCOURSE_TEST_POSTGRES_HOST is not set, but CI is: \
                 configure PostgreSQL for CI, tests must not skip there"
            );
        }
        println!(
            "skipping {test_name}: CONCOURSE_TEST_POSTGRES_HOST not set (no PostgreSQL configured)"
        );
    }
    config
}

/// Drops the config's schema with everything in it.
pub async fn drop_schema(config: &PostgresConfig) -> anyhow::Result<()> {
    let Some(schema) = &config.schema else {
        anyhow::bail!("refusing to drop the default schema: the config names no schema");
    };
    if !super::postgres::valid_schema_name(schema) {
        anyhow::bail!("schema {schema:?} is not a plain identifier");
    }
    let mut pg = super::postgres::driver_config(config)?;
    pg.options("");
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    drop(client);
    connection.await??;
    Ok(())
}

/// Drops its schema when dropped, even when the test panicked.
pub struct SchemaGuard {
    config: PostgresConfig,
}

impl SchemaGuard {
    pub fn new(config: PostgresConfig) -> Self {
        SchemaGuard { config }
    }

    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let config = self.config.clone();
        // Drop may run inside a runtime (or while unwinding from one), where blocking on a
        // future is not allowed: use a thread with its own small runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_schema(&config))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test schema {:?}: {e:#}", self.config.schema),
            Err(_) => eprintln!(
                "dropping test schema {:?}: the dropping thread panicked",
                self.config.schema
            ),
        }
    }
}
