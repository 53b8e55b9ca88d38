//! Test support: a database of its own per test, made on the server `TUFPI_TEST_PG_URL` names
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped when the `TestDb` is.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::{Database, Options};
use crate::error::PgError;

/// The server tests use unless `TUFPI_TEST_PG_URL` says otherwise.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A uniquely named database, dropped (`WITH (FORCE)`) on drop.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    admin_url: String,
    url: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// Make a fresh database. Panics if the server cannot be reached: for tests only.
    pub fn create() -> TestDb {
        TestDb::try_create().unwrap_or_else(|e| panic!("test database: {e}"))
    }

    /// Make a fresh database.
    pub fn try_create() -> Result<TestDb, PgError> {
        let admin_url =
            std::env::var("TUFPI_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "tufpi_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = admin(&admin_url)?;
        admin
            .get()?
            .batch_execute(&format!("CREATE DATABASE {name}"))?;
        let url = with_database(&admin_url, &name);
        Ok(TestDb {
            name,
            admin_url,
            url,
        })
    }

    /// The new database's connection string.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The new database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool on the new database. Panics if it cannot connect: for tests only.
    pub fn database(&self) -> Database {
        Database::connect(&self.url).unwrap_or_else(|e| panic!("test database: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let dropped = admin(&self.admin_url).and_then(|a| {
            a.get()?.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))?;
            Ok(())
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

fn admin(url: &str) -> Result<Database, PgError> {
    Database::connect_with(
        url,
        &Options {
            max_size: 1,
            ..Options::default()
        },
    )
}

/// `url` naming database `db` instead (URL form: the path; key-value form: `dbname=`).
fn with_database(url: &str, db: &str) -> String {
    if let Some(i) = url.find("://") {
        let rest = &url[i + 3..];
        let query_at = rest.find('?').unwrap_or(rest.len());
        let auth_end = rest[..query_at].rfind('@').map(|a| a + 1).unwrap_or(0);
        let path_at = rest[auth_end..query_at]
            .find('/')
            .map(|p| auth_end + p)
            .unwrap_or(query_at);
        format!(
            "{}{}/{db}{}",
            &url[..i + 3],
            &rest[..path_at],
            &rest[query_at..]
        )
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|p| !p.starts_with("dbname="))
            .collect();
        format!("{} dbname={db}", kept.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_swapped_in_the_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(with_database("host=h dbname=x", "t1"), "host=h dbname=t1");
    }
}
