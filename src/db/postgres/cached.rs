//! Statements through each pooled connection's cache of prepared statements.
//!
//! tokio-postgres runs a statement given as text in two round trips: it prepares it
//! (PostgreSQL parses, plans and describes it) and then binds and executes it, and drops
//! it after. Every statement of this store is a constant text, so each connection prepares
//! each one once and later runs cost one round trip and no parse: a build's hundred-odd
//! statements are a hundred fewer round trips (BENCHMARKS.md).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `query`, `query_one`, `query_opt` and `execute` of a constant statement, prepared once
/// per connection (on a pooled client or a transaction of one).
#[async_trait]
pub(super) trait Cached: GenericClient {
    async fn query_cached(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query(&statement, params).await
    }

    async fn query_one_cached(&self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query_one(&statement, params).await
    }

    async fn query_opt_cached(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query_opt(&statement, params).await
    }

    async fn execute_cached(&self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let statement = self.prepare_cached(sql).await?;
        self.execute(&statement, params).await
    }
}

impl<C: GenericClient> Cached for C {}
