//! The tenant's clients (address book, behaviour.md D1, D15).

use crate::csv_import::{ImportReport, ParsedRow};
use crate::ids::{ClientId, TenantId};
use crate::phone::E164;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;

/// A client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// `POST /clients` (D15), validated by the edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewClient {
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<E164>,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
}

/// The name a CSV row gives a client: its `name` column, else `first_name last_name`, else
/// the phone number (the column is required).
pub fn client_name_of(row: &ParsedRow) -> String {
    if let Some(n) = &row.name {
        return n.clone();
    }
    let full = [row.first_name.as_deref(), row.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if full.is_empty() {
        row.phone.to_string()
    } else {
        full
    }
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(
        &self,
        tenant: TenantId,
        client: NewClient,
        now: DateTime<Utc>,
    ) -> StoreResult<Client>;
    async fn get_client(&self, tenant: TenantId, id: ClientId) -> StoreResult<Client>;
    /// All clients of the tenant, ordered by name.
    async fn list_clients(&self, tenant: TenantId) -> StoreResult<Vec<Client>>;
    async fn delete_client(&self, tenant: TenantId, id: ClientId) -> StoreResult<()>;
    /// `/contacts/bulk` without a campaign (D1): each row becomes a client (name per
    /// [`client_name_of`], `company`, `email`, custom fields), written like
    /// `LeadStore::import_leads` (chunks of 500, row-by-row retry). Clients are an address
    /// book: no duplicate or DNC check against existing clients. `report` is returned
    /// unfinished.
    async fn import_clients(
        &self,
        tenant: TenantId,
        rows: Vec<ParsedRow>,
        report: ImportReport,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportReport>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ParsedRow {
        ParsedRow {
            row: 2,
            phone: E164::parse("+15551234567").unwrap(),
            raw_phone: "+15551234567".into(),
            first_name: None,
            last_name: None,
            email: None,
            name: None,
            company: None,
            custom_fields: Default::default(),
        }
    }

    #[test]
    fn client_name_falls_back() {
        let mut r = row();
        assert_eq!(client_name_of(&r), "+15551234567");
        r.last_name = Some("Doe".into());
        assert_eq!(client_name_of(&r), "Doe");
        r.first_name = Some("Jane".into());
        assert_eq!(client_name_of(&r), "Jane Doe");
        r.name = Some("J. Doe".into());
        assert_eq!(client_name_of(&r), "J. Doe");
    }
}
