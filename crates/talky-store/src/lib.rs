//! Talky's persistence: one schema on two engines. `connect(url)` opens SQLite (the
//! embedded default) or PostgreSQL, applies the embedded migrations and returns the one
//! [`SqlStore`] that implements every store port of `talky-core`.
//!
//! Both engines share the SQL text wherever the dialects agree (SQLite accepts `$1`); the
//! dispatch to the concrete sqlx driver happens per query in [`db`], so each store method
//! is written once. Where dialects differ (date bucketing, locking) a method branches on
//! [`Engine`].

#[macro_use]
mod db;
mod accounts;
mod admin;
mod calls;
mod campaigns;
mod clients;
mod dnc;
mod dynamic;
mod leads;
mod reports;
pub mod testing;
mod voice;

pub use db::{DbId, DbTime, Engine};

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use talky_core::ports::store::{Store, StoreError};

pub use db::SqlStore;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Versions of the embedded migrations, per engine (the parity test compares them).
pub fn migration_versions(engine: Engine) -> Vec<i64> {
    let m = match engine {
        Engine::Sqlite => &SQLITE_MIGRATIONS,
        Engine::Postgres => &POSTGRES_MIGRATIONS,
    };
    m.iter().map(|m| m.version).collect()
}

/// Opens the database named by `url` (`sqlite://path` or `postgres://…`) without migrating.
pub async fn open(url: &str) -> Result<SqlStore, StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return Err(StoreError::Internal(
                "an in-memory SQLite database is not supported; give a file path".into(),
            ));
        }
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| StoreError::Internal(format!("bad sqlite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One writer connection serialises writes (no SQLITE_BUSY on lock upgrades);
        // readers run in parallel under WAL.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(db::unavailable)?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(false))
            .await
            .map_err(db::unavailable)?;
        Ok(SqlStore::sqlite(read, write))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db::unavailable)?;
        Ok(SqlStore::postgres(pool))
    } else {
        Err(StoreError::Internal(
            "database_url must start with sqlite:// or postgres://".into(),
        ))
    }
}

impl SqlStore {
    /// Applies the embedded migrations of this engine.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let res = match self.pools() {
            db::Pools::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await,
            db::Pools::Pg(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        res.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))
    }
}

/// Opens and migrates the database: what `talky serve` does at startup.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store = open(url).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}
