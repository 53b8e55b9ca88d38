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

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_core::crypto::Scheme;
    use tufpi_core::json::Value;
    use tufpi_repo::layout::{build_root, TopKeys};

    /// A root whose online key carries `uri`, and that key.
    fn root_with(uri: &str) -> (Metadata, PrivateKey) {
        let private = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let mut public = Key::from_private(&private);
        let id = public.compute_keyid();
        public
            .unrecognized
            .insert(KEY_URI_FIELD.into(), Value::String(uri.into()));
        let top = TopKeys {
            root: (vec![(id.clone(), public.clone())], 1),
            targets: (vec![(id.clone(), public.clone())], 1),
            online: (id, public),
        };
        let root = Metadata::new(build_root(&top, 1, chrono::Utc::now()));
        (root, private)
    }

    fn refused(root: &Metadata, dir: Option<&Path>) -> String {
        match load(root, dir) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn fn_uri_names_a_file_in_the_key_dir() {
        let d = tempfile::tempdir().unwrap();
        let (root, key) = root_with("fn:online.pem");
        assert!(refused(&root, None).contains("RSTUF_ONLINE_KEY_DIR"));
        assert!(refused(&root, Some(d.path())).contains("reading"));
        std::fs::write(d.path().join("online.pem"), key.to_pkcs8_pem().unwrap()).unwrap();
        let k = load(&root, Some(d.path())).unwrap();
        // The identity root gives the key is kept, URI field included.
        assert!(k.public.unrecognized.get(KEY_URI_FIELD).is_some());

        let other = PrivateKey::generate(Scheme::Ed25519).unwrap();
        std::fs::write(d.path().join("online.pem"), other.to_pkcs8_pem().unwrap()).unwrap();
        assert!(refused(&root, Some(d.path())).contains("not the private half"));
    }

    #[test]
    fn other_uris_and_escapes_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let (root, _) = root_with("fn:../outside.pem");
        assert!(refused(&root, Some(d.path())).contains("inside the online key directory"));
        let (root, _) = root_with("awskms:arn:aws:kms:eu-west-1:1:key/x");
        assert!(refused(&root, Some(d.path())).contains("not supported"));
    }
}
