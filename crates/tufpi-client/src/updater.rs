//! The updater: the thin effectful shell around `TrustedSet`. It loads cached metadata first,
//! downloads what is missing or stale within length caps, persists the exact bytes received
//! (temp file → fsync → rename), walks delegations for a target, and downloads targets only
//! after they verify.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tracing::{debug, warn};
use tufpi_core::hashes;
use tufpi_core::metadata::{Root, TargetFile};

use crate::config::UpdaterConfig;
use crate::error::ClientError;
use crate::fetcher::Fetcher;
use crate::trusted::{targets_of, TimestampUpdate, TrustedSet};

/// Python's `urllib.parse.quote(s, safe="")`: everything but `A-Za-z0-9_.-~` is encoded,
/// `/` included, so a name can never leave its directory.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Percent-encode a role name or target path into one file-name-safe component.
pub fn quote(name: &str) -> String {
    let q = utf8_percent_encode(name, QUOTE).to_string();
    // "." and ".." are the only all-safe names that still mean something to a filesystem.
    match q.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => q,
    }
}

/// Encode a target path for a URL: each `/`-separated segment quoted, `/` kept. A path with a
/// `.` or `..` segment is quoted whole, `/` included: URL parsing resolves dot segments (even
/// percent-encoded ones, per the WHATWG URL standard) and they would climb out of the target
/// base. `None` for a bare `.` or `..`, which has no URL form under the base.
fn quote_path(path: &str) -> Option<String> {
    let encode = |s: &str| utf8_percent_encode(s, QUOTE).to_string();
    if path.split('/').any(|s| s == "." || s == "..") {
        return (path != "." && path != "..").then(|| encode(path));
    }
    Some(path.split('/').map(encode).collect::<Vec<_>>().join("/"))
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// How many times an update restarts from timestamp when a consistent-snapshot file it was
/// told to fetch is already gone (the repository moved on mid-update).
const RACE_RETRIES: usize = 3;

/// A TUF client for one repository.
pub struct Updater {
    dir: PathBuf,
    metadata_base: String,
    target_base: Option<String>,
    config: UpdaterConfig,
    fetcher: Box<dyn Fetcher>,
    trusted: TrustedSet,
    now: DateTime<Utc>,
    refreshed: bool,
    /// After a restart mid-update, do the full cycle (the cache is known to be incomplete).
    force_full: bool,
    /// Files were renamed into the metadata directory since its last sync.
    unsynced: bool,
    /// Background writes of metadata files not yet joined.
    writes: Vec<(PathBuf, std::thread::JoinHandle<Result<(), ClientError>>)>,
}

impl Drop for Updater {
    fn drop(&mut self) {
        // Never leave a write half-done behind the caller's back.
        let _ = self.sync();
    }
}

fn join(h: std::thread::JoinHandle<Result<(), ClientError>>) -> Result<(), ClientError> {
    h.join()
        .map_err(|_| ClientError::Order("a metadata write thread panicked"))?
}

impl Updater {
    /// Store `root_data` as the trust anchor in `dir` (after checking it is root metadata
    /// signed by its own threshold).
    pub fn init(dir: &Path, root_data: &[u8]) -> Result<(), ClientError> {
        TrustedSet::new(root_data, Utc::now())?;
        fs::create_dir_all(dir)
            .map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))?;
        persist(dir, "root", root_data)
    }

    /// An updater over the trusted metadata in `dir` (which must hold `root.json`).
    pub fn new(
        dir: &Path,
        metadata_base_url: &str,
        target_base_url: Option<&str>,
        fetcher: Box<dyn Fetcher>,
        config: UpdaterConfig,
    ) -> Result<Updater, ClientError> {
        Self::new_at(
            dir,
            metadata_base_url,
            target_base_url,
            fetcher,
            config,
            Utc::now(),
        )
    }

    /// Like `new`, with an explicit reference time for all expiry checks.
    pub fn new_at(
        dir: &Path,
        metadata_base_url: &str,
        target_base_url: Option<&str>,
        fetcher: Box<dyn Fetcher>,
        config: UpdaterConfig,
        now: DateTime<Utc>,
    ) -> Result<Updater, ClientError> {
        remove_stale_temps(dir);
        let root = read_local(dir, "root")?.ok_or_else(|| {
            ClientError::Config(format!(
                "{} has no root.json: run `client init` with a trusted root first",
                dir.display()
            ))
        })?;
        let trusted = TrustedSet::new(&root, now)?;
        Ok(Updater {
            dir: dir.to_path_buf(),
            metadata_base: with_slash(metadata_base_url),
            target_base: target_base_url.map(with_slash),
            config,
            fetcher,
            trusted,
            now,
            refreshed: false,
            force_full: false,
            unsynced: false,
            writes: Vec::new(),
        })
    }

    /// The trusted metadata so far.
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// Run the top-level update: root chain, timestamp, snapshot, targets. Restarts from
    /// timestamp if a consistent-snapshot file vanished mid-update.
    pub fn refresh(&mut self) -> Result<(), ClientError> {
        // A second refresh on this updater starts over from the trusted root on disk: the
        // trusted set only moves forward (root, timestamp, snapshot, targets) once.
        if self.trusted.timestamp().is_some() {
            self.restart()?;
        }
        let mut attempt = 0;
        loop {
            match self.refresh_once() {
                Err(e) if attempt + 1 < RACE_RETRIES && self.is_race(&e) => {
                    attempt += 1;
                    warn!(
                        "{}; the repository moved on, restarting the update from timestamp",
                        crate::redact::redact(&e.to_string())
                    );
                    self.restart()?;
                }
                other => {
                    self.refreshed = other.is_ok();
                    return other;
                }
            }
        }
    }

    /// `refresh` with `now` as the new reference time of every expiry check: a long-lived
    /// updater (a proxy) would otherwise judge expiry by the time it was created. Starts over
    /// from the trusted root on disk; the network cost is still the root probe and timestamp
    /// when nothing changed (snapshot and targets come from the verified local cache).
    pub fn refresh_at(&mut self, now: DateTime<Utc>) -> Result<(), ClientError> {
        self.now = now;
        self.restart()?;
        self.refresh()
    }

    fn is_race(&self, e: &ClientError) -> bool {
        matches!(e, ClientError::Fetch(f) if f.is_not_found())
            && self
                .trusted
                .root()
                .map(Root::consistent_snapshot)
                .unwrap_or(false)
    }

    /// Start over from the (already updated) trusted root on disk.
    fn restart(&mut self) -> Result<(), ClientError> {
        let root =
            read_local(&self.dir, "root")?.ok_or(ClientError::Order("root.json vanished"))?;
        self.trusted = TrustedSet::new(&root, self.now)?;
        self.refreshed = false;
        self.force_full = true;
        Ok(())
    }

    fn refresh_once(&mut self) -> Result<(), ClientError> {
        self.load_root()?;
        self.trusted.check_final_root()?;
        if self.load_timestamp()? == TimestampUpdate::Unchanged
            && !self.force_full
            && self.cache_is_current()?
        {
            // Spec 5.4.3.1: an equal timestamp version ends the update cycle, without error:
            // nothing else can have changed. The cached snapshot and targets (verified in full
            // when stored) are loaded and checked again only when a target lookup needs them.
            return self.trusted.check_final_timestamp();
        }
        self.load_top_level()
    }

    /// Whether the cached snapshot and targets are the ones the (unchanged) trusted timestamp
    /// leads to, unexpired: i.e. the last update cycle completed. Reads two members of each
    /// file without parsing it; anything unexpected means "no" and a full load.
    fn cache_is_current(&self) -> Result<bool, ClientError> {
        use tufpi_core::json::{scan::find_many, Value};
        use tufpi_core::metadata::parse_expires;
        self.trusted.check_final_timestamp()?;
        let meta = self.trusted.timestamp_snapshot_meta()?;
        let (Some(snap), Some(targets)) = (
            read_local(&self.dir, "snapshot")?,
            read_local(&self.dir, "targets")?,
        ) else {
            return Ok(false);
        };
        if hashes::verify_length_and_hashes(&snap, meta.length, meta.hashes.as_ref()).is_err() {
            return Ok(false);
        }
        let now = self.trusted.reference_time();
        let int = |v: &Option<Value>| match v {
            Some(Value::Int(i)) => i.as_u64(),
            _ => None,
        };
        let fresh = |v: &Option<Value>| {
            v.as_ref()
                .and_then(Value::as_str)
                .and_then(parse_expires)
                .is_some_and(|e| now < e)
        };
        // One pass over each file.
        let s = find_many(
            &snap,
            &[
                &["signed", "version"],
                &["signed", "expires"],
                &["signed", "meta", "targets.json", "version"],
            ],
        );
        let t = find_many(&targets, &[&["signed", "version"], &["signed", "expires"]]);
        Ok(int(&s[0]) == Some(meta.version)
            && fresh(&s[1])
            && int(&s[2]).is_some()
            && int(&s[2]) == int(&t[0])
            && fresh(&t[1]))
    }

    /// Load snapshot and top-level targets, cache first, unless already loaded.
    fn load_top_level(&mut self) -> Result<(), ClientError> {
        if self.trusted.snapshot().is_none() {
            self.load_snapshot()?;
        }
        self.load_targets("targets", "root")?;
        self.sync()
    }

    /// Persist the exact bytes received for `role` (directory synced later by `sync`).
    /// Root is written at once; other roles on a background thread (the fsync overlaps the
    /// next download), all joined by `sync` before an update cycle reports success.
    fn persist(&mut self, role: &str, data: &[u8]) -> Result<(), ClientError> {
        if role == "root" {
            self.unsynced = true;
            return persist(&self.dir, role, data);
        }
        let path = local_path(&self.dir, role);
        if !matches!(role, "timestamp" | "snapshot" | "targets") {
            // A delegated role's version and hash are pinned by the snapshot, so a copy lost
            // or torn in a crash is only fetched again: replaced atomically, not synced (an
            // fsync per bin would be most of the cost of resolving a target).
            if let Some(i) = self.writes.iter().position(|(p, _)| *p == path) {
                let (_, h) = self.writes.swap_remove(i);
                join(h)?;
            }
            return write_atomic(&path, data, false, false);
        }
        self.unsynced = true;
        // A later write of the same file must land after the earlier one.
        if let Some(i) = self.writes.iter().position(|(p, _)| *p == path) {
            let (_, h) = self.writes.swap_remove(i);
            join(h)?;
        }
        let (p, bytes) = (path.clone(), data.to_vec());
        self.writes.push((
            path,
            std::thread::spawn(move || write_atomic(&p, &bytes, true, false)),
        ));
        Ok(())
    }

    /// Finish background writes, then sync the metadata directory if anything was written.
    fn sync(&mut self) -> Result<(), ClientError> {
        let mut first_err = None;
        for (_, h) in self.writes.drain(..) {
            if let Err(e) = join(h) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        if std::mem::take(&mut self.unsynced) {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn download_metadata(
        &self,
        role: &str,
        max_length: u64,
        version: Option<u64>,
    ) -> Result<Vec<u8>, ClientError> {
        let name = quote(role);
        let url = match version {
            Some(v) => format!("{}{v}.{name}.json", self.metadata_base),
            None => format!("{}{name}.json", self.metadata_base),
        };
        debug!(%url, max_length, "fetching metadata");
        Ok(self.fetcher.fetch(&url, max_length)?)
    }

    fn load_root(&mut self) -> Result<(), ClientError> {
        let first = self.trusted.root_signed().version.saturating_add(1);
        let last = first.saturating_add(u64::from(self.config.max_root_rotations));
        for next in first..last {
            let data = match self.download_metadata("root", self.config.root_max_length, Some(next))
            {
                Ok(d) => d,
                Err(ClientError::Fetch(f)) if f.is_not_found() => break,
                Err(e) => return Err(e),
            };
            let previous = self.trusted.root()?.clone();
            self.trusted.update_root(&data)?;
            // Fast-forward recovery (spec 5.3.11): new timestamp/snapshot keys make the
            // trusted timestamp and snapshot worthless as rollback references. Delete them
            // before the new root is stored, so that an update interrupted after this point
            // cannot leave them behind next to a root that no longer shows the rotation.
            let current = self.trusted.root()?;
            if keys_changed(&previous, current, "timestamp")
                || keys_changed(&previous, current, "snapshot")
            {
                for role in ["timestamp", "snapshot"] {
                    remove_local(&self.dir, role)?;
                }
            }
            self.persist("root", &data)?;
            if next + 1 == last {
                warn!(
                    "stopped after {} root rotations in one update",
                    self.config.max_root_rotations
                );
            }
        }
        Ok(())
    }

    fn load_timestamp(&mut self) -> Result<TimestampUpdate, ClientError> {
        if let Some(local) = read_local(&self.dir, "timestamp")? {
            if let Err(e) = self.trusted.update_timestamp(&local) {
                debug!("local timestamp not usable as final: {e}");
            }
        }
        let data = self.download_metadata("timestamp", self.config.timestamp_max_length, None)?;
        let update = self.trusted.update_timestamp(&data)?;
        if update == TimestampUpdate::Updated {
            self.persist("timestamp", &data)?;
        }
        Ok(update)
    }

    fn load_snapshot(&mut self) -> Result<(), ClientError> {
        if let Some(local) = read_local(&self.dir, "snapshot")? {
            match self.trusted.update_snapshot(&local, true) {
                Ok(_) => return Ok(()),
                Err(e) => debug!("local snapshot not usable as final: {e}"),
            }
        }
        let meta = self.trusted.timestamp_snapshot_meta()?;
        let length = meta.length.unwrap_or(self.config.snapshot_max_length);
        let version = self
            .trusted
            .root()?
            .consistent_snapshot()
            .then_some(meta.version);
        let data = self.download_metadata("snapshot", length, version)?;
        self.trusted.update_snapshot(&data, false)?;
        self.persist("snapshot", &data)
    }

    fn load_targets(&mut self, role: &str, parent: &str) -> Result<(), ClientError> {
        if self.trusted.contains(role, parent) {
            return Ok(());
        }
        if let Some(local) = read_local(&self.dir, role)? {
            match self.trusted.update_delegated_targets(&local, role, parent) {
                Ok(_) => return Ok(()),
                Err(e) => debug!("local {role} not usable: {e}"),
            }
        }
        let meta = self.trusted.snapshot_entry(role)?;
        let length = meta.length.unwrap_or(self.config.targets_max_length);
        let version = self
            .trusted
            .root()?
            .consistent_snapshot()
            .then_some(meta.version);
        let data = self.download_metadata(role, length, version)?;
        self.trusted.update_delegated_targets(&data, role, parent)?;
        self.persist(role, &data)
    }

    /// Find `target_path` in the delegation graph (refreshing first if needed). `None` means
    /// no trusted role lists it.
    pub fn get_targetinfo(&mut self, target_path: &str) -> Result<Option<TargetFile>, ClientError> {
        let mut attempt = 0;
        loop {
            if !self.refreshed {
                self.refresh()?;
            }
            match self.walk(target_path) {
                Err(e) if attempt + 1 < RACE_RETRIES && self.is_race(&e) => {
                    attempt += 1;
                    warn!(
                        "{}; the repository moved on, restarting the update from timestamp",
                        crate::redact::redact(&e.to_string())
                    );
                    self.restart()?;
                }
                other => {
                    self.sync()?;
                    return other;
                }
            }
        }
    }

    /// Pre-order depth-first search of the delegations, as the spec and python-tuf do it.
    fn walk(&mut self, target_path: &str) -> Result<Option<TargetFile>, ClientError> {
        self.load_top_level()?;
        let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        let mut visited: BTreeSet<String> = BTreeSet::new();
        while visited.len() <= self.config.max_delegations {
            let Some((role, parent)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            self.load_targets(&role, &parent)?;
            let signed = self
                .trusted
                .targets(&role)
                .ok_or(ClientError::Order("targets not loaded"))?;
            let targets = targets_of(signed).ok_or(ClientError::Order("targets body"))?;
            if let Some(t) = targets.targets.get(target_path) {
                debug!(role, target_path, "target found");
                return Ok(Some(t.clone()));
            }
            visited.insert(role.clone());
            if let Some(d) = &targets.delegations {
                let mut children = Vec::new();
                for (child, terminating) in d.roles_for_target(target_path) {
                    children.push((child, role.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
                to_visit.extend(children.into_iter().rev());
            }
        }
        if !to_visit.is_empty() {
            warn!(
                "{target_path}: gave up after visiting {} delegated roles",
                visited.len()
            );
        }
        Ok(None)
    }

    /// The local file a target is stored in under `target_dir`.
    pub fn target_file_path(target_dir: &Path, target_path: &str) -> PathBuf {
        target_dir.join(quote(target_path))
    }

    /// `filepath` if it already holds exactly this target (length and every hash verified).
    pub fn find_cached_target(info: &TargetFile, filepath: &Path) -> bool {
        match fs::read(filepath) {
            Ok(data) => {
                hashes::verify_length_and_hashes(&data, Some(info.length), Some(&info.hashes))
                    .is_ok()
            }
            Err(_) => false,
        }
    }

    /// Check bytes of `target_path` obtained elsewhere against `info`: length and every hash,
    /// exactly as `download_target` checks what it downloads.
    pub fn verify_target(
        target_path: &str,
        info: &TargetFile,
        data: &[u8],
    ) -> Result<(), ClientError> {
        hashes::verify_length_and_hashes(data, Some(info.length), Some(&info.hashes)).map_err(
            |source| ClientError::Hash {
                what: format!("target {target_path:?}"),
                source,
            },
        )
    }

    /// The URL a target is fetched from.
    pub fn target_url(&self, target_path: &str, info: &TargetFile) -> Result<String, ClientError> {
        let base = self
            .target_base
            .as_deref()
            .ok_or_else(|| ClientError::Config("no target base URL given".into()))?;
        let consistent = self.trusted.root()?.consistent_snapshot();
        target_url_for(
            base,
            target_path,
            info,
            consistent && self.config.prefix_targets_with_hash,
        )
    }

    /// Download `target_path` (described by `info`) into `filepath`: at most `info.length`
    /// bytes, length and all hashes verified before anything is written.
    pub fn download_target(
        &self,
        target_path: &str,
        info: &TargetFile,
        filepath: &Path,
    ) -> Result<(), ClientError> {
        let url = self.target_url(target_path, info)?;
        let data = self.fetcher.fetch(&url, info.length)?;
        Self::verify_target(target_path, info, &data)?;
        let dir = parent_dir(filepath);
        fs::create_dir_all(dir)
            .map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))?;
        write_atomic(filepath, &data, true, true)
    }
}

/// The URL of target `target_path` under `base` (which ends with `/`): each path segment
/// quoted, and with `hash_prefix` (consistent snapshots, when targets are fetched by hash)
/// the file name prefixed with its first signed hash, `dir/HASH.name`.
pub fn target_url_for(
    base: &str,
    target_path: &str,
    info: &TargetFile,
    hash_prefix: bool,
) -> Result<String, ClientError> {
    let path = match info.hashes.values().next() {
        Some(hash) if hash_prefix => match target_path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{hash}.{base}"),
            None => format!("{hash}.{target_path}"),
        },
        _ => target_path.to_string(),
    };
    let quoted = quote_path(&path).ok_or_else(|| {
        ClientError::Config(format!(
            "target path {target_path:?} has no URL form under the target base"
        ))
    })?;
    Ok(format!("{base}{quoted}"))
}

fn keys_changed(a: &Root, b: &Root, role: &str) -> bool {
    let ids = |r: &Root| {
        r.role(role)
            .map(|r| r.keyids.iter().cloned().collect::<BTreeSet<_>>())
    };
    ids(a) != ids(b)
}

fn local_path(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("{}.json", quote(role)))
}

/// Read cached metadata; a missing file is `None`.
fn read_local(dir: &Path, role: &str) -> Result<Option<Vec<u8>>, ClientError> {
    let path = local_path(dir, role);
    match fs::read(&path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClientError::io(format!("reading {}", path.display()), e)),
    }
}

fn remove_local(dir: &Path, role: &str) -> Result<(), ClientError> {
    let path = local_path(dir, role);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::io(format!("removing {}", path.display()), e)),
    }
}

/// Persist the exact bytes received for `role`.
fn persist(dir: &Path, role: &str, data: &[u8]) -> Result<(), ClientError> {
    // Each file is replaced atomically; the directory itself is synced once per update cycle
    // (`sync_dir`), except for root, whose chain progress is synced at once.
    write_atomic(&local_path(dir, role), data, true, role == "root")
}

/// temp file → fsync → rename → fsync(dir).
/// The directory holding `path` ("." for a bare file name, whose parent is "").
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Remove temp files an interrupted write left in the metadata directory, which must hold
/// only trusted metadata. Best effort: a leftover is harmless, only untidy.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Make renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), ClientError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| ClientError::io(format!("syncing {}", dir.display()), e))
}

/// temp file (→ fsync when `durable`) → rename (→ fsync of the directory when `dir_sync`).
fn write_atomic(
    path: &Path,
    data: &[u8],
    durable: bool,
    dir_sync: bool,
) -> Result<(), ClientError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_data()?;
        }
        fs::rename(&tmp, path)?;
        if dir_sync {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(ClientError::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_never_escapes() {
        assert_eq!(quote("../x"), "..%2Fx");
        assert_eq!(quote("?#%/"), "%3F%23%25%2F");
        assert_eq!(quote(".."), "%2E%2E");
        assert_eq!(quote("bin-0a3f"), "bin-0a3f");
        assert_eq!(quote("café"), "caf%C3%A9");
        assert_eq!(
            quote_path("packages/a b/c?.whl").as_deref(),
            Some("packages/a%20b/c%3F.whl")
        );
        assert_eq!(quote_path("a/../../b").as_deref(), Some("a%2F..%2F..%2Fb"));
        assert_eq!(quote_path("./x").as_deref(), Some(".%2Fx"));
        assert_eq!(quote_path(".."), None);
        assert_eq!(quote_path("."), None);
    }
}
