//! The tenant's clients (behaviour.md D1, D15).

use crate::db::{micros, DbId, DbTime, SqlStore};
use crate::dynamic::{self, new_id, Args};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use talky_core::csv_import::{ImportReport, ParsedRow, RowError};
use talky_core::ids::{ClientId, TenantId};
use talky_core::ports::store::*;

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: DbId,
    name: String,
    company: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    tags: Json<Vec<String>>,
    notes: Option<String>,
    custom_fields: Json<Map<String, Value>>,
    created_at: DbTime,
}

const CLIENT_COLS: &str = "id, name, company, phone, email, tags, notes, custom_fields, created_at";

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        Client {
            id: ClientId(r.id.0),
            name: r.name,
            company: r.company,
            phone: r.phone,
            email: r.email,
            tags: r.tags.0,
            notes: r.notes,
            custom_fields: r.custom_fields.0,
            created_at: r.created_at.0,
        }
    }
}

impl SqlStore {
    /// Inserts `rows` as clients in one transaction with one multi-row `INSERT`.
    async fn write_client_chunk(
        &self,
        tenant: TenantId,
        rows: &[(&ParsedRow, DbTime)],
    ) -> StoreResult<()> {
        let mut args = Args::with_capacity(self.engine(), rows.len() * 8);
        let mut values = Vec::with_capacity(rows.len());
        for (row, at) in rows {
            // In column order (see the column list below).
            let vals = [
                args.add(new_id()),
                args.add(DbId(tenant.0)),
                args.add(client_name_of(row)),
                args.add(row.company.clone()),
                args.add(row.phone.as_str()),
                args.add(row.email.clone()),
                args.add(Value::Object(row.custom_fields_json())),
                args.add(*at),
            ];
            values.push(format!("({}, '[]', NULL)", vals.join(", ")));
        }
        let sql = format!(
            "INSERT INTO clients (id, tenant_id, name, company, phone, email, custom_fields, created_at, \
             tags, notes) VALUES {}",
            values.join(", ")
        );
        let mut tx = self.begin().await?;
        dynamic::execute(&mut tx, &sql, args).await?;
        tx.commit().await
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn create_client(
        &self,
        tenant: TenantId,
        client: NewClient,
        now: DateTime<Utc>,
    ) -> StoreResult<Client> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO clients (id, tenant_id, name, company, phone, email, tags, notes, custom_fields, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '{{}}', $9) RETURNING {CLIENT_COLS}"
        );
        let row = fetch_one!(
            tx,
            ClientRow,
            &sql,
            new_id(),
            DbId(tenant.0),
            client.name,
            client.company,
            client.phone.map(|p| p.into_string()),
            client.email,
            Json(client.tags),
            client.notes,
            micros(now)
        )?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn get_client(&self, tenant: TenantId, id: ClientId) -> StoreResult<Client> {
        let mut h = self.read().await?;
        let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1 AND tenant_id = $2");
        fetch_optional!(h, ClientRow, &sql, DbId(id.0), DbId(tenant.0))?
            .map(Client::from)
            .ok_or(StoreError::NotFound)
    }

    async fn list_clients(&self, tenant: TenantId) -> StoreResult<Vec<Client>> {
        let mut h = self.read().await?;
        let sql = format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE tenant_id = $1 ORDER BY name, created_at, id"
        );
        Ok(fetch_all!(h, ClientRow, &sql, DbId(tenant.0))?
            .into_iter()
            .map(Client::from)
            .collect())
    }

    async fn delete_client(&self, tenant: TenantId, id: ClientId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = execute!(
            tx,
            "DELETE FROM clients WHERE id = $1 AND tenant_id = $2",
            DbId(id.0),
            DbId(tenant.0)
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn import_clients(
        &self,
        tenant: TenantId,
        rows: Vec<ParsedRow>,
        mut report: ImportReport,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportReport> {
        let now = micros(now);
        let rows: Vec<(&ParsedRow, DbTime)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r, micros(now.0 + Duration::microseconds(i as i64))))
            .collect();
        for chunk in rows.chunks(IMPORT_CHUNK_ROWS) {
            match self.write_client_chunk(tenant, chunk).await {
                Ok(()) => chunk.iter().for_each(|_| report.record_imported()),
                Err(e @ StoreError::Unavailable(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, rows = chunk.len(), "client import chunk failed; retrying row by row");
                    for one in chunk {
                        match self
                            .write_client_chunk(tenant, std::slice::from_ref(one))
                            .await
                        {
                            Ok(()) => report.record_imported(),
                            Err(e @ StoreError::Unavailable(_)) => return Err(e),
                            Err(_) => report.add_error(
                                one.0.row,
                                RowError::DATABASE_INSERT_FAILED,
                                Some(one.0.raw_phone.clone()),
                            ),
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}
