//! The changes a repository queues: add (or replace) a target, or remove one. A change is
//! checked before it is queued: the path is relative and plain, and an addition lists exactly
//! the repository's target hashes.

use std::collections::BTreeMap;

use tufpi_core::json::Value;

use crate::config::RepoConfig;
use crate::error::RepoError;

/// A target as the repository records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// Target path (relative to the target base URL).
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// Algorithm → hex digest (as queued: exactly the repository's target hashes).
    pub hashes: BTreeMap<String, String>,
    /// Opaque `custom` value, if any.
    pub custom: Option<Value>,
}

/// A queued change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add or replace a target.
    Add(TargetRecord),
    /// Remove a target by path.
    Remove(String),
}

impl Change {
    /// The target path the change concerns.
    pub fn path(&self) -> &str {
        match self {
            Change::Add(t) => &t.path,
            Change::Remove(p) => p,
        }
    }

    /// The change as the repository will queue it: a relative path without empty, `.` or
    /// `..` segments; an addition lists exactly the configured target hashes.
    pub fn validate(self, cfg: &RepoConfig) -> Result<Change, RepoError> {
        match self {
            Change::Add(t) => Ok(Change::Add(t.validate(cfg)?)),
            Change::Remove(p) => {
                check_path(&p)?;
                Ok(Change::Remove(p))
            }
        }
    }
}

/// Refuse a target path that is empty, absolute, or has an empty, `.` or `..` segment.
fn check_path(path: &str) -> Result<(), RepoError> {
    let bad_segment = |seg: &[u8]| seg.is_empty() || seg == b"." || seg == b"..";
    if path.is_empty() || path.as_bytes().split(|&b| b == b'/').any(bad_segment) {
        return Err(RepoError::BadTargetPath {
            path: path.to_string(),
        });
    }
    Ok(())
}

impl TargetRecord {
    /// The record as the repository lists it: its path checked (see [`Change::validate`]),
    /// its hashes exactly the configured target hashes (see [`TargetHashes`]).
    ///
    /// [`TargetHashes`]: crate::TargetHashes
    pub fn validate(mut self, cfg: &RepoConfig) -> Result<TargetRecord, RepoError> {
        check_path(&self.path)?;
        self.hashes = cfg.target_hashes.select(&self.path, &self.hashes)?;
        Ok(self)
    }
}
