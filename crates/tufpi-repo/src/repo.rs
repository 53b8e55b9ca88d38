//! A repository on disk: `DIR/state.db` (the state store), `DIR/keys/` (signing keys),
//! `DIR/metadata/` (published metadata, ready to serve as files).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use fs4::fs_std::FileExt;
use rayon::prelude::*;
use tracing::{info, warn};
use tufpi_core::crypto::Scheme;
use tufpi_core::metadata::{Metadata, Signed};

use crate::config::RepoConfig;
use crate::error::RepoError;
use crate::keys::{self, SigningKey};
use crate::layout::{self, TopKeys};
use crate::publisher::Plan;
use crate::store::{Change, RoleState, SqliteStore, StateStore};

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
    pub(crate) dir: PathBuf,
    pub(crate) config: RepoConfig,
    pub(crate) store: SqliteStore,
    pub(crate) roles: BTreeMap<String, RoleState>,
    pub(crate) online: Option<SigningKey>,
    _lock: Option<LockFile>,
}

/// The publisher lock's file in a repository directory.
const LOCK_FILE: &str = "publisher.lock";

/// Who holds a repository's publisher lock, as the holder wrote it in the lock file. The
/// `flock` on the file is the lock; this is only for saying who has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's process id; `None` if it has not written it yet (or the file names a
    /// process that no longer runs: written by a holder killed before it could clear it).
    pub pid: Option<u32>,
    /// What holds it: given to [`Repository::lock_as`] (e.g. `tufpi serve`), or the
    /// program and its subcommands. Empty if unknown.
    pub what: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "PID {pid}")?,
            None => write!(f, "another process")?,
        }
        if !self.what.is_empty() {
            write!(f, " ({})", self.what)?;
        }
        Ok(())
    }
}

/// The holder of the publisher lock of the repository in `dir`; `None` if nobody holds it.
/// Probing takes a shared lock for an instant: a publisher locking at that very instant is
/// refused as if the lock were held (it queues; the holder publishes).
pub fn lock_holder(dir: &Path) -> Option<LockHolder> {
    let path = dir.join(LOCK_FILE);
    let f = File::open(&path).ok()?;
    if FileExt::try_lock_shared(&f).unwrap_or(false) {
        return None; // released when `f` closes
    }
    Some(read_lock_holder(&path))
}

/// What the lock file at `path` says about its holder.
fn read_lock_holder(path: &Path) -> LockHolder {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().next().unwrap_or("");
    let (pid, what) = line.split_once(' ').unwrap_or((line, ""));
    match pid.parse::<u32>().ok().filter(|&p| process_alive(p)) {
        Some(pid) => LockHolder {
            pid: Some(pid),
            what: what.trim().to_string(),
        },
        None => LockHolder {
            pid: None,
            what: String::new(),
        },
    }
}

/// Whether a process `pid` exists (signal 0 checks without sending anything).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: kill with signal 0 sends nothing; it only reports whether `pid` exists.
        let sent = unsafe { libc::kill(pid, 0) } == 0;
        sent || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// This program and up to two subcommands (`tufpi repo publish`): what holds a lock taken
/// by [`Repository::lock`]. Options and what follows them are left out (they may be secret).
fn this_program() -> String {
    let mut args = std::env::args();
    let mut words: Vec<String> = args
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(a)
        })
        .into_iter()
        .collect();
    words.extend(
        args.take_while(|a| !a.starts_with('-'))
            .take(2)
            .filter(|a| a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')),
    );
    words.join(" ")
}

/// The held lock file. Its holder line is cleared on release, so only a killed holder leaves
/// one behind (and [`read_lock_holder`] checks that the process still runs).
struct LockFile(File);

impl LockFile {
    /// Write `PID WHAT` into the lock file (informational: failures are only logged).
    fn record(&self, what: &str) {
        use std::io::{Seek, SeekFrom, Write};
        let line = format!(
            "{} {}\n",
            std::process::id(),
            what.replace(['\r', '\n'], " ")
        );
        let mut f = &self.0;
        let written = f
            .set_len(0)
            .and_then(|()| f.seek(SeekFrom::Start(0)))
            .and_then(|_| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            warn!("writing the publisher lock's holder: {e}");
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}

pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Repository {
    /// The metadata directory.
    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// The layout options.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Role versions and expiries as recorded.
    pub fn role_states(&self) -> &BTreeMap<String, RoleState> {
        &self.roles
    }

    /// Open an existing repository (no lock: enough to queue changes and read status).
    pub fn open(dir: &Path) -> Result<Repository, RepoError> {
        let db = dir.join("state.db");
        if !db.exists() {
            return Err(RepoError::State(format!(
                "{} is not a tufpi repository (no state.db)",
                dir.display()
            )));
        }
        let store = SqliteStore::open(&db)?;
        let config = RepoConfig::from_settings(|k| store.get_setting(k).ok().flatten())
            .ok_or_else(|| {
                RepoError::State(
                    "repository settings missing: initialisation did not finish".into(),
                )
            })?;
        let roles = store.roles()?;
        let online = keys::load(dir, "online")?;
        let mut store = store;
        store.fill_missing_bins(&|p| layout::bin_of(&config, p))?;
        Ok(Repository {
            dir: dir.to_path_buf(),
            config,
            store,
            roles,
            online,
            _lock: None,
        })
    }

    /// Take the publisher lock: one writer per repository. The OS drops it when the holder
    /// dies, so a crashed publisher cannot keep it. The lock file names the holder (this
    /// process's PID and program, see [`lock_holder`]); a refusal names the process holding it.
    pub fn lock(&mut self) -> Result<(), RepoError> {
        if self._lock.is_some() {
            return Ok(());
        }
        self.lock_as(&this_program())
    }

    /// [`Repository::lock`], recording `what` (e.g. `tufpi serve`) as the holder. If the
    /// lock is held already, only the record changes.
    pub fn lock_as(&mut self, what: &str) -> Result<(), RepoError> {
        if let Some(lock) = &self._lock {
            lock.record(what);
            return Ok(());
        }
        let path = self.dir.join(LOCK_FILE);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| RepoError::io(format!("opening {}", path.display()), e))?;
        if !f.try_lock_exclusive().unwrap_or(false) {
            let holder = read_lock_holder(&path);
            return Err(RepoError::Locked(
                match (holder.pid, holder.what.as_str()) {
                    (Some(pid), "") => format!("{} (PID {pid})", path.display()),
                    (Some(pid), what) => format!("{} (PID {pid}: {what})", path.display()),
                    (None, _) => path.display().to_string(),
                },
            ));
        }
        let f = LockFile(f);
        f.record(what);
        // Another publisher may have published since this handle was opened: plan from the
        // versions recorded now, not those read at open (stale ones would reuse version names),
        // and with the online key installed now (it may have been rotated).
        self.roles = self.store.roles()?;
        keys::settle_next_online(&self.dir, self.store.plan()?.is_some())?;
        self.online = keys::load(&self.dir, "online")?;
        // Temp files of a publisher killed mid-write would otherwise pile up.
        tufpi_fs::remove_stale_temps(&self.metadata_dir())?;
        if self.store.plan()?.is_none() {
            // An import killed before recording its plan: its staged files name nothing.
            let _ = std::fs::remove_dir_all(self.staging_dir());
        }
        self._lock = Some(f);
        Ok(())
    }

    /// The holder of this repository's publisher lock (see [`lock_holder`]).
    pub fn lock_holder(&self) -> Option<LockHolder> {
        lock_holder(&self.dir)
    }

    /// Create a development repository: every key generated into `DIR/keys` (root threshold
    /// 1), all metadata published. Not for production: offline keys sit next to the data.
    pub fn init_dev(dir: &Path, config: RepoConfig) -> Result<Repository, RepoError> {
        if dir.join("state.db").exists() {
            return Err(RepoError::State(format!(
                "{} already holds a repository",
                dir.display()
            )));
        }
        if !(1..=32).contains(&config.bit_length) {
            return Err(RepoError::Invalid(format!(
                "bins bit length must be 1..=32, got {}",
                config.bit_length
            )));
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
        let mut roles = BTreeMap::new();

        // Bins first (TAP 15: all of them, before the metadata delegating to them), their
        // expiries staggered over a second day in up to 256 steps so they do not all expire
        // together. An empty bin's metadata does not name the bin, so the bins of one step
        // share one signed file: 256 signatures instead of 16,384.
        let n = config.bins();
        let steps = n.min(256);
        let stagger = config.online_expiry.num_seconds().max(1) as u64;
        let base = ts(now + config.online_expiry);
        let expiry_of = |step: u64| base + (step * stagger / steps) as i64;
        let signed_steps: Vec<Vec<u8>> = (0..steps)
            .into_par_iter()
            .map(|step| {
                Ok(sign(
                    layout::build_bin(Vec::new(), 1, at(expiry_of(step))),
                    &online,
                )?
                .to_compact_bytes())
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
            roles.insert(
                name,
                RoleState {
                    version: 1,
                    expires: expiry_of(step),
                },
            );
        }
        let offline_exp = now + config.offline_expiry;
        if !config.targets_online {
            let md = sign(
                layout::build_bins(&config, &online.entry(), 1, offline_exp),
                &bins,
            )?;
            files.push((meta_dir.join("1.bins.json"), md.to_compact_bytes()));
            roles.insert(
                "bins".into(),
                RoleState {
                    version: 1,
                    expires: ts(offline_exp),
                },
            );
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
            sign(targets_md, targets_signer)?.to_compact_bytes(),
        ));
        roles.insert(
            "targets".into(),
            RoleState {
                version: 1,
                expires: ts(offline_exp),
            },
        );
        let root_exp = now + config.root_expiry;
        files.push((
            meta_dir.join("1.root.json"),
            sign(layout::build_root(&top, 1, root_exp), &root)?.to_bytes(),
        ));
        roles.insert(
            "root".into(),
            RoleState {
                version: 1,
                expires: ts(root_exp),
            },
        );
        links.par_iter().try_for_each(|(from, to)| {
            std::fs::hard_link(from, to)
                .map_err(|e| RepoError::io(format!("linking {}", to.display()), e))
        })?;
        let _ = std::fs::remove_dir_all(&staging);
        tufpi_fs::write_many_once(files)?;

        let online_exp = ts(now + config.online_expiry);
        roles.insert(
            "snapshot".into(),
            RoleState {
                version: 1,
                expires: online_exp,
            },
        );
        roles.insert(
            "timestamp".into(),
            RoleState {
                version: 1,
                expires: online_exp,
            },
        );
        for (k, v) in config.to_settings() {
            store.set_setting(k, &v)?;
        }
        let role_list: Vec<(String, RoleState)> =
            roles.iter().map(|(k, v)| (k.clone(), *v)).collect();
        store.record_plan(
            &role_list,
            &Plan::of(vec!["snapshot".into(), "timestamp".into()]).text(),
        )?;
        let mut repo = Repository {
            dir: dir.to_path_buf(),
            config,
            store,
            roles,
            online: Some(online),
            _lock: None,
        };
        repo.lock()?;
        repo.finish_plan()?;
        info!(bins = n, "repository initialised with development keys");
        Ok(repo)
    }

    /// Durably queue changes (acknowledged once this returns).
    pub fn enqueue(&mut self, changes: &[Change]) -> Result<u64, RepoError> {
        let cfg = &self.config;
        let checked = changes
            .iter()
            .map(|c| validate(cfg, c.clone()))
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
        let mut checked = changes
            .map(|c| c.and_then(|c| validate(cfg, c).map(|c| (layout::bin_of(cfg, c.path()), c))));
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
            let (changes, bins) = self.plan_batch(batch.max(1))?;
            if changes == 0 {
                break;
            }
            report.changes += changes;
            report.bins += bins;
            self.finish_plan()?;
        }
        report.snapshot_version = self.version("snapshot");
        report.timestamp_version = self.version("timestamp");
        Ok(report)
    }

    fn version(&self, role: &str) -> u64 {
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
        let exp = ts(Utc::now() + config.online_expiry);
        let mut planned: Vec<(String, RoleState)> = Vec::new();
        let (last, taken) = store.plan_batch(limit, &mut |touched, last| {
            planned.clear();
            let mut names = Vec::with_capacity(touched.len() + 2);
            for &b in touched {
                names.push(layout::bin_name(config, b));
            }
            names.push("snapshot".into());
            names.push("timestamp".into());
            for name in &names {
                let v = roles.get(name).map(|r| r.version).unwrap_or(0) + 1;
                planned.push((
                    name.clone(),
                    RoleState {
                        version: v,
                        expires: exp,
                    },
                ));
            }
            let plan = Plan {
                roles: names,
                upto: last,
                ..Plan::default()
            };
            Ok((planned.clone(), plan.text()))
        })?;
        if last == 0 {
            return Ok((0, 0));
        }
        let bins = planned.len().saturating_sub(2);
        for (name, st) in planned {
            roles.insert(name, st);
        }
        Ok((taken, bins))
    }

    /// Re-sign online roles expiring within `margin` (bins, then snapshot and timestamp).
    /// Returns how many bins were re-signed. Also warns about offline roles near expiry.
    pub fn refresh(&mut self, margin: Duration) -> Result<usize, RepoError> {
        self.lock()?;
        self.finish_plan()?;
        let now = Utc::now();
        let limit = ts(now + margin);
        let exp = ts(now + self.config.online_expiry);
        let mut planned = Vec::new();
        let mut names = Vec::new();
        for (name, st) in &self.roles {
            if succinct_index(&self.config, name).is_some() && st.expires <= limit {
                planned.push((
                    name.clone(),
                    RoleState {
                        version: st.version + 1,
                        expires: exp,
                    },
                ));
                names.push(name.clone());
            }
        }
        let bins = names.len();
        // With targets online, targets is the publisher's to re-sign too (no one else can).
        let targets_due = self.config.targets_online
            && self
                .roles
                .get("targets")
                .is_some_and(|s| s.expires <= limit);
        if targets_due {
            planned.push((
                "targets".to_string(),
                RoleState {
                    version: self.version("targets") + 1,
                    expires: ts(now + self.config.offline_expiry),
                },
            ));
            names.push("targets".to_string());
        }
        let snapshot_due = self
            .roles
            .get("snapshot")
            .is_some_and(|s| s.expires <= limit);
        let timestamp_due = self
            .roles
            .get("timestamp")
            .is_some_and(|s| s.expires <= limit);
        if bins == 0 && !targets_due && !snapshot_due && !timestamp_due {
            return Ok(0);
        }
        self.run_plan(planned, names, exp)?;
        for w in self.warnings(Duration::days(30)) {
            warn!("{w}");
        }
        Ok(bins)
    }

    /// Add new snapshot and timestamp versions (expiring at `exp`) to a plan, record it,
    /// adopt its role states, and publish it.
    pub(crate) fn run_plan(
        &mut self,
        planned: Vec<(String, RoleState)>,
        names: Vec<String>,
        exp: i64,
    ) -> Result<(), RepoError> {
        self.record(planned, names, exp)?;
        self.finish_plan()
    }

    /// Add new snapshot and timestamp versions to a plan, record it and adopt its role states.
    pub(crate) fn record(
        &mut self,
        mut planned: Vec<(String, RoleState)>,
        mut names: Vec<String>,
        exp: i64,
    ) -> Result<(), RepoError> {
        for r in ["snapshot", "timestamp"] {
            planned.push((
                r.to_string(),
                RoleState {
                    version: self.version(r) + 1,
                    expires: exp,
                },
            ));
            names.push(r.to_string());
        }
        self.record_plan(planned, &Plan::of(names))
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
            let exp = at(st.expires);
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
            .filter(|(n, s)| succinct_index(&self.config, n).is_some() && at(s.expires) <= now)
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
        crate::gc::gc(&self.metadata_dir(), retention)
    }

    /// Read published metadata `name` at `version` (or `timestamp.json` when `None`).
    pub fn read_metadata(&self, name: &str, version: Option<u64>) -> Result<Metadata, RepoError> {
        let file = match version {
            Some(v) => format!("{v}.{name}.json"),
            None => format!("{name}.json"),
        };
        let path = self.metadata_dir().join(file);
        let bytes = std::fs::read(&path)
            .map_err(|e| RepoError::io(format!("reading {}", path.display()), e))?;
        Ok(Metadata::from_bytes(&bytes)?)
    }
}

pub(crate) fn sign(signed: Signed, key: &SigningKey) -> Result<Metadata, RepoError> {
    let mut md = Metadata::new(signed);
    md.sign(&key.private, &key.keyid)?;
    Ok(md)
}

/// The bin index named by `name`, if it is one of this repository's bins.
pub fn succinct_index(cfg: &RepoConfig, name: &str) -> Option<u64> {
    layout::succinct(cfg, &[]).index_of(name)
}

/// A change as the repository will queue it: a relative path without empty, `.` or `..`
/// segments; an addition lists exactly the configured target hashes (see [`TargetHashes`]).
///
/// [`TargetHashes`]: crate::TargetHashes
pub(crate) fn validate(cfg: &RepoConfig, c: Change) -> Result<Change, RepoError> {
    let path = c.path();
    let bad_segment = |seg: &[u8]| seg.is_empty() || seg == b"." || seg == b"..";
    if path.is_empty() || path.as_bytes().split(|&b| b == b'/').any(bad_segment) {
        return Err(RepoError::Invalid(format!(
            "target path {path:?} must be relative, without empty, . or .. segments"
        )));
    }
    Ok(match c {
        Change::Add(mut t) => {
            t.hashes = cfg.target_hashes.select(&t.path, &t.hashes)?;
            Change::Add(t)
        }
        remove => remove,
    })
}
