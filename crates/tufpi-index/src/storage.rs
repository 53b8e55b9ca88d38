//! Files on disk under the data directory: distributions and their core metadata at their
//! target paths (`DIR/packages/…`), rendered pages by content hash (`DIR/pages/<sha256>`,
//! never rewritten), upload temp files (`DIR/tmp/`). Every write is durable before it is
//! acknowledged: temp file → fsync → rename → fsync of the directory.

use std::fs;
use std::path::{Path, PathBuf};

use tufpi_core::hashes::Hasher;
use tufpi_fs::{ensure_dir, sync_dir, write_atomic};

use crate::db::References;
use crate::error::IndexError;
use crate::pages::Digests;

/// The digests the index keeps ([`Digests`]) of bytes fed in pieces.
pub struct DigestsHasher {
    size: u64,
    sha256: Hasher,
    blake2b: Hasher,
}

impl Default for DigestsHasher {
    fn default() -> Self {
        DigestsHasher::new()
    }
}

impl DigestsHasher {
    /// Nothing fed yet.
    pub fn new() -> DigestsHasher {
        let hasher = |alg| Hasher::new(alg).expect("a hash algorithm the core knows");
        DigestsHasher {
            size: 0,
            sha256: hasher("sha256"),
            blake2b: hasher("blake2b-256"),
        }
    }

    /// Feed the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.sha256.update(bytes);
        self.blake2b.update(bytes);
    }

    /// Size, SHA-256 and BLAKE2b-256 of everything fed.
    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            sha256: self.sha256.finish_hex(),
            blake2b: self.blake2b.finish_hex(),
        }
    }
}

/// Size, SHA-256 and BLAKE2b-256 of `bytes`.
pub fn digests(bytes: &[u8]) -> Digests {
    let mut h = DigestsHasher::new();
    h.update(bytes);
    h.finish()
}

/// The data directory's file areas.
#[derive(Debug, Clone)]
pub struct Storage {
    dir: PathBuf,
}

impl Storage {
    /// The file areas of data directory `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Storage, IndexError> {
        let s = Storage {
            dir: dir.to_path_buf(),
        };
        for d in [s.tmp_dir(), s.dir.join("pages"), s.dir.join("packages")] {
            ensure_dir(&d)?;
        }
        Ok(s)
    }

    /// Where uploads are received before they are checked.
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Remove leftovers of uploads interrupted by a crash (every file in the temp area);
    /// returns their paths relative to the data directory. Only with no upload in flight.
    pub fn clean_tmp(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .map(|e| format!("tmp/{}", e.file_name().to_string_lossy()))
            .collect()
    }

    /// Remove every file under `packages/` and `pages/` that `refs` does not name (files of
    /// uploads or removals interrupted by a crash, temp files of interrupted writes) and the
    /// directories under `packages/` left empty; returns the removed files' paths relative to
    /// the data directory. Only with no upload in flight (see
    /// [`crate::db::IndexDb::with_references`]).
    pub fn sweep(&self, refs: &References) -> Vec<String> {
        let mut removed = Vec::new();
        let keep_file = |rel: &str| refs.files.contains(rel);
        self.sweep_dir(
            &self.dir.join("packages"),
            "packages",
            &keep_file,
            &mut removed,
        );
        let keep_page = |rel: &str| {
            rel.strip_prefix("pages/")
                .is_some_and(|sha| refs.pages.contains(sha))
        };
        self.sweep_dir(&self.dir.join("pages"), "pages", &keep_page, &mut removed);
        removed
    }

    /// Sweep `dir` (target path `rel`) recursively; returns whether it is now empty.
    fn sweep_dir(
        &self,
        dir: &Path,
        rel: &str,
        keep: &dyn Fn(&str) -> bool,
        removed: &mut Vec<String>,
    ) -> bool {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("sweeping {}: {e}", dir.display());
                return false;
            }
        };
        let mut empty = true;
        for entry in entries {
            let Ok(entry) = entry else {
                empty = false;
                continue;
            };
            let path = entry.path();
            // Names the index writes are ASCII; anything else is nobody's file.
            let name = entry.file_name();
            let child = format!("{rel}/{}", name.to_string_lossy());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                if self.sweep_dir(&path, &child, keep, removed) && fs::remove_dir(&path).is_ok() {
                    continue;
                }
                empty = false;
            } else if name.to_str().is_some() && keep(&child) {
                empty = false;
            } else {
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(child),
                    Err(e) => {
                        tracing::warn!("removing {}: {e}", path.display());
                        empty = false;
                    }
                }
            }
        }
        empty
    }

    /// The file at target path `target` (a `packages/…` path).
    pub fn file_path(&self, target: &str) -> PathBuf {
        self.dir.join(target)
    }

    /// The stored page with SHA-256 `sha256`.
    pub fn page_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("pages").join(sha256)
    }

    /// Store a page (once: a page's bytes never change) and return its digests.
    pub fn put_page(&self, bytes: &[u8]) -> Result<Digests, IndexError> {
        let d = digests(bytes);
        let path = self.page_path(&d.sha256);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(d)
    }

    /// Delete the stored page with SHA-256 `sha256` (gone already is fine).
    pub fn remove_page(&self, sha256: &str) -> Result<(), IndexError> {
        let path = self.page_path(sha256);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(IndexError::io(format!("removing {}", path.display()), e)),
        }
    }

    /// Durably write `bytes` at target path `target`.
    pub fn put_file(&self, target: &str, bytes: &[u8]) -> Result<(), IndexError> {
        let path = self.file_path(target);
        if let Some(parent) = path.parent() {
            ensure_dir(parent)?;
        }
        Ok(write_atomic(&path, bytes)?)
    }

    /// Durably move a received (already fsynced) temp file to target path `target`.
    pub fn install(&self, tmp: &Path, target: &str) -> Result<(), IndexError> {
        let path = self.file_path(target);
        let parent = path
            .parent()
            .ok_or_else(|| IndexError::Internal(format!("bad target path {target}")))?;
        ensure_dir(parent)?;
        fs::rename(tmp, &path)
            .map_err(|e| IndexError::io(format!("moving upload to {}", path.display()), e))?;
        Ok(sync_dir(parent)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_simple::targets::{is_hex64, package_path};

    #[test]
    fn digests_and_paths() {
        let d = digests(b"abc");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            d.blake2b,
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
        assert_eq!(
            package_path(&d.blake2b, "x-1.0.tar.gz"),
            format!("packages/bd/dd/{}/x-1.0.tar.gz", &d.blake2b[4..])
        );
        assert!(is_hex64(&d.sha256));
        assert!(!is_hex64(&d.sha256.to_uppercase()));
        assert!(!is_hex64("abc"));
    }

    #[test]
    fn pages_are_written_once_by_hash() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let d = s.put_page(b"<html>").unwrap();
        assert_eq!(fs::read(s.page_path(&d.sha256)).unwrap(), b"<html>");
        assert_eq!(s.put_page(b"<html>").unwrap(), d);
        s.put_file("packages/aa/bb/cc/x.metadata", b"Name: x")
            .unwrap();
        assert!(t.path().join("packages/aa/bb/cc/x.metadata").is_file());
    }
}
