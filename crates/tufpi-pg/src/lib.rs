//! tufpi-pg: PostgreSQL for tufpi's scale-out mode — connections, a pool, versioned schema
//! migrations and the publisher lease whose term fences a writer that lost it.
//!
//! # Connections
//!
//! [`Database::connect`] opens a pool (r2d2) of synchronous `postgres` connections: tufpi's
//! engine is synchronous, and HTTP handlers reach it through `spawn_blocking`. TLS is rustls
//! (pure Rust, ring). `sslmode` is honoured as libpq does: `disable`; `prefer` (the default)
//! and `require` encrypt without checking the certificate; `verify-full` checks the chain
//! (Web PKI roots, plus `sslrootcert=FILE`) and the host name. Connecting times out after
//! 5 s and a statement after 30 s ([`Options`]). A connection string is shown only through
//! [`redact_url`]. [`PgError::is_unavailable`] tells a database that cannot be reached now
//! (answer 503 + Retry-After) from any other failure. [`Database::connect`] makes one
//! connection directly before starting the pool, so a wrong password or database name is
//! reported at once (and not as "unavailable").
//!
//! Behind PgBouncer in transaction mode: nothing here keeps session state across
//! transactions (the statement timeout is set per connection, the same for every tufpi
//! client), but the driver uses protocol-level prepared statements, which PgBouncer
//! supports from 1.21 with `max_prepared_statements` set.
//!
//! # Wake-ups
//!
//! [`notify_in`] announces work in a writer's transaction (`NOTIFY`, delivered at commit);
//! a [`Listener`] thread on a connection of its own calls back at once. A wake-up only: the
//! waiter polls too (a pooler in transaction mode does not carry `LISTEN`).
//!
//! # Migrations
//!
//! [`migrate()`] applies a component's missing migrations in order, each in its own
//! transaction holding a transaction-scoped advisory lock, and records them in
//! `schema_versions(component, version)`. A database whose schema is newer than the running
//! tufpi knows is refused: an old binary must not write a schema it does not understand.
//!
//! # The publisher lease and its fencing term
//!
//! Exactly one process publishes (signs bins, snapshot, timestamp) at a time. Leadership is a
//! row `lease(name, holder, term, expires_at)` ([`lease`]):
//!
//! - **Acquire**: in one transaction, the row is locked `FOR UPDATE` and taken (inserted, or
//!   updated with `term + 1`) only if it is absent, released or lapsed. Every comparison uses the
//!   database's `now()`, never a local clock, so the replicas' clocks need not agree.
//! - **Renew**: `UPDATE … WHERE holder = me AND term = mine AND expires_at > now()` extends
//!   the expiry by the TTL; no row updated means the lease is `Lost`.
//! - **Fence**: the term is a fencing token. Every writing transaction of the publisher
//!   begins with [`check_term`], which reads the row `FOR KEY SHARE` and fails `Fenced` if the
//!   term moved on. The row lock makes a takeover (which locks the row `FOR UPDATE` first)
//!   wait for the transaction to end, while the holder's renewals (plain updates) do not, so
//!   a long publish never makes its own leader step down: a transaction that passed the check commits wholly under the old
//!   term, before the new leader's first transaction, and one that starts after the takeover
//!   fails. The blob store's compare-and-swap (`If-Match` on the timestamp's ETag) fences the
//!   writes outside PostgreSQL in the same way: a stale leader's timestamp write fails
//!   because the new leader has replaced the object it read. A plan recorded by a leader
//!   that then died is found by the next leader, which finishes it.
//!
//! ## Why a lease row and not advisory locks
//!
//! Session advisory locks belong to a server connection. Behind a transaction-mode pooler
//! (PgBouncer) consecutive transactions run on different server connections, so the lock is
//! taken on one and "released" on another, or kept by a connection another client then uses.
//! And a session lock is held as long as the server thinks the session lives: a leader that
//! hangs or is partitioned keeps the lock until TCP keepalives end its session, minutes
//! later, while a leader that is alive but whose connection broke has lost it without
//! knowing. A lease row has an explicit expiry, works through any pooler, and its term
//! gives the fencing token that a lock does not. (Migrations do use an advisory lock, but
//! transaction-scoped, which poolers and dead sessions cannot break.)
//!
//! ## The numbers
//!
//! With the default TTL of 15 s ([`leadership::DEFAULT_TTL`]): the leader renews every
//! TTL/3 = 5 s (retrying a failed renewal every TTL/15 = 1 s); it steps down (`is_leader()`
//! turns false) once no renewal has succeeded for TTL/2 = 7.5 s by its monotonic clock,
//! measured from when the last successful renewal was *sent*; a standby tries every TTL/8
//! (at least 100 ms; [`leadership::standby_retry`]) and can take over once the lease has
//! lapsed, at least TTL = 15 s after that renewal reached the database (at once if the
//! leader released it on a clean stop).
//!
//! ## Why stepping down early is safe, and why it is not what makes it safe
//!
//! The database set `expires_at = now() + TTL` at some instant after the renewal was sent,
//! so the lease cannot lapse before send + TTL (by the database's clock). The leader stops
//! calling itself leader at send + TTL/2 by its own clock: with a margin of TTL/2 = 7.5 s, it
//! stops before a standby can start, unless its clock runs at less than half the database's
//! rate. That keeps two publishers from *working* at once in practice, which saves wasted
//! signing. But timing cannot guarantee safety: a process can be paused (GC, SIGSTOP, a
//! swapped-out VM) right after checking `is_leader()` and wake long after its lease lapsed.
//! What guarantees that a stale leader changes nothing is fencing: its next transaction fails
//! [`check_term`] and its timestamp write fails the `If-Match`.

pub mod db;
mod error;
pub mod leadership;
pub mod lease;
pub mod migrate;
pub mod notify;
pub mod testing;

pub use db::{redact_url, Conn, Database, Options};
pub use error::{describe, is_unavailable_error, PgError};
pub use leadership::Leadership;
pub use lease::{check_term, Fence, Held, Lease};
pub use migrate::{migrate, schema_version};
pub use notify::{notify_in, Listener};
/// The driver, re-exported so dependents use the same version (`Transaction`, `Row`, …).
pub use postgres;
