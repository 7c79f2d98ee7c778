//! Calls, transcripts and recording rows (behaviour.md H3, H4, H6, H7).

use crate::db::{micros, DbId, DbTime, Handle, SqlStore};
use crate::dynamic::{self, corrupt, new_id, Args};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use talky_core::ids::{CallId, CampaignId, LeadId, RecordingId, TenantId};
use talky_core::model::Outcome;
use talky_core::ports::store::*;

#[derive(sqlx::FromRow)]
struct CallListRow {
    id: DbId,
    created_at: DbTime,
    to_number: String,
    status: String,
    duration_seconds: i64,
    outcome: Option<String>,
}

fn parse_outcome(s: Option<String>) -> StoreResult<Option<Outcome>> {
    s.map(|s| s.parse().map_err(corrupt)).transpose()
}

impl TryFrom<CallListRow> for CallListItem {
    type Error = StoreError;
    fn try_from(r: CallListRow) -> StoreResult<Self> {
        Ok(CallListItem {
            id: CallId(r.id.0),
            created_at: r.created_at.0,
            to_number: r.to_number,
            status: r.status.parse().map_err(corrupt)?,
            duration_seconds: r.duration_seconds,
            outcome: parse_outcome(r.outcome)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CallDetailRow {
    id: DbId,
    created_at: DbTime,
    to_number: String,
    status: String,
    duration_seconds: i64,
    outcome: Option<String>,
    campaign_id: Option<DbId>,
    lead_id: Option<DbId>,
    answered_at: Option<DbTime>,
    ended_at: Option<DbTime>,
    end_reason: Option<String>,
    summary: Option<String>,
    recording_id: Option<DbId>,
    is_test: bool,
    full_text: Option<String>,
}

impl TryFrom<CallDetailRow> for CallDetail {
    type Error = StoreError;
    fn try_from(r: CallDetailRow) -> StoreResult<Self> {
        Ok(CallDetail {
            id: CallId(r.id.0),
            created_at: r.created_at.0,
            to_number: r.to_number,
            status: r.status.parse().map_err(corrupt)?,
            duration_seconds: r.duration_seconds,
            outcome: parse_outcome(r.outcome)?,
            campaign_id: r.campaign_id.map(|i| CampaignId(i.0)),
            lead_id: r.lead_id.map(|i| LeadId(i.0)),
            answered_at: r.answered_at.map(|t| t.0),
            ended_at: r.ended_at.map(|t| t.0),
            end_reason: r.end_reason,
            summary: r.summary,
            recording_id: r.recording_id.map(|i| RecordingId(i.0)),
            transcript: r.full_text,
            is_test: r.is_test,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TranscriptRow {
    call_id: DbId,
    turns: Json<Vec<TranscriptTurn>>,
    full_text: String,
    turn_count: i64,
    word_count: i64,
    user_word_count: i64,
    assistant_word_count: i64,
    created_at: DbTime,
}

#[derive(sqlx::FromRow)]
struct RecordingRow {
    id: DbId,
    call_id: DbId,
    storage_path: String,
    duration_seconds: i64,
    file_size_bytes: i64,
    mime_type: String,
    channels: i64,
    sample_rate: i64,
    status: String,
    created_at: DbTime,
}

const RECORDING_COLS: &str =
    "id, call_id, storage_path, duration_seconds, file_size_bytes, mime_type, \
    channels, sample_rate, status, created_at";

#[derive(sqlx::FromRow)]
struct RecordingListRow {
    id: DbId,
    call_id: DbId,
    created_at: DbTime,
    duration_seconds: i64,
}

/// `Some(None)` for no bound, `Some(Some("YYYY-MM-DD"))` for a bound at 00:00 UTC, `None`
/// for a bound inside a day (which `call_counts` cannot answer).
fn utc_day(bound: Option<DateTime<Utc>>) -> Option<Option<String>> {
    match bound {
        None => Some(None),
        Some(t) if t.time() == chrono::NaiveTime::MIN => {
            Some(Some(t.format("%Y-%m-%d").to_string()))
        }
        Some(_) => None,
    }
}

impl SqlStore {
    /// Fails with `NotFound` unless `id` is a row of `table` owned by `tenant`.
    async fn require_owned(
        &self,
        h: &mut Handle,
        table: &'static str,
        tenant: DbId,
        id: DbId,
    ) -> StoreResult<()> {
        let sql = format!("SELECT CAST(1 AS BIGINT) FROM {table} WHERE id = $1 AND tenant_id = $2");
        fetch_optional!(h, (i64,), &sql, id, tenant)?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl CallStore for SqlStore {
    async fn insert_call(&self, tenant: TenantId, call: NewCall) -> StoreResult<CallId> {
        let t = DbId(tenant.0);
        let mut tx = self.begin().await?;
        if let Some(c) = call.campaign_id {
            self.require_owned(&mut tx, "campaigns", t, DbId(c.0))
                .await?;
        }
        if let Some(l) = call.lead_id {
            self.require_owned(&mut tx, "leads", t, DbId(l.0)).await?;
        }
        if let Some(j) = call.job_id {
            self.require_owned(&mut tx, "dialer_jobs", t, DbId(j.0))
                .await?;
        }
        let created = micros(call.created_at);
        execute!(
            tx,
            "INSERT INTO calls (id, tenant_id, campaign_id, lead_id, job_id, to_number, from_number, provider, \
             provider_call_id, status, outcome, end_reason, attempt_number, is_test, answered_at, ended_at, \
             duration_seconds, summary, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)",
            DbId(call.id.0),
            t,
            call.campaign_id.map(|c| DbId(c.0)),
            call.lead_id.map(|l| DbId(l.0)),
            call.job_id.map(|j| DbId(j.0)),
            call.to_number,
            call.from_number,
            call.provider,
            call.provider_call_id,
            call.status.as_str(),
            call.outcome.map(|o| o.as_str()),
            call.end_reason,
            call.attempt_number,
            call.is_test,
            call.answered_at.map(micros),
            call.ended_at.map(micros),
            call.duration_seconds,
            call.summary,
            created
        )?;
        tx.commit().await?;
        Ok(call.id)
    }

    async fn get_call(&self, tenant: TenantId, id: CallId) -> StoreResult<CallDetail> {
        let mut h = self.read().await?;
        fetch_optional!(
            h,
            CallDetailRow,
            "SELECT c.id, c.created_at, c.to_number, c.status, c.duration_seconds, c.outcome, c.campaign_id, \
             c.lead_id, c.answered_at, c.ended_at, c.end_reason, c.summary, c.recording_id, c.is_test, \
             t.full_text FROM calls c LEFT JOIN transcripts t ON t.call_id = c.id AND t.tenant_id = c.tenant_id \
             WHERE c.id = $1 AND c.tenant_id = $2",
            DbId(id.0),
            DbId(tenant.0)
        )?
        .ok_or(StoreError::NotFound)?
        .try_into()
    }

    async fn list_calls(
        &self,
        tenant: TenantId,
        filter: CallFilter,
        page: Page,
    ) -> StoreResult<Paged<CallListItem>> {
        let mut h = self.read().await?;
        let mut args = Args::new(self.engine());
        let mut cond = format!("tenant_id = {}", args.add(DbId(tenant.0)));
        if let Some(from) = filter.from {
            cond.push_str(&format!(" AND created_at >= {}", args.add(micros(from))));
        }
        if let Some(to) = filter.to {
            cond.push_str(&format!(" AND created_at < {}", args.add(micros(to))));
        }
        if let Some(s) = filter.status {
            cond.push_str(&format!(" AND status = {}", args.add(s.as_str())));
        }
        let total = match (utc_day(filter.from), utc_day(filter.to)) {
            (Some(from), Some(to)) => {
                // Whole days: sum the trigger-kept counts (migration 0002) instead of counting rows.
                let mut count_args = Args::new(self.engine());
                let mut count_cond = format!("tenant_id = {}", count_args.add(DbId(tenant.0)));
                if let Some(from) = from {
                    count_cond.push_str(&format!(" AND day >= {}", count_args.add(from)));
                }
                if let Some(to) = to {
                    count_cond.push_str(&format!(" AND day < {}", count_args.add(to)));
                }
                if let Some(s) = filter.status {
                    count_cond.push_str(&format!(" AND status = {}", count_args.add(s.as_str())));
                }
                let sql = format!(
                    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM call_counts WHERE {count_cond}"
                );
                dynamic::fetch_one::<(i64,)>(&mut h, &sql, count_args)
                    .await?
                    .0
            }
            _ => {
                let sql = format!("SELECT COUNT(*) FROM calls WHERE {cond}");
                dynamic::fetch_one::<(i64,)>(&mut h, &sql, args.clone())
                    .await?
                    .0
            }
        };
        let sql = format!(
            "SELECT id, created_at, to_number, status, duration_seconds, outcome FROM calls WHERE {cond} \
             ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            args.add(page.limit()),
            args.add(page.offset())
        );
        let rows: Vec<CallListRow> = dynamic::fetch_all(&mut h, &sql, args).await?;
        let items = rows
            .into_iter()
            .map(CallListItem::try_from)
            .collect::<StoreResult<_>>()?;
        Ok((items, total))
    }

    async fn save_transcript(
        &self,
        tenant: TenantId,
        call: CallId,
        transcript: NewTranscript,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let t = DbId(tenant.0);
        let mut tx = self.begin().await?;
        self.require_owned(&mut tx, "calls", t, DbId(call.0))
            .await?;
        execute!(
            tx,
            "INSERT INTO transcripts (id, tenant_id, call_id, turns, full_text, turn_count, word_count, \
             user_word_count, assistant_word_count, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (call_id) DO UPDATE SET turns = excluded.turns, full_text = excluded.full_text, \
             turn_count = excluded.turn_count, word_count = excluded.word_count, \
             user_word_count = excluded.user_word_count, assistant_word_count = excluded.assistant_word_count",
            new_id(),
            t,
            DbId(call.0),
            Json(transcript.turns),
            transcript.full_text,
            transcript.turn_count,
            transcript.word_count,
            transcript.user_word_count,
            transcript.assistant_word_count,
            micros(now)
        )?;
        tx.commit().await
    }

    async fn get_transcript(
        &self,
        tenant: TenantId,
        call: CallId,
    ) -> StoreResult<Option<Transcript>> {
        let t = DbId(tenant.0);
        let mut h = self.read().await?;
        self.require_owned(&mut h, "calls", t, DbId(call.0)).await?;
        let row = fetch_optional!(
            h,
            TranscriptRow,
            "SELECT call_id, turns, full_text, turn_count, word_count, user_word_count, assistant_word_count, \
             created_at FROM transcripts WHERE call_id = $1 AND tenant_id = $2",
            DbId(call.0),
            t
        )?;
        Ok(row.map(|r| Transcript {
            call_id: CallId(r.call_id.0),
            turns: r.turns.0,
            full_text: r.full_text,
            turn_count: r.turn_count,
            word_count: r.word_count,
            user_word_count: r.user_word_count,
            assistant_word_count: r.assistant_word_count,
            created_at: r.created_at.0,
        }))
    }

    async fn insert_recording(
        &self,
        tenant: TenantId,
        recording: NewRecording,
    ) -> StoreResult<RecordingId> {
        let t = DbId(tenant.0);
        let (id, call) = (DbId(recording.id.0), DbId(recording.call_id.0));
        let mut tx = self.begin().await?;
        self.require_owned(&mut tx, "calls", t, call).await?;
        execute!(
            tx,
            "INSERT INTO recordings (id, tenant_id, call_id, storage_path, duration_seconds, file_size_bytes, \
             mime_type, channels, sample_rate, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            id,
            t,
            call,
            recording.storage_path,
            recording.duration_seconds,
            recording.file_size_bytes,
            recording.mime_type,
            recording.channels,
            recording.sample_rate,
            recording.status.as_str(),
            micros(recording.created_at)
        )?;
        execute!(
            tx,
            "UPDATE calls SET recording_id = $1 WHERE id = $2 AND tenant_id = $3",
            id,
            call,
            t
        )?;
        tx.commit().await?;
        Ok(recording.id)
    }

    async fn update_recording(
        &self,
        tenant: TenantId,
        id: RecordingId,
        update: RecordingUpdate,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = execute!(
            tx,
            "UPDATE recordings SET status = $3, file_size_bytes = COALESCE($4, file_size_bytes), \
             duration_seconds = COALESCE($5, duration_seconds) WHERE id = $1 AND tenant_id = $2",
            DbId(id.0),
            DbId(tenant.0),
            update.status.as_str(),
            update.file_size_bytes,
            update.duration_seconds
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn list_recordings(
        &self,
        tenant: TenantId,
        call: Option<CallId>,
        page: Page,
    ) -> StoreResult<Paged<RecordingListItem>> {
        let mut h = self.read().await?;
        let mut args = Args::new(self.engine());
        let mut cond = format!(
            "tenant_id = {} AND status = {}",
            args.add(DbId(tenant.0)),
            args.add(RecordingStatus::Completed.as_str())
        );
        if let Some(c) = call {
            cond.push_str(&format!(" AND call_id = {}", args.add(DbId(c.0))));
        }
        let (total,): (i64,) = dynamic::fetch_one(
            &mut h,
            &format!("SELECT COUNT(*) FROM recordings WHERE {cond}"),
            args.clone(),
        )
        .await?;
        let sql = format!(
            "SELECT id, call_id, created_at, duration_seconds FROM recordings WHERE {cond} \
             ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            args.add(page.limit()),
            args.add(page.offset())
        );
        let rows: Vec<RecordingListRow> = dynamic::fetch_all(&mut h, &sql, args).await?;
        let items = rows
            .into_iter()
            .map(|r| RecordingListItem {
                id: RecordingId(r.id.0),
                call_id: CallId(r.call_id.0),
                created_at: r.created_at.0,
                duration_seconds: r.duration_seconds,
            })
            .collect();
        Ok((items, total))
    }

    async fn get_recording(&self, tenant: TenantId, id: RecordingId) -> StoreResult<Recording> {
        let mut h = self.read().await?;
        let sql =
            format!("SELECT {RECORDING_COLS} FROM recordings WHERE id = $1 AND tenant_id = $2");
        let r = fetch_optional!(h, RecordingRow, &sql, DbId(id.0), DbId(tenant.0))?
            .ok_or(StoreError::NotFound)?;
        Ok(Recording {
            id: RecordingId(r.id.0),
            call_id: CallId(r.call_id.0),
            storage_path: r.storage_path,
            duration_seconds: r.duration_seconds,
            file_size_bytes: r.file_size_bytes,
            mime_type: r.mime_type,
            channels: r.channels,
            sample_rate: r.sample_rate,
            status: r.status.parse().map_err(corrupt)?,
            created_at: r.created_at.0,
        })
    }
}
