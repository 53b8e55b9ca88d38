//! A generation: one verified state of the top-level metadata and the delegated roles
//! verified against it, the roles carried over to the next one, and what has expired.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tufpi_client::TrustedSet;
use tufpi_core::metadata::{Body, Signed};

use crate::sync::lock;

/// Most targets remembered as missing per generation (the set starts over when full).
const MISSING_CAP: usize = 100_000;

/// One verified state of the top-level metadata and the delegated roles verified against it.
pub(super) struct Generation {
    /// Root, timestamp, snapshot and top-level targets, verified by the refresh.
    pub(super) trusted: TrustedSet,
    /// The root (the top-level targets role's delegator) and the top-level targets role.
    pub(super) root: Arc<Signed>,
    pub(super) top: Arc<Signed>,
    /// Delegated roles verified against this generation, by (delegator, role).
    pub(super) roles: Mutex<HashMap<(String, String), Arc<Signed>>>,
    /// Targets no role of this generation lists (negative cache).
    pub(super) missing: Mutex<HashSet<String>>,
    pub(super) id: u64,
    pub(super) consistent: bool,
}

impl Generation {
    pub(super) fn new(
        trusted: TrustedSet,
        id: u64,
        prev: Option<&Generation>,
    ) -> Option<Generation> {
        let top = Arc::new(trusted.targets("targets")?.clone());
        let consistent = trusted.root().ok()?.consistent_snapshot();
        let roles = prev.map(|p| carry(p, &trusted)).unwrap_or_default();
        Some(Generation {
            root: Arc::new(trusted.root_signed().clone()),
            trusted,
            top,
            roles: Mutex::new(roles),
            missing: Mutex::new(HashSet::new()),
            id,
            consistent,
        })
    }

    pub(super) fn version(&self) -> (u64, Option<u64>) {
        (
            self.trusted.root_signed().version,
            self.trusted.timestamp().map(|s| s.version),
        )
    }

    /// A role as verified in this generation: the top-level targets, or a delegated role
    /// already loaded.
    pub(super) fn loaded(&self, role: &str, delegator: &str) -> Option<Arc<Signed>> {
        if role == "targets" && delegator == "root" {
            return Some(self.top.clone());
        }
        lock(&self.roles)
            .get(&(delegator.to_string(), role.to_string()))
            .cloned()
    }

    pub(super) fn is_missing(&self, path: &str) -> bool {
        lock(&self.missing).contains(path)
    }

    pub(super) fn set_missing(&self, path: &str) {
        let mut m = lock(&self.missing);
        if m.len() >= MISSING_CAP {
            m.clear();
        }
        m.insert(path.to_string());
    }
}

/// The delegated roles of `prev` that stay valid under `next`: same root, same top-level
/// targets, and each role's snapshot entry unchanged, along its whole delegation chain (so
/// the same bytes, verified against the same keys); none expired.
fn carry(prev: &Generation, next: &TrustedSet) -> HashMap<(String, String), Arc<Signed>> {
    let mut out = HashMap::new();
    let entry = |t: &TrustedSet, role: &str| t.snapshot_entry(role).ok().cloned();
    if prev.trusted.root_signed().version != next.root_signed().version
        || entry(&prev.trusted, "targets") != entry(next, "targets")
    {
        return out;
    }
    let old = lock(&prev.roles).clone();
    let now = Utc::now();
    let mut kept: HashSet<String> = HashSet::from(["targets".to_string()]);
    loop {
        let before = out.len();
        for ((delegator, role), s) in &old {
            let key = (delegator.clone(), role.clone());
            if out.contains_key(&key) || !kept.contains(delegator) || s.is_expired(now) {
                continue;
            }
            let e = entry(next, role);
            if e.is_some() && e == entry(&prev.trusted, role) {
                out.insert(key, s.clone());
                kept.insert(role.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Why the metadata behind a lookup of `path` is expired at `now`, if it is: the root, the
/// timestamp, the snapshot, or a loaded targets role that could list `path`.
pub(super) fn expired(gen: &Generation, path: &str, now: DateTime<Utc>) -> Option<String> {
    let t = &gen.trusted;
    let why = |role: &str, s: &Signed| {
        format!(
            "{role} v{} expired at {} (now {now}): freeze refused",
            s.version, s.expires
        )
    };
    let mut top = vec![("root", t.root_signed())];
    top.extend(t.timestamp().map(|s| ("timestamp", s)));
    top.extend(t.snapshot().map(|s| ("snapshot", s)));
    if let Some((role, s)) = top.into_iter().find(|(_, s)| s.is_expired(now)) {
        return Some(why(role, s));
    }
    // The delegation graph as far as it is loaded, every role that may list `path`.
    let mut stack = vec![("targets".to_string(), "root".to_string())];
    let mut seen = BTreeSet::new();
    while let Some((role, parent)) = stack.pop() {
        if seen.len() >= 1024 || !seen.insert((role.clone(), parent.clone())) {
            continue;
        }
        let Some(s) = gen.loaded(&role, &parent) else {
            continue;
        };
        if s.is_expired(now) {
            return Some(why(&role, &s));
        }
        if let Body::Targets(tg) = &s.body {
            if tg.targets.contains_key(path) {
                continue;
            }
            if let Some(d) = &tg.delegations {
                stack.extend(
                    d.roles_for_target(path)
                        .into_iter()
                        .map(|(r, _)| (r, role.clone())),
                );
            }
        }
    }
    None
}
