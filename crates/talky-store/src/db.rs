//! Engine dispatch and the column types both engines share.
//!
//! sqlx's generic `Database` bounds explode when one function must serve two drivers, so
//! instead each query is written once and run through a small macro that picks the concrete
//! driver at runtime ([`fetch_optional!`], [`fetch_all!`], [`fetch_one!`], [`execute!`]).
//! The SQL text, the bound values and the row type are the same for both engines; only the
//! driver call differs. Ids and instants go through [`DbId`] and [`DbTime`], which store
//! natively on PostgreSQL (uuid, timestamptz) and as fixed-width text on SQLite, so text
//! order equals time order there.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{
    Decode, Encode, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Type,
};
use talky_core::ports::store::StoreError;
use uuid::Uuid;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The connection pools of a store.
#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Pg(PgPool),
}

/// The store: implements every store port of `talky-core` on either engine.
#[derive(Clone)]
pub struct SqlStore {
    pools: Pools,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqlStore({:?})", self.engine())
    }
}

impl SqlStore {
    pub(crate) fn sqlite(read: SqlitePool, write: SqlitePool) -> Self {
        Self {
            pools: Pools::Sqlite { read, write },
        }
    }

    pub(crate) fn postgres(pool: PgPool) -> Self {
        Self {
            pools: Pools::Pg(pool),
        }
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    pub fn engine(&self) -> Engine {
        match self.pools {
            Pools::Sqlite { .. } => Engine::Sqlite,
            Pools::Pg(_) => Engine::Postgres,
        }
    }

    /// A pooled connection for reads.
    pub(crate) async fn read(&self) -> Result<Handle, StoreError> {
        Ok(match &self.pools {
            Pools::Sqlite { read, .. } => {
                Handle::SqliteConn(read.acquire().await.map_err(map_err)?)
            }
            Pools::Pg(p) => Handle::PgConn(p.acquire().await.map_err(map_err)?),
        })
    }

    /// The writer without a transaction, for a single statement (it commits on its own).
    /// On SQLite this holds the one writer connection for one round trip instead of the
    /// three of begin/statement/commit, which matters when the runtime is busy: the writer
    /// is held while the task that owns it waits to be polled.
    pub(crate) async fn write(&self) -> Result<Handle, StoreError> {
        Ok(match &self.pools {
            Pools::Sqlite { write, .. } => {
                Handle::SqliteConn(write.acquire().await.map_err(map_err)?)
            }
            Pools::Pg(p) => Handle::PgConn(p.acquire().await.map_err(map_err)?),
        })
    }

    /// A write transaction; commit it with [`Handle::commit`], or drop it to roll back.
    pub(crate) async fn begin(&self) -> Result<Handle, StoreError> {
        Ok(match &self.pools {
            Pools::Sqlite { write, .. } => Handle::SqliteTx(write.begin().await.map_err(map_err)?),
            Pools::Pg(p) => Handle::PgTx(p.begin().await.map_err(map_err)?),
        })
    }

    /// Closes the pools (used by tests before dropping a database).
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pools::Pg(p) => p.close().await,
        }
    }
}

/// A connection or transaction on either engine.
pub(crate) enum Handle {
    SqliteConn(sqlx::pool::PoolConnection<Sqlite>),
    SqliteTx(sqlx::Transaction<'static, Sqlite>),
    PgConn(sqlx::pool::PoolConnection<Postgres>),
    PgTx(sqlx::Transaction<'static, Postgres>),
}

/// A borrowed driver connection, what the query macros match on.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

impl Handle {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Handle::SqliteConn(c) => Conn::Sqlite(c),
            Handle::SqliteTx(t) => Conn::Sqlite(t),
            Handle::PgConn(c) => Conn::Pg(c),
            Handle::PgTx(t) => Conn::Pg(t),
        }
    }

    #[allow(dead_code)]
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Handle::SqliteConn(_) | Handle::SqliteTx(_) => Engine::Sqlite,
            Handle::PgConn(_) | Handle::PgTx(_) => Engine::Postgres,
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Handle::SqliteTx(t) => t.commit().await.map_err(map_err),
            Handle::PgTx(t) => t.commit().await.map_err(map_err),
            Handle::SqliteConn(_) | Handle::PgConn(_) => Ok(()),
        }
    }
}

/// Runs `query_as::<_, $row>($sql).bind(..)…` with `$method` on whichever engine `$h` uses.
macro_rules! run_query_as {
    ($method:ident, $h:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $h.conn() {
            $crate::db::Conn::Sqlite(c) => sqlx::query_as::<_, $row>($sql)$(.bind($arg))*.$method(c).await,
            $crate::db::Conn::Pg(c) => sqlx::query_as::<_, $row>($sql)$(.bind($arg))*.$method(c).await,
        }.map_err($crate::db::map_err)
    };
}

/// Zero or one row.
macro_rules! fetch_optional {
    ($h:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        run_query_as!(fetch_optional, $h, $row, $sql $(, $arg)*)
    };
}

/// Exactly one row (a missing row is an internal error; use `fetch_optional!` for lookups).
macro_rules! fetch_one {
    ($h:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        run_query_as!(fetch_one, $h, $row, $sql $(, $arg)*)
    };
}

/// All rows.
macro_rules! fetch_all {
    ($h:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        run_query_as!(fetch_all, $h, $row, $sql $(, $arg)*)
    };
}

/// A statement without rows; yields the number of rows affected.
macro_rules! execute {
    ($h:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $h.conn() {
            $crate::db::Conn::Sqlite(c) => sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|r| r.rows_affected()),
            $crate::db::Conn::Pg(c) => sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|r| r.rows_affected()),
        }.map_err($crate::db::map_err)
    };
}

/// Maps a driver error to the store's error vocabulary.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("already exists".into())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A UUID column: native `uuid` on PostgreSQL, hyphenated text on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DbId(pub Uuid);

impl<T: Into<Uuid>> From<T> for DbId {
    fn from(v: T) -> Self {
        DbId(v.into())
    }
}

impl Type<Sqlite> for DbId {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbId {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.0.hyphenated().to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbId {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(DbId(Uuid::parse_str(s)?))
    }
}

impl Type<Postgres> for DbId {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <Uuid as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbId {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DbId(<Uuid as Decode<'r, Postgres>>::decode(value)?))
    }
}

/// An instant column: `timestamptz` on PostgreSQL; on SQLite RFC 3339 UTC text with exactly
/// six fractional digits and `Z`, so lexical comparison in SQL is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbTime(pub DateTime<Utc>);

impl From<DateTime<Utc>> for DbTime {
    fn from(v: DateTime<Utc>) -> Self {
        DbTime(v)
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        let text = self.0.to_rfc3339_opts(SecondsFormat::Micros, true);
        <String as Encode<'q, Sqlite>>::encode(text, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(DbTime(DateTime::parse_from_rfc3339(s)?.with_timezone(&Utc)))
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DbTime(<DateTime<Utc> as Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

/// Microsecond precision, the resolution both engines keep.
pub(crate) fn micros(t: DateTime<Utc>) -> DbTime {
    let us = t.timestamp_micros();
    DbTime(DateTime::from_timestamp_micros(us).unwrap_or(t))
}
