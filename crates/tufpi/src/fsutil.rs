//! File helpers for the CLI: durable writes come from `tufpi-fs` (temp file → fsync → rename
//! → fsync of the directory); reads name the file in their error.

use std::path::Path;

use anyhow::{Context, Result};

/// Write `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(tufpi_fs::write_atomic(path, bytes)?)
}

/// Read a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
