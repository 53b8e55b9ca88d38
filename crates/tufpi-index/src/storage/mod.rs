//! The index's file areas over a blob store: distributions and their core metadata at their
//! target paths (`packages/…`, which is also their public URL path under `/packages/`),
//! rendered pages by content hash (`pages/<sha256>`, never rewritten), and a local temp area
//! receiving uploads.
//!
//! [`Storage::open`] is the data directory's layout: a [`FsStore`] rooted at `DIR`, the temp
//! area `DIR/tmp`, every write durable before it is acknowledged (temp file → fsync → rename
//! → fsync of the directory). [`Storage::with_store`] puts the areas in any
//! [`BlobStore`](tufpi_blob::BlobStore), such as S3-compatible object storage, read through
//! an in-process [`BlobCache`].
//!
//! Pages are keyed by content hash, not by their public URL: `/simple/<name>/` changes with
//! every upload, while `pages/<sha256>` is written once and may be cached forever. A CDN in
//! front of the bucket serves `/packages/…` as is; the current page is found through the
//! index's database, so `/simple/<name>/` stays the index's (or an edge rule's) to answer.
//! Every write is create-only: a key names its content, so an existing key already holds
//! the same bytes (a twine retry of the same file writes nothing).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tufpi_blob::{BlobError, Bytes, FsStore, SharedStore};
use tufpi_core::hashes::Hasher;
use tufpi_fs::{ensure_dir, sync_dir};

use crate::error::IndexError;
use crate::pages::Digests;

pub mod cache;
pub mod serve;
mod sweep;

pub use cache::{BlobCache, DEFAULT_CACHE_BYTES};
pub use serve::{Served, Stored};
pub use sweep::SWEEP_GRACE;

/// How long an upload's write waits out a blob store that cannot be reached before the
/// upload is answered 503: twine retries a 5xx at once, a few times, ignoring Retry-After, so
/// a store back within seconds should cost the uploader nothing.
pub const RIDE_OUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Run `write`, again while it fails with the store unavailable, for up to `ride_out`. Safe
/// for create-only writes: one that landed before the failure is found `Existed`.
fn riding_out<T>(
    ride_out: std::time::Duration,
    mut write: impl FnMut() -> Result<T, BlobError>,
) -> Result<T, BlobError> {
    let t0 = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        match write() {
            Err(e) if e.is_unavailable() && t0.elapsed() + pause < ride_out => {
                tracing::warn!("blob store unavailable, retrying in {pause:?}: {e}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Uploads up to this size go to a remote store from memory, in one conditional PUT;
/// larger ones are streamed from their temp file.
const SMALL_FILE: u64 = 8 << 20;

/// Key prefix (and directory) of the distributions and their core metadata.
pub const PACKAGES: &str = "packages";
/// Key prefix (and directory) of the rendered pages.
pub const PAGES: &str = "pages";

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

/// The index's file areas (see the module docs).
#[derive(Debug, Clone)]
pub struct Storage {
    store: SharedStore,
    /// Where uploads are received (always local: the multipart body streams to a file).
    tmp: PathBuf,
    /// The store's root directory when it is local: files are then served with the OS's
    /// file APIs and uploads renamed into place.
    local_root: Option<PathBuf>,
    cache: Arc<BlobCache>,
    /// How long a write waits out an unreachable store ([`RIDE_OUT`]).
    ride_out: std::time::Duration,
}

/// The [`IndexError`] of a blob store failure: an unreachable store is a 503 with
/// Retry-After (try again later), never a 500.
pub fn blob_error(e: BlobError) -> IndexError {
    match e {
        BlobError::Unavailable { .. } => IndexError::Unavailable(e.to_string()),
        BlobError::Io(e) => e.into(),
        other => IndexError::Internal(other.to_string()),
    }
}

fn page_key(sha256: &str) -> String {
    format!("{PAGES}/{sha256}")
}

impl Storage {
    /// The file areas of data directory `dir` (created if missing), as they always were:
    /// `DIR/packages/…`, `DIR/pages/<sha256>`, `DIR/tmp/`.
    pub fn open(dir: &Path) -> Result<Storage, IndexError> {
        let store = FsStore::open(dir).map_err(blob_error)?;
        for d in [PAGES, PACKAGES] {
            ensure_dir(&dir.join(d))?;
        }
        Storage::with_store(Arc::new(store), &dir.join("tmp"))
    }

    /// The file areas in `store`, uploads received in `tmp_dir` (created if missing).
    pub fn with_store(store: SharedStore, tmp_dir: &Path) -> Result<Storage, IndexError> {
        ensure_dir(tmp_dir)?;
        // A local store roots `pages/` in a directory; a remote one has no local paths.
        let local_root = store
            .local_path(PAGES)
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Ok(Storage {
            store,
            tmp: tmp_dir.to_path_buf(),
            local_root,
            cache: Arc::new(BlobCache::new(DEFAULT_CACHE_BYTES)),
            ride_out: RIDE_OUT,
        })
    }

    /// This storage, its writes waiting out an unreachable store for `ride_out` (default
    /// [`RIDE_OUT`]; zero: answer 503 at once).
    pub fn with_ride_out(mut self, ride_out: std::time::Duration) -> Storage {
        self.ride_out = ride_out;
        self
    }

    /// The same areas with a read cache of at most `bytes` (0: none). Only a remote store's
    /// reads go through it: a local one is served from its files.
    pub fn with_cache_bytes(mut self, bytes: u64) -> Storage {
        self.cache = Arc::new(BlobCache::new(bytes));
        self
    }

    /// The blob store holding the areas.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The read cache.
    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    /// Whether the store is a local directory (files served and installed by path).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// Where uploads are received before they are checked.
    pub fn tmp_dir(&self) -> PathBuf {
        self.tmp.clone()
    }

    /// Remove leftovers of uploads interrupted by a crash (every file in the temp area);
    /// returns their paths relative to the data directory. Only with no upload in flight.
    pub fn clean_tmp(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.tmp) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .map(|e| format!("tmp/{}", e.file_name().to_string_lossy()))
            .collect()
    }

    /// The local file of `key`; for a remote store a path under the temp area that never
    /// exists (so callers checking `is_file()` see it absent and write it again:
    /// create-only, that is harmless).
    fn path_of(&self, key: &str) -> PathBuf {
        match &self.local_root {
            Some(_) => self.store.local_path(key),
            None => None,
        }
        .unwrap_or_else(|| self.tmp.join(".remote").join(key))
    }

    /// The local file at target path `target` (a `packages/…` path); see [`Storage::read_file`]
    /// for a store that is not local.
    pub fn file_path(&self, target: &str) -> PathBuf {
        self.path_of(target)
    }

    /// The local file of the stored page with SHA-256 `sha256`; see [`Storage::has_page`] and
    /// [`Storage::read_page`] for a store that is not local.
    pub fn page_path(&self, sha256: &str) -> PathBuf {
        self.path_of(&page_key(sha256))
    }

    /// Whether the page with SHA-256 `sha256` is stored.
    pub fn has_page(&self, sha256: &str) -> Result<bool, IndexError> {
        let key = page_key(sha256);
        if self.is_local() {
            return Ok(self.path_of(&key).is_file());
        }
        if self.cache.contains(&key) {
            return Ok(true);
        }
        Ok(self.store.head(&key).map_err(blob_error)?.is_some())
    }

    /// Store a page (once: a page's bytes never change) and return its digests.
    pub fn put_page(&self, bytes: &[u8]) -> Result<Digests, IndexError> {
        let d = digests(bytes);
        let key = page_key(&d.sha256);
        let bytes = Bytes::copy_from_slice(bytes);
        riding_out(self.ride_out, || self.store.put_new(&key, bytes.clone()))
            .map_err(blob_error)?;
        if !self.is_local() {
            // A project's new page is what its next request asks for.
            self.cache.insert(&key, bytes);
        }
        Ok(d)
    }

    /// Delete the stored page with SHA-256 `sha256` (gone already is fine).
    pub fn remove_page(&self, sha256: &str) -> Result<(), IndexError> {
        self.remove(&page_key(sha256))
    }

    /// Delete the file at target path `target` (gone already is fine).
    pub fn remove_file(&self, target: &str) -> Result<(), IndexError> {
        self.remove(target)
    }

    fn remove(&self, key: &str) -> Result<(), IndexError> {
        self.store.delete(key).map_err(blob_error)?;
        self.cache.remove(key);
        Ok(())
    }

    /// Durably write `bytes` at target path `target` (create-only: the path names the
    /// content, so bytes already there are these bytes).
    pub fn put_file(&self, target: &str, bytes: &[u8]) -> Result<(), IndexError> {
        let bytes = Bytes::copy_from_slice(bytes);
        riding_out(self.ride_out, || self.store.put_new(target, bytes.clone()))
            .map_err(blob_error)?;
        Ok(())
    }

    /// Durably move a received (already fsynced) temp file to target path `target`: renamed
    /// into place on a local store, streamed to a remote one (create-only) and then removed.
    pub fn install(&self, tmp: &Path, target: &str) -> Result<(), IndexError> {
        if !self.is_local() {
            let size = fs::metadata(tmp)
                .map_err(|e| IndexError::io(format!("reading {}", tmp.display()), e))?
                .len();
            if size <= SMALL_FILE {
                // One conditional PUT (a streamed file first asks whether the key exists).
                let bytes = Bytes::from(
                    fs::read(tmp)
                        .map_err(|e| IndexError::io(format!("reading {}", tmp.display()), e))?,
                );
                riding_out(self.ride_out, || self.store.put_new(target, bytes.clone()))
                    .map_err(blob_error)?;
            } else {
                riding_out(self.ride_out, || self.store.put_new_file(target, tmp))
                    .map_err(blob_error)?;
            }
            if let Err(e) = fs::remove_file(tmp) {
                tracing::warn!("removing {}: {e}", tmp.display());
            }
            return Ok(());
        }
        let path = self
            .store
            .local_path(target)
            .ok_or_else(|| IndexError::Internal(format!("bad target path {target}")))?;
        let parent = path
            .parent()
            .ok_or_else(|| IndexError::Internal(format!("bad target path {target}")))?;
        ensure_dir(parent)?;
        // A rename is cheaper than a copy and as durable: the temp file is fsynced already.
        match fs::rename(tmp, &path) {
            Ok(()) => Ok(sync_dir(parent)?),
            // The temp area on another file system than a file:// store: copy instead.
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                riding_out(self.ride_out, || self.store.put_new_file(target, tmp))
                    .map_err(blob_error)?;
                if let Err(e) = fs::remove_file(tmp) {
                    tracing::warn!("removing {}: {e}", tmp.display());
                }
                Ok(())
            }
            Err(e) => Err(IndexError::io(
                format!("moving upload to {}", path.display()),
                e,
            )),
        }
    }

    /// The stored page with SHA-256 `sha256`: its local file, or its bytes (through the
    /// cache); `None` if a remote store does not hold it.
    pub fn read_page(&self, sha256: &str) -> Result<Option<Stored>, IndexError> {
        self.read(&page_key(sha256))
    }

    /// The stored file at target path `target`: its local file, or its bytes (through the
    /// cache); `None` if a remote store does not hold it.
    pub fn read_file(&self, target: &str) -> Result<Option<Stored>, IndexError> {
        self.read(target)
    }

    fn read(&self, key: &str) -> Result<Option<Stored>, IndexError> {
        if self.is_local() {
            // The file is opened when served: a missing one is a 404 there.
            return Ok(Some(Stored::Local(self.path_of(key))));
        }
        let got = self
            .cache
            .get_or_load(key, || self.store.get(key))
            .map_err(blob_error)?;
        Ok(got.map(Stored::Bytes))
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
