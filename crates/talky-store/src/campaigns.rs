//! Campaigns, start/pause/stop and dialer jobs (behaviour.md E1–E5, E8–E10, E20).

use crate::db::{micros, DbId, DbTime, Handle, SqlStore};
use crate::dynamic::{self, corrupt, new_id, text_list, Args, Lock};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use std::collections::BTreeMap;
use talky_core::ids::{CallId, CampaignId, JobId, LeadId, TenantId};
use talky_core::model::{CallStatus, CampaignStatus, JobStatus, Outcome};
use talky_core::ports::store::*;

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    id: DbId,
    tenant_id: DbId,
    name: String,
    description: Option<String>,
    status: String,
    system_prompt: String,
    voice_id: Option<String>,
    agent_name: Option<String>,
    company_name: Option<String>,
    call_reason: Option<String>,
    opener: Option<String>,
    goal: Option<String>,
    language: String,
    max_concurrent_calls: i64,
    calling_rules: Option<Json<serde_json::Value>>,
    voicemail_message: Option<String>,
    max_call_seconds: i64,
    key_terms: Json<Vec<String>>,
    pause_reason: Option<String>,
    calls_completed: i64,
    calls_failed: i64,
    started_at: Option<DbTime>,
    completed_at: Option<DbTime>,
    created_at: DbTime,
    updated_at: DbTime,
}

pub(crate) const CAMPAIGN_COLS: &str = "id, tenant_id, name, description, status, system_prompt, \
    voice_id, agent_name, company_name, call_reason, opener, goal, language, max_concurrent_calls, \
    calling_rules, voicemail_message, max_call_seconds, key_terms, pause_reason, calls_completed, \
    calls_failed, started_at, completed_at, created_at, updated_at";

impl TryFrom<CampaignRow> for Campaign {
    type Error = StoreError;
    fn try_from(r: CampaignRow) -> StoreResult<Campaign> {
        Ok(Campaign {
            id: CampaignId(r.id.0),
            tenant_id: TenantId(r.tenant_id.0),
            name: r.name,
            description: r.description,
            status: r.status.parse().map_err(corrupt)?,
            system_prompt: r.system_prompt,
            voice_id: r.voice_id,
            agent_name: r.agent_name,
            company_name: r.company_name,
            call_reason: r.call_reason,
            opener: r.opener,
            goal: r.goal,
            language: r.language,
            max_concurrent_calls: r.max_concurrent_calls,
            calling_rules: r.calling_rules.map(|j| j.0).filter(|v| !v.is_null()),
            voicemail_message: r.voicemail_message,
            max_call_seconds: r.max_call_seconds,
            key_terms: r.key_terms.0,
            pause_reason: r.pause_reason,
            calls_completed: r.calls_completed,
            calls_failed: r.calls_failed,
            started_at: r.started_at.map(|t| t.0),
            completed_at: r.completed_at.map(|t| t.0),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: DbId,
    campaign_id: DbId,
    lead_id: DbId,
    status: String,
    priority: i64,
    attempt_number: i64,
    scheduled_at: DbTime,
    last_error: Option<String>,
    created_at: DbTime,
    updated_at: DbTime,
}

const JOB_COLS: &str =
    "id, campaign_id, lead_id, status, priority, attempt_number, scheduled_at, last_error, created_at, updated_at";

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> StoreResult<Job> {
        Ok(Job {
            id: JobId(r.id.0),
            campaign_id: CampaignId(r.campaign_id.0),
            lead_id: LeadId(r.lead_id.0),
            status: r.status.parse().map_err(corrupt)?,
            priority: r.priority,
            attempt_number: r.attempt_number,
            scheduled_at: r.scheduled_at.0,
            last_error: r.last_error,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    id: DbId,
    priority: i64,
    is_high_value: bool,
    tags: Json<Vec<String>>,
}

#[derive(sqlx::FromRow)]
struct LiveCallRow {
    id: DbId,
    provider: Option<String>,
    provider_call_id: Option<String>,
}

/// `'pending', 'retry_scheduled', 'processing'`: the active job statuses (E5).
pub(crate) fn active_jobs_sql() -> String {
    text_list(JobStatus::ACTIVE.iter().map(|s| s.as_str()))
}

/// The live call statuses (E13).
pub(crate) fn live_calls_sql() -> String {
    text_list(CallStatus::LIVE.iter().map(|s| s.as_str()))
}

/// Job rows per multi-row `INSERT` (8 values each, well under SQLite's 32766 parameters).
const JOB_INSERT_ROWS: usize = 1000;

/// Enqueues one `pending` job per `(lead, priority)`, due `now`. A lead that already has an
/// active job is skipped by the partial unique index (`ON CONFLICT DO NOTHING`), so no path
/// can create a second one. Returns the number of jobs created.
pub(crate) async fn insert_jobs(
    h: &mut Handle,
    tenant: DbId,
    campaign: DbId,
    jobs: &[(DbId, i64)],
    now: DbTime,
) -> StoreResult<u64> {
    let mut created = 0;
    for chunk in jobs.chunks(JOB_INSERT_ROWS) {
        let mut args = Args::with_capacity(h.engine(), chunk.len() * 8);
        let mut values = Vec::with_capacity(chunk.len());
        for (lead, priority) in chunk {
            // In column order: id, tenant, campaign, lead, priority, scheduled/created/updated.
            let row = [
                args.add(new_id()),
                args.add(tenant),
                args.add(campaign),
                args.add(*lead),
                args.add(*priority),
                args.add(now),
                args.add(now),
                args.add(now),
            ];
            values.push(format!("({}, 'pending', 0)", row.join(", ")));
        }
        let sql = format!(
            "INSERT INTO dialer_jobs (id, tenant_id, campaign_id, lead_id, priority, scheduled_at, \
             created_at, updated_at, status, attempt_number) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        created += dynamic::execute(h, &sql, args).await?;
    }
    Ok(created)
}

impl SqlStore {
    /// The campaign row of `tenant`, optionally locked for the rest of the transaction.
    pub(crate) async fn campaign_row(
        &self,
        h: &mut Handle,
        tenant: TenantId,
        id: CampaignId,
        lock: Option<Lock>,
    ) -> StoreResult<Campaign> {
        let sql = format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE id = $1 AND tenant_id = $2{}",
            lock.map(|l| self.lock_clause(l)).unwrap_or("")
        );
        fetch_optional!(h, CampaignRow, &sql, DbId(id.0), DbId(tenant.0))?
            .ok_or(StoreError::NotFound)?
            .try_into()
    }

    /// Only the status, for paths that need no more (imports, lead writes).
    pub(crate) async fn campaign_status(
        &self,
        h: &mut Handle,
        tenant: TenantId,
        id: CampaignId,
        lock: Option<Lock>,
    ) -> StoreResult<CampaignStatus> {
        let sql = format!(
            "SELECT status FROM campaigns WHERE id = $1 AND tenant_id = $2{}",
            lock.map(|l| self.lock_clause(l)).unwrap_or("")
        );
        let (status,) = fetch_optional!(h, (String,), &sql, DbId(id.0), DbId(tenant.0))?
            .ok_or(StoreError::NotFound)?;
        status.parse().map_err(corrupt)
    }
}

fn nonnull_json(v: Option<serde_json::Value>) -> Option<Json<serde_json::Value>> {
    v.filter(|v| !v.is_null()).map(Json)
}

#[async_trait]
impl CampaignStore for SqlStore {
    async fn create_campaign(
        &self,
        tenant: TenantId,
        new: NewCampaign,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign> {
        let now = micros(now);
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO campaigns (id, tenant_id, name, description, status, system_prompt, voice_id, \
             agent_name, company_name, call_reason, opener, goal, language, max_concurrent_calls, \
             calling_rules, voicemail_message, max_call_seconds, key_terms, calls_completed, calls_failed, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16, $17, 0, 0, $18, $18) RETURNING {CAMPAIGN_COLS}"
        );
        let row = fetch_one!(
            tx,
            CampaignRow,
            &sql,
            new_id(),
            DbId(tenant.0),
            new.name,
            new.description,
            new.system_prompt,
            new.voice_id,
            new.agent_name,
            new.company_name,
            new.call_reason,
            new.opener,
            new.goal,
            new.language,
            new.max_concurrent_calls,
            nonnull_json(new.calling_rules),
            new.voicemail_message,
            new.max_call_seconds,
            Json(new.key_terms),
            now
        )?;
        tx.commit().await?;
        row.try_into()
    }

    async fn get_campaign(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Campaign> {
        let mut h = self.read().await?;
        self.campaign_row(&mut h, tenant, id, None).await
    }

    async fn list_campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>> {
        let mut h = self.read().await?;
        let sql = format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
        );
        fetch_all!(h, CampaignRow, &sql, DbId(tenant.0))?
            .into_iter()
            .map(Campaign::try_from)
            .collect()
    }

    async fn update_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        patch: CampaignPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign> {
        let mut tx = self.begin().await?;
        let mut c = self
            .campaign_row(&mut tx, tenant, id, Some(Lock::Update))
            .await?;
        patch.apply_to(&mut c);
        let sql = format!(
            "UPDATE campaigns SET name = $3, description = $4, system_prompt = $5, voice_id = $6, \
             agent_name = $7, company_name = $8, call_reason = $9, opener = $10, goal = $11, \
             language = $12, max_concurrent_calls = $13, calling_rules = $14, voicemail_message = $15, \
             max_call_seconds = $16, key_terms = $17, updated_at = $18 \
             WHERE id = $1 AND tenant_id = $2 RETURNING {CAMPAIGN_COLS}"
        );
        let row = fetch_one!(
            tx,
            CampaignRow,
            &sql,
            DbId(id.0),
            DbId(tenant.0),
            c.name,
            c.description,
            c.system_prompt,
            c.voice_id,
            c.agent_name,
            c.company_name,
            c.call_reason,
            c.opener,
            c.goal,
            c.language,
            c.max_concurrent_calls,
            nonnull_json(c.calling_rules),
            c.voicemail_message,
            c.max_call_seconds,
            Json(c.key_terms),
            micros(now)
        )?;
        tx.commit().await?;
        row.try_into()
    }

    async fn start_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        opts: StartOptions,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Started, TransitionError>> {
        let now = micros(now);
        let (t, c) = (DbId(tenant.0), DbId(id.0));
        let mut tx = self.begin().await?;
        // The row lock serialises concurrent starts/stops of this campaign on PostgreSQL: the
        // second start waits, then sees `running` and is refused.
        let current = self
            .campaign_row(&mut tx, tenant, id, Some(Lock::Update))
            .await?;
        if let Err(e) = current.status.apply(CampaignAction::Start) {
            return Ok(Err(e));
        }
        let sql = format!(
            "UPDATE campaigns SET status = 'running', started_at = COALESCE(started_at, $3), \
             pause_reason = NULL, completed_at = NULL, updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 RETURNING {CAMPAIGN_COLS}"
        );
        let campaign: Campaign = fetch_one!(tx, CampaignRow, &sql, c, t, now)?.try_into()?;
        let sql = format!(
            "SELECT l.id, l.priority, l.is_high_value, l.tags FROM leads l \
             WHERE l.tenant_id = $1 AND l.campaign_id = $2 AND l.status = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM dnc d WHERE d.tenant_id = l.tenant_id AND d.phone_number = l.phone_number) \
             AND NOT EXISTS (SELECT 1 FROM dialer_jobs j WHERE j.lead_id = l.id AND j.status IN ({})) \
             ORDER BY l.created_at, l.id",
            active_jobs_sql()
        );
        let candidates = fetch_all!(tx, CandidateRow, &sql, t, c)?;
        let jobs: Vec<(DbId, i64)> = candidates
            .into_iter()
            .map(|l| {
                let p = job_priority(
                    l.priority,
                    l.is_high_value,
                    &l.tags.0,
                    opts.priority_override,
                );
                (l.id, p)
            })
            .collect();
        let jobs_enqueued = insert_jobs(&mut tx, t, c, &jobs, now).await?;
        tx.commit().await?;
        Ok(Ok(Started {
            campaign,
            jobs_enqueued,
        }))
    }

    async fn pause_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Campaign, TransitionError>> {
        let mut tx = self.begin().await?;
        let current = self
            .campaign_row(&mut tx, tenant, id, Some(Lock::Update))
            .await?;
        match current.status.apply(CampaignAction::Pause) {
            Err(e) => return Ok(Err(e)),
            Ok(_) if current.status == CampaignStatus::Paused => return Ok(Ok(current)),
            Ok(_) => {}
        }
        let sql = format!(
            "UPDATE campaigns SET status = 'paused', pause_reason = $3, updated_at = $4 \
             WHERE id = $1 AND tenant_id = $2 RETURNING {CAMPAIGN_COLS}"
        );
        let row = fetch_one!(
            tx,
            CampaignRow,
            &sql,
            DbId(id.0),
            DbId(tenant.0),
            reason,
            micros(now)
        )?;
        tx.commit().await?;
        Ok(Ok(row.try_into()?))
    }

    async fn stop_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Stopped, TransitionError>> {
        let now = micros(now);
        let (t, c) = (DbId(tenant.0), DbId(id.0));
        let mut tx = self.begin().await?;
        let current = self
            .campaign_row(&mut tx, tenant, id, Some(Lock::Update))
            .await?;
        if let Err(e) = current.status.apply(CampaignAction::Stop) {
            return Ok(Err(e));
        }
        let live = live_calls_sql();
        if current.status == CampaignStatus::Stopped {
            let sql = format!(
                "SELECT id, provider, provider_call_id FROM calls \
                 WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ({live}) ORDER BY created_at, id"
            );
            let live_calls = fetch_all!(tx, LiveCallRow, &sql, t, c)?;
            return Ok(Ok(Stopped {
                campaign: current,
                jobs_cleared: 0,
                live_calls: live_calls.into_iter().map(LiveCallRow::into_live).collect(),
            }));
        }
        let sql = format!(
            "UPDATE campaigns SET status = 'stopped', completed_at = $3, updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 RETURNING {CAMPAIGN_COLS}"
        );
        let campaign: Campaign = fetch_one!(tx, CampaignRow, &sql, c, t, now)?.try_into()?;
        let queued = text_list([
            JobStatus::Pending.as_str(),
            JobStatus::RetryScheduled.as_str(),
        ]);
        // Leads waiting for a retry go back to `pending` so a later start enqueues them (E9).
        execute!(
            tx,
            &format!(
                "UPDATE leads SET status = 'pending', updated_at = $3 \
                 WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'queued' AND id IN \
                 (SELECT lead_id FROM dialer_jobs WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ({queued}))"
            ),
            t,
            c,
            now
        )?;
        let jobs_cleared = execute!(
            tx,
            &format!(
                "UPDATE dialer_jobs SET status = 'skipped', last_error = 'Campaign stopped', updated_at = $3, \
                 leased_by = NULL, leased_until = NULL \
                 WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ({queued})"
            ),
            t,
            c,
            now
        )?;
        let sql = format!(
            "UPDATE calls SET hangup_requested = TRUE, updated_at = $3 \
             WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ({live}) \
             RETURNING id, provider, provider_call_id"
        );
        let mut live_calls = fetch_all!(tx, LiveCallRow, &sql, t, c, now)?;
        tx.commit().await?;
        live_calls.sort_by_key(|r| r.id.0);
        Ok(Ok(Stopped {
            campaign,
            jobs_cleared,
            live_calls: live_calls.into_iter().map(LiveCallRow::into_live).collect(),
        }))
    }

    async fn complete_campaign_if_done(
        &self,
        tenant: TenantId,
        id: CampaignId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE campaigns SET status = 'completed', completed_at = $3, updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND status = 'running' \
             AND NOT EXISTS (SELECT 1 FROM dialer_jobs j WHERE j.campaign_id = $1 AND j.status IN ({})) \
             AND NOT EXISTS (SELECT 1 FROM calls k WHERE k.campaign_id = $1 AND k.status IN ({}))",
            active_jobs_sql(),
            live_calls_sql()
        );
        let n = execute!(tx, &sql, DbId(id.0), DbId(tenant.0), micros(now))?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn list_jobs(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        status: Option<JobStatus>,
        page: Page,
    ) -> StoreResult<Paged<Job>> {
        let mut h = self.read().await?;
        self.campaign_status(&mut h, tenant, campaign, None).await?;
        let mut args = Args::new(self.engine());
        let mut filter = format!(
            "tenant_id = {} AND campaign_id = {}",
            args.add(DbId(tenant.0)),
            args.add(DbId(campaign.0))
        );
        if let Some(s) = status {
            filter.push_str(&format!(" AND status = {}", args.add(s.as_str())));
        }
        let (total,): (i64,) = dynamic::fetch_one(
            &mut h,
            &format!("SELECT COUNT(*) FROM dialer_jobs WHERE {filter}"),
            args.clone(),
        )
        .await?;
        let sql = format!(
            "SELECT {JOB_COLS} FROM dialer_jobs WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            args.add(page.limit()),
            args.add(page.offset())
        );
        let rows: Vec<JobRow> = dynamic::fetch_all(&mut h, &sql, args).await?;
        let jobs = rows
            .into_iter()
            .map(Job::try_from)
            .collect::<StoreResult<_>>()?;
        Ok((jobs, total))
    }

    async fn campaign_stats(&self, tenant: TenantId, id: CampaignId) -> StoreResult<CampaignStats> {
        let mut h = self.read().await?;
        let campaign = self.campaign_row(&mut h, tenant, id, None).await?;
        let (t, c) = (DbId(tenant.0), DbId(id.0));
        let (total_leads,) = fetch_one!(
            h,
            (i64,),
            "SELECT COUNT(*) FROM leads WHERE tenant_id = $1 AND campaign_id = $2 AND status <> 'deleted'",
            t,
            c
        )?;
        let mut job_status_counts: BTreeMap<String, i64> = JobStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        for (status, n) in fetch_all!(
            h,
            (String, i64),
            "SELECT status, COUNT(*) FROM dialer_jobs WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY status",
            t,
            c
        )? {
            job_status_counts.insert(status, n);
        }
        let mut call_outcome_counts: BTreeMap<String, i64> = Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_owned(), 0))
            .collect();
        for (outcome, n) in fetch_all!(
            h,
            (String, i64),
            "SELECT outcome, COUNT(*) FROM calls WHERE tenant_id = $1 AND campaign_id = $2 \
             AND outcome IS NOT NULL GROUP BY outcome",
            t,
            c
        )? {
            call_outcome_counts.insert(outcome, n);
        }
        let goals_achieved = call_outcome_counts
            .get(Outcome::GoalAchieved.as_str())
            .copied()
            .unwrap_or(0);
        Ok(CampaignStats {
            campaign_id: id,
            campaign_status: campaign.status,
            total_leads,
            job_status_counts,
            call_outcome_counts,
            goals_achieved,
        })
    }
}

impl LiveCallRow {
    fn into_live(self) -> LiveCall {
        LiveCall {
            id: CallId(self.id.0),
            provider: self.provider,
            provider_call_id: self.provider_call_id,
        }
    }
}
