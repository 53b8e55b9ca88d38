//! tufpi-blob: where tufpi keeps bytes — distributions, rendered pages and TUF metadata —
//! behind one seam with two implementations chosen at start: the local file system with
//! tufpi's durable writes (`file:///path`, the embedded default) and S3-compatible object
//! storage (`s3://BUCKET[/PREFIX]`).
//!
//! Every write is either **create-only** (versioned metadata, content-addressed files: a key
//! is written once and never changes) or a **compare-and-swap** on the ETag the writer last
//! saw (`timestamp.json`, the only object ever overwritten). A fenced-out publisher's swap is
//! refused by the store itself, not by a lock it might have lost.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use bytes::Bytes;
use chrono::{DateTime, Utc};

mod fs;
mod s3;
mod scoped;
#[doc(hidden)]
pub mod testing;
mod url;

pub use fs::FsStore;
pub use s3::{content_type, S3Credentials, S3Store, SINGLE_PUT_MAX};
pub use scoped::Scoped;
pub use url::{open, StorageOptions, StorageUrl};

/// An opaque version tag of an object's current bytes, as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Etag(pub String);

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a create-only write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The key was absent and now holds the bytes.
    New,
    /// The key existed already; nothing was written (the caller compares if it matters).
    Existed,
}

/// An object's listing entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Its key, relative to the store (or scope) it was listed from.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: DateTime<Utc>,
    /// Its ETag, where the store reports one.
    pub etag: Option<Etag>,
}

/// What can go wrong talking to a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A compare-and-swap write found another version than the one expected: another writer
    /// replaced the object (a publisher that lost its lease is refused here).
    #[error("{key}: precondition failed: the object is not the version this writer last saw (expected {expected}): another writer replaced it")]
    Precondition {
        /// The key.
        key: String,
        /// The ETag this writer expected, or "absent".
        expected: String,
    },
    /// The store could not be reached or answered with a server error: worth retrying later.
    #[error("blob store unavailable ({what}): {detail}")]
    Unavailable {
        /// What was being done.
        what: String,
        /// The store's or transport's message.
        detail: String,
    },
    /// A local file-system failure.
    #[error(transparent)]
    Io(#[from] tufpi_fs::Error),
    /// A key that is not a relative path of plain segments.
    #[error("bad blob key {key:?}: {why}")]
    BadKey {
        /// The key.
        key: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// A storage URL or option that cannot be used.
    #[error("storage {url:?}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        why: String,
    },
    /// Any other failure the store reported.
    #[error("blob store ({what}): {detail}")]
    Other {
        /// What was being done.
        what: String,
        /// The store's message.
        detail: String,
    },
}

impl BlobError {
    /// Whether retrying later may succeed (the store was unreachable or overloaded).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BlobError::Unavailable { .. })
    }
}

/// Result of a blob store operation.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// A store of immutable objects plus compare-and-swap ones, addressed by `/`-separated keys.
/// Methods block: call them from a thread that may block (never from an async task).
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Write `bytes` under `key` only if `key` is absent (`If-None-Match: *`). Immutable from
    /// then on (served with a long-lived Cache-Control).
    fn put_new(&self, key: &str, bytes: Bytes) -> Result<Created>;
    /// Write many create-only objects; on the file system with one sync for all of them.
    /// Keys already present are kept as they are.
    fn put_many_new(&self, items: Vec<(String, Bytes)>) -> Result<()> {
        for (k, b) in items {
            self.put_new(&k, b)?;
        }
        Ok(())
    }
    /// Create-only write of a local file's bytes (an upload's temp file), streamed.
    fn put_new_file(&self, key: &str, file: &Path) -> Result<Created>;
    /// Replace `key` with `bytes` only if its current ETag is `expected` (`If-Match`), or, with
    /// `None`, only if it is absent. Returns the new ETag. Mutable: short Cache-Control.
    /// Another version there: [`BlobError::Precondition`].
    fn put_swap(&self, key: &str, bytes: Bytes, expected: Option<&Etag>) -> Result<Etag>;
    /// The bytes under `key`, or `None`.
    fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// The bytes under `key` with their ETag, or `None`.
    fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, Etag)>>;
    /// Size, time and ETag of `key`, or `None`.
    fn head(&self, key: &str) -> Result<Option<BlobMeta>>;
    /// Remove `key` (absent is fine).
    fn delete(&self, key: &str) -> Result<()>;
    /// Every object whose key starts with `prefix` (`""`: all), keys relative to the store.
    fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>>;
    /// Where `key` lives on the local file system, for a store that is local (serving with
    /// the OS's file APIs); `None` for remote stores.
    fn local_path(&self, key: &str) -> Option<PathBuf>;
    /// A URL naming the store (credentials never included), for logs and `/health`.
    fn describe(&self) -> String;
}

/// A shared blob store.
pub type SharedStore = Arc<dyn BlobStore>;

/// Check that `key` is a relative path of plain segments (no `..`, no empty segment, no
/// leading `/`): keys become file paths and object names.
pub fn check_key(key: &str) -> Result<()> {
    let bad = |why| {
        Err(BlobError::BadKey {
            key: key.to_string(),
            why,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("leading or trailing /");
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad("empty, . or .. segment");
        }
        if seg.contains('\\') || seg.contains('\0') {
            return bad("backslash or NUL");
        }
    }
    Ok(())
}

/// The Cache-Control a key is served with: `timestamp.json` (the only object ever
/// overwritten) briefly, everything else (versioned or content-addressed) forever.
pub fn cache_control(key: &str) -> &'static str {
    if key == "timestamp.json" || key.ends_with("/timestamp.json") {
        "public, max-age=10"
    } else {
        "public, max-age=31536000, immutable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_relative_paths() {
        for ok in ["a", "metadata/1.root.json", "packages/ab/cd/x-1.whl"] {
            check_key(ok).unwrap();
        }
        for bad in ["", "/a", "a/", "a//b", "../a", "a/./b", "a\\b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_timestamp_is_short_lived() {
        assert!(cache_control("metadata/timestamp.json").contains("max-age=10"));
        assert!(cache_control("timestamp.json").contains("max-age=10"));
        assert!(cache_control("metadata/3.snapshot.json").contains("immutable"));
    }
}
