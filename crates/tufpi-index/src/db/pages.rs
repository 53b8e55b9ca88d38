//! Rendered pages as the database records them: each project's current HTML and JSON page,
//! and every page it ever had (a snapshot may still name one) until it is collected.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tufpi_repo::Change;
use tufpi_simple::PageKind;

use super::conn::IndexDb;
use super::outbox::target;
use crate::error::IndexError;
use crate::pages::Digests;

/// Record `project`'s newly rendered pages (HTML, JSON) as its current ones; returns their
/// target changes.
pub(crate) fn record_pages(
    conn: &Connection,
    project: &str,
    pages: &[Digests; 2],
) -> Result<Vec<Change>, IndexError> {
    let mut changes = Vec::with_capacity(2);
    for (kind, d) in PageKind::ALL.into_iter().zip(pages.iter()) {
        conn.execute(
            "INSERT OR IGNORE INTO pages(sha256, blake2b, project, kind, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![d.sha256, d.blake2b, project, kind.as_str(), d.size as i64],
        )?;
        changes.push(Change::Add(target(&kind.target_path(project), d)));
    }
    conn.execute(
        "UPDATE projects SET html_sha256 = ?1, json_sha256 = ?2 WHERE name = ?3",
        params![pages[0].sha256, pages[1].sha256, project],
    )?;
    Ok(changes)
}

impl IndexDb {
    /// The SHA-256 of a stored page of `project` and `kind` whose SHA-256 or BLAKE2b-256 is
    /// `digest` (hex).
    pub fn page(
        &self,
        project: &str,
        kind: PageKind,
        digest: &str,
    ) -> Result<Option<String>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256 FROM pages WHERE (sha256 = ?1 OR blake2b = ?1) AND project = ?2 AND kind = ?3",
                params![digest, project, kind.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stored pages no project shows any more: (sha256, project, kind).
    pub fn superseded_pages(&self) -> Result<Vec<crate::collect::Superseded>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT sha256, project, kind FROM pages WHERE sha256 NOT IN \
             (SELECT html_sha256 FROM projects WHERE html_sha256 IS NOT NULL \
              UNION SELECT json_sha256 FROM projects WHERE json_sha256 IS NOT NULL)",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (sha, project, kind) = row?;
            let Some(kind) = PageKind::from_name(&kind) else {
                continue;
            };
            out.push((sha, project, kind));
        }
        Ok(out)
    }

    /// Forget each of `pages` that is still superseded and delete its file with `remove`,
    /// in one write transaction: a commit that makes such a page current again (same bytes)
    /// either comes first (the page is kept) or after (it finds the file gone and writes it
    /// again). Returns how many were deleted.
    pub fn delete_superseded_pages(
        &mut self,
        pages: &[String],
        remove: &dyn Fn(&str) -> Result<(), IndexError>,
    ) -> Result<usize, IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        for sha in pages {
            let current: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM projects WHERE html_sha256 = ?1 OR json_sha256 = ?1)",
                params![sha],
                |r| r.get(0),
            )?;
            if current {
                continue;
            }
            remove(sha)?;
            deleted += tx.execute("DELETE FROM pages WHERE sha256 = ?1", params![sha])?;
        }
        tx.commit()?;
        Ok(deleted)
    }
}
