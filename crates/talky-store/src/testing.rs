//! Fresh, throw-away databases for tests: a SQLite file in a temp dir, and — when
//! `TALKY_TEST_POSTGRES_URL` is set — a newly created PostgreSQL database that is dropped
//! again by [`TestDb::cleanup`]. Used by the store's conformance suite and the server's
//! integration tests.

use crate::{open, Engine, SqlStore};
use sqlx::Connection;

/// A migrated store on a database that exists only for one test.
pub struct TestDb {
    pub store: SqlStore,
    pub url: String,
    admin_url: Option<String>,
    db_name: Option<String>,
    _dir: Option<tempdir::TempDirGuard>,
}

mod tempdir {
    /// Removes the directory when dropped.
    pub struct TempDirGuard(pub std::path::PathBuf);
    impl Drop for TempDirGuard {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The engines to test on: SQLite always, PostgreSQL when `TALKY_TEST_POSTGRES_URL` is set.
pub fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Sqlite];
    if std::env::var("TALKY_TEST_POSTGRES_URL").is_ok_and(|s| !s.is_empty()) {
        v.push(Engine::Postgres);
    }
    v
}

impl TestDb {
    /// Creates and migrates a fresh database on `engine`.
    pub async fn new(engine: Engine) -> TestDb {
        let (url, admin_url, db_name, dir) = match engine {
            Engine::Sqlite => {
                let dir = std::env::temp_dir().join(format!("talky-test-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).expect("create temp dir");
                let url = format!("sqlite://{}/talky.db", dir.display());
                (url, None, None, Some(tempdir::TempDirGuard(dir)))
            }
            Engine::Postgres => {
                let admin = std::env::var("TALKY_TEST_POSTGRES_URL")
                    .expect("TALKY_TEST_POSTGRES_URL must be set for Postgres tests");
                let name = format!("talky_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to TALKY_TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = replace_db_name(&admin, &name);
                (url, Some(admin), Some(name), None)
            }
        };
        let store = open(&url).await.expect("open test database");
        store.migrate().await.expect("migrate test database");
        TestDb {
            store,
            url,
            admin_url,
            db_name,
            _dir: dir,
        }
    }

    /// Closes the pools and drops the database (PostgreSQL) or its directory (SQLite).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let (Some(admin), Some(name)) = (&self.admin_url, &self.db_name) {
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                conn.close().await.ok();
            }
        }
    }
}

/// Swaps the database name in a `postgres://…/<db>?params` URL.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database_name() {
        assert_eq!(
            super::replace_db_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_db_name("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_db_name("postgres://h", "x"),
            "postgres://h/x"
        );
    }
}
