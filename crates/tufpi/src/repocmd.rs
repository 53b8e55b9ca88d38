//! `tufpi repo …`: create and run a PEP 458 repository.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::Duration;
use clap::Subcommand;
use tufpi_core::json::{self, Value};
use tufpi_repo::{
    BinsMode, Change, OfflineKeys, RepoConfig, RepoError, Repository, TargetHashes, TargetRecord,
};

use crate::args::{RepoDir, Span, Threshold};
use crate::deploy::Access;

/// Repository subcommands.
#[derive(Subcommand)]
pub enum RepoCmd {
    /// Create a repository in DIR.
    Init {
        #[command(flatten)]
        repo: RepoDir,
        /// Generate every key into DIR/keys (development and tests only: NOT for production).
        #[arg(long)]
        dev_keys: bool,
        /// 2^N bins (PEP 458: 14 → 16,384).
        #[arg(long, default_value_t = 14)]
        bins_bit_length: u32,
        /// Classic `path_hash_prefixes` bins instead of TAP 15 succinct roles.
        #[arg(long)]
        hash_prefix_bins: bool,
        #[arg(long, default_value_t = TargetHashes::default(), help = TARGET_HASHES_HELP)]
        target_hashes: TargetHashes,
        /// Opt-in: targets signed by the online key and delegating to the bins directly.
        #[arg(long)]
        targets_online: bool,
        /// Production: a root key holder's public key (`tufpi key generate --public-out`).
        #[arg(long = "root-key")]
        root_keys: Vec<PathBuf>,
        /// Production: a role's signature threshold, ROLE=N for root, targets or bins
        /// (repeatable; 1 unless given).
        #[arg(long = "threshold", value_name = "ROLE=N")]
        thresholds: Vec<Threshold>,
        #[arg(long, hide = true)]
        root_threshold: Option<u64>,
        /// Production: a targets key holder's public key.
        #[arg(long = "targets-key")]
        targets_keys: Vec<PathBuf>,
        #[arg(long, hide = true)]
        targets_threshold: Option<u64>,
        /// Production: a bins key holder's public key.
        #[arg(long = "bins-key")]
        bins_keys: Vec<PathBuf>,
        #[arg(long, hide = true)]
        bins_threshold: Option<u64>,
    },
    /// Queue a target (from a file, or by length and sha256).
    Add {
        #[command(flatten)]
        repo: RepoDir,
        /// Target path, e.g. packages/ab/cd/…/name-1.0-py3-none-any.whl.
        path: String,
        /// File whose length and hashes to record.
        #[arg(long, conflicts_with_all = ["length", "sha256"])]
        file: Option<PathBuf>,
        /// Length in bytes.
        #[arg(long, requires = "sha256")]
        length: Option<u64>,
        /// Hex SHA-256.
        #[arg(long, requires = "length")]
        sha256: Option<String>,
        /// Another digest, ALG=HEX (repeatable), e.g. blake2b-256=…, for a repository whose
        /// target hashes list more than sha256.
        #[arg(long = "hash", value_name = "ALG=HEX", requires = "sha256", value_parser = parse_hash)]
        hashes: Vec<(String, String)>,
        /// Publish right away.
        #[arg(long)]
        publish: bool,
    },
    /// Queue the removal of a target.
    Remove {
        #[command(flatten)]
        repo: RepoDir,
        /// Target path.
        path: String,
        /// Publish right away.
        #[arg(long)]
        publish: bool,
    },
    /// Publish queued changes (bins → snapshot → timestamp), finishing any interrupted publish.
    Publish {
        #[command(flatten)]
        repo: RepoDir,
        /// Most changes per batch.
        #[arg(long, default_value_t = 100_000)]
        batch: usize,
    },
    /// Import targets in bulk (backsigning) and publish.
    Import {
        #[command(flatten)]
        repo: RepoDir,
        /// JSON lines: {"path": …, "length": N, "hashes": {"sha256": …}, "custom": …}.
        #[arg(long, conflicts_with = "from_dir")]
        from_jsonl: Option<PathBuf>,
        /// A directory tree of files, hashed on the way in (paths relative to it).
        #[arg(long)]
        from_dir: Option<PathBuf>,
    },
    /// Change the hash algorithms every target lists, re-listing every current target (its
    /// bins are re-signed). Adding an algorithm needs the files (--files-dir).
    SetTargetHashes {
        #[command(flatten)]
        repo: RepoDir,
        #[arg(help = TARGET_HASHES_HELP)]
        hashes: TargetHashes,
        /// Where the target files are (DIR/<target path>): digests the bins don't list yet
        /// are computed from them.
        #[arg(long)]
        files_dir: Option<PathBuf>,
    },
    /// Re-sign online roles expiring within the margin; warn about offline roles.
    Refresh {
        #[command(flatten)]
        repo: RepoDir,
        /// Margin before expiry.
        #[arg(long, default_value_t = Span::secs(6 * 3600))]
        margin: Span,
        #[arg(long, hide = true, conflicts_with = "margin")]
        margin_hours: Option<u64>,
    },
    /// Delete superseded consistent-snapshot files (never roots) older than the retention.
    Gc {
        #[command(flatten)]
        repo: RepoDir,
        /// Retention window.
        #[arg(long, default_value_t = Span::secs(3600))]
        retention: Span,
        #[arg(long, hide = true, conflicts_with = "retention")]
        retention_secs: Option<u64>,
    },
    /// Development repositories only: rotate the root key (new root signed by old and new).
    RotateRoot {
        #[command(flatten)]
        repo: RepoDir,
    },
    /// Development repositories only: rotate the online key (new root and bins, every online
    /// role re-signed).
    RotateOnline {
        #[command(flatten)]
        repo: RepoDir,
    },
    /// Show versions, expiries, pending changes and warnings.
    Status {
        #[command(flatten)]
        repo: RepoDir,
    },
    /// Serve Repository Service for TUF's REST API v1 (drop-in for RSTUF: bootstrap with the
    /// `rstuf admin ceremony` payload, artifacts, tasks, root updates, signing).
    Serve(crate::rstufcmd::RstufArgs),
}

/// The `--target-hashes` help, shared by `repo init`, `repo set-target-hashes` and `serve`.
pub const TARGET_HASHES_HELP: &str = "Hash algorithms every target lists, comma-separated: \
sha256 (always: every TUF client verifies it), sha512, blake2b-256 (python-tuf and tufpi \
only: tuf-js and go-tuf refuse a target listing it). Each algorithm beyond sha256 adds \
about 80 (blake2b-256) or 140 (sha512) bytes per target to its bin";

fn parse_hash(s: &str) -> Result<(String, String), String> {
    let (alg, hex) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected ALG=HEX"))?;
    Ok((alg.trim().to_string(), hex.trim().to_string()))
}

/// Run a repo subcommand.
pub fn run(cmd: RepoCmd) -> Result<()> {
    match cmd {
        RepoCmd::Init {
            repo: dir,
            dev_keys,
            bins_bit_length,
            hash_prefix_bins,
            target_hashes,
            targets_online,
            root_keys,
            thresholds,
            root_threshold,
            targets_keys,
            targets_threshold,
            bins_keys,
            bins_threshold,
        } => {
            if let Some(t) = thresholds
                .iter()
                .find(|t| !["root", "targets", "bins"].contains(&t.role.as_str()))
            {
                bail!(
                    "--threshold {}={}: the offline roles are root, targets and bins",
                    t.role,
                    t.n
                );
            }
            // The last --threshold for a role wins; the older --ROLE-threshold N still works.
            let threshold = |role: &str, old: Option<u64>| {
                thresholds
                    .iter()
                    .rev()
                    .find(|t| t.role == role)
                    .map(|t| t.n)
                    .or(old)
                    .unwrap_or(1)
            };
            let root_threshold = threshold("root", root_threshold);
            let targets_threshold = threshold("targets", targets_threshold);
            let bins_threshold = threshold("bins", bins_threshold);
            let config = RepoConfig {
                bit_length: bins_bit_length,
                bins_mode: if hash_prefix_bins {
                    BinsMode::HashPrefix
                } else {
                    BinsMode::Succinct
                },
                targets_online,
                target_hashes,
                ..RepoConfig::default()
            };
            if !dev_keys {
                let load = |files: &[PathBuf]| {
                    files
                        .iter()
                        .map(|f| crate::ceremonycmd::load_public(f))
                        .collect::<Result<Vec<_>>>()
                };
                let keys = OfflineKeys {
                    root: load(&root_keys)?,
                    root_threshold,
                    targets: load(&targets_keys)?,
                    targets_threshold,
                    bins: load(&bins_keys)?,
                    bins_threshold,
                };
                if keys.root.is_empty()
                    || (!targets_online && (keys.targets.is_empty() || keys.bins.is_empty()))
                {
                    print!(
                        "{}",
                        CEREMONY_GUIDE.replace("DIR", &dir.path.display().to_string())
                    );
                    bail!("give the offline public keys (--root-key, --targets-key, --bins-key), or --dev-keys");
                }
                let files = dir.init_ceremony(config, &keys)?;
                println!(
                    "Online key generated in {}/keys/online.pem (keep it on the index host only).",
                    dir.path.display()
                );
                println!("Unsigned first versions, to be signed by the offline key holders:");
                for f in &files {
                    println!("  {}", f.display());
                }
                println!(
                    "Next: each holder inspects (`tufpi ceremony show --repo DIR FILE`) and signs"
                );
                println!("  (`tufpi metadata sign FILE --key HOLDER.pem`) on their own machine; combine the");
                println!("  copies (`tufpi ceremony combine`), then: tufpi ceremony publish --repo {} FILES…", dir.path.display());
                return Ok(());
            }
            let r = dir.init_dev(config)?;
            eprintln!("WARNING: development repository: ALL keys, including the offline root, targets and bins keys,");
            eprintln!(
                "WARNING: are in {}/keys. Never use it in production.",
                dir.path.display()
            );
            println!(
                "initialised {} with {} bins; trusted root: {}",
                dir.path.display(),
                r.config().bins(),
                dir.describe_metadata(&r) + "/1.root.json"
            );
        }
        RepoCmd::Add {
            repo: dir,
            path,
            file,
            length,
            sha256,
            hashes,
            publish,
        } => {
            let record = match (file, length, sha256) {
                (Some(f), _, _) => {
                    let algs = dir.open(Access::Queue)?.config().target_hashes.clone();
                    record_from_file(&path, &f, &algs)?
                }
                (None, Some(length), Some(sha)) => TargetRecord {
                    path,
                    length,
                    hashes: std::iter::once(("sha256".to_string(), sha))
                        .chain(hashes)
                        .collect(),
                    custom: None,
                },
                _ => bail!("give --file, or --length and --sha256"),
            };
            enqueue_and_maybe_publish(&dir, vec![Change::Add(record)], publish)?;
        }
        RepoCmd::Remove {
            repo: dir,
            path,
            publish,
        } => enqueue_and_maybe_publish(&dir, vec![Change::Remove(path)], publish)?,
        RepoCmd::Publish { repo: dir, batch } => {
            let mut r = dir.open(Access::Publish)?;
            let rep = r.publish(batch)?;
            println!(
                "published {} changes in {} bins; snapshot v{}, timestamp v{}",
                rep.changes, rep.bins, rep.snapshot_version, rep.timestamp_version
            );
        }
        RepoCmd::Import {
            repo: dir,
            from_jsonl,
            from_dir,
        } => import(&dir, from_jsonl, from_dir)?,
        RepoCmd::SetTargetHashes {
            repo: dir,
            hashes,
            files_dir,
        } => {
            let mut r = dir.open(Access::Publish)?;
            // Only a file with the signed sha256 is the target's content (`hashes` always
            // includes sha256); any other is ignored, and the target then lacks the digest.
            let from_files = |path: &str, listed: &BTreeMap<String, String>| {
                let f = files_dir.as_ref()?.join(path);
                let digests = hashes.digest(&std::fs::read(f).ok()?);
                (digests.get("sha256") == listed.get("sha256")).then_some(digests)
            };
            let n = r.set_target_hashes(hashes.clone(), &from_files)?;
            let rep = r.publish(100_000)?;
            println!(
                "targets list {hashes}: {n} re-listed; snapshot v{}, timestamp v{}",
                rep.snapshot_version, rep.timestamp_version
            );
        }
        RepoCmd::Refresh {
            repo: dir,
            margin,
            margin_hours,
        } => {
            let margin = margin.or_old(margin_hours, std::time::Duration::from_secs(3600));
            let mut r = dir.open(Access::Publish)?;
            let n = r.refresh(Duration::from_std(margin)?)?;
            println!(
                "refreshed {n} bins; snapshot v{}, timestamp v{}",
                version(&r, "snapshot"),
                version(&r, "timestamp")
            );
            for w in r.warnings(Duration::days(30)) {
                eprintln!("WARNING: {w}");
            }
        }
        RepoCmd::Gc {
            repo: dir,
            retention,
            retention_secs,
        } => {
            let mut r = dir.open(Access::Publish)?;
            let rep = r.gc(retention.or_old(retention_secs, std::time::Duration::from_secs(1)))?;
            println!(
                "gc: deleted {}, retained {} (within retention), live {}",
                rep.deleted, rep.retained, rep.live
            );
        }
        RepoCmd::RotateRoot { repo: dir } => {
            for line in dir.open(Access::Publish)?.dev_rotate_root()? {
                println!("{line}");
            }
        }
        RepoCmd::RotateOnline { repo: dir } => {
            for line in dir.open(Access::Publish)?.dev_rotate_online()? {
                println!("{line}");
            }
        }
        RepoCmd::Status { repo: dir } => status(&dir)?,
        RepoCmd::Serve(args) => crate::rstufcmd::run(args)?,
    }
    Ok(())
}

fn version(r: &Repository, role: &str) -> u64 {
    r.role_states().get(role).map(|s| s.version).unwrap_or(0)
}

fn enqueue_and_maybe_publish(dir: &RepoDir, changes: Vec<Change>, publish: bool) -> Result<()> {
    let access = if publish {
        Access::Publish
    } else {
        Access::Queue
    };
    let mut r = dir.open(access)?;
    let seq = r.enqueue(&changes)?;
    println!("queued change #{seq}");
    if publish {
        let rep = r.publish(100_000)?;
        println!(
            "published; snapshot v{}, timestamp v{}",
            rep.snapshot_version, rep.timestamp_version
        );
    }
    Ok(())
}

fn record_from_file(path: &str, file: &Path, algs: &TargetHashes) -> Result<TargetRecord> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(TargetRecord {
        path: path.to_string(),
        length: data.len() as u64,
        hashes: algs.digest(&data),
        custom: None,
    })
}

fn parse_record(line: &str, n: usize) -> Result<TargetRecord> {
    let v = json::parse(line.as_bytes()).with_context(|| format!("line {n}"))?;
    let path = v
        .get("path")
        .and_then(Value::as_str)
        .with_context(|| format!("line {n}: no \"path\""))?;
    let length = match v.get("length") {
        Some(Value::Int(i)) => i.as_u64(),
        _ => None,
    }
    .with_context(|| format!("line {n}: \"length\" must be a non-negative integer"))?;
    let hashes: BTreeMap<String, String> = v
        .get("hashes")
        .and_then(Value::as_object)
        .with_context(|| format!("line {n}: no \"hashes\" object"))?
        .iter()
        .filter_map(|(k, h)| Some((k.clone(), h.as_str()?.to_string())))
        .collect();
    Ok(TargetRecord {
        path: path.to_string(),
        length,
        hashes,
        custom: v.get("custom").cloned(),
    })
}

fn import(dir: &RepoDir, from_jsonl: Option<PathBuf>, from_dir: Option<PathBuf>) -> Result<()> {
    let mut r = dir.open(Access::Publish)?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{spinner} {pos} targets read ({per_sec}) {msg}",
    )?);
    // All or nothing: a bad line or file publishes nothing at all. Lines are parsed and
    // files hashed in parallel by the import.
    let progress = |n: u64| bar.set_position(n);
    let rep = match (from_jsonl, from_dir) {
        (Some(file), _) => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let lines = std::io::BufReader::new(f)
                .lines()
                .enumerate()
                .filter_map(|(n, line)| match line {
                    Err(e) => Some(Err(RepoError::io(format!("line {}", n + 1), e))),
                    Ok(l) if l.trim().is_empty() => None,
                    Ok(l) => Some(Ok((n + 1, l))),
                });
            r.import(
                lines,
                |(n, l): (usize, String)| {
                    parse_record(&l, n).map_err(|e| RepoError::Invalid(format!("{e:#}")))
                },
                progress,
            )?
        }
        (None, Some(dir)) => {
            let algs = r.config().target_hashes.clone();
            let convert = |p: PathBuf| {
                let rel = relative_target_path(&dir, &p)
                    .map_err(|e| RepoError::Invalid(format!("{}: {e:#}", p.display())))?;
                record_from_file(&rel, &p, &algs).map_err(|e| RepoError::Invalid(format!("{e:#}")))
            };
            r.import(walk_files(&dir), convert, progress)?
        }
        (None, None) => bail!("give --from-jsonl FILE or --from-dir DIR"),
    };
    bar.finish_and_clear();
    println!(
        "imported {} targets into {} bins ({} targets in all); snapshot v{}, timestamp v{}",
        rep.records, rep.bins, rep.targets, rep.snapshot_version, rep.timestamp_version
    );
    Ok(())
}

/// Every file below `dir`, in a stable order.
fn walk_files(dir: &Path) -> impl Iterator<Item = Result<PathBuf, RepoError>> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files: std::vec::IntoIter<PathBuf> = Vec::new().into_iter();
    std::iter::from_fn(move || loop {
        if let Some(f) = files.next() {
            return Some(Ok(f));
        }
        let d = stack.pop()?;
        let mut entries: Vec<std::fs::DirEntry> =
            match std::fs::read_dir(&d).and_then(|it| it.collect()) {
                Ok(e) => e,
                Err(e) => return Some(Err(RepoError::io(format!("listing {}", d.display()), e))),
            };
        entries.sort_by_key(|e| e.file_name());
        let mut here = Vec::new();
        for e in entries {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => here.push(e.path()),
                Err(err) => {
                    return Some(Err(RepoError::io(
                        format!("stat {}", e.path().display()),
                        err,
                    )))
                }
            }
        }
        files = here.into_iter();
    })
}

/// The target path of `file` below `dir`: its components joined by `/` (a backslash is part
/// of a Unix file name, not a separator).
fn relative_target_path(dir: &Path, file: &Path) -> Result<String> {
    let rel = file.strip_prefix(dir)?;
    let parts = rel
        .components()
        .map(|c| c.as_os_str().to_str().context("file names must be UTF-8"))
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join("/"))
}

fn status(dir: &RepoDir) -> Result<()> {
    let r = dir.open(Access::Queue)?;
    println!("repository {}", dir.describe_metadata(&r));
    println!(
        "targets: {}   pending changes: {}",
        r.target_count()?,
        r.pending()?
    );
    println!("target hashes: {}", r.config().target_hashes);
    let states = r.role_states();
    for role in ["root", "targets", "bins", "snapshot", "timestamp"] {
        if let Some(s) = states.get(role) {
            println!(
                "{role:<10} v{:<8} expires {}",
                s.version,
                tufpi_core::metadata::format_expires(&at(s.expires))
            );
        }
    }
    let bins: Vec<_> = states
        .iter()
        .filter(|(n, _)| tufpi_repo::layout::succinct_index(r.config(), n).is_some())
        .collect();
    if let (Some(min), Some(max)) = (
        bins.iter().map(|b| b.1.expires).min(),
        bins.iter().map(|b| b.1.expires).max(),
    ) {
        println!(
            "bins       {} roles, expiries {} … {}",
            bins.len(),
            tufpi_core::metadata::format_expires(&at(min)),
            tufpi_core::metadata::format_expires(&at(max))
        );
    }
    for w in r.warnings(Duration::days(30)) {
        println!("WARNING: {w}");
    }
    Ok(())
}

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// What `repo init` without keys prints: the offline ceremony, step by step.
const CEREMONY_GUIDE: &str = "\
Creating a production repository is an offline key ceremony:
  1. Each root, targets and bins key holder, on their own (offline) machine:
       tufpi key generate --scheme ecdsa-sha2-nistp256 --out holder.pem --public-out holder.pub.json
     and hands over holder.pub.json (never the .pem).
  2. On the index host:
       tufpi repo init --repo DIR --root-key a.pub.json --root-key b.pub.json --threshold root=2 \\
           --targets-key c.pub.json --bins-key d.pub.json
     This generates the online key and writes unsigned DIR/ceremony/1.{root,targets,bins}.json.
  3. Each holder checks and signs the file(s) of their role:
       tufpi ceremony show --repo DIR DIR/ceremony/1.root.json
       tufpi metadata sign 1.root.json --key holder.pem
  4. Combine the signed copies and publish (thresholds are checked):
       tufpi ceremony combine --out root.json copy-a.json copy-b.json
       tufpi ceremony publish --repo DIR root.json targets.json bins.json
";
