//! Making a repository: a development one (every key generated here, everything published at
//! once) or a production one (only the online key here; unsigned version 1 of the offline
//! roles written out for their key holders to sign in a ceremony).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use tracing::info;
use tufpi_blob::Bytes;
use tufpi_core::crypto::Scheme;
use tufpi_core::metadata::{Key, Metadata};

use crate::backend::{local_dir, Backend};
use crate::config::{ExpiryRole, RepoConfig};
use crate::error::RepoError;
use crate::keys::{self, SigningKey};
use crate::layout::{self, TopKeys, TIMESTAMP_FILE};
use crate::plan::Plan;
use crate::repo::Repository;
use crate::store::{RoleState, StateStore};

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

/// Refuse to make a repository in a backend whose state store holds one (settings or roles),
/// or whose metadata store holds another's metadata (create-only writes would keep its files).
fn refuse_existing_in(backend: &Backend) -> Result<(), RepoError> {
    let state = &backend.state;
    let settings = RepoConfig::from_settings(|k| state.get_setting(k).ok().flatten()).is_some();
    let mut published = false;
    for key in ["1.root.json", TIMESTAMP_FILE] {
        published = published || backend.metadata.head(key)?.is_some();
    }
    if settings || published || !state.roles()?.is_empty() {
        return Err(RepoError::AlreadyInitialised {
            dir: PathBuf::from(backend.metadata.describe()),
        });
    }
    Ok(())
}

/// `DIR/metadata` (and `DIR`), before the state store is made in `DIR`.
fn make_metadata_dir(dir: &Path) -> Result<(), RepoError> {
    std::fs::create_dir_all(dir.join("metadata"))
        .map_err(|e| RepoError::io("creating metadata dir", e))
}

fn check_bit_length(config: &RepoConfig) -> Result<(), RepoError> {
    if !(1..=32).contains(&config.bit_length) {
        return Err(RepoError::BadBitLength {
            got: config.bit_length,
        });
    }
    Ok(())
}

/// Every offline role must have keys and a threshold they can meet.
fn check_offline_keys(config: &RepoConfig, keys: &OfflineKeys) -> Result<(), RepoError> {
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
    Ok(())
}

/// Store `config`. A repository without its settings does not open: they go in last when
/// anything could be left half made.
fn write_settings(store: &mut dyn StateStore, config: &RepoConfig) -> Result<(), RepoError> {
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
        check_bit_length(&config)?;
        make_metadata_dir(dir)?;
        Repository::init_dev_with(Backend::embedded(dir)?, config)
    }

    /// [`Repository::init_dev`] over `backend`: keys generated into its keys directory.
    pub fn init_dev_with(backend: Backend, config: RepoConfig) -> Result<Repository, RepoError> {
        refuse_existing_in(&backend)?;
        check_bit_length(&config)?;
        let kd = backend.keys_dir.clone();
        let root = keys::generate_in(&kd, "root", Scheme::Ed25519)?;
        let targets = keys::generate_in(&kd, "targets", Scheme::Ed25519)?;
        let bins = keys::generate_in(&kd, "bins", Scheme::Ed25519)?;
        let online = keys::generate_in(&kd, "online", Scheme::Ed25519)?;
        let meta = backend.metadata.clone();
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
        // Everything but snapshot and timestamp is written here, then adopted by the plan
        // that publishes those two.
        let mut plan = Plan::new();

        write_empty_bins(&config, &online, &*meta, &mut plan, now)?;
        let mut files = Vec::with_capacity(3);
        let offline_exp = now + config.expiry(ExpiryRole::Targets);
        if !config.targets_online {
            let bins_exp = now + config.expiry(ExpiryRole::Bins);
            let md = bins.sign(layout::build_bins(&config, &online.entry(), 1, bins_exp))?;
            files.push(("1.bins.json".to_string(), md.to_compact_bytes().into()));
            plan.adopt("bins", RoleState::new(1, bins_exp));
        }
        let targets_signer = if config.targets_online {
            &online
        } else {
            &targets
        };
        let targets_md =
            layout::build_targets(&config, &[bins.entry()], 1, &online.entry(), 1, offline_exp);
        files.push((
            "1.targets.json".to_string(),
            targets_signer.sign(targets_md)?.to_compact_bytes().into(),
        ));
        plan.adopt("targets", RoleState::new(1, offline_exp));
        let root_exp = now + config.expiry(ExpiryRole::Root);
        files.push((
            "1.root.json".to_string(),
            root.sign(layout::build_root(&top, 1, root_exp))?
                .to_bytes()
                .into(),
        ));
        plan.adopt("root", RoleState::new(1, root_exp));
        meta.put_many_new(files)?;

        finish_init(backend, config, online, plan, now, "with development keys")
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
        check_offline_keys(&config, keys)?;
        make_metadata_dir(dir)?;
        Repository::init_ceremony_with(Backend::embedded(dir)?, config, keys, &dir.join("ceremony"))
    }

    /// [`Repository::init_ceremony`] over `backend`: the online key goes into its keys
    /// directory, the unsigned files into `out_dir`.
    pub fn init_ceremony_with(
        backend: Backend,
        config: RepoConfig,
        keys: &OfflineKeys,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, RepoError> {
        refuse_existing_in(&backend)?;
        check_offline_keys(&config, keys)?;
        std::fs::create_dir_all(out_dir).map_err(|e| RepoError::io("creating ceremony dir", e))?;
        let online = keys::generate_in(&backend.keys_dir, "online", Scheme::Ed25519)?;
        let mut backend = backend;
        write_settings(&mut *backend.state, &config)?;
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
            let path = out_dir.join(format!("1.{name}.json"));
            tufpi_fs::write_atomic(&path, &Metadata::new(signed).to_bytes())?;
            out.push(path);
            Ok(())
        };
        write(
            "root",
            layout::build_root(&top, 1, now + config.expiry(ExpiryRole::Root)),
        )?;
        if !config.targets_online {
            write(
                "targets",
                layout::build_targets(
                    &config,
                    &keys.bins,
                    keys.bins_threshold,
                    &online.entry(),
                    1,
                    now + config.expiry(ExpiryRole::Targets),
                ),
            )?;
            let bins_exp = now + config.expiry(ExpiryRole::Bins);
            write(
                "bins",
                layout::build_bins(&config, &online.entry(), 1, bins_exp),
            )?;
        }
        Ok(out)
    }
}

impl Repository {
    /// Start a repository from a root made and signed elsewhere (RSTUF's bootstrap ceremony):
    /// targets online (`config.targets_online`), `online` installed as the online key under
    /// the identity `root` gives it, then root v1, targets, every bin, snapshot and timestamp
    /// published in one plan. `root` must meet its own threshold and assign `online` to
    /// targets, snapshot and timestamp.
    pub fn init_with_root(
        backend: Backend,
        config: RepoConfig,
        root: Metadata,
        online: keys::SigningKey,
    ) -> Result<Repository, RepoError> {
        refuse_existing_in(&backend)?;
        check_bit_length(&config)?;
        if !config.targets_online {
            return Err(RepoError::FirstPublicationIncomplete {
                needed: &["root", "targets", "bins"],
            });
        }
        // Root meets its own threshold and trusts the online key for every online role.
        crate::ceremony::check(&root, "root", &root, &root)?;
        crate::rotate::check_online_trusted(&root, &online.keyid, true)?;
        if root.signed.version != 1 {
            return Err(RepoError::NotNextVersion {
                role: "root".into(),
                expected: 1,
                got: root.signed.version,
            });
        }
        keys::stage_next_online_key(&backend.keys_dir, &online)?;
        keys::install_next_online(&backend.keys_dir)?;
        let meta = backend.metadata.clone();
        let now = Utc::now();
        let mut plan = Plan::new();
        write_empty_bins(&config, &online, &*meta, &mut plan, now)?;
        let offline_exp = now + config.expiry(ExpiryRole::Targets);
        let targets_md = layout::build_targets(&config, &[], 1, &online.entry(), 1, offline_exp);
        let root_state = RoleState::new(1, root.signed.expires);
        meta.put_many_new(vec![
            (
                "1.targets.json".to_string(),
                online.sign(targets_md)?.to_compact_bytes().into(),
            ),
            ("1.root.json".to_string(), root.to_bytes().into()),
        ])?;
        plan.adopt("targets", RoleState::new(1, offline_exp));
        plan.adopt("root", root_state);
        finish_init(backend, config, online, plan, now, "from a given root")
    }
}

/// Every bin, empty, at version 1, written before the metadata delegating to them (TAP 15)
/// and adopted by `plan`. Their expiries are staggered ([`RepoConfig::staggered_bin_expiry`])
/// in up to 256 steps so they do not all expire together; an empty bin's metadata does not name
/// the bin, so the bins of one step share one signed file: 256 signatures instead of 16,384.
/// The end of every init that signs with the online key here: snapshot and timestamp join
/// the plan, the settings are stored, and the plan is recorded and published under the lock.
fn finish_init(
    mut backend: Backend,
    config: RepoConfig,
    online: SigningKey,
    mut plan: Plan,
    now: DateTime<Utc>,
    how: &str,
) -> Result<Repository, RepoError> {
    config.add_snapshot_and_timestamp(&mut plan, &BTreeMap::new(), now);
    write_settings(&mut *backend.state, &config)?;
    let mut repo = Repository::from_backend(backend, config, BTreeMap::new(), Some(online));
    repo.record(&plan)?;
    repo.lock()?;
    repo.finish_plan()?;
    info!(bins = repo.config.bins(), "repository initialised {how}");
    Ok(repo)
}

fn write_empty_bins(
    config: &RepoConfig,
    online: &keys::SigningKey,
    meta: &dyn tufpi_blob::BlobStore,
    plan: &mut Plan,
    now: chrono::DateTime<Utc>,
) -> Result<(), RepoError> {
    // Bins first (TAP 15: all of them, before the metadata delegating to them), their
    // expiries staggered in up to 256 steps as the policy staggers them. An empty bin's
    // metadata does not name the bin, so the bins of one step share one signed file: 256
    // signatures instead of 16,384.
    let n = config.bins();
    let steps = n.min(256);
    let expiry_of = |step: u64| config.staggered_bin_expiry(now, step, steps);
    let signed_steps: Vec<Bytes> = (0..steps)
        .into_par_iter()
        .map(|step| {
            let bin = layout::build_bin(Vec::new(), 1, RoleState::at(expiry_of(step)));
            Ok(Bytes::from(online.sign(bin)?.to_compact_bytes()))
        })
        .collect::<Result<_, RepoError>>()?;
    let mut bin_files = Vec::with_capacity(n as usize);
    for i in 0..n {
        let step = i * steps / n;
        let name = layout::bin_name(config, i);
        bin_files.push((step as usize, format!("1.{name}.json")));
        plan.adopt(
            name,
            RoleState {
                version: 1,
                expires: expiry_of(step),
            },
        );
    }
    match local_dir(meta) {
        Some(meta_dir) => link_bins(&meta_dir, &signed_steps, &bin_files)?,
        None => meta.put_many_new(
            bin_files
                .into_iter()
                .map(|(step, key)| (key, signed_steps[step].clone()))
                .collect(),
        )?,
    }
    Ok(())
}

/// Empty v1 bins on the local file system: the bins of a step are hard links to one file
/// (16,384 links cost a fraction of 16,384 file writes). Files are never changed in place
/// (new versions are new names, GC unlinks), so sharing an inode is safe. The step files
/// carry temp names: a crash leaves nothing the store lists, and the next lock removes them.
fn link_bins(
    meta_dir: &Path,
    signed_steps: &[Bytes],
    bin_files: &[(usize, String)],
) -> Result<(), RepoError> {
    // A scoped store's directory appears with its first object.
    tufpi_fs::ensure_dir(meta_dir)?;
    let pid = std::process::id();
    let step_files: Vec<PathBuf> = (0..signed_steps.len())
        .map(|k| meta_dir.join(format!(".empty-bin-{k}.json.{pid}.tmp")))
        .collect();
    for f in &step_files {
        // One left by a crashed process with this PID would be kept by a create-only write.
        let _ = std::fs::remove_file(f);
    }
    tufpi_fs::write_many_once(
        step_files
            .iter()
            .cloned()
            .zip(signed_steps.iter().map(|b| b.to_vec()))
            .collect(),
    )?;
    let linked = bin_files.par_iter().try_for_each(|(step, key)| {
        let to = meta_dir.join(key);
        std::fs::hard_link(&step_files[*step], &to)
            .map_err(|e| RepoError::io(format!("linking {}", to.display()), e))
    });
    for f in &step_files {
        let _ = std::fs::remove_file(f);
    }
    linked
}
