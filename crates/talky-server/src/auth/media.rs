//! Per-call media tokens (F9–F10): HS256 JWTs signed with `media.token_secret` (never the
//! session key), audience `talky-media`, valid 300 s. The answer webhook (or the test-call
//! route) mints one; the media socket accepts a connection only with a token whose
//! `call_id` equals the path's, and takes tenant and call identity from the claims alone.

use super::jwt::{JwtError, JwtKey, TimeClaims};
use serde::{Deserialize, Serialize};
use talky_core::{CallId, TenantId};

pub const MEDIA_AUDIENCE: &str = "talky-media";
pub const MEDIA_TOKEN_TTL_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaClaims {
    pub aud: String,
    pub call_id: CallId,
    pub tenant_id: TenantId,
    pub provider_call_id: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl TimeClaims for MediaClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Mints a token for `call_id` at unix time `now`.
pub fn mint(
    key: &JwtKey,
    tenant_id: TenantId,
    call_id: CallId,
    provider_call_id: Option<String>,
    now: i64,
) -> (String, MediaClaims) {
    let claims = MediaClaims {
        aud: MEDIA_AUDIENCE.into(),
        call_id,
        tenant_id,
        provider_call_id,
        iat: now,
        exp: now + MEDIA_TOKEN_TTL_SECS,
        jti: uuid::Uuid::new_v4().simple().to_string(),
    };
    (key.sign(&claims), claims)
}

/// Verifies a token for the socket of `path_call_id` at unix time `now`.
pub fn verify(
    key: &JwtKey,
    token: &str,
    path_call_id: CallId,
    now: i64,
) -> Result<MediaClaims, JwtError> {
    let claims: MediaClaims = key.verify(token, now)?;
    if claims.aud != MEDIA_AUDIENCE || claims.call_id != path_call_id {
        return Err(JwtError::Claims);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_audience_call_and_expiry() {
        let key = JwtKey::new(&[1u8; 32]);
        let (tenant, call) = (TenantId::new(), CallId::new());
        let (token, claims) = mint(&key, tenant, call, None, 1_000);
        assert_eq!(verify(&key, &token, call, 1_100).unwrap(), claims);
        assert_eq!(
            verify(&key, &token, CallId::new(), 1_100),
            Err(JwtError::Claims)
        );
        assert_eq!(
            verify(&key, &token, call, 1_000 + 300 + 61),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify(&JwtKey::new(&[2u8; 32]), &token, call, 1_100),
            Err(JwtError::Signature)
        );
        // A session token is not a media token.
        let session = key.sign(&crate::auth::jwt::SessionClaims {
            iss: "talky".into(),
            sub: "u".into(),
            sid: "s".into(),
            iat: 1_000,
            exp: 2_000,
            nbf: None,
        });
        assert!(verify(&key, &session, call, 1_100).is_err());
    }
}
