//! What a finished session hands to persistence (behaviour H6–H10, I2, J1–J2).
//!
//! Every end path — caller hang-up, agent end, stop, socket error, provider failure, maximum
//! duration, shutdown — produces exactly one [`SessionReport`] and passes it to the
//! [`SessionSink`] (H8). Apart from spooling the recording to local files (on the blocking
//! pool, see `recorder`), the session does no I/O of its own: the server's sink writes the
//! transcript, moves the recording into the `RecordingStore` (or marks it discarded),
//! finalises the call and applies opt-out → DNC, in the H9 order.

use async_trait::async_trait;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Why the call ended (I2 `end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The caller hung up (the socket closed without Talky asking).
    CallerHangup,
    /// The agent ended the call (tool, envelope, process shutdown).
    AgentEnd,
    /// Nobody answered the nudges, or no caller turn within the G23 bounds.
    NoResponse,
    /// The session reached `max_call_seconds` (G24).
    MaxDuration,
    /// The caller opted out (I4).
    OptOut,
    /// The campaign was stopped while the call was live.
    CampaignStopped,
    /// A provider failure the session could not recover from.
    Error,
}

impl EndReason {
    /// The stored text value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::AgentEnd => "agent_end",
            EndReason::NoResponse => "no_response",
            EndReason::MaxDuration => "max_duration",
            EndReason::OptOut => "opt_out",
            EndReason::CampaignStopped => "campaign_stopped",
            EndReason::Error => "error",
        }
    }
}

/// Author of a transcript turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnRole {
    /// The person on the phone.
    User,
    /// The agent.
    Assistant,
}

/// One transcript turn (H6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptTurn {
    /// Who spoke.
    pub role: TurnRole,
    /// What was said (assistant: delivered sentences only, G11).
    pub content: String,
    /// When (UTC).
    pub timestamp: DateTime<Utc>,
    /// Mean word confidence 0–1 (user turns only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// `Some(true)` on assistant turns cut off by the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<bool>,
}

/// Transcript metrics (H6).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TranscriptMetrics {
    /// Number of turns.
    pub turn_count: usize,
    /// Words over all turns (whitespace split).
    pub word_count: usize,
    /// Words in user turns.
    pub user_word_count: usize,
    /// Words in assistant turns.
    pub assistant_word_count: usize,
    /// `User: …` / `Assistant: …` lines joined by `\n`.
    pub full_text: String,
}

impl TranscriptMetrics {
    /// Computes the metrics of `turns`.
    pub fn of(turns: &[TranscriptTurn]) -> Self {
        let mut m = TranscriptMetrics {
            turn_count: turns.len(),
            ..Default::default()
        };
        let mut lines = Vec::with_capacity(turns.len());
        for t in turns {
            let words = t.content.split_whitespace().count();
            m.word_count += words;
            match t.role {
                TurnRole::User => {
                    m.user_word_count += words;
                    lines.push(format!("User: {}", t.content));
                }
                TurnRole::Assistant => {
                    m.assistant_word_count += words;
                    lines.push(format!("Assistant: {}", t.content));
                }
            }
        }
        m.full_text = lines.join("\n");
        m
    }
}

/// The recording decision (H1–H5, H10).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordingResult {
    /// Recording is off for this tenant/call.
    Disabled,
    /// Recorded but must not be kept (H5: disclosure not delivered): no object, row
    /// `discarded`.
    Discarded {
        /// Why.
        reason: String,
    },
    /// A complete WAV file (P§1.6), 16 kHz s16le, in the session's spool directory. The sink
    /// moves it into storage (or removes it).
    Wav {
        /// The file, header included.
        path: PathBuf,
        /// Its size in bytes.
        size_bytes: u64,
        /// 1 (mono mix) or 2 (left caller, right agent).
        channels: u16,
        /// Always 16000.
        sample_rate: u32,
        /// Length of the audio.
        duration_seconds: f64,
    },
    /// Recording was wanted but the file could not be produced (spool write failed); the
    /// row is marked `failed`.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// Facts for outcome resolution (I2–I4).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct OutcomeHints {
    /// The caller opted out (I4). Survives any later interruption or error.
    pub opted_out: bool,
    /// `mark_goal` result, if the agent called it.
    pub goal_achieved: Option<bool>,
    /// `mark_goal` detail.
    pub goal_detail: Option<String>,
    /// The agent recorded a callback request.
    pub callback_requested: bool,
    /// When the caller wants the callback.
    pub callback_when: Option<String>,
    /// The `outcome` argument of `end_call`, if the agent ended the call.
    pub end_call_outcome: Option<String>,
    /// The `reason` argument of `end_call`.
    pub end_call_reason: Option<String>,
    /// The session failed in a way that makes the outcome `agent_error` (I2) when no caller
    /// turn happened, or ended the call because of a provider failure.
    pub agent_error: bool,
    /// Accepted caller turns.
    pub caller_turns: u32,
    /// The recording notice was delivered (H5).
    pub disclosure_delivered: bool,
}

/// One J1 per-turn latency record. Millisecond fields are `None` when the checkpoint did not
/// happen (e.g. no TTS request because the reply was a fixed line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnLatency {
    /// End of caller speech.
    pub speech_end: DateTime<Utc>,
    /// End-of-turn event received − speech end.
    pub endpoint_delay_ms: Option<u64>,
    /// Final transcript available − speech end.
    pub stt_final_ms: Option<u64>,
    /// First LLM fragment − LLM request sent.
    pub llm_ttft_ms: Option<u64>,
    /// First complete sentence − LLM request sent.
    pub first_sentence_ms: Option<u64>,
    /// First TTS byte − TTS request sent.
    pub tts_ttfb_ms: Option<u64>,
    /// First frame written to the carrier − speech end (voice-to-voice).
    pub first_frame_ms: Option<u64>,
    /// A promoted speculative reply was used (always false: G12 is not implemented).
    pub speculative: bool,
}

/// J2 per-call counters.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SessionCounters {
    /// Inbound audio frames accepted.
    pub inbound_frames: u64,
    /// Outbound audio frames written.
    pub outbound_frames: u64,
    /// Inbound chunks refused or not 20 ms long.
    pub bad_inbound_chunks: u64,
    /// Inbound frames dropped by the full queue.
    pub dropped_inbound_frames: u64,
    /// Interrupts while the agent was audible.
    pub barge_ins: u64,
    /// `clear` actions sent.
    pub clears_sent: u64,
    /// Interrupt triggers with nothing audible.
    pub interrupts_not_audible: u64,
    /// Replies cancelled by a newer caller turn before any audio.
    pub interrupted_before_audio: u64,
    /// Largest lead over carrier playout (ms).
    pub max_outbound_lead_ms: u64,
    /// Outbound pacing lateness p99 (µs).
    pub pacing_jitter_p99_us: u64,
    /// Outbound pacing lateness maximum (µs).
    pub pacing_jitter_max_us: u64,
    /// STT reconnects.
    pub stt_reconnects: u64,
    /// STT watchdog trips (G19).
    pub watchdog_trips: u64,
    /// STT errors.
    pub stt_errors: u64,
    /// LLM deadline expiries.
    pub llm_timeouts: u64,
    /// Other LLM failures.
    pub llm_errors: u64,
    /// LLM streams without speakable text (G15 `provider_empty_stream`).
    pub empty_streams: u64,
    /// Recovery/apology lines spoken.
    pub recovery_lines: u64,
    /// TTS errors.
    pub tts_errors: u64,
    /// Audio conversion errors.
    pub conversion_errors: u64,
    /// Silence nudges spoken.
    pub nudges: u64,
    /// Transcripts suppressed as self-echo (G27).
    pub echo_suppressed: u64,
    /// Interrupts that turned out to be echo; the rest of the reply was spoken again (G27).
    pub echo_interrupts: u64,
    /// DTMF digits received.
    pub dtmf_digits: u64,
    /// Unparsable or unknown text messages from the carrier.
    pub bad_text_messages: u64,
    /// Outbound messages dropped because the socket writer stalled.
    pub outbound_dropped: u64,
}

/// A DTMF key press (G29).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DtmfRecord {
    /// The digit.
    pub digit: String,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// Press duration, when sent.
    pub duration_ms: Option<u64>,
}

/// An error recorded during the call (never secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionErrorRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// `stt`, `llm`, `tts`, `conversion`, `carrier`.
    pub source: &'static str,
    /// What happened.
    pub message: String,
}

/// Everything persistence needs about a finished call.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// Talky call id.
    pub call_id: String,
    /// When the session started (socket authenticated).
    pub started_at: DateTime<Utc>,
    /// `websocket:connected`, if it came.
    pub connected_at: Option<DateTime<Utc>>,
    /// When teardown ran.
    pub ended_at: DateTime<Utc>,
    /// Why it ended.
    pub end_reason: EndReason,
    /// Transcript turns (H6).
    pub turns: Vec<TranscriptTurn>,
    /// Transcript metrics (H6).
    pub metrics: TranscriptMetrics,
    /// Recording decision (H1–H5).
    pub recording: RecordingResult,
    /// Outcome facts (I2–I4).
    pub hints: OutcomeHints,
    /// J1 records.
    pub latencies: Vec<TurnLatency>,
    /// First agent frame − `websocket:connected` (J1).
    pub opener_ms: Option<u64>,
    /// J2 counters.
    pub counters: SessionCounters,
    /// DTMF key presses (G29).
    pub dtmf: Vec<DtmfRecord>,
    /// Errors, in order.
    pub errors: Vec<SessionErrorRecord>,
    /// Whether Talky asked the carrier to hang up (and whether that worked).
    pub hangup: HangupStatus,
}

/// What happened with the carrier hang-up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupStatus {
    /// Talky did not hang up (the caller did, or there is no carrier).
    #[default]
    NotRequested,
    /// The carrier accepted the hang-up.
    Done,
    /// The hang-up request failed (message).
    Failed(String),
}

/// Small summary returned by the session task's join handle (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd {
    /// Why it ended.
    pub end_reason: EndReason,
    /// Transcript turns.
    pub turn_count: usize,
    /// Opt-out flag.
    pub opted_out: bool,
}

/// Where a finished session goes (implemented by the server; fakes in tests).
#[async_trait]
pub trait SessionSink: Send + Sync + 'static {
    /// Called exactly once per session, on every end path, after the session stopped.
    async fn finished(&self, report: SessionReport);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_h6() {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let turns = vec![
            TranscriptTurn {
                role: TurnRole::Assistant,
                content: "Hi, it's Maya. Got a minute?".into(),
                timestamp: at,
                confidence: None,
                interrupted: None,
            },
            TranscriptTurn {
                role: TurnRole::User,
                content: "Sure".into(),
                timestamp: at,
                confidence: Some(0.9),
                interrupted: None,
            },
        ];
        let m = TranscriptMetrics::of(&turns);
        assert_eq!(m.turn_count, 2);
        assert_eq!(m.word_count, 7);
        assert_eq!(m.user_word_count, 1);
        assert_eq!(m.assistant_word_count, 6);
        assert_eq!(
            m.full_text,
            "Assistant: Hi, it's Maya. Got a minute?\nUser: Sure"
        );
        let json = serde_json::to_value(&turns[0]).unwrap();
        assert_eq!(json["role"], "assistant");
        assert!(json.get("confidence").is_none());
        assert_eq!(EndReason::CallerHangup.as_str(), "caller_hangup");
        assert_eq!(
            serde_json::to_value(EndReason::MaxDuration).unwrap(),
            "max_duration"
        );
    }
}
