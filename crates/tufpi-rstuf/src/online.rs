//! The online key, located as RSTUF's worker locates it: root assigns one key to timestamp
//! (and snapshot and targets); that key's `x-rstuf-online-key-uri` field says where its
//! private half is. `fn:<name>` is an unencrypted PKCS#8 PEM file `<name>` in the online key
//! directory (`--online-key-dir`, or `RSTUF_ONLINE_KEY_DIR` as RSTUF's worker reads it).

use std::path::{Component, Path};

use tufpi_core::crypto::PrivateKey;
use tufpi_core::metadata::{Key, Metadata};
use tufpi_repo::keys::SigningKey;

use crate::error::RstufError;

/// The field of a public key naming where its private key is.
pub const KEY_URI_FIELD: &str = "x-rstuf-online-key-uri";

/// The online key's (keyid, public key) as `root` assigns it to timestamp.
pub fn online_entry(root: &Metadata) -> Result<(String, Key), RstufError> {
    let r = root
        .as_root()
        .ok_or_else(|| RstufError::OnlineKey("metadata.root is not root metadata".into()))?;
    let role = r
        .role("timestamp")
        .ok_or_else(|| RstufError::OnlineKey("root assigns no timestamp role".into()))?;
    let keyid = role
        .keyids
        .first()
        .ok_or_else(|| RstufError::OnlineKey("root assigns no key to the timestamp role".into()))?;
    let key = r.keys.get(keyid).ok_or_else(|| {
        RstufError::OnlineKey(format!(
            "root assigns key {keyid} to timestamp but does not list it in keys"
        ))
    })?;
    Ok((keyid.clone(), key.clone()))
}

/// Load the private online key named by `root`, checking it is the key root lists.
pub fn load(root: &Metadata, key_dir: Option<&Path>) -> Result<SigningKey, RstufError> {
    let (keyid, public) = online_entry(root)?;
    let uri = public
        .unrecognized
        .get(KEY_URI_FIELD)
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            RstufError::OnlineKey(format!(
                "online key {keyid} has no \"{KEY_URI_FIELD}\" field in root v{}",
                root.signed.version
            ))
        })?;
    let Some(name) = uri.strip_prefix("fn:") else {
        return Err(RstufError::OnlineKey(format!(
            "online key {keyid}: {KEY_URI_FIELD} {uri:?} is not supported here \
             (only fn:<file name> in the online key directory; KMS and Vault signers are not)"
        )));
    };
    let plain = !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(RstufError::OnlineKey(format!(
            "online key {keyid}: {uri:?} must name a file inside the online key directory"
        )));
    }
    let dir = key_dir.ok_or_else(|| {
        RstufError::OnlineKey(format!(
            "root names {uri:?} but no online key directory is set \
             (--online-key-dir or RSTUF_ONLINE_KEY_DIR)"
        ))
    })?;
    let path = dir.join(name);
    let pem = std::fs::read_to_string(&path).map_err(|e| {
        RstufError::OnlineKey(format!(
            "reading {} (named by {uri:?}): {e}",
            path.display()
        ))
    })?;
    let private = PrivateKey::from_pem(&pem).map_err(|e| {
        RstufError::OnlineKey(format!(
            "{} is not an unencrypted PKCS#8 PEM private key: {e}",
            path.display()
        ))
    })?;
    let key = SigningKey::with_identity(private, keyid.clone(), public.clone());
    if !key.matches(&public) {
        return Err(RstufError::OnlineKey(format!(
            "{} is not the private half of online key {keyid} ({} {})",
            path.display(),
            public.keytype,
            public.scheme
        )));
    }
    Ok(key)
}
