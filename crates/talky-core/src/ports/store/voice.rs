//! What a voice session needs from persistence: the call it serves with the campaign
//! snapshot (G2), marking the call connected (F2), and finalising it at teardown (H8–H9),
//! including the opt-out → DNC step (H9.7, I4) in the same transaction. The J1/J2 records
//! written at teardown are read back by [`VoiceCallStore::call_metrics`].

use crate::ids::{CallId, CampaignId, LeadId, TenantId};
use crate::model::{CallStatus, Outcome};
use crate::ports::telephony::CarrierCall;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// The call and the campaign configuration a session snapshots at start (G2).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCall {
    pub call_id: CallId,
    pub tenant_id: TenantId,
    pub campaign_id: Option<CampaignId>,
    pub lead_id: Option<LeadId>,
    pub status: CallStatus,
    pub is_test: bool,
    pub to_number: String,
    pub answered_at: Option<DateTime<Utc>>,
    /// The carrier leg (provider + its call id) once the carrier created it; `None` for
    /// test calls. The session hangs up through it (G25).
    pub carrier: Option<CarrierCall>,
    pub lead_first_name: Option<String>,
    pub system_prompt: String,
    pub agent_name: Option<String>,
    pub company_name: Option<String>,
    pub call_reason: Option<String>,
    pub opener: Option<String>,
    pub goal: Option<String>,
    pub voice_id: Option<String>,
    pub language: String,
    pub max_call_seconds: i64,
    pub key_terms: Vec<String>,
    /// The tenant's recording policy JSON (`{}` = defaults).
    pub recording_policy: serde_json::Value,
}

/// How a session ended, written once at teardown.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEnd {
    pub ended_at: DateTime<Utc>,
    /// When the media socket connected, as the session saw it. Used as `answered_at` when
    /// the connect mark (F2) never landed (e.g. the database was unavailable then), so the
    /// call's duration and minutes are still right.
    pub connected_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    pub end_reason: String,
    pub opted_out: bool,
    pub goal_achieved: bool,
    pub goal_detail: Option<String>,
    /// J2 counters.
    pub counters: serde_json::Value,
}

/// One J1 per-turn latency record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnMetric {
    pub turn_index: i64,
    pub speech_end: Option<DateTime<Utc>>,
    pub endpoint_delay_ms: Option<i64>,
    pub stt_final_ms: Option<i64>,
    pub llm_ttft_ms: Option<i64>,
    pub first_sentence_ms: Option<i64>,
    pub tts_ttfb_ms: Option<i64>,
    pub first_frame_ms: Option<i64>,
    pub speculative: bool,
}

/// What teardown stored about a call's latency and health (J1, J2).
#[derive(Debug, Clone, PartialEq)]
pub struct CallMetrics {
    pub call_id: CallId,
    /// J2 counters as stored at teardown (the session also puts `opener_ms` here); `None`
    /// while the call has not been finalised.
    pub counters: Option<serde_json::Value>,
    /// J1 records ordered by `turn_index`; empty while the call has not been finalised.
    pub turns: Vec<TurnMetric>,
}

#[async_trait]
pub trait VoiceCallStore: Send + Sync {
    /// The call with its campaign snapshot; unknown/foreign → `NotFound`.
    async fn session_call(&self, tenant: TenantId, call: CallId) -> StoreResult<SessionCall>;

    /// F2: a connected media socket sets `in_progress` (only from a live status) and, if
    /// still empty, `answered_at`. Returns whether the row changed.
    async fn mark_call_connected(
        &self,
        tenant: TenantId,
        call: CallId,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Finalises the call once (a second call is a no-op returning `false`): `ended_at`,
    /// `duration_seconds` (0 when never answered, F7), outcome, end reason, goal and opt-out
    /// flags, counters, status `completed`; J1 records; and for an opt-out the number joins
    /// the tenant's DNC list and its active jobs in every campaign are ended `dnc`.
    async fn finish_session_call(
        &self,
        tenant: TenantId,
        call: CallId,
        end: SessionEnd,
        metrics: Vec<TurnMetric>,
    ) -> StoreResult<bool>;

    /// The call's J2 counters and J1 records (written together by
    /// [`finish_session_call`](Self::finish_session_call)); unknown/foreign → `NotFound`.
    async fn call_metrics(&self, tenant: TenantId, call: CallId) -> StoreResult<CallMetrics>;
}
