//! The voice session's reads and writes (G2, F2, H8–H9, J1–J2), and the read-back of J1–J2.

use crate::db::{micros, DbId, DbTime, SqlStore};
use crate::dynamic::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use talky_core::ids::{CallId, CampaignId, LeadId, TenantId};
use talky_core::model::{CallStatus, DncSource, JobStatus};
use talky_core::ports::store::*;
use talky_core::ports::telephony::CarrierCall;

#[derive(sqlx::FromRow)]
struct SessionCallRow {
    id: DbId,
    campaign_id: Option<DbId>,
    lead_id: Option<DbId>,
    status: String,
    is_test: bool,
    to_number: String,
    answered_at: Option<DbTime>,
    provider: Option<String>,
    provider_call_id: Option<String>,
    first_name: Option<String>,
    system_prompt: Option<String>,
    agent_name: Option<String>,
    company_name: Option<String>,
    call_reason: Option<String>,
    opener: Option<String>,
    goal: Option<String>,
    voice_id: Option<String>,
    language: Option<String>,
    max_call_seconds: Option<i64>,
    key_terms: Option<Json<Vec<String>>>,
    recording: Json<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct TurnMetricRow {
    turn_index: i64,
    speech_end: Option<DbTime>,
    endpoint_delay_ms: Option<i64>,
    stt_final_ms: Option<i64>,
    llm_ttft_ms: Option<i64>,
    first_sentence_ms: Option<i64>,
    tts_ttfb_ms: Option<i64>,
    first_frame_ms: Option<i64>,
    speculative: bool,
}

impl From<TurnMetricRow> for TurnMetric {
    fn from(r: TurnMetricRow) -> Self {
        TurnMetric {
            turn_index: r.turn_index,
            speech_end: r.speech_end.map(|t| t.0),
            endpoint_delay_ms: r.endpoint_delay_ms,
            stt_final_ms: r.stt_final_ms,
            llm_ttft_ms: r.llm_ttft_ms,
            first_sentence_ms: r.first_sentence_ms,
            tts_ttfb_ms: r.tts_ttfb_ms,
            first_frame_ms: r.first_frame_ms,
            speculative: r.speculative,
        }
    }
}

#[async_trait]
impl VoiceCallStore for SqlStore {
    async fn session_call(&self, tenant: TenantId, call: CallId) -> StoreResult<SessionCall> {
        let mut h = self.read().await?;
        let r = fetch_optional!(
            h,
            SessionCallRow,
            "SELECT c.id, c.campaign_id, c.lead_id, c.status, c.is_test, c.to_number, c.answered_at, \
             c.provider, c.provider_call_id, l.first_name, k.system_prompt, k.agent_name, k.company_name, k.call_reason, k.opener, k.goal, \
             k.voice_id, k.language, k.max_call_seconds, k.key_terms, t.recording \
             FROM calls c JOIN tenants t ON t.id = c.tenant_id \
             LEFT JOIN campaigns k ON k.id = c.campaign_id AND k.tenant_id = c.tenant_id \
             LEFT JOIN leads l ON l.id = c.lead_id AND l.tenant_id = c.tenant_id \
             WHERE c.id = $1 AND c.tenant_id = $2",
            DbId(call.0),
            DbId(tenant.0)
        )?
        .ok_or(StoreError::NotFound)?;
        Ok(SessionCall {
            call_id: CallId(r.id.0),
            tenant_id: tenant,
            campaign_id: r.campaign_id.map(|c| CampaignId(c.0)),
            lead_id: r.lead_id.map(|l| LeadId(l.0)),
            status: r.status.parse::<CallStatus>().map_err(corrupt)?,
            is_test: r.is_test,
            to_number: r.to_number,
            answered_at: r.answered_at.map(|t| t.0),
            carrier: match (r.provider, r.provider_call_id) {
                (Some(provider), Some(provider_call_id))
                    if !provider.is_empty() && !provider_call_id.is_empty() =>
                {
                    Some(CarrierCall {
                        provider,
                        provider_call_id,
                    })
                }
                _ => None,
            },
            lead_first_name: r.first_name,
            system_prompt: r.system_prompt.unwrap_or_default(),
            agent_name: r.agent_name,
            company_name: r.company_name,
            call_reason: r.call_reason,
            opener: r.opener,
            goal: r.goal,
            voice_id: r.voice_id,
            language: r.language.unwrap_or_else(|| "en".into()),
            max_call_seconds: r.max_call_seconds.unwrap_or(7200),
            key_terms: r.key_terms.map(|j| j.0).unwrap_or_default(),
            recording_policy: r.recording.0,
        })
    }

    async fn mark_call_connected(
        &self,
        tenant: TenantId,
        call: CallId,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One statement: no transaction needed.
        let mut h = self.write().await?;
        let n = execute!(
            h,
            "UPDATE calls SET status = 'in_progress', answered_at = COALESCE(answered_at, $3), updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND status IN ('initiated', 'ringing', 'answered')",
            DbId(call.0),
            DbId(tenant.0),
            micros(at)
        )?;
        Ok(n == 1)
    }

    async fn finish_session_call(
        &self,
        tenant: TenantId,
        call: CallId,
        end: SessionEnd,
        metrics: Vec<TurnMetric>,
    ) -> StoreResult<bool> {
        let t = DbId(tenant.0);
        let c = DbId(call.0);
        let ended = micros(end.ended_at);
        let mut tx = self.begin().await?;
        let row = fetch_optional!(
            tx,
            (Option<DbTime>, String, Option<DbTime>),
            "SELECT answered_at, to_number, finalized_at FROM calls WHERE id = $1 AND tenant_id = $2",
            c,
            t
        )?
        .ok_or(StoreError::NotFound)?;
        if row.2.is_some() {
            return Ok(false);
        }
        // F7: whole seconds between answer and end; 0 for a call never answered. A connect
        // mark that never landed is healed from the session's own connect time.
        let answered = row.0.map(|a| a.0).or(end.connected_at);
        let duration = answered
            .map(|a| {
                ((end.ended_at - a).num_milliseconds() as f64 / 1000.0)
                    .round()
                    .max(0.0) as i64
            })
            .unwrap_or(0);
        let changed = execute!(
            tx,
            "UPDATE calls SET status = 'completed', ended_at = $3, finalized_at = $3, duration_seconds = $4, \
             outcome = $5, end_reason = $6, opted_out = $7, goal_achieved = $8, goal_detail = $9, counters = $10, \
             answered_at = COALESCE(answered_at, $11), updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND finalized_at IS NULL",
            c,
            t,
            ended,
            duration,
            end.outcome.as_str(),
            end.end_reason.as_str(),
            end.opted_out,
            end.goal_achieved,
            end.goal_detail.as_deref(),
            Json(&end.counters),
            answered.map(micros)
        )?;
        if changed == 0 {
            return Ok(false);
        }
        for m in &metrics {
            execute!(
                tx,
                "INSERT INTO call_turn_metrics (id, tenant_id, call_id, turn_index, speech_end, endpoint_delay_ms, \
                 stt_final_ms, llm_ttft_ms, first_sentence_ms, tts_ttfb_ms, first_frame_ms, speculative, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                DbId(uuid::Uuid::new_v4()),
                t,
                c,
                m.turn_index,
                m.speech_end.map(micros),
                m.endpoint_delay_ms,
                m.stt_final_ms,
                m.llm_ttft_ms,
                m.first_sentence_ms,
                m.tts_ttfb_ms,
                m.first_frame_ms,
                m.speculative,
                ended
            )?;
        }
        if end.opted_out {
            // H9 step 7: the number joins the DNC list; its active jobs end `dnc`.
            execute!(
                tx,
                "INSERT INTO dnc (tenant_id, phone_number, source, reason, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, phone_number) DO NOTHING",
                t,
                row.1.as_str(),
                DncSource::OptOut.as_str(),
                "Caller asked not to be called",
                ended
            )?;
            execute!(
                tx,
                "UPDATE dialer_jobs SET status = $3, last_error = 'opted_out', updated_at = $4 \
                 WHERE tenant_id = $1 AND status IN ('pending', 'retry_scheduled', 'processing') \
                 AND lead_id IN (SELECT id FROM leads WHERE tenant_id = $1 AND phone_number = $2)",
                t,
                row.1.as_str(),
                JobStatus::Dnc.as_str(),
                ended
            )?;
            execute!(
                tx,
                "UPDATE leads SET status = 'dnc', updated_at = $3 WHERE tenant_id = $1 AND phone_number = $2 \
                 AND status <> 'deleted'",
                t,
                row.1.as_str(),
                ended
            )?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn call_metrics(&self, tenant: TenantId, call: CallId) -> StoreResult<CallMetrics> {
        let t = DbId(tenant.0);
        let c = DbId(call.0);
        let mut h = self.read().await?;
        let (finalized_at, counters) = fetch_optional!(
            h,
            (Option<DbTime>, Json<serde_json::Value>),
            "SELECT finalized_at, counters FROM calls WHERE id = $1 AND tenant_id = $2",
            c,
            t
        )?
        .ok_or(StoreError::NotFound)?;
        if finalized_at.is_none() {
            // Counters and J1 rows are written in one transaction with `finalized_at`, so an
            // unfinalised call has neither; not reading the rows keeps the answer consistent.
            return Ok(CallMetrics {
                call_id: call,
                counters: None,
                turns: Vec::new(),
            });
        }
        let rows = fetch_all!(
            h,
            TurnMetricRow,
            "SELECT turn_index, speech_end, endpoint_delay_ms, stt_final_ms, llm_ttft_ms, first_sentence_ms, \
             tts_ttfb_ms, first_frame_ms, speculative FROM call_turn_metrics \
             WHERE call_id = $1 AND tenant_id = $2 ORDER BY turn_index, id",
            c,
            t
        )?;
        Ok(CallMetrics {
            call_id: call,
            counters: Some(counters.0),
            turns: rows.into_iter().map(TurnMetric::from).collect(),
        })
    }
}
