//! The TUF target records the index hands the repository (with every digest it keeps), and
//! the outbox of target changes committed but not yet queued in the repository.

use std::collections::BTreeMap;

use tufpi_repo::{Change, TargetRecord};
use tufpi_simple::targets::{basename, is_page_path, split_metadata};

use super::conn::{dispatch, IndexDb};
use crate::error::IndexError;
use crate::pages::Digests;

/// The TUF target record of a stored file or page, with every digest the index keeps (the
/// repository lists those its target hashes name).
pub(crate) fn target(path: &str, d: &Digests) -> TargetRecord {
    TargetRecord {
        path: path.to_string(),
        length: d.size,
        hashes: digest_map(d),
        custom: None,
    }
}

/// The digests the index keeps of every file and page, as TUF names them.
pub(crate) const KEPT_HASHES: [&str; 2] = ["sha256", "blake2b-256"];

fn digest_map(d: &Digests) -> BTreeMap<String, String> {
    KEPT_HASHES
        .into_iter()
        .map(String::from)
        .zip([d.sha256.clone(), d.blake2b.clone()])
        .collect()
}

/// An outbox row's columns: (op, path, size, sha256, blake2b).
pub(super) type OutboxRow<'a> = (&'static str, &'a str, i64, &'a str, &'a str);

/// The outbox row of a change (a removal has no size or digests).
pub(super) fn outbox_row(c: &Change) -> OutboxRow<'_> {
    match c {
        Change::Add(t) => (
            "add",
            &t.path,
            t.length as i64,
            t.hashes.get("sha256").map(String::as_str).unwrap_or(""),
            t.hashes
                .get("blake2b-256")
                .map(String::as_str)
                .unwrap_or(""),
        ),
        Change::Remove(path) => ("remove", path, 0, "", ""),
    }
}

/// The change an outbox row records.
pub(super) fn change_of(
    op: &str,
    path: String,
    size: i64,
    sha256: String,
    blake2b: String,
) -> Change {
    if op == "remove" {
        Change::Remove(path)
    } else {
        Change::Add(target(
            &path,
            &Digests {
                size: size as u64,
                sha256,
                blake2b,
            },
        ))
    }
}

/// The queueing of drained changes in the repository (durable there when it returns `Ok`).
pub type QueueFn<'a> = dyn FnMut(&[Change]) -> Result<(), IndexError> + 'a;

impl IndexDb {
    /// Every digest the index keeps of the file or page that target `path` lists with the
    /// SHA-256 in `listed` (`None` if it keeps no such content: it lists only its own).
    pub fn known_hashes(
        &self,
        path: &str,
        listed: &BTreeMap<String, String>,
    ) -> Result<Option<BTreeMap<String, String>>, IndexError> {
        let Some(sha) = listed.get("sha256") else {
            return Ok(None);
        };
        let found = if is_page_path(path) {
            dispatch!(&self.backend, b => b.page_digests(sha))?
        } else {
            let (file, is_meta) = split_metadata(path);
            self.file(basename(file))?
                .filter(|row| row.path == file)
                .and_then(|row| {
                    if is_meta {
                        row.metadata
                    } else {
                        Some(row.digests)
                    }
                })
        };
        Ok(found.filter(|d| &d.sha256 == sha).map(|d| digest_map(&d)))
    }

    /// Target changes recorded but not yet queued in the repository, in order.
    pub fn outbox(&self) -> Result<Vec<Change>, IndexError> {
        dispatch!(&self.backend, b => b.outbox())
    }

    /// Number of changes in the outbox.
    pub fn outbox_len(&self) -> Result<u64, IndexError> {
        dispatch!(&self.backend, b => b.outbox_len())
    }

    /// Hand the outbox to `queue` (which durably queues the changes in the repository) and
    /// forget it, inside one write transaction: flushes from several connections or
    /// processes (server, publisher, `tufpi project`, other replicas) are serialised, so
    /// changes reach the repository queue in the order they were committed. If this dies
    /// after `queue` but before the commit, the next flush queues the same changes again,
    /// still ahead of any later ones: harmless. Returns how many changes were handed over.
    pub fn drain_outbox(&mut self, queue: &mut QueueFn<'_>) -> Result<usize, IndexError> {
        dispatch!(&mut self.backend, b => b.drain_outbox(queue))
    }
}
