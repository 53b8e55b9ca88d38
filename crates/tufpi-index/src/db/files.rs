//! Distribution files: an upload committed in one transaction (filename and identity
//! recorded for good, the project's pages re-rendered, the target changes in the outbox),
//! and the files, filenames and identities used.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use tufpi_repo::Change;
use tufpi_simple::targets::metadata_path;

use super::conn::{now_text, IndexDb};
use super::outbox::{push_outbox, target};
use super::pages::record_pages;
use super::rows::{dist_used, file_row, files_of, identity_of, release_version, FILE_COLUMNS};
use crate::error::IndexError;
use crate::names::{DistIdentity, DistKind};
use crate::pages::{Digests, FileRow};

/// The stored files the database references (see [`IndexDb::with_references`]).
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Target paths (`packages/…`) of distributions and their `.metadata` files.
    pub files: HashSet<String>,
    /// SHA-256s of stored pages (`pages/<sha256>`), current and past.
    pub pages: HashSet<String>,
}

/// Renders a project's pages from its files and stores them; returns their digests, HTML
/// then JSON.
pub type RenderFn<'a> = dyn FnMut(&[FileRow]) -> Result<[Digests; 2], IndexError> + 'a;

/// The refusal of `filename` because `previous` holds (or held) the same distribution
/// identity `id` (or the same name, when `id` is `None`).
pub fn already_exists(filename: &str, previous: &str, id: Option<&DistIdentity>) -> IndexError {
    let msg = match id {
        None => format!(
            "File already exists: {filename:?} has been used before in this index; upload a new version instead"
        ),
        Some(id) if previous.eq_ignore_ascii_case(filename) => format!(
            "File already exists: {filename:?} has been used before in this index ({}); upload a new version instead",
            id.describe()
        ),
        Some(id) if id.kind == DistKind::Sdist => format!(
            "File already exists: {filename:?} would be a second sdist of {} {}: {previous:?} was uploaded before (one sdist per release, even once removed; versions compare as PEP 440); upload a new version instead",
            id.project, id.version
        ),
        Some(id) => format!(
            "File already exists: {filename:?} is the same file as {previous:?}, uploaded before in this index: {} (versions compare as PEP 440, tags once expanded); upload a new version instead",
            id.describe()
        ),
    };
    IndexError::bad(msg)
}

impl IndexDb {
    /// Whether `filename` was ever used in this index (case-insensitively), even if deleted,
    /// or names a distribution identity used before (read from the name alone:
    /// [`DistIdentity::candidates`]; `alpha-4.0.0-py3-none-any.whl` after
    /// `alpha-4-py3-none-any.whl`).
    pub fn filename_used(&self, filename: &str) -> Result<bool, IndexError> {
        let exact = self
            .conn
            .query_row(
                "SELECT 1 FROM used_filenames WHERE filename = ?1",
                params![filename],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exact {
            return Ok(true);
        }
        for id in DistIdentity::candidates(filename) {
            if dist_used(&self.conn, &id)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The file that holds, or once held, distribution identity `id` in this index.
    pub fn dist_used(&self, id: &DistIdentity) -> Result<Option<String>, IndexError> {
        dist_used(&self.conn, id)
    }

    /// The files of a project (normalised name).
    pub fn files_of(&self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        files_of(&self.conn, project)
    }

    /// A file by name.
    pub fn file(&self, filename: &str) -> Result<Option<FileRow>, IndexError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {FILE_COLUMNS} FROM files WHERE filename = ?1"),
                params![filename],
                file_row,
            )
            .optional()?)
    }

    /// Record an uploaded file in one transaction: the filename as used, the project (created
    /// with `display_name` if new), the file, its project's new pages (`render` is given the
    /// project's files, stores both pages and returns their digests, HTML then JSON), and the
    /// TUF target changes in the outbox. A filename used before is refused.
    pub fn commit_upload(
        &mut self,
        file: &FileRow,
        display_name: &str,
        render: &mut RenderFn<'_>,
    ) -> Result<(), IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO used_filenames(filename) VALUES (?1)",
            params![file.filename],
        )?;
        if fresh == 0 {
            return Err(already_exists(&file.filename, &file.filename, None));
        }
        // One file per distribution identity, ever (also after a removal), and one release
        // per PEP 440 version: a file of 4.0.0 joins release 4.0 if it exists.
        let id = identity_of(file)?;
        if let Some(previous) = dist_used(&tx, &id)? {
            return Err(already_exists(&file.filename, &previous, Some(&id)));
        }
        tx.execute(
            "INSERT INTO used_dists(key, filename) VALUES (?1, ?2)",
            params![id.key(), file.filename],
        )?;
        let mut file = file.clone();
        if let Some(v) = release_version(&tx, &file.project, &file.version)? {
            file.version = v;
        }
        let file = &file;
        tx.execute(
            "INSERT OR IGNORE INTO projects(name, display_name, created) VALUES (?1, ?2, ?3)",
            params![file.project, display_name, now_text()],
        )?;
        let m = file.metadata.as_ref();
        tx.execute(
            &format!("INSERT INTO files({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![
                file.filename,
                file.project,
                file.version,
                file.packagetype,
                file.path,
                file.digests.size as i64,
                file.digests.sha256,
                file.digests.blake2b,
                file.requires_python,
                m.map(|d| d.size as i64),
                m.map(|d| d.sha256.clone()),
                m.map(|d| d.blake2b.clone()),
                file.upload_time,
                file.yanked,
            ],
        )?;
        let files = files_of(&tx, &file.project)?;
        let pages = render(&files)?;
        let mut changes = vec![Change::Add(target(&file.path, &file.digests))];
        if let Some(md) = m {
            changes.push(Change::Add(target(&metadata_path(&file.path), md)));
        }
        changes.extend(record_pages(&tx, &file.project, &pages)?);
        push_outbox(&tx, &changes)?;
        tx.commit()?;
        Ok(())
    }

    /// Run `f` with every stored file the database references, holding the database's write
    /// lock throughout, so no page can be stored and recorded meanwhile (pages are written
    /// inside write transactions). An upload moves its file in before its transaction: call
    /// this only where no upload can be in flight (a starting server, under the repository
    /// lock).
    pub fn with_references<T>(
        &mut self,
        f: impl FnOnce(&References) -> T,
    ) -> Result<T, IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut refs = References::default();
        {
            let mut stmt = tx.prepare("SELECT path, metadata_sha256 IS NOT NULL FROM files")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let path: String = r.get(0)?;
                if r.get::<_, bool>(1)? {
                    refs.files.insert(metadata_path(&path));
                }
                refs.files.insert(path);
            }
            let mut stmt = tx.prepare("SELECT sha256 FROM pages")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                refs.pages.insert(r.get(0)?);
            }
        }
        let out = f(&refs);
        tx.rollback()?;
        Ok(out)
    }
}
