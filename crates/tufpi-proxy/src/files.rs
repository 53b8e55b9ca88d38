//! Distribution files (and any other target): resolved through the signed metadata,
//! downloaded within their signed length, verified, cached by content hash, served. A cached
//! file is verified again before every use: the cache directory is not trusted either.
//!
//! One download per file at a time, owned by the file's in-flight entry, not by a request: a
//! detached task whose result every request for the file waits for, so a client that hangs
//! up neither stops it nor lets a retry start a second one. Downloads take one of the
//! `max_downloads` slots (`Trust::download`). Small cache hits are read, verified and served
//! from memory; large ones are verified from the file and then streamed (`stream`).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use tufpi_client::Updater;
use tufpi_core::metadata::TargetFile;

use crate::error::ProxyError;
use crate::stream::{verify_file, VerifiedBody};
use crate::trust::{Resolved, Trust};

/// Cache hits up to this size are served from memory (one read, one check).
const IN_MEMORY: u64 = 4 << 20;

/// The result of a download, shared by everyone waiting for it.
type Outcome = Result<Bytes, ProxyError>;
type Inflight = Arc<Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>>;

/// Verified files on disk, and one download at a time per file.
pub struct FileCache {
    dir: PathBuf,
    inflight: Inflight,
}

/// A verified target, ready to be sent.
pub enum Served {
    /// The verified bytes.
    Bytes(Bytes),
    /// A verified cache file, streamed (and checked again on the way).
    Stream(VerifiedBody),
}

/// The cache file of a target: named by its signed hash (sha256 if listed, else the first),
/// so the same content is stored once and a name can never leave the directory.
fn cache_name(info: &TargetFile) -> Option<String> {
    let (alg, hex) = info
        .hashes
        .get_key_value("sha256")
        .or_else(|| info.hashes.iter().next())?;
    let safe = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    (safe(alg, b"-_") && safe(hex, b"")).then(|| format!("{alg}-{hex}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProxyError> + Send + 'static,
) -> Result<T, ProxyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProxyError::Internal(e.to_string()))?
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a file's in-flight entry out of the map when its download task ends, however.
struct Done(Inflight, String);

impl Drop for Done {
    fn drop(&mut self) {
        lock(&self.0).remove(&self.1);
    }
}

impl FileCache {
    /// A cache in `dir` (created; temp files a previous run left behind are removed).
    pub fn open(dir: &Path) -> Result<FileCache, ProxyError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ProxyError::Internal(format!("creating {}: {e}", dir.display())))?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(FileCache {
            dir: dir.to_path_buf(),
            inflight: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Where the signed metadata says target `path` is (refreshed as `Trust::lookup` does).
    /// `NotFound` if no signed role lists it.
    pub async fn resolve(trust: &Arc<Trust>, path: String) -> Result<Resolved, ProxyError> {
        trust.lookup(&path).await?.ok_or_else(|| {
            ProxyError::NotFound(format!(
                "{path}: not in the signed TUF metadata, so not served"
            ))
        })
    }

    /// The verified content of `resolved`: from the cache if it still verifies, else
    /// downloaded and verified (then cached).
    pub async fn get(&self, trust: &Arc<Trust>, resolved: Resolved) -> Result<Served, ProxyError> {
        let Some(name) = cache_name(&resolved.info) else {
            // Verified all the same; only not cached.
            return trust.download(resolved).await.map(Served::Bytes);
        };
        let file = self.dir.join(&name);
        if let Some(hit) = cached(file.clone(), resolved.clone()).await? {
            debug!(target = %resolved.path, "served from the cache");
            return Ok(hit);
        }
        let mut rx = {
            let mut m = lock(&self.inflight);
            match m.get(&name) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    m.insert(name.clone(), rx.clone());
                    let done = Done(self.inflight.clone(), name);
                    let (t, dir) = (trust.clone(), self.dir.clone());
                    tokio::spawn(async move {
                        let out = download(t, dir, file, resolved).await;
                        let _ = tx.send(Some(out));
                        drop(done);
                    });
                    rx
                }
            }
        };
        let out = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ProxyError::Internal("the download task ended without a result".into()))?
            .clone();
        out.unwrap_or_else(|| Err(ProxyError::Internal("no download result".into())))
            .map(Served::Bytes)
    }
}

/// The download task of one file: unless a download just before this one cached it, fetch
/// and verify it (in one of the download slots) and cache it.
async fn download(trust: Arc<Trust>, dir: PathBuf, file: PathBuf, resolved: Resolved) -> Outcome {
    let (f, r) = (file.clone(), resolved.clone());
    if let Some(data) = blocking(move || Ok(read_verified(&f, &r.path, &r.info))).await? {
        return Ok(data);
    }
    let path = resolved.path.clone();
    let data = trust.download(resolved).await?;
    info!(target = %path, bytes = data.len(), "verified");
    let d = data.clone();
    // Only verified bytes are ever written; a failed write costs a re-download later.
    let _ = blocking(move || {
        if let Err(e) = write_atomic(&dir, &file, &d) {
            warn!("caching {}: {e}", file.display());
        }
        Ok(())
    })
    .await;
    Ok(data)
}

/// The whole of `file` if it is exactly the signed target (read into memory: only for the
/// rare race with a download that has just finished).
fn read_verified(file: &Path, path: &str, info: &TargetFile) -> Option<Bytes> {
    let data = std::fs::read(file).ok()?;
    Updater::verify_target(path, info, &data).ok()?;
    Some(data.into())
}

/// A cache hit that verifies, or `None` (a cached file that does not verify is removed).
async fn cached(file: PathBuf, resolved: Resolved) -> Result<Option<Served>, ProxyError> {
    let r = resolved.clone();
    let hit = blocking(move || {
        let resolved = r;
        let mut f = match File::open(&file) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let checked = if len != resolved.info.length {
            Err(format!(
                "length {len} does not match expected {}",
                resolved.info.length
            ))
        } else if len <= IN_MEMORY {
            let mut data = Vec::with_capacity(len as usize);
            f.read_to_end(&mut data)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    Updater::verify_target(&resolved.path, &resolved.info, &data)
                        .map_err(|e| e.to_string())
                })
                .map(|()| Some(data))
        } else {
            verify_file(&mut f, &resolved.info).map(|()| None)
        };
        match checked {
            Ok(data) => Ok(Some((f, data))),
            Err(e) => {
                warn!("cached {}: {e}; downloading it again", file.display());
                let _ = std::fs::remove_file(&file);
                Ok(None)
            }
        }
    })
    .await?;
    // Built here, on the runtime: the streaming body starts its reader task.
    Ok(hit.map(|(f, data)| match data {
        Some(d) => Served::Bytes(d.into()),
        None => Served::Stream(VerifiedBody::new(f, &resolved.info, resolved.path)),
    }))
}

/// temp file (created new: never an existing file or a symlink) → rename: readers see the
/// whole verified file or none.
fn write_atomic(dir: &Path, file: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{n}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(data));
    written
        .and_then(|()| std::fs::rename(&tmp, file))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn info(hashes: &[(&str, &str)]) -> TargetFile {
        let mut t = TargetFile::new(3, BTreeMap::new());
        t.hashes = hashes
            .iter()
            .map(|(a, h)| (a.to_string(), h.to_string()))
            .collect();
        t
    }

    #[test]
    fn cache_names_are_hashes_only() {
        assert_eq!(
            cache_name(&info(&[("blake2b-256", "bb"), ("sha256", "aa")])).as_deref(),
            Some("sha256-aa")
        );
        assert_eq!(
            cache_name(&info(&[("blake2b-256", "bb")])).as_deref(),
            Some("blake2b-256-bb")
        );
        assert_eq!(cache_name(&info(&[("sha256", "../x")])), None);
        assert_eq!(cache_name(&info(&[])), None);
    }

    #[test]
    fn temps_are_new_and_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(".1.0.tmp");
        std::fs::write(&stale, b"x").unwrap();
        std::fs::write(d.path().join("sha256-aa"), b"keep").unwrap();
        FileCache::open(d.path()).unwrap();
        assert!(!stale.exists() && d.path().join("sha256-aa").exists());
        let target = d.path().join("sha256-bb");
        write_atomic(d.path(), &target, b"abc").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
    }
}
