//! Persists a finished session (H9 steps 4–7): transcript, recording decision, call
//! finalisation with the resolved outcome (I2), J1 latencies and J2 counters, and the
//! opt-out → DNC step. A failed recording write marks the row `failed` and never blocks
//! the rest (H10).

use async_trait::async_trait;
use std::sync::Arc;
use talky_core::model::Outcome;
use talky_core::ports::recording::{recording_key, RecordingStore};
use talky_core::ports::store::{
    NewRecording, NewTranscript, RecordingStatus, SessionEnd, Store, StoreError, StoreResult,
    TranscriptTurn, TurnMetric, TurnRole,
};
use talky_core::{CallId, CampaignId, TenantId};
use talky_voice::session::recorder::remove_spooled;
use talky_voice::session::{OutcomeHints, RecordingResult, SessionReport, SessionSink};

/// Writes one call's report through the store and recording ports.
pub struct PersistSink {
    pub store: Arc<dyn Store>,
    pub recordings: Arc<dyn RecordingStore>,
    pub tenant: TenantId,
    pub campaign: Option<CampaignId>,
    pub call: CallId,
}

/// I2: the outcome of an answered call, highest precedence first.
pub fn resolve_outcome(h: &OutcomeHints) -> Outcome {
    let said = h.end_call_outcome.as_deref().and_then(end_call_label);
    if h.opted_out {
        return Outcome::OptedOut;
    }
    // `mark_goal` is authoritative; without it, the agent's own `end_call` label counts.
    if h.goal_achieved == Some(true)
        || (h.goal_achieved.is_none() && said == Some(Outcome::GoalAchieved))
    {
        return Outcome::GoalAchieved;
    }
    if h.callback_requested || said == Some(Outcome::CallbackRequested) {
        return Outcome::CallbackRequested;
    }
    if said == Some(Outcome::Declined) {
        return Outcome::Declined;
    }
    if h.goal_achieved == Some(false) || said == Some(Outcome::GoalNotAchieved) {
        return Outcome::GoalNotAchieved;
    }
    if said == Some(Outcome::Voicemail) {
        return Outcome::Voicemail;
    }
    if h.agent_error && h.caller_turns == 0 {
        return Outcome::AgentError;
    }
    Outcome::Answered
}

/// Reads the free-text `outcome` of `end_call` (the tool's description suggests labels such
/// as `goal_achieved`, `not_interested`, `callback`), compared letters-only like G26's
/// action names. Labels that name no I2 outcome (`wrong_number`, `completed`) give `None`.
fn end_call_label(label: &str) -> Option<Outcome> {
    let key: String = label
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Some(match key.as_str() {
        "goalachieved" | "success" | "booked" | "appointmentbooked" | "converted" => {
            Outcome::GoalAchieved
        }
        "callback" | "callbackrequested" | "callmeback" => Outcome::CallbackRequested,
        "declined" | "notinterested" | "refused" | "rejected" => Outcome::Declined,
        "goalnotachieved" => Outcome::GoalNotAchieved,
        "voicemail" | "answeringmachine" | "machine" => Outcome::Voicemail,
        _ => return None,
    })
}

/// Attempts per persistence step when the database is unavailable (pool exhausted under
/// load, a restarting Postgres), with waits of 0.5, 1, 2 and 4 s between them.
const PERSIST_ATTEMPTS: u32 = 5;

/// Runs one persistence step, trying again while the database is unavailable: a session's
/// transcript and outcome must survive a moment of overload (H8). Other errors return at once.
async fn retry_unavailable<T, F, Fut>(
    call: CallId,
    what: &'static str,
    mut step: F,
) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut wait = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match step().await {
            Err(StoreError::Unavailable(e)) if attempt < PERSIST_ATTEMPTS => {
                tracing::warn!(call_id = %call, step = what, attempt, error = %e,
                    "database unavailable while persisting a call; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl PersistSink {
    async fn store_recording(&self, report: &SessionReport) {
        let now = report.ended_at;
        let campaign = self
            .campaign
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into());
        let key = recording_key(&self.tenant.to_string(), &campaign, &self.call.to_string());
        let mut row = NewRecording::new(self.call, key.clone(), now);
        match &report.recording {
            RecordingResult::Disabled => return,
            RecordingResult::Discarded { reason } => {
                tracing::info!(call_id = %self.call, %reason, "recording discarded");
                row.storage_path = String::new();
                row.status = RecordingStatus::Discarded;
            }
            RecordingResult::Failed { reason } => {
                tracing::error!(call_id = %self.call, %reason, "recording not produced");
                row.storage_path = String::new();
                row.status = RecordingStatus::Failed;
            }
            RecordingResult::Wav {
                path,
                size_bytes,
                channels,
                sample_rate,
                duration_seconds,
            } => {
                row.channels = i64::from(*channels);
                row.sample_rate = i64::from(*sample_rate);
                row.duration_seconds = duration_seconds.round() as i64;
                row.file_size_bytes = i64::try_from(*size_bytes).unwrap_or(i64::MAX);
                row.status = match self.recordings.put_file(&key, path).await {
                    Ok(_) => {
                        // Usually moved already; a copying store leaves the spool file.
                        remove_spooled(path).await;
                        RecordingStatus::Completed
                    }
                    Err(e) => {
                        // Keep the spooled file so an operator can still recover the audio.
                        tracing::error!(call_id = %self.call, error = %e, spooled = %path.display(),
                            "recording write failed; the audio stays in the spool");
                        RecordingStatus::Failed
                    }
                };
            }
        }
        let saved = retry_unavailable(self.call, "recording row", || {
            self.store.insert_recording(self.tenant, row.clone())
        })
        .await;
        if let Err(e) = saved {
            tracing::error!(call_id = %self.call, error = %e, "recording row not saved");
        }
    }
}

#[async_trait]
impl SessionSink for PersistSink {
    async fn finished(&self, report: SessionReport) {
        // 4. transcript (if any turn exists)
        if !report.turns.is_empty() {
            let turns = report
                .turns
                .iter()
                .map(|t| TranscriptTurn {
                    role: match t.role {
                        talky_voice::session::TurnRole::User => TurnRole::User,
                        talky_voice::session::TurnRole::Assistant => TurnRole::Assistant,
                    },
                    content: t.content.clone(),
                    timestamp: t.timestamp,
                    confidence: t.confidence.map(f64::from),
                    interrupted: t.interrupted.unwrap_or(false),
                })
                .collect();
            let transcript = NewTranscript::from_turns(turns);
            let saved = retry_unavailable(self.call, "transcript", || {
                self.store.save_transcript(
                    self.tenant,
                    self.call,
                    transcript.clone(),
                    report.ended_at,
                )
            })
            .await;
            if let Err(e) = saved {
                tracing::error!(call_id = %self.call, error = %e, "transcript not saved");
            }
        }
        // 5. recording decision
        self.store_recording(&report).await;
        // 6–7. finalise the call (outcome, counters, latencies; opt-out → DNC)
        let metrics: Vec<TurnMetric> = report
            .latencies
            .iter()
            .enumerate()
            .map(|(i, l)| TurnMetric {
                turn_index: i as i64,
                speech_end: Some(l.speech_end),
                endpoint_delay_ms: l.endpoint_delay_ms.map(|v| v as i64),
                stt_final_ms: l.stt_final_ms.map(|v| v as i64),
                llm_ttft_ms: l.llm_ttft_ms.map(|v| v as i64),
                first_sentence_ms: l.first_sentence_ms.map(|v| v as i64),
                tts_ttfb_ms: l.tts_ttfb_ms.map(|v| v as i64),
                first_frame_ms: l.first_frame_ms.map(|v| v as i64),
                speculative: l.speculative,
            })
            .collect();
        let mut counters = serde_json::to_value(&report.counters).unwrap_or_default();
        if let (Some(obj), Some(ms)) = (counters.as_object_mut(), report.opener_ms) {
            obj.insert("opener_ms".into(), ms.into());
        }
        let outcome = resolve_outcome(&report.hints);
        let end = SessionEnd {
            ended_at: report.ended_at,
            connected_at: report.connected_at,
            outcome,
            end_reason: report.end_reason.as_str().to_string(),
            opted_out: report.hints.opted_out,
            // I3: the flag and the outcome always agree.
            goal_achieved: outcome == Outcome::GoalAchieved,
            goal_detail: report.hints.goal_detail.clone(),
            counters,
        };
        let finished = retry_unavailable(self.call, "call finalisation", || {
            self.store
                .finish_session_call(self.tenant, self.call, end.clone(), metrics.clone())
        })
        .await;
        match finished {
            Ok(true) => {
                tracing::info!(call_id = %self.call, reason = report.end_reason.as_str(), "call finalised")
            }
            Ok(false) => tracing::debug!(call_id = %self.call, "call was already finalised"),
            Err(e) => tracing::error!(call_id = %self.call, error = %e, "call finalisation failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_precedence_follows_i2() {
        let mut h = OutcomeHints {
            opted_out: true,
            goal_achieved: Some(true),
            ..Default::default()
        };
        assert_eq!(resolve_outcome(&h), Outcome::OptedOut);
        h.opted_out = false;
        assert_eq!(resolve_outcome(&h), Outcome::GoalAchieved);
        h.goal_achieved = None;
        h.callback_requested = true;
        assert_eq!(resolve_outcome(&h), Outcome::CallbackRequested);
        h.callback_requested = false;
        h.end_call_outcome = Some("declined".into());
        assert_eq!(resolve_outcome(&h), Outcome::Declined);
        h.end_call_outcome = None;
        h.agent_error = true;
        assert_eq!(resolve_outcome(&h), Outcome::AgentError);
        h.caller_turns = 2;
        assert_eq!(resolve_outcome(&h), Outcome::Answered);
    }

    #[tokio::test(start_paused = true)]
    async fn persistence_retries_while_the_database_is_unavailable() {
        let call = CallId(uuid::Uuid::nil());
        let tries = std::sync::atomic::AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let r: StoreResult<u32> = retry_unavailable(call, "test", || {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                if n < 3 {
                    Err(StoreError::Unavailable("pool timed out".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(started.elapsed(), std::time::Duration::from_millis(1500));

        // It gives up after the last attempt, and never retries other errors.
        let tries = std::sync::atomic::AtomicU32::new(0);
        let r: StoreResult<()> = retry_unavailable(call, "test", || {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(StoreError::Unavailable("down".into())) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        assert_eq!(
            tries.load(std::sync::atomic::Ordering::SeqCst),
            PERSIST_ATTEMPTS
        );
        let tries = std::sync::atomic::AtomicU32::new(0);
        let r: StoreResult<()> = retry_unavailable(call, "test", || {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(StoreError::NotFound) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::NotFound)));
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn end_call_labels_map_onto_i2_outcomes() {
        let with = |label: &str, goal: Option<bool>| {
            resolve_outcome(&OutcomeHints {
                end_call_outcome: Some(label.into()),
                goal_achieved: goal,
                caller_turns: 1,
                ..Default::default()
            })
        };
        assert_eq!(with("goal_achieved", None), Outcome::GoalAchieved);
        assert_eq!(with("Goal-Achieved", None), Outcome::GoalAchieved);
        // mark_goal(false) wins over the agent's end_call label.
        assert_eq!(with("goal_achieved", Some(false)), Outcome::GoalNotAchieved);
        assert_eq!(with("not_interested", None), Outcome::Declined);
        assert_eq!(with("callback", None), Outcome::CallbackRequested);
        assert_eq!(with("voicemail", None), Outcome::Voicemail);
        assert_eq!(with("wrong_number", None), Outcome::Answered);
        assert_eq!(with("completed", None), Outcome::Answered);
    }
}
