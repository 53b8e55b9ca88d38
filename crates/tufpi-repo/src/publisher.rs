//! Finishing a recorded plan: bins → snapshot → timestamp, each file written once under its
//! version name. A plan is recorded (with the role versions it publishes) before any file is
//! written (see `plan.rs`), so a publisher killed at any point finishes the same plan on
//! restart.
//!
//! A bin's next version is built from its current published file plus the queued changes of
//! the plan's batch: the published bins are the record of which targets each bin lists.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use tracing::{debug, warn};
use tufpi_blob::{BlobError, BlobStore, Bytes, Created, Etag};
use tufpi_core::hashes;
use tufpi_core::metadata::{Body, MetaFile, Metadata, TargetFile};

use crate::backend::staged_key;
use crate::change::Change;
use crate::config::RepoConfig;
use crate::direct::direct_snapshot;
use crate::error::RepoError;
use crate::keys::SigningKey;
use crate::layout::{self, TIMESTAMP_FILE};
use crate::plan::Plan;
use crate::store::{RoleState, StateStore};

/// Bins built (and signed) at once: bounds memory on bulk publishes.
const CHUNK: usize = 1024;

/// Most targets [`BinCache`] keeps (tens of MB); past it, it starts over.
const MAX_CACHED_TARGETS: usize = 100_000;

/// The targets each bin lists at the version this repository handle last wrote, so that its
/// next version is built without reading the previous file back from the metadata store (a
/// round trip and a parse per bin, on object storage the bulk of a publish). A bin's entry
/// is used only for exactly the version it was written at; a new handle (a new publisher
/// term) starts empty.
#[derive(Debug, Default)]
pub(crate) struct BinCache {
    bins: HashMap<u64, (u64, Arc<BTreeMap<String, TargetFile>>)>,
    targets: usize,
}

impl BinCache {
    /// The targets bin `index` lists at `version`, if this handle wrote that version.
    fn get(&self, index: u64, version: u64) -> Option<Arc<BTreeMap<String, TargetFile>>> {
        self.bins
            .get(&index)
            .filter(|(v, _)| *v == version)
            .map(|(_, t)| t.clone())
    }

    /// Remember that bin `index` lists `targets` at `version`.
    fn put(&mut self, index: u64, version: u64, targets: Arc<BTreeMap<String, TargetFile>>) {
        if let Some((_, old)) = self.bins.remove(&index) {
            self.targets -= old.len();
        }
        if self.targets + targets.len() > MAX_CACHED_TARGETS {
            self.bins.clear();
            self.targets = 0;
        }
        self.targets += targets.len();
        self.bins.insert(index, (version, targets));
    }
}

/// One bin of a plan, with everything needed to build it off the store's thread.
struct BinJob {
    name: String,
    index: u64,
    state: RoleState,
    /// Its key: `N.bin-x.json`.
    key: String,
    /// Staged by a bulk import under this key, listing this many targets.
    staged: Option<(String, u64)>,
    /// The key of the previous version, if it lists targets.
    previous: Option<String>,
    /// The previous version's targets, if this handle wrote it.
    cached: Option<Arc<BTreeMap<String, TargetFile>>>,
    changes: Vec<Change>,
}

/// What became of one bin.
enum BinDone {
    /// Already in place (a replayed plan), or staged on the same file system: rename
    /// `from` → `to`.
    Placed {
        index: u64,
        count: u64,
        rename: Option<(PathBuf, PathBuf)>,
    },
    /// To write: built now, or copied from a staging store.
    Built {
        index: u64,
        count: u64,
        key: String,
        bytes: Bytes,
        /// Built here: its version and targets (for the [`BinCache`]).
        built: Option<(u64, Arc<BTreeMap<String, TargetFile>>)>,
    },
}

/// Where a published file is, for messages: its path if the store is local.
fn shown(store: &dyn BlobStore, key: &str) -> PathBuf {
    store
        .local_path(key)
        .unwrap_or_else(|| PathBuf::from(format!("{}/{key}", store.describe())))
}

/// The targets a published bin lists.
pub(crate) fn read_bin_targets(
    store: &dyn BlobStore,
    key: &str,
) -> Result<BTreeMap<String, TargetFile>, RepoError> {
    let bytes = store.get(key)?.ok_or_else(|| RepoError::NotPublished {
        key: key.to_string(),
        store: store.describe(),
    })?;
    let md = Metadata::from_bytes(&bytes).map_err(|source| RepoError::BadPublishedFile {
        path: shown(store, key),
        source,
    })?;
    match md.signed.body {
        Body::Targets(t) => Ok(t.targets),
        _ => Err(RepoError::WrongMetadataType {
            file: shown(store, key).display().to_string(),
            expected: "targets",
        }),
    }
}

/// Write create-only: a replayed plan finds its files in place and keeps them. Returns the
/// bytes now stored under `key` (a replay's hashes must be of what clients fetch).
fn put_once(store: &dyn BlobStore, key: &str, bytes: Bytes) -> Result<Bytes, RepoError> {
    match store.put_new(key, bytes.clone())? {
        Created::New => Ok(bytes),
        Created::Existed => store.get(key)?.ok_or_else(|| RepoError::NotPublished {
            key: key.to_string(),
            store: store.describe(),
        }),
    }
}

/// Apply queued `changes` to `targets` in order.
fn apply(targets: &mut BTreeMap<String, TargetFile>, changes: Vec<Change>) {
    for c in changes {
        match c {
            Change::Add(r) => {
                let (path, entry) = layout::target_entry(r);
                targets.insert(path, entry);
            }
            Change::Remove(p) => {
                targets.remove(&p);
            }
        }
    }
}

/// What finishing a recorded plan needs of the repository. The repository calls the
/// publisher; the publisher knows nothing of the repository.
pub(crate) struct Publisher<'a> {
    /// The layout.
    pub config: &'a RepoConfig,
    /// The state store (queued changes in, bin counts and the plan's end out).
    pub store: &'a mut dyn StateStore,
    /// Every role's state, the plan's new ones included.
    pub roles: &'a BTreeMap<String, RoleState>,
    /// The online key.
    pub online: &'a SigningKey,
    /// The metadata store.
    pub meta: &'a dyn BlobStore,
    /// Where a bulk import staged its bins ahead of the plan (staged plans only).
    pub staging: Option<&'a dyn BlobStore>,
    /// The ETag of `timestamp.json` this publisher last wrote or read (`None`: absent).
    pub timestamp_etag: Option<&'a Etag>,
    /// The bins this repository handle wrote last.
    pub bins: &'a mut BinCache,
}

impl Publisher<'_> {
    fn state(&self, role: &str) -> Result<RoleState, RepoError> {
        self.roles
            .get(role)
            .copied()
            .ok_or_else(|| RepoError::NoRoleState {
                role: role.to_string(),
            })
    }

    /// Write everything `plan` names, bins → snapshot → timestamp, then clear it in the store.
    /// Safe to repeat after a crash: versioned files already written are kept as they are.
    /// Returns the new ETag of `timestamp.json` if it was written. A timestamp another
    /// writer replaced is [`RepoError::TimestampReplaced`], and the plan stays recorded.
    pub fn finish(self, plan: &Plan) -> Result<Option<Etag>, RepoError> {
        let online = self.online;
        let meta = self.meta;
        let staging = self.staging;
        let t0 = std::time::Instant::now();
        let published = self.store.bin_counts()?;
        let bins = plan.bins(self.config);
        let mut counts = Vec::with_capacity(bins.len());
        for chunk in bins.chunks(CHUNK) {
            let mut queued = if plan.upto > 0 {
                let indexes: Vec<u64> = chunk.iter().map(|(_, i)| *i).collect();
                self.store.changes_in_bins(&indexes, plan.upto)?
            } else {
                BTreeMap::new()
            };
            let mut jobs = Vec::with_capacity(chunk.len());
            for (name, index) in chunk {
                let state = self.state(name)?;
                let file = |v: u64| format!("{v}.{name}.json");
                // The previous version is read only if it lists targets.
                let previous = (published.get(index).copied().unwrap_or(0) > 0
                    && state.version > 1)
                    .then(|| file(state.version - 1));
                let cached = previous
                    .as_ref()
                    .and_then(|_| self.bins.get(*index, state.version - 1));
                jobs.push(BinJob {
                    name: name.clone(),
                    index: *index,
                    state,
                    key: file(state.version),
                    staged: plan
                        .counts
                        .get(name)
                        .filter(|_| plan.staged)
                        .map(|&n| (staged_key(&plan.prefix, &file(state.version)), n)),
                    previous,
                    cached,
                    changes: queued.remove(index).unwrap_or_default(),
                });
            }
            let done: Vec<BinDone> = jobs
                .into_par_iter()
                .map(|job| build(job, online, meta, staging))
                .collect::<Result<_, RepoError>>()?;
            let mut files = Vec::new();
            let mut cache = Vec::new();
            let mut renamed: Option<PathBuf> = None;
            for d in done {
                match d {
                    BinDone::Placed {
                        index,
                        count,
                        rename,
                    } => {
                        if let Some((from, to)) = rename {
                            std::fs::rename(&from, &to).map_err(|e| {
                                RepoError::io(format!("renaming onto {}", to.display()), e)
                            })?;
                            renamed = Some(to);
                        }
                        counts.push((index, count));
                    }
                    BinDone::Built {
                        index,
                        count,
                        key,
                        bytes,
                        built,
                    } => {
                        files.push((key, bytes));
                        counts.push((index, count));
                        if let Some((version, targets)) = built {
                            cache.push((index, version, targets));
                        }
                    }
                }
            }
            if let Some(dir) = renamed.as_deref().and_then(|p| p.parent()) {
                tufpi_fs::sync_dir(dir)?;
            }
            // Many at once with one sync (FsStore: one syncfs), a few one by one; a remote
            // store takes them side by side, however few (each is a round trip).
            let remote = meta.local_path(TIMESTAMP_FILE).is_none();
            if files.len() > 8 || (remote && files.len() > 1) {
                meta.put_many_new(files)?;
            } else {
                for (key, bytes) in files {
                    meta.put_new(&key, bytes)?;
                }
            }
            // In place now (or already, from the same plan: the same targets).
            for (index, version, targets) in cache {
                self.bins.put(index, version, targets);
            }
        }
        if self.config.targets_online && plan.writes("targets") {
            // Targets is online in this layout: the publisher re-signs it (key rotation).
            let st = self.state("targets")?;
            let t = layout::build_targets(
                self.config,
                &[],
                1,
                &online.entry(),
                st.version,
                st.expiry(),
            );
            meta.put_new(
                &format!("{}.targets.json", st.version),
                Bytes::from(online.sign(t)?.to_compact_bytes()),
            )?;
        }
        let bins_done = t0.elapsed();
        let mut etag = None;
        if plan.writes("snapshot") {
            let st = self.state("snapshot")?;
            let bytes = match direct_snapshot(self.roles, st.version, st.expiry(), online)? {
                Some(b) => b,
                None => online
                    .sign(layout::build_snapshot(self.roles, st.version, st.expiry()))?
                    .to_compact_bytes(),
            };
            let bytes = put_once(
                meta,
                &format!("{}.snapshot.json", st.version),
                Bytes::from(bytes),
            )?;
            let ts_st = self.state("timestamp")?;
            let mut snap = MetaFile::new(st.version);
            snap.length = Some(bytes.len() as u64);
            snap.hashes = Some(BTreeMap::from([(
                "sha256".to_string(),
                hashes::digest_hex("sha256", &bytes).unwrap_or_default(),
            )]));
            let md = online.sign(layout::build_timestamp(snap, ts_st.version, ts_st.expiry()))?;
            let written = meta
                .put_swap(
                    TIMESTAMP_FILE,
                    Bytes::from(md.to_compact_bytes()),
                    self.timestamp_etag,
                )
                .map_err(|e| match e {
                    BlobError::Precondition { expected, .. } => RepoError::TimestampReplaced {
                        detail: format!("it is not the version this publisher last saw ({expected}); the plan stays recorded for the publisher holding the lease"),
                    },
                    e => RepoError::Blob(e),
                })?;
            etag = Some(written);
        }
        let written = t0.elapsed();
        self.store.clear_plan(plan.upto, &counts)?;
        debug!(
            bins = counts.len(),
            bins_ms = bins_done.as_millis() as u64,
            snapshot_timestamp_ms = (written - bins_done).as_millis() as u64,
            clear_ms = (t0.elapsed() - written).as_millis() as u64,
            "plan written"
        );
        Ok(etag)
    }
}

/// Place or build one bin of a plan.
fn build(
    job: BinJob,
    online: &SigningKey,
    meta: &dyn BlobStore,
    staging: Option<&dyn BlobStore>,
) -> Result<BinDone, RepoError> {
    if let (Some(staging), Some((staged, count))) = (staging, &job.staged) {
        let count = *count;
        let placed = |rename| BinDone::Placed {
            index: job.index,
            count,
            rename,
        };
        match (staging.local_path(staged), meta.local_path(&job.key)) {
            // Both on the file system: a rename, as cheap as it gets.
            (Some(from), Some(to)) => {
                if to.exists() {
                    return Ok(placed(None));
                }
                if from.exists() {
                    return Ok(placed(Some((from, to))));
                }
            }
            // Otherwise a copy; the staged objects go when the plan is done.
            _ => {
                if let Some(bytes) = staging.get(staged)? {
                    return Ok(BinDone::Built {
                        index: job.index,
                        count,
                        key: job.key,
                        bytes,
                        built: None,
                    });
                }
                if meta.head(&job.key)?.is_some() {
                    return Ok(placed(None));
                }
            }
        }
        // Only if the staged file is gone (removed, or staged on another machine): publish
        // what the store knows.
        warn!(bin = %job.name, "staged file missing; re-signing the bin's current targets");
    }
    let mut targets = match (job.cached, &job.previous) {
        (Some(t), Some(_)) => Arc::unwrap_or_clone(t),
        (_, Some(key)) => read_bin_targets(meta, key)?,
        (_, None) => BTreeMap::new(),
    };
    apply(&mut targets, job.changes);
    let count = targets.len() as u64;
    let targets = Arc::new(targets);
    let md = online.sign(layout::bin_of_targets(
        (*targets).clone(),
        job.state.version,
        job.state.expiry(),
    ))?;
    Ok(BinDone::Built {
        index: job.index,
        count,
        key: job.key,
        bytes: Bytes::from(md.to_compact_bytes()),
        built: Some((job.state.version, targets)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: usize) -> Arc<BTreeMap<String, TargetFile>> {
        Arc::new(
            (0..n)
                .map(|i| (format!("t{i}"), TargetFile::new(1, BTreeMap::new())))
                .collect(),
        )
    }

    #[test]
    fn the_bin_cache_answers_only_for_the_version_written_and_stays_bounded() {
        let mut c = BinCache::default();
        c.put(3, 7, targets(2));
        assert_eq!(c.get(3, 7).map(|t| t.len()), Some(2));
        assert!(c.get(3, 6).is_none(), "another version of the bin");
        assert!(c.get(4, 7).is_none(), "another bin");
        c.put(3, 8, targets(5));
        assert!(c.get(3, 7).is_none(), "superseded");
        assert_eq!(c.targets, 5);
        // Past the bound it starts over rather than grow.
        c.put(9, 1, targets(MAX_CACHED_TARGETS - 4));
        assert!(c.get(3, 8).is_none());
        assert_eq!(c.get(9, 1).map(|t| t.len()), Some(MAX_CACHED_TARGETS - 4));
        assert_eq!(c.targets, MAX_CACHED_TARGETS - 4);
    }
}
