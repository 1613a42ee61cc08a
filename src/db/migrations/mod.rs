//! Numbered schema migrations of both backends. Each backend applies the ones it has not
//! recorded in `schema_migrations`, in order, inside one transaction (PostgreSQL also holds
//! an advisory lock, so web nodes starting together migrate once).
//!
//! Add a migration by appending to both lists (the embedded one translated) and updating
//! `schema.sql`; never edit a migration that has shipped. Prefer expand/contract steps so
//! an older web node keeps working against the newer schema.

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "resource_check_status",
        sql: include_str!("0002_resource_check_status.sql"),
    },
    Migration {
        version: 3,
        name: "worker_artifacts",
        sql: include_str!("0003_worker_artifacts.sql"),
    },
    Migration {
        version: 4,
        name: "signing_keys",
        sql: include_str!("0004_signing_keys.sql"),
    },
    Migration {
        version: 5,
        name: "leases",
        sql: include_str!("0005_leases.sql"),
    },
    Migration {
        version: 6,
        name: "wall",
        sql: include_str!("0006_wall.sql"),
    },
    Migration {
        version: 7,
        name: "build_journal",
        sql: include_str!("0007_build_journal.sql"),
    },
    Migration {
        version: 8,
        name: "versions_changed",
        sql: include_str!("0008_versions_changed.sql"),
    },
    Migration {
        version: 9,
        name: "table_versions",
        sql: include_str!("0009_table_versions.sql"),
    },
];

pub(crate) const EMBEDDED: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("embedded/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "resource_check_status",
        sql: include_str!("0002_resource_check_status.sql"),
    },
    Migration {
        version: 3,
        name: "worker_artifacts",
        sql: include_str!("embedded/0003_worker_artifacts.sql"),
    },
    Migration {
        version: 4,
        name: "signing_keys",
        sql: include_str!("0004_signing_keys.sql"),
    },
    Migration {
        version: 5,
        name: "leases",
        sql: include_str!("embedded/0005_leases.sql"),
    },
    Migration {
        version: 6,
        name: "wall",
        sql: include_str!("0006_wall.sql"),
    },
    Migration {
        version: 7,
        name: "build_journal",
        sql: include_str!("embedded/0007_build_journal.sql"),
    },
    Migration {
        version: 8,
        name: "versions_changed",
        sql: include_str!("0008_versions_changed.sql"),
    },
    Migration {
        version: 9,
        name: "table_versions",
        sql: include_str!("embedded/0009_table_versions.sql"),
    },
];

/// Key of the PostgreSQL advisory lock held while migrating (upstream's lock-id space is
/// small integers; this one is far from them).
pub(crate) const POSTGRES_LOCK_ID: i64 = 0x0063_6f6e_636d_6967; // "concmig" in ASCII

pub(crate) const APPLIED_MIGRATIONS: &str = "SELECT version FROM schema_migrations";
pub(crate) const RECORD_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)";

pub(crate) const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    applied_at bigint NOT NULL
)";
