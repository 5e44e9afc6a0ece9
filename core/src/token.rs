//! One-time secrets (docs/wire.md, "One-time tokens and SMS codes"): random URL tokens hashed at rest, JWT ids, SMS codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::hex::encode as hex;
use crate::ports::Random;

/// A verification token: 32 random bytes, base64url without padding (43 chars).
pub fn new_url_token(random: &dyn Random) -> String {
    let mut b = [0u8; 32];
    random.fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A JWT signing secret: 64 random bytes, base64url without padding (86 chars), as
/// regstack 0.9.3's `secrets.token_urlsafe(64)`.
pub fn new_jwt_secret(random: &dyn Random) -> String {
    let mut b = [0u8; 64];
    random.fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A JWT id: 16 random bytes, base64url without padding (22 chars).
pub fn new_jti(random: &dyn Random) -> String {
    let mut b = [0u8; 16];
    random.fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The at-rest form of a one-time secret: SHA-256 hex of the raw string.
pub fn hash_secret(raw: &str) -> String {
    hex(&Sha256::digest(raw.as_bytes()))
}

/// The at-rest form of a short secret (an SMS code): HMAC-SHA256 under a server key, hex. A
/// plain hash of six digits falls to a million guesses offline; the key keeps a leaked table
/// useless without the server's secret.
pub fn keyed_hash(key: &[u8], raw: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key length");
    mac.update(raw.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Compares two secrets (or their hashes) in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A uniform decimal code of `len` digits, zero-padded (rejection sampling, no modulo bias).
pub fn new_sms_code(random: &dyn Random, len: u32) -> String {
    let modulus = 10u64.pow(len.clamp(1, 18));
    let limit = u64::MAX - u64::MAX % modulus;
    loop {
        let mut b = [0u8; 8];
        random.fill(&mut b);
        let v = u64::from_le_bytes(b);
        if v < limit {
            return format!("{:0width$}", v % modulus, width = len as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    #[regstack_macros::dual_test]
    fn shapes() {
        let r = SeededRandom::new(1);
        let t = new_url_token(&r);
        assert_eq!(t.len(), 43);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(new_jti(&r).len(), 22);
        assert_ne!(new_url_token(&r), t);
        let code = new_sms_code(&r, 6);
        assert_eq!(code.len(), 6);
        assert!(code.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(secrets_equal("abc", "abc"));
        // SMS codes are keyed: not the plain SHA-256 of the digits (8d969eef…), which a leaked
        // table would give up by trying all million codes.
        assert_eq!(
            keyed_hash(b"key", "123456"),
            "4df81f55d708ae1720d5f65ef42f3475dc168fa23fde424ac5944f87c309b05f"
        );
        assert!(!secrets_equal("abc", "abd"));
    }
}
