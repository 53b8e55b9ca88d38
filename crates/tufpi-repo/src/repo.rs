//! A repository: a state store, a metadata blob store and a keys directory (see
//! `backend.rs`). Embedded, `DIR/state.db` (the state store), `DIR/keys/` (signing keys),
//! `DIR/metadata/` (published metadata, ready to serve as files). The repository queues
//! changes and plans publishes (`plan.rs`); the publisher (`publisher.rs`) writes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, Utc};
use tracing::{debug, warn};
use tufpi_blob::{BlobStore, Etag};
use tufpi_core::metadata::Metadata;

use crate::backend::{self, Backend, Staging};
use crate::change::{Change, TargetRecord};
use crate::config::{ExpiryRole, RepoConfig};
use crate::error::RepoError;
use crate::keys::{self, SigningKey};
use crate::layout;
use crate::layout::TIMESTAMP_FILE;
use crate::lock::{self, LockFile};
use crate::plan::Plan;
use crate::publisher::{read_bin_targets, BinCache, Publisher};
use crate::store::{RoleState, SqliteStore, StateStore};
use crate::target_hashes::{KnownHashes, TargetHashes};

pub use crate::lock::{lock_holder, LockHolder};

/// What one publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Queued changes applied.
    pub changes: u64,
    /// Bin roles re-signed.
    pub bins: usize,
    /// New snapshot version (0 if nothing was published).
    pub snapshot_version: u64,
    /// New timestamp version (0 if nothing was published).
    pub timestamp_version: u64,
}

/// A repository opened for reading, queueing and (with the lock) publishing.
pub struct Repository {
    pub(crate) config: RepoConfig,
    pub(crate) store: Box<dyn StateStore + Send>,
    /// Published metadata, keyed by file name.
    pub(crate) meta: Arc<dyn BlobStore>,
    pub(crate) staging: Staging,
    pub(crate) keys_dir: PathBuf,
    /// Lock file and import scratch space (embedded: the repository directory).
    work_dir: Option<PathBuf>,
    pub(crate) roles: BTreeMap<String, RoleState>,
    pub(crate) online: Option<SigningKey>,
    lock: Option<LockFile>,
    locked: bool,
    /// The ETag of `timestamp.json` as this publisher last wrote or checked it (inner `None`:
    /// absent); outer `None` until checked (when the lock is taken).
    ts_etag: Option<Option<Etag>>,
    /// The bins this handle last wrote (their next versions are built from it).
    bins: BinCache,
}

impl Repository {
    /// A repository over `backend`, not locked.
    pub(crate) fn from_backend(
        backend: Backend,
        config: RepoConfig,
        roles: BTreeMap<String, RoleState>,
        online: Option<SigningKey>,
    ) -> Repository {
        let Backend {
            state,
            metadata,
            staging,
            keys_dir,
            work_dir,
        } = backend;
        let staging = match (staging, &work_dir) {
            (Some(s), _) => Staging::Store(s),
            (None, Some(w)) => Staging::Dir(w.join("staging")),
            (None, None) => Staging::Dir(
                std::env::temp_dir().join(format!("tufpi-staging-{}", std::process::id())),
            ),
        };
        Repository {
            config,
            store: state,
            meta: metadata,
            staging,
            keys_dir,
            work_dir,
            roles,
            online,
            lock: None,
            locked: false,
            ts_etag: None,
            bins: BinCache::default(),
        }
    }

    /// The metadata directory of a repository whose metadata is on the local file system
    /// (embedded mode; the index serves files from it). Empty for a remote store: use
    /// [`Repository::metadata_store`].
    pub fn metadata_dir(&self) -> PathBuf {
        self.metadata_local_dir().unwrap_or_default()
    }

    /// The metadata directory, if the metadata store is on the local file system.
    pub fn metadata_local_dir(&self) -> Option<PathBuf> {
        backend::local_dir(&*self.meta)
    }

    /// The metadata store (keys `N.role.json`, `timestamp.json`).
    pub fn metadata_store(&self) -> Arc<dyn BlobStore> {
        self.meta.clone()
    }

    /// The signing keys' directory.
    pub fn keys_dir(&self) -> &Path {
        &self.keys_dir
    }

    /// Where a bulk import spills its buckets: local scratch, needed only until its plan is
    /// recorded.
    pub(crate) fn spill_dir(&self) -> PathBuf {
        match (self.staging.local_dir(), &self.work_dir) {
            (Some(d), _) => d.to_path_buf(),
            (None, Some(w)) => w.join("import-spill"),
            (None, None) => {
                std::env::temp_dir().join(format!("tufpi-import-{}", std::process::id()))
            }
        }
    }

    /// The layout options.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Role versions and expiries as recorded.
    pub fn role_states(&self) -> &BTreeMap<String, RoleState> {
        &self.roles
    }

    /// Open an existing embedded repository in `dir` (no lock: enough to queue changes and
    /// read status).
    pub fn open(dir: &Path) -> Result<Repository, RepoError> {
        let db = dir.join("state.db");
        if !db.exists() {
            return Err(RepoError::NotARepository {
                dir: dir.to_path_buf(),
            });
        }
        let store = SqliteStore::open(&db)?;
        let config = RepoConfig::from_settings(|k| store.get_setting(k).ok().flatten())
            .ok_or_else(|| RepoError::InitialisationUnfinished {
                dir: dir.to_path_buf(),
            })?;
        let roles = store.roles()?;
        let online = keys::load(dir, "online")?;
        let mut store = store;
        store.fill_missing_bins(&|p| layout::bin_of(&config, p))?;
        let backend = Backend::embedded_with(dir, Box::new(store))?;
        Ok(Repository::from_backend(backend, config, roles, online))
    }

    /// Open an existing repository over `backend` (scale-out: `--database URL --storage
    /// URL`). No lock is taken.
    pub fn open_with(backend: Backend) -> Result<Repository, RepoError> {
        let config = RepoConfig::from_settings(|k| backend.state.get_setting(k).ok().flatten())
            .ok_or_else(|| RepoError::InitialisationUnfinished {
                dir: PathBuf::from(backend.metadata.describe()),
            })?;
        let roles = backend.state.roles()?;
        let online = keys::load_in(&backend.keys_dir, "online")?;
        Ok(Repository::from_backend(backend, config, roles, online))
    }

    /// Take the publisher lock: one writer per repository. The OS drops it when the holder
    /// dies, so a crashed publisher cannot keep it. The lock file names the holder (this
    /// process's PID and program, see [`lock_holder`]); a refusal names the process holding it.
    pub fn lock(&mut self) -> Result<(), RepoError> {
        if self.locked {
            return Ok(());
        }
        self.lock_as(&lock::this_program())
    }

    /// [`Repository::lock`], recording `what` (e.g. `tufpi serve`) as the holder. If the
    /// lock is held already, only the record changes. Without a work directory (scale-out)
    /// there is no lock file: the state store's lease and the timestamp's compare-and-swap
    /// fence publishers.
    pub fn lock_as(&mut self, what: &str) -> Result<(), RepoError> {
        if self.locked {
            if let Some(lock) = &self.lock {
                lock.record(what);
            }
            return Ok(());
        }
        let f = match &self.work_dir {
            Some(dir) => Some(lock::acquire(dir, what)?),
            None => None,
        };
        // Another publisher may have published since this handle was opened: plan from the
        // versions recorded now, not those read at open (stale ones would reuse version names),
        // and with the online key installed now (it may have been rotated).
        self.roles = self.store.roles()?;
        let pending = self.store.plan()?.is_some();
        keys::settle_next_online(&self.keys_dir, pending)?;
        self.online = keys::load_in(&self.keys_dir, "online")?;
        // Temp files of a publisher killed mid-write would otherwise pile up.
        if let Some(dir) = self.metadata_local_dir() {
            tufpi_fs::remove_stale_temps(&dir)?;
        }
        if !pending {
            // An import killed before recording its plan: its staged files name nothing.
            self.staging.clear_stale();
        }
        self.ts_etag = Some(self.timestamp_tag()?);
        self.lock = f;
        self.locked = true;
        Ok(())
    }

    /// Stop publishing: release the lock (if any) and forget what was read under it, so the
    /// next [`Repository::lock`] reads role versions, the online key and `timestamp.json`'s
    /// ETag afresh. A handle refused with [`RepoError::TimestampReplaced`] stays refused
    /// until then (a replica that regains the publisher lease calls this first).
    pub fn unlock(&mut self) {
        self.lock = None;
        self.locked = false;
        self.ts_etag = None;
        // Another publisher may write next: only the store says what its bins list then.
        self.bins = BinCache::default();
    }

    /// The ETag of the published `timestamp.json` (`None`: absent), refused if its version is
    /// above the one the state store records: another writer is ahead of this one.
    fn timestamp_tag(&self) -> Result<Option<Etag>, RepoError> {
        let Some((bytes, etag)) = self.meta.get_tagged(TIMESTAMP_FILE)? else {
            return Ok(None);
        };
        let recorded = self.version("timestamp");
        // An unparsable file is replaced by the next publish, as it always was.
        if let Ok(md) = Metadata::from_bytes(&bytes) {
            if md.signed.version > recorded {
                return Err(RepoError::TimestampReplaced {
                    detail: format!(
                        "it is version {}, the state store records version {recorded}: \
                         another publisher is ahead",
                        md.signed.version
                    ),
                });
            }
        }
        Ok(Some(etag))
    }

    /// The holder of this repository's publisher lock (see [`lock_holder`]); `None` without
    /// a lock file (scale-out).
    pub fn lock_holder(&self) -> Option<LockHolder> {
        lock_holder(self.work_dir.as_deref()?)
    }

    /// Durably queue changes (acknowledged once this returns).
    pub fn enqueue(&mut self, changes: &[Change]) -> Result<u64, RepoError> {
        let cfg = &self.config;
        let checked = changes
            .iter()
            .map(|c| c.clone().validate(cfg))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.enqueue_all(
            &mut checked
                .into_iter()
                .map(|c| Ok((layout::bin_of(cfg, c.path()), c))),
        )
    }

    /// Durably queue a stream of changes, validated one by one, in one transaction: all or,
    /// at the first bad one, none (its error says which).
    pub fn enqueue_all(
        &mut self,
        changes: impl Iterator<Item = Result<Change, RepoError>>,
    ) -> Result<u64, RepoError> {
        let cfg = &self.config;
        let mut checked = changes.map(|c| {
            c.and_then(|c| c.validate(cfg))
                .map(|c| (layout::bin_of(cfg, c.path()), c))
        });
        self.store.enqueue_all(&mut checked)
    }

    /// Queued changes not yet published.
    pub fn pending(&self) -> Result<u64, RepoError> {
        self.store.pending()
    }

    /// Number of targets.
    pub fn target_count(&self) -> Result<u64, RepoError> {
        self.store.target_count()
    }

    /// Finish an interrupted publish, then publish queued changes in batches of at most
    /// `batch` until the queue is empty.
    pub fn publish(&mut self, batch: usize) -> Result<PublishReport, RepoError> {
        self.lock()?;
        self.finish_plan()?;
        let mut report = PublishReport::default();
        loop {
            let t0 = std::time::Instant::now();
            let (changes, bins) = self.plan_batch(batch.max(1))?;
            if changes == 0 {
                break;
            }
            let planned = t0.elapsed();
            report.changes += changes;
            report.bins += bins;
            self.finish_plan()?;
            debug!(
                changes,
                bins,
                plan_ms = planned.as_millis() as u64,
                write_ms = (t0.elapsed() - planned).as_millis() as u64,
                snapshot = self.version("snapshot"),
                "batch published"
            );
        }
        report.snapshot_version = self.version("snapshot");
        report.timestamp_version = self.version("timestamp");
        Ok(report)
    }

    pub(crate) fn version(&self, role: &str) -> u64 {
        self.roles.get(role).map(|r| r.version).unwrap_or(0)
    }

    /// Take one batch of queued changes and record its plan; returns (changes, bins).
    fn plan_batch(&mut self, limit: usize) -> Result<(u64, usize), RepoError> {
        let Repository {
            store,
            roles,
            config,
            ..
        } = self;
        let now = Utc::now();
        let bin_exp = config.expires_at(ExpiryRole::Bin, now);
        let mut planned = Plan::new();
        let (last, taken) = store.plan_batch(limit, &mut |touched, last| {
            let mut plan = Plan::applying(last);
            for &b in touched {
                plan.bump(layout::bin_name(config, b), roles, bin_exp);
            }
            config.add_snapshot_and_timestamp(&mut plan, roles, now);
            let recorded = (plan.states().to_vec(), plan.text());
            planned = plan;
            Ok(recorded)
        })?;
        if last == 0 {
            return Ok((0, 0));
        }
        for (name, st) in planned.states() {
            roles.insert(name.clone(), *st);
        }
        Ok((taken, planned.roles().len().saturating_sub(2)))
    }

    /// Re-sign online roles expiring within `margin` (bins, then snapshot and timestamp).
    /// Returns how many bins were re-signed. Also warns about offline roles near expiry.
    pub fn refresh(&mut self, margin: Duration) -> Result<usize, RepoError> {
        self.lock()?;
        self.finish_plan()?;
        let now = Utc::now();
        let limit = RoleState::ts(now + margin);
        let bin_exp = self.config.expires_at(ExpiryRole::Bin, now);
        let mut plan = Plan::new();
        for (name, st) in &self.roles {
            if layout::succinct_index(&self.config, name).is_some() && st.expires <= limit {
                plan.bump(name.clone(), &self.roles, bin_exp);
            }
        }
        let bins = plan.roles().len();
        let due = |role: &str| self.roles.get(role).is_some_and(|s| s.expires <= limit);
        // With targets online, targets is the publisher's to re-sign too (no one else can).
        let targets_due = self.config.targets_online && due("targets");
        if targets_due {
            let texp = self.config.expires_at(ExpiryRole::Targets, now);
            plan.bump("targets", &self.roles, texp);
        }
        if bins == 0 && !targets_due && !due("snapshot") && !due("timestamp") {
            return Ok(0);
        }
        self.config
            .add_snapshot_and_timestamp(&mut plan, &self.roles, now);
        self.run(plan)?;
        for w in self.warnings(Duration::days(30)) {
            warn!("{w}");
        }
        Ok(bins)
    }

    /// Record `plan` (its role states and its text) and adopt its role states. Nothing is
    /// written yet: [`Repository::finish_plan`] does that, now or after a crash.
    pub(crate) fn record(&mut self, plan: &Plan) -> Result<(), RepoError> {
        self.store.record_plan(plan.states(), &plan.text())?;
        for (name, st) in plan.states() {
            self.roles.insert(name.clone(), *st);
        }
        Ok(())
    }

    /// Record `plan` and publish it.
    pub(crate) fn run(&mut self, plan: Plan) -> Result<(), RepoError> {
        self.record(&plan)?;
        self.finish_plan()
    }

    /// Publish the recorded plan, if there is one (a crash may have interrupted it), and
    /// clear it. Safe to repeat: versioned files already written are kept as they are.
    pub(crate) fn finish_plan(&mut self) -> Result<(), RepoError> {
        let Some(text) = self.store.plan()? else {
            return Ok(());
        };
        let plan = Plan::parse(&text)?;
        let staging = if plan.staged {
            Some(self.staging.open()?)
        } else {
            None
        };
        let expected = match &self.ts_etag {
            Some(tag) => tag.clone(),
            None => {
                let tag = self.timestamp_tag()?;
                self.ts_etag = Some(tag.clone());
                tag
            }
        };
        let online = self
            .online
            .as_ref()
            .ok_or(RepoError::MissingKey("online"))?;
        let written = Publisher {
            config: &self.config,
            store: &mut *self.store,
            roles: &self.roles,
            online,
            meta: &*self.meta,
            staging: staging.as_deref(),
            timestamp_etag: expected.as_ref(),
            bins: &mut self.bins,
        }
        .finish(&plan)?;
        if let Some(tag) = written {
            self.ts_etag = Some(Some(tag));
        }
        if plan.staged {
            self.staging.clear_prefix(&plan.prefix);
        }
        Ok(())
    }

    /// Loud warnings: any role expired; offline roles (root, targets, bins) expiring within
    /// `horizon` (they need a key ceremony, so warn well ahead).
    pub fn warnings(&self, horizon: Duration) -> Vec<String> {
        let now = Utc::now();
        let mut out = Vec::new();
        for role in ["root", "targets", "bins", "snapshot", "timestamp"] {
            let Some(st) = self.roles.get(role) else {
                continue;
            };
            let exp = st.expiry();
            let offline = matches!(role, "root" | "bins")
                || (role == "targets" && !self.config.targets_online);
            if exp <= now {
                out.push(format!("{role} v{} EXPIRED at {exp}", st.version));
            } else if offline && exp <= now + horizon {
                out.push(format!(
                    "{role} v{} (offline) expires {exp}: re-sign it in a key ceremony",
                    st.version
                ));
            }
        }
        let expired_bins = self
            .roles
            .iter()
            .filter(|(n, s)| layout::succinct_index(&self.config, n).is_some() && s.expiry() <= now)
            .count();
        if expired_bins > 0 {
            out.push(format!(
                "{expired_bins} bin roles EXPIRED: run `tufpi repo refresh`"
            ));
        }
        out
    }

    /// Delete superseded consistent-snapshot files older than `retention` (never roots).
    pub fn gc(&mut self, retention: std::time::Duration) -> Result<crate::gc::GcReport, RepoError> {
        self.lock()?;
        self.finish_plan()?;
        crate::gc::gc_store(&*self.meta, retention)
    }

    /// Read published metadata `name` at `version` (or `timestamp.json` when `None`).
    pub fn read_metadata(&self, name: &str, version: Option<u64>) -> Result<Metadata, RepoError> {
        let file = match version {
            Some(v) => format!("{v}.{name}.json"),
            None => format!("{name}.json"),
        };
        let bytes = self
            .meta
            .get(&file)?
            .ok_or_else(|| RepoError::NotPublished {
                store: self.meta.describe(),
                key: file,
            })?;
        Ok(Metadata::from_bytes(&bytes)?)
    }

    /// Switch the repository to list `new` for every target: publishes what is queued, then
    /// queues every current target whose listing changes (the next publish re-signs their
    /// bins) and records `new`, in one transaction. Refused, changing nothing, if a target
    /// lacks one of `new`'s algorithms in its bin and in `known`. Returns how many targets
    /// were re-listed.
    pub fn set_target_hashes(
        &mut self,
        new: TargetHashes,
        known: &KnownHashes<'_>,
    ) -> Result<u64, RepoError> {
        self.publish(100_000)?;
        let mut changes = Vec::new();
        let mut lacking = Vec::new();
        for (index, count) in self.store.bin_counts()? {
            let name = layout::bin_name(&self.config, index);
            let Some(state) = self.roles.get(&name).filter(|_| count > 0) else {
                continue;
            };
            let key = format!("{}.{name}.json", state.version);
            for (path, target) in read_bin_targets(&*self.meta, &key)? {
                let mut available = target.hashes.clone();
                for (alg, hex) in known(&path, &target.hashes).unwrap_or_default() {
                    available.entry(alg).or_insert(hex);
                }
                match new.select(&path, &available) {
                    Ok(hashes) if hashes == target.hashes => {}
                    Ok(hashes) => changes.push((
                        index,
                        Change::Add(TargetRecord {
                            path,
                            length: target.length,
                            hashes,
                            custom: target.custom().cloned(),
                        }),
                    )),
                    Err(e) => lacking.push(e),
                }
            }
        }
        let count = lacking.len();
        if let Some(first) = lacking.into_iter().next() {
            return Err(RepoError::TargetsLackDigest {
                new: new.to_string(),
                count,
                first: Box::new(first),
                current: self.config.target_hashes.to_string(),
            });
        }
        // Queue and record together (a crash leaves both or neither); a change another writer
        // queued meanwhile (without the lock) is newer than the bin read here, and wins.
        let n = self
            .store
            .enqueue_unqueued_and_set(changes, "target_hashes", &new.to_string())?;
        self.config.target_hashes = new;
        Ok(n)
    }
}
