//! What the repository keeps between runs, whatever keeps it: role versions and expiries,
//! the durable queue of pending changes, the in-flight publish plan, per-bin target counts.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::change::Change;
use crate::error::RepoError;

/// Version and expiry of a role as last planned or published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleState {
    /// Metadata version.
    pub version: u64,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

impl RoleState {
    /// `version`, expiring at `expires`.
    pub fn new(version: u64, expires: DateTime<Utc>) -> RoleState {
        RoleState {
            version,
            expires: RoleState::ts(expires),
        }
    }

    /// The expiry as a time.
    pub fn expiry(&self) -> DateTime<Utc> {
        RoleState::at(self.expires)
    }

    /// Unix seconds of `t`: how expiries are kept.
    pub fn ts(t: DateTime<Utc>) -> i64 {
        t.timestamp()
    }

    /// The time `secs` Unix seconds stand for (the last representable one if out of range).
    pub fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Given the touched bins and the last sequence number taken, the role states to record and
/// the plan text to store.
pub type PlanFn<'a> =
    dyn FnMut(&[u64], u64) -> Result<(Vec<(String, RoleState)>, String), RepoError> + 'a;

/// Persistent state of a repository. The published bin files are the record of which targets
/// each bin lists; the store keeps what is needed to make the next ones: the queue, role
/// versions and expiries, the in-flight plan, and per-bin target counts.
pub trait StateStore {
    /// Durably queue `(bin, change)` pairs in one transaction: all of them or, on the first
    /// error, none. Returns the last sequence number. Once this returns, the changes are
    /// acknowledged and will be published.
    fn enqueue_all(
        &mut self,
        changes: &mut dyn Iterator<Item = Result<(u64, Change), RepoError>>,
    ) -> Result<u64, RepoError>;
    /// In one transaction: queue each of `changes` whose path has no change queued (one a
    /// writer queued since the caller read the published state wins), and store setting
    /// `key` = `value`. Returns how many were queued.
    fn enqueue_unqueued_and_set(
        &mut self,
        changes: Vec<(u64, Change)>,
        key: &str,
        value: &str,
    ) -> Result<u64, RepoError>;
    /// Number of queued changes not yet published.
    fn pending(&self) -> Result<u64, RepoError>;
    /// In one transaction: take up to `limit` queued changes in order and call `plan` with
    /// the bins they touch to obtain the role states and the plan text to record. The
    /// changes stay queued until `clear_plan` says they are published. Returns (the last
    /// sequence number taken, how many changes), or (0, 0) if the queue is empty.
    fn plan_batch(&mut self, limit: usize, plan: &mut PlanFn<'_>) -> Result<(u64, u64), RepoError>;
    /// The queued changes of `bin` up to sequence number `upto`, in queue order.
    fn changes_in_bin(&self, bin: u64, upto: u64) -> Result<Vec<Change>, RepoError>;
    /// The queued changes of each of `bins` up to sequence number `upto`, in queue order
    /// (a bin with none is absent). One query where the store can (a remote database).
    fn changes_in_bins(
        &self,
        bins: &[u64],
        upto: u64,
    ) -> Result<std::collections::BTreeMap<u64, Vec<Change>>, RepoError> {
        let mut out = std::collections::BTreeMap::new();
        for &b in bins {
            let c = self.changes_in_bin(b, upto)?;
            if !c.is_empty() {
                out.insert(b, c);
            }
        }
        Ok(out)
    }
    /// Record role states and a plan without taking queue items (expiry refresh, rotation).
    fn record_plan(&mut self, roles: &[(String, RoleState)], plan: &str) -> Result<(), RepoError>;
    /// The stored in-flight plan, if a publish has not completed.
    fn plan(&self) -> Result<Option<String>, RepoError>;
    /// In one transaction: drop the queued changes up to `upto` (now published), store the
    /// target counts of the bins just written, and mark the plan as done.
    fn clear_plan(&mut self, upto: u64, counts: &[(u64, u64)]) -> Result<(), RepoError>;
    /// Every role's state.
    fn roles(&self) -> Result<BTreeMap<String, RoleState>, RepoError>;
    /// The number of targets each non-empty bin lists (as last published).
    fn bin_counts(&self) -> Result<BTreeMap<u64, u64>, RepoError>;
    /// Total number of targets published.
    fn target_count(&self) -> Result<u64, RepoError>;
    /// A stored setting.
    fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError>;
    /// Store a setting.
    fn set_setting(&mut self, key: &str, value: &str) -> Result<(), RepoError>;
    /// Every stored setting, by key (a migration copies them all).
    fn settings(&self) -> Result<BTreeMap<String, String>, RepoError>;
}
