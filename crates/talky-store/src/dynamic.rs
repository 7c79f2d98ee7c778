//! Queries whose bound values are known only at run time: multi-row `INSERT`s (imports,
//! job enqueueing) and lists whose `WHERE` clause depends on the filters given. The SQL text
//! is built once for both engines from the placeholders [`Args::add`] hands out.
//!
//! Placeholders are positional: `?` on SQLite, `$n` on PostgreSQL, one per value, so a
//! builder must call `add` once per occurrence and in the order the placeholders appear in
//! the text. SQLite gets anonymous `?` because it resolves a named/numbered parameter
//! (`$n`) by a linear scan, which makes binding a 5 000-value `INSERT` quadratic (it was
//! half the time of a large import).

use crate::db::{map_err, Conn, DbId, DbTime, Handle, SqlStore};
use crate::Engine;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use talky_core::ports::store::StoreResult;

/// One bound value.
#[derive(Clone)]
pub(crate) enum Arg {
    Id(Option<DbId>),
    Time(Option<DbTime>),
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Json(Option<Json<serde_json::Value>>),
}

impl From<DbId> for Arg {
    fn from(v: DbId) -> Self {
        Arg::Id(Some(v))
    }
}
impl From<Option<DbId>> for Arg {
    fn from(v: Option<DbId>) -> Self {
        Arg::Id(v)
    }
}
impl From<DbTime> for Arg {
    fn from(v: DbTime) -> Self {
        Arg::Time(Some(v))
    }
}
impl From<Option<DbTime>> for Arg {
    fn from(v: Option<DbTime>) -> Self {
        Arg::Time(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<serde_json::Value> for Arg {
    fn from(v: serde_json::Value) -> Self {
        Arg::Json(Some(Json(v)))
    }
}

/// The values of one statement, in placeholder order.
#[derive(Clone)]
pub(crate) struct Args {
    engine: Engine,
    values: Vec<Arg>,
}

impl Args {
    pub(crate) fn new(engine: Engine) -> Self {
        Self::with_capacity(engine, 8)
    }

    pub(crate) fn with_capacity(engine: Engine, n: usize) -> Self {
        Args {
            engine,
            values: Vec::with_capacity(n),
        }
    }

    /// Binds `v` and returns the placeholder to write at its (single) place in the text.
    pub(crate) fn add(&mut self, v: impl Into<Arg>) -> String {
        self.values.push(v.into());
        match self.engine {
            Engine::Sqlite => "?".to_owned(),
            Engine::Postgres => format!("${}", self.values.len()),
        }
    }
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args.values {
            q = match a {
                Arg::Id(v) => q.bind(v),
                Arg::Time(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Json(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Runs a statement; yields the number of rows affected.
pub(crate) async fn execute(h: &mut Handle, sql: &str, args: Args) -> StoreResult<u64> {
    match h.conn() {
        Conn::Sqlite(c) => bind_all!(sqlx::query(sql), args)
            .execute(c)
            .await
            .map(|r| r.rows_affected()),
        Conn::Pg(c) => bind_all!(sqlx::query(sql), args)
            .execute(c)
            .await
            .map(|r| r.rows_affected()),
    }
    .map_err(map_err)
}

/// All rows of a query.
pub(crate) async fn fetch_all<T>(h: &mut Handle, sql: &str, args: Args) -> StoreResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    match h.conn() {
        Conn::Sqlite(c) => {
            bind_all!(sqlx::query_as::<_, T>(sql), args)
                .fetch_all(c)
                .await
        }
        Conn::Pg(c) => {
            bind_all!(sqlx::query_as::<_, T>(sql), args)
                .fetch_all(c)
                .await
        }
    }
    .map_err(map_err)
}

/// The one row of a query (aggregates).
pub(crate) async fn fetch_one<T>(h: &mut Handle, sql: &str, args: Args) -> StoreResult<T>
where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    match h.conn() {
        Conn::Sqlite(c) => {
            bind_all!(sqlx::query_as::<_, T>(sql), args)
                .fetch_one(c)
                .await
        }
        Conn::Pg(c) => {
            bind_all!(sqlx::query_as::<_, T>(sql), args)
                .fetch_one(c)
                .await
        }
    }
    .map_err(map_err)
}

/// `'a', 'b', …` for an `IN (…)` list built from enum texts of `talky-core` (never from
/// user input; each text is checked to be snake_case so it cannot break out of quotes).
pub(crate) fn text_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| {
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "not an enum text: {s:?}"
            );
            format!("'{s}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fresh row id: a time-ordered UUID (version 7, millisecond timestamp first, random
/// rest). Bulk inserts (imports, job enqueueing) then append to the primary-key indexes
/// instead of touching a random page per row, which on SQLite keeps each chunk's commit
/// small (random v4 keys made every 500-row chunk rewrite hundreds of index pages).
pub(crate) fn new_id() -> DbId {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // The fully random bytes of a v4 UUID (bytes 6 and 8 carry its version/variant bits).
    let r = *uuid::Uuid::new_v4().as_bytes();
    let random = [r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[9], r[10], r[11]];
    DbId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

/// Row locks: PostgreSQL takes them with `FOR UPDATE` / `FOR SHARE`; SQLite has a single
/// writer, so a write transaction already excludes every other writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    Update,
    Share,
}

impl SqlStore {
    pub(crate) fn lock_clause(&self, lock: Lock) -> &'static str {
        match (self.engine(), lock) {
            (Engine::Sqlite, _) => "",
            (Engine::Postgres, Lock::Update) => " FOR UPDATE",
            (Engine::Postgres, Lock::Share) => " FOR SHARE",
        }
    }
}

/// A `StoreError::Internal` for a stored value outside an enum's vocabulary.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> talky_core::ports::store::StoreError {
    talky_core::ports::store::StoreError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_count_up() {
        let mut a = Args::new(Engine::Postgres);
        assert_eq!(a.add(1i64), "$1");
        assert_eq!(a.add("x"), "$2");
        let mut a = Args::new(Engine::Sqlite);
        assert_eq!(a.add(1i64), "?");
        assert_eq!(a.add("x"), "?");
        assert_eq!(a.values.len(), 2);
    }

    #[test]
    fn new_ids_are_version_7_and_lead_with_the_time() {
        let millis = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let before = millis();
        let id = new_id();
        let after = millis();
        assert_eq!(id.0.get_version_num(), 7);
        let b = id.0.as_bytes();
        let stamp = b[..6]
            .iter()
            .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        assert!(
            (before..=after).contains(&stamp),
            "{before} <= {stamp} <= {after}"
        );
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn text_list_quotes_enum_texts() {
        assert_eq!(
            text_list(["pending", "retry_scheduled"]),
            "'pending', 'retry_scheduled'"
        );
    }

    #[test]
    #[should_panic(expected = "not an enum text")]
    fn text_list_rejects_other_text() {
        text_list(["x'; DROP TABLE calls; --"]);
    }
}
