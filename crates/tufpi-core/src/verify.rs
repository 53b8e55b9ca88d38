//! Threshold signature verification: a role's metadata is trusted when at least `threshold`
//! distinct keyids assigned to the role by its delegator have valid signatures over the
//! canonical form of `signed`.

use std::collections::{BTreeMap, BTreeSet};

use crate::metadata::{Key, Metadata, MetadataError, Root, Signed, Targets};

pub use crate::metadata::RoleKeys;

/// Why verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The delegator does not delegate to this role.
    #[error("{role}: not delegated by {delegator}")]
    NotDelegated {
        /// Role looked for.
        role: String,
        /// The delegating role.
        delegator: String,
    },
    /// Not enough distinct valid signatures.
    #[error("{role}: signature threshold not met: {valid}/{threshold} valid signatures{details}")]
    Threshold {
        /// Role verified.
        role: String,
        /// Distinct valid signatures.
        valid: u64,
        /// Threshold.
        threshold: u64,
        /// Why other signatures did not count.
        details: String,
    },
    /// `signed` could not be canonicalized.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Keyids whose signatures counted, in order.
    pub valid_keyids: Vec<String>,
    /// The role's threshold.
    pub threshold: u64,
}

/// Verify `md`'s signatures for `role` with the delegator's assignment `rk`, over the
/// canonical form of the typed `signed` (use `verify_bytes` with the canonical bytes from
/// `Metadata::from_bytes_with_canonical` for freshly parsed files).
pub fn verify_role(md: &Metadata, role: &str, rk: RoleKeys<'_>) -> Result<Verified, VerifyError> {
    let msg = md.signed.canonical()?;
    verify_bytes(&msg, &md.signatures, role, rk)
}

/// Verify signatures over already-canonical bytes `msg`.
pub fn verify_bytes(
    msg: &[u8],
    signatures: &[crate::metadata::Signature],
    role: &str,
    rk: RoleKeys<'_>,
) -> Result<Verified, VerifyError> {
    let assigned: BTreeSet<&str> = rk.keyids.iter().map(String::as_str).collect();
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    let mut valid_keyids = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for sig in signatures {
        let id = sig.keyid.as_str();
        if !assigned.contains(id) {
            notes.push(format!("keyid {} is not a key of role {role}", short(id)));
            continue;
        }
        if counted.contains(id) {
            notes.push(format!(
                "keyid {} signed more than once, counted once",
                short(id)
            ));
            continue;
        }
        let Some(key) = rk.keys.get(id) else {
            notes.push(format!(
                "keyid {} is assigned to {role} but its key is not listed",
                short(id)
            ));
            continue;
        };
        match key.verify(&sig.sig, msg) {
            Ok(()) => {
                counted.insert(id);
                valid_keyids.push(id.to_string());
            }
            Err(e) => notes.push(format!("keyid {}: {e}", short(id))),
        }
    }
    let valid = valid_keyids.len() as u64;
    if valid < rk.threshold {
        let details = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        return Err(VerifyError::Threshold {
            role: role.to_string(),
            valid,
            threshold: rk.threshold,
            details,
        });
    }
    Ok(Verified {
        valid_keyids,
        threshold: rk.threshold,
    })
}

fn short(keyid: &str) -> &str {
    keyid.get(..16).unwrap_or(keyid)
}

/// What `role`'s delegator assigns: root for top-level roles, a targets role otherwise.
pub fn role_keys<'a>(delegator: &'a Signed, role: &str) -> Result<RoleKeys<'a>, VerifyError> {
    let not = || VerifyError::NotDelegated {
        role: role.to_string(),
        delegator: delegator.role_type().to_string(),
    };
    if let Some(root) = root_of(delegator) {
        let r = root.role(role).ok_or_else(not)?;
        return Ok(RoleKeys {
            keyids: &r.keyids,
            threshold: r.threshold,
            keys: &root.keys,
        });
    }
    if let Some(t) = targets_of(delegator) {
        return t
            .delegations
            .as_ref()
            .and_then(|d| d.role_keys(role))
            .ok_or_else(not);
    }
    Err(not())
}

fn root_of(s: &Signed) -> Option<&Root> {
    match &s.body {
        crate::metadata::Body::Root(r) => Some(r),
        _ => None,
    }
}

fn targets_of(s: &Signed) -> Option<&Targets> {
    match &s.body {
        crate::metadata::Body::Targets(t) => Some(t),
        _ => None,
    }
}

/// Keys by id, for callers building `RoleKeys` by hand.
pub type KeyMap = BTreeMap<String, Key>;
