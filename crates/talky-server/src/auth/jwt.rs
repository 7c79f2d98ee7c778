//! HS256 JSON Web Tokens (RFC 7519), just the subset Talky issues and accepts: the header
//! must say exactly `{"alg":"HS256"}` (any other `alg`, including `none`, is rejected before
//! the signature is checked), the signature is compared in constant time, and `exp`/`nbf`
//! hold with 60 s leeway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// Why a token was rejected. Callers show one message for all of them (A7).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong audience or issuer")]
    Claims,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// Time claims every token carries.
pub trait TimeClaims {
    fn exp(&self) -> i64;
    fn nbf(&self) -> Option<i64> {
        None
    }
}

/// A signing/verifying key.
#[derive(Clone)]
pub struct JwtKey(Vec<u8>);

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey(<redacted>)")
    }
}

impl JwtKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
        };
        let h = B64.encode(serde_json::to_vec(&header).expect("header serialises"));
        let c = B64.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{h}.{c}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies the token at `now` (unix seconds) and returns its claims.
    pub fn verify<C: DeserializeOwned + TimeClaims>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<C, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header =
            serde_json::from_slice(&B64.decode(h).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if header.alg != "HS256" {
            return Err(JwtError::Algorithm);
        }
        let sig = B64.decode(s).map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(c.as_bytes());
        mac.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
        let claims: C = serde_json::from_slice(&B64.decode(c).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
        if now > claims.exp() + LEEWAY_SECS {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.nbf() {
            if now + LEEWAY_SECS < nbf {
                return Err(JwtError::NotYetValid);
            }
        }
        Ok(claims)
    }
}

/// Claims of a session access token (A6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl TimeClaims for SessionClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> SessionClaims {
        SessionClaims {
            iss: "talky".into(),
            sub: "u".into(),
            sid: "s".into(),
            iat: 1000,
            exp,
            nbf: None,
        }
    }

    #[test]
    fn round_trip_and_expiry_with_leeway() {
        let k = JwtKey::new(&[7u8; 32]);
        let t = k.sign(&claims(2000));
        assert_eq!(k.verify::<SessionClaims>(&t, 1500).unwrap(), claims(2000));
        assert!(k.verify::<SessionClaims>(&t, 2060).is_ok());
        assert_eq!(k.verify::<SessionClaims>(&t, 2061), Err(JwtError::Expired));
    }

    #[test]
    fn rejects_other_keys_algorithms_and_tampering() {
        let k = JwtKey::new(&[7u8; 32]);
        let t = k.sign(&claims(2000));
        assert_eq!(
            JwtKey::new(&[8u8; 32]).verify::<SessionClaims>(&t, 1500),
            Err(JwtError::Signature)
        );
        let parts: Vec<&str> = t.split('.').collect();
        let none_header = B64.encode(br#"{"alg":"none"}"#);
        let forged = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            k.verify::<SessionClaims>(&forged, 1500),
            Err(JwtError::Algorithm)
        );
        let other = B64.encode(serde_json::to_vec(&claims(9999)).unwrap());
        let tampered = format!("{}.{other}.{}", parts[0], parts[2]);
        assert_eq!(
            k.verify::<SessionClaims>(&tampered, 1500),
            Err(JwtError::Signature)
        );
        assert_eq!(
            k.verify::<SessionClaims>("a.b", 1500),
            Err(JwtError::Malformed)
        );
    }
}
