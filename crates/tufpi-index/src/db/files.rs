//! Distribution files: an upload committed in one transaction (filename and identity
//! recorded for good, the project's pages re-rendered, the target changes in the outbox),
//! and the files, filenames and identities used.

use std::collections::HashSet;

use tufpi_repo::Change;
use tufpi_simple::targets::metadata_path;

use super::conn::{dispatch, IndexDb};
use super::outbox::target;
use super::tx::{record_pages, release_version};
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
        if dispatch!(&self.backend, b => b.filename_recorded(filename))? {
            return Ok(true);
        }
        for id in DistIdentity::candidates(filename) {
            if self.dist_used(&id)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The file that holds, or once held, distribution identity `id` in this index.
    pub fn dist_used(&self, id: &DistIdentity) -> Result<Option<String>, IndexError> {
        dispatch!(&self.backend, b => b.dist_used(&id.key()))
    }

    /// The files of a project (normalised name).
    pub fn files_of(&self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        dispatch!(&self.backend, b => b.files_of(project))
    }

    /// A file by name.
    pub fn file(&self, filename: &str) -> Result<Option<FileRow>, IndexError> {
        dispatch!(&self.backend, b => b.file(filename))
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
        self.write(|tx| {
            // The project's lock first: uploads of one project (from any replica) then run
            // one after the other, each seeing the files the one before committed.
            tx.lock_project(&file.project, Some(display_name))?;
            if !tx.claim_filename(&file.filename)? {
                return Err(already_exists(&file.filename, &file.filename, None));
            }
            // One file per distribution identity, ever (also after a removal), and one
            // release per PEP 440 version: a file of 4.0.0 joins release 4.0 if it exists.
            let id = identity_of(file)?;
            if let Some(previous) = tx.claim_dist(&id.key(), &file.filename)? {
                return Err(already_exists(&file.filename, &previous, Some(&id)));
            }
            let mut file = file.clone();
            if let Some(v) = release_version(tx, &file.project, &file.version)? {
                file.version = v;
            }
            tx.insert_file(&file)?;
            let files = tx.files_of(&file.project)?;
            let pages = render(&files)?;
            let mut changes = vec![Change::Add(target(&file.path, &file.digests))];
            if let Some(md) = &file.metadata {
                changes.push(Change::Add(target(&metadata_path(&file.path), md)));
            }
            changes.extend(record_pages(tx, &file.project, &pages)?);
            tx.push_outbox(&changes)?;
            Ok(())
        })
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
        let mut f = Some(f);
        let mut out = None;
        dispatch!(&mut self.backend, b => b.with_references(&mut |refs| {
            if let Some(f) = f.take() {
                out = Some(f(refs));
            }
        }))?;
        out.ok_or_else(|| IndexError::Internal("the references were never read".into()))
    }
}

/// The distribution identity of a stored file.
pub(super) fn identity_of(file: &FileRow) -> Result<DistIdentity, IndexError> {
    let kind = if file.packagetype == DistKind::Wheel.packagetype() {
        DistKind::Wheel
    } else {
        DistKind::Sdist
    };
    let version = crate::names::parse_version(&file.version).map_err(IndexError::Internal)?;
    DistIdentity::new(&file.filename, &file.project, &version, kind).map_err(IndexError::Internal)
}

/// The files a page or file row references, as [`References`] holds them: a file's target
/// path and, if it has core metadata, that of its `.metadata` file.
pub(super) fn reference_file(refs: &mut References, path: String, has_metadata: bool) {
    if has_metadata {
        refs.files.insert(metadata_path(&path));
    }
    refs.files.insert(path);
}
