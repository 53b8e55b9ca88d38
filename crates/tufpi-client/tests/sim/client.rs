//! The client side of the tests: a temp dir with `metadata/` and `targets/`, fresh updaters
//! at the fixed reference time, and assertion helpers.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tufpi_client::{ClientError, Fetcher, Updater, UpdaterConfig};
use tufpi_core::hashes::digest_hex;
use tufpi_core::metadata::{Metadata, TargetFile};

use super::{now, Sim, META_URL, TARGETS_URL};

/// A client's local state: metadata dir and target dir.
pub struct Client {
    pub tmp: tempfile::TempDir,
    pub config: UpdaterConfig,
    pub now: DateTime<Utc>,
    pub metadata_url: String,
    pub targets_url: String,
}

impl Client {
    /// A client trusting the repository's version-1 root.
    pub fn new(sim: &Sim) -> Client {
        let root = sim.repo().file("metadata/1.root.json");
        Self::with_root(&root)
    }

    /// A client trusting `root` bytes.
    pub fn with_root(root: &[u8]) -> Client {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("metadata");
        Updater::init(&dir, root).expect("init");
        std::fs::create_dir_all(tmp.path().join("targets")).expect("mkdir");
        Client {
            tmp,
            config: UpdaterConfig::default(),
            now: now(),
            metadata_url: META_URL.into(),
            targets_url: TARGETS_URL.into(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("metadata")
    }

    pub fn target_dir(&self) -> PathBuf {
        self.tmp.path().join("targets")
    }

    /// A fresh updater over the local state, fetching through `fetcher`.
    pub fn updater_with(&self, fetcher: Box<dyn Fetcher>) -> Result<Updater, ClientError> {
        Updater::new_at(
            &self.dir(),
            &self.metadata_url,
            Some(&self.targets_url),
            fetcher,
            self.config.clone(),
            self.now,
        )
    }

    /// A fresh updater fetching from `sim`.
    pub fn updater(&self, sim: &Sim) -> Updater {
        self.updater_with(Box::new(sim.clone())).expect("updater")
    }

    /// Refresh with a fresh updater.
    pub fn refresh(&self, sim: &Sim) -> Result<(), ClientError> {
        self.updater(sim).refresh()
    }

    /// Look a target up with a fresh updater (refreshing first).
    pub fn targetinfo(&self, sim: &Sim, path: &str) -> Result<Option<TargetFile>, ClientError> {
        self.updater(sim).get_targetinfo(path)
    }

    /// Look a target up and download it into the target dir; returns the file written.
    pub fn download(&self, sim: &Sim, path: &str) -> Result<PathBuf, ClientError> {
        let mut u = self.updater(sim);
        let info = u
            .get_targetinfo(path)?
            .ok_or_else(|| ClientError::TargetNotFound(path.to_string()))?;
        let file = Updater::target_file_path(&self.target_dir(), path);
        u.download_target(path, &info, &file)?;
        Ok(file)
    }

    /// Sorted names in the metadata dir.
    pub fn files(&self) -> Vec<String> {
        list(&self.dir())
    }

    /// Sorted names in the target dir.
    pub fn target_files(&self) -> Vec<String> {
        list(&self.target_dir())
    }

    /// Bytes of a file in the metadata dir, if present.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir().join(name)).ok()
    }

    /// Version of local metadata file `name` (e.g. `timestamp.json`).
    pub fn version(&self, name: &str) -> Option<u64> {
        let d = self.read(name)?;
        Metadata::from_bytes(&d).ok().map(|m| m.signed.version)
    }

    pub fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.dir().join(name), data).expect("write");
    }
}

/// Sorted entry names of a directory (recursively listed entries would show as `a/b`).
pub fn list(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(base)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        if p.is_dir() {
            out.push(format!("{rel}/"));
            walk(base, &p, out);
        } else {
            out.push(rel);
        }
    }
}

/// The error of a result that must have failed.
pub fn err<T>(r: Result<T, ClientError>) -> ClientError {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e,
    }
}

/// Assert `msg` contains every one of `parts`.
pub fn assert_msg(e: &ClientError, parts: &[&str]) {
    let msg = e.to_string();
    for p in parts {
        assert!(msg.contains(p), "error message {msg:?} lacks {p:?} ({e:?})");
    }
}

/// Version of metadata bytes.
pub fn version_of(data: &[u8]) -> u64 {
    Metadata::from_bytes(data).expect("metadata").signed.version
}

/// Bin index of `path` for `bit_length`, computed from the hex SHA-256 independently of the
/// core's path hashing.
pub fn bin_of(path: &str, bit_length: u32) -> u64 {
    let hex = digest_hex("sha256", path.as_bytes()).expect("sha256");
    let first = u32::from_str_radix(&hex[..8], 16).expect("hex");
    u64::from(first >> (32 - bit_length))
}
