//! Public keys as they sit in root and in delegations.

use sha2::{Digest, Sha256};

use super::error::MetadataError;
use super::fields::{object, Ctx, Obj};
use super::view::View;
use crate::crypto::{self, CryptoError, PrivateKey};
use crate::json::{self, Map, Value};

/// A public key: `keytype`, `scheme`, `keyval` (with `public`), and unknown fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// e.g. `ed25519`, `ecdsa`, `rsa`.
    pub keytype: String,
    /// e.g. `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256`.
    pub scheme: String,
    /// Key material; `public` is what verification uses.
    pub keyval: Map,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl Key {
    /// The public key of a private key, as securesystemslib would describe it.
    pub fn from_private(key: &PrivateKey) -> Key {
        let (keytype, scheme, public) = key.public_parts();
        let mut keyval = Map::new();
        keyval.insert("public".into(), Value::String(public));
        Key {
            keytype: keytype.into(),
            scheme: scheme.into(),
            keyval,
            unrecognized: Map::new(),
        }
    }

    /// `keyval.public`, if it is a string.
    pub fn public(&self) -> Option<&str> {
        self.keyval.get("public").and_then(Value::as_str)
    }

    /// The keyid the spec defines: hex SHA-256 of the canonical `{keytype, scheme, keyval}`.
    /// Used when we create keys; keyids in metadata are otherwise opaque.
    pub fn compute_keyid(&self) -> String {
        let v = object(
            &Map::new(),
            [
                ("keytype", self.keytype.as_str().into()),
                ("scheme", self.scheme.as_str().into()),
                ("keyval", Value::Object(self.keyval.clone())),
            ],
        );
        // keyval comes from parsed JSON that had to be canonical; a float there cannot occur
        // for keys we build, and for parsed ones an empty encoding only yields an unused id.
        let bytes = json::canonical(&v).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }

    /// Verify a hex signature over `msg`.
    pub fn verify(&self, sig_hex: &str, msg: &[u8]) -> Result<(), CryptoError> {
        let public = self.public().ok_or_else(|| {
            CryptoError::InvalidPublicKey("key has no keyval.public string".into())
        })?;
        crypto::verify_signature(&self.keytype, &self.scheme, public, sig_hex, msg)
    }

    pub(crate) fn from_value(v: Value, ctx: Ctx<'_>) -> Result<Key, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let keytype = o.str("keytype")?;
        let scheme = o.str("scheme")?;
        let keyval = o.obj("keyval")?.rest();
        Ok(Key {
            keytype,
            scheme,
            keyval,
            unrecognized: o.rest(),
        })
    }

    /// The JSON value of the key.
    pub fn to_value(&self) -> Value {
        self.view().to_value()
    }

    pub(crate) fn view(&self) -> View<'_> {
        View::obj(
            vec![
                ("keytype", View::Str(&self.keytype)),
                ("scheme", View::Str(&self.scheme)),
                ("keyval", View::Obj(Vec::new(), Some(&self.keyval))),
            ],
            &self.unrecognized,
        )
    }
}

pub(crate) fn keys_from(o: Obj) -> Result<std::collections::BTreeMap<String, Key>, MetadataError> {
    Ok(o.members(Key::from_value)?.into_iter().collect())
}

pub(crate) fn keys_view(keys: &std::collections::BTreeMap<String, Key>) -> View<'_> {
    View::entries(keys.iter().map(|(id, k)| (id.as_str(), k.view())).collect())
}
