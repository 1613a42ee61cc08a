//! Signing keys of the `idtoken` var source on the embedded store.

use super::super::sql::{self, sqlite};
use super::super::*;
use super::rows::signing_key_row;
use super::{is_unique_violation, EmbeddedStore};
use rusqlite::params;

#[async_trait]
impl SigningKeyStore for EmbeddedStore {
    async fn create_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
        let key = key.clone();
        let jwk = serde_json::to_string(&key.jwk)
            .map_err(|e| StoreError::Invalid(format!("encoding jwk: {e}")))?;
        self.call(move |conn| {
            match conn.execute(
                &sqlite(sql::SIGNING_KEY_INSERT),
                params![key.kid, key.kty, jwk, key.created_at],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                    "signing key {} exists",
                    key.kid
                ))),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        self.call(|conn| {
            Ok(conn
                .prepare_cached(sql::SIGNING_KEYS)?
                .query_map([], signing_key_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        let kid = kid.to_string();
        self.call(move |conn| Ok(conn.execute(&sqlite(sql::SIGNING_KEY_DELETE), [kid])? > 0))
            .await
    }
}
