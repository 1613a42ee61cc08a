//! Signing and verifying against the published JWK, claims per subject scope, and the key
//! lifecycle on an embedded store.

use super::keys::SigningKey;
use super::token::TokenSubject;
use super::*;
use crate::config::idtoken::SubjectScope;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::json;
use std::sync::OnceLock;

/// RSA generation takes a while; the tests share one key.
fn rsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::Rs256, 100).expect("RSA key"))
}

/// Checks a compact JWS against a public JWK with the verifier OIDC logins use (it shares
/// nothing with [`SigningKey`]) and returns its header and claims.
fn verify(token: &str, jwk: &Value) -> Result<(Value, Value), String> {
    crate::atc::auth::jws::verify(token, std::slice::from_ref(jwk))
}

fn who() -> TokenSubject {
    TokenSubject {
        team: "main".into(),
        pipeline: "my/pipe".into(),
        instance_vars: Some(
            json!({"branch": "dev", "n": {"x": 1}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
        job: "build".into(),
    }
}

fn config(scope: SubjectScope, alg: Algorithm, audience: &[&str]) -> IdTokenConfig {
    IdTokenConfig {
        audience: audience.iter().map(|s| s.to_string()).collect(),
        subject_scope: scope,
        expires_in_secs: 3600,
        algorithm: alg,
    }
}

#[test]
fn tokens_of_both_algorithms_verify_with_their_public_jwk() {
    let ec = SigningKey::generate(Algorithm::Es256, 100).unwrap();
    for key in [rsa_key(), &ec] {
        let claims = token::claims(
            &config(SubjectScope::Pipeline, key.algorithm(), &["a"]),
            "https://ci",
            &who(),
            1000,
        );
        let jwt = token::sign_jwt(key, &claims).unwrap();
        let jwk = key.public_jwk();
        let (header, got) = verify(&jwt, &jwk).expect("verifies");
        assert_eq!(header["kid"], json!(key.kid));
        assert_eq!(header["alg"], json!(key.algorithm().name()));
        assert_eq!(got, claims);
        assert!(
            jwk.get("d").is_none(),
            "the public JWK holds no private part"
        );

        // Tampering breaks the signature; another key does not verify it.
        let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
        parts[1] = B64.encode(br#"{"sub":"main"}"#);
        assert!(verify(&parts.join("."), &jwk).is_err());
        let other = SigningKey::generate(Algorithm::Es256, 100)
            .unwrap()
            .public_jwk();
        if key.algorithm() == Algorithm::Es256 {
            assert!(verify(&jwt, &other).is_err());
        }
    }
}

#[test]
fn keys_survive_the_database_round_trip() {
    let ec = SigningKey::generate(Algorithm::Es256, 7).unwrap();
    for key in [rsa_key(), &ec] {
        let row = key.to_row();
        assert_eq!(row.kty, key.algorithm().kty());
        assert!(row.jwk.get("d").is_some());
        let back = SigningKey::from_row(&row).expect("loads");
        assert_eq!(
            (back.kid.as_str(), back.created_at),
            (key.kid.as_str(), key.created_at)
        );
        assert_eq!(back.public_jwk(), key.public_jwk());
        assert_eq!(keys::public_part(&row.jwk), key.public_jwk());
        let jwt = token::sign_jwt(&back, &json!({"sub": "x"})).unwrap();
        verify(&jwt, &key.public_jwk()).expect("a reloaded key signs as the original");
    }
}

#[test]
fn claims_follow_the_subject_scope() {
    let c = token::claims(
        &config(
            SubjectScope::Pipeline,
            Algorithm::Rs256,
            &["sts.amazonaws.com"],
        ),
        "https://ci",
        &who(),
        1000,
    );
    assert_eq!(
        c,
        json!({
            "iss": "https://ci", "sub": "main/my%2Fpipe", "aud": "sts.amazonaws.com",
            "iat": 1000, "exp": 4600, "team": "main", "pipeline": "my/pipe", "job": "build",
            "instance_vars": {"branch": "dev", "n": {"x": 1}},
        })
    );
    let sub = |scope| who().subject(scope);
    assert_eq!(sub(SubjectScope::Team), "main");
    assert_eq!(
        sub(SubjectScope::Instance),
        "main/my%2Fpipe/branch:dev,n.x:1"
    );
    assert_eq!(
        sub(SubjectScope::Job),
        "main/my%2Fpipe/branch:dev,n.x:1/build"
    );

    let plain = TokenSubject {
        instance_vars: None,
        ..who()
    };
    let c = token::claims(
        &config(SubjectScope::Team, Algorithm::Es256, &["a", "b"]),
        "i",
        &plain,
        5,
    );
    assert_eq!(c["aud"], json!(["a", "b"]));
    assert_eq!(c["sub"], json!("main"));
    assert!(c.get("instance_vars").is_none());
    let c = token::claims(
        &config(SubjectScope::Team, Algorithm::Es256, &[]),
        "i",
        &plain,
        5,
    );
    assert!(c.get("aud").is_none());
}

#[test]
fn discovery_names_the_issuer_and_its_jwks() {
    let d = discovery("http://ci.example:8080");
    assert_eq!(d["issuer"], json!("http://ci.example:8080"));
    assert_eq!(
        d["jwks_uri"],
        json!("http://ci.example:8080/.well-known/jwks.json")
    );
}

#[tokio::test]
async fn keys_are_generated_once_rotated_and_retired() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::db::open_embedded(&dir.path().join("c.db"))
        .await
        .unwrap();
    // Seed the RSA key so the test does not wait for a 4096-bit generation.
    let mut seeded = rsa_key().to_row();
    seeded.created_at = crate::clock::now();
    store.create_signing_key(&seeded).await.unwrap();

    let signer = Signer::default();
    signer
        .ensure(store.as_ref(), &[Algorithm::Rs256, Algorithm::Es256])
        .await
        .unwrap();
    signer
        .ensure(store.as_ref(), &[Algorithm::Es256])
        .await
        .unwrap();
    let rows = store.signing_keys().await.unwrap();
    let mut types: Vec<&str> = rows.iter().map(|r| r.kty.as_str()).collect();
    types.sort();
    assert_eq!(types, ["EC", "RSA"], "one key of each type, made once");
    let ec = rows.iter().find(|r| r.kty == "EC").unwrap();
    let ec_kid = ec.kid.clone();

    let cfg = config(SubjectScope::Team, Algorithm::Es256, &["x"]);
    let jwt = signer.token(&cfg, "https://ci", &who(), 1).unwrap();
    let published = jwks(&rows);
    let jwk = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(ec_kid))
        .unwrap();
    verify(&jwt, jwk).expect("signed by the published EC key");

    // Within the rotation period nothing changes.
    let ec_created = ec.created_at;
    rotate(store.as_ref(), ec_created + 10, 100, 50)
        .await
        .unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    // Past it, both types get a successor; the old keys stay published for the grace period.
    let later = ec_created.max(seeded.created_at) + 100;
    rotate(store.as_ref(), later, 100, 50).await.unwrap();
    let rows = store.signing_keys().await.unwrap();
    assert_eq!(rows.len(), 4);
    // Once the successors are older than the grace period, the old keys go.
    let successors = rows.iter().map(|r| r.created_at).max().unwrap();
    rotate(store.as_ref(), successors + 60, 1000, 50)
        .await
        .unwrap();
    let left = store.signing_keys().await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left
        .iter()
        .all(|r| r.kid != ec_kid && r.kid != rsa_key().kid));
}
