//! Shared helpers for the repository engine tests (also included by `crates/tufpi/tests/repo_*.rs`
//! through `#[path]`): a full verifier of a published metadata directory, walking the trust
//! chain root → timestamp → snapshot → targets → (bins →) bin-n exactly as a client would, a
//! seeded RNG and target generators.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use tufpi_core::hashes::digest_hex;
use tufpi_core::metadata::{Metadata, TargetFile};
use tufpi_core::verify::{role_keys, verify_bytes};

/// A small deterministic RNG (splitmix64) so failures reproduce from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (hi exclusive, hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

/// Seed from `TUFPI_TEST_SEED` or a fixed default; printed so a failing run can be replayed.
pub fn seed(default: u64) -> u64 {
    let s = std::env::var("TUFPI_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed: {s} (set TUFPI_TEST_SEED to replay)");
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    digest_hex("sha256", data).unwrap()
}

/// Where test repositories go: `$TUFPI_TEST_TMPDIR`, else `/dev/shm` when present (these
/// tests kill processes, they do not cut power, so tmpfs loses nothing; deleting thousands of
/// fsynced files on a disk mounted with `discard` costs seconds), else the system temp dir.
pub fn test_base() -> PathBuf {
    if let Some(d) = std::env::var_os("TUFPI_TEST_TMPDIR") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::create_dir_all(shm.join("tufpi-tests")).is_ok() {
        return shm.join("tufpi-tests");
    }
    std::env::temp_dir().join("tufpi-tests")
}

/// A fresh directory for one test, unique per process; removed when dropped unless the
/// test is failing (then kept, and its path printed).
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = test_base().join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TestDir(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: its files are kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a target should look like once published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub length: u64,
    pub sha256: String,
}

/// A deterministic target record for `(i, generation)`.
pub fn target(i: u64, generation: u64) -> (String, Expect) {
    let path = format!(
        "packages/{:02x}/{}/pkg{i}-{generation}.0-py3-none-any.whl",
        i % 251,
        i % 7
    );
    let e = Expect {
        length: 1000 + i * 3 + generation,
        sha256: sha256_hex(format!("{i}/{generation}").as_bytes()),
    };
    (path, e)
}

pub fn record(path: &str, e: &Expect) -> tufpi_repo::TargetRecord {
    tufpi_repo::TargetRecord {
        path: path.to_string(),
        length: e.length,
        hashes: BTreeMap::from([("sha256".to_string(), e.sha256.clone())]),
        custom: None,
    }
}

/// An addition of `path` with a placeholder length and hash, for the state stores' tests
/// (the stores keep a record as given, never looking into it).
pub fn add(path: &str) -> tufpi_repo::Change {
    tufpi_repo::Change::Add(tufpi_repo::TargetRecord {
        path: path.into(),
        length: 1,
        hashes: BTreeMap::from([("sha256".to_string(), "a".repeat(64))]),
        custom: None,
    })
}

/// What `verify_published` found.
#[derive(Debug, Default)]
pub struct Published {
    pub root_version: u64,
    pub timestamp_version: u64,
    pub snapshot_version: u64,
    pub targets_version: u64,
    pub bins_version: Option<u64>,
    /// bin role name → version listed in the snapshot (and found in its file).
    pub bin_versions: BTreeMap<String, u64>,
    /// bin role name → its targets.
    pub bin_targets: BTreeMap<String, BTreeMap<String, TargetFile>>,
    /// every target → (bin role, entry).
    pub targets: BTreeMap<String, (String, TargetFile)>,
    /// bin roles by delegation order / name, to check hash-prefix vs succinct.
    pub succinct: bool,
    pub bit_length: u32,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(dir.join(name)).map_err(|e| format!("reading {name}: {e}"))
}

/// A verified metadata file with the sha256 of its bytes.
#[derive(Clone)]
struct Checked {
    md: Arc<Metadata>,
    sha: String,
    len: u64,
}

/// Verifies published repositories; remembers files already verified (by content and
/// delegator content) so repeated checks of a growing repository stay cheap.
#[derive(Default)]
pub struct Verifier {
    cache: HashMap<String, Checked>,
}

impl Verifier {
    fn parse_verified(
        &mut self,
        dir: &Path,
        file: &str,
        role: &str,
        delegator: &Checked,
    ) -> Result<Checked, String> {
        let bytes = read(dir, file)?;
        let sha = sha256_hex(&bytes);
        let key = format!("{role}|{sha}|{}", delegator.sha);
        if let Some(c) = self.cache.get(&key) {
            return Ok(c.clone());
        }
        let (md, canonical) =
            Metadata::from_bytes_with_canonical(&bytes).map_err(|e| format!("{file}: {e}"))?;
        let rk = role_keys(&delegator.md.signed, role).map_err(|e| format!("{file}: {e}"))?;
        verify_bytes(&canonical, &md.signatures, role, rk).map_err(|e| format!("{file}: {e}"))?;
        // A bin lists only targets its delegator sends to it.
        if let Some(t) = md.as_targets() {
            if let Some(dd) = delegator
                .md
                .as_targets()
                .and_then(|d| d.delegations.as_ref())
            {
                for path in t.targets.keys() {
                    let trusted = dd.roles_for_target(path);
                    if trusted.first().map(|r| r.0.as_str()) != Some(role) {
                        return Err(format!(
                            "{path} listed in {file} but delegated to {trusted:?}"
                        ));
                    }
                }
            }
        }
        let c = Checked {
            md: Arc::new(md),
            sha,
            len: bytes.len() as u64,
        };
        self.cache.insert(key, c.clone());
        Ok(c)
    }

    /// Highest N with `N.root.json` in `dir`, following the chain from 1 (each root signed by
    /// the previous one's root keys and by its own).
    fn trusted_root(&mut self, dir: &Path) -> Result<Checked, String> {
        let bytes = read(dir, "1.root.json")?;
        let (md, c) =
            Metadata::from_bytes_with_canonical(&bytes).map_err(|e| format!("1.root.json: {e}"))?;
        verify_bytes(
            &c,
            &md.signatures,
            "root",
            role_keys(&md.signed, "root").unwrap(),
        )
        .map_err(|e| format!("1.root.json: {e}"))?;
        let mut root = Checked {
            md: Arc::new(md),
            sha: sha256_hex(&bytes),
            len: bytes.len() as u64,
        };
        let mut n = 2;
        while dir.join(format!("{n}.root.json")).exists() {
            let file = format!("{n}.root.json");
            let next = self.parse_verified(dir, &file, "root", &root)?;
            self.parse_verified(dir, &file, "root", &next)
                .map_err(|e| format!("{file} (self): {e}"))?;
            if next.md.signed.version != n {
                return Err(format!("{file} has version {}", next.md.signed.version));
            }
            root = next;
            n += 1;
        }
        Ok(root)
    }

    /// Verify the whole published repository in `meta_dir` as a client would (signatures and
    /// thresholds along the delegation chain, versions and hashes from timestamp down,
    /// expiry), and check that every target sits in the bin its path hashes to and that the
    /// snapshot lists exactly targets, bins (if any) and all 2^k bins. With `collect`, fill in
    /// `targets` and `bin_targets`.
    pub fn verify(&mut self, meta_dir: &Path, collect: bool) -> Result<Published, String> {
        let root = self.trusted_root(meta_dir)?;
        let now = Utc::now();
        let rootb = root.md.as_root().ok_or("root is not root")?;
        if !rootb.consistent_snapshot() {
            return Err("consistent_snapshot is off".into());
        }
        let mut out = Published {
            root_version: root.md.signed.version,
            ..Published::default()
        };
        if root.md.signed.is_expired(now) {
            return Err("root expired".into());
        }
        // timestamp.json is read once: it may be replaced at any moment.
        let ts = self.parse_verified(meta_dir, "timestamp.json", "timestamp", &root)?;
        if ts.md.signed.is_expired(now) {
            return Err("timestamp expired".into());
        }
        out.timestamp_version = ts.md.signed.version;
        let sm = ts
            .md
            .as_timestamp()
            .ok_or("timestamp.json is not a timestamp")?
            .snapshot_meta
            .clone();
        let snap_file = format!("{}.snapshot.json", sm.version);
        let snap = self
            .parse_verified(meta_dir, &snap_file, "snapshot", &root)
            .map_err(|e| format!("timestamp v{} names {snap_file}: {e}", ts.md.signed.version))?;
        if let Some(l) = sm.length {
            if l != snap.len {
                return Err(format!(
                    "{snap_file}: length {} != timestamp's {l}",
                    snap.len
                ));
            }
        }
        let h = sm
            .hashes
            .as_ref()
            .ok_or("timestamp lists no snapshot hashes")?;
        if h.get("sha256") != Some(&snap.sha) {
            return Err(format!("{snap_file}: sha256 differs from timestamp's"));
        }
        if snap.md.signed.version != sm.version {
            return Err(format!("{snap_file}: version {}", snap.md.signed.version));
        }
        if snap.md.signed.is_expired(now) {
            return Err("snapshot expired".into());
        }
        out.snapshot_version = sm.version;
        let meta = snap.md.as_snapshot().ok_or("not a snapshot")?.meta.clone();
        let load =
            |this: &mut Verifier, role: &str, delegator: &Checked| -> Result<Checked, String> {
                let entry = meta
                    .get(&format!("{role}.json"))
                    .ok_or_else(|| format!("snapshot v{} does not list {role}", sm.version))?;
                let v = entry.version;
                let file = format!("{v}.{role}.json");
                let c = this.parse_verified(meta_dir, &file, role, delegator)?;
                if c.md.signed.version != v {
                    return Err(format!(
                        "{file}: version {} != snapshot's {v}",
                        c.md.signed.version
                    ));
                }
                if let Some(h) = &entry.hashes {
                    if h.get("sha256") != Some(&c.sha) {
                        return Err(format!("{file}: sha256 differs from snapshot's"));
                    }
                }
                if c.md.signed.is_expired(now) {
                    return Err(format!("{file} expired"));
                }
                Ok(c)
            };
        let targets = load(self, "targets", &root)?;
        out.targets_version = targets.md.signed.version;
        let tb = targets.md.as_targets().ok_or("targets is not targets")?;
        if !tb.targets.is_empty() {
            return Err("top-level targets lists targets".into());
        }
        let td = tb.delegations.as_ref().ok_or("targets delegates nothing")?;
        let delegator = if td.role_keys("bins").is_some() {
            let bins = load(self, "bins", &targets)?;
            out.bins_version = Some(bins.md.signed.version);
            bins
        } else {
            targets.clone()
        };
        let dd = delegator
            .md
            .as_targets()
            .and_then(|t| t.delegations.clone())
            .ok_or("bins delegates nothing")?;
        let bin_names: Vec<String> = if let Some(s) = &dd.succinct_roles {
            out.succinct = true;
            out.bit_length = s.bit_length;
            s.role_names().collect()
        } else {
            let roles = dd.roles.as_ref().unwrap();
            out.bit_length = roles.len().trailing_zeros();
            roles.iter().map(|r| r.name.clone()).collect()
        };
        let mut expected_meta: Vec<String> =
            bin_names.iter().map(|n| format!("{n}.json")).collect();
        expected_meta.push("targets.json".into());
        if out.bins_version.is_some() {
            expected_meta.push("bins.json".into());
        }
        expected_meta.sort();
        let listed: Vec<String> = meta.keys().cloned().collect();
        if listed != expected_meta {
            return Err(format!(
                "snapshot lists {} files, expected {}",
                listed.len(),
                expected_meta.len()
            ));
        }
        for name in &bin_names {
            let c = load(self, name, &delegator)?;
            out.bin_versions.insert(name.clone(), c.md.signed.version);
            let t =
                c.md.as_targets()
                    .ok_or_else(|| format!("{name} is not targets"))?;
            if t.delegations.is_some() {
                return Err(format!("{name} delegates"));
            }
            if collect {
                for (path, tf) in &t.targets {
                    if out
                        .targets
                        .insert(path.clone(), (name.clone(), tf.clone()))
                        .is_some()
                    {
                        return Err(format!("{path} listed twice"));
                    }
                }
                out.bin_targets.insert(name.clone(), t.targets.clone());
            }
        }
        Ok(out)
    }
}

/// `Verifier::verify` once, collecting the targets.
pub fn verify_published(meta_dir: &Path) -> Result<Published, String> {
    Verifier::default().verify(meta_dir, true)
}

/// Check that the published targets are exactly `expected` (path → length, sha256).
pub fn assert_targets(p: &Published, expected: &BTreeMap<String, Expect>) {
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (path, e) in expected {
        match p.targets.get(path) {
            None => missing.push(path.clone()),
            Some((_, tf)) => {
                if tf.length != e.length || tf.hashes.get("sha256") != Some(&e.sha256) {
                    wrong.push(path.clone());
                }
            }
        }
    }
    let extra: Vec<&String> = p
        .targets
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && wrong.is_empty() && extra.is_empty(),
        "published targets differ from acknowledged changes: {} missing (e.g. {:?}), {} with wrong length/hash (e.g. {:?}), {} unexpected (e.g. {:?})",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        wrong.len(),
        wrong.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>()
    );
}

/// File identity for `ScanCache`: a file replaced by rename gets a new inode; one written in
/// place changes length or mtime.
type FileId = (u64, u64, std::time::SystemTime);

/// Remembers the sha256 of files by identity so rescans only read what changed.
pub type ScanCache = HashMap<String, (FileId, String)>;

/// Every `N.<role>.json` file in `dir` with the sha256 of its bytes; temp files (`.*.tmp`) and
/// other names separately.
pub fn scan_metadata_dir(dir: &Path) -> (BTreeMap<String, String>, Vec<String>, Vec<String>) {
    scan_metadata_dir_cached(dir, &mut ScanCache::new())
}

/// `scan_metadata_dir`, re-reading only files whose identity changed since the last scan.
pub fn scan_metadata_dir_cached(
    dir: &Path,
    cache: &mut ScanCache,
) -> (BTreeMap<String, String>, Vec<String>, Vec<String>) {
    use std::os::unix::fs::MetadataExt;
    let mut versioned = BTreeMap::new();
    let mut temps = Vec::new();
    let mut other = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let is_versioned = name.split_once('.').is_some_and(|(n, rest)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && rest.ends_with(".json")
        });
        if is_versioned {
            let m = std::fs::metadata(e.path()).unwrap();
            let id = (m.ino(), m.len(), m.modified().unwrap());
            let sha = match cache.get(&name) {
                Some((old, sha)) if *old == id => sha.clone(),
                _ => {
                    let sha = sha256_hex(&std::fs::read(e.path()).unwrap());
                    cache.insert(name.clone(), (id, sha.clone()));
                    sha
                }
            };
            versioned.insert(name, sha);
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            temps.push(name);
        } else if name != "timestamp.json" {
            other.push(name);
        }
    }
    (versioned, temps, other)
}
