//! Signing keys of the `idtoken` var source: shared by every web node, oldest first.

use super::*;

fn key(kid: &str, kty: &str, created_at: i64) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.into(),
        kty: kty.into(),
        jwk: json!({"kid": kid, "kty": kty, "d": "secret"}),
        created_at,
    }
}

pub async fn signing_keys_are_listed_oldest_first_and_deleted_by_kid(h: &Harness) {
    let store = &h.store;
    assert!(store.signing_keys().await.unwrap().is_empty());
    store.create_signing_key(&key("2", "EC", 20)).await.unwrap();
    store
        .create_signing_key(&key("1", "RSA", 10))
        .await
        .unwrap();
    store
        .create_signing_key(&key("3", "RSA", 20))
        .await
        .unwrap();
    assert!(matches!(
        store.create_signing_key(&key("1", "EC", 30)).await,
        Err(StoreError::Conflict(_))
    ));

    // Another web node (or a restart) sees the same keys.
    let other = h.reopen().await;
    let keys = other.signing_keys().await.unwrap();
    assert_eq!(
        keys,
        vec![key("1", "RSA", 10), key("2", "EC", 20), key("3", "RSA", 20)]
    );

    assert!(store.delete_signing_key("1").await.unwrap());
    assert!(!store.delete_signing_key("1").await.unwrap());
    let kids: Vec<String> = other
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["2", "3"]);
}
