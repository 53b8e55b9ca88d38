//! The publish plan: which roles a publish writes, at which new versions. A plan is recorded
//! in the state store (the new role states, and the plan's text) before any file is written,
//! so a publisher killed at any point finishes the same plan on restart.

use std::collections::BTreeMap;

use tufpi_core::json::{self, Map, Value};

use crate::config::RepoConfig;
use crate::error::RepoError;
use crate::layout;
use crate::store::RoleState;

/// What a publish writes. One list of roles, each with the state it moves to: the roles the
/// publisher (re)writes, in order, plus roles whose new files are already in place (a
/// ceremony's output), which are only recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Roles to (re)write at their recorded versions, in order.
    roles: Vec<String>,
    /// The new state of every role the plan moves on (those in `roles` and those adopted).
    /// Kept in the store's role table, not in the plan's text: empty in a parsed plan.
    states: Vec<(String, RoleState)>,
    /// Queued changes up to this sequence number are applied (0: none).
    pub upto: u64,
    /// The bins' new files were written ahead into the staging store (bulk import).
    pub staged: bool,
    /// The key prefix of this plan's staged files (`""`: the staging store's top level, as
    /// in a local staging directory; a shared store gives each import its own).
    pub prefix: String,
    /// Target counts of staged bins.
    pub counts: BTreeMap<String, u64>,
}

impl Plan {
    /// An empty plan applying no queued changes.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// A plan applying the queued changes up to sequence number `upto`.
    pub fn applying(upto: u64) -> Plan {
        Plan {
            upto,
            ..Plan::default()
        }
    }

    /// Write `name` at `state`.
    pub fn set(&mut self, name: impl Into<String>, state: RoleState) {
        let name = name.into();
        self.roles.push(name.clone());
        self.states.push((name, state));
    }

    /// Write the next version of `name` (its version in `current` + 1, or 1), expiring at
    /// `expires` (Unix seconds).
    pub fn bump(
        &mut self,
        name: impl Into<String>,
        current: &BTreeMap<String, RoleState>,
        expires: i64,
    ) {
        let name = name.into();
        let version = current.get(&name).map_or(0, |s| s.version) + 1;
        self.set(name, RoleState { version, expires });
    }

    /// Write staged bin `name` at `state`; it lists `count` targets.
    pub fn stage(&mut self, name: impl Into<String>, state: RoleState, count: u64) {
        let name = name.into();
        self.staged = true;
        self.counts.insert(name.clone(), count);
        self.set(name, state);
    }

    /// Record `name` at `state` without writing it: its file is already in place.
    pub fn adopt(&mut self, name: impl Into<String>, state: RoleState) {
        self.states.push((name.into(), state));
    }

    /// Whether the plan writes `name`.
    pub fn writes(&self, name: &str) -> bool {
        self.roles.iter().any(|n| n == name)
    }

    /// The roles the plan writes, in order.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The bins the plan writes: (name, index).
    pub fn bins(&self, cfg: &RepoConfig) -> Vec<(String, u64)> {
        self.roles
            .iter()
            .filter_map(|n| Some((n.clone(), layout::succinct_index(cfg, n)?)))
            .collect()
    }

    /// The new role states to record with the plan.
    pub fn states(&self) -> &[(String, RoleState)] {
        &self.states
    }

    /// The stored form (the roles to write and how; not the states).
    pub fn text(&self) -> String {
        let mut m = Map::new();
        m.insert(
            "roles".into(),
            Value::Array(self.roles.iter().cloned().map(Value::String).collect()),
        );
        m.insert("upto".into(), Value::from(self.upto));
        m.insert("staged".into(), Value::Bool(self.staged));
        if !self.prefix.is_empty() {
            m.insert("prefix".into(), Value::String(self.prefix.clone()));
        }
        m.insert(
            "counts".into(),
            Value::Object(
                self.counts
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(*v)))
                    .collect(),
            ),
        );
        String::from_utf8(json::canonical(&Value::Object(m)).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Parse the stored form (the states are in the store's role table).
    pub fn parse(text: &str) -> Result<Plan, RepoError> {
        let bad = |detail: &str| RepoError::CorruptStore {
            what: "plan",
            detail: detail.to_string(),
        };
        let v = json::parse(text.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let o = v.as_object().ok_or_else(|| bad("not an object"))?;
        let roles = match o.get("roles") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| bad("role")))
                .collect::<Result<_, _>>()?,
            _ => return Err(bad("no roles")),
        };
        let upto = o.get("upto").and_then(u64_of).unwrap_or(0);
        let staged = matches!(o.get("staged"), Some(Value::Bool(true)));
        let prefix = o
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let counts = match o.get("counts") {
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), u64_of(v)?)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Plan {
            roles,
            states: Vec::new(),
            upto,
            staged,
            prefix,
            counts,
        })
    }
}

fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => i.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(version: u64) -> RoleState {
        RoleState {
            version,
            expires: 100,
        }
    }

    #[test]
    fn one_list_of_roles_and_states() {
        let current = BTreeMap::from([
            ("bin-1".to_string(), st(4)),
            ("snapshot".to_string(), st(9)),
            ("timestamp".to_string(), st(10)),
        ]);
        let mut p = Plan::applying(7);
        p.adopt("root", st(2));
        p.bump("bin-1", &current, 50);
        p.bump("bin-2", &current, 50);
        p.bump("snapshot", &current, 60);
        p.bump("timestamp", &current, 60);
        assert_eq!(p.roles(), ["bin-1", "bin-2", "snapshot", "timestamp"]);
        let states: Vec<(&str, u64, i64)> = p
            .states()
            .iter()
            .map(|(n, s)| (n.as_str(), s.version, s.expires))
            .collect();
        assert_eq!(
            states,
            [
                ("root", 2, 100),
                ("bin-1", 5, 50),
                ("bin-2", 1, 50),
                ("snapshot", 10, 60),
                ("timestamp", 11, 60)
            ]
        );
        assert!(!p.writes("root") && p.writes("bin-2"));
        let cfg = RepoConfig {
            bit_length: 2,
            ..RepoConfig::default()
        };
        assert_eq!(
            p.bins(&cfg),
            [("bin-1".to_string(), 1), ("bin-2".to_string(), 2)]
        );
    }

    #[test]
    fn text_round_trips_without_states() {
        let mut p = Plan::new();
        p.stage("bin-3", st(2), 17);
        p.bump("snapshot", &BTreeMap::new(), 5);
        p.bump("timestamp", &BTreeMap::new(), 5);
        let text = p.text();
        assert_eq!(
            text,
            r#"{"counts":{"bin-3":17},"roles":["bin-3","snapshot","timestamp"],"staged":true,"upto":0}"#
        );
        let back = Plan::parse(&text).unwrap();
        assert_eq!(back.roles(), p.roles());
        assert!(back.staged && back.counts == p.counts && back.upto == 0);
        assert!(back.states().is_empty());
        let old = Plan::parse(r#"{"roles":["snapshot","timestamp"],"upto":3}"#).unwrap();
        assert_eq!((old.upto, old.staged), (3, false));
        let mut p = Plan::new();
        p.stage("bin-1", st(2), 1);
        p.prefix = "import-7".into();
        assert_eq!(Plan::parse(&p.text()).unwrap().prefix, "import-7");
        for bad in ["[]", "{}", r#"{"roles":[1]}"#, "x"] {
            let e = Plan::parse(bad).unwrap_err().to_string();
            assert!(e.contains("stored plan"), "{bad}: {e}");
        }
    }
}
