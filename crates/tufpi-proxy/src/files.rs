//! Distribution files (and any other target): resolved through the signed metadata,
//! downloaded within their signed length, verified, cached by content hash, served. A cached
//! file is verified again before every use: the cache directory is not trusted either.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::Mutex as AsyncMutex;
use tracing::{debug, info, warn};
use tufpi_client::Updater;
use tufpi_core::metadata::TargetFile;

use crate::error::ProxyError;
use crate::trust::{Freshness, Resolved, Trust};

/// Verified files on disk, and one download at a time per file.
pub struct FileCache {
    dir: PathBuf,
    inflight: Mutex<HashMap<PathBuf, Arc<AsyncMutex<()>>>>,
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

impl FileCache {
    /// A cache in `dir` (created).
    pub fn open(dir: &Path) -> Result<FileCache, ProxyError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ProxyError::Internal(format!("creating {}: {e}", dir.display())))?;
        Ok(FileCache {
            dir: dir.to_path_buf(),
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// The verified bytes of target `path`: from the cache if they still verify, else
    /// downloaded and verified (then cached). `NotFound` if no signed role lists it.
    pub async fn get(&self, trust: &Arc<Trust>, path: String) -> Result<Vec<u8>, ProxyError> {
        let t = trust.clone();
        let p = path.clone();
        let resolved = blocking(move || t.lookup(&p, Freshness::File))
            .await?
            .ok_or_else(|| {
                ProxyError::NotFound(format!(
                    "{path}: not in the signed TUF metadata, so not served"
                ))
            })?;
        let Some(name) = cache_name(&resolved.info) else {
            // Verified all the same; only not cached.
            let t = trust.clone();
            return blocking(move || t.fetch_verified(&resolved)).await;
        };
        let file = self.dir.join(name);
        let gate = self.gate(&file);
        let result = {
            let _one = gate.lock().await;
            self.get_locked(trust, resolved, file.clone()).await
        };
        self.release(&file, gate);
        result
    }

    async fn get_locked(
        &self,
        trust: &Arc<Trust>,
        resolved: Resolved,
        file: PathBuf,
    ) -> Result<Vec<u8>, ProxyError> {
        let (info, path) = (resolved.info.clone(), resolved.path.clone());
        let f = file.clone();
        let cached = blocking(move || {
            Ok(match std::fs::read(&f) {
                Ok(data) => match Updater::verify_target(&path, &info, &data) {
                    Ok(()) => Some(data),
                    Err(e) => {
                        warn!("cached {}: {e}; downloading it again", f.display());
                        let _ = std::fs::remove_file(&f);
                        None
                    }
                },
                Err(_) => None,
            })
        })
        .await?;
        if let Some(data) = cached {
            debug!(target = %resolved.path, "served from the cache");
            return Ok(data);
        }
        let t = trust.clone();
        let dir = self.dir.clone();
        blocking(move || {
            let data = t.fetch_verified(&resolved)?;
            info!(target = %resolved.path, bytes = data.len(), "verified");
            // Only verified bytes are ever written; a failed write costs a re-download later.
            if let Err(e) = write_atomic(&dir, &file, &data) {
                warn!("caching {}: {e}", file.display());
            }
            Ok(data)
        })
        .await
    }

    fn gate(&self, file: &Path) -> Arc<AsyncMutex<()>> {
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(file.to_path_buf()).or_default().clone()
    }

    fn release(&self, file: &Path, gate: Arc<AsyncMutex<()>>) {
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        drop(gate);
        // Only the map's own reference left: nobody waits on this file any more.
        if m.get(file).is_some_and(|g| Arc::strong_count(g) == 1) {
            m.remove(file);
        }
    }
}

/// temp file → rename: readers see the whole verified file or none.
fn write_atomic(dir: &Path, file: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
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
}
