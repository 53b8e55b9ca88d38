//! The trusted metadata set: a pure state machine (no I/O) that accepts new metadata only
//! through the checks of the TUF client workflow (spec §5), one `update_*` per role, in order.
//!
//! Every expiry check uses the reference time fixed when the set is created.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use tufpi_core::hashes;
use tufpi_core::metadata::{Body, MetaFile, Metadata, Root, Signed, Snapshot, Targets, Timestamp};
use tufpi_core::verify::{role_keys, verify_bytes};

use crate::error::ClientError;

/// What `update_timestamp` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp was accepted.
    Updated,
    /// Same version as the trusted one: nothing changed (spec: stop quietly).
    Unchanged,
}

/// Metadata trusted so far in one update.
#[derive(Debug, Clone)]
pub struct TrustedSet {
    now: DateTime<Utc>,
    root: Signed,
    timestamp: Option<Signed>,
    snapshot: Option<Signed>,
    /// `targets` and delegated targets roles by name.
    targets: BTreeMap<String, Signed>,
    /// (delegator, role) pairs verified.
    delegations: BTreeSet<(String, String)>,
}

/// Parse `data` as `expected` metadata; also returns the canonical bytes of `signed` as parsed,
/// which is what the signatures cover.
fn parse(
    role: &str,
    data: &[u8],
    expected: &'static str,
) -> Result<(Metadata, Vec<u8>), ClientError> {
    let (md, canonical) =
        Metadata::from_bytes_with_canonical(data).map_err(|source| ClientError::Invalid {
            role: role.to_string(),
            source,
        })?;
    let got = md.signed.role_type();
    if got != expected {
        return Err(ClientError::WrongType {
            role: role.to_string(),
            expected,
            got,
        });
    }
    // The spec lets a keyid sign only once; python-tuf refuses such files outright, so do we
    // (verification would count it once anyway).
    let mut seen = BTreeSet::new();
    if let Some(dup) = md
        .signatures
        .iter()
        .find(|s| !seen.insert(s.keyid.as_str()))
    {
        return Err(ClientError::DuplicateSignature {
            role: role.to_string(),
            keyid: dup.keyid.clone(),
        });
    }
    Ok((md, canonical))
}

fn root_of(s: &Signed) -> Option<&Root> {
    match &s.body {
        Body::Root(r) => Some(r),
        _ => None,
    }
}

fn timestamp_of(s: &Signed) -> Option<&Timestamp> {
    match &s.body {
        Body::Timestamp(t) => Some(t),
        _ => None,
    }
}

fn snapshot_of(s: &Signed) -> Option<&Snapshot> {
    match &s.body {
        Body::Snapshot(t) => Some(t),
        _ => None,
    }
}

/// The targets body of trusted targets metadata.
pub fn targets_of(s: &Signed) -> Option<&Targets> {
    match &s.body {
        Body::Targets(t) => Some(t),
        _ => None,
    }
}

/// Check `md`'s signatures (over `canonical`) against the keys `delegator` assigns to `role`.
fn verify(
    md: &Metadata,
    canonical: &[u8],
    role: &str,
    delegator: &Signed,
) -> Result<(), ClientError> {
    verify_bytes(canonical, &md.signatures, role, role_keys(delegator, role)?)?;
    Ok(())
}

impl TrustedSet {
    /// Start from trusted root bytes (verified only against themselves: they are the trust
    /// anchor). `now` is the fixed reference time for every expiry check of this update.
    pub fn new(root_data: &[u8], now: DateTime<Utc>) -> Result<TrustedSet, ClientError> {
        let (md, canonical) = parse("root", root_data, "root")?;
        verify(&md, &canonical, "root", &md.signed)?;
        Ok(TrustedSet {
            now,
            root: md.signed,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
            delegations: BTreeSet::new(),
        })
    }

    /// The reference time of this update.
    pub fn reference_time(&self) -> DateTime<Utc> {
        self.now
    }

    /// The trusted root's `signed`.
    pub fn root_signed(&self) -> &Signed {
        &self.root
    }

    /// The trusted root body.
    pub fn root(&self) -> Result<&Root, ClientError> {
        root_of(&self.root).ok_or(ClientError::Order("trusted root is not root metadata"))
    }

    /// The trusted timestamp, if loaded.
    pub fn timestamp(&self) -> Option<&Signed> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if loaded.
    pub fn snapshot(&self) -> Option<&Signed> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role (top-level or delegated), if loaded.
    pub fn targets(&self, role: &str) -> Option<&Signed> {
        self.targets.get(role)
    }

    /// Whether `role` was loaded and verified as delegated by `delegator`.
    pub fn contains(&self, role: &str, delegator: &str) -> bool {
        self.delegations
            .contains(&(delegator.to_string(), role.to_string()))
    }

    fn expired(&self, role: &str, s: &Signed) -> Result<(), ClientError> {
        expired_at(role, s, self.now)
    }

    /// Accept root version N+1: signed by a threshold of the trusted root's root keys and by a
    /// threshold of its own. An expired intermediate root is fine; the final one is checked in
    /// `update_timestamp`.
    pub fn update_root(&mut self, data: &[u8]) -> Result<&Signed, ClientError> {
        if self.timestamp.is_some() {
            return Err(ClientError::Order("cannot update root after timestamp"));
        }
        let (md, canonical) = parse("root", data, "root")?;
        verify(&md, &canonical, "root", &self.root)?;
        let expected = self.root.version.saturating_add(1);
        if md.signed.version != expected {
            return Err(ClientError::BadVersion {
                role: "root".into(),
                expected,
                got: md.signed.version,
            });
        }
        verify(&md, &canonical, "root", &md.signed)?;
        self.root = md.signed;
        Ok(&self.root)
    }

    /// Check the final root has not expired.
    pub fn check_final_root(&self) -> Result<(), ClientError> {
        self.expired("root", &self.root)
    }

    /// Accept a timestamp. A lower version, or a lower snapshot version inside it, is a
    /// rollback; an equal version is `Unchanged`. An expired timestamp is stored (for rollback
    /// checks against the next one) but reported as an error.
    pub fn update_timestamp(&mut self, data: &[u8]) -> Result<TimestampUpdate, ClientError> {
        if self.snapshot.is_some() {
            return Err(ClientError::Order("cannot update timestamp after snapshot"));
        }
        self.check_final_root()?;
        let (md, canonical) = parse("timestamp", data, "timestamp")?;
        verify(&md, &canonical, "timestamp", &self.root)?;
        let new_ts = timestamp_of(&md.signed).ok_or(ClientError::Order("timestamp body"))?;
        if let Some(old) = &self.timestamp {
            if md.signed.version < old.version {
                return Err(ClientError::Rollback {
                    role: "timestamp".into(),
                    got: md.signed.version,
                    trusted: old.version,
                });
            }
            if md.signed.version == old.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            let old_snap = timestamp_of(old)
                .map(|t| t.snapshot_meta.version)
                .unwrap_or(0);
            if new_ts.snapshot_meta.version < old_snap {
                return Err(ClientError::Rollback {
                    role: format!("timestamp v{}: snapshot", md.signed.version),
                    got: new_ts.snapshot_meta.version,
                    trusted: old_snap,
                });
            }
        }
        self.timestamp = Some(md.signed);
        self.check_final_timestamp()?;
        Ok(TimestampUpdate::Updated)
    }

    fn snapshot_meta(&self) -> Result<&MetaFile, ClientError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(ClientError::Order("cannot use snapshot before timestamp"))?;
        timestamp_of(ts)
            .map(|t| &t.snapshot_meta)
            .ok_or(ClientError::Order("timestamp body"))
    }

    /// Check the trusted timestamp has not expired.
    pub fn check_final_timestamp(&self) -> Result<(), ClientError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(ClientError::Order("no timestamp loaded"))?;
        self.expired("timestamp", ts)
    }

    /// The snapshot entry of the trusted timestamp.
    pub fn timestamp_snapshot_meta(&self) -> Result<&MetaFile, ClientError> {
        self.snapshot_meta()
    }

    /// Accept a snapshot. Unless `trusted` (bytes this client verified and stored earlier),
    /// its length and hashes must match timestamp's entry, checked before signatures. No entry
    /// of the trusted snapshot may vanish or go down in version.
    pub fn update_snapshot(&mut self, data: &[u8], trusted: bool) -> Result<&Signed, ClientError> {
        if self.timestamp.is_none() {
            return Err(ClientError::Order(
                "cannot update snapshot before timestamp",
            ));
        }
        if self.targets.contains_key("targets") {
            return Err(ClientError::Order("cannot update snapshot after targets"));
        }
        self.check_final_timestamp()?;
        let meta = self.snapshot_meta()?;
        if !trusted {
            hashes::verify_length_and_hashes(data, meta.length, meta.hashes.as_ref()).map_err(
                |source| ClientError::Hash {
                    what: "snapshot (against timestamp)".into(),
                    source,
                },
            )?;
        }
        let (md, canonical) = parse("snapshot", data, "snapshot")?;
        verify(&md, &canonical, "snapshot", &self.root)?;
        if let (Some(old), Some(new)) = (
            self.snapshot.as_ref().and_then(snapshot_of),
            snapshot_of(&md.signed),
        ) {
            for (name, entry) in &old.meta {
                let Some(new_entry) = new.meta.get(name) else {
                    return Err(ClientError::MissingMeta {
                        version: md.signed.version,
                        entry: name.clone(),
                        trusted: entry.version,
                    });
                };
                if new_entry.version < entry.version {
                    return Err(ClientError::Rollback {
                        role: format!("snapshot v{}: {name}", md.signed.version),
                        got: new_entry.version,
                        trusted: entry.version,
                    });
                }
            }
        }
        self.snapshot = Some(md.signed);
        self.check_final_snapshot()?;
        self.snapshot.as_ref().ok_or(ClientError::Order("snapshot"))
    }

    fn check_final_snapshot(&self) -> Result<(), ClientError> {
        self.check_final_snapshot_at(self.now)
    }

    fn check_final_snapshot_at(&self, now: DateTime<Utc>) -> Result<(), ClientError> {
        let snap = self
            .snapshot
            .as_ref()
            .ok_or(ClientError::Order("no snapshot loaded"))?;
        expired_at("snapshot", snap, now)?;
        let expected = self.snapshot_meta()?.version;
        if snap.version != expected {
            return Err(ClientError::BadVersion {
                role: "snapshot".into(),
                expected,
                got: snap.version,
            });
        }
        Ok(())
    }

    /// The snapshot entry for `role`.
    pub fn snapshot_entry(&self, role: &str) -> Result<&MetaFile, ClientError> {
        let snap = self
            .snapshot
            .as_ref()
            .and_then(snapshot_of)
            .ok_or(ClientError::Order("no snapshot loaded"))?;
        snap.meta
            .get(&format!("{role}.json"))
            .ok_or_else(|| ClientError::NotListed {
                role: role.to_string(),
                parent: "snapshot",
            })
    }

    /// Accept top-level targets (delegated by root).
    pub fn update_targets(&mut self, data: &[u8]) -> Result<&Signed, ClientError> {
        self.update_delegated_targets(data, "targets", "root")
    }

    /// Accept targets metadata for `role`, delegated by `delegator` (root or a trusted targets
    /// role): length/hashes and version as snapshot lists them, signatures by the delegator's
    /// keys, not expired.
    pub fn update_delegated_targets(
        &mut self,
        data: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<&Signed, ClientError> {
        if self.snapshot.is_none() {
            return Err(ClientError::Order("cannot load targets before snapshot"));
        }
        self.check_final_snapshot()?;
        let delegator_signed = if delegator == "root" {
            &self.root
        } else {
            self.targets.get(delegator).ok_or(ClientError::Order(
                "cannot load targets before its delegator",
            ))?
        };
        let signed = self.verify_delegated_targets_at(data, role, delegator_signed, self.now)?;
        self.targets.insert(role.to_string(), signed);
        self.delegations
            .insert((delegator.to_string(), role.to_string()));
        self.targets.get(role).ok_or(ClientError::Order("targets"))
    }

    /// The checks of `update_delegated_targets` without adding anything to the set, for a
    /// caller that keeps delegated roles itself (a proxy resolving targets concurrently):
    /// `data` as targets metadata for `role`, its length/hashes and version as the trusted
    /// snapshot lists them, signed by a threshold of the keys `delegator` (the trusted root or
    /// a targets role verified against this set) assigns to `role`; neither it nor the
    /// snapshot expired at `now`. Returns the verified `signed`.
    pub fn verify_delegated_targets_at(
        &self,
        data: &[u8],
        role: &str,
        delegator: &Signed,
        now: DateTime<Utc>,
    ) -> Result<Signed, ClientError> {
        if self.snapshot.is_none() {
            return Err(ClientError::Order("cannot load targets before snapshot"));
        }
        self.check_final_snapshot_at(now)?;
        let meta = self.snapshot_entry(role)?;
        hashes::verify_length_and_hashes(data, meta.length, meta.hashes.as_ref()).map_err(
            |source| ClientError::Hash {
                what: format!("{role} (against snapshot)"),
                source,
            },
        )?;
        let (md, canonical) = parse(role, data, "targets")?;
        verify(&md, &canonical, role, delegator)?;
        if md.signed.version != meta.version {
            return Err(ClientError::BadVersion {
                role: role.to_string(),
                expected: meta.version,
                got: md.signed.version,
            });
        }
        expired_at(role, &md.signed, now)?;
        Ok(md.signed)
    }
}

fn expired_at(role: &str, s: &Signed, now: DateTime<Utc>) -> Result<(), ClientError> {
    if s.is_expired(now) {
        return Err(ClientError::Expired {
            role: role.to_string(),
            version: s.version,
            expires: s.expires,
            now,
        });
    }
    Ok(())
}
