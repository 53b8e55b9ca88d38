//! `tufpi key …`: key generation.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
        } => {
            let key = PrivateKey::generate(scheme.into())?;
            let pem = key.to_pkcs8_pem()?;
            write_private(&out, pem.as_bytes())?;
            let public = Key::from_private(&key);
            let keyid = public.compute_keyid();
            write_atomic(&public_out, &public_key_json(&public, &keyid))?;
            println!("{keyid}");
            Ok(())
        }
    }
}

fn write_private(path: &std::path::Path, pem: &[u8]) -> Result<()> {
    crate::fsutil::write_atomic_mode(path, pem, 0o600)
        .with_context(|| format!("writing private key {}", path.display()))
}
