//! The search for a target in the delegation graph: pre-order depth-first, as the spec
//! (5.6.7) and python-tuf do it, visiting at most `max_delegations` roles. Free of I/O: the
//! caller loads each role the walk asks for (from its cache or the network, blocking or
//! async), verifies it, and shows its targets to the walk. The updater and the proxy both
//! walk this way.
//!
//! ```text
//! let mut walk = TargetWalk::new(path, max_delegations, ());
//! while let Some(next) = walk.next_role() {
//!     let signed = load(&next.role, &next.parent)?;      // verified by the caller
//!     if let Some(info) = walk.visit(&next.role, targets_of(&signed)?, ()) {
//!         return Ok(Some(info.clone()));
//!     }
//! }
//! Ok(None)                                               // no trusted role lists it
//! ```

use std::collections::BTreeSet;

use tracing::{debug, warn};
use tufpi_core::metadata::{TargetFile, Targets};

/// A role the walk wants to look in next.
#[derive(Debug, Clone)]
pub struct Pending<T> {
    /// The role's name.
    pub role: String,
    /// The role that delegates to it (`root` for top-level `targets`).
    pub parent: String,
    /// What the caller gave when it showed the parent (`TargetWalk::visit`), e.g. the
    /// parent's verified metadata, against which the role is verified.
    pub from: T,
}

/// One search for one target path.
#[derive(Debug)]
pub struct TargetWalk<'p, T> {
    target_path: &'p str,
    max_delegations: usize,
    to_visit: Vec<Pending<T>>,
    visited: BTreeSet<String>,
}

impl<'p, T> TargetWalk<'p, T> {
    /// A search for `target_path` starting at top-level `targets` (delegated by `root`,
    /// which `top` stands for), visiting at most `max_delegations` delegated roles beyond it.
    pub fn new(target_path: &'p str, max_delegations: usize, top: T) -> Self {
        TargetWalk {
            target_path,
            max_delegations,
            to_visit: vec![Pending {
                role: "targets".into(),
                parent: "root".into(),
                from: top,
            }],
            visited: BTreeSet::new(),
        }
    }

    /// The next role to load and `visit`, or `None` when the search is over: nothing is left
    /// to visit (the target is not listed by any trusted role), or the limit is reached.
    pub fn next_role(&mut self) -> Option<Pending<T>> {
        loop {
            if self.visited.len() > self.max_delegations {
                if !self.to_visit.is_empty() {
                    warn!(
                        "{}: gave up after visiting {} delegated roles",
                        self.target_path,
                        self.visited.len()
                    );
                    self.to_visit.clear();
                }
                return None;
            }
            let next = self.to_visit.pop()?;
            if !self.visited.contains(&next.role) {
                return Some(next);
            }
        }
    }

    /// Look in `role` (the role `next_role` gave, loaded and verified): the target's entry if
    /// it lists the target, else its delegations trusted for the target are queued, in
    /// order, up to the first terminating one, each carrying `from` (what its verification
    /// needs from `role`).
    pub fn visit<'t>(&mut self, role: &str, targets: &'t Targets, from: T) -> Option<&'t TargetFile>
    where
        T: Clone,
    {
        if let Some(t) = targets.targets.get(self.target_path) {
            debug!(role, target_path = self.target_path, "target found");
            return Some(t);
        }
        self.visited.insert(role.to_string());
        if let Some(d) = &targets.delegations {
            let mut children = Vec::new();
            for (child, terminating) in d.roles_for_target(self.target_path) {
                children.push(Pending {
                    role: child,
                    parent: role.to_string(),
                    from: from.clone(),
                });
                if terminating {
                    self.to_visit.clear();
                    break;
                }
            }
            self.to_visit.extend(children.into_iter().rev());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tufpi_core::json::Map;
    use tufpi_core::metadata::{DelegatedRole, Delegations};

    use super::*;

    fn role(name: &str, paths: &[&str], terminating: bool) -> DelegatedRole {
        DelegatedRole {
            name: name.into(),
            keyids: Vec::new(),
            threshold: 1,
            terminating,
            paths: Some(paths.iter().map(|p| p.to_string()).collect()),
            path_hash_prefixes: None,
            unrecognized: Map::new(),
        }
    }

    fn targets(listed: &[&str], roles: Vec<DelegatedRole>) -> Targets {
        Targets {
            targets: listed
                .iter()
                .map(|p| (p.to_string(), TargetFile::new(1, BTreeMap::new())))
                .collect(),
            delegations: (!roles.is_empty()).then(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(roles),
                succinct_roles: None,
                unrecognized: Map::new(),
            }),
        }
    }

    /// The roles a walk for `path` visits, given each role's targets.
    fn visits(path: &str, graph: &BTreeMap<&str, Targets>, max: usize) -> (Vec<String>, bool) {
        let mut walk = TargetWalk::new(path, max, 0u32);
        let mut seen = Vec::new();
        while let Some(next) = walk.next_role() {
            let depth = next.from;
            seen.push(format!("{}<{}@{depth}", next.role, next.parent));
            if walk
                .visit(&next.role, &graph[next.role.as_str()], depth + 1)
                .is_some()
            {
                return (seen, true);
            }
        }
        (seen, false)
    }

    #[test]
    fn preorder_depth_first_with_terminating_and_limit() {
        let mut g = BTreeMap::new();
        g.insert(
            "targets",
            targets(
                &[],
                vec![
                    role("a", &["*/*", "q"], false),
                    role("b", &["x/*"], true),
                    role("c", &["*/*", "q"], false),
                ],
            ),
        );
        g.insert("a", targets(&[], vec![role("a1", &["*/*", "q"], false)]));
        g.insert("a1", targets(&["y/z"], vec![]));
        g.insert("b", targets(&["x/f"], vec![]));
        g.insert("c", targets(&["x/g"], vec![]));
        // Pre-order: a, its child a1, then b (terminating: c is never visited).
        assert_eq!(
            visits("x/g", &g, 32),
            (
                vec![
                    "targets<root@0".into(),
                    "a<targets@1".into(),
                    "a1<a@2".into(),
                    "b<targets@1".into()
                ],
                false
            )
        );
        assert_eq!(visits("x/f", &g, 32).0.last().unwrap(), "b<targets@1");
        assert!(visits("y/z", &g, 32).1);
        // Not terminating: every role trusted for the path, in pre-order.
        assert_eq!(
            visits("q", &g, 32).0,
            ["targets<root@0", "a<targets@1", "a1<a@2", "c<targets@1"]
        );
        // The limit stops the walk.
        assert_eq!(visits("q", &g, 1).0.len(), 2);
        assert_eq!(visits("q", &g, 0).0.len(), 1);
    }
}
