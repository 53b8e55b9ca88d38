//! The PostgreSQL writes outside uploads and management operations: the outbox drain, page
//! collection, the reference listing and tokens.

use super::{read_outbox, PgIndex};
use crate::db::files::{reference_file, References};
use crate::db::outbox::QueueFn;
use crate::db::pages::RemovePageFn;
use crate::error::IndexError;

/// The advisory lock a drain holds for its transaction ("tufpi_ob"; the migrations' lock is
/// another key).
const OUTBOX_LOCK: i64 = 0x7475_6670_695f_6f62;

/// The lock that waits for every project writer in flight and holds new ones off: each
/// begins by locking its project's row, which EXCLUSIVE mode conflicts with (plain reads
/// do not).
const ALL_WRITERS: &str = "LOCK TABLE index_projects IN EXCLUSIVE MODE";

impl PgIndex {
    pub(in crate::db) fn drain_outbox(
        &mut self,
        queue: &mut QueueFn<'_>,
    ) -> Result<usize, IndexError> {
        let mut conn = self.db.get()?;
        // Most calls find nothing: check without taking the lock.
        let empty: bool = conn
            .query_one("SELECT NOT EXISTS (SELECT 1 FROM index_outbox)", &[])?
            .try_get(0)?;
        if empty {
            return Ok(0);
        }
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&OUTBOX_LOCK])?;
        let rows = read_outbox(&mut tx)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let (seqs, changes): (Vec<i64>, Vec<_>) = rows.into_iter().unzip();
        queue(&changes)?;
        // Exactly what was handed over: an upload that committed since (with a lower
        // number, even) keeps its entries for the next drain.
        tx.execute("DELETE FROM index_outbox WHERE seq = ANY($1)", &[&seqs])?;
        tx.commit()?;
        Ok(changes.len())
    }

    pub(in crate::db) fn with_references(
        &mut self,
        f: &mut dyn FnMut(&References),
    ) -> Result<(), IndexError> {
        let mut conn = self.db.get()?;
        let mut tx = conn.transaction()?;
        tx.batch_execute(ALL_WRITERS)?;
        let mut refs = References::default();
        for r in tx.query(
            "SELECT path, metadata_sha256 IS NOT NULL FROM index_files",
            &[],
        )? {
            reference_file(&mut refs, r.try_get(0)?, r.try_get(1)?);
        }
        for r in tx.query("SELECT sha256 FROM index_pages", &[])? {
            refs.pages.insert(r.try_get(0)?);
        }
        f(&refs);
        tx.rollback()?;
        Ok(())
    }

    pub(in crate::db) fn delete_superseded_pages(
        &mut self,
        pages: &[String],
        remove: &RemovePageFn<'_>,
    ) -> Result<usize, IndexError> {
        let mut conn = self.db.get()?;
        let mut tx = conn.transaction()?;
        tx.batch_execute(ALL_WRITERS)?;
        let mut deleted = 0;
        for sha in pages {
            let current: bool = tx
                .query_one(
                    "SELECT EXISTS(SELECT 1 FROM index_projects WHERE html_sha256 = $1 OR json_sha256 = $1)",
                    &[sha],
                )?
                .try_get(0)?;
            if current {
                continue;
            }
            remove(sha)?;
            deleted += tx.execute("DELETE FROM index_pages WHERE sha256 = $1", &[sha])? as usize;
        }
        tx.commit()?;
        Ok(deleted)
    }

    pub(in crate::db) fn insert_token(
        &mut self,
        hash: &str,
        project: Option<&str>,
        description: Option<&str>,
        created: &str,
    ) -> Result<(), IndexError> {
        self.db.get()?.execute(
            "INSERT INTO index_tokens(hash, project, description, created) VALUES ($1, $2, $3, $4)",
            &[&hash, &project, &description, &created],
        )?;
        Ok(())
    }

    /// The hashes starting with `id`, by hash; the token deleted if it is the only one.
    pub(in crate::db) fn revoke_matching(&mut self, id: &str) -> Result<Vec<String>, IndexError> {
        let mut conn = self.db.get()?;
        let mut tx = conn.transaction()?;
        // Locked: a concurrent revocation of the same token waits, then finds it gone.
        let matches: Vec<String> = tx
            .query(
                "SELECT hash FROM index_tokens WHERE starts_with(hash, $1) ORDER BY hash FOR UPDATE",
                &[&id],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        if let [hash] = matches.as_slice() {
            tx.execute("DELETE FROM index_tokens WHERE hash = $1", &[hash])?;
            tx.commit()?;
        }
        Ok(matches)
    }
}
