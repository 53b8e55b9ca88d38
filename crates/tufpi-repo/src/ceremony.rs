//! Offline-role ceremonies, file in → file out: prepare an unsigned new version of root,
//! targets or bins; show what changes; each key holder signs on their own machine
//! (`tufpi metadata sign`); combine the signed copies; check thresholds; publish.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use tufpi_core::metadata::{Body, Key, Metadata, Signed};
use tufpi_core::verify::{role_keys, verify_role};

use crate::error::RepoError;

/// One change to make in the new version.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Trust `key` for `role` (root: root/targets/snapshot/timestamp; targets: bins; bins: bin-n).
    AddKey {
        /// Role whose keys change.
        role: String,
        /// Keyid to list the key under.
        keyid: String,
        /// The public key.
        key: Key,
    },
    /// Stop trusting `keyid` for `role`.
    RemoveKey {
        /// Role whose keys change.
        role: String,
        /// Keyid to remove.
        keyid: String,
    },
    /// Set `role`'s threshold.
    Threshold {
        /// Role.
        role: String,
        /// New threshold.
        threshold: u64,
    },
}

impl Edit {
    /// The role whose keys or threshold change.
    pub fn role(&self) -> &str {
        match self {
            Edit::AddKey { role, .. }
            | Edit::RemoveKey { role, .. }
            | Edit::Threshold { role, .. } => role,
        }
    }
}

/// An unsigned successor of `current`: version + 1, expiry `now + expiry`, edits applied.
pub fn prepare(
    current: &Metadata,
    edits: &[Edit],
    expiry: Duration,
) -> Result<Metadata, RepoError> {
    let mut signed: Signed = current.signed.clone();
    signed.version += 1;
    signed.expires = (Utc::now() + expiry).with_nanosecond_zero();
    for e in edits {
        apply(&mut signed, e)?;
    }
    Ok(Metadata::new(signed))
}

trait NoNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl NoNanos for chrono::DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}

/// (keyids, threshold, key map) of `role` inside `signed`, for editing.
fn apply(signed: &mut Signed, e: &Edit) -> Result<(), RepoError> {
    let role = e.role().to_string();
    let (keyids, threshold, keys) = match &mut signed.body {
        Body::Root(r) => {
            let entry = r
                .roles
                .get_mut(&role)
                .ok_or_else(|| RepoError::NoRootRole { role: role.clone() })?;
            (&mut entry.keyids, &mut entry.threshold, &mut r.keys)
        }
        Body::Targets(t) => {
            let d = t.delegations.as_mut().ok_or(RepoError::NoDelegations)?;
            if let Some(s) = d.succinct_roles.as_mut() {
                (&mut s.keyids, &mut s.threshold, &mut d.keys)
            } else {
                let roles = d.roles.as_mut().ok_or(RepoError::NoDelegations)?;
                // Hash-prefix bins share one key set: edit every delegated role alike.
                if roles.iter().any(|r| r.name == role) || role == "bins" || role == "bin-n" {
                    let first_ids = roles.first().map(|r| r.keyids.clone()).unwrap_or_default();
                    let mut ids = first_ids;
                    let mut th = roles.first().map(|r| r.threshold).unwrap_or(1);
                    edit_ids(&mut ids, &mut th, &mut d.keys, e)?;
                    for r in roles.iter_mut() {
                        r.keyids = ids.clone();
                        r.threshold = th;
                    }
                    prune_keys(&mut d.keys, roles.iter().flat_map(|r| r.keyids.iter()));
                    return Ok(());
                }
                return Err(RepoError::NoDelegatedRole { role });
            }
        }
        _ => {
            return Err(RepoError::NotEditable {
                role_type: signed.role_type().to_string(),
            })
        }
    };
    edit_ids(keyids, threshold, keys, e)?;
    if let Body::Root(r) = &mut signed.body {
        let used: BTreeSet<String> = r
            .roles
            .values()
            .flat_map(|x| x.keyids.iter().cloned())
            .collect();
        r.keys.retain(|id, _| used.contains(id));
    }
    Ok(())
}

fn prune_keys<'a>(
    keys: &mut std::collections::BTreeMap<String, Key>,
    used: impl Iterator<Item = &'a String>,
) {
    let used: BTreeSet<&String> = used.collect();
    keys.retain(|id, _| used.contains(id));
}

fn edit_ids(
    keyids: &mut Vec<String>,
    threshold: &mut u64,
    keys: &mut std::collections::BTreeMap<String, Key>,
    e: &Edit,
) -> Result<(), RepoError> {
    match e {
        Edit::AddKey { keyid, key, .. } => {
            if !keyids.contains(keyid) {
                keyids.push(keyid.clone());
            }
            keys.insert(keyid.clone(), key.clone());
        }
        Edit::RemoveKey { keyid, role } => {
            let before = keyids.len();
            keyids.retain(|k| k != keyid);
            if keyids.len() == before {
                return Err(RepoError::NotAKey {
                    role: role.clone(),
                    keyid: keyid.clone(),
                });
            }
        }
        Edit::Threshold { threshold: t, .. } => *threshold = *t,
    }
    if keyids.is_empty() || *threshold == 0 || *threshold > keyids.len() as u64 {
        return Err(RepoError::BadThreshold {
            role: e.role().to_string(),
            threshold: *threshold,
            keys: keyids.len(),
        });
    }
    Ok(())
}

/// Human-readable differences between the current and the proposed version.
pub fn diff(old: &Metadata, new: &Metadata) -> Vec<String> {
    let mut out = vec![
        format!(
            "{}: version {} -> {}",
            new.signed.role_type(),
            old.signed.version,
            new.signed.version
        ),
        format!("expires {} -> {}", old.signed.expires, new.signed.expires),
    ];
    let sets = |md: &Metadata| -> Vec<(String, BTreeSet<String>, u64)> {
        match &md.signed.body {
            Body::Root(r) => r
                .roles
                .iter()
                .map(|(n, x)| (n.clone(), x.keyids.iter().cloned().collect(), x.threshold))
                .collect(),
            Body::Targets(t) => match &t.delegations {
                Some(d) => match (&d.succinct_roles, &d.roles) {
                    (Some(s), _) => vec![(
                        format!("{}-*", s.name_prefix),
                        s.keyids.iter().cloned().collect(),
                        s.threshold,
                    )],
                    (None, Some(rs)) => rs
                        .iter()
                        .take(1)
                        .map(|r| {
                            (
                                r.name.clone(),
                                r.keyids.iter().cloned().collect(),
                                r.threshold,
                            )
                        })
                        .collect(),
                    _ => vec![],
                },
                None => vec![],
            },
            _ => vec![],
        }
    };
    let before = sets(old);
    for (name, ids, th) in sets(new) {
        let Some((_, old_ids, old_th)) = before.iter().find(|(n, _, _)| *n == name) else {
            out.push(format!("role {name}: new, keys {ids:?}, threshold {th}"));
            continue;
        };
        for k in ids.difference(old_ids) {
            out.push(format!("role {name}: + key {k}"));
        }
        for k in old_ids.difference(&ids) {
            out.push(format!("role {name}: - key {k}"));
        }
        if th != *old_th {
            out.push(format!("role {name}: threshold {old_th} -> {th}"));
        }
    }
    out
}

/// Merge the signatures of separately signed copies of the same metadata.
pub fn combine(copies: Vec<Metadata>) -> Result<Metadata, RepoError> {
    let mut it = copies.into_iter();
    let mut out = it.next().ok_or(RepoError::NothingToCombine)?;
    let canonical = out.signed.canonical()?;
    for md in it {
        if md.signed.canonical()? != canonical {
            return Err(RepoError::CopiesDiffer);
        }
        for sig in md.signatures {
            if !out.signatures.iter().any(|s| s.keyid == sig.keyid) {
                out.signatures.push(sig);
            }
        }
    }
    Ok(out)
}

/// Check `new` against its delegator(s): root needs a threshold of the old root's root keys
/// and of its own; targets is checked against root; bins against targets. Returns one line per
/// check passed.
pub fn check(
    new: &Metadata,
    role: &str,
    root: &Metadata,
    delegator: &Metadata,
) -> Result<Vec<String>, RepoError> {
    let mut lines = Vec::new();
    let mut one = |label: &str, d: &Signed| -> Result<(), RepoError> {
        let failed = |source| RepoError::Threshold {
            check: label.to_string(),
            source,
        };
        let rk = role_keys(d, role).map_err(failed)?;
        let ok = verify_role(new, role, rk).map_err(failed)?;
        lines.push(format!(
            "{label}: {}/{} signatures",
            ok.valid_keyids.len(),
            ok.threshold
        ));
        Ok(())
    };
    match role {
        "root" => {
            one(
                &format!("root v{} (trusted) keys", root.signed.version),
                &root.signed,
            )?;
            one(
                &format!("root v{} (new) keys", new.signed.version),
                &new.signed,
            )?;
        }
        _ => one(
            &format!(
                "{} v{}",
                delegator.signed.role_type(),
                delegator.signed.version
            ),
            &delegator.signed,
        )?,
    }
    Ok(lines)
}
