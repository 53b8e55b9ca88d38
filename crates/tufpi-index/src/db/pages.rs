//! Rendered pages as the database records them: each project's current HTML and JSON page,
//! and every page it ever had (a snapshot may still name one) until it is collected.

use tufpi_simple::PageKind;

use super::conn::{dispatch, IndexDb};
use crate::error::IndexError;

/// Deletes a stored page's file, by SHA-256.
pub type RemovePageFn<'a> = dyn Fn(&str) -> Result<(), IndexError> + 'a;

impl IndexDb {
    /// The SHA-256 of a stored page of `project` and `kind` whose SHA-256 or BLAKE2b-256 is
    /// `digest` (hex).
    pub fn page(
        &self,
        project: &str,
        kind: PageKind,
        digest: &str,
    ) -> Result<Option<String>, IndexError> {
        dispatch!(&self.backend, b => b.page(project, kind, digest))
    }

    /// Stored pages no project shows any more: (sha256, project, kind).
    pub fn superseded_pages(&self) -> Result<Vec<crate::collect::Superseded>, IndexError> {
        let rows = dispatch!(&self.backend, b => b.superseded_pages())?;
        // A kind this build does not know is not a page it collects.
        Ok(rows
            .into_iter()
            .filter_map(|(sha, project, kind)| Some((sha, project, PageKind::from_name(&kind)?)))
            .collect())
    }

    /// Forget each of `pages` that is still superseded and delete its file with `remove`,
    /// in one write transaction: a commit that makes such a page current again (same bytes)
    /// either comes first (the page is kept) or after (it finds the file gone and writes it
    /// again). Returns how many were deleted.
    pub fn delete_superseded_pages(
        &mut self,
        pages: &[String],
        remove: &RemovePageFn<'_>,
    ) -> Result<usize, IndexError> {
        dispatch!(&mut self.backend, b => b.delete_superseded_pages(pages, remove))
    }
}
