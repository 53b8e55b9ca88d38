//! Root metadata: the keys and thresholds of the top-level roles.

use std::collections::BTreeMap;

use super::error::MetadataError;
use super::fields::{invalid, Ctx, Obj};
use super::key::Key;
use super::key::{keys_from, keys_view};
use super::view::View;
use crate::json::{Map, Value};

/// Names of the top-level roles.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Keys and threshold of one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Keyids trusted for this role (unique).
    pub keyids: Vec<String>,
    /// Number of distinct keys that must sign (≥ 1).
    pub threshold: u64,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl Role {
    pub(crate) fn from_value(v: Value, ctx: Ctx<'_>) -> Result<Role, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let (keyids, threshold) = keyids_threshold(&mut o)?;
        Ok(Role {
            keyids,
            threshold,
            unrecognized: o.rest(),
        })
    }

    fn view(&self) -> View<'_> {
        View::obj(
            vec![
                ("keyids", View::strs(&self.keyids)),
                ("threshold", View::Int(self.threshold)),
            ],
            &self.unrecognized,
        )
    }
}

/// Read `keyids` (no duplicates) and `threshold` (≥ 1), as python-tuf's Role does.
pub(crate) fn keyids_threshold(o: &mut Obj) -> Result<(Vec<String>, u64), MetadataError> {
    let keyids = o.str_list("keyids")?;
    let mut seen = std::collections::BTreeSet::new();
    for k in &keyids {
        if !seen.insert(k) {
            return Err(invalid(
                Ctx::Field(&o.ctx, "keyids"),
                format!("duplicate keyid {k}"),
            ));
        }
    }
    let threshold = o.u64("threshold")?;
    if threshold < 1 {
        return Err(invalid(
            Ctx::Field(&o.ctx, "threshold"),
            "threshold must be at least 1",
        ));
    }
    Ok((keyids, threshold))
}

/// The body of root metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// `consistent_snapshot`; absent means false.
    pub consistent_snapshot: Option<bool>,
    /// keyid → key.
    pub keys: BTreeMap<String, Key>,
    /// The four top-level roles.
    pub roles: BTreeMap<String, Role>,
}

impl Root {
    pub(crate) fn take_from(o: &mut Obj) -> Result<Root, MetadataError> {
        let consistent_snapshot = o.opt_bool("consistent_snapshot")?;
        let keys = keys_from(o.obj("keys")?)?;
        let roles: BTreeMap<String, Role> = o
            .obj("roles")?
            .members(Role::from_value)?
            .into_iter()
            .collect();
        let names: Vec<&str> = roles.keys().map(String::as_str).collect();
        let mut expected = TOP_LEVEL_ROLES.to_vec();
        expected.sort_unstable();
        if names != expected {
            return Err(invalid(
                "signed.roles",
                format!("roles must be exactly {expected:?}, found {names:?}"),
            ));
        }
        Ok(Root {
            consistent_snapshot,
            keys,
            roles,
        })
    }

    pub(crate) fn fields(&self) -> Vec<(&'static str, View<'_>)> {
        let mut f = vec![
            ("keys", keys_view(&self.keys)),
            (
                "roles",
                View::entries(
                    self.roles
                        .iter()
                        .map(|(n, r)| (n.as_str(), r.view()))
                        .collect(),
                ),
            ),
        ];
        if let Some(cs) = self.consistent_snapshot {
            f.push(("consistent_snapshot", View::Bool(cs)));
        }
        f
    }

    /// Whether consistent snapshots are on.
    pub fn consistent_snapshot(&self) -> bool {
        self.consistent_snapshot.unwrap_or(false)
    }

    /// The keys and threshold of top-level role `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }
}
