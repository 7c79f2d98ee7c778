//! Campaigns, their status machine and their dialer jobs (behaviour.md E1–E5, E8–E10, E20).
//!
//! The status machine of E2 is the pure [`CampaignStatus::apply`]; the edge uses it to pick
//! the status code before calling the store, and the store applies it again inside the
//! transaction that changes the row, so a concurrent change cannot slip between the two.

use crate::ids::{CallId, CampaignId, JobId, LeadId, TenantId};
use crate::model::{CampaignStatus, JobStatus};
use crate::ports::telephony::CarrierCall;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

use super::{Page, Paged, StoreResult};

/// A calling campaign: every writable field of E1 plus its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub status: CampaignStatus,
    pub system_prompt: String,
    pub voice_id: Option<String>,
    pub agent_name: Option<String>,
    pub company_name: Option<String>,
    pub call_reason: Option<String>,
    pub opener: Option<String>,
    pub goal: Option<String>,
    pub language: String,
    pub max_concurrent_calls: i64,
    /// Campaign override of the tenant's calling rules (E11), field by field; `None` = none.
    pub calling_rules: Option<serde_json::Value>,
    pub voicemail_message: Option<String>,
    pub max_call_seconds: i64,
    pub key_terms: Vec<String>,
    /// Why the campaign was paused by Talky (`out_of_minutes`, `provider_auth_failed`);
    /// cleared on start.
    pub pause_reason: Option<String>,
    /// E18 counters.
    pub calls_completed: i64,
    pub calls_failed: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A campaign to create (E1), already validated by the edge. `Default` gives the E1
/// defaults (`language = "en"`, `max_concurrent_calls = 10`, `max_call_seconds = 7200`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub name: String,
    pub description: Option<String>,
    pub system_prompt: String,
    pub voice_id: Option<String>,
    pub agent_name: Option<String>,
    pub company_name: Option<String>,
    pub call_reason: Option<String>,
    pub opener: Option<String>,
    pub goal: Option<String>,
    pub language: String,
    pub max_concurrent_calls: i64,
    pub calling_rules: Option<serde_json::Value>,
    pub voicemail_message: Option<String>,
    pub max_call_seconds: i64,
    pub key_terms: Vec<String>,
}

impl Default for NewCampaign {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: None,
            system_prompt: String::new(),
            voice_id: None,
            agent_name: None,
            company_name: None,
            call_reason: None,
            opener: None,
            goal: None,
            language: "en".into(),
            max_concurrent_calls: 10,
            calling_rules: None,
            voicemail_message: None,
            max_call_seconds: 7200,
            key_terms: Vec::new(),
        }
    }
}

/// A PATCH (E1): `None` leaves a field unchanged; for nullable fields `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub system_prompt: Option<String>,
    pub voice_id: Option<Option<String>>,
    pub agent_name: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub call_reason: Option<Option<String>>,
    pub opener: Option<Option<String>>,
    pub goal: Option<Option<String>>,
    pub language: Option<String>,
    pub max_concurrent_calls: Option<i64>,
    pub calling_rules: Option<Option<serde_json::Value>>,
    pub voicemail_message: Option<Option<String>>,
    pub max_call_seconds: Option<i64>,
    pub key_terms: Option<Vec<String>>,
}

impl CampaignPatch {
    /// Applies the patch to a campaign in memory (what the store persists).
    pub fn apply_to(self, c: &mut Campaign) {
        fn set<T>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        set(&mut c.name, self.name);
        set(&mut c.description, self.description);
        set(&mut c.system_prompt, self.system_prompt);
        set(&mut c.voice_id, self.voice_id);
        set(&mut c.agent_name, self.agent_name);
        set(&mut c.company_name, self.company_name);
        set(&mut c.call_reason, self.call_reason);
        set(&mut c.opener, self.opener);
        set(&mut c.goal, self.goal);
        set(&mut c.language, self.language);
        set(&mut c.max_concurrent_calls, self.max_concurrent_calls);
        set(&mut c.calling_rules, self.calling_rules);
        set(&mut c.voicemail_message, self.voicemail_message);
        set(&mut c.max_call_seconds, self.max_call_seconds);
        set(&mut c.key_terms, self.key_terms);
    }
}

/// What is done to a campaign (the columns of E2's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignAction {
    Start,
    Pause,
    Stop,
    /// "No work left" (E10): only a running campaign completes.
    Complete,
}

/// A refused transition (E2). `Display` is the response `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// `start` on a running campaign → `400`.
    #[error("Campaign is already running")]
    AlreadyRunning,
    /// Any other refused action → `409 Campaign is <status>`.
    #[error("Campaign is {0}")]
    NotAllowed(CampaignStatus),
}

impl TransitionError {
    /// The HTTP status E2 prescribes: 400 for "already running", 409 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            TransitionError::AlreadyRunning => 400,
            TransitionError::NotAllowed(_) => 409,
        }
    }
}

impl CampaignStatus {
    /// The E2 status machine. `Ok(self)` for the two no-ops (pause when paused, stop when
    /// stopped), so `new == old` tells the caller nothing changes.
    pub fn apply(self, action: CampaignAction) -> Result<CampaignStatus, TransitionError> {
        use CampaignAction as A;
        use CampaignStatus as S;
        match (self, action) {
            (S::Running, A::Start) => Err(TransitionError::AlreadyRunning),
            (_, A::Start) => Ok(S::Running),
            (S::Running, A::Pause) | (S::Paused, A::Pause) => Ok(S::Paused),
            (_, A::Pause) => Err(TransitionError::NotAllowed(self)),
            (_, A::Stop) => Ok(S::Stopped),
            (S::Running, A::Complete) => Ok(S::Completed),
            (_, A::Complete) => Err(TransitionError::NotAllowed(self)),
        }
    }
}

/// Tags that add one to a job's priority (E4).
pub const PRIORITY_TAGS: [&str; 3] = ["urgent", "appointment", "reminder"];

/// A job's priority (E4): `priority_override` if given, else the lead's priority; `+2` for
/// a high-value lead; `+1` (once) for any tag in [`PRIORITY_TAGS`]; capped at 10 (and never
/// below 1).
pub fn job_priority(
    lead_priority: i64,
    is_high_value: bool,
    tags: &[String],
    priority_override: Option<i64>,
) -> i64 {
    let base = priority_override.unwrap_or(lead_priority);
    let vip = if is_high_value { 2 } else { 0 };
    let tagged = tags.iter().any(|t| PRIORITY_TAGS.contains(&t.as_str()));
    (base + vip + i64::from(tagged)).clamp(1, 10)
}

/// Options of `POST /campaigns/{id}/start` (E3), validated by the edge (1–10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartOptions {
    pub priority_override: Option<i64>,
}

/// The result of a start.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub campaign: Campaign,
    pub jobs_enqueued: u64,
}

/// A live call of a campaign that a stop must hang up (E9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub id: CallId,
    pub provider: Option<String>,
    /// `None` while the call awaits its provider id; the stop flagged it
    /// (`calls.hangup_requested`) so it is hung up when the id arrives.
    pub provider_call_id: Option<String>,
}

impl LiveCall {
    /// The carrier handle to hang up, when the provider id is known.
    pub fn carrier_call(&self) -> Option<CarrierCall> {
        match (&self.provider, &self.provider_call_id) {
            (Some(p), Some(id)) => Some(CarrierCall {
                provider: p.clone(),
                provider_call_id: id.clone(),
            }),
            _ => None,
        }
    }
}

/// The result of a stop: the campaign, how many queued jobs were cleared and the live calls
/// the caller must hang up through the `Telephony` port (`calls_hung_up` is its count).
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    pub campaign: Campaign,
    pub jobs_cleared: u64,
    pub live_calls: Vec<LiveCall>,
}

/// A dialer job as `/campaigns/{id}/jobs` lists it (E20).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub campaign_id: CampaignId,
    pub lead_id: LeadId,
    pub status: JobStatus,
    pub priority: i64,
    pub attempt_number: i64,
    pub scheduled_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `/campaigns/{id}/stats` (E20). Both maps hold every value of their enum (zero when
/// absent), keyed by its snake_case text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignStats {
    pub campaign_id: CampaignId,
    pub campaign_status: CampaignStatus,
    /// Non-deleted leads.
    pub total_leads: i64,
    pub job_status_counts: BTreeMap<String, i64>,
    /// Calls of the campaign by outcome (calls without an outcome yet are not counted).
    pub call_outcome_counts: BTreeMap<String, i64>,
    /// Calls whose outcome is `goal_achieved`.
    pub goals_achieved: i64,
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates a `draft` campaign.
    async fn create_campaign(
        &self,
        tenant: TenantId,
        new: NewCampaign,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign>;

    async fn get_campaign(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Campaign>;

    /// The tenant's campaigns, newest first.
    async fn list_campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>>;

    /// Applies a PATCH (only the given fields) in any status.
    async fn update_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        patch: CampaignPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign>;

    /// E3 in one transaction: re-checks E2 on the locked row, sets `running`, `started_at`
    /// (if null), clears `pause_reason` and `completed_at`, and enqueues one `pending` job
    /// (due `now`, E4 priority) per lead that is `pending`, not on the tenant DNC list and
    /// has no active job. Never creates a second active job for a lead. The minutes gate
    /// (C3) is the caller's, before this call.
    async fn start_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        opts: StartOptions,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Started, TransitionError>>;

    /// E8: `running` → `paused` with `pause_reason`; already `paused` is a no-op (the
    /// stored reason stays). Jobs keep their place; live calls continue.
    async fn pause_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Campaign, TransitionError>>;

    /// E9 in one transaction: status `stopped`, `completed_at = now`; every `pending` /
    /// `retry_scheduled` job → `skipped` (`last_error = "Campaign stopped"`) and the leads of
    /// those jobs that were `queued` go back to `pending` (so a later start enqueues them);
    /// live calls are flagged `hangup_requested` and returned. Stopping a stopped campaign
    /// changes nothing but still returns its live calls.
    async fn stop_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Stopped, TransitionError>>;

    /// E10: a `running` campaign with no active job and no live call becomes `completed`.
    /// Returns whether it did.
    async fn complete_campaign_if_done(
        &self,
        tenant: TenantId,
        id: CampaignId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// E20: the campaign's jobs, newest first, optionally of one status.
    async fn list_jobs(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        status: Option<JobStatus>,
        page: Page,
    ) -> StoreResult<Paged<Job>>;

    /// E20 statistics.
    async fn campaign_stats(&self, tenant: TenantId, id: CampaignId) -> StoreResult<CampaignStats>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignAction as A;
    use CampaignStatus as S;

    #[test]
    fn status_machine_matches_e2() {
        let table: &[(S, A, Result<S, TransitionError>)] = &[
            (S::Draft, A::Start, Ok(S::Running)),
            (
                S::Draft,
                A::Pause,
                Err(TransitionError::NotAllowed(S::Draft)),
            ),
            (S::Draft, A::Stop, Ok(S::Stopped)),
            (
                S::Draft,
                A::Complete,
                Err(TransitionError::NotAllowed(S::Draft)),
            ),
            (S::Running, A::Start, Err(TransitionError::AlreadyRunning)),
            (S::Running, A::Pause, Ok(S::Paused)),
            (S::Running, A::Stop, Ok(S::Stopped)),
            (S::Running, A::Complete, Ok(S::Completed)),
            (S::Paused, A::Start, Ok(S::Running)),
            (S::Paused, A::Pause, Ok(S::Paused)),
            (S::Paused, A::Stop, Ok(S::Stopped)),
            (
                S::Paused,
                A::Complete,
                Err(TransitionError::NotAllowed(S::Paused)),
            ),
            (S::Stopped, A::Start, Ok(S::Running)),
            (
                S::Stopped,
                A::Pause,
                Err(TransitionError::NotAllowed(S::Stopped)),
            ),
            (S::Stopped, A::Stop, Ok(S::Stopped)),
            (
                S::Stopped,
                A::Complete,
                Err(TransitionError::NotAllowed(S::Stopped)),
            ),
            (S::Completed, A::Start, Ok(S::Running)),
            (
                S::Completed,
                A::Pause,
                Err(TransitionError::NotAllowed(S::Completed)),
            ),
            (S::Completed, A::Stop, Ok(S::Stopped)),
            (
                S::Completed,
                A::Complete,
                Err(TransitionError::NotAllowed(S::Completed)),
            ),
        ];
        assert_eq!(table.len(), S::ALL.len() * 4, "every cell of the table");
        for (from, action, expected) in table {
            assert_eq!(from.apply(*action), *expected, "{from} {action:?}");
        }
    }

    #[test]
    fn transition_errors_render_the_e2_details() {
        assert_eq!(
            TransitionError::AlreadyRunning.to_string(),
            "Campaign is already running"
        );
        assert_eq!(TransitionError::AlreadyRunning.http_status(), 400);
        let e = TransitionError::NotAllowed(S::Stopped);
        assert_eq!(e.to_string(), "Campaign is stopped");
        assert_eq!(e.http_status(), 409);
    }

    #[test]
    fn priority_follows_e4() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(job_priority(5, true, &tags(&["appointment"]), None), 8);
        assert_eq!(job_priority(5, false, &[], None), 5);
        assert_eq!(
            job_priority(5, false, &tags(&["urgent", "reminder", "x"]), None),
            6
        );
        assert_eq!(job_priority(9, true, &tags(&["urgent"]), None), 10);
        assert_eq!(job_priority(5, true, &[], Some(2)), 4);
        assert_eq!(
            job_priority(3, false, &tags(&["Urgent"]), None),
            3,
            "tags are exact"
        );
    }

    #[test]
    fn patch_changes_only_given_fields() {
        let now = Utc::now();
        let mut c = Campaign {
            id: CampaignId::new(),
            tenant_id: TenantId::new(),
            name: "a".into(),
            description: Some("d".into()),
            status: S::Draft,
            system_prompt: "p".into(),
            voice_id: Some("v".into()),
            agent_name: None,
            company_name: None,
            call_reason: None,
            opener: None,
            goal: None,
            language: "en".into(),
            max_concurrent_calls: 10,
            calling_rules: None,
            voicemail_message: None,
            max_call_seconds: 7200,
            key_terms: vec![],
            pause_reason: None,
            calls_completed: 0,
            calls_failed: 0,
            started_at: None,
            completed_at: None,
            created_at: now,
            updated_at: now,
        };
        CampaignPatch {
            name: Some("b".into()),
            description: Some(None),
            max_call_seconds: Some(60),
            ..Default::default()
        }
        .apply_to(&mut c);
        assert_eq!(c.name, "b");
        assert_eq!(c.description, None);
        assert_eq!(c.voice_id.as_deref(), Some("v"));
        assert_eq!(c.max_call_seconds, 60);
        assert_eq!(c.system_prompt, "p");
    }
}
