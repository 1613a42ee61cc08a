//! Checking a compact JWS (an OIDC provider's id token) against a JSON Web Key Set: RS256
//! and ES256, the algorithms providers sign id tokens with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::Value;

/// The header and claims of `token` when one key of `keys` (a JWKS's `keys`) signed it;
/// the key is picked by `kid` when the header names one.
pub fn verify(token: &str, keys: &[Value]) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("not a compact JWS (three dot-separated parts)".into());
    };
    let dec = |x: &str| B64.decode(x).map_err(|e| format!("bad base64url: {e}"));
    let header: Value = serde_json::from_slice(&dec(h)?).map_err(|e| format!("header: {e}"))?;
    let claims: Value = serde_json::from_slice(&dec(p)?).map_err(|e| format!("claims: {e}"))?;
    let (sig, input) = (dec(s)?, format!("{h}.{p}"));
    let alg = header["alg"].as_str().unwrap_or_default();
    let kid = header["kid"].as_str();
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|k| kid.is_none_or(|kid| k["kid"].as_str() == Some(kid)))
        .collect();
    if candidates.is_empty() {
        return Err(format!("no key {kid:?} in the provider's key set"));
    }
    let mut last = String::new();
    for key in candidates {
        match check(alg, key, input.as_bytes(), &sig) {
            Ok(()) => return Ok((header, claims)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn check(alg: &str, jwk: &Value, input: &[u8], sig: &[u8]) -> Result<(), String> {
    let member = |n: &str| {
        B64.decode(jwk[n].as_str().unwrap_or_default())
            .map_err(|e| format!("key member {n}: {e}"))
    };
    match alg {
        "RS256" => {
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&member("n")?),
                rsa::BigUint::from_bytes_be(&member("e")?),
            )
            .map_err(|e| e.to_string())?;
            let digest = <sha2::Sha256 as sha2::Digest>::digest(input);
            key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, sig)
                .map_err(|_| "signature does not verify".to_string())
        }
        "ES256" => {
            use p256::ecdsa::signature::Verifier;
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("not a P-256 key".into());
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let key =
                p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(|e| e.to_string())?;
            let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|e| e.to_string())?;
            key.verify(input, &sig)
                .map_err(|_| "signature does not verify".to_string())
        }
        other => Err(format!("unsupported signing algorithm {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        /// Whatever arrives as a token, verification answers (no panic) and accepts
        /// nothing unsigned.
        #[test]
        fn arbitrary_tokens_are_refused_without_panicking(
            h in "[A-Za-z0-9_.-]{0,40}",
            alg in prop_oneof![Just("RS256"), Just("ES256"), Just("none"), Just("HS256")],
        ) {
            let header = B64.encode(json!({"alg": alg, "kid": "k"}).to_string());
            let claims = B64.encode(b"{}");
            let keys = [json!({"kid": "k", "kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                        json!({"kid": "k", "kty": "EC", "x": h.clone(), "y": h.clone()})];
            let token = format!("{header}.{claims}.{h}");
            prop_assert!(verify(&token, &keys).is_err());
            prop_assert!(verify(&h, &keys).is_err());
        }
    }
}
