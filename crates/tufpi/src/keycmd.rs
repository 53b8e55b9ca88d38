//! `tufpi key …`: key generation. Existing files are never replaced unless asked
//! (`--force`): a private key overwritten by mistake is a key lost.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::json::{self, Map, Value};
use tufpi_core::metadata::Key;

use crate::fsutil::write_atomic;

/// Key subcommands.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Generate a key pair: a PKCS#8 PEM private key and the public key as it sits in root.
    Generate {
        /// Signature scheme.
        #[arg(long, value_enum)]
        scheme: SchemeArg,
        /// Where to write the PKCS#8 PEM private key (mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// Where to write the public key JSON (`keyid`, `keytype`, `scheme`, `keyval`).
        #[arg(long)]
        public_out: PathBuf,
        /// Replace `--out` and `--public-out` if they exist (otherwise refused).
        #[arg(long)]
        force: bool,
    },
}

/// Schemes `key generate` can make.
#[derive(Clone, Copy, ValueEnum)]
pub enum SchemeArg {
    /// Ed25519
    #[value(name = "ed25519")]
    Ed25519,
    /// ECDSA over P-256 with SHA-256
    #[value(name = "ecdsa-sha2-nistp256")]
    EcdsaP256,
    /// ECDSA over P-384 with SHA-384
    #[value(name = "ecdsa-sha2-nistp384")]
    EcdsaP384,
}

impl From<SchemeArg> for Scheme {
    fn from(s: SchemeArg) -> Scheme {
        match s {
            SchemeArg::Ed25519 => Scheme::Ed25519,
            SchemeArg::EcdsaP256 => Scheme::EcdsaP256,
            SchemeArg::EcdsaP384 => Scheme::EcdsaP384,
        }
    }
}

/// The public-key JSON: the key as in root plus its keyid.
pub fn public_key_json(key: &Key, keyid: &str) -> Vec<u8> {
    let mut m: Map = key.to_value().as_object().cloned().unwrap_or_default();
    m.insert("keyid".into(), Value::String(keyid.to_string()));
    let mut out = json::to_python_json(&Value::Object(m), Some(1));
    out.push(b'\n');
    out
}

/// Run a key subcommand.
pub fn run(cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::Generate {
            scheme,
            out,
            public_out,
            force,
        } => {
            if same_file(&out, &public_out) {
                bail!(
                    "--out and --public-out are both {}: give two files",
                    out.display()
                );
            }
            if !force {
                // Checked before the private key is made; creating each file exclusively
                // below closes the race with another writer.
                for p in [&out, &public_out] {
                    if p.symlink_metadata().is_ok() {
                        bail!("{}", exists_message(p));
                    }
                }
            }
            let key = PrivateKey::generate(scheme.into())?;
            let pem = key.to_pkcs8_pem()?;
            let public = Key::from_private(&key);
            let keyid = public.compute_keyid();
            let public_json = public_key_json(&public, &keyid);
            if force {
                tufpi_fs::WriteOptions::new()
                    .mode(0o600)
                    .write(&out, pem.as_bytes())
                    .with_context(|| format!("writing private key {}", out.display()))?;
                write_atomic(&public_out, &public_json)?;
            } else {
                create_new(&out, pem.as_bytes(), 0o600)?;
                if let Err(e) = create_new(&public_out, &public_json, 0o644) {
                    // The private key just made is of no use without its public half, and
                    // would make the retry refuse: remove it.
                    let _ = std::fs::remove_file(&out);
                    return Err(e);
                }
            }
            println!("{keyid}");
            Ok(())
        }
    }
}

fn exists_message(path: &Path) -> String {
    format!(
        "{} already exists: refusing to replace it (--force to replace)",
        path.display()
    )
}

/// Whether `a` and `b` name the same file (as written, or once resolved).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// Create `path` (it must not exist: `O_CREAT | O_EXCL`, so a concurrent writer cannot be
/// overwritten either) with `mode` (Unix), write `bytes` and make it durable. A partly
/// written file is removed.
fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    match tufpi_fs::write_new(path, bytes, mode) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{}", exists_message(path))
        }
        Err(e) => Err(e.into()),
    }
}
