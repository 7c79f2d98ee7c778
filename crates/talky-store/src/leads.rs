//! Leads: CSV import, single add, list, soft delete (behaviour.md D8–D14, E5).
//!
//! An import reads the campaign's existing phones and the tenant's DNC set once, decides
//! every row in memory, then writes in chunks of [`IMPORT_CHUNK_ROWS`] rows, one transaction
//! per chunk, with one multi-row `INSERT` for the new leads of the chunk.

use crate::campaigns::{active_jobs_sql, insert_jobs};
use crate::db::{micros, DbId, DbTime, Handle, SqlStore};
use crate::dynamic::{self, corrupt, new_id, Args, Lock};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use std::collections::{HashMap, HashSet};
use talky_core::csv_import::{ImportReport, ParsedRow, RowError};
use talky_core::ids::{CampaignId, LeadId, TenantId};
use talky_core::model::{CampaignStatus, LeadStatus};
use talky_core::ports::store::*;

/// The priority of a lead created by Talky (the column default).
const DEFAULT_LEAD_PRIORITY: i64 = 5;

#[derive(sqlx::FromRow)]
pub(crate) struct LeadRow {
    id: DbId,
    campaign_id: DbId,
    phone_number: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    custom_fields: Json<Map<String, Value>>,
    status: String,
    last_call_result: String,
    call_attempts: i64,
    priority: i64,
    is_high_value: bool,
    tags: Json<Vec<String>>,
    last_called_at: Option<DbTime>,
    created_at: DbTime,
    updated_at: DbTime,
}

pub(crate) const LEAD_COLS: &str = "id, campaign_id, phone_number, first_name, last_name, email, \
    custom_fields, status, last_call_result, call_attempts, priority, is_high_value, tags, \
    last_called_at, created_at, updated_at";

impl TryFrom<LeadRow> for Lead {
    type Error = StoreError;
    fn try_from(r: LeadRow) -> StoreResult<Lead> {
        Ok(Lead {
            id: LeadId(r.id.0),
            campaign_id: CampaignId(r.campaign_id.0),
            phone_number: r.phone_number,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            custom_fields: r.custom_fields.0,
            status: r.status.parse().map_err(corrupt)?,
            last_call_result: r.last_call_result,
            call_attempts: r.call_attempts,
            priority: r.priority,
            is_high_value: r.is_high_value,
            tags: r.tags.0,
            last_called_at: r.last_called_at.map(|t| t.0),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// One lead to write: a new row, or the revival of a soft-deleted one (D9).
struct LeadWrite<'a> {
    revive: Option<DbId>,
    /// Row number for the import report (0 for a single add).
    row: usize,
    raw_phone: &'a str,
    phone: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    email: Option<&'a str>,
    custom: Map<String, Value>,
    created_at: DbTime,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

#[derive(sqlx::FromRow)]
struct ReviveRow {
    custom_fields: Json<Map<String, Value>>,
    priority: i64,
    is_high_value: bool,
    tags: Json<Vec<String>>,
}

/// Writes `writes` inside `tx` and, when `running`, their jobs; returns the lead ids in order.
async fn write_leads_in(
    tx: &mut Handle,
    tenant: DbId,
    campaign: DbId,
    running: bool,
    writes: &[LeadWrite<'_>],
    now: DbTime,
) -> StoreResult<Vec<DbId>> {
    let mut ids = Vec::with_capacity(writes.len());
    let mut jobs = Vec::new();

    let inserts: Vec<&LeadWrite> = writes.iter().filter(|w| w.revive.is_none()).collect();
    let mut new_ids = Vec::with_capacity(inserts.len());
    if !inserts.is_empty() {
        let mut args = Args::with_capacity(tx.engine(), inserts.len() * 10);
        let mut values = Vec::with_capacity(inserts.len());
        for w in &inserts {
            let id = new_id();
            new_ids.push(id);
            // In column order (see the column list below).
            let row = [
                args.add(id),
                args.add(tenant),
                args.add(campaign),
                args.add(w.phone),
                args.add(w.first_name.map(str::to_owned)),
                args.add(w.last_name.map(str::to_owned)),
                args.add(w.email.map(str::to_owned)),
                args.add(Value::Object(w.custom.clone())),
                args.add(w.created_at),
                args.add(w.created_at),
            ];
            values.push(format!(
                "({}, 'pending', 'pending', 0, {DEFAULT_LEAD_PRIORITY}, FALSE, '[]')",
                row.join(", ")
            ));
        }
        let sql = format!(
            "INSERT INTO leads (id, tenant_id, campaign_id, phone_number, first_name, last_name, email, \
             custom_fields, created_at, updated_at, status, last_call_result, call_attempts, priority, \
             is_high_value, tags) VALUES {}",
            values.join(", ")
        );
        dynamic::execute(tx, &sql, args).await?;
    }

    let mut new_ids = new_ids.into_iter();
    for w in writes {
        match w.revive {
            None => {
                let id = new_ids.next().expect("one id per insert");
                if running {
                    jobs.push((id, job_priority(DEFAULT_LEAD_PRIORITY, false, &[], None)));
                }
                ids.push(id);
            }
            Some(id) => {
                let old = fetch_optional!(
                    tx,
                    ReviveRow,
                    "SELECT custom_fields, priority, is_high_value, tags FROM leads \
                     WHERE id = $1 AND tenant_id = $2 AND campaign_id = $3 AND status = 'deleted'",
                    id,
                    tenant,
                    campaign
                )?
                .ok_or_else(|| StoreError::Conflict("lead changed during the import".into()))?;
                let mut custom = old.custom_fields.0;
                custom.extend(w.custom.iter().map(|(k, v)| (k.clone(), v.clone())));
                execute!(
                    tx,
                    "UPDATE leads SET status = 'pending', first_name = COALESCE($3, first_name), \
                     last_name = COALESCE($4, last_name), email = COALESCE($5, email), \
                     custom_fields = $6, updated_at = $7 WHERE id = $1 AND tenant_id = $2",
                    id,
                    tenant,
                    w.first_name,
                    w.last_name,
                    w.email,
                    Json(Value::Object(custom)),
                    now
                )?;
                if running {
                    jobs.push((
                        id,
                        job_priority(old.priority, old.is_high_value, &old.tags.0, None),
                    ));
                }
                ids.push(id);
            }
        }
    }
    if !jobs.is_empty() {
        insert_jobs(tx, tenant, campaign, &jobs, now).await?;
    }
    Ok(ids)
}

impl SqlStore {
    /// One import chunk in its own transaction (D12), re-reading the campaign status under
    /// a share lock so a concurrent start either sees these leads or is seen by them (E5).
    async fn write_lead_chunk(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        writes: &[LeadWrite<'_>],
        now: DbTime,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let status = self
            .campaign_status(&mut tx, tenant, campaign, Some(Lock::Share))
            .await?;
        let running = status == CampaignStatus::Running;
        write_leads_in(
            &mut tx,
            DbId(tenant.0),
            DbId(campaign.0),
            running,
            writes,
            now,
        )
        .await?;
        tx.commit().await
    }

    async fn lead_row(
        &self,
        h: &mut Handle,
        tenant: TenantId,
        campaign: CampaignId,
        id: DbId,
    ) -> StoreResult<Lead> {
        let sql = format!(
            "SELECT {LEAD_COLS} FROM leads WHERE id = $1 AND tenant_id = $2 AND campaign_id = $3 \
             AND status <> 'deleted'"
        );
        fetch_optional!(h, LeadRow, &sql, id, DbId(tenant.0), DbId(campaign.0))?
            .ok_or(StoreError::NotFound)?
            .try_into()
    }
}

fn record(report: &mut ImportReport, w: &LeadWrite<'_>) {
    if w.revive.is_some() {
        report.record_revived();
    } else {
        report.record_imported();
    }
}

/// Errors after which retrying row by row is pointless: the database is gone, or the
/// campaign was deleted meanwhile.
fn is_fatal(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::NotFound)
}

#[async_trait]
impl LeadStore for SqlStore {
    async fn import_leads(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        rows: Vec<ParsedRow>,
        skip_duplicates: bool,
        mut report: ImportReport,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportReport> {
        let (t, c) = (DbId(tenant.0), DbId(campaign.0));
        let mut existing: HashMap<String, (DbId, bool)> = HashMap::new();
        let mut dnc: HashSet<String> = HashSet::new();
        {
            let mut h = self.read().await?;
            self.campaign_status(&mut h, tenant, campaign, None).await?;
            for (id, phone, status) in fetch_all!(
                h,
                (DbId, String, String),
                "SELECT id, phone_number, status FROM leads WHERE tenant_id = $1 AND campaign_id = $2",
                t,
                c
            )? {
                existing.insert(phone, (id, status == LeadStatus::Deleted.as_str()));
            }
            for (phone,) in fetch_all!(
                h,
                (String,),
                "SELECT phone_number FROM dnc WHERE tenant_id = $1",
                t
            )? {
                dnc.insert(phone);
            }
        }

        // Decide every row in memory, in file order.
        let now = micros(now);
        let mut writes = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let phone = row.phone.as_str();
            let found = existing.get(phone).copied();
            let revive = match found {
                Some((_, false)) => {
                    if skip_duplicates {
                        report.record_duplicate();
                    } else {
                        report.add_error(
                            row.row,
                            RowError::ALREADY_IN_CAMPAIGN,
                            Some(row.raw_phone.clone()),
                        );
                    }
                    continue;
                }
                _ if dnc.contains(phone) => {
                    report.add_error(row.row, RowError::ON_DNC_LIST, Some(row.raw_phone.clone()));
                    continue;
                }
                Some((id, true)) => Some(id),
                None => None,
            };
            writes.push(LeadWrite {
                revive,
                row: row.row,
                raw_phone: &row.raw_phone,
                phone,
                first_name: non_empty(&row.first_name),
                last_name: non_empty(&row.last_name),
                email: non_empty(&row.email),
                custom: row.custom_fields_json(),
                // One microsecond apart, so "newest first" is the reverse of file order.
                created_at: micros(now.0 + Duration::microseconds(i as i64)),
            });
        }

        for chunk in writes.chunks(IMPORT_CHUNK_ROWS) {
            match self.write_lead_chunk(tenant, campaign, chunk, now).await {
                Ok(()) => chunk.iter().for_each(|w| record(&mut report, w)),
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, rows = chunk.len(), "lead import chunk failed; retrying row by row");
                    for w in chunk {
                        match self
                            .write_lead_chunk(tenant, campaign, std::slice::from_ref(w), now)
                            .await
                        {
                            Ok(()) => record(&mut report, w),
                            Err(e) if is_fatal(&e) => return Err(e),
                            Err(e) => {
                                tracing::warn!(error = %e, row = w.row, "lead import row failed");
                                report.add_error(
                                    w.row,
                                    RowError::DATABASE_INSERT_FAILED,
                                    Some(w.raw_phone.to_owned()),
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    async fn add_lead(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        lead: NewLead,
        now: DateTime<Utc>,
    ) -> StoreResult<AddedLead> {
        let now = micros(now);
        let (t, c) = (DbId(tenant.0), DbId(campaign.0));
        let phone = lead.phone.as_str();
        let mut tx = self.begin().await?;
        let status = self
            .campaign_status(&mut tx, tenant, campaign, Some(Lock::Share))
            .await?;
        let found = fetch_optional!(
            tx,
            (DbId, String),
            "SELECT id, status FROM leads WHERE tenant_id = $1 AND campaign_id = $2 AND phone_number = $3",
            t,
            c,
            phone
        )?;
        let revive = match found {
            Some((_, s)) if s != LeadStatus::Deleted.as_str() => {
                return Err(StoreError::Conflict(lead_exists_message(&lead.phone)));
            }
            Some((id, _)) => Some(id),
            None => None,
        };
        let on_dnc = fetch_optional!(
            tx,
            (i64,),
            "SELECT CAST(1 AS BIGINT) FROM dnc WHERE tenant_id = $1 AND phone_number = $2",
            t,
            phone
        )?;
        if on_dnc.is_some() {
            return Err(StoreError::Conflict(ON_DNC_MESSAGE.into()));
        }
        let write = LeadWrite {
            revive,
            row: 0,
            raw_phone: phone,
            phone,
            first_name: non_empty(&lead.first_name),
            last_name: non_empty(&lead.last_name),
            email: non_empty(&lead.email),
            custom: lead.custom_fields.clone(),
            created_at: now,
        };
        let running = status == CampaignStatus::Running;
        let ids = write_leads_in(&mut tx, t, c, running, std::slice::from_ref(&write), now)
            .await
            .map_err(|e| match e {
                // A concurrent add of the same number won the unique index.
                StoreError::Conflict(_) => StoreError::Conflict(lead_exists_message(&lead.phone)),
                other => other,
            })?;
        let row = self.lead_row(&mut tx, tenant, campaign, ids[0]).await?;
        tx.commit().await?;
        Ok(AddedLead {
            lead: row,
            revived: revive.is_some(),
        })
    }

    async fn get_lead(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        lead: LeadId,
    ) -> StoreResult<Lead> {
        let mut h = self.read().await?;
        self.lead_row(&mut h, tenant, campaign, DbId(lead.0)).await
    }

    async fn list_leads(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        filter: LeadFilter,
        page: Page,
    ) -> StoreResult<Paged<Lead>> {
        let mut h = self.read().await?;
        self.campaign_status(&mut h, tenant, campaign, None).await?;
        let mut args = Args::new(self.engine());
        let mut cond = format!(
            "tenant_id = {} AND campaign_id = {} AND status <> 'deleted'",
            args.add(DbId(tenant.0)),
            args.add(DbId(campaign.0))
        );
        if let Some(s) = filter.status {
            cond.push_str(&format!(" AND status = {}", args.add(s.as_str())));
        }
        if let Some(r) = filter.last_call_result {
            cond.push_str(&format!(" AND last_call_result = {}", args.add(r)));
        }
        let (total,): (i64,) = dynamic::fetch_one(
            &mut h,
            &format!("SELECT COUNT(*) FROM leads WHERE {cond}"),
            args.clone(),
        )
        .await?;
        let sql = format!(
            "SELECT {LEAD_COLS} FROM leads WHERE {cond} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            args.add(page.limit()),
            args.add(page.offset())
        );
        let rows: Vec<LeadRow> = dynamic::fetch_all(&mut h, &sql, args).await?;
        let leads = rows
            .into_iter()
            .map(Lead::try_from)
            .collect::<StoreResult<_>>()?;
        Ok((leads, total))
    }

    async fn delete_lead(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        lead: LeadId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let now = micros(now);
        let (t, c, l) = (DbId(tenant.0), DbId(campaign.0), DbId(lead.0));
        let mut tx = self.begin().await?;
        let n = execute!(
            tx,
            "UPDATE leads SET status = 'deleted', updated_at = $4 \
             WHERE id = $1 AND tenant_id = $2 AND campaign_id = $3 AND status <> 'deleted'",
            l,
            t,
            c,
            now
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        execute!(
            tx,
            &format!(
                "UPDATE dialer_jobs SET status = 'skipped', last_error = 'lead_deleted', updated_at = $3, \
                 leased_by = NULL, leased_until = NULL \
                 WHERE lead_id = $1 AND tenant_id = $2 AND status IN ({})",
                active_jobs_sql()
            ),
            l,
            t,
            now
        )?;
        tx.commit().await
    }
}
