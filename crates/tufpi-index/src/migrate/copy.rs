//! The bytes of a migration: local files put create-only into a blob store by a few threads
//! at once (object stores answer one request at a time slowly, many quickly), then checked
//! there.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tufpi_blob::{BlobMeta, BlobStore, Bytes, Created};

use crate::error::IndexError;
use crate::storage::blob_error;

/// Files up to this size are read into memory and put in one request; larger ones are
/// streamed from their file.
const IN_MEMORY: u64 = 8 << 20;

/// How often a long copy says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What copying a set of objects did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Objects written.
    pub new: u64,
    /// Their bytes.
    pub new_bytes: u64,
    /// Objects the store held already (an earlier, interrupted run of the same migration;
    /// checked afterwards).
    pub existed: u64,
    /// Bytes of every object, written or not.
    pub bytes: u64,
}

/// Run `f` on every item with `threads` threads; the first error stops the rest.
pub(super) fn parallel<T: Sync>(
    items: &[T],
    threads: usize,
    f: &(dyn Fn(&T) -> Result<(), IndexError> + Sync),
) -> Result<(), IndexError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<IndexError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = f(item) {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Says how far a copy got, at most every [`PROGRESS_EVERY`].
struct Ticker<'a> {
    what: &'a str,
    total: usize,
    done: AtomicUsize,
    bytes: AtomicU64,
    last: Mutex<Instant>,
    progress: &'a (dyn Fn(&str) + Sync),
}

impl Ticker<'_> {
    fn tick(&self, bytes: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= PROGRESS_EVERY {
            *last = Instant::now();
            (self.progress)(&format!(
                "  {}: {done}/{} objects, {}",
                self.what,
                self.total,
                human_bytes(bytes)
            ));
        }
    }
}

/// `n` bytes as a person reads them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Put each `(key, size)` from the file `src/key` into `dst` under `key`, create-only. A
/// local file missing or of another size than recorded is an error (the source is damaged:
/// nothing it references may be left behind).
pub(super) fn copy_objects(
    src: &Path,
    dst: &dyn BlobStore,
    objects: &[(String, u64)],
    threads: usize,
    what: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Copied, IndexError> {
    let (new, new_bytes, existed) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let ticker = Ticker {
        what,
        total: objects.len(),
        done: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
        last: Mutex::new(Instant::now()),
        progress,
    };
    parallel(objects, threads, &|(key, size)| {
        let path = src.join(key);
        let len = std::fs::metadata(&path)
            .map_err(|e| IndexError::io(format!("{} (recorded, to copy)", path.display()), e))?
            .len();
        if len != *size {
            return Err(IndexError::Internal(format!(
                "{} has {len} bytes, {size} recorded: the data directory is damaged; nothing \
                 was committed to the target",
                path.display()
            )));
        }
        let created = if len <= IN_MEMORY {
            let bytes = std::fs::read(&path)
                .map_err(|e| IndexError::io(format!("reading {}", path.display()), e))?;
            dst.put_new(key, Bytes::from(bytes))
        } else {
            dst.put_new_file(key, &path)
        }
        .map_err(blob_error)?;
        match created {
            Created::New => {
                new.fetch_add(1, Ordering::Relaxed);
                new_bytes.fetch_add(len, Ordering::Relaxed);
            }
            Created::Existed => {
                existed.fetch_add(1, Ordering::Relaxed);
            }
        }
        ticker.tick(len);
        Ok(())
    })?;
    Ok(Copied {
        new: new.into_inner(),
        new_bytes: new_bytes.into_inner(),
        existed: existed.into_inner(),
        bytes: objects.iter().map(|(_, s)| s).sum(),
    })
}

/// Check that `dst` holds every `(key, size)` with that size (one listing per prefix, not
/// a request per object).
pub(super) fn verify_sizes(
    dst: &dyn BlobStore,
    prefixes: &[&str],
    objects: &[(String, u64)],
) -> Result<(), IndexError> {
    let mut there: HashMap<String, u64> = HashMap::new();
    for p in prefixes {
        for m in dst.list(&format!("{p}/")).map_err(blob_error)? {
            there.insert(m.key, m.size);
        }
    }
    for (key, size) in objects {
        match there.get(key) {
            Some(s) if s == size => {}
            Some(s) => {
                return Err(IndexError::Internal(format!(
                    "{} holds {key} with {s} bytes, not {size}: another deployment's object \
                     under the same key? Nothing was committed to the database",
                    dst.describe()
                )))
            }
            None => {
                return Err(IndexError::Internal(format!(
                    "{key} is missing from {} after copying it",
                    dst.describe()
                )))
            }
        }
    }
    Ok(())
}

/// Whether `etag` is the MD5 of `bytes` (what S3 reports for an object put in one piece
/// without KMS encryption; any other ETag is not).
fn etag_is_md5_of(etag: &str, bytes: &[u8]) -> bool {
    use md5::{Digest, Md5};
    let tag = etag.trim_matches('"');
    tag.len() == 32 && tag.eq_ignore_ascii_case(&hex::encode(Md5::digest(bytes)))
}

/// Check that `dst` holds each of `keys` byte for byte as the file `src/key`: by the
/// listing's size and MD5 ETag where the store reports one (one listing, not a request per
/// file: a PEP 458 repository has 16,384 bins), else by reading it back.
pub(super) fn verify_identical(
    src: &Path,
    dst: &dyn BlobStore,
    keys: &[String],
    threads: usize,
) -> Result<(), IndexError> {
    let listed: HashMap<String, BlobMeta> = dst
        .list("")
        .map_err(blob_error)?
        .into_iter()
        .map(|m| (m.key.clone(), m))
        .collect();
    parallel(keys, threads, &|key| {
        let path = src.join(key);
        let local = std::fs::read(&path)
            .map_err(|e| IndexError::io(format!("reading {}", path.display()), e))?;
        let by_listing = listed.get(key).is_some_and(|m| {
            m.size == local.len() as u64
                && m.etag
                    .as_ref()
                    .is_some_and(|e| etag_is_md5_of(&e.0, &local))
        });
        if by_listing {
            return Ok(());
        }
        verify_read_back(&path, &local, dst, key)
    })
}

/// Check that `dst` holds `key` with exactly `local`'s bytes (those of `path`), reading it.
pub(super) fn verify_read_back(
    path: &Path,
    local: &[u8],
    dst: &dyn BlobStore,
    key: &str,
) -> Result<(), IndexError> {
    match dst.get(key).map_err(blob_error)? {
        Some(b) if b[..] == local[..] => Ok(()),
        Some(_) => Err(IndexError::Internal(format!(
            "{} holds {key} with other bytes than {}: the bucket holds another repository's \
             metadata; nothing was committed to the database",
            dst.describe(),
            path.display()
        ))),
        None => Err(IndexError::Internal(format!(
            "{key} is missing from {} after copying it",
            dst.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_blob::FsStore;

    fn quiet(_: &str) {}

    #[test]
    fn objects_are_put_once_and_checked() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let store = FsStore::open(dst.path()).unwrap();
        let big = vec![7u8; (IN_MEMORY + 1) as usize];
        std::fs::create_dir_all(src.path().join("packages/ab")).unwrap();
        std::fs::write(src.path().join("packages/ab/big.whl"), &big).unwrap();
        std::fs::write(src.path().join("packages/ab/small.whl"), b"small").unwrap();
        let objects = vec![
            ("packages/ab/big.whl".to_string(), big.len() as u64),
            ("packages/ab/small.whl".to_string(), 5),
        ];
        let c = copy_objects(src.path(), &store, &objects, 4, "t", &quiet).unwrap();
        assert_eq!(
            (c.new, c.existed, c.new_bytes),
            (2, 0, big.len() as u64 + 5)
        );
        verify_sizes(&store, &["packages"], &objects).unwrap();
        let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
        verify_identical(src.path(), &store, &keys, 2).unwrap();
        // Again (a resumed run): nothing put, everything checked.
        let c = copy_objects(src.path(), &store, &objects, 4, "t", &quiet).unwrap();
        assert_eq!((c.new, c.existed), (0, 2));
        // A size the index does not record: the source is damaged.
        let wrong = vec![("packages/ab/small.whl".to_string(), 6)];
        let e = copy_objects(src.path(), &store, &wrong, 1, "t", &quiet).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        let e = verify_sizes(&store, &["packages"], &wrong).unwrap_err();
        assert!(e.to_string().contains("not 6"), "{e}");
    }

    #[test]
    fn another_repository_s_metadata_is_found_out() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let store = FsStore::open(dst.path()).unwrap();
        std::fs::write(src.path().join("1.root.json"), b"ours").unwrap();
        store
            .put_new("1.root.json", Bytes::from_static(b"yours"))
            .unwrap();
        let objects = vec![("1.root.json".to_string(), 4)];
        let c = copy_objects(src.path(), &store, &objects, 1, "t", &quiet).unwrap();
        assert_eq!(c.existed, 1);
        let e = verify_identical(src.path(), &store, &["1.root.json".into()], 1).unwrap_err();
        assert!(e.to_string().contains("other bytes"), "{e}");
    }

    #[test]
    fn md5_etags_are_recognised() {
        let b = b"hello";
        assert!(etag_is_md5_of("\"5d41402abc4b2a76b9719d911017c592\"", b));
        assert!(!etag_is_md5_of("5d41402abc4b2a76b9719d911017c592-2", b));
        assert!(!etag_is_md5_of("0000402abc4b2a76b9719d911017c592", b));
    }
}
