//! The `idtoken` var source end to end on a real `concourse quickstart`: the corpus
//! fixture prints each token in two halves (a whole token would be redacted), the test
//! reassembles them and verifies them against the ATC's published OIDC discovery and JWKS
//! with its own verifier.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use common::{corpus_dir, stderr, stdout, Backend, Fly, Server};
use serde_json::{json, Value};

/// The value after `prefix` on the line of `out` that starts with it.
fn line_value(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in build output:\n{out}"))
        .trim()
        .to_string()
}

fn b64(s: &str) -> Vec<u8> {
    B64.decode(s)
        .unwrap_or_else(|e| panic!("base64url {s:?}: {e}"))
}

/// Verifies a compact JWS against the JWK of its `kid` in `jwks`; returns (header, claims).
fn verify(token: &str, jwks: &Value) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS: {token}");
    let header: Value = serde_json::from_slice(&b64(parts[0])).expect("header json");
    let claims: Value = serde_json::from_slice(&b64(parts[1])).expect("claims json");
    let signature = b64(parts[2]);
    let input = format!("{}.{}", parts[0], parts[1]);
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} not published in {jwks}", header["kid"]));
    assert_eq!(jwk["alg"], header["alg"]);
    assert_eq!(jwk["use"], json!("sig"));
    assert!(
        jwk.get("d").is_none(),
        "private key material published: {jwk}"
    );
    let member = |n: &str| b64(jwk[n].as_str().unwrap_or_else(|| panic!("jwk {n}")));
    match header["alg"].as_str() {
        Some("RS256") => {
            assert_eq!(jwk["kty"], json!("RSA"));
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&member("n")),
                rsa::BigUint::from_bytes_be(&member("e")),
            )
            .expect("RSA public key");
            let digest = <sha2::Sha256 as sha2::Digest>::digest(input.as_bytes());
            key.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &digest,
                &signature,
            )
            .expect("RS256 signature verifies");
        }
        Some("ES256") => {
            use p256::ecdsa::signature::Verifier;
            assert_eq!((&jwk["kty"], &jwk["crv"]), (&json!("EC"), &json!("P-256")));
            let (x, y) = (member("x"), member("y"));
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).expect("EC key");
            let sig = p256::ecdsa::Signature::from_slice(&signature).expect("r||s");
            key.verify(input.as_bytes(), &sig)
                .expect("ES256 signature verifies");
        }
        other => panic!("unexpected alg {other:?}"),
    }
    (header, claims)
}

fn aud_contains(claims: &Value, want: &str) -> bool {
    match &claims["aud"] {
        Value::String(s) => s == want,
        Value::Array(a) => a.iter().any(|v| v == want),
        _ => false,
    }
}

fn get_json(url: &str) -> Value {
    let resp = reqwest::blocking::get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 200, "GET {url}");
    resp.json().unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn print_creds_tokens_verify(backend: Backend) {
    let server = Server::quickstart(backend);
    let fly = Fly::new();
    fly.login(&server, "t");
    let fixture = corpus_dir().join("idtoken.yml");
    let fixture = fixture.to_string_lossy();
    fly.ok(&[
        "-t",
        "t",
        "set-pipeline",
        "-n",
        "-p",
        "idtoken",
        "-c",
        &fixture,
    ]);
    fly.ok(&["-t", "t", "unpause-pipeline", "-p", "idtoken"]);
    let before = concourse::clock::now();
    let out = fly.run(&["-t", "t", "trigger-job", "-j", "idtoken/print-creds", "-w"]);
    let log = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "print-creds failed:\n{log}");

    let default_token = line_value(&log, "D1:") + &line_value(&log, "D2:");
    let custom_token = line_value(&log, "C1:") + &line_value(&log, "C2:");

    let discovery = get_json(&server.api("/.well-known/openid-configuration"));
    assert_eq!(discovery["issuer"], json!(server.url));
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    assert_eq!(jwks_uri, server.api("/.well-known/jwks.json"));
    let jwks = get_json(jwks_uri);

    let (header, claims) = verify(&default_token, &jwks);
    assert_eq!(header["alg"], json!("RS256"), "the default algorithm");
    assert_eq!(claims["sub"], json!("main/idtoken"));
    let (header, custom) = verify(&custom_token, &jwks);
    assert_eq!(header["alg"], json!("ES256"));
    assert_eq!(custom["sub"], json!("main"), "subject_scope: team");

    for c in [&claims, &custom] {
        assert_eq!(c["iss"], json!(server.url));
        assert!(aud_contains(c, "sts.amazonaws.com"), "aud of {c}");
        assert_eq!(
            (&c["team"], &c["pipeline"]),
            (&json!("main"), &json!("idtoken"))
        );
        assert_eq!(c["job"], json!("print-creds"));
        let (iat, exp) = (
            c["iat"].as_i64().expect("iat"),
            c["exp"].as_i64().expect("exp"),
        );
        assert!(
            iat >= before - 5 && iat <= concourse::clock::now() + 5,
            "iat {iat}"
        );
        assert_eq!(exp - iat, 3600, "one hour, by default and as configured");
    }
}

#[test]
fn print_creds_tokens_verify_against_the_published_jwks_embedded() {
    print_creds_tokens_verify(Backend::Embedded);
}

#[test]
fn print_creds_tokens_verify_against_the_published_jwks_postgres() {
    let Some(backend) =
        Backend::postgres("print_creds_tokens_verify_against_the_published_jwks_postgres")
    else {
        return;
    };
    print_creds_tokens_verify(backend);
}
