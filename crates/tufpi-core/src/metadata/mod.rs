//! The TUF metadata model: the signed envelope and the four top-level roles.
//!
//! Every object keeps its unrecognized fields so that parse → sign → write loses nothing, and
//! the canonical bytes of `signed` are the same as python-tuf computes for the same input.

mod error;
mod fields;
mod key;
mod root;
mod snapshot;
mod targets;
mod view;

use chrono::{DateTime, Utc};

use crate::crypto::PrivateKey;
use crate::json::{self, CanonicalError, Map, Value};
use fields::{invalid, Ctx, Obj};
use view::View;

pub use error::MetadataError;
pub use fields::{format_expires, parse_expires};
pub use key::Key;
pub use root::{Role, Root, TOP_LEVEL_ROLES};
pub use snapshot::{MetaFile, Snapshot, Timestamp};
pub use targets::{DelegatedRole, Delegations, RoleKeys, SuccinctRoles, TargetFile, Targets};

/// The major spec version we implement; any 1.x is accepted.
pub const SPEC_MAJOR: &str = "1";

/// The spec version we write into new metadata.
pub const SPEC_VERSION: &str = "1.0.31";

/// One signature in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Key id (opaque).
    pub keyid: String,
    /// Hex signature.
    pub sig: String,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl Signature {
    fn from_value(v: Value, ctx: Ctx<'_>) -> Result<Signature, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        Ok(Signature {
            keyid: o.str("keyid")?,
            sig: o.str("sig")?,
            unrecognized: o.rest(),
        })
    }

    fn view(&self) -> View<'_> {
        View::obj(
            vec![
                ("keyid", View::Str(&self.keyid)),
                ("sig", View::Str(&self.sig)),
            ],
            &self.unrecognized,
        )
    }
}

/// The role-specific part of `signed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `_type: root`
    Root(Root),
    /// `_type: targets`
    Targets(Targets),
    /// `_type: snapshot`
    Snapshot(Snapshot),
    /// `_type: timestamp`
    Timestamp(Timestamp),
}

/// The `signed` part of a metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `spec_version`, any 1.x.
    pub spec_version: String,
    /// `version`, ≥ 1.
    pub version: u64,
    /// `expires`.
    pub expires: DateTime<Utc>,
    /// The role-specific fields.
    pub body: Body,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl Signed {
    /// The `_type` of this metadata.
    pub fn role_type(&self) -> &'static str {
        match self.body {
            Body::Root(_) => "root",
            Body::Targets(_) => "targets",
            Body::Snapshot(_) => "snapshot",
            Body::Timestamp(_) => "timestamp",
        }
    }

    /// Whether this metadata has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires
    }

    /// Parse `signed` from a JSON value.
    pub fn from_value(v: Value) -> Result<Signed, MetadataError> {
        let mut o = Obj::new(v, Ctx::Root("signed"))?;
        let role_type = o.str("_type")?;
        let spec_version = o.str("spec_version")?;
        check_spec_version(&spec_version)?;
        let version = o.u64("version")?;
        if version == 0 {
            return Err(invalid("signed.version", "version must be > 0, got 0"));
        }
        let expires = o.expires("expires")?;
        let body = match role_type.as_str() {
            "root" => Body::Root(Root::take_from(&mut o)?),
            "targets" => Body::Targets(Targets::take_from(&mut o)?),
            "snapshot" => Body::Snapshot(Snapshot::take_from(&mut o)?),
            "timestamp" => Body::Timestamp(Timestamp::take_from(&mut o)?),
            other => {
                return Err(invalid(
                    "signed._type",
                    format!("unknown metadata type {other:?}"),
                ))
            }
        };
        Ok(Signed {
            spec_version,
            version,
            expires,
            body,
            unrecognized: o.rest(),
        })
    }

    /// The JSON value of `signed`.
    pub fn to_value(&self) -> Value {
        self.view().to_value()
    }

    pub(crate) fn view(&self) -> View<'_> {
        let mut f = vec![
            ("_type", View::Str(self.role_type())),
            ("spec_version", View::Str(&self.spec_version)),
            ("version", View::Int(self.version)),
            ("expires", View::Owned(format_expires(&self.expires))),
        ];
        f.extend(match &self.body {
            Body::Root(r) => r.fields(),
            Body::Targets(t) => t.fields(),
            Body::Snapshot(s) => s.fields(),
            Body::Timestamp(t) => t.fields(),
        });
        View::obj(f, &self.unrecognized)
    }

    /// The canonical JSON bytes of `signed`: what signatures cover.
    pub fn canonical(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(self.view().canonical()?)
    }
}

/// `spec_version` must be `MAJOR.MINOR[.PATCH]` with major 1, as python-tuf checks.
fn check_spec_version(v: &str) -> Result<(), MetadataError> {
    let parts: Vec<&str> = v.split('.').collect();
    let well_formed = matches!(parts.len(), 2 | 3)
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(invalid(
            "signed.spec_version",
            format!("{v:?} is not a version of the form X.Y[.Z]"),
        ));
    }
    if parts[0] != SPEC_MAJOR {
        return Err(invalid(
            "signed.spec_version",
            format!("unsupported spec_version {v}: this implementation supports {SPEC_MAJOR}.x"),
        ));
    }
    Ok(())
}

/// A whole metadata file: `signed` plus `signatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The signed part.
    pub signed: Signed,
    /// Signatures in file order (a keyid may repeat; verification counts it once).
    pub signatures: Vec<Signature>,
    /// Envelope fields we do not know.
    pub unrecognized: Map,
}

impl Metadata {
    /// Wrap `signed` with no signatures.
    pub fn new(signed: Signed) -> Metadata {
        Metadata {
            signed,
            signatures: Vec::new(),
            unrecognized: Map::new(),
        }
    }

    /// Parse metadata bytes (compact or indented JSON).
    pub fn from_bytes(bytes: &[u8]) -> Result<Metadata, MetadataError> {
        Self::from_value(json::parse(bytes)?)
    }

    /// Parse metadata bytes and also return the canonical bytes of `signed` as parsed: what
    /// signatures cover, computed straight from the parsed JSON (one pass, no typed rebuild).
    pub fn from_bytes_with_canonical(bytes: &[u8]) -> Result<(Metadata, Vec<u8>), MetadataError> {
        let v = json::parse(bytes)?;
        let canonical = match v.get("signed") {
            Some(signed) => json::canonical(signed)?,
            None => return Err(invalid("metadata", "missing field \"signed\"")),
        };
        Ok((Self::from_value(v)?, canonical))
    }

    /// Parse metadata from a JSON value.
    pub fn from_value(v: Value) -> Result<Metadata, MetadataError> {
        let mut o = Obj::new(v, Ctx::Root("metadata"))?;
        let sig_ctx = Ctx::Root("signatures");
        let signatures = o
            .array("signatures")?
            .into_iter()
            .enumerate()
            .map(|(n, s)| Signature::from_value(s, Ctx::Index(&sig_ctx, n)))
            .collect::<Result<Vec<_>, _>>()?;
        let signed_value = o
            .take("signed")
            .ok_or_else(|| invalid("metadata", "missing field \"signed\""))?;
        // Refuse floats anywhere in `signed` up front: it could never be verified.
        if let Some(f) = json::find_float(&signed_value) {
            return Err(CanonicalError::Float(f.to_string()).into());
        }
        let signed = Signed::from_value(signed_value)?;
        Ok(Metadata {
            signed,
            signatures,
            unrecognized: o.rest(),
        })
    }

    /// The JSON value of the whole file.
    pub fn to_value(&self) -> Value {
        self.view().to_value()
    }

    fn view(&self) -> View<'_> {
        View::obj(
            vec![
                (
                    "signatures",
                    View::Arr(self.signatures.iter().map(Signature::view).collect()),
                ),
                ("signed", self.signed.view()),
            ],
            &self.unrecognized,
        )
    }

    /// The file bytes as python-tuf writes them by default (sorted keys, indent 1, ASCII).
    pub fn to_bytes(&self) -> Vec<u8> {
        json::to_python_json(&self.to_value(), Some(1))
    }

    /// The file bytes in python-tuf's compact form.
    pub fn to_compact_bytes(&self) -> Vec<u8> {
        // For printable-ASCII content, canonical JSON is byte for byte python's compact form
        // (same key order and separators, and only `"` and `\` need escaping) and is written
        // straight from the model; anything else goes through the general writer.
        if let Ok(c) = self.view().canonical() {
            if c.iter().all(|b| (0x20..0x7f).contains(b)) {
                return c;
            }
        }
        json::to_python_json(&self.to_value(), None)
    }

    /// Sign `signed` with `key` under `keyid`, replacing any signature by that keyid.
    pub fn sign(&mut self, key: &PrivateKey, keyid: &str) -> Result<(), MetadataError> {
        let canonical = self.signed.canonical()?;
        self.sign_canonical(key, keyid, &canonical)
    }

    /// Sign given the canonical bytes of `signed`, e.g. as returned by
    /// `from_bytes_with_canonical` for a file being re-signed unchanged (saves re-encoding).
    pub fn sign_canonical(
        &mut self,
        key: &PrivateKey,
        keyid: &str,
        canonical: &[u8],
    ) -> Result<(), MetadataError> {
        let sig = key.sign_hex(canonical)?;
        self.add_signature(Signature {
            keyid: keyid.to_string(),
            sig,
            unrecognized: Map::new(),
        });
        Ok(())
    }

    /// Add a signature; one by the same keyid is replaced in place (as python-tuf does),
    /// otherwise it is appended.
    pub fn add_signature(&mut self, sig: Signature) {
        let Some(i) = self.signatures.iter().position(|s| s.keyid == sig.keyid) else {
            self.signatures.push(sig);
            return;
        };
        // Keep only the first signature by this keyid (index i is unaffected), then replace it.
        let mut seen = 0;
        self.signatures.retain(|s| {
            seen += usize::from(s.keyid == sig.keyid);
            s.keyid != sig.keyid || seen == 1
        });
        self.signatures[i] = sig;
    }

    /// The root body, if this is root metadata.
    pub fn as_root(&self) -> Option<&Root> {
        match &self.signed.body {
            Body::Root(r) => Some(r),
            _ => None,
        }
    }
    /// The targets body, if this is targets metadata.
    pub fn as_targets(&self) -> Option<&Targets> {
        match &self.signed.body {
            Body::Targets(t) => Some(t),
            _ => None,
        }
    }
    /// The snapshot body, if this is snapshot metadata.
    pub fn as_snapshot(&self) -> Option<&Snapshot> {
        match &self.signed.body {
            Body::Snapshot(s) => Some(s),
            _ => None,
        }
    }
    /// The timestamp body, if this is timestamp metadata.
    pub fn as_timestamp(&self) -> Option<&Timestamp> {
        match &self.signed.body {
            Body::Timestamp(t) => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
