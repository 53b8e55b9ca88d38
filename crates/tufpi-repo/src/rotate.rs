//! Publishing ceremony results (new root, targets, bins) and key rotations. A new online key
//! is installed in the same plan that re-signs every online role with it, so there is no
//! moment when the published timestamp is signed by a key root no longer trusts.

use std::collections::BTreeSet;

use chrono::Utc;
use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::metadata::{Body, Metadata};

use tufpi_blob::Bytes;
use tufpi_fs::WriteOptions;

use crate::ceremony::{self, Edit};
use crate::config::ExpiryRole;
use crate::error::RepoError;
use crate::keys::{self, SigningKey};
use crate::layout;
use crate::plan::Plan;
use crate::repo::Repository;
use crate::store::RoleState;

/// The offline roles a ceremony may publish, in publishing order.
const ORDER: [&str; 3] = ["root", "targets", "bins"];

impl Repository {
    /// The currently published version of `role` (root, targets or bins).
    pub fn current(&self, role: &str) -> Result<Metadata, RepoError> {
        let v = self
            .roles
            .get(role)
            .map(|s| s.version)
            .ok_or_else(|| RepoError::NoRoleState {
                role: role.to_string(),
            })?;
        self.read_metadata(role, Some(v))
    }

    /// Check and publish new versions of offline roles (any of root, targets, bins), optionally
    /// installing a new online key. Each file must be the next version and meet its
    /// thresholds (root: the trusted root's and its own). Then bins, snapshot and timestamp are
    /// re-published as needed, in one crash-safe plan.
    pub fn publish_offline(
        &mut self,
        files: Vec<Metadata>,
        new_online: Option<PrivateKey>,
    ) -> Result<Vec<String>, RepoError> {
        self.publish_offline_key(files, new_online.map(SigningKey::new))
    }

    /// [`Repository::publish_offline`] with the new online key under a given identity (see
    /// [`SigningKey::with_identity`]: a root made elsewhere names the key its own way).
    pub fn publish_offline_key(
        &mut self,
        files: Vec<Metadata>,
        new_online: Option<SigningKey>,
    ) -> Result<Vec<String>, RepoError> {
        self.lock()?;
        self.finish_plan()?;
        let mut by_role: Vec<(String, Metadata)> = Vec::new();
        for md in files {
            let role = match &md.signed.body {
                Body::Root(_) => "root".to_string(),
                Body::Targets(t)
                    if t.delegations.as_ref().is_some_and(|d| {
                        d.succinct_roles.is_some()
                            || d.roles
                                .as_ref()
                                .is_some_and(|r| r.iter().any(|x| x.name != "bins"))
                    }) && !self.config.targets_online =>
                {
                    "bins".to_string()
                }
                Body::Targets(_) => "targets".to_string(),
                _ => {
                    return Err(RepoError::NotPublishable {
                        role_type: md.signed.role_type().to_string(),
                    })
                }
            };
            if by_role.iter().any(|(r, _)| *r == role) {
                return Err(RepoError::DuplicateRole { role });
            }
            by_role.push((role, md));
        }
        by_role.sort_by_key(|(r, _)| ORDER.iter().position(|o| o == r));

        let mut report = Vec::new();
        // The first publication (after `init_ceremony`) has no trusted root yet: the new root
        // is checked against itself, targets against it, bins against the new targets.
        let initial = !self.roles.contains_key("root");
        let needed: &'static [&'static str] = if self.config.targets_online {
            &["root"]
        } else {
            &ORDER
        };
        if initial && !needed.iter().all(|n| by_role.iter().any(|(r, _)| r == n)) {
            return Err(RepoError::FirstPublicationIncomplete { needed });
        }
        let first = |role: &str| {
            by_role
                .iter()
                .find(|(r, _)| r == role)
                .map(|(_, m)| m.clone())
        };
        let mut root = if initial {
            first("root").ok_or(RepoError::FirstPublicationIncomplete { needed })?
        } else {
            self.current("root")?
        };
        // (With targets online there are no bins to check against targets.)
        let mut targets = if initial {
            first("targets").unwrap_or_else(|| root.clone())
        } else {
            self.current("targets")?
        };
        for (role, md) in &by_role {
            let expected = self.roles.get(role).map(|s| s.version + 1).unwrap_or(1);
            if md.signed.version != expected {
                return Err(RepoError::NotNextVersion {
                    role: role.clone(),
                    expected,
                    got: md.signed.version,
                });
            }
            let delegator = if role == "bins" { &targets } else { &root };
            for line in ceremony::check(md, role, &root, delegator)? {
                report.push(format!("{role} v{}: {line}", md.signed.version));
            }
            match role.as_str() {
                "root" => root = md.clone(),
                "targets" => targets = md.clone(),
                _ => {}
            }
        }

        let online = match new_online {
            Some(k) => k,
            None => keys::require_in(&self.keys_dir, "online")?,
        };
        let rotated = self.online.as_ref().is_none_or(|o| o.keyid != online.keyid);
        check_online_trusted(&root, &online.keyid, self.config.targets_online)?;

        let mut plan = Plan::new();
        for (role, md) in &by_role {
            let bytes = if role == "root" {
                md.to_bytes()
            } else {
                md.to_compact_bytes()
            };
            // Create-only: a retried publication keeps the file already there.
            self.meta.put_new(
                &format!("{}.{role}.json", md.signed.version),
                Bytes::from(bytes),
            )?;
            plan.adopt(
                role.clone(),
                RoleState::new(md.signed.version, md.signed.expires),
            );
        }
        if rotated {
            // Staged now, installed once the plan that uses it is recorded (see run below).
            keys::stage_next_online_key(&self.keys_dir, &online)?;
            report.push(format!("online key is now {}", online.keyid));
        }
        let now = Utc::now();
        if initial && self.config.targets_online {
            let texp = self.config.expires_at(ExpiryRole::Targets, now);
            plan.set(
                "targets",
                RoleState {
                    version: 1,
                    expires: texp,
                },
            );
        }
        if initial {
            // Every bin, v1, before the snapshot that lists them; staggered expiries.
            let n = self.config.bins();
            for i in 0..n {
                let expires = self.config.staggered_bin_expiry(now, i, n);
                plan.set(
                    layout::bin_name(&self.config, i),
                    RoleState {
                        version: 1,
                        expires,
                    },
                );
            }
        }
        if rotated {
            let planned: BTreeSet<String> = plan.states().iter().map(|(n, _)| n.clone()).collect();
            for name in self.roles.keys() {
                let role = if layout::succinct_index(&self.config, name).is_some() {
                    ExpiryRole::Bin
                } else if self.config.targets_online && name == "targets" {
                    ExpiryRole::Targets
                } else {
                    continue;
                };
                if !planned.contains(name) {
                    plan.bump(name.clone(), &self.roles, self.config.expires_at(role, now));
                }
            }
        }
        self.config
            .add_snapshot_and_timestamp(&mut plan, &self.roles, now);
        self.online = Some(online);
        self.record(&plan)?;
        if rotated {
            keys::install_next_online(&self.keys_dir)?;
        }
        self.finish_plan()?;
        Ok(report)
    }

    /// Development repositories only (all keys in DIR/keys): replace the root key, signing the
    /// new root with the old and the new key.
    pub fn dev_rotate_root(&mut self) -> Result<Vec<String>, RepoError> {
        let old = keys::require_in(&self.keys_dir, "root")?;
        let new = SigningKey::new(PrivateKey::generate(Scheme::Ed25519)?);
        let current = self.current("root")?;
        let edits = [
            Edit::AddKey {
                role: "root".into(),
                keyid: new.keyid.clone(),
                key: new.public.clone(),
            },
            Edit::RemoveKey {
                role: "root".into(),
                keyid: old.keyid.clone(),
            },
        ];
        let mut md = ceremony::prepare(&current, &edits, self.config.expiry(ExpiryRole::Root))?;
        md.sign(&old.private, &old.keyid)?;
        md.sign(&new.private, &new.keyid)?;
        let report = self.publish_offline(vec![md], None)?;
        WriteOptions::new().mode(0o600).write(
            &self.keys_dir.join("root.pem"),
            new.private.to_pkcs8_pem()?.as_bytes(),
        )?;
        Ok(report)
    }

    /// Development repositories only: replace the online key (new root, new bins delegation —
    /// or targets when it is online — and every online role re-signed).
    pub fn dev_rotate_online(&mut self) -> Result<Vec<String>, RepoError> {
        let root_key = keys::require_in(&self.keys_dir, "root")?;
        let old = keys::require_in(&self.keys_dir, "online")?;
        let new = SigningKey::new(PrivateKey::generate(Scheme::Ed25519)?);
        let swap = |role: &str| {
            vec![
                Edit::AddKey {
                    role: role.into(),
                    keyid: new.keyid.clone(),
                    key: new.public.clone(),
                },
                Edit::RemoveKey {
                    role: role.into(),
                    keyid: old.keyid.clone(),
                },
            ]
        };
        let mut root_edits = [swap("snapshot"), swap("timestamp")].concat();
        if self.config.targets_online {
            root_edits.extend(swap("targets"));
        }
        let mut root = ceremony::prepare(
            &self.current("root")?,
            &root_edits,
            self.config.expiry(ExpiryRole::Root),
        )?;
        root.sign(&root_key.private, &root_key.keyid)?;
        let mut files = vec![root];
        if !self.config.targets_online {
            let bins_key = keys::require_in(&self.keys_dir, "bins")?;
            let mut bins = ceremony::prepare(
                &self.current("bins")?,
                &swap("bin-n"),
                self.config.expiry(ExpiryRole::Bins),
            )?;
            bins.sign(&bins_key.private, &bins_key.keyid)?;
            files.push(bins);
        }
        self.publish_offline(files, Some(new.private))
    }
}

/// The online key must be what root assigns to snapshot and timestamp (and to targets when
/// it is online). (Whether the bins delegation names it is not checked here.)
pub(crate) fn check_online_trusted(
    root: &Metadata,
    keyid: &str,
    targets_online: bool,
) -> Result<(), RepoError> {
    let r = root.as_root().ok_or_else(|| RepoError::WrongMetadataType {
        file: format!("root v{}", root.signed.version),
        expected: "root",
    })?;
    let mut roles = vec!["snapshot", "timestamp"];
    if targets_online {
        roles.push("targets");
    }
    for role in roles {
        let trusted = r
            .role(role)
            .is_some_and(|x| x.keyids.iter().any(|k| k == keyid));
        if !trusted {
            return Err(RepoError::OnlineKeyNotTrusted {
                root_version: root.signed.version,
                keyid: keyid.to_string(),
                role,
            });
        }
    }
    Ok(())
}
