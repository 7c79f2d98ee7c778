//! The media socket `WS /api/v1/ws/voice/{call_id}?token=…` (Vonage media protocol,
//! P§2.9) and `POST /campaigns/{id}/test-call`, which creates a test call and hands out
//! the socket URL with its per-call token so any client speaking the protocol can be the
//! caller.
//!
//! Authentication happens before anything else (F10): no token or a bad one → the socket
//! is closed with 1008 at once, without touching the database; tenant and call come only
//! from the verified claims; a second socket for a call with a running session is closed
//! (1008); at most `media.max_pending_sockets` upgrades may be authenticating at a time.

use super::sink::PersistSink;
use crate::auth::media;
use crate::auth::TenantCtx;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath};
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use talky_core::ports::store::{NewCall, SessionCall};
use talky_core::rules::{Disclosure, RecordingPolicy};
use talky_core::{CallId, CampaignId};
use talky_voice::session::{
    spawn_session, DisclosureConfig, EndReason, Inbound, Outbound, RecordingMode, SessionConfig,
    SessionDeps,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(test_call))
        .route("/ws/voice/{call_id}", axum::routing::get(voice_socket))
}

#[derive(Serialize, ToSchema)]
struct TestCallResponse {
    #[schema(value_type = String, format = Uuid)]
    call_id: CallId,
    /// The media socket URL including its token (valid 300 s).
    ws_url: String,
    expires_at: String,
}

/// Outbound messages gathered into one socket write at most (see the writer in `run_socket`).
const MAX_FRAMES_PER_WRITE: usize = 25;
/// tungstenite writes through once its buffer exceeds this; sized for a gathered burst.
const WRITE_BATCH_BYTES: usize = MAX_FRAMES_PER_WRITE * 660;

/// Starts a test call of the campaign's agent without a carrier.
#[utoipa::path(operation_id = "voice_test_call", post, path = "/campaigns/{campaign_id}/test-call", tag = "voice", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    description = "Creates a call flagged as a test call and returns the media socket URL with its token. Connect with the Vonage media protocol (JSON text events, 640-byte s16le 16 kHz binary frames) to talk to the agent.",
    responses((status = 200, body = TestCallResponse), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn test_call(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(campaign_id): ApiPath<CampaignId>,
) -> ApiResult<ApiJson<TestCallResponse>> {
    state
        .store
        .get_campaign(t.tenant_id, campaign_id)
        .await
        .or_not_found("Campaign not found")?;
    let now = state.clock.now();
    let mut call = NewCall::new("test", now);
    call.campaign_id = Some(campaign_id);
    call.is_test = true;
    call.provider = Some("test".into());
    let call_id = state
        .store
        .insert_call(t.tenant_id, call)
        .await
        .or_not_found("Campaign not found")?;
    let (token, claims) = media::mint(
        &state.media_key,
        t.tenant_id,
        call_id,
        None,
        now.timestamp(),
    );
    let base = state
        .public_url
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    Ok(ApiJson(TestCallResponse {
        call_id,
        ws_url: format!("{base}/api/v1/ws/voice/{call_id}?token={token}"),
        expires_at: crate::time::rfc3339(
            chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
        ),
    }))
}

#[derive(Deserialize)]
struct SocketQuery {
    token: Option<String>,
}

/// Decrements the pending-socket count when dropped.
struct PendingGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn voice_socket(
    State(state): State<SharedState>,
    ApiPath(call_id): ApiPath<CallId>,
    Query(q): Query<SocketQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let pending = state.pending_sockets.fetch_add(1, Ordering::AcqRel);
    let guard = PendingGuard(state.pending_sockets.clone());
    if pending >= state.config.media.max_pending_sockets {
        return Err(ApiError::unavailable(
            "Too many media sockets awaiting authentication",
        ));
    }
    // Small buffers: every live call holds this socket (see `talky_providers` on the same
    // choice for the provider sockets); media messages are 640-byte frames and short JSON.
    Ok(ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_message_size(256 * 1024)
        .on_upgrade(move |socket| run_socket(state, socket, call_id, q.token, guard)))
}

async fn close_policy(mut socket: WebSocket, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: reason.into(),
        })))
        .await;
}

fn session_config(call: &SessionCall, policy: &RecordingPolicy, spool: PathBuf) -> SessionConfig {
    let agent = call.agent_name.clone().unwrap_or_else(|| "Alex".into());
    let company = call
        .company_name
        .clone()
        .unwrap_or_else(|| "our team".into());
    let opener = call
        .opener
        .clone()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| {
            talky_voice::text::opener::render_opener(&agent, &company, call.call_reason.as_deref())
        });
    let mut cfg = SessionConfig::new(call.call_id.to_string(), call.system_prompt.clone(), opener);
    cfg.agent_name = agent;
    cfg.company_name = company;
    cfg.voice_id = call.voice_id.clone();
    cfg.language = Some(call.language.clone());
    cfg.keyterms = call.key_terms.clone();
    cfg.max_call_seconds = call.max_call_seconds.max(60) as u64;
    cfg.disclosure = DisclosureConfig {
        required: policy.enabled && policy.disclosure == Disclosure::Required,
        text: policy.notice_text.clone(),
    };
    cfg.recording = match (policy.enabled, policy.channels) {
        (false, _) => RecordingMode::Off,
        (true, 2) => RecordingMode::Stereo,
        (true, _) => RecordingMode::Mono,
    };
    cfg.recording_spool = spool;
    // A carrier call is hung up through the Telephony port when the agent ends it (G25); a
    // test call has no carrier leg and simply closes.
    cfg.carrier_call = if call.is_test {
        None
    } else {
        call.carrier.clone()
    };
    cfg
}

async fn run_socket(
    state: SharedState,
    socket: WebSocket,
    call_id: CallId,
    token: Option<String>,
    pending: PendingGuard,
) {
    let now = state.clock.now();
    let Some(claims) =
        token.and_then(|t| media::verify(&state.media_key, &t, call_id, now.timestamp()).ok())
    else {
        tracing::warn!(%call_id, "media socket without a valid token; closing");
        return close_policy(socket, "invalid media token").await;
    };
    let tenant = claims.tenant_id;
    let first = {
        let mut live = state.live_calls.lock().unwrap_or_else(|p| p.into_inner());
        match live.entry(call_id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(None);
                true
            }
        }
    };
    if !first {
        tracing::warn!(%call_id, "second media socket for a live call; closing");
        return close_policy(socket, "call already has a session").await;
    }
    let release = LiveGuard {
        state: state.clone(),
        call_id,
    };
    let call = match state.store.session_call(tenant, call_id).await {
        Ok(c) if c.status.is_live() => c,
        Ok(_) => return close_policy(socket, "call is not live").await,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "media socket for an unknown call");
            return close_policy(socket, "unknown call").await;
        }
    };
    // A token minted for one carrier leg does not open a session for another.
    if let (Some(minted), Some(carrier)) = (&claims.provider_call_id, &call.carrier) {
        if *minted != carrier.provider_call_id {
            tracing::warn!(%call_id, "media token names another carrier leg; closing");
            return close_policy(socket, "token is for another carrier leg").await;
        }
    }
    drop(pending);
    let policy: RecordingPolicy =
        serde_json::from_value(call.recording_policy.clone()).unwrap_or_default();
    let config = session_config(&call, &policy, state.config.data_dir.join("spool"));
    let deps = SessionDeps {
        stt: state.voice.stt.clone(),
        llm: state.voice.llm.clone(),
        tts: state.voice.tts.clone(),
        telephony: state.telephony.clone(),
        sink: Arc::new(PersistSink {
            store: state.store.clone(),
            recordings: state.recordings.clone(),
            tenant,
            campaign: call.campaign_id,
            call: call_id,
        }),
        clock: state.clock.clone(),
        observer: None,
    };
    state.active_sessions.fetch_add(1, Ordering::AcqRel);
    let mut handle = spawn_session(config, deps, &state.shutdown);
    if let Some(slot) = state
        .live_calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(&call_id)
    {
        *slot = Some(handle.inbound.clone());
    }
    tracing::info!(%call_id, tenant_id = %tenant, test = call.is_test, "voice session started");
    let (mut tx, mut rx) = socket.split();
    let writer = async {
        let message = |out: Outbound| match out {
            Outbound::Audio(b) => Message::Binary(b),
            Outbound::Text(t) => Message::Text(t.into()),
        };
        'socket: while let Some(out) = handle.outbound.recv().await {
            // Whatever else is already queued (the pacer's burst at the start of a line)
            // goes out in the same write; in steady state that is one frame per flush.
            if tx.feed(message(out)).await.is_err() {
                break;
            }
            for _ in 1..MAX_FRAMES_PER_WRITE {
                match handle.outbound.try_recv() {
                    Ok(more) => {
                        if tx.feed(message(more)).await.is_err() {
                            break 'socket;
                        }
                    }
                    Err(_) => break,
                }
            }
            if tx.flush().await.is_err() {
                break;
            }
        }
        let _ = tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "call ended".into(),
            })))
            .await;
    };
    let inbound = handle.inbound.clone();
    let store = state.store.clone();
    let clock = state.clock.clone();
    let reader = async move {
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    let event = Inbound::from_text(t.as_str());
                    if matches!(event, Inbound::Connected { .. }) {
                        let (store, clock) = (store.clone(), clock.clone());
                        tokio::spawn(async move {
                            if let Err(e) = store
                                .mark_call_connected(tenant, call_id, clock.now())
                                .await
                            {
                                tracing::error!(%call_id, error = %e, "could not mark call connected");
                            }
                        });
                    }
                    inbound.send(event);
                }
                Ok(Message::Binary(b)) => {
                    inbound.send(Inbound::from_binary(b));
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        inbound.closed();
    };
    // The writer ends when the session has ended (after persisting); the reader may still
    // wait for a peer that never closes, so it is stopped then.
    let reader = tokio::spawn(reader);
    writer.await;
    reader.abort();
    match (&mut handle.join).await {
        Ok(end) => {
            tracing::info!(%call_id, reason = end.end_reason.as_str(), turns = end.turn_count, "voice session ended")
        }
        Err(e) => tracing::error!(%call_id, error = %e, "voice session task failed"),
    }
    state.active_sessions.fetch_sub(1, Ordering::AcqRel);
    drop(release);
    let _ = state.session_ended.send(call_id);
}

/// Ends the session of `call_id` running in this process, if any (E9: campaign stop).
/// Returns whether there was one.
pub fn stop_local_session(state: &SharedState, call_id: CallId) -> bool {
    let inbound = state
        .live_calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&call_id)
        .cloned()
        .flatten();
    match inbound {
        Some(inbound) => inbound.send(Inbound::Stop(EndReason::CampaignStopped)),
        None => false,
    }
}

/// Removes the call from the live set when the socket task ends.
struct LiveGuard {
    state: SharedState,
    call_id: CallId,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.state
            .live_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.call_id);
    }
}
