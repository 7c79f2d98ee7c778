//! Calls, transcripts and recording rows (behaviour.md H3, H4, H6, H7). The read side
//! serves `/calls` and `/recordings`; the write side is what the dialer and the voice
//! session use (and what tests use to make rows).

use crate::ids::{CallId, CampaignId, JobId, LeadId, RecordingId, TenantId};
use crate::model::{CallStatus, Outcome, UnknownValue};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::{Page, Paged, StoreResult};

/// Filters of `GET /calls` (H7). `from`/`to` are a half-open interval of instants on
/// `created_at`: the edge turns the inclusive dates into `[from 00:00, to + 1 day 00:00)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub status: Option<CallStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A call as `/calls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallListItem {
    pub id: CallId,
    pub created_at: DateTime<Utc>,
    pub to_number: String,
    pub status: CallStatus,
    pub duration_seconds: i64,
    pub outcome: Option<Outcome>,
}

/// A call as `/calls/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallDetail {
    pub id: CallId,
    pub created_at: DateTime<Utc>,
    pub to_number: String,
    pub status: CallStatus,
    pub duration_seconds: i64,
    pub outcome: Option<Outcome>,
    pub campaign_id: Option<CampaignId>,
    pub lead_id: Option<LeadId>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub summary: Option<String>,
    pub recording_id: Option<RecordingId>,
    /// The transcript's `full_text`, when a transcript exists.
    pub transcript: Option<String>,
    pub is_test: bool,
}

/// A call row to insert. [`NewCall::new`] gives an `initiated` call with no links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub id: CallId,
    pub campaign_id: Option<CampaignId>,
    pub lead_id: Option<LeadId>,
    pub job_id: Option<JobId>,
    pub to_number: String,
    pub from_number: Option<String>,
    pub provider: Option<String>,
    pub provider_call_id: Option<String>,
    pub status: CallStatus,
    pub outcome: Option<Outcome>,
    pub end_reason: Option<String>,
    pub attempt_number: i64,
    pub is_test: bool,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_seconds: i64,
    pub summary: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl NewCall {
    pub fn new(to_number: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        Self {
            id: CallId::new(),
            campaign_id: None,
            lead_id: None,
            job_id: None,
            to_number: to_number.into(),
            from_number: None,
            provider: None,
            provider_call_id: None,
            status: CallStatus::Initiated,
            outcome: None,
            end_reason: None,
            attempt_number: 1,
            is_test: false,
            answered_at: None,
            ended_at: None,
            duration_seconds: 0,
            summary: None,
            created_at,
        }
    }
}

/// Who spoke a transcript turn (H6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnRole {
    User,
    Assistant,
}

/// One turn of a transcript (H6), stored as JSON in `transcripts.turns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptTurn {
    pub role: TurnRole,
    pub content: String,
    /// RFC 3339 UTC.
    pub timestamp: DateTime<Utc>,
    /// User turns only: mean word confidence, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// True on assistant turns that were cut off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A transcript to save, with the H6 metrics. Build it with [`NewTranscript::from_turns`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewTranscript {
    pub turns: Vec<TranscriptTurn>,
    pub full_text: String,
    pub turn_count: i64,
    pub word_count: i64,
    pub user_word_count: i64,
    pub assistant_word_count: i64,
}

impl NewTranscript {
    /// H6: counts are whitespace-split words; `full_text` is one `User: …` /
    /// `Assistant: …` line per turn, joined by `\n`.
    pub fn from_turns(turns: Vec<TranscriptTurn>) -> Self {
        let (mut user, mut assistant) = (0i64, 0i64);
        let mut lines = Vec::with_capacity(turns.len());
        for t in &turns {
            let words = t.content.split_whitespace().count() as i64;
            let label = match t.role {
                TurnRole::User => {
                    user += words;
                    "User"
                }
                TurnRole::Assistant => {
                    assistant += words;
                    "Assistant"
                }
            };
            lines.push(format!("{label}: {}", t.content));
        }
        Self {
            full_text: lines.join("\n"),
            turn_count: turns.len() as i64,
            word_count: user + assistant,
            user_word_count: user,
            assistant_word_count: assistant,
            turns,
        }
    }
}

/// A stored transcript (H7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    pub call_id: CallId,
    pub turns: Vec<TranscriptTurn>,
    pub full_text: String,
    pub turn_count: i64,
    pub word_count: i64,
    pub user_word_count: i64,
    pub assistant_word_count: i64,
    pub created_at: DateTime<Utc>,
}

/// Lifecycle of a recording row (H3, H5, H10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    Pending,
    Completed,
    Failed,
    Discarded,
}

impl RecordingStatus {
    pub const ALL: &'static [RecordingStatus] = &[
        RecordingStatus::Pending,
        RecordingStatus::Completed,
        RecordingStatus::Failed,
        RecordingStatus::Discarded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RecordingStatus::Pending => "pending",
            RecordingStatus::Completed => "completed",
            RecordingStatus::Failed => "failed",
            RecordingStatus::Discarded => "discarded",
        }
    }
}

impl fmt::Display for RecordingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordingStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "recording status",
                value: s.to_string(),
            })
    }
}

/// A recording row to insert (H3). [`NewRecording::new`] gives a `pending` 16 kHz mono WAV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    pub id: RecordingId,
    pub call_id: CallId,
    /// The object key in the `RecordingStore` (H3).
    pub storage_path: String,
    pub duration_seconds: i64,
    pub file_size_bytes: i64,
    pub mime_type: String,
    pub channels: i64,
    pub sample_rate: i64,
    pub status: RecordingStatus,
    pub created_at: DateTime<Utc>,
}

impl NewRecording {
    pub fn new(
        call_id: CallId,
        storage_path: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: RecordingId::new(),
            call_id,
            storage_path: storage_path.into(),
            duration_seconds: 0,
            file_size_bytes: 0,
            mime_type: "audio/wav".into(),
            channels: 1,
            sample_rate: 16_000,
            status: RecordingStatus::Pending,
            created_at,
        }
    }
}

/// A change of a recording row once its object is written (or not): `None` keeps a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingUpdate {
    pub status: RecordingStatus,
    pub file_size_bytes: Option<i64>,
    pub duration_seconds: Option<i64>,
}

/// A recording row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    pub id: RecordingId,
    pub call_id: CallId,
    pub storage_path: String,
    pub duration_seconds: i64,
    pub file_size_bytes: i64,
    pub mime_type: String,
    pub channels: i64,
    pub sample_rate: i64,
    pub status: RecordingStatus,
    pub created_at: DateTime<Utc>,
}

/// A recording as `/recordings` lists it (H4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingListItem {
    pub id: RecordingId,
    pub call_id: CallId,
    pub created_at: DateTime<Utc>,
    pub duration_seconds: i64,
}

#[async_trait]
pub trait CallStore: Send + Sync {
    /// Inserts a call row. A `campaign_id` / `lead_id` / `job_id` that is not the tenant's
    /// → `NotFound`; a duplicate id or (provider, provider_call_id) → `Conflict`.
    async fn insert_call(&self, tenant: TenantId, call: NewCall) -> StoreResult<CallId>;

    async fn get_call(&self, tenant: TenantId, id: CallId) -> StoreResult<CallDetail>;

    /// H7: the tenant's calls, newest first.
    async fn list_calls(
        &self,
        tenant: TenantId,
        filter: CallFilter,
        page: Page,
    ) -> StoreResult<Paged<CallListItem>>;

    /// Saves (or replaces) the call's transcript. Unknown/foreign call → `NotFound`.
    async fn save_transcript(
        &self,
        tenant: TenantId,
        call: CallId,
        transcript: NewTranscript,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Unknown/foreign call → `NotFound` ("Call not found"); `Ok(None)` when the call has
    /// no transcript ("Transcript not found").
    async fn get_transcript(
        &self,
        tenant: TenantId,
        call: CallId,
    ) -> StoreResult<Option<Transcript>>;

    /// Inserts a recording row and links it from `calls.recording_id`, in one transaction.
    /// Unknown/foreign call → `NotFound`.
    async fn insert_recording(
        &self,
        tenant: TenantId,
        recording: NewRecording,
    ) -> StoreResult<RecordingId>;

    /// Sets a recording's status (and size/duration when given).
    async fn update_recording(
        &self,
        tenant: TenantId,
        id: RecordingId,
        update: RecordingUpdate,
    ) -> StoreResult<()>;

    /// H4: `completed` recordings, newest first, optionally of one call.
    async fn list_recordings(
        &self,
        tenant: TenantId,
        call: Option<CallId>,
        page: Page,
    ) -> StoreResult<Paged<RecordingListItem>>;

    /// One recording row of any status; the stream route serves only `completed` ones.
    async fn get_recording(&self, tenant: TenantId, id: RecordingId) -> StoreResult<Recording>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: TurnRole, content: &str) -> TranscriptTurn {
        TranscriptTurn {
            role,
            content: content.into(),
            timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            confidence: None,
            interrupted: false,
        }
    }

    #[test]
    fn transcript_metrics_follow_h6() {
        let t = NewTranscript::from_turns(vec![
            turn(TurnRole::Assistant, "Hi, this is Ann  from Acme."),
            turn(TurnRole::User, "hello there"),
            turn(TurnRole::Assistant, "Great"),
        ]);
        assert_eq!(t.turn_count, 3);
        assert_eq!(t.assistant_word_count, 7);
        assert_eq!(t.user_word_count, 2);
        assert_eq!(t.word_count, 9);
        assert_eq!(
            t.full_text,
            "Assistant: Hi, this is Ann  from Acme.\nUser: hello there\nAssistant: Great"
        );
        assert_eq!(NewTranscript::from_turns(vec![]).full_text, "");
    }

    #[test]
    fn turn_json_shape() {
        let mut t = turn(TurnRole::User, "yes");
        t.confidence = Some(0.5);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["role"], "user");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert!(v.get("interrupted").is_none());
        let mut a = turn(TurnRole::Assistant, "cut");
        a.interrupted = true;
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["interrupted"], true);
        assert!(v.get("confidence").is_none());
        let back: TranscriptTurn = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn recording_status_text() {
        for s in RecordingStatus::ALL {
            assert_eq!(s.as_str().parse::<RecordingStatus>().unwrap(), *s);
        }
        assert!("x".parse::<RecordingStatus>().is_err());
    }
}
