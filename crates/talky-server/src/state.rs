//! Shared application state handed to every handler.

use crate::auth::jwt::JwtKey;
use crate::auth::ratelimit::RateLimiter;
use crate::config::Config;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use talky_core::ports::mail::Mailer;
use talky_core::ports::recording::RecordingStore;
use talky_core::ports::store::Store;
use talky_core::ports::telephony::Telephony;
use talky_core::Clock;

/// Everything a request may need. Cheap to clone (`Arc`).
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    /// The carrier (simulated unless configured).
    pub telephony: Arc<dyn Telephony>,
    /// Where recording audio lives.
    pub recordings: Arc<dyn RecordingStore>,
    /// Speech-to-text, LLM and text-to-speech for voice sessions.
    pub voice: crate::voice::VoiceProviders,
    pub config: Arc<Config>,
    /// Session JWT key (A6).
    pub jwt: JwtKey,
    /// Per-call media token key (F9), distinct from the session key.
    pub media_key: JwtKey,
    /// register/login/verify per client IP (A13).
    pub auth_limiter: RateLimiter,
    /// Live voice sessions in this process (reported by `/health`).
    pub active_sessions: Arc<AtomicUsize>,
    /// Media sockets waiting for authentication (F10 cap).
    pub pending_sockets: Arc<AtomicUsize>,
    /// Calls with a socket in this process (a second socket is refused, F10), with the
    /// session's inbound handle once it runs (so a campaign stop can end it, E9).
    pub live_calls: std::sync::Mutex<
        std::collections::HashMap<talky_core::CallId, Option<talky_voice::session::InboundSender>>,
    >,
    /// Cancelled at shutdown: every voice session hangs up and persists (H8).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Announces each call whose voice session ended and was persisted.
    pub session_ended: tokio::sync::broadcast::Sender<talky_core::CallId>,
    /// `public_url` without a trailing slash.
    pub public_url: String,
}

pub type SharedState = Arc<AppState>;
