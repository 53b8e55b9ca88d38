//! The write transaction both backends offer: the row operations an upload and a
//! management operation are made of. The rules (a filename used once, one file per
//! distribution identity, pages recorded, outbox appended) are written once, over this
//! trait, in `files.rs` and `manage.rs`; each backend only says how a row is read or written
//! inside its transaction.

use tufpi_repo::Change;
use tufpi_simple::PageKind;

use super::outbox::target;
use crate::error::IndexError;
use crate::pages::{Digests, FileRow};

/// One open write transaction (committed by [`super::IndexDb::write`] when its closure
/// succeeds, rolled back otherwise).
pub(crate) trait WriteTx {
    /// Take the project's write lock (PostgreSQL: its row, `FOR UPDATE`; SQLite: the whole
    /// database is already locked), creating the project as `create_as` (display name) if
    /// it is missing and one is given. Returns whether the project exists now.
    fn lock_project(&mut self, name: &str, create_as: Option<&str>) -> Result<bool, IndexError>;
    /// Record `filename` as used (case-insensitively); `false` if it was used before.
    fn claim_filename(&mut self, filename: &str) -> Result<bool, IndexError>;
    /// Record distribution identity `key` as held by `filename`; if some file held it
    /// before, that file's name (and nothing is recorded).
    fn claim_dist(&mut self, key: &str, filename: &str) -> Result<Option<String>, IndexError>;
    /// The files of `project`, by filename (case-insensitively).
    fn files_of(&mut self, project: &str) -> Result<Vec<FileRow>, IndexError>;
    /// The distinct version strings of `project`'s files.
    fn versions_of(&mut self, project: &str) -> Result<Vec<String>, IndexError>;
    /// Insert a file row (its filename already claimed).
    fn insert_file(&mut self, file: &FileRow) -> Result<(), IndexError>;
    /// Set (or, with `None`, clear) a file's yank reason; whether a row changed.
    fn set_yanked(&mut self, filename: &str, reason: Option<&str>) -> Result<bool, IndexError>;
    /// Delete a file row (its filename and identity stay used).
    fn delete_file(&mut self, filename: &str) -> Result<(), IndexError>;
    /// Delete a project row.
    fn delete_project(&mut self, name: &str) -> Result<(), IndexError>;
    /// Record a stored page (kept if already recorded).
    fn insert_page(&mut self, project: &str, kind: PageKind, d: &Digests)
        -> Result<(), IndexError>;
    /// Make `html` and `json` (SHA-256s) the project's current pages.
    fn set_current_pages(
        &mut self,
        project: &str,
        html: &str,
        json: &str,
    ) -> Result<(), IndexError>;
    /// Append target changes to the outbox, in order.
    fn push_outbox(&mut self, changes: &[Change]) -> Result<(), IndexError>;
}

/// Record `project`'s newly rendered pages (HTML, JSON) as its current ones; returns their
/// target changes.
pub(crate) fn record_pages(
    tx: &mut dyn WriteTx,
    project: &str,
    pages: &[Digests; 2],
) -> Result<Vec<Change>, IndexError> {
    let mut changes = Vec::with_capacity(2);
    for (kind, d) in PageKind::ALL.into_iter().zip(pages.iter()) {
        tx.insert_page(project, kind, d)?;
        changes.push(Change::Add(target(&kind.target_path(project), d)));
    }
    tx.set_current_pages(project, &pages[0].sha256, &pages[1].sha256)?;
    Ok(changes)
}

/// The version string of `project`'s release that is PEP 440-equal to `version`, if it has
/// one (`4.0` for `4.0.0`).
pub(super) fn release_version(
    tx: &mut dyn WriteTx,
    project: &str,
    version: &str,
) -> Result<Option<String>, IndexError> {
    let Ok(want) = crate::names::parse_version(version) else {
        return Ok(None);
    };
    Ok(tx
        .versions_of(project)?
        .into_iter()
        .find(|v| crate::names::parse_version(v).is_ok_and(|p| p == want)))
}
