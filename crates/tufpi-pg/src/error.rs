//! Errors of tufpi-pg: one variant per failure, and `is_unavailable` to tell a database that
//! cannot be reached now (answer 503 with Retry-After) from every other failure.

use std::error::Error as StdError;

use postgres::error::SqlState;

/// Why a PostgreSQL operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection string does not parse or asks for something unsupported.
    #[error("PostgreSQL {url}: bad connection string: {detail}")]
    Config {
        /// The connection string, password redacted.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The database cannot be reached now: connection refused, closed or timed out, the
    /// server shutting down or out of connections, a statement timed out. Worth a retry.
    #[error("PostgreSQL unavailable: {detail}")]
    Unavailable {
        /// What failed, with the driver's reason.
        detail: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// A statement failed for another reason (constraint, syntax, permission…).
    #[error("PostgreSQL: {detail}")]
    Db {
        /// The driver's reason, with the server's message.
        detail: String,
        /// The underlying error.
        #[source]
        source: postgres::Error,
    },
    /// The database holds a newer schema than this build knows.
    #[error(
        "database schema for {component} is version {found}; this tufpi knows up to {known}: \
         upgrade tufpi"
    )]
    SchemaTooNew {
        /// The component whose schema it is.
        component: String,
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A writer's term is no longer the lease's: another holder took over.
    #[error(
        "lease {name}: fenced: this writer holds term {held_term} but the lease is at term \
         {current_term}; another publisher took over"
    )]
    Fenced {
        /// The lease.
        name: String,
        /// The term the writer holds.
        held_term: i64,
        /// The lease's term now (0 if the lease row is gone).
        current_term: i64,
    },
    /// A renewal found the lease lapsed or held by another (or under another term).
    #[error("lease {name}: lost at term {term}: it lapsed or another holder took it")]
    Lost {
        /// The lease.
        name: String,
        /// The term that was held.
        term: i64,
    },
    /// A stored value does not read as expected.
    #[error("PostgreSQL: stored {what}: {detail}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The TLS set-up failed (a root certificate file that does not read, …).
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
}

impl PgError {
    /// Whether the database could not be reached now (a retry may succeed): answer 503 with
    /// Retry-After rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, PgError::Unavailable { .. })
    }

    /// Whether a writer lost its lease (fenced or lost): it must stop writing.
    pub fn is_fenced(&self) -> bool {
        matches!(self, PgError::Fenced { .. } | PgError::Lost { .. })
    }
}

impl From<postgres::Error> for PgError {
    fn from(e: postgres::Error) -> PgError {
        let detail = describe(&e);
        if is_unavailable_error(&e) {
            PgError::Unavailable {
                detail,
                source: Some(Box::new(e)),
            }
        } else {
            PgError::Db { detail, source: e }
        }
    }
}

impl From<r2d2::Error> for PgError {
    /// The pool gives up only after its connection timeout: the database is unreachable.
    fn from(e: r2d2::Error) -> PgError {
        PgError::Unavailable {
            detail: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

/// The driver's error with its causes: `postgres::Error`'s own Display says only "db error"
/// or "error connecting to server", the reason is in its source chain.
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(": ");
            s.push_str(d);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Whether a driver error means the database cannot serve this now but may soon: the
/// connection closed, an I/O error or timeout underneath, a server state that passes
/// (shutting down, starting, out of connections, a statement cancelled by its timeout), or a
/// transaction that lost a race (deadlock, serialization failure, a lock not had in time).
pub fn is_unavailable_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08") // connection exception
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::QUERY_CANCELED,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::LOCK_NOT_AVAILABLE,
            ]
            .contains(code);
    }
    let msg = e.to_string();
    // TLS trouble (a certificate refused, no TLS on the server) comes wrapped in an I/O
    // error, but retrying will not mend it.
    if msg.starts_with("error performing TLS handshake") {
        return false;
    }
    let mut src = e.source();
    while let Some(c) = src {
        if c.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        src = c.source();
    }
    // The driver's own connect timeout carries no io::Error.
    msg.starts_with("timeout") || msg.starts_with("error connecting")
}
