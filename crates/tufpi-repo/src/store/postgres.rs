//! The PostgreSQL state store: the scale-out mode's, sharing its database with the index
//! (tables prefixed `repo_`), so an upload's rows and its queued changes commit in one
//! transaction ([`enqueue_in`]).
//!
//! Ordering. SQLite runs one writer at a time; PostgreSQL does not, and a sequence number is
//! taken when a row is inserted, not when it commits: an enqueue holding seq 10 may commit
//! after one holding seq 11. A plan that took "up to 11" while 10 was in flight would then
//! have its `clear_plan` delete 10 unpublished. So the transactions that read the queue's
//! extent (`plan_batch`, and `enqueue_unqueued_and_set`, whose check must not miss a change
//! in flight) first take `SHARE ROW EXCLUSIVE` on the queue table. That mode conflicts with the `ROW EXCLUSIVE` every `INSERT` takes
//! (before it draws its sequence number) and holds to commit: the plan waits for enqueues in
//! flight to commit or roll back and holds back new ones until it commits, so every sequence
//! number up to the plan's last is settled and later ones are higher. Enqueuers need no lock
//! of their own, and so cannot forget it.
//!
//! Fencing. With a [`Fence`], `plan_batch`, `record_plan` and `clear_plan` begin by checking
//! its term (`tufpi_pg::check_term`, which also holds the lease row against a takeover until
//! commit) and fail [`RepoError::Fenced`] if another publisher took over. Queuing needs no
//! fence: every replica queues.

use std::collections::{BTreeMap, BTreeSet};

use tufpi_pg::postgres::{self, GenericClient, Transaction};
use tufpi_pg::{Database, Fence, PgError};

use super::codec::{custom_text, hashes_text, parse_custom, parse_hashes};
use super::state::{PlanFn, RoleState, StateStore};
use crate::change::{Change, TargetRecord};
use crate::error::RepoError;

/// The state store's schema migrations (component `repo`); version N is the N-th.
pub const MIGRATIONS: &[&str] = &["
CREATE TABLE repo_queue (
    seq BIGSERIAL PRIMARY KEY,
    bin BIGINT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    path TEXT NOT NULL,
    length BIGINT,
    hashes TEXT,
    custom TEXT
);
CREATE INDEX repo_queue_bin ON repo_queue(bin, seq);
CREATE INDEX repo_queue_path ON repo_queue(path);
CREATE TABLE repo_bin_counts (
    bin BIGINT PRIMARY KEY,
    count BIGINT NOT NULL
);
CREATE TABLE repo_roles (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE TABLE repo_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"];

/// PostgreSQL-backed state store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    db: Database,
    fence: Option<Fence>,
}

/// A driver or pool error as a repository error: `Unavailable` and `Fenced` keep their
/// meaning, the rest is a state-store failure.
pub fn pg_err(e: impl Into<PgError>) -> RepoError {
    match e.into() {
        PgError::Fenced {
            held_term,
            current_term,
            ..
        } => RepoError::Fenced {
            held: held_term,
            current: current_term,
        },
        e @ PgError::Unavailable { .. } => RepoError::Unavailable(Box::new(e)),
        e => RepoError::store(e),
    }
}

fn corrupt(what: &'static str, detail: impl ToString) -> RepoError {
    RepoError::CorruptStore {
        what,
        detail: detail.to_string(),
    }
}

/// A u64 as BIGINT; values past i64 (never a bin, count or version in practice) refused.
fn to_i64(v: u64, what: &'static str) -> Result<i64, RepoError> {
    i64::try_from(v).map_err(|_| RepoError::Invalid(format!("{what} {v} is out of range")))
}

/// A stored BIGINT that must not be negative.
fn to_u64(v: i64, what: &'static str) -> Result<u64, RepoError> {
    u64::try_from(v).map_err(|_| corrupt(what, format!("negative: {v}")))
}

/// The `NOTIFY` channel every enqueue announces itself on (at commit), so the publisher
/// leading the lease wakes at once ([`tufpi_pg::Listener`]); it polls too.
pub const QUEUE_CHANNEL: &str = "tufpi_repo_queue";

/// Changes are inserted this many to a statement: one round trip per chunk, not per row.
const CHUNK: usize = 1000;

/// Insert a chunk in array order (the `ORDER BY` makes the sequence numbers follow it);
/// returns how many rows and the last sequence number.
const INSERT_CHUNK: &str = "WITH ins AS (
    INSERT INTO repo_queue(bin, op, path, length, hashes, custom)
    SELECT bin, op, path, length, hashes, custom
    FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[])
        WITH ORDINALITY AS u(bin, op, path, length, hashes, custom, ord)
    WHERE NOT $7::BOOLEAN OR NOT EXISTS (SELECT 1 FROM repo_queue q WHERE q.path = u.path)
    ORDER BY ord
    RETURNING seq
) SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM ins";

const SET_SETTING: &str = "INSERT INTO repo_settings(key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";

/// Hold back enqueues and wait for those in flight (see the module docs).
const LOCK_QUEUE: &str = "LOCK TABLE repo_queue IN SHARE ROW EXCLUSIVE MODE";

/// Queue `changes` inside the caller's transaction `tx` (as `StateStore::enqueue_all`, but
/// committed — or rolled back — with whatever else `tx` writes, e.g. an upload's rows).
/// Returns the last sequence number (0 if none). Each pair is `(bin, change)`: the change
/// validated (`Change::validate`) and its bin computed (`layout::bin_of`) by the caller,
/// as the repository does. The schema must exist (`PostgresStore::open` or `prepare`). The
/// publisher's next plan waits for `tx`: commit it promptly.
pub fn enqueue_in<I>(tx: &mut Transaction<'_>, changes: I) -> Result<u64, RepoError>
where
    I: IntoIterator<Item = (u64, Change)>,
{
    insert_changes(tx, &mut changes.into_iter().map(Ok), false).map(|(_, last)| last)
}

/// Columns of a chunk of changes, as `INSERT_CHUNK` takes them.
#[derive(Default)]
struct Columns {
    bin: Vec<i64>,
    op: Vec<&'static str>,
    path: Vec<String>,
    length: Vec<Option<i64>>,
    hashes: Vec<Option<String>>,
    custom: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, bin: u64, c: Change) -> Result<(), RepoError> {
        self.bin.push(to_i64(bin, "bin")?);
        match c {
            Change::Add(t) => {
                self.op.push("add");
                self.length.push(Some(to_i64(t.length, "length")?));
                self.hashes.push(Some(hashes_text(&t.hashes)));
                self.custom.push(custom_text(&t.path, &t.custom)?);
                self.path.push(t.path);
            }
            Change::Remove(p) => {
                self.op.push("remove");
                self.length.push(None);
                self.hashes.push(None);
                self.custom.push(None);
                self.path.push(p);
            }
        }
        Ok(())
    }

    /// Insert the chunk (only the paths not queued, with `unqueued`) and empty it.
    fn flush(
        &mut self,
        tx: &mut Transaction<'_>,
        stmt: &postgres::Statement,
        unqueued: bool,
    ) -> Result<(u64, u64), RepoError> {
        if self.bin.is_empty() {
            return Ok((0, 0));
        }
        let row = tx
            .query_one(
                stmt,
                &[
                    &self.bin,
                    &self.op,
                    &self.path,
                    &self.length,
                    &self.hashes,
                    &self.custom,
                    &unqueued,
                ],
            )
            .map_err(pg_err)?;
        *self = Columns::default();
        Ok((
            to_u64(row.try_get(0).map_err(pg_err)?, "count")?,
            to_u64(row.try_get(1).map_err(pg_err)?, "sequence number")?,
        ))
    }
}

/// Insert `changes` in order, a chunk at a time; with `unqueued`, only those whose path has
/// nothing queued (the first of several changes to one path counts as queued for the
/// rest, as when inserted one by one). Returns (how many, the last sequence number).
fn insert_changes(
    tx: &mut Transaction<'_>,
    changes: &mut dyn Iterator<Item = Result<(u64, Change), RepoError>>,
    unqueued: bool,
) -> Result<(u64, u64), RepoError> {
    let stmt = tx.prepare(INSERT_CHUNK).map_err(pg_err)?;
    let mut seen = std::collections::HashSet::new();
    let (mut n, mut last) = (0, 0);
    let mut cols = Columns::default();
    for c in changes {
        let (bin, c) = c?;
        if unqueued && !seen.insert(c.path().to_string()) {
            continue;
        }
        cols.push(bin, c)?;
        if cols.bin.len() == CHUNK {
            let (k, l) = cols.flush(tx, &stmt, unqueued)?;
            n += k;
            last = last.max(l);
        }
    }
    let (k, l) = cols.flush(tx, &stmt, unqueued)?;
    if n + k > 0 {
        // The publisher wakes when this commits, not at its next poll.
        tufpi_pg::notify_in(tx, QUEUE_CHANNEL).map_err(pg_err)?;
    }
    Ok((n + k, last.max(l)))
}

/// A queued change from a row's `op, path, length, hashes, custom` (columns 1 to 5).
fn queued_change(r: &postgres::Row) -> Result<Change, RepoError> {
    let op: String = r.try_get(1).map_err(pg_err)?;
    let path: String = r.try_get(2).map_err(pg_err)?;
    match op.as_str() {
        "remove" => Ok(Change::Remove(path)),
        "add" => {
            let length: Option<i64> = r.try_get(3).map_err(pg_err)?;
            let hashes: Option<String> = r.try_get(4).map_err(pg_err)?;
            Ok(Change::Add(TargetRecord {
                length: to_u64(
                    length.ok_or_else(|| corrupt("length", "missing"))?,
                    "length",
                )?,
                hashes: parse_hashes(hashes.as_deref().unwrap_or("{}"))?,
                custom: parse_custom(r.try_get(5).map_err(pg_err)?)?,
                path,
            }))
        }
        other => Err(corrupt("queue op", format!("{other:?}"))),
    }
}

impl PostgresStore {
    /// The store in `db`, its schema created or upgraded first. With `fence`, the
    /// publisher's writes (`plan_batch`, `record_plan`, `clear_plan`) check that its term is
    /// still the lease's; without, they do not (a single publisher, or a reader).
    pub fn open(db: &Database, fence: Option<Fence>) -> Result<PostgresStore, RepoError> {
        PostgresStore::prepare(db)?;
        Ok(PostgresStore {
            db: db.clone(),
            fence,
        })
    }

    /// Create or upgrade the store's schema (and the lease table its fence checks).
    pub fn prepare(db: &Database) -> Result<(), RepoError> {
        tufpi_pg::lease::prepare(db).map_err(pg_err)?;
        tufpi_pg::migrate(db, "repo", MIGRATIONS).map_err(pg_err)?;
        Ok(())
    }

    /// The same store writing under `fence` instead (a new term after a re-election).
    pub fn with_fence(&self, fence: Option<Fence>) -> PostgresStore {
        PostgresStore {
            db: self.db.clone(),
            fence,
        }
    }

    /// The fence the publisher's writes check, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Run `f` in a transaction and commit; with `fenced`, the fence is checked first.
    fn write<T>(
        &self,
        fenced: bool,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        let mut conn = self.db.get().map_err(pg_err)?;
        let mut tx = conn.transaction().map_err(pg_err)?;
        if fenced {
            if let Some(fence) = &self.fence {
                fence.check(&mut tx).map_err(pg_err)?;
            }
        }
        let out = f(&mut tx)?;
        tx.commit().map_err(pg_err)?;
        Ok(out)
    }

    /// Upsert the role states in one statement (a refresh may carry every bin); of two
    /// states for one role the last wins, as when written one by one.
    fn put_roles(tx: &mut Transaction<'_>, roles: &[(String, RoleState)]) -> Result<(), RepoError> {
        let last: BTreeMap<&str, &RoleState> =
            roles.iter().map(|(n, st)| (n.as_str(), st)).collect();
        let mut names = Vec::with_capacity(last.len());
        let mut versions = Vec::with_capacity(last.len());
        let mut expires = Vec::with_capacity(last.len());
        for (name, st) in last {
            names.push(name);
            versions.push(to_i64(st.version, "version")?);
            expires.push(st.expires);
        }
        tx.execute(
            "INSERT INTO repo_roles(name, version, expires)
             SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[])
             ON CONFLICT (name) DO UPDATE
                SET version = EXCLUDED.version, expires = EXCLUDED.expires",
            &[&names, &versions, &expires],
        )
        .map_err(pg_err)?;
        Ok(())
    }

    fn put_plan(tx: &mut Transaction<'_>, plan: &str) -> Result<(), RepoError> {
        tx.execute(SET_SETTING, &[&"plan", &plan]).map_err(pg_err)?;
        Ok(())
    }

    fn count(&self, sql: &str) -> Result<u64, RepoError> {
        let n: i64 = self
            .db
            .get()
            .map_err(pg_err)?
            .query_one(sql, &[])
            .map_err(pg_err)?
            .try_get(0)
            .map_err(pg_err)?;
        to_u64(n, "count")
    }
}

impl StateStore for PostgresStore {
    fn enqueue_all(
        &mut self,
        changes: &mut dyn Iterator<Item = Result<(u64, Change), RepoError>>,
    ) -> Result<u64, RepoError> {
        self.write(false, |tx| {
            insert_changes(tx, changes, false).map(|(_, last)| last)
        })
    }

    fn enqueue_unqueued_and_set(
        &mut self,
        changes: Vec<(u64, Change)>,
        key: &str,
        value: &str,
    ) -> Result<u64, RepoError> {
        self.write(false, |tx| {
            // A change committed by another writer after this check would be ordered before
            // the relisting and lose to it: hold enqueues back while checking.
            tx.batch_execute(LOCK_QUEUE).map_err(pg_err)?;
            let (n, _) = insert_changes(tx, &mut changes.into_iter().map(Ok), true)?;
            tx.execute(SET_SETTING, &[&key, &value]).map_err(pg_err)?;
            Ok(n)
        })
    }

    fn pending(&self) -> Result<u64, RepoError> {
        self.count("SELECT COUNT(*) FROM repo_queue")
    }

    fn plan_batch(&mut self, limit: usize, plan: &mut PlanFn<'_>) -> Result<(u64, u64), RepoError> {
        self.write(true, |tx| {
            tx.batch_execute(LOCK_QUEUE).map_err(pg_err)?;
            // The batch is the first `limit` queued changes: up to the limit-th sequence number.
            let offset = i64::try_from(limit.saturating_sub(1)).unwrap_or(i64::MAX);
            let nth = tx
                .query_opt(
                    "SELECT seq FROM repo_queue ORDER BY seq LIMIT 1 OFFSET $1",
                    &[&offset],
                )
                .map_err(pg_err)?;
            let last: i64 = match nth {
                Some(r) => r.try_get(0).map_err(pg_err)?,
                None => tx
                    .query_one("SELECT COALESCE(MAX(seq), 0) FROM repo_queue", &[])
                    .and_then(|r| r.try_get(0))
                    .map_err(pg_err)?,
            };
            if last == 0 {
                return Ok((0, 0));
            }
            let mut taken = 0u64;
            let mut touched = BTreeSet::new();
            for r in tx
                .query(
                    "SELECT bin, COUNT(*) FROM repo_queue WHERE seq <= $1 GROUP BY bin",
                    &[&last],
                )
                .map_err(pg_err)?
            {
                touched.insert(to_u64(r.try_get(0).map_err(pg_err)?, "bin")?);
                taken += to_u64(r.try_get(1).map_err(pg_err)?, "count")?;
            }
            let last = to_u64(last, "sequence number")?;
            let touched: Vec<u64> = touched.into_iter().collect();
            let (roles, plan_text) = plan(&touched, last)?;
            Self::put_roles(tx, &roles)?;
            Self::put_plan(tx, &plan_text)?;
            Ok((last, taken))
        })
    }

    fn changes_in_bin(&self, bin: u64, upto: u64) -> Result<Vec<Change>, RepoError> {
        Ok(self
            .changes_in_bins(&[bin], upto)?
            .remove(&bin)
            .unwrap_or_default())
    }

    fn changes_in_bins(
        &self,
        bins: &[u64],
        upto: u64,
    ) -> Result<BTreeMap<u64, Vec<Change>>, RepoError> {
        let bins = bins
            .iter()
            .map(|&b| to_i64(b, "bin"))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = self
            .db
            .get()
            .map_err(pg_err)?
            .query(
                "SELECT bin, op, path, length, hashes, custom FROM repo_queue
                 WHERE bin = ANY($1::BIGINT[]) AND seq <= $2 ORDER BY seq",
                &[&bins, &i64::try_from(upto).unwrap_or(i64::MAX)],
            )
            .map_err(pg_err)?;
        let mut out: BTreeMap<u64, Vec<Change>> = BTreeMap::new();
        for r in rows {
            let bin = to_u64(r.try_get(0).map_err(pg_err)?, "bin")?;
            out.entry(bin).or_default().push(queued_change(&r)?);
        }
        Ok(out)
    }

    fn record_plan(&mut self, roles: &[(String, RoleState)], plan: &str) -> Result<(), RepoError> {
        self.write(true, |tx| {
            Self::put_roles(tx, roles)?;
            Self::put_plan(tx, plan)
        })
    }

    fn plan(&self) -> Result<Option<String>, RepoError> {
        self.get_setting("plan")
    }

    fn clear_plan(&mut self, upto: u64, counts: &[(u64, u64)]) -> Result<(), RepoError> {
        self.write(true, |tx| {
            if upto > 0 {
                let upto = i64::try_from(upto).unwrap_or(i64::MAX);
                tx.execute("DELETE FROM repo_queue WHERE seq <= $1", &[&upto])
                    .map_err(pg_err)?;
            }
            // In two statements whatever the number of bins; the last count of a bin wins.
            let last: BTreeMap<u64, u64> = counts.iter().copied().collect();
            let (mut put_bins, mut put_counts, mut del_bins) = (vec![], vec![], vec![]);
            for (bin, count) in last {
                let bin = to_i64(bin, "bin")?;
                if count == 0 {
                    del_bins.push(bin);
                } else {
                    put_bins.push(bin);
                    put_counts.push(to_i64(count, "count")?);
                }
            }
            tx.execute(
                "DELETE FROM repo_bin_counts WHERE bin = ANY($1::BIGINT[])",
                &[&del_bins],
            )
            .map_err(pg_err)?;
            tx.execute(
                "INSERT INTO repo_bin_counts(bin, count)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[])
                 ON CONFLICT (bin) DO UPDATE SET count = EXCLUDED.count",
                &[&put_bins, &put_counts],
            )
            .map_err(pg_err)?;
            tx.execute("DELETE FROM repo_settings WHERE key = 'plan'", &[])
                .map_err(pg_err)?;
            Ok(())
        })
    }

    fn roles(&self) -> Result<BTreeMap<String, RoleState>, RepoError> {
        let rows = self
            .db
            .get()
            .map_err(pg_err)?
            .query("SELECT name, version, expires FROM repo_roles", &[])
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| {
                let name: String = r.try_get(0).map_err(pg_err)?;
                let version = to_u64(r.try_get(1).map_err(pg_err)?, "version")?;
                let expires: i64 = r.try_get(2).map_err(pg_err)?;
                Ok((name, RoleState { version, expires }))
            })
            .collect()
    }

    fn bin_counts(&self) -> Result<BTreeMap<u64, u64>, RepoError> {
        let rows = self
            .db
            .get()
            .map_err(pg_err)?
            .query("SELECT bin, count FROM repo_bin_counts", &[])
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    to_u64(r.try_get(0).map_err(pg_err)?, "bin")?,
                    to_u64(r.try_get(1).map_err(pg_err)?, "count")?,
                ))
            })
            .collect()
    }

    fn target_count(&self) -> Result<u64, RepoError> {
        self.count("SELECT COALESCE(SUM(count), 0)::BIGINT FROM repo_bin_counts")
    }

    fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError> {
        get_setting(&mut *self.db.get().map_err(pg_err)?, key)
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Result<(), RepoError> {
        self.db
            .get()
            .map_err(pg_err)?
            .execute(SET_SETTING, &[&key, &value])
            .map_err(pg_err)?;
        Ok(())
    }

    fn settings(&self) -> Result<BTreeMap<String, String>, RepoError> {
        let rows = self
            .db
            .get()
            .map_err(pg_err)?
            .query("SELECT key, value FROM repo_settings", &[])
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| Ok((r.try_get(0).map_err(pg_err)?, r.try_get(1).map_err(pg_err)?)))
            .collect()
    }
}

/// A stored setting, read with `client` (a connection or the caller's transaction).
pub fn get_setting(
    client: &mut impl GenericClient,
    key: &str,
) -> Result<Option<String>, RepoError> {
    client
        .query_opt("SELECT value FROM repo_settings WHERE key = $1", &[&key])
        .map_err(pg_err)?
        .map(|r| r.try_get(0).map_err(pg_err))
        .transpose()
}

/// The repository tables that hold rows, read with `client` (`repo_settings` …); empty if
/// none does or the schema is not there yet. A migration refuses a database that holds a
/// repository.
pub fn tables_with_rows(client: &mut impl GenericClient) -> Result<Vec<&'static str>, RepoError> {
    let mut out = Vec::new();
    for table in [
        "repo_settings",
        "repo_roles",
        "repo_bin_counts",
        "repo_queue",
    ] {
        let there: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .and_then(|r| r.try_get(0))
            .map_err(pg_err)?;
        if !there {
            continue;
        }
        let any: bool = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .and_then(|r| r.try_get(0))
            .map_err(pg_err)?;
        if any {
            out.push(table);
        }
    }
    Ok(out)
}

/// Load a repository's state into an empty store inside the caller's transaction `tx` (a
/// migration from another store, committed with the index's rows): every setting, role
/// state and bin count. The schema must exist (`PostgresStore::prepare`); the queue is not
/// copied (a migration publishes it first).
pub fn load_state(
    tx: &mut Transaction<'_>,
    settings: &BTreeMap<String, String>,
    roles: &BTreeMap<String, RoleState>,
    bin_counts: &BTreeMap<u64, u64>,
) -> Result<(), RepoError> {
    let (keys, values): (Vec<&str>, Vec<&str>) = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .unzip();
    tx.execute(
        "INSERT INTO repo_settings(key, value) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[])",
        &[&keys, &values],
    )
    .map_err(pg_err)?;
    let roles: Vec<(String, RoleState)> = roles.iter().map(|(n, s)| (n.clone(), *s)).collect();
    PostgresStore::put_roles(tx, &roles)?;
    let (mut bins, mut counts) = (Vec::new(), Vec::new());
    for (bin, count) in bin_counts {
        bins.push(to_i64(*bin, "bin")?);
        counts.push(to_i64(*count, "count")?);
    }
    tx.execute(
        "INSERT INTO repo_bin_counts(bin, count) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[])",
        &[&bins, &counts],
    )
    .map_err(pg_err)?;
    Ok(())
}
