//! `tufpi metadata …` and `tufpi json …`: sign, verify and canonicalize metadata files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tufpi_core::crypto::PrivateKey;
use tufpi_core::json;
use tufpi_core::metadata::{Key, Metadata, TOP_LEVEL_ROLES};
use tufpi_core::verify;

use crate::fsutil::{read, write_atomic};

/// Metadata subcommands.
#[derive(Subcommand)]
pub enum MetadataCmd {
    /// Add (or replace) this key's signature in FILE, in place.
    Sign {
        /// Metadata file to sign.
        file: PathBuf,
        /// PKCS#8 (or SEC1 / PKCS#1) PEM private key.
        #[arg(long)]
        key: PathBuf,
        /// Keyid to sign under. Default: the keyid FILE itself lists for this key (root and
        /// delegating targets), else the keyid the spec computes for it.
        #[arg(long)]
        keyid: Option<String>,
    },
    /// Verify FILE's signatures against the keys and threshold its delegator assigns.
    Verify {
        /// Metadata file to verify.
        file: PathBuf,
        /// The delegating metadata: root for top-level roles, a targets file for delegated roles.
        #[arg(long)]
        delegator: PathBuf,
        /// Role name (default: the file's `_type` for top-level roles; for delegated roles the
        /// file name without version prefix and `.json`).
        #[arg(long)]
        role: Option<String>,
    },
}

/// JSON subcommands.
#[derive(Subcommand)]
pub enum JsonCmd {
    /// Print the canonical JSON (securesystemslib's `encode_canonical`) of FILE (`-` = stdin).
    Canonical {
        /// JSON file.
        file: PathBuf,
    },
}

/// Run a metadata subcommand.
pub fn run(cmd: MetadataCmd) -> Result<()> {
    match cmd {
        MetadataCmd::Sign { file, key, keyid } => sign(&file, &key, keyid),
        MetadataCmd::Verify {
            file,
            delegator,
            role,
        } => {
            let line = verify_file(&file, &delegator, role)?;
            println!("{line}");
            Ok(())
        }
    }
}

/// Run a json subcommand.
pub fn run_json(cmd: JsonCmd) -> Result<()> {
    match cmd {
        JsonCmd::Canonical { file } => {
            let bytes = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                read(&file)?
            };
            let v = json::parse(&bytes)?;
            let out = json::canonical(&v)?;
            std::io::stdout().write_all(&out)?;
            Ok(())
        }
    }
}

fn load(path: &Path) -> Result<Metadata> {
    let bytes = read(path)?;
    Metadata::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

fn sign(file: &Path, key_path: &Path, keyid: Option<String>) -> Result<()> {
    let (mut md, canonical) = Metadata::from_bytes_with_canonical(&read(file)?)
        .with_context(|| format!("{}", file.display()))?;
    let pem = String::from_utf8(read(key_path)?).context("private key file is not UTF-8 PEM")?;
    let key = PrivateKey::from_pem(&pem).with_context(|| format!("{}", key_path.display()))?;
    let public = Key::from_private(&key);
    let keyid = keyid
        .or_else(|| listed_keyid(&md, &public))
        .unwrap_or_else(|| public.compute_keyid());
    md.sign_canonical(&key, &keyid, &canonical)?;
    write_atomic(file, &md.to_bytes())?;
    println!(
        "signed: {} v{} with keyid {keyid}",
        role_label(&md, file),
        md.signed.version
    );
    Ok(())
}

/// The keyid root lists for this public key when FILE is a root signing itself, so that a
/// legacy keytype spelling keeps its original keyid. (A targets file's delegations list keys
/// of the roles it delegates to, never its own.)
fn listed_keyid(md: &Metadata, public: &Key) -> Option<String> {
    md.as_root()?
        .keys
        .iter()
        .find(|(_, k)| k.scheme == public.scheme && k.public() == public.public())
        .map(|(id, _)| id.clone())
}

fn role_label(md: &Metadata, file: &Path) -> String {
    match md.signed.role_type() {
        "targets" => name_from_file(file).unwrap_or_else(|| "targets".into()),
        t => t.to_string(),
    }
}

/// `3.bin-0a3f.json` → `bin-0a3f`; `targets.json` → `targets`.
fn name_from_file(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    let stem = name.strip_suffix(".json").unwrap_or(name);
    let stem = match stem.split_once('.') {
        Some((v, rest)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => stem,
    };
    (!stem.is_empty()).then(|| stem.to_string())
}

fn verify_file(file: &Path, delegator_path: &Path, role: Option<String>) -> Result<String> {
    let (md, canonical) = Metadata::from_bytes_with_canonical(&read(file)?)
        .with_context(|| format!("{}", file.display()))?;
    let delegator = load(delegator_path).context("delegator")?;
    let file_type = md.signed.role_type();
    let role = match role {
        Some(r) => r,
        None if file_type != "targets" => file_type.to_string(),
        None if delegator.signed.role_type() == "root" => "targets".to_string(),
        None => name_from_file(file)
            .context("cannot tell the role name from the file name; pass --role")?,
    };
    if TOP_LEVEL_ROLES.contains(&role.as_str()) {
        if role != file_type {
            bail!("{role}: file has _type {file_type:?}, expected {role:?}");
        }
        if delegator.signed.role_type() != "root" {
            bail!(
                "{role}: top-level roles are delegated by root, but the delegator has _type {:?}",
                delegator.signed.role_type()
            );
        }
    } else if file_type != "targets" {
        bail!("{role}: delegated roles are targets metadata, but the file has _type {file_type:?}");
    }
    let rk = verify::role_keys(&delegator.signed, &role)?;
    let ok = verify::verify_bytes(&canonical, &md.signatures, &role, rk)?;
    Ok(format!(
        "verified: {role} v{} ({}/{} signatures)",
        md.signed.version,
        ok.valid_keyids.len(),
        ok.threshold
    ))
}

#[cfg(test)]
mod tests {
    use super::name_from_file;
    use std::path::Path;

    #[test]
    fn role_names_from_files() {
        assert_eq!(
            name_from_file(Path::new("/x/3.bin-0a3f.json")).as_deref(),
            Some("bin-0a3f")
        );
        assert_eq!(
            name_from_file(Path::new("targets.json")).as_deref(),
            Some("targets")
        );
        assert_eq!(
            name_from_file(Path::new("a.b.json")).as_deref(),
            Some("a.b")
        );
    }
}
