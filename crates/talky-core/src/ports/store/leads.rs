//! Leads (contacts) of a campaign: CSV import, single add, list, soft delete
//! (behaviour.md D8–D14, E5).

use crate::csv_import::{ImportReport, ParsedRow, RowError};
use crate::ids::{CampaignId, LeadId, TenantId};
use crate::model::LeadStatus;
use crate::phone::E164;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Page, Paged, StoreResult};

/// Rows written per transaction by an import (D12).
pub const IMPORT_CHUNK_ROWS: usize = 500;

/// A lead of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lead {
    pub id: LeadId,
    pub campaign_id: CampaignId,
    pub phone_number: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub status: LeadStatus,
    /// `pending` until the first call ends, then that call's outcome (E16).
    pub last_call_result: String,
    pub call_attempts: i64,
    pub priority: i64,
    pub is_high_value: bool,
    pub tags: Vec<String>,
    pub last_called_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /campaigns/{id}/contacts` (D13), validated by the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLead {
    pub phone: E164,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

impl NewLead {
    pub fn new(phone: E164) -> Self {
        Self {
            phone,
            first_name: None,
            last_name: None,
            email: None,
            custom_fields: serde_json::Map::new(),
        }
    }
}

/// The result of a single add: a new lead (`201`) or a revived soft-deleted one (`200`, D9).
#[derive(Debug, Clone, PartialEq)]
pub struct AddedLead {
    pub lead: Lead,
    pub revived: bool,
}

/// The `409` detail for a phone that is already a (non-deleted) lead of the campaign (D13).
pub fn lead_exists_message(phone: &E164) -> String {
    format!("Phone number {phone} already exists in this campaign")
}

/// The `409` detail for a phone on the tenant DNC list (D8, D13).
pub const ON_DNC_MESSAGE: &str = RowError::ON_DNC_LIST;

/// Filters of `GET /campaigns/{id}/contacts` (D14). Deleted leads are never listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    pub status: Option<LeadStatus>,
    pub last_call_result: Option<String>,
}

#[async_trait]
pub trait LeadStore: Send + Sync {
    /// Writes the rows of a parsed CSV into a campaign (D8, D9, D12, E5) and records each
    /// row's fate in `report` (as returned by `ParsedImport::into_rows_and_report`), which
    /// is returned *unfinished*: the caller applies `finish(max_errors)`.
    ///
    /// Per row, in file order: a phone equal to a non-deleted lead of the campaign is a
    /// duplicate (`skip_duplicates`) or the error `Phone number already exists in this
    /// campaign`; else a phone on the tenant DNC list is the error `Number is on the
    /// do-not-call list`; else a deleted lead with that phone is revived in place (status
    /// `pending`, non-empty fields overwrite, custom fields merged); else a new lead is
    /// inserted. Rows are written in chunks of [`IMPORT_CHUNK_ROWS`], each chunk in its own
    /// transaction; a failed chunk is retried row by row and each failing row is reported
    /// as `Database insert failed`. Leads written while the campaign is `running` get their
    /// job in the same transaction. Rows must carry distinct phones (the parser ensures
    /// it); a repeated phone fails on its own row like any other insert failure.
    /// A missing or foreign campaign → `NotFound` before anything is written.
    async fn import_leads(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        rows: Vec<ParsedRow>,
        skip_duplicates: bool,
        report: ImportReport,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportReport>;

    /// D13: creates the lead, or revives a deleted one with the same phone. An existing
    /// lead → `Conflict(lead_exists_message)`; a DNC number → `Conflict(ON_DNC_MESSAGE)`.
    /// In a running campaign the lead gets its job in the same transaction.
    async fn add_lead(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        lead: NewLead,
        now: DateTime<Utc>,
    ) -> StoreResult<AddedLead>;

    /// A non-deleted lead of the campaign.
    async fn get_lead(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        lead: LeadId,
    ) -> StoreResult<Lead>;

    /// D14: non-deleted leads, newest first.
    async fn list_leads(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        filter: LeadFilter,
        page: Page,
    ) -> StoreResult<Paged<Lead>>;

    /// D14: soft delete (`status = deleted`) and the lead's active job → `skipped`
    /// (`last_error = "lead_deleted"`), in one transaction. Unknown or already deleted →
    /// `NotFound`.
    async fn delete_lead(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        lead: LeadId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}
