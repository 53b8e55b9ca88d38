//! Finishing a recorded plan: bins → snapshot → timestamp, each file written once under its
//! version name. A plan is recorded (with the role versions it publishes) before any file is
//! written (see `plan.rs`), so a publisher killed at any point finishes the same plan on
//! restart.
//!
//! A bin's next version is built from its current published file plus the queued changes of
//! the plan's batch: the published bins are the record of which targets each bin lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tracing::warn;
use tufpi_core::hashes;
use tufpi_core::metadata::{Body, MetaFile, Metadata, TargetFile};
use tufpi_fs::{write_atomic, write_many_once, write_once};

use crate::change::Change;
use crate::config::RepoConfig;
use crate::direct::direct_snapshot;
use crate::error::RepoError;
use crate::keys::SigningKey;
use crate::layout;
use crate::plan::Plan;
use crate::store::{RoleState, StateStore};

/// Bins built (and signed) at once: bounds memory on bulk publishes.
const CHUNK: usize = 1024;

/// One bin of a plan, with everything needed to build it off the store's thread.
struct BinJob {
    name: String,
    index: u64,
    state: RoleState,
    path: PathBuf,
    staged: Option<PathBuf>,
    staged_count: Option<u64>,
    previous: Option<PathBuf>,
    changes: Vec<Change>,
}

/// What became of one bin.
enum BinDone {
    /// Already in place (a replayed plan) or staged: rename `from` → `to` (if `from` is set).
    Placed {
        index: u64,
        count: u64,
        rename: Option<(PathBuf, PathBuf)>,
    },
    /// Built now: write `bytes` to `path`.
    Built {
        index: u64,
        count: u64,
        path: PathBuf,
        bytes: Vec<u8>,
    },
}

/// The targets a published bin file lists.
pub(crate) fn read_bin_targets(path: &Path) -> Result<BTreeMap<String, TargetFile>, RepoError> {
    let bytes =
        std::fs::read(path).map_err(|e| RepoError::io(format!("reading {}", path.display()), e))?;
    let md = Metadata::from_bytes(&bytes).map_err(|source| RepoError::BadPublishedFile {
        path: path.to_path_buf(),
        source,
    })?;
    match md.signed.body {
        Body::Targets(t) => Ok(t.targets),
        _ => Err(RepoError::WrongMetadataType {
            file: path.display().to_string(),
            expected: "targets",
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
    /// `DIR/metadata`.
    pub meta_dir: PathBuf,
    /// `DIR/staging`: where a bulk import wrote its bins ahead of the plan.
    pub staging: PathBuf,
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
    pub fn finish(self, plan: &Plan) -> Result<(), RepoError> {
        let online = self.online;
        let meta_dir = &self.meta_dir;
        let staging = &self.staging;
        let published = self.store.bin_counts()?;
        let bins = plan.bins(self.config);
        let mut counts = Vec::with_capacity(bins.len());
        for chunk in bins.chunks(CHUNK) {
            let mut jobs = Vec::with_capacity(chunk.len());
            for (name, index) in chunk {
                let state = self.state(name)?;
                let file = |v: u64| format!("{v}.{name}.json");
                // The previous version is read only if it lists targets.
                let previous = (published.get(index).copied().unwrap_or(0) > 0
                    && state.version > 1)
                    .then(|| meta_dir.join(file(state.version - 1)));
                jobs.push(BinJob {
                    name: name.clone(),
                    index: *index,
                    state,
                    path: meta_dir.join(file(state.version)),
                    staged: plan.staged.then(|| staging.join(file(state.version))),
                    staged_count: plan.counts.get(name).copied(),
                    previous,
                    changes: if plan.upto > 0 {
                        self.store.changes_in_bin(*index, plan.upto)?
                    } else {
                        Vec::new()
                    },
                });
            }
            let done: Vec<BinDone> = jobs
                .into_par_iter()
                .map(|job| build(job, online))
                .collect::<Result<_, RepoError>>()?;
            let mut files = Vec::new();
            let mut renamed = false;
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
                            renamed = true;
                        }
                        counts.push((index, count));
                    }
                    BinDone::Built {
                        index,
                        count,
                        path,
                        bytes,
                    } => {
                        files.push((path, bytes));
                        counts.push((index, count));
                    }
                }
            }
            if renamed {
                tufpi_fs::sync_dir(meta_dir)?;
            }
            if files.len() > 8 {
                write_many_once(files)?;
            } else {
                for (path, bytes) in files {
                    write_once(&path, bytes)?;
                }
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
            write_once(
                &meta_dir.join(format!("{}.targets.json", st.version)),
                online.sign(t)?.to_compact_bytes(),
            )?;
        }
        if plan.writes("snapshot") {
            let st = self.state("snapshot")?;
            let bytes = match direct_snapshot(self.roles, st.version, st.expiry(), online)? {
                Some(b) => b,
                None => online
                    .sign(layout::build_snapshot(self.roles, st.version, st.expiry()))?
                    .to_compact_bytes(),
            };
            let bytes = write_once(
                &meta_dir.join(format!("{}.snapshot.json", st.version)),
                bytes,
            )?;
            let ts_st = self.state("timestamp")?;
            let mut meta = MetaFile::new(st.version);
            meta.length = Some(bytes.len() as u64);
            meta.hashes = Some(BTreeMap::from([(
                "sha256".to_string(),
                hashes::digest_hex("sha256", &bytes).unwrap_or_default(),
            )]));
            let md = online.sign(layout::build_timestamp(meta, ts_st.version, ts_st.expiry()))?;
            write_atomic(&meta_dir.join("timestamp.json"), &md.to_compact_bytes())?;
        }
        self.store.clear_plan(plan.upto, &counts)?;
        if plan.staged {
            let _ = std::fs::remove_dir_all(staging);
        }
        Ok(())
    }
}

/// Place or build one bin of a plan.
fn build(job: BinJob, online: &SigningKey) -> Result<BinDone, RepoError> {
    if let (Some(staged), Some(count)) = (&job.staged, job.staged_count) {
        if job.path.exists() {
            return Ok(BinDone::Placed {
                index: job.index,
                count,
                rename: None,
            });
        }
        if staged.exists() {
            return Ok(BinDone::Placed {
                index: job.index,
                count,
                rename: Some((staged.clone(), job.path)),
            });
        }
        // Only if someone removed the staging directory: publish what the store knows.
        warn!(bin = %job.name, "staged file missing; re-signing the bin's current targets");
    }
    let mut targets = match &job.previous {
        Some(p) => read_bin_targets(p)?,
        None => BTreeMap::new(),
    };
    apply(&mut targets, job.changes);
    let count = targets.len() as u64;
    let md = online.sign(layout::bin_of_targets(
        targets,
        job.state.version,
        job.state.expiry(),
    ))?;
    Ok(BinDone::Built {
        index: job.index,
        count,
        path: job.path,
        bytes: md.to_compact_bytes(),
    })
}
