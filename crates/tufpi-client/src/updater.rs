//! The updater: the client workflow (spec §5) around `TrustedSet`. It loads cached metadata
//! first, downloads what is missing or stale within length caps, keeps the exact bytes
//! received in the local metadata directory (`MetadataDir`), walks delegations for a target
//! (`TargetWalk`), and downloads targets only after they verify. An update that loses a
//! race with the repository starts over from timestamp (`race`). `close` finishes the
//! directory's writes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tracing::{debug, warn};
use tufpi_core::hashes;
use tufpi_core::metadata::{Root, TargetFile};

use crate::config::UpdaterConfig;
use crate::error::ClientError;
use crate::fetcher::Fetcher;
use crate::metadata_dir::MetadataDir;
use crate::quote::{metadata_url_for, with_slash};
use crate::quote::{quote, target_url_for};
use crate::race::{retry_on_race, Restart};
use crate::trusted::{targets_of, TimestampUpdate, TrustedSet};
use crate::walk::TargetWalk;

/// A TUF client for one repository. `close` it when done: that finishes the metadata
/// directory's writes and reports their failure.
pub struct Updater {
    dir: MetadataDir,
    metadata_base: String,
    target_base: Option<String>,
    config: UpdaterConfig,
    fetcher: Box<dyn Fetcher>,
    trusted: TrustedSet,
    now: DateTime<Utc>,
    refreshed: bool,
    /// After a restart mid-update, do the full cycle (the cache is known to be incomplete).
    force_full: bool,
}

impl Restart for Updater {
    /// A file missing from a consistent-snapshot repository: it moved on mid-update.
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
        let root = self
            .dir
            .read("root")?
            .ok_or(ClientError::Order("root.json vanished"))?;
        self.trusted = TrustedSet::new(&root, self.now)?;
        self.refreshed = false;
        self.force_full = true;
        Ok(())
    }
}

impl Updater {
    /// Store `root_data` as the trust anchor in `dir` (after checking it is root metadata
    /// signed by its own threshold).
    pub fn init(dir: &Path, root_data: &[u8]) -> Result<(), ClientError> {
        TrustedSet::new(root_data, Utc::now())?;
        MetadataDir::init(dir, root_data)
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
        let dir = MetadataDir::open(dir);
        let root = dir.read("root")?.ok_or_else(|| {
            ClientError::Config(format!(
                "{} has no root.json: run `client init` with a trusted root first",
                dir.path().display()
            ))
        })?;
        let trusted = TrustedSet::new(&root, now)?;
        Ok(Updater {
            dir,
            metadata_base: with_slash(metadata_base_url),
            target_base: target_base_url.map(with_slash),
            config,
            fetcher,
            trusted,
            now,
            refreshed: false,
            force_full: false,
        })
    }

    /// Finish: every metadata write done and durable, or the error why not. An updater
    /// dropped without `close` still waits for its writes but reports nothing.
    pub fn close(self) -> Result<(), ClientError> {
        self.dir.close()
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
        let out = retry_on_race(self, Self::refresh_once);
        self.refreshed = out.is_ok();
        out
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
        let (Some(snap), Some(targets)) = (self.dir.read("snapshot")?, self.dir.read("targets")?)
        else {
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
        self.dir.sync()
    }

    fn download_metadata(
        &self,
        role: &str,
        max_length: u64,
        version: Option<u64>,
    ) -> Result<Vec<u8>, ClientError> {
        let url = metadata_url_for(&self.metadata_base, role, version);
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
                    self.dir.remove(role)?;
                }
            }
            self.dir.persist("root", &data)?;
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
        if let Some(local) = self.dir.read("timestamp")? {
            if let Err(e) = self.trusted.update_timestamp(&local) {
                debug!("local timestamp not usable as final: {e}");
            }
        }
        let data = self.download_metadata("timestamp", self.config.timestamp_max_length, None)?;
        let update = self.trusted.update_timestamp(&data)?;
        if update == TimestampUpdate::Updated {
            self.dir.persist("timestamp", &data)?;
        }
        Ok(update)
    }

    fn load_snapshot(&mut self) -> Result<(), ClientError> {
        if let Some(local) = self.dir.read("snapshot")? {
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
        self.dir.persist("snapshot", &data)
    }

    fn load_targets(&mut self, role: &str, parent: &str) -> Result<(), ClientError> {
        if self.trusted.contains(role, parent) {
            return Ok(());
        }
        if let Some(local) = self.dir.read(role)? {
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
        self.dir.persist(role, &data)
    }

    /// Find `target_path` in the delegation graph (refreshing first if needed). `None` means
    /// no trusted role lists it.
    pub fn get_targetinfo(&mut self, target_path: &str) -> Result<Option<TargetFile>, ClientError> {
        let walked = retry_on_race(self, |u| {
            if !u.refreshed {
                if let Err(e) = u.refresh() {
                    // `refresh` has had its own retries: its failure is final.
                    return Ok(Err(e));
                }
            }
            u.walk(target_path).map(Ok)
        });
        match walked {
            Ok(Err(refresh_failed)) => Err(refresh_failed),
            walked => {
                self.dir.sync()?;
                walked?
            }
        }
    }

    /// Search the delegations (`TargetWalk`), loading each role the walk asks for.
    fn walk(&mut self, target_path: &str) -> Result<Option<TargetFile>, ClientError> {
        self.load_top_level()?;
        let mut walk = TargetWalk::new(target_path, self.config.max_delegations, ());
        while let Some(next) = walk.next_role() {
            self.load_targets(&next.role, &next.parent)?;
            let signed = self
                .trusted
                .targets(&next.role)
                .ok_or(ClientError::Order("targets not loaded"))?;
            let targets = targets_of(signed).ok_or(ClientError::Order("targets body"))?;
            if let Some(t) = walk.visit(&next.role, targets, ()) {
                return Ok(Some(t.clone()));
            }
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
        let dir = tufpi_fs::parent_dir(filepath);
        fs::create_dir_all(dir)
            .map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))?;
        Ok(tufpi_fs::write_atomic(filepath, &data)?)
    }
}

fn keys_changed(a: &Root, b: &Root, role: &str) -> bool {
    let ids = |r: &Root| {
        r.role(role)
            .map(|r| r.keyids.iter().cloned().collect::<BTreeSet<_>>())
    };
    ids(a) != ids(b)
}
