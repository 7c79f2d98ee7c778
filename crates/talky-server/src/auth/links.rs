//! Magic-link tokens (A3): 32 CSPRNG bytes, base64url without padding (43 chars); only
//! their SHA-256 (hex) is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// What the database keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_43_chars_and_distinct() {
        let a = super::new_token();
        let b = super::new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(super::hash_token("abc").len(), 64);
        assert_eq!(
            super::hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
