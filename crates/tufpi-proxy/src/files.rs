//! Distribution files (and any other target): resolved through the signed metadata,
//! downloaded within their signed length, verified, cached by content hash, served. A cached
//! file is verified again before every use: the cache directory is not trusted either.
//!
//! One download per file at a time, owned by the file's in-flight entry, not by a request: a
//! detached task whose result every request for the file waits for, so a client that hangs
//! up neither stops it nor lets a retry start a second one. Downloads take one of the
//! `max_downloads` slots (`Trust::download`). Small cache hits are read, verified and served
//! from memory; large ones are verified from the file and then streamed (`stream`).
//!
//! A PyPI-style path names its file's BLAKE2b-256 (`packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/NAME`).
//! Whether the bytes have it is established from verified bytes only: the signed
//! `blake2b-256`, if listed, else the digest computed from the bytes that passed the signed
//! hashes. A file that has it is cached under a name recording it (`Slot`), and every hit on
//! that name checks the recorded digest in the same pass as the signed hashes: the cache
//! directory is not trusted, so the record says what to expect, never what to believe.
//! `Served::blake2b_256` carries the result to the response headers.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use tufpi_core::hashes::digest_hex;
use tufpi_core::metadata::TargetFile;
use tufpi_simple::targets::named_blake2b_256;

use crate::error::ProxyError;
use crate::stream::{verify_bytes, verify_file, Blake2b256, VerifiedBody, BLAKE2B_256};
use crate::sync::lock;
use crate::trust::{Resolved, Trust};

/// Cache hits up to this size are served from memory (one read, one check).
const IN_MEMORY: u64 = 4 << 20;

/// Verified bytes and, when established, their BLAKE2b-256 (see `Served::blake2b_256`).
#[derive(Clone)]
struct Fetched {
    data: Bytes,
    blake2b_256: Option<String>,
}

/// The result of a download, shared by everyone waiting for it.
type Outcome = Result<Fetched, ProxyError>;
type Inflight = Arc<Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>>;

/// Verified files on disk, and one download at a time per file.
pub struct FileCache {
    dir: PathBuf,
    inflight: Inflight,
}

/// A verified target, ready to be sent.
pub struct Served {
    /// What is sent.
    pub content: Content,
    /// The BLAKE2b-256 (lower-case hex) of exactly the bytes sent, when a check of those
    /// bytes established it before anything is sent: the signed one, or one computed from
    /// (or recorded for, and checked against) bytes that passed the signed hashes. Known
    /// whenever the path names a BLAKE2b-256 (`tufpi_simple::targets::named_blake2b_256`).
    pub blake2b_256: Option<String>,
}

/// The bytes of a verified target.
pub enum Content {
    /// The verified bytes.
    Bytes(Bytes),
    /// A verified cache file, streamed (and checked again on the way: the recheck of its
    /// sha256 ties the bytes sent to the ones whose BLAKE2b-256 was established).
    Stream(VerifiedBody),
}

impl From<Fetched> for Served {
    fn from(f: Fetched) -> Served {
        Served {
            content: Content::Bytes(f.data),
            blake2b_256: f.blake2b_256,
        }
    }
}

/// Where a target is cached. The plain name is its signed hash (`cache_name`). A target
/// whose path names a BLAKE2b-256 that its verified bytes have is cached under the plain
/// name with that digest recorded, `<plain>.blake2b-256-<b2>`: still one file per content
/// and path digest, still nothing but hex from signed metadata or a checked path in a name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    plain: String,
    /// The BLAKE2b-256 the path names.
    named: Option<String>,
}

impl Slot {
    fn of(r: &Resolved) -> Option<Slot> {
        Some(Slot {
            plain: cache_name(&r.info)?,
            named: named_blake2b_256(&r.path),
        })
    }

    /// The name recording the path's BLAKE2b-256.
    fn addressed(&self) -> Option<String> {
        self.named
            .as_ref()
            .map(|b2| format!("{}.{BLAKE2B_256}-{b2}", self.plain))
    }

    /// The cache files that may hold the target, in the order they are tried, each with the
    /// check a hit on it gets beyond the signed hashes: the recorded digest is expected; a
    /// plain copy (cached before digests were recorded, or for a path naming none) is
    /// hashed once more when the path names a digest, so that it may be served as
    /// content-addressed too.
    fn lookups(&self) -> Vec<(String, Blake2b256)> {
        match (&self.named, self.addressed()) {
            (Some(b2), Some(addressed)) => vec![
                (addressed, Blake2b256::Expect(b2.clone())),
                (self.plain.clone(), Blake2b256::Observe),
            ],
            _ => vec![(self.plain.clone(), Blake2b256::Ignore)],
        }
    }

    /// Where verified bytes whose BLAKE2b-256 is `b2` (if established) are written: the
    /// recording name only if it is the one the path names.
    fn name_for(&self, b2: Option<&str>) -> String {
        match (&self.named, b2, self.addressed()) {
            (Some(named), Some(b2), Some(addressed)) if named == b2 => addressed,
            _ => self.plain.clone(),
        }
    }

    /// The key of the target's one download at a time.
    fn key(&self) -> String {
        self.addressed().unwrap_or_else(|| self.plain.clone())
    }
}

/// The plain cache name of a target: named by its signed hash (sha256 if listed, else the
/// first), so the same content is stored once and a name can never leave the directory.
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
        .map_err(|e| ProxyError::Internal(e.to_string().into()))?
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
            .map_err(|e| ProxyError::Internal(format!("creating {}: {e}", dir.display()).into()))?;
        let _ = tufpi_fs::remove_stale_temps(dir);
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
    /// downloaded and verified (then cached). Either way its BLAKE2b-256 is established
    /// (`Served::blake2b_256`) before anything is sent, when the path names one: a download
    /// is verified whole before its first byte goes out, a cache file before it is streamed.
    pub async fn get(&self, trust: &Arc<Trust>, resolved: Resolved) -> Result<Served, ProxyError> {
        let Some(slot) = Slot::of(&resolved) else {
            // Verified all the same; only not cached.
            let observe = named_blake2b_256(&resolved.path).is_some();
            return fetch(trust, resolved, observe).await.map(Served::from);
        };
        if let Some(hit) = self.hit(&slot, &resolved).await? {
            debug!(target = %resolved.path, "served from the cache");
            return Ok(hit);
        }
        let name = slot.key();
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
                        let out = download(t, dir, slot, resolved).await;
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
            .map(Served::from)
    }

    /// The first of the slot's cache files that verifies (`Slot::lookups`), if any.
    async fn hit(&self, slot: &Slot, resolved: &Resolved) -> Result<Option<Served>, ProxyError> {
        for (name, b2) in slot.lookups() {
            if let Some(hit) = cached(self.dir.join(name), resolved.clone(), b2).await? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }
}

/// The BLAKE2b-256 of `data`, which has just passed every signed hash of `info`: the signed
/// one (just checked), else computed from the bytes.
fn blake2b_256_of_verified(info: &TargetFile, data: &[u8]) -> Option<String> {
    match info.hashes.get(BLAKE2B_256) {
        Some(signed) => Some(signed.clone()),
        None => digest_hex(BLAKE2B_256, data),
    }
}

/// Download and verify `resolved` (`Trust::download`: in one of the download slots, shared
/// by every request for it) and, when `observe`, establish its BLAKE2b-256: the signed one,
/// which the verification has just checked, else the digest of the verified bytes,
/// computed in memory before anything is sent.
async fn fetch(trust: &Arc<Trust>, resolved: Resolved, observe: bool) -> Outcome {
    // Only bytes held to at least one signed hash vouch for a digest computed from them.
    let observe = observe && !resolved.info.hashes.is_empty();
    let info = resolved.info.clone();
    let data = trust.download(resolved).await?;
    let blake2b_256 = if observe {
        let d = data.clone();
        blocking(move || Ok(blake2b_256_of_verified(&info, &d))).await?
    } else {
        None
    };
    Ok(Fetched { data, blake2b_256 })
}

/// The download task of one file: unless a download just before this one cached it, fetch
/// and verify it (in one of the download slots) and cache it, under the name recording its
/// BLAKE2b-256 if that is the one its path names.
async fn download(trust: Arc<Trust>, dir: PathBuf, slot: Slot, resolved: Resolved) -> Outcome {
    let (d, r, lookups) = (dir.clone(), resolved.clone(), slot.lookups());
    let just_cached = blocking(move || {
        Ok(lookups
            .into_iter()
            .find_map(|(name, b2)| read_verified(&d.join(name), &r.info, b2)))
    })
    .await?;
    if let Some(hit) = just_cached {
        return Ok(hit);
    }
    let path = resolved.path.clone();
    let fetched = fetch(&trust, resolved, slot.named.is_some()).await?;
    info!(target = %path, bytes = fetched.data.len(), "verified");
    let f = fetched.clone();
    let _ = blocking(move || {
        store(&dir, &slot, &f);
        Ok(())
    })
    .await;
    Ok(fetched)
}

/// Cache verified bytes (blocking), under the name recording their BLAKE2b-256 if it is the
/// one their path names. Only verified bytes are ever written; a failed write costs a
/// re-download later.
fn store(dir: &Path, slot: &Slot, fetched: &Fetched) {
    let file = dir.join(slot.name_for(fetched.blake2b_256.as_deref()));
    if let Err(e) = write_cached(&file, &fetched.data) {
        warn!("caching {}: {}", file.display(), e.io_error());
    }
}

/// The whole of `file` if it is exactly the signed target (and passes `b2`; read into
/// memory: only for the rare race with a download that has just finished).
fn read_verified(file: &Path, info: &TargetFile, b2: Blake2b256) -> Option<Fetched> {
    let data = std::fs::read(file).ok()?;
    let blake2b_256 = verify_bytes(&data, info, b2).ok()?;
    Some(Fetched {
        data: data.into(),
        blake2b_256,
    })
}

/// A cache hit that verifies against the signed hashes and passes `b2` (one pass over the
/// file either way), or `None` (a cached file that does not verify is removed: a recorded
/// BLAKE2b-256 the bytes do not have is a file this cache did not write so).
async fn cached(
    file: PathBuf,
    resolved: Resolved,
    b2: Blake2b256,
) -> Result<Option<Served>, ProxyError> {
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
                .and_then(|_| verify_bytes(&data, &resolved.info, b2))
                .map(|b2| (Some(data), b2))
        } else {
            verify_file(&mut f, &resolved.info, b2).map(|b2| (None, b2))
        };
        match checked {
            Ok((data, b2)) => Ok(Some((f, data, b2))),
            Err(e) => {
                warn!("cached {}: {e}; removed", file.display());
                let _ = std::fs::remove_file(&file);
                Ok(None)
            }
        }
    })
    .await?;
    // Built here, on the runtime: the streaming body starts its reader task.
    Ok(hit.map(|(f, data, blake2b_256)| Served {
        content: match data {
            Some(d) => Content::Bytes(d.into()),
            None => Content::Stream(VerifiedBody::new(f, &resolved.info, resolved.path)),
        },
        blake2b_256,
    }))
}

/// temp file (created new: never an existing file or a symlink) → rename: readers see the
/// whole verified file or none. Not synced: every hit is verified again, so a file a power
/// loss damaged is only downloaded again.
fn write_cached(file: &Path, data: &[u8]) -> tufpi_fs::Result<()> {
    tufpi_fs::WriteOptions::new()
        .sync_data(false)
        .sync_dir(false)
        .write(file, data)
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
    fn slots_record_only_the_named_digest() {
        let b2 = "ab".repeat(32);
        let r = |path: &str| Resolved {
            path: path.into(),
            info: info(&[("sha256", "aa")]),
            url: String::new(),
        };
        let named = Slot::of(&r(&format!("packages/ab/ab/{}/x.whl", &b2[4..]))).unwrap();
        let addressed = format!("sha256-aa.blake2b-256-{b2}");
        assert_eq!(named.key(), addressed);
        assert_eq!(
            named.lookups(),
            vec![
                (addressed.clone(), Blake2b256::Expect(b2.clone())),
                ("sha256-aa".into(), Blake2b256::Observe),
            ]
        );
        assert_eq!(named.name_for(Some(&b2)), addressed);
        // Bytes whose digest is another than the path names, or not established: plain.
        assert_eq!(named.name_for(Some(&"cd".repeat(32))), "sha256-aa");
        assert_eq!(named.name_for(None), "sha256-aa");
        let plain = Slot::of(&r("simple/x/vnd.pypi.simple.v1.json")).unwrap();
        assert_eq!(plain.key(), "sha256-aa");
        assert_eq!(
            plain.lookups(),
            vec![("sha256-aa".into(), Blake2b256::Ignore)]
        );
        assert_eq!(plain.name_for(Some(&b2)), "sha256-aa");
    }

    fn target(data: &[u8], signed: &[&str], path_b2: &str) -> Resolved {
        let hashes = signed
            .iter()
            .map(|a| (a.to_string(), digest_hex(a, data).unwrap()))
            .collect();
        Resolved {
            path: tufpi_simple::targets::package_path(path_b2, "x-1.0.tar.gz"),
            info: TargetFile::new(data.len() as u64, hashes),
            url: String::new(),
        }
    }

    fn verified(r: &Resolved, data: &[u8]) -> Fetched {
        Fetched {
            data: Bytes::copy_from_slice(data),
            blake2b_256: blake2b_256_of_verified(&r.info, data),
        }
    }

    /// The bytes a `Served` sends, a streamed body collected.
    async fn bytes_of(served: Served) -> Vec<u8> {
        use hyper::body::Body as _;
        match served.content {
            Content::Bytes(b) => b.to_vec(),
            Content::Stream(mut body) => {
                let mut out = Vec::new();
                while let Some(frame) =
                    std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
                {
                    out.extend_from_slice(frame.unwrap().data_ref().unwrap());
                }
                out
            }
        }
    }

    #[tokio::test]
    async fn a_verified_blake2b_256_survives_a_restart_and_is_checked_on_every_hit() {
        // One small file (served from memory) and one large (streamed), sha256 alone signed.
        for size in [1000, IN_MEMORY as usize + 5] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let b2 = digest_hex(BLAKE2B_256, &data).unwrap();
            let r = target(&data, &["sha256"], &b2);
            let sha = &r.info.hashes["sha256"];
            let d = tempfile::tempdir().unwrap();
            let slot = Slot::of(&r).unwrap();
            store(d.path(), &slot, &verified(&r, &data));
            let addressed = d.path().join(format!("sha256-{sha}.blake2b-256-{b2}"));
            assert!(addressed.exists() && !d.path().join(format!("sha256-{sha}")).exists());
            // Another process on the same directory: the record is there, and checked.
            let cache = FileCache::open(d.path()).unwrap();
            let hit = cache.hit(&slot, &r).await.unwrap().expect("a hit");
            assert_eq!(hit.blake2b_256.as_deref(), Some(b2.as_str()));
            assert_eq!(bytes_of(hit).await, data);

            // A record the bytes do not have (the directory is not trusted): the signed
            // sha256 matches, yet the file is refused and removed, never served as named.
            let liar = "0".repeat(64);
            let r2 = target(&data, &["sha256"], &liar);
            let slot2 = Slot::of(&r2).unwrap();
            let forged = d.path().join(format!("sha256-{sha}.blake2b-256-{liar}"));
            std::fs::copy(&addressed, &forged).unwrap();
            assert!(cache.hit(&slot2, &r2).await.unwrap().is_none());
            assert!(!forged.exists());
            // Downloaded for that path, the bytes go under the plain name, the digest they
            // have established but not the one the path names.
            let fetched = verified(&r2, &data);
            assert_eq!(fetched.blake2b_256.as_deref(), Some(b2.as_str()));
            store(d.path(), &slot2, &fetched);
            assert!(!forged.exists());
            let plain = d.path().join(format!("sha256-{sha}"));
            assert!(plain.exists());
            let hit = cache.hit(&slot2, &r2).await.unwrap().expect("a plain hit");
            assert_ne!(hit.blake2b_256.as_deref(), Some(liar.as_str()));
            // A plain copy (as cached before digests were recorded) is hashed once more and
            // serves the path that names its digest as content-addressed.
            std::fs::remove_file(&addressed).unwrap();
            let hit = cache.hit(&slot, &r).await.unwrap().expect("a plain hit");
            assert_eq!(hit.blake2b_256.as_deref(), Some(b2.as_str()));
            assert_eq!(bytes_of(hit).await, data);
            // Bytes that do not verify are never a hit, whatever their name records.
            let mut bad = data.clone();
            bad[0] ^= 1;
            std::fs::write(&addressed, &bad).unwrap();
            std::fs::write(&plain, &bad).unwrap();
            assert!(cache.hit(&slot, &r).await.unwrap().is_none());
            assert!(!addressed.exists() && !plain.exists());
        }
    }

    #[test]
    fn a_signed_blake2b_256_is_the_established_one() {
        let data = b"abc";
        let b2 = digest_hex(BLAKE2B_256, data).unwrap();
        let r = target(data, &["sha256", BLAKE2B_256], &b2);
        assert_eq!(verified(&r, data).blake2b_256.as_deref(), Some(b2.as_str()));
        let r = target(data, &["sha256"], &b2);
        assert_eq!(verified(&r, data).blake2b_256.as_deref(), Some(b2.as_str()));
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
        write_cached(&target, b"abc").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
    }
}
