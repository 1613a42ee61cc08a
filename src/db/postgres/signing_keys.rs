//! Signing keys of the `idtoken` var source on PostgreSQL.

use super::super::sql;
use super::super::*;
use super::cached::Cached;
use super::{is_unique_violation, PgStore};

#[async_trait]
impl SigningKeyStore for PgStore {
    async fn create_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
        let jwk = serde_json::to_string(&key.jwk)
            .map_err(|e| StoreError::Invalid(format!("encoding jwk: {e}")))?;
        let client = self.pool.get().await?;
        match client
            .execute_cached(
                sql::SIGNING_KEY_INSERT,
                &[&key.kid, &key.kty, &jwk, &key.created_at],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "signing key {} exists",
                key.kid
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let client = self.pool.get().await?;
        let rows = client.query_cached(sql::SIGNING_KEYS, &[]).await?;
        rows.iter().map(crate::db::rows::signing_key_row).collect()
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute_cached(sql::SIGNING_KEY_DELETE, &[&kid])
            .await?
            > 0)
    }
}
