//! The `idtoken` var source: the ATC signs short-lived JWTs about a build's team and
//! pipeline, and publishes the keys that verify them at `/.well-known/jwks.json` so cloud
//! providers can trust them as OIDC tokens.
//!
//! Keys live in the database (shared by every web node, surviving restarts). One RSA and
//! one EC key are generated on first use; the newest key of a type signs. The lifecycle
//! loop rotates keys past the rotation period and deletes superseded ones once their
//! successor has been published for the grace period (upstream's defaults: 7 days, 1 day).

pub mod keys;
#[cfg(test)]
mod tests;
pub mod token;

use crate::config::idtoken::{Algorithm, IdTokenConfig};
use crate::db::{SigningKeyRow, Store};
use keys::SigningKey;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use token::TokenSubject;

pub const ROTATION_PERIOD_SECS: i64 = 7 * 24 * 3600;
pub const GRACE_PERIOD_SECS: i64 = 24 * 3600;
/// How often the lifecycle runs, and how stale a node's cached keys may get before a
/// build reloads them (another node may have rotated).
const CHECK_PERIOD: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Cached {
    keys: Vec<Arc<SigningKey>>,
    loaded_at: Option<Instant>,
}

/// A web node's cache of the signing keys; builds sign synchronously from it.
#[derive(Default)]
pub struct Signer {
    cached: RwLock<Cached>,
    /// One generation at a time on this node.
    generating: tokio::sync::Mutex<()>,
}

fn parse_rows(rows: &[SigningKeyRow]) -> Vec<Arc<SigningKey>> {
    rows.iter()
        .filter_map(|r| match SigningKey::from_row(r) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::warn!(kid = %r.kid, error = %e, "unusable signing key");
                None
            }
        })
        .collect()
}

async fn generate(store: &dyn Store, alg: Algorithm, now: i64) -> anyhow::Result<()> {
    tracing::info!(
        alg = alg.name(),
        "generating signing key for the idtoken var source"
    );
    let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg, now)).await??;
    store.create_signing_key(&key.to_row()).await?;
    Ok(())
}

impl Signer {
    fn newest(&self, alg: Algorithm) -> Option<Arc<SigningKey>> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        // Rows come oldest first.
        cached
            .keys
            .iter()
            .rev()
            .find(|k| k.algorithm() == alg)
            .cloned()
    }

    fn fresh(&self) -> bool {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        cached.loaded_at.is_some_and(|t| t.elapsed() < CHECK_PERIOD)
    }

    async fn reload(&self, store: &dyn Store) -> anyhow::Result<()> {
        let keys = parse_rows(&store.signing_keys().await?);
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Cached {
            keys,
            loaded_at: Some(Instant::now()),
        };
        Ok(())
    }

    /// Makes sure a key for each of `algs` is cached, generating missing ones.
    pub async fn ensure(&self, store: &dyn Store, algs: &[Algorithm]) -> anyhow::Result<()> {
        let have_all = |s: &Self| algs.iter().all(|a| s.newest(*a).is_some());
        if self.fresh() && have_all(self) {
            return Ok(());
        }
        let _one = self.generating.lock().await;
        self.reload(store).await?;
        for alg in algs {
            if self.newest(*alg).is_none() {
                generate(store, *alg, crate::clock::now()).await?;
            }
        }
        if !have_all(self) {
            self.reload(store).await?;
        }
        Ok(())
    }

    /// A signed token for `who`, from the newest cached key of the configured algorithm.
    pub fn token(
        &self,
        config: &IdTokenConfig,
        issuer: &str,
        who: &TokenSubject,
        now: i64,
    ) -> anyhow::Result<String> {
        let key = self.newest(config.algorithm).ok_or_else(|| {
            anyhow::anyhow!(
                "no {} signing key for the idtoken var source",
                config.algorithm.name()
            )
        })?;
        token::sign_jwt(&key, &token::claims(config, issuer, who, now))
    }
}

/// `/.well-known/jwks.json`: every stored key's public part.
pub fn jwks(rows: &[SigningKeyRow]) -> Value {
    let keys: Vec<Value> = rows.iter().map(|r| keys::public_part(&r.jwk)).collect();
    json!({ "keys": keys })
}

/// `/.well-known/openid-configuration` of an ATC whose issuer (external URL) is `issuer`.
pub fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "scopes_supported": ["openid"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "team", "pipeline", "job", "instance_vars"],
    })
}

/// One lifecycle pass: a key type whose newest key is older than `rotation` gets a new
/// key (0 turns rotation off); a key is deleted once a newer key of its type has been
/// around for `grace`, so verifiers had time to fetch the successor.
pub async fn rotate(store: &dyn Store, now: i64, rotation: i64, grace: i64) -> anyhow::Result<()> {
    let rows = store.signing_keys().await?;
    for kty in ["RSA", "EC"] {
        let of_type: Vec<&SigningKeyRow> = rows.iter().filter(|r| r.kty == kty).collect();
        let Some(newest) = of_type.iter().map(|r| r.created_at).max() else {
            continue;
        };
        if rotation > 0 && now - newest >= rotation {
            let alg = if kty == "RSA" {
                Algorithm::Rs256
            } else {
                Algorithm::Es256
            };
            generate(store, alg, now).await?;
        }
        for old in &of_type {
            let superseded = of_type
                .iter()
                .any(|n| n.created_at > old.created_at && now - n.created_at >= grace);
            if superseded {
                store.delete_signing_key(&old.kid).await?;
            }
        }
    }
    Ok(())
}

/// Runs [`rotate`] every check period until `shutdown`.
pub async fn run_lifecycle(store: Arc<dyn Store>, shutdown: tokio_util::sync::CancellationToken) {
    crate::atc::periodic::Periodic::every("idtoken key rotation", CHECK_PERIOD)
        .run(shutdown, |_| {
            let store = store.clone();
            async move {
                let now = crate::clock::now();
                rotate(store.as_ref(), now, ROTATION_PERIOD_SECS, GRACE_PERIOD_SECS).await
            }
        })
        .await
}
