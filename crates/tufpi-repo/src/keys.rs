//! Signing keys held by this repository: always the online key; the offline ones (root,
//! targets, bins) only in development repositories made with `--dev-keys`. They live in a
//! local keys directory (`DIR/keys` embedded; in scale-out mode each publishing replica has
//! its own copy, see `backend.rs`), never in the state or metadata stores.

use std::path::{Path, PathBuf};

use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::json::{self, Map, Value};
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

    /// A private key under the identity a root made elsewhere gives it: `keyid` and `public`
    /// exactly as listed there (e.g. with custom fields such as RSTUF's
    /// `x-rstuf-online-key-uri`), not recomputed here.
    pub fn with_identity(private: PrivateKey, keyid: String, public: Key) -> SigningKey {
        SigningKey {
            private,
            public,
            keyid,
        }
    }

    /// Whether `public` is this key's public half: a signature made here verifies with it
    /// (whatever the PEM's line breaks).
    pub fn matches(&self, public: &Key) -> bool {
        let msg = b"tufpi: does this public key belong to this private key?";
        self.private
            .sign_hex(msg)
            .is_ok_and(|sig| public.verify(&sig, msg).is_ok())
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

/// Load `<keys_dir>/<role>.pem` if present, under the identity recorded next to it
/// (`<role>.id.json`, see [`SigningKey::with_identity`]) when there is one that matches it.
pub fn load_in(keys_dir: &Path, role: &'static str) -> Result<Option<SigningKey>, RepoError> {
    let path = keys_dir.join(format!("{role}.pem"));
    let key = match std::fs::read_to_string(&path) {
        Ok(pem) => SigningKey::new(PrivateKey::from_pem(&pem)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RepoError::io(format!("reading {}", path.display()), e)),
    };
    let id_path = keys_dir.join(format!("{role}.id.json"));
    let Some((keyid, public)) = read_identity(&id_path)? else {
        return Ok(Some(key));
    };
    if !key.matches(&public) {
        // The PEM was replaced by hand: the recorded identity belongs to another key.
        tracing::warn!(
            file = %id_path.display(),
            "recorded key identity does not match {role}.pem: using the computed keyid"
        );
        return Ok(Some(key));
    }
    Ok(Some(SigningKey::with_identity(key.private, keyid, public)))
}

/// Read an identity file: `{"keyid": "...", "key": {keytype, scheme, keyval, ...}}`.
fn read_identity(path: &Path) -> Result<Option<(String, Key)>, RepoError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RepoError::io(format!("reading {}", path.display()), e)),
    };
    let bad = |detail: &str| RepoError::CorruptStore {
        what: "key identity file",
        detail: format!("{}: {detail}", path.display()),
    };
    let v = json::parse(&bytes).map_err(|e| bad(&e.to_string()))?;
    let keyid = v
        .get("keyid")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no keyid string"))?
        .to_string();
    let mut key = v
        .get("key")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| bad("no key object"))?;
    let mut text = |k: &str| match key.remove(k) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(bad(&format!("key has no {k} string"))),
    };
    let keytype = text("keytype")?;
    let scheme = text("scheme")?;
    let keyval = match key.remove("keyval") {
        Some(Value::Object(m)) => m,
        _ => return Err(bad("key has no keyval object")),
    };
    let public = Key {
        keytype,
        scheme,
        keyval,
        unrecognized: key,
    };
    Ok(Some((keyid, public)))
}

/// The identity file's bytes for `key`.
fn identity_bytes(key: &SigningKey) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("keyid".into(), Value::String(key.keyid.clone()));
    m.insert("key".into(), key.public.to_value());
    json::to_python_json(&Value::Object(m), Some(1))
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
    stage_next_online_key(keys_dir, &SigningKey::new(key.clone()))
}

/// Where the identity of the staged online key waits.
fn next_identity_in(keys_dir: &Path) -> PathBuf {
    keys_dir.join("online.id.json.next")
}

/// [`stage_next_online`] for a key with its identity (see [`SigningKey::with_identity`]):
/// the identity is staged next to it and installed with it.
pub fn stage_next_online_key(keys_dir: &Path, key: &SigningKey) -> Result<(), RepoError> {
    std::fs::create_dir_all(keys_dir)
        .map_err(|e| RepoError::io(format!("creating {}", keys_dir.display()), e))?;
    let pem = key.private.to_pkcs8_pem()?;
    WriteOptions::new()
        .mode(0o600)
        .write(&next_identity_in(keys_dir), &identity_bytes(key))?;
    Ok(WriteOptions::new()
        .mode(0o600)
        .write(&next_online_in(keys_dir), pem.as_bytes())?)
}

/// Install the staged online key (its identity first, then rename over `online.pem`, then
/// sync the directory). Repeatable after a crash: the key is renamed last.
pub fn install_next_online(keys_dir: &Path) -> Result<(), RepoError> {
    let next_id = next_identity_in(keys_dir);
    if next_id.exists() {
        std::fs::rename(&next_id, keys_dir.join("online.id.json"))
            .map_err(|e| RepoError::io("installing the new online key's identity", e))?;
    }
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
        let _ = std::fs::remove_file(next_identity_in(keys_dir));
        std::fs::remove_file(next_online_in(keys_dir))
            .map_err(|e| RepoError::io("removing a stale staged key", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_uri(key: &PrivateKey) -> SigningKey {
        let mut public = Key::from_private(key);
        public.unrecognized.insert(
            "x-rstuf-online-key-uri".into(),
            Value::String("fn:abc".into()),
        );
        SigningKey::with_identity(key.clone(), "given-keyid".into(), public)
    }

    #[test]
    fn a_staged_identity_is_installed_with_its_key() {
        let d = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        stage_next_online_key(d.path(), &with_uri(&key)).unwrap();
        install_next_online(d.path()).unwrap();
        let k = load_in(d.path(), "online").unwrap().unwrap();
        assert_eq!(k.keyid, "given-keyid");
        assert!(k
            .public
            .unrecognized
            .get("x-rstuf-online-key-uri")
            .is_some());

        // A PEM replaced by hand: the recorded identity is not its, the computed one is used.
        let other = PrivateKey::generate(Scheme::Ed25519).unwrap();
        std::fs::write(d.path().join("online.pem"), other.to_pkcs8_pem().unwrap()).unwrap();
        let k = load_in(d.path(), "online").unwrap().unwrap();
        assert_eq!(k.keyid, Key::from_private(&other).compute_keyid());

        // A plain staged key (no given identity) replaces the recorded identity too.
        let plain = PrivateKey::generate(Scheme::Ed25519).unwrap();
        stage_next_online(d.path(), &plain).unwrap();
        install_next_online(d.path()).unwrap();
        let k = load_in(d.path(), "online").unwrap().unwrap();
        assert_eq!(k.keyid, Key::from_private(&plain).compute_keyid());
    }

    #[test]
    fn a_staged_key_without_a_plan_is_dropped_with_its_identity() {
        let d = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        stage_next_online_key(d.path(), &with_uri(&key)).unwrap();
        settle_next_online(d.path(), false).unwrap();
        assert!(!next_online_in(d.path()).exists());
        assert!(!next_identity_in(d.path()).exists());
        assert!(load_in(d.path(), "online").unwrap().is_none());
    }
}
