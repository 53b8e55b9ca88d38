//! `tufpi ceremony …`: offline-role ceremonies, file in → file out.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::Duration;
use clap::Subcommand;
use tufpi_core::crypto::PrivateKey;
use tufpi_core::json;
use tufpi_core::metadata::{Key, Metadata};
use tufpi_repo::ceremony::{self, Edit};

use crate::args::{RepoDir, Span, Threshold};
use crate::deploy::Access;
use crate::fsutil::{read, write_atomic};

/// Ceremony subcommands.
#[derive(Subcommand)]
pub enum CeremonyCmd {
    /// Write an unsigned next version of root, targets or bins with the given changes.
    Prepare {
        #[command(flatten)]
        repo: RepoDir,
        /// root, targets or bins.
        #[arg(long)]
        role: String,
        /// Where to write the unsigned file.
        #[arg(long)]
        out: PathBuf,
        /// ROLE=PUB.json: trust this public key (as written by `tufpi key generate`) for ROLE.
        /// In targets the role is `bins`; in bins it is `bin-n`.
        #[arg(long = "add-key")]
        add_key: Vec<String>,
        /// ROLE=KEYID: stop trusting this key for ROLE.
        #[arg(long = "remove-key")]
        remove_key: Vec<String>,
        /// ROLE=N: set ROLE's threshold.
        #[arg(long = "threshold", value_name = "ROLE=N")]
        threshold: Vec<Threshold>,
        /// Expiry of the new version, from now.
        #[arg(long, default_value_t = Span::secs(365 * 86_400))]
        expires: Span,
        #[arg(long, hide = true, conflicts_with = "expires")]
        expires_days: Option<u64>,
    },
    /// Show what FILE changes against the published version (read before signing).
    Show {
        #[command(flatten)]
        repo: RepoDir,
        /// The prepared (or signed) file.
        file: PathBuf,
    },
    /// Merge signatures of copies signed separately by each key holder.
    Combine {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Signed copies.
        files: Vec<PathBuf>,
    },
    /// Check thresholds and publish new root / targets / bins versions (together, in order).
    Publish {
        #[command(flatten)]
        repo: RepoDir,
        /// Install this new online key (PKCS#8 PEM) and re-sign every online role with it.
        #[arg(long)]
        online_key: Option<PathBuf>,
        /// Signed files.
        files: Vec<PathBuf>,
    },
}

fn split(arg: &str) -> Result<(&str, &str)> {
    arg.split_once('=')
        .with_context(|| format!("{arg:?}: expected ROLE=VALUE"))
}

/// Read a public key file written by `tufpi key generate --public-out`.
pub fn load_public(path: &Path) -> Result<(String, Key)> {
    let v = json::parse(&read(path)?).with_context(|| format!("{}", path.display()))?;
    let keyid = v
        .get("keyid")
        .and_then(|k| k.as_str())
        .context("public key file has no keyid")?
        .to_string();
    let mut obj = v
        .as_object()
        .cloned()
        .context("public key file is not an object")?;
    obj.remove("keyid");
    let md_key = Key {
        keytype: obj
            .remove("keytype")
            .and_then(|k| k.as_str().map(str::to_string))
            .context("no keytype")?,
        scheme: obj
            .remove("scheme")
            .and_then(|k| k.as_str().map(str::to_string))
            .context("no scheme")?,
        keyval: obj
            .remove("keyval")
            .and_then(|k| k.as_object().cloned())
            .context("no keyval")?,
        unrecognized: obj,
    };
    Ok((keyid, md_key))
}

fn load(path: &Path) -> Result<Metadata> {
    Metadata::from_bytes(&read(path)?).with_context(|| format!("{}", path.display()))
}

/// Run a ceremony subcommand.
pub fn run(cmd: CeremonyCmd) -> Result<()> {
    match cmd {
        CeremonyCmd::Prepare {
            repo: dir,
            role,
            out,
            add_key,
            remove_key,
            threshold,
            expires,
            expires_days,
        } => {
            let expires = expires.or_old(expires_days, std::time::Duration::from_secs(86_400));
            if !matches!(role.as_str(), "root" | "targets" | "bins") {
                bail!("--role must be root, targets or bins");
            }
            let r = dir.open(Access::Queue)?;
            let current = r.current(&role)?;
            let mut edits = Vec::new();
            for a in &add_key {
                let (role, file) = split(a)?;
                let (keyid, key) = load_public(Path::new(file))?;
                edits.push(Edit::AddKey {
                    role: role.into(),
                    keyid,
                    key,
                });
            }
            for a in &remove_key {
                let (role, keyid) = split(a)?;
                edits.push(Edit::RemoveKey {
                    role: role.into(),
                    keyid: keyid.into(),
                });
            }
            for t in threshold {
                edits.push(Edit::Threshold {
                    role: t.role,
                    threshold: t.n,
                });
            }
            let md = ceremony::prepare(&current, &edits, Duration::from_std(expires)?)?;
            write_atomic(&out, &md.to_bytes())?;
            for line in ceremony::diff(&current, &md) {
                println!("{line}");
            }
            println!(
                "wrote unsigned {} v{} to {}",
                role,
                md.signed.version,
                out.display()
            );
        }
        CeremonyCmd::Show { repo: dir, file } => {
            let md = load(&file)?;
            let role = role_of(&md);
            let r = dir.open(Access::Queue)?;
            match r.current(role) {
                Ok(current) => ceremony::diff(&current, &md)
                    .iter()
                    .for_each(|l| println!("{l}")),
                // First version: show it whole.
                Err(_) => println!("{}", String::from_utf8_lossy(&md.to_bytes())),
            }
            println!("signatures: {}", md.signatures.len());
        }
        CeremonyCmd::Combine { out, files } => {
            let copies = files.iter().map(|f| load(f)).collect::<Result<Vec<_>>>()?;
            let md = ceremony::combine(copies)?;
            write_atomic(&out, &md.to_bytes())?;
            println!(
                "combined {} signatures into {}",
                md.signatures.len(),
                out.display()
            );
        }
        CeremonyCmd::Publish {
            repo: dir,
            online_key,
            files,
        } => {
            let mds = files.iter().map(|f| load(f)).collect::<Result<Vec<_>>>()?;
            let key = match online_key {
                Some(p) => Some(PrivateKey::from_pem(&String::from_utf8(read(&p)?)?)?),
                None => None,
            };
            let mut r = dir.open(Access::Publish)?;
            for line in r.publish_offline(mds, key)? {
                println!("{line}");
            }
            println!("published");
        }
    }
    Ok(())
}

fn role_of(md: &Metadata) -> &'static str {
    match md.signed.role_type() {
        "root" => "root",
        _ if md
            .as_targets()
            .and_then(|t| t.delegations.as_ref())
            .is_some_and(|d| {
                d.roles
                    .as_ref()
                    .is_none_or(|r| r.iter().any(|x| x.name != "bins"))
            }) =>
        {
            "bins"
        }
        _ => "targets",
    }
}
