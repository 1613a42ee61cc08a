//! Signing keys of the `idtoken` var source: generation, the private JWK they are stored
//! as, the public JWK they are published as, and JWS signatures.

use crate::config::idtoken::Algorithm;
use crate::db::SigningKeyRow;
use anyhow::{anyhow, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Upstream's RSA key size.
pub const RSA_BITS: usize = 4096;

/// Members of a JWK that are safe to publish.
const PUBLIC_MEMBERS: &[&str] = &["kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"];

enum Material {
    Rsa(Box<RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

pub struct SigningKey {
    pub kid: String,
    pub created_at: i64,
    material: Material,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn member(jwk: &Value, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("jwk has no {name}"))?;
    B64.decode(s).with_context(|| format!("jwk member {name}"))
}

impl SigningKey {
    /// A fresh key; RSA generation takes seconds, so callers run this on a blocking thread.
    pub fn generate(alg: Algorithm, created_at: i64) -> anyhow::Result<SigningKey> {
        let mut rng = rand::thread_rng();
        let material = match alg {
            Algorithm::Rs256 => Material::Rsa(Box::new(
                RsaPrivateKey::new(&mut rng, RSA_BITS).context("generating RSA key")?,
            )),
            Algorithm::Es256 => Material::Ec(p256::ecdsa::SigningKey::random(&mut rng)),
        };
        Ok(SigningKey {
            // Upstream's kids are random decimal numbers.
            kid: (rand::random::<u64>() >> 1).to_string(),
            created_at,
            material,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Rsa(_) => Algorithm::Rs256,
            Material::Ec(_) => Algorithm::Es256,
        }
    }

    pub fn public_jwk(&self) -> Value {
        let mut jwk = json!({
            "kty": self.algorithm().kty(),
            "kid": self.kid,
            "alg": self.algorithm().name(),
            "use": "sig",
        });
        match &self.material {
            Material::Rsa(k) => {
                jwk["n"] = b64(&k.n().to_bytes_be()).into();
                jwk["e"] = b64(&k.e().to_bytes_be()).into();
            }
            Material::Ec(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                jwk["crv"] = "P-256".into();
                jwk["x"] = b64(point.x().map(|x| x.as_slice()).unwrap_or_default()).into();
                jwk["y"] = b64(point.y().map(|y| y.as_slice()).unwrap_or_default()).into();
            }
        }
        jwk
    }

    /// The row stored in the database: the public JWK plus the private members (`d`, and
    /// for RSA the primes, from which everything else is recomputed on load).
    pub fn to_row(&self) -> SigningKeyRow {
        let mut jwk = self.public_jwk();
        match &self.material {
            Material::Rsa(k) => {
                jwk["d"] = b64(&k.d().to_bytes_be()).into();
                let primes: Vec<Value> = k
                    .primes()
                    .iter()
                    .map(|p| b64(&p.to_bytes_be()).into())
                    .collect();
                if let [p, q] = primes.as_slice() {
                    jwk["p"] = p.clone();
                    jwk["q"] = q.clone();
                }
            }
            Material::Ec(k) => jwk["d"] = b64(&k.to_bytes()).into(),
        }
        SigningKeyRow {
            kid: self.kid.clone(),
            kty: self.algorithm().kty().to_string(),
            jwk,
            created_at: self.created_at,
        }
    }

    pub fn from_row(row: &SigningKeyRow) -> anyhow::Result<SigningKey> {
        let jwk = &row.jwk;
        let big = |name: &str| member(jwk, name).map(|b| BigUint::from_bytes_be(&b));
        let material = match row.kty.as_str() {
            "RSA" => Material::Rsa(Box::new(
                RsaPrivateKey::from_components(
                    big("n")?,
                    big("e")?,
                    big("d")?,
                    vec![big("p")?, big("q")?],
                )
                .context("RSA key")?,
            )),
            "EC" => Material::Ec(
                p256::ecdsa::SigningKey::from_slice(&member(jwk, "d")?).context("EC key")?,
            ),
            other => return Err(anyhow!("unsupported key type {other}")),
        };
        Ok(SigningKey {
            kid: row.kid.clone(),
            created_at: row.created_at,
            material,
        })
    }

    /// The JWS signature of `message` (RS256: PKCS#1 v1.5; ES256: r || s, 64 bytes).
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        match &self.material {
            Material::Rsa(k) => k
                .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
                .context("RS256 signature"),
            Material::Ec(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                Ok(sig.to_bytes().to_vec())
            }
        }
    }
}

/// The publishable part of a stored private JWK.
pub fn public_part(jwk: &Value) -> Value {
    let mut out = Map::new();
    if let Some(m) = jwk.as_object() {
        for (k, v) in m {
            if PUBLIC_MEMBERS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}
