//! The publisher lease: one row per lease name with its holder, term and expiry, compared
//! against the database's clock only. Taking a free or lapsed lease bumps the term; the term
//! is the fencing token every writing transaction checks (`check_term`). See the crate docs
//! for the design.

use std::time::Duration;

use postgres::GenericClient;

use crate::db::Database;
use crate::error::PgError;
use crate::migrate::migrate;

/// The lease table's migrations (component `lease`).
pub const MIGRATIONS: &[&str] = &["CREATE TABLE lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        term BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )"];

/// Create or upgrade the lease table (done by `Lease::acquire`; a store that checks terms
/// calls it at open so the table is there before the first check).
pub fn prepare(db: &Database) -> Result<(), PgError> {
    migrate(db, "lease", MIGRATIONS).map(|_| ())
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Taking leases.
pub struct Lease;

impl Lease {
    /// Take lease `name` for `holder` for `ttl` if it is free, released or lapsed (by the
    /// database's clock), bumping its term; `None` if another holds it.
    pub fn acquire(
        db: &Database,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Held>, PgError> {
        prepare(db)?;
        Lease::take(db, name, holder, ttl)
    }

    /// `acquire` without preparing the table first (the campaign prepares it once).
    pub(crate) fn take(
        db: &Database,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Held>, PgError> {
        let mut conn = db.get()?;
        // A standby's usual answer, without waiting on the holder's open transactions.
        let held = conn.query_opt(
            "SELECT expires_at > now() FROM lease WHERE name = $1",
            &[&name],
        )?;
        if let Some(r) = held {
            if r.try_get::<_, bool>(0)? {
                return Ok(None);
            }
        }
        let mut tx = conn.transaction()?;
        // FOR UPDATE waits for every fenced transaction of the holder (they read the row FOR
        // KEY SHARE) to end: a takeover never overlaps a transaction that passed its check.
        // Renewals (plain updates) do not conflict with those reads, so a long publishing
        // transaction does not keep its own leader from renewing.
        let current = tx.query_opt(
            "SELECT expires_at <= now() FROM lease WHERE name = $1 FOR UPDATE",
            &[&name],
        )?;
        let row = match current {
            Some(r) if !r.try_get::<_, bool>(0)? => None,
            Some(_) => tx.query_opt(
                "UPDATE lease SET holder = $2, term = term + 1,
                        expires_at = now() + $3::bigint * interval '1 millisecond'
                 WHERE name = $1
                 RETURNING term",
                &[&name, &holder, &ttl_ms(ttl)],
            )?,
            None => tx.query_opt(
                "INSERT INTO lease(name, holder, term, expires_at)
                 VALUES ($1, $2, 1, now() + $3::bigint * interval '1 millisecond')
                 ON CONFLICT (name) DO NOTHING
                 RETURNING term",
                &[&name, &holder, &ttl_ms(ttl)],
            )?,
        };
        tx.commit()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let term: i64 = row.try_get(0)?;
        tracing::info!(lease = name, holder, term, "lease acquired");
        Ok(Some(Held {
            db: db.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            term,
            ttl,
        }))
    }

    /// The current (holder, term, seconds until expiry by the database's clock) of `name`.
    pub fn current(db: &Database, name: &str) -> Result<Option<(String, i64, f64)>, PgError> {
        prepare(db)?;
        let row = db.get()?.query_opt(
            "SELECT holder, term,
                    EXTRACT(EPOCH FROM (expires_at - now()))::float8
             FROM lease WHERE name = $1",
            &[&name],
        )?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }
}

/// A lease this process holds (as of its last successful renewal).
#[derive(Debug)]
pub struct Held {
    db: Database,
    name: String,
    holder: String,
    term: i64,
    ttl: Duration,
}

impl Held {
    /// The term: the fencing token of this holding.
    pub fn term(&self) -> i64 {
        self.term
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time to live each renewal grants.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The fence writing transactions check while this is held.
    pub fn fence(&self) -> Fence {
        Fence {
            name: self.name.clone(),
            term: self.term,
        }
    }

    /// Extend the lease by its TTL from the database's now, if this holder and term still
    /// hold it and it has not lapsed; `Lost` otherwise (stop writing).
    pub fn renew(&self) -> Result<(), PgError> {
        let n = self.db.get()?.execute(
            "UPDATE lease SET expires_at = now() + $4::bigint * interval '1 millisecond'
             WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > now()",
            &[&self.name, &self.holder, &self.term, &ttl_ms(self.ttl)],
        )?;
        if n == 1 {
            Ok(())
        } else {
            Err(PgError::Lost {
                name: self.name.clone(),
                term: self.term,
            })
        }
    }

    /// Give the lease up now so a standby need not wait for it to lapse (a no-op if it was
    /// lost meanwhile).
    pub fn release(self) -> Result<(), PgError> {
        self.db.get()?.execute(
            "UPDATE lease SET expires_at = '-infinity'
             WHERE name = $1 AND holder = $2 AND term = $3",
            &[&self.name, &self.holder, &self.term],
        )?;
        tracing::info!(lease = %self.name, term = self.term, "lease released");
        Ok(())
    }
}

/// A lease name and the term a writer holds: what its transactions check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease.
    pub name: String,
    /// The term held.
    pub term: i64,
}

impl Fence {
    /// `check_term` with this fence.
    pub fn check(&self, tx: &mut impl GenericClient) -> Result<(), PgError> {
        check_term(tx, &self.name, self.term)
    }
}

/// Inside the caller's transaction: lock lease `name`'s row (`FOR KEY SHARE`) and fail
/// `Fenced` unless its term is still `term`. Call it first in every writing transaction of the
/// lease holder: the row lock makes a takeover (which locks the row `FOR UPDATE` first) wait
/// until this transaction ends, while the holder's own renewals (plain updates) do not, so a transaction that passed the check commits entirely before any newer term
/// begins, and one that starts after a takeover fails. Lapse alone does not fail the check:
/// no other writer can exist until the term moves on.
pub fn check_term(tx: &mut impl GenericClient, name: &str, term: i64) -> Result<(), PgError> {
    let row = tx.query_opt(
        "SELECT term FROM lease WHERE name = $1 FOR KEY SHARE",
        &[&name],
    )?;
    let current_term: i64 = match row {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    if current_term == term {
        Ok(())
    } else {
        Err(PgError::Fenced {
            name: name.to_string(),
            held_term: term,
            current_term,
        })
    }
}

/// A holder id unique to this process: host, process id and start time.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{nanos:x}", std::process::id())
}
