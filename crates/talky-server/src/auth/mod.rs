//! Authentication and authorization at the edge: session JWTs, magic-link tokens, rate
//! limits, and the extractors that turn a request into a principal (A6–A9, B1–B3).
//!
//! `Principal` checks the header shape before touching the database (A7), then requires the
//! token's session row to be live. `TenantCtx` derives the tenant from the session's
//! membership only — never from the request (B1) — and refuses a foreign `tenant_id` query
//! parameter (B2). `OwnerCtx` and `PlatformAdmin` add role checks.

pub mod jwt;
pub mod links;
pub mod media;
pub mod ratelimit;

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jwt::SessionClaims;
use talky_core::ids::{SessionId, TenantId};
use talky_core::model::Role;
use talky_core::ports::store::{SessionContext, Tenant};

/// Issuer of session tokens.
pub const ISSUER: &str = "talky";

/// An authenticated user with a live session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub ctx: SessionContext,
}

const MISSING: &str = "Authorization header missing";
const FORMAT: &str = "Invalid authorization header format. Use: Bearer <token>";
const INVALID: &str = "Invalid or expired token";

/// Returns the bearer token, or the A7 error for a missing or malformed header.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(MISSING))?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized(FORMAT))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized(FORMAT))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(ApiError::unauthorized(FORMAT));
    }
    Ok(token)
}

impl FromRequestParts<SharedState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let now = state.clock.now();
        let claims: SessionClaims = state
            .jwt
            .verify(token, now.timestamp())
            .map_err(|_| ApiError::unauthorized(INVALID))?;
        if claims.iss != ISSUER {
            return Err(ApiError::unauthorized(INVALID));
        }
        let sid: SessionId = claims
            .sid
            .parse()
            .map_err(|_| ApiError::unauthorized(INVALID))?;
        let ctx = state
            .store
            .session_context(sid, now)
            .await?
            .ok_or_else(|| ApiError::unauthorized(INVALID))?;
        if ctx.user.id.to_string() != claims.sub {
            return Err(ApiError::unauthorized(INVALID));
        }
        Ok(Principal { ctx })
    }
}

/// A principal acting inside their tenant.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub principal: Principal,
    pub tenant_id: TenantId,
    pub role: Role,
    pub tenant: Tenant,
}

/// B2: a `tenant_id` supplied by the client must be the caller's own.
pub fn check_tenant_param(supplied: Option<&str>, own: TenantId) -> Result<(), ApiError> {
    match supplied {
        None => Ok(()),
        Some(s) if s.parse::<TenantId>().ok() == Some(own) => Ok(()),
        Some(_) => Err(ApiError::forbidden("forbidden", "Forbidden")),
    }
}

impl FromRequestParts<SharedState> for TenantCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let Some(m) = principal.ctx.membership.clone() else {
            return Err(ApiError::forbidden(
                "tenant_required",
                "Tenant membership required",
            ));
        };
        let query = parts.uri.query().unwrap_or("");
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k == "tenant_id" {
                check_tenant_param(Some(&v), m.tenant.id)?;
            }
        }
        Ok(TenantCtx {
            tenant_id: m.tenant.id,
            role: m.role,
            tenant: m.tenant,
            principal,
        })
    }
}

/// A tenant owner (A9).
#[derive(Debug, Clone)]
pub struct OwnerCtx(pub TenantCtx);

impl FromRequestParts<SharedState> for OwnerCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let t = TenantCtx::from_request_parts(parts, state).await?;
        if t.role != Role::Owner {
            return Err(ApiError::forbidden(
                "owner_required",
                "Owner access required",
            ));
        }
        Ok(OwnerCtx(t))
    }
}

/// A platform administrator (A9, B6).
#[derive(Debug, Clone)]
pub struct PlatformAdmin(pub Principal);

impl FromRequestParts<SharedState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let p = Principal::from_request_parts(parts, state).await?;
        if !p.ctx.user.is_platform_admin {
            return Err(ApiError::forbidden(
                "admin_required",
                "Admin access required",
            ));
        }
        Ok(PlatformAdmin(p))
    }
}
