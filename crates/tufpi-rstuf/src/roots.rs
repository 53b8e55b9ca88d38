//! Root checks for bootstrap, root updates and distributed signing: every signature must be
//! by a root key and verify, and a root is published once it meets its own root threshold
//! (and, for an update, the trusted root's).

use serde_json::Value;
use tufpi_core::metadata::{Metadata, Signature};
use tufpi_core::verify::{role_keys, verify_role};

use crate::error::RstufError;

/// The root metadata as JSON text (python-tuf's layout).
pub fn to_json(md: &Metadata) -> String {
    String::from_utf8_lossy(&md.to_bytes()).into_owned()
}

/// Metadata from a JSON value (a pending root kept in settings).
pub fn from_json(role: &str, v: &Value) -> Result<Metadata, RstufError> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    Metadata::from_bytes(&bytes).map_err(|e| RstufError::BadMetadata {
        role: role.to_string(),
        detail: e.to_string(),
    })
}

/// Whether `root` meets its own root threshold and, given, `trusted`'s.
pub fn threshold_met(root: &Metadata, trusted: Option<&Metadata>) -> bool {
    let by = |d: &Metadata| {
        role_keys(&d.signed, "root")
            .and_then(|rk| verify_role(root, "root", rk))
            .is_ok()
    };
    by(root) && trusted.is_none_or(by)
}

/// How many valid signatures `root` has by `of`'s root keys, and `of`'s threshold.
pub fn count(root: &Metadata, of: &Metadata) -> (usize, u64) {
    let Ok(rk) = role_keys(&of.signed, "root") else {
        return (0, 0);
    };
    let threshold = rk.threshold;
    match verify_role(root, "root", rk) {
        Ok(v) => (v.valid_keyids.len(), threshold),
        Err(tufpi_core::verify::VerifyError::Threshold { valid, .. }) => {
            (valid as usize, threshold)
        }
        Err(_) => (0, threshold),
    }
}

/// Refuse a root the published layout cannot serve: consistent snapshots must be on (every
/// role but timestamp is published as `N.role.json`, as RSTUF's worker writes them).
pub fn check_layout(root: &Metadata) -> Result<(), RstufError> {
    let r = root
        .as_root()
        .ok_or_else(|| RstufError::Refused("metadata.root is not root metadata".into()))?;
    if !r.consistent_snapshot() {
        return Err(RstufError::Refused(format!(
            "metadata.root: root v{} has consistent_snapshot false: the repository publishes \
             N.role.json files, so it must be true",
            root.signed.version
        )));
    }
    Ok(())
}

/// Refuse a root without signatures, or with one that is not by a root key (of `root` or
/// of `trusted`) or does not verify.
pub fn check_signatures(root: &Metadata, trusted: Option<&Metadata>) -> Result<(), RstufError> {
    if root.signatures.is_empty() {
        return Err(RstufError::Refused(format!(
            "metadata.root: root v{} has no signatures: it requires at least one valid \
             signature",
            root.signed.version
        )));
    }
    for sig in &root.signatures {
        check_one_signature(root, trusted, sig)?;
    }
    Ok(())
}

/// Refuse `sig` unless it is by a root key of `root` (or `trusted`) and verifies over root.
pub fn check_one_signature(
    root: &Metadata,
    trusted: Option<&Metadata>,
    sig: &Signature,
) -> Result<(), RstufError> {
    let key = [Some(root), trusted].into_iter().flatten().find_map(|md| {
        let r = md.as_root()?;
        let role = r.role("root")?;
        if !role.keyids.contains(&sig.keyid) {
            return None;
        }
        r.keys.get(&sig.keyid)
    });
    let short = sig.keyid.get(..16).unwrap_or(&sig.keyid);
    let Some(key) = key else {
        return Err(RstufError::Refused(format!(
            "signature by keyid {short}: not a root key of root v{}{}",
            root.signed.version,
            trusted
                .map(|t| format!(" nor of the trusted root v{}", t.signed.version))
                .unwrap_or_default()
        )));
    };
    let msg = root
        .signed
        .canonical()
        .map_err(|e| RstufError::Refused(format!("root v{}: {e}", root.signed.version)))?;
    key.verify(&sig.sig, &msg).map_err(|e| {
        RstufError::Refused(format!(
            "signature by keyid {short} does not verify over root v{}: {e}",
            root.signed.version
        ))
    })
}
