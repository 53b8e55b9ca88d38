//! Making a repository: a development one (every key generated here, everything published at
//! once) or a production one (only the online key here; unsigned version 1 of the offline
//! roles written out for their key holders to sign in a ceremony).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use rayon::prelude::*;
use tracing::info;
use tufpi_core::crypto::Scheme;
use tufpi_core::metadata::{Key, Metadata};

use crate::config::RepoConfig;
use crate::error::RepoError;
use crate::keys;
use crate::layout::{self, TopKeys};
use crate::plan::Plan;
use crate::repo::Repository;
use crate::store::{RoleState, SqliteStore, StateStore};

/// Public keys and thresholds of the offline roles, for [`Repository::init_ceremony`].
pub struct OfflineKeys {
    /// (keyid, key) of each root key holder.
    pub root: Vec<(String, Key)>,
    /// Root threshold.
    pub root_threshold: u64,
    /// Targets keys.
    pub targets: Vec<(String, Key)>,
    /// Targets threshold.
    pub targets_threshold: u64,
    /// Bins keys.
    pub bins: Vec<(String, Key)>,
    /// Bins threshold.
    pub bins_threshold: u64,
}

/// Refuse to make a repository where there is one.
fn refuse_existing(dir: &Path) -> Result<(), RepoError> {
    if dir.join("state.db").exists() {
        return Err(RepoError::AlreadyInitialised {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Store `config`. A repository without its settings does not open: they go in last when
/// anything could be left half made.
fn write_settings(store: &mut SqliteStore, config: &RepoConfig) -> Result<(), RepoError> {
    for (k, v) in config.to_settings() {
        store.set_setting(k, &v)?;
    }
    Ok(())
}

impl Repository {
    /// Create a development repository: every key generated into `DIR/keys` (root threshold
    /// 1), all metadata published. Not for production: offline keys sit next to the data.
    pub fn init_dev(dir: &Path, config: RepoConfig) -> Result<Repository, RepoError> {
        refuse_existing(dir)?;
        if !(1..=32).contains(&config.bit_length) {
            return Err(RepoError::BadBitLength {
                got: config.bit_length,
            });
        }
        std::fs::create_dir_all(dir.join("metadata"))
            .map_err(|e| RepoError::io("creating metadata dir", e))?;
        let root = keys::generate(dir, "root", Scheme::Ed25519)?;
        let targets = keys::generate(dir, "targets", Scheme::Ed25519)?;
        let bins = keys::generate(dir, "bins", Scheme::Ed25519)?;
        let online = keys::generate(dir, "online", Scheme::Ed25519)?;
        let mut store = SqliteStore::open(&dir.join("state.db"))?;
        let now = Utc::now();
        let top = TopKeys {
            root: (vec![root.entry()], 1),
            targets: (
                vec![if config.targets_online {
                    online.entry()
                } else {
                    targets.entry()
                }],
                1,
            ),
            online: online.entry(),
        };
        let meta_dir = dir.join("metadata");
        // Everything but snapshot and timestamp is written here, then adopted by the plan
        // that publishes those two.
        let mut plan = Plan::new();

        // Bins first (TAP 15: all of them, before the metadata delegating to them), their
        // expiries staggered over a second day in up to 256 steps so they do not all expire
        // together. An empty bin's metadata does not name the bin, so the bins of one step
        // share one signed file: 256 signatures instead of 16,384.
        let n = config.bins();
        let steps = n.min(256);
        let stagger = config.online_expiry.num_seconds().max(1) as u64;
        let base = RoleState::ts(now + config.online_expiry);
        let expiry_of = |step: u64| base + (step * stagger / steps) as i64;
        let signed_steps: Vec<Vec<u8>> = (0..steps)
            .into_par_iter()
            .map(|step| {
                let bin = layout::build_bin(Vec::new(), 1, RoleState::at(expiry_of(step)));
                Ok(online.sign(bin)?.to_compact_bytes())
            })
            .collect::<Result<_, RepoError>>()?;
        // The bins of a step are hard links to one file: 16,384 links cost a fraction of
        // 16,384 file writes. Files are never changed in place (new versions are new names,
        // GC unlinks), so sharing an inode is safe.
        let staging = dir.join("staging");
        std::fs::create_dir_all(&staging)
            .map_err(|e| RepoError::io(format!("creating {}", staging.display()), e))?;
        let step_files: Vec<PathBuf> = (0..steps)
            .map(|k| staging.join(format!("empty-bin-{k}.json")))
            .collect();
        tufpi_fs::write_many_once(
            step_files
                .iter()
                .cloned()
                .zip(signed_steps.iter().cloned())
                .collect(),
        )?;
        let mut links = Vec::with_capacity(n as usize);
        let mut files = Vec::with_capacity(3);
        for i in 0..n {
            let step = i * steps / n;
            let name = layout::bin_name(&config, i);
            links.push((
                step_files[step as usize].clone(),
                meta_dir.join(format!("1.{name}.json")),
            ));
            plan.adopt(
                name,
                RoleState {
                    version: 1,
                    expires: expiry_of(step),
                },
            );
        }
        let offline_exp = now + config.offline_expiry;
        if !config.targets_online {
            let md = bins.sign(layout::build_bins(&config, &online.entry(), 1, offline_exp))?;
            files.push((meta_dir.join("1.bins.json"), md.to_compact_bytes()));
            plan.adopt("bins", RoleState::new(1, offline_exp));
        }
        let targets_signer = if config.targets_online {
            &online
        } else {
            &targets
        };
        let targets_md =
            layout::build_targets(&config, &[bins.entry()], 1, &online.entry(), 1, offline_exp);
        files.push((
            meta_dir.join("1.targets.json"),
            targets_signer.sign(targets_md)?.to_compact_bytes(),
        ));
        plan.adopt("targets", RoleState::new(1, offline_exp));
        let root_exp = now + config.root_expiry;
        files.push((
            meta_dir.join("1.root.json"),
            root.sign(layout::build_root(&top, 1, root_exp))?.to_bytes(),
        ));
        plan.adopt("root", RoleState::new(1, root_exp));
        links.par_iter().try_for_each(|(from, to)| {
            std::fs::hard_link(from, to)
                .map_err(|e| RepoError::io(format!("linking {}", to.display()), e))
        })?;
        let _ = std::fs::remove_dir_all(&staging);
        tufpi_fs::write_many_once(files)?;

        plan.add_snapshot_and_timestamp(
            &BTreeMap::new(),
            RoleState::ts(now + config.online_expiry),
        );
        write_settings(&mut store, &config)?;
        let mut repo = Repository::from_parts(dir, config, store, BTreeMap::new(), Some(online));
        repo.record(&plan)?;
        repo.lock()?;
        repo.finish_plan()?;
        info!(bins = n, "repository initialised with development keys");
        Ok(repo)
    }

    /// Start a production repository: generate only the online key (DIR/keys/online.pem) and
    /// write unsigned version 1 of root, targets and bins to DIR/ceremony/ for the offline key
    /// holders to sign. Publishing them (`publish_offline`) publishes everything else.
    pub fn init_ceremony(
        dir: &Path,
        config: RepoConfig,
        keys: &OfflineKeys,
    ) -> Result<Vec<PathBuf>, RepoError> {
        refuse_existing(dir)?;
        let checks = [
            ("root", &keys.root, keys.root_threshold),
            ("targets", &keys.targets, keys.targets_threshold),
            ("bins", &keys.bins, keys.bins_threshold),
        ];
        for (role, list, t) in checks {
            if role != "root" && config.targets_online {
                continue;
            }
            if list.is_empty() || t == 0 || t as usize > list.len() {
                return Err(RepoError::BadThreshold {
                    role: role.to_string(),
                    threshold: t,
                    keys: list.len(),
                });
            }
        }
        std::fs::create_dir_all(dir.join("metadata"))
            .map_err(|e| RepoError::io("creating metadata dir", e))?;
        let cer = dir.join("ceremony");
        std::fs::create_dir_all(&cer).map_err(|e| RepoError::io("creating ceremony dir", e))?;
        let online = keys::generate(dir, "online", Scheme::Ed25519)?;
        write_settings(&mut SqliteStore::open(&dir.join("state.db"))?, &config)?;
        let now = Utc::now();
        let top = TopKeys {
            root: (keys.root.clone(), keys.root_threshold),
            targets: if config.targets_online {
                (vec![online.entry()], 1)
            } else {
                (keys.targets.clone(), keys.targets_threshold)
            },
            online: online.entry(),
        };
        let mut out = Vec::new();
        let mut write = |name: &str, signed| -> Result<(), RepoError> {
            let path = cer.join(format!("1.{name}.json"));
            tufpi_fs::write_atomic(&path, &Metadata::new(signed).to_bytes())?;
            out.push(path);
            Ok(())
        };
        write(
            "root",
            layout::build_root(&top, 1, now + config.root_expiry),
        )?;
        if !config.targets_online {
            let exp = now + config.offline_expiry;
            write(
                "targets",
                layout::build_targets(
                    &config,
                    &keys.bins,
                    keys.bins_threshold,
                    &online.entry(),
                    1,
                    exp,
                ),
            )?;
            write("bins", layout::build_bins(&config, &online.entry(), 1, exp))?;
        }
        Ok(out)
    }
}
