//! Transitional: durable writes live in `tufpi-fs`. This wrapper keeps the index building
//! until it calls `tufpi_fs` itself; then it goes.

use std::path::Path;

use crate::error::RepoError;

/// [`tufpi_fs::write_atomic`], with the repository's error type.
#[doc(hidden)]
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    Ok(tufpi_fs::write_atomic(path, bytes)?)
}
