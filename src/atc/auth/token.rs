//! Upstream's opaque access-token format: std base64 without padding of 20 random bytes
//! followed by the expiry as 8-byte little-endian Unix seconds. `fly targets` decodes the
//! expiry from this layout, so the format is part of the wire contract.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::RngCore;

pub fn generate(expires_at: i64) -> String {
    let mut bytes = [0u8; 28];
    rand::thread_rng().fill_bytes(&mut bytes[..20]);
    bytes[20..].copy_from_slice(&(expires_at as u64).to_le_bytes());
    STANDARD_NO_PAD.encode(bytes)
}

/// The expiry encoded in a token, or None when it is not in upstream's format.
pub fn expiry(token: &str) -> Option<i64> {
    let bytes = STANDARD_NO_PAD.decode(token).ok()?;
    if bytes.len() != 28 {
        return None;
    }
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&bytes[20..]);
    Some(u64::from_le_bytes(exp) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_38_chars_and_carry_their_expiry() {
        let t = generate(1_900_000_000);
        assert_eq!(t.len(), 38);
        assert_eq!(expiry(&t), Some(1_900_000_000));
        assert_ne!(generate(1), generate(1));
        assert_eq!(expiry("not a token"), None);
    }
}
