//! `/auth/*` (A2–A11): register, login, verify, me, logout, create-profile.
//!
//! Register and login never write account rows: they issue a magic link. The rows are
//! created when the link is verified, in the store's single redeem transaction, so there
//! is never an orphan tenant. Login answers the same whatever happens (A5), and sends its
//! mail from a background task so timing reveals nothing.

use crate::auth::jwt::SessionClaims;
use crate::auth::links::{hash_token, new_token};
use crate::auth::{Principal, ISSUER};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, ClientIp};
use crate::http::openapi::{DetailResponse, ErrorBody};
use crate::state::SharedState;
use crate::usage::tenant_minutes;
use axum::extract::State;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use talky_core::ports::mail::MailMessage;
use talky_core::ports::store::{LinkPayload, NewAuthLink, SessionContext, StoreError};
use talky_core::{Email, TenantId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(verify))
        .routes(routes!(me, update_me))
        .routes(routes!(logout))
        .routes(routes!(create_profile))
}

pub const LINK_SENT: &str = "Magic link sent to your email. Please check your inbox.";
pub const LOGIN_MESSAGE: &str =
    "If an account exists for this address, a sign-in link has been sent.";

/// Applies the per-IP limit of A13.
pub fn rate_limit(state: &SharedState, ip: &ClientIp) -> ApiResult<()> {
    let key =
        ip.0.map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
    state
        .auth_limiter
        .check(&key, state.clock.now().timestamp())
        .map_err(ApiError::too_many_requests)
}

fn parse_email(raw: &str) -> ApiResult<Email> {
    Email::parse(raw).map_err(|e| ApiError::validation("email", e.to_string()))
}

/// Issues a magic link for `email` and mails it, unless the address hit its hourly limit
/// (then nothing is sent and the caller answers as usual).
pub async fn issue_link(
    state: &SharedState,
    email: &Email,
    payload: LinkPayload,
    subject: &str,
    intro: &str,
) -> ApiResult<()> {
    let now = state.clock.now();
    let sent = state
        .store
        .count_links_since(email.as_str(), now - Duration::hours(1))
        .await?;
    if sent >= state.config.auth.link_rate_per_hour {
        tracing::info!("link mail rate limit reached for an address; not sending");
        return Ok(());
    }
    let token = new_token();
    state
        .store
        .create_auth_link(NewAuthLink {
            token_hash: hash_token(&token),
            email: email.as_str().to_string(),
            payload,
            created_at: now,
            expires_at: now + Duration::seconds(state.config.auth.link_ttl_secs),
        })
        .await?;
    let link = format!("{}/auth/verify?token={token}", state.public_url);
    let minutes = state.config.auth.link_ttl_secs / 60;
    let msg = MailMessage {
        to: email.as_str().to_string(),
        subject: subject.to_string(),
        text_body: format!("{intro}\n\nOpen this link to continue (valid for {minutes} minutes, usable once):\n{link}\n\nIf you did not ask for this, ignore this message.\n"),
        html_body: Some(format!(
            "<p>{intro}</p><p><a href=\"{link}\">Continue to Talky</a></p><p>The link is valid for {minutes} minutes and works once. If you did not ask for this, ignore this message.</p>"
        )),
        link: Some(link),
    };
    let mailer = state.mailer.clone();
    tokio::spawn(async move {
        if let Err(e) = mailer.send(msg).await {
            tracing::error!(error = %e, "sending magic-link mail failed");
        }
    });
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    business_name: String,
    #[serde(default = "default_plan")]
    plan_id: String,
    #[serde(default)]
    name: Option<String>,
}

fn default_plan() -> String {
    "basic".into()
}

#[derive(Serialize, ToSchema)]
struct RegisterResponse {
    #[schema(value_type = String, format = Uuid)]
    id: TenantId,
    email: String,
    business_name: String,
    role: &'static str,
    minutes_remaining: i64,
    message: &'static str,
}

#[utoipa::path(operation_id = "auth_register", post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 200, body = RegisterResponse), (status = 400, description = "Invalid plan_id / Email already registered", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn register(
    State(state): State<SharedState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<ApiJson<RegisterResponse>> {
    rate_limit(&state, &ip)?;
    let email = parse_email(&req.email)?;
    let business_name = req.business_name.trim().to_string();
    if business_name.is_empty() || business_name.chars().count() > 255 {
        return Err(ApiError::validation(
            "business_name",
            "must be 1 to 255 characters",
        ));
    }
    let name = req
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(ApiError::validation(
            "name",
            "must be at most 100 characters",
        ));
    }
    let plan = state
        .store
        .get_plan(&req.plan_id)
        .await?
        .ok_or_else(|| ApiError::bad_request("invalid_plan", "Invalid plan_id"))?;
    if state
        .store
        .find_user_by_email(email.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::bad_request(
            "email_registered",
            "Email already registered",
        ));
    }
    let tenant_id = TenantId::new();
    issue_link(
        &state,
        &email,
        LinkPayload::Register {
            tenant_id,
            business_name: business_name.clone(),
            plan_id: plan.id.clone(),
            name,
        },
        "Confirm your Talky account",
        &format!("Welcome to Talky! Confirm your e-mail address to create the account for {business_name}."),
    )
    .await?;
    Ok(ApiJson(RegisterResponse {
        id: tenant_id,
        email: email.to_string(),
        business_name,
        role: "owner",
        minutes_remaining: plan.minutes,
        message: LINK_SENT,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
struct LoginResponse {
    email: String,
    message: &'static str,
}

#[utoipa::path(operation_id = "auth_login", post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    description = "Always the same answer, whether or not the address has an account (A5).",
    responses((status = 200, body = LoginResponse), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<SharedState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    rate_limit(&state, &ip)?;
    let email = parse_email(&req.email)?;
    // Everything that depends on whether the account exists happens off the request path.
    let st = state.clone();
    let em = email.clone();
    tokio::spawn(async move {
        match st.store.find_user_by_email(em.as_str()).await {
            Ok(Some(user)) if user.is_active => {
                if let Err(e) = issue_link(
                    &st,
                    &em,
                    LinkPayload::Login,
                    "Your Talky sign-in link",
                    "Here is your sign-in link for Talky.",
                )
                .await
                {
                    tracing::error!(detail = %e.detail, "issuing login link failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "login lookup failed"),
        }
    });
    Ok(ApiJson(LoginResponse {
        email: email.to_string(),
        message: LOGIN_MESSAGE,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    token: String,
}

#[derive(Serialize, ToSchema)]
struct VerifyResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    user: MeResponse,
}

#[utoipa::path(operation_id = "auth_verify", post, path = "/auth/verify", tag = "auth", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = 401, description = "Invalid or expired link", body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn verify(
    State(state): State<SharedState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<ApiJson<VerifyResponse>> {
    rate_limit(&state, &ip)?;
    let invalid = || ApiError::unauthorized("Invalid or expired link");
    if req.token.len() != 43 {
        return Err(invalid());
    }
    let now = state.clock.now();
    let ttl = state.config.auth.session_ttl_secs;
    let redeemed = state
        .store
        .redeem_auth_link(&hash_token(&req.token), now, now + Duration::seconds(ttl))
        .await
        .map_err(|e| match e {
            StoreError::InvalidLink => invalid(),
            other => other.into(),
        })?;
    let claims = SessionClaims {
        iss: ISSUER.into(),
        sub: redeemed.context.user.id.to_string(),
        sid: redeemed.session.id.to_string(),
        iat: now.timestamp(),
        exp: now.timestamp() + ttl,
        nbf: None,
    };
    let access_token = state.jwt.sign(&claims);
    let user = me_response(&state, &redeemed.context).await?;
    Ok(ApiJson(VerifyResponse {
        access_token,
        token_type: "bearer",
        expires_in: ttl,
        user,
    }))
}

/// The A10 object.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    id: String,
    email: String,
    name: Option<String>,
    role: Option<&'static str>,
    tenant_id: Option<String>,
    business_name: Option<String>,
    plan_id: Option<String>,
    minutes_allocated: Option<i64>,
    minutes_used: Option<i64>,
    minutes_remaining: Option<i64>,
    minutes_unlimited: Option<bool>,
    is_platform_admin: bool,
}

pub async fn me_response(state: &SharedState, ctx: &SessionContext) -> ApiResult<MeResponse> {
    let mut resp = MeResponse {
        id: ctx.user.id.to_string(),
        email: ctx.user.email.clone(),
        name: ctx.user.name.clone(),
        role: None,
        tenant_id: None,
        business_name: None,
        plan_id: None,
        minutes_allocated: None,
        minutes_used: None,
        minutes_remaining: None,
        minutes_unlimited: None,
        is_platform_admin: ctx.user.is_platform_admin,
    };
    if let Some(m) = &ctx.membership {
        let minutes = tenant_minutes(state.store.as_ref(), &m.tenant, state.clock.now()).await?;
        resp.role = Some(m.role.as_str());
        resp.tenant_id = Some(m.tenant.id.to_string());
        resp.business_name = Some(m.tenant.business_name.clone());
        resp.plan_id = Some(m.tenant.plan_id.clone());
        resp.minutes_allocated = Some(minutes.minutes_allocated);
        resp.minutes_used = Some(minutes.minutes_used);
        resp.minutes_remaining = minutes.minutes_remaining;
        resp.minutes_unlimited = Some(minutes.minutes_unlimited);
    }
    Ok(resp)
}

#[utoipa::path(operation_id = "auth_me", get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<SharedState>, p: Principal) -> ApiResult<ApiJson<MeResponse>> {
    Ok(ApiJson(me_response(&state, &p.ctx).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMeRequest {
    name: String,
}

#[utoipa::path(operation_id = "auth_update_me", patch, path = "/auth/me", tag = "auth", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_me(
    State(state): State<SharedState>,
    p: Principal,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> ApiResult<ApiJson<MeResponse>> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation("name", "must be 1 to 100 characters"));
    }
    let user = state.store.update_user_name(p.ctx.user.id, name).await?;
    let mut ctx = p.ctx;
    ctx.user = user;
    Ok(ApiJson(me_response(&state, &ctx).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LogoutQuery {
    #[serde(default)]
    all: bool,
}

#[utoipa::path(operation_id = "auth_logout", post, path = "/auth/logout", tag = "auth", security(("bearer" = [])), params(LogoutQuery),
    responses((status = 200, body = DetailResponse), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<SharedState>,
    p: Principal,
    ApiQuery(q): ApiQuery<LogoutQuery>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let now = state.clock.now();
    if q.all {
        state.store.revoke_user_sessions(p.ctx.user.id, now).await?;
    } else {
        state.store.revoke_session(p.ctx.session_id, now).await?;
    }
    Ok(ApiJson(serde_json::json!({"detail": "Logged out"})))
}

#[utoipa::path(operation_id = "auth_create_profile", post, path = "/auth/create-profile", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = DetailResponse), (status = 401, body = ErrorBody)))]
async fn create_profile(
    State(state): State<SharedState>,
    p: Principal,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let created = state
        .store
        .mark_profile_created(p.ctx.user.id, state.clock.now())
        .await?;
    let detail = if created {
        "Profile created"
    } else {
        "Profile already exists"
    };
    Ok(ApiJson(serde_json::json!({ "detail": detail })))
}
