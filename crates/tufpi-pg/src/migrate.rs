//! Versioned schema migrations: each component (`repo`, `index`, `lease`, …) lists its
//! migrations in order; version N is the N-th. `schema_versions(component, version)` records
//! what is applied. Each migration runs in its own transaction under a transaction-scoped
//! advisory lock, so processes starting at once apply each exactly once, and the lock goes
//! with the transaction (safe behind a transaction-mode pooler, never held by a dead session).

use crate::db::Database;
use crate::error::PgError;

/// The advisory lock key all migrations take: one for every component keeps it simple, and
/// migrations are rare and short.
const MIGRATION_LOCK: i64 = 0x7475_6670_695f_6d67; // "tufpi_mg"

/// Apply `component`'s migrations the database lacks, in order, each in a transaction; return
/// the schema version now. Refuses (`SchemaTooNew`) a database whose schema for `component`
/// is newer than `migrations.len()`: an older tufpi must not write a schema it does not know.
/// A migration is SQL run as one batch inside the transaction, so it cannot use statements
/// that refuse a transaction (`CREATE INDEX CONCURRENTLY`); a failed one leaves the
/// previous version.
pub fn migrate(db: &Database, component: &str, migrations: &[&str]) -> Result<i64, PgError> {
    let known = migrations.len() as i64;
    let mut conn = db.get()?;
    loop {
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        // Under the lock: concurrent CREATE TABLE IF NOT EXISTS can otherwise collide.
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (
                component TEXT NOT NULL,
                version BIGINT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )",
        )?;
        let found: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_versions WHERE component = $1",
                &[&component],
            )?
            .try_get(0)?;
        if found > known {
            return Err(PgError::SchemaTooNew {
                component: component.to_string(),
                found,
                known,
            });
        }
        if found == known {
            tx.commit()?;
            return Ok(found);
        }
        let next = found + 1;
        tracing::info!(component, version = next, "applying schema migration");
        tx.batch_execute(migrations[found as usize])?;
        tx.execute(
            "INSERT INTO schema_versions(component, version) VALUES ($1, $2)",
            &[&component, &next],
        )?;
        tx.commit()?;
    }
}

/// The schema version of `component` in the database (0 if none is applied).
pub fn schema_version(db: &Database, component: &str) -> Result<i64, PgError> {
    let mut conn = db.get()?;
    let exists: bool = conn
        .query_one("SELECT to_regclass('schema_versions') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    Ok(conn
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_versions WHERE component = $1",
            &[&component],
        )?
        .try_get(0)?)
}
