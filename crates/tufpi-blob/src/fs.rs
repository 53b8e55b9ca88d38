//! The local file system as a blob store: keys are paths under a root directory, written with
//! tufpi's durable writes (temp file → fsync → rename → fsync of the directory). ETags are the
//! SHA-256 of the bytes. Both conditional writes hold across processes (several replicas may
//! share a `file://` store): create-only writes, one or many, place a complete temp file by a
//! hard link, which the OS refuses if the name exists (`tufpi_fs::place_new`); compare-and-swap
//! reads, compares and renames under an exclusive `flock` of the object's directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{check_key, BlobError, BlobMeta, BlobStore, Bytes, Created, Etag, Result};

/// A blob store over a local directory.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    // Threads of one process serialise here too: flock is per open file, and two threads
    // locking the directory through two opens would also exclude each other, but this keeps
    // a process's own swaps from spinning on the lock.
    swap: Mutex<()>,
}

fn etag_of(bytes: &[u8]) -> Etag {
    Etag(hex::encode(Sha256::digest(bytes)))
}

fn io(context: String, e: std::io::Error) -> BlobError {
    BlobError::Io(tufpi_fs::Error::new(context, e))
}

/// How a create-only write that `placed` (or found the name taken) ended.
fn created(placed: bool) -> Created {
    if placed {
        Created::New
    } else {
        Created::Existed
    }
}

/// An exclusive `flock` of directory `dir`, released when the returned file is dropped.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    use fs4::fs_std::FileExt;
    let f = std::fs::File::open(dir).map_err(|e| io(format!("opening {}", dir.display()), e))?;
    f.lock_exclusive()
        .map_err(|e| io(format!("locking {}", dir.display()), e))?;
    Ok(f)
}

impl FsStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: &Path) -> Result<FsStore> {
        tufpi_fs::ensure_dir(root)?;
        Ok(FsStore {
            root: root.to_path_buf(),
            swap: Mutex::new(()),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn ensure_parent(&self, path: &Path) -> Result<()> {
        if let Some(p) = path.parent() {
            if p != self.root {
                tufpi_fs::ensure_dir(p)?;
            }
        }
        Ok(())
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("reading {}", path.display()), e)),
        }
    }

    fn meta_of(&self, key: String, path: &Path, with_etag: bool) -> Result<Option<BlobMeta>> {
        let md = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()), e)),
        };
        let modified: DateTime<Utc> = md
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        let etag = if with_etag {
            self.read(path)?.map(|b| etag_of(&b))
        } else {
            None
        };
        Ok(Some(BlobMeta {
            key,
            size: md.len(),
            modified,
            etag,
        }))
    }

    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<BlobMeta>) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format!("listing {}", dir.display()), e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if tufpi_fs::is_temp(&name) {
                continue;
            }
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = match entry.file_type() {
                Ok(t) => t,
                Err(_) => continue,
            };
            if ft.is_dir() {
                self.walk(&entry.path(), &key, out)?;
            } else if ft.is_file() {
                if let Some(m) = self.meta_of(key, &entry.path(), false)? {
                    out.push(m);
                }
            }
        }
        Ok(())
    }
}

impl BlobStore for FsStore {
    fn put_new(&self, key: &str, bytes: Bytes) -> Result<Created> {
        let path = self.path(key)?;
        if path.exists() {
            return Ok(Created::Existed);
        }
        self.ensure_parent(&path)?;
        Ok(created(tufpi_fs::write_if_absent(&path, &bytes)?))
    }

    fn put_many_new(&self, items: Vec<(String, Bytes)>) -> Result<()> {
        let mut files = Vec::with_capacity(items.len());
        for (k, b) in items {
            let path = self.path(&k)?;
            self.ensure_parent(&path)?;
            files.push((path, Vec::from(b)));
        }
        tufpi_fs::write_many_once(files)?;
        Ok(())
    }

    fn put_new_file(&self, key: &str, file: &Path) -> Result<Created> {
        let path = self.path(key)?;
        if path.exists() {
            return Ok(Created::Existed);
        }
        self.ensure_parent(&path)?;
        let bytes =
            std::fs::read(file).map_err(|e| io(format!("reading {}", file.display()), e))?;
        tufpi_fs::write_once(&path, bytes)?;
        Ok(Created::New)
    }

    fn put_swap(&self, key: &str, bytes: Bytes, expected: Option<&Etag>) -> Result<Etag> {
        let path = self.path(key)?;
        self.ensure_parent(&path)?;
        let _g = self.swap.lock().unwrap_or_else(|p| p.into_inner());
        let _dir = lock_dir(tufpi_fs::parent_dir(&path))?;
        let current = self.read(&path)?.map(|b| etag_of(&b));
        if current.as_ref() != expected {
            return Err(BlobError::Precondition {
                key: key.to_string(),
                expected: expected.map_or_else(|| "absent".to_string(), |e| e.0.clone()),
            });
        }
        tufpi_fs::write_atomic(&path, &bytes)?;
        Ok(etag_of(&bytes))
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.read(&self.path(key)?)?.map(Bytes::from))
    }

    fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, Etag)>> {
        Ok(self.read(&self.path(key)?)?.map(|b| {
            let tag = etag_of(&b);
            (Bytes::from(b), tag)
        }))
    }

    fn head(&self, key: &str) -> Result<Option<BlobMeta>> {
        let path = self.path(key)?;
        self.meta_of(key.to_string(), &path, true)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("removing {}", path.display()), e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        // Walk only the deepest directory the prefix names in full.
        let (dir_rel, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        if !dir_rel.is_empty() {
            check_key(dir_rel)?;
        }
        let mut out = Vec::new();
        self.walk(&self.root.join(dir_rel), dir_rel, &mut out)?;
        out.retain(|m| m.key.starts_with(prefix));
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_only_swap_list_delete() {
        let d = tempfile::tempdir().unwrap();
        let s = FsStore::open(d.path()).unwrap();
        assert_eq!(
            s.put_new("m/1.root.json", Bytes::from_static(b"a"))
                .unwrap(),
            Created::New
        );
        assert_eq!(
            s.put_new("m/1.root.json", Bytes::from_static(b"b"))
                .unwrap(),
            Created::Existed
        );
        assert_eq!(
            s.get("m/1.root.json").unwrap().unwrap(),
            Bytes::from_static(b"a")
        );
        let t1 = s
            .put_swap("m/timestamp.json", Bytes::from_static(b"t1"), None)
            .unwrap();
        let e = s
            .put_swap("m/timestamp.json", Bytes::from_static(b"x"), None)
            .unwrap_err();
        assert!(matches!(e, BlobError::Precondition { .. }), "{e}");
        let t2 = s
            .put_swap("m/timestamp.json", Bytes::from_static(b"t2"), Some(&t1))
            .unwrap();
        let e = s
            .put_swap("m/timestamp.json", Bytes::from_static(b"t3"), Some(&t1))
            .unwrap_err();
        assert!(e.to_string().contains("precondition failed"), "{e}");
        assert_eq!(s.get_tagged("m/timestamp.json").unwrap().unwrap().1, t2);
        s.put_many_new(vec![("m/2.bin-0.json".into(), Bytes::from_static(b"c"))])
            .unwrap();
        let keys: Vec<String> = s.list("m/").unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(
            keys,
            ["m/1.root.json", "m/2.bin-0.json", "m/timestamp.json"]
        );
        let keys: Vec<String> = s.list("m/2.").unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(keys, ["m/2.bin-0.json"]);
        assert_eq!(s.list("").unwrap().len(), 3);
        s.delete("m/2.bin-0.json").unwrap();
        s.delete("m/2.bin-0.json").unwrap();
        assert!(s.get("m/2.bin-0.json").unwrap().is_none());
        assert!(s.head("m/1.root.json").unwrap().unwrap().etag.is_some());
        assert!(s.put_new("../x", Bytes::new()).is_err());
    }

    #[test]
    fn conditional_writes_hold_across_stores_on_one_directory() {
        // Two stores on one directory stand for two replicas sharing a file:// store.
        let d = tempfile::tempdir().unwrap();
        let a = std::sync::Arc::new(FsStore::open(d.path()).unwrap());
        let b = std::sync::Arc::new(FsStore::open(d.path()).unwrap());
        let t0 = a
            .put_swap("m/timestamp.json", Bytes::from_static(b"t0"), None)
            .unwrap();
        // Both swap from the same ETag at once: exactly one wins.
        let (ra, rb) = std::thread::scope(|s| {
            let ha =
                s.spawn(|| a.put_swap("m/timestamp.json", Bytes::from_static(b"a"), Some(&t0)));
            let hb =
                s.spawn(|| b.put_swap("m/timestamp.json", Bytes::from_static(b"b"), Some(&t0)));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
        // Create-only from both: the first bytes stay.
        let created: Vec<Created> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let st = if i % 2 == 0 { &a } else { &b };
                    s.spawn(move || {
                        st.put_new("m/3.snapshot.json", Bytes::from(vec![i as u8; 4096]))
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(created.iter().filter(|c| **c == Created::New).count(), 1);
        let stored = a.get("m/3.snapshot.json").unwrap().unwrap();
        assert!(stored.iter().all(|x| *x == stored[0]) && stored.len() == 4096);
        // No temp file is left behind.
        assert_eq!(a.list("m/").unwrap().len(), 2);
        let names: Vec<String> = std::fs::read_dir(d.path().join("m"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
