//! Signing keys held by this repository: always the online key; the offline ones (root,
//! targets, bins) only in development repositories made with `--dev-keys`. They live in a
//! local keys directory (`DIR/keys` embedded; in scale-out mode each publishing replica has
//! its own copy, see `backend.rs`), never in the state or metadata stores.

use std::path::{Path, PathBuf};

use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::metadata::{Key, Metadata, Signed};

use tufpi_fs::WriteOptions;

use crate::error::RepoError;

/// A private key with its public form and keyid.
pub struct SigningKey {
    /// The private key.
    pub private: PrivateKey,
    /// The public key as it sits in metadata.
    pub public: Key,
    /// Its keyid.
    pub keyid: String,
}

impl SigningKey {
    /// Wrap a private key, computing its keyid per spec.
    pub fn new(private: PrivateKey) -> SigningKey {
        let public = Key::from_private(&private);
        let keyid = public.compute_keyid();
        SigningKey {
            private,
            public,
            keyid,
        }
    }

    /// (keyid, public key).
    pub fn entry(&self) -> (String, Key) {
        (self.keyid.clone(), self.public.clone())
    }

    /// `signed` with this key's signature.
    pub fn sign(&self, signed: Signed) -> Result<Metadata, RepoError> {
        let mut md = Metadata::new(signed);
        md.sign(&self.private, &self.keyid)?;
        Ok(md)
    }
}

/// Role names whose keys may live in `DIR/keys/<role>.pem`.
pub const KEY_ROLES: [&str; 4] = ["root", "targets", "bins", "online"];

/// The key directory of a repository directory (`DIR/keys`).
pub fn key_dir(repo: &Path) -> PathBuf {
    repo.join("keys")
}

/// Load `DIR/keys/<role>.pem` if present.
pub fn load(repo: &Path, role: &'static str) -> Result<Option<SigningKey>, RepoError> {
    load_in(&key_dir(repo), role)
}

/// Load `<keys_dir>/<role>.pem` if present.
pub fn load_in(keys_dir: &Path, role: &'static str) -> Result<Option<SigningKey>, RepoError> {
    let path = keys_dir.join(format!("{role}.pem"));
    match std::fs::read_to_string(&path) {
        Ok(pem) => Ok(Some(SigningKey::new(PrivateKey::from_pem(&pem)?))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RepoError::io(format!("reading {}", path.display()), e)),
    }
}

/// Load a key of the repository in `repo` that must be present.
pub fn require(repo: &Path, role: &'static str) -> Result<SigningKey, RepoError> {
    require_in(&key_dir(repo), role)
}

/// Load a key from `keys_dir` that must be present.
pub fn require_in(keys_dir: &Path, role: &'static str) -> Result<SigningKey, RepoError> {
    load_in(keys_dir, role)?.ok_or(RepoError::MissingKey(role))
}

/// Generate a key for `role` and store it (mode 0600) in the repository's key directory.
pub fn generate(repo: &Path, role: &'static str, scheme: Scheme) -> Result<SigningKey, RepoError> {
    generate_in(&key_dir(repo), role, scheme)
}

/// Generate a key for `role` and store it (mode 0600) in `keys_dir`.
pub fn generate_in(
    keys_dir: &Path,
    role: &'static str,
    scheme: Scheme,
) -> Result<SigningKey, RepoError> {
    std::fs::create_dir_all(keys_dir)
        .map_err(|e| RepoError::io(format!("creating {}", keys_dir.display()), e))?;
    let key = PrivateKey::generate(scheme)?;
    let pem = key.to_pkcs8_pem()?;
    WriteOptions::new()
        .mode(0o600)
        .write(&keys_dir.join(format!("{role}.pem")), pem.as_bytes())?;
    Ok(SigningKey::new(key))
}

/// Where a new online key waits while the plan that re-signs everything with it is recorded.
pub fn next_online_path(repo: &Path) -> PathBuf {
    next_online_in(&key_dir(repo))
}

/// [`next_online_path`] in `keys_dir`.
pub fn next_online_in(keys_dir: &Path) -> PathBuf {
    keys_dir.join("online.pem.next")
}

/// Stage `key` as the next online key (durably), to be installed by `install_next_online`.
pub fn stage_next_online(keys_dir: &Path, key: &PrivateKey) -> Result<(), RepoError> {
    let pem = key.to_pkcs8_pem()?;
    Ok(WriteOptions::new()
        .mode(0o600)
        .write(&next_online_in(keys_dir), pem.as_bytes())?)
}

/// Install the staged online key (rename over `online.pem`, then sync the directory).
pub fn install_next_online(keys_dir: &Path) -> Result<(), RepoError> {
    std::fs::rename(next_online_in(keys_dir), keys_dir.join("online.pem"))
        .map_err(|e| RepoError::io("installing the new online key", e))?;
    Ok(tufpi_fs::sync_dir(keys_dir)?)
}

/// After a crash during a rotation: a staged key with a recorded plan belongs to that plan
/// (install it before finishing the plan); without a plan the rotation never happened.
pub fn settle_next_online(keys_dir: &Path, plan_pending: bool) -> Result<(), RepoError> {
    if !next_online_in(keys_dir).exists() {
        return Ok(());
    }
    if plan_pending {
        install_next_online(keys_dir)
    } else {
        std::fs::remove_file(next_online_in(keys_dir))
            .map_err(|e| RepoError::io("removing a stale staged key", e))
    }
}
