//! Repository layout options (PEP 458 + TAP 15 defaults).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::plan::Plan;
use crate::store::RoleState;
use crate::target_hashes::TargetHashes;

/// A role whose expiry the policy sets ([`RepoConfig::expiry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryRole {
    /// `root`.
    Root,
    /// `targets`.
    Targets,
    /// The offline `bins` role delegating to the bin-n roles (default layout).
    Bins,
    /// A bin-n role (`bin-0000`, RSTUF's `bins-0`, …).
    Bin,
    /// `snapshot`.
    Snapshot,
    /// `timestamp`.
    Timestamp,
}

/// How `bins` delegates to the bin-n roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinsMode {
    /// TAP 15 `succinct_roles` (default).
    Succinct,
    /// Classic `roles` list with `path_hash_prefixes`.
    HashPrefix,
}

/// Layout and expiry policy of a repository.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// 2^bit_length bins (PEP 458: 14 → 16,384).
    pub bit_length: u32,
    /// Delegation style for the bins.
    pub bins_mode: BinsMode,
    /// Opt-in: targets signed by the online key and delegating to the bins directly (RSTUF).
    pub targets_online: bool,
    /// Bin role name prefix: `bin` gives `bin-0000` … `bin-3fff`.
    pub name_prefix: String,
    /// root expiry.
    pub root_expiry: Duration,
    /// targets and bins expiry.
    pub offline_expiry: Duration,
    /// timestamp expiry, and snapshot and bin-n expiry unless overridden below.
    pub online_expiry: Duration,
    /// snapshot expiry when it differs from `online_expiry` (RSTUF's per-role settings).
    pub snapshot_expiry: Option<Duration>,
    /// bin-n expiry when it differs from `online_expiry` (RSTUF's `bins` setting); staggered
    /// first expiries then stay within it (see [`RepoConfig::staggered_bin_expiry`]).
    pub bin_expiry: Option<Duration>,
    /// Hash algorithms every target lists.
    pub target_hashes: TargetHashes,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            bit_length: 14,
            bins_mode: BinsMode::Succinct,
            targets_online: false,
            name_prefix: "bin".into(),
            root_expiry: Duration::days(365),
            offline_expiry: Duration::days(365),
            online_expiry: Duration::days(1),
            snapshot_expiry: None,
            bin_expiry: None,
            target_hashes: TargetHashes::default(),
        }
    }
}

impl RepoConfig {
    /// Number of bins.
    pub fn bins(&self) -> u64 {
        1u64 << self.bit_length
    }

    /// How long a new version of `role` is valid: the one owner of the expiry rule.
    pub fn expiry(&self, role: ExpiryRole) -> Duration {
        match role {
            ExpiryRole::Root => self.root_expiry,
            ExpiryRole::Targets | ExpiryRole::Bins => self.offline_expiry,
            ExpiryRole::Timestamp => self.online_expiry,
            ExpiryRole::Snapshot => self.snapshot_expiry.unwrap_or(self.online_expiry),
            ExpiryRole::Bin => self.bin_expiry.unwrap_or(self.online_expiry),
        }
    }

    /// Expiry (Unix seconds) of a version of `role` signed at `now`.
    pub fn expires_at(&self, role: ExpiryRole, now: DateTime<Utc>) -> i64 {
        RoleState::ts(now + self.expiry(role))
    }

    /// First expiry (Unix seconds) of bin `k` of `n` signed together at `now`, staggered so
    /// the bins do not all fall due together. With `bin_expiry` set the expiries spread over
    /// the second half of it, never later than `now + bin_expiry`; without it (the default
    /// layout) over a second online period, as repositories have always been made.
    pub fn staggered_bin_expiry(&self, now: DateTime<Utc>, k: u64, n: u64) -> i64 {
        let full = self.expires_at(ExpiryRole::Bin, now);
        let span = self.expiry(ExpiryRole::Bin).num_seconds().max(1) as u128;
        let part = |span: u128| (k as u128 * span / n.max(1) as u128) as i64;
        match self.bin_expiry {
            None => full + part(span),
            Some(_) => full - part(span / 2),
        }
    }

    /// Bump snapshot then timestamp in `plan` (after everything else), each expiring as the
    /// policy says for a version signed at `now`.
    pub(crate) fn add_snapshot_and_timestamp(
        &self,
        plan: &mut Plan,
        current: &BTreeMap<String, RoleState>,
        now: DateTime<Utc>,
    ) {
        plan.bump(
            "snapshot",
            current,
            self.expires_at(ExpiryRole::Snapshot, now),
        );
        plan.bump(
            "timestamp",
            current,
            self.expires_at(ExpiryRole::Timestamp, now),
        );
    }

    /// Serialize to settings (key, value) pairs. The per-role overrides are listed only when
    /// set, so a repository without them stores what it always did.
    pub fn to_settings(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("bit_length", self.bit_length.to_string()),
            (
                "bins_mode",
                match self.bins_mode {
                    BinsMode::Succinct => "succinct".into(),
                    BinsMode::HashPrefix => "hash_prefix".into(),
                },
            ),
            ("targets_online", self.targets_online.to_string()),
            ("name_prefix", self.name_prefix.clone()),
            ("root_expiry_s", self.root_expiry.num_seconds().to_string()),
            (
                "offline_expiry_s",
                self.offline_expiry.num_seconds().to_string(),
            ),
            (
                "online_expiry_s",
                self.online_expiry.num_seconds().to_string(),
            ),
            ("target_hashes", self.target_hashes.to_string()),
        ];
        for (key, d) in [
            (SNAPSHOT_EXPIRY_KEY, self.snapshot_expiry),
            (BIN_EXPIRY_KEY, self.bin_expiry),
        ] {
            if let Some(d) = d {
                out.push((key, d.num_seconds().to_string()));
            }
        }
        out
    }

    /// Read back from settings; `get` returns a stored value.
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Option<RepoConfig> {
        let secs = |k: &str| get(k)?.parse::<i64>().ok().map(Duration::seconds);
        // Absent or blank: not overridden (repositories made before the keys existed, or an
        // override dropped). Unreadable:
        // the settings are corrupt, as for any other key.
        let optional = |k: &str| match get(k) {
            None => Some(None),
            Some(v) if v == NOT_OVERRIDDEN => Some(None),
            Some(v) => v.parse::<i64>().ok().map(|s| Some(Duration::seconds(s))),
        };
        Some(RepoConfig {
            bit_length: get("bit_length")?.parse().ok()?,
            bins_mode: match get("bins_mode")?.as_str() {
                "hash_prefix" => BinsMode::HashPrefix,
                _ => BinsMode::Succinct,
            },
            targets_online: get("targets_online")? == "true",
            name_prefix: get("name_prefix")?,
            root_expiry: secs("root_expiry_s")?,
            offline_expiry: secs("offline_expiry_s")?,
            online_expiry: secs("online_expiry_s")?,
            snapshot_expiry: optional(SNAPSHOT_EXPIRY_KEY)?,
            bin_expiry: optional(BIN_EXPIRY_KEY)?,
            // Repositories made before the setting existed listed both: they keep doing so.
            target_hashes: match get("target_hashes") {
                Some(t) => TargetHashes::parse(&t).ok()?,
                None => TargetHashes::legacy(),
            },
        })
    }
}

/// Settings key of [`RepoConfig::snapshot_expiry`] (seconds; absent: not overridden).
const SNAPSHOT_EXPIRY_KEY: &str = "snapshot_expiry_s";
/// Settings key of [`RepoConfig::bin_expiry`] (seconds; absent: not overridden).
const BIN_EXPIRY_KEY: &str = "bin_expiry_s";
/// What an override removed later is stored as: read back as absent.
const NOT_OVERRIDDEN: &str = "";

impl crate::Repository {
    /// Take the expiry policy of `policy` (its five expiry fields; the layout is kept) and
    /// store it. New versions use it; nothing is re-signed now.
    pub fn set_expiry_policy(&mut self, policy: &RepoConfig) -> Result<(), crate::RepoError> {
        let mut cfg = self.config.clone();
        cfg.root_expiry = policy.root_expiry;
        cfg.offline_expiry = policy.offline_expiry;
        cfg.online_expiry = policy.online_expiry;
        cfg.snapshot_expiry = policy.snapshot_expiry;
        cfg.bin_expiry = policy.bin_expiry;
        for (k, v) in cfg.to_settings() {
            self.store.set_setting(k, &v)?;
        }
        // An override dropped here may be stored from before: blank it.
        for (key, d) in [
            (SNAPSHOT_EXPIRY_KEY, cfg.snapshot_expiry),
            (BIN_EXPIRY_KEY, cfg.bin_expiry),
        ] {
            if d.is_none() {
                self.store.set_setting(key, NOT_OVERRIDDEN)?;
            }
        }
        self.config = cfg;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn round_trip(cfg: &RepoConfig) -> RepoConfig {
        let stored: BTreeMap<&str, String> = cfg.to_settings().into_iter().collect();
        RepoConfig::from_settings(|k| stored.get(k).cloned()).unwrap()
    }

    #[test]
    fn each_role_has_one_expiry() {
        let cfg = RepoConfig {
            root_expiry: Duration::days(365),
            offline_expiry: Duration::days(30),
            online_expiry: Duration::days(1),
            snapshot_expiry: Some(Duration::days(3)),
            bin_expiry: Some(Duration::days(5)),
            ..RepoConfig::default()
        };
        let days = |r| cfg.expiry(r).num_days();
        assert_eq!(days(ExpiryRole::Root), 365);
        assert_eq!(days(ExpiryRole::Targets), 30);
        assert_eq!(days(ExpiryRole::Bins), 30);
        assert_eq!(days(ExpiryRole::Timestamp), 1);
        assert_eq!(days(ExpiryRole::Snapshot), 3);
        assert_eq!(days(ExpiryRole::Bin), 5);
        // Without overrides, snapshot and bins follow the online expiry.
        let d = RepoConfig::default();
        assert_eq!(d.expiry(ExpiryRole::Snapshot), d.online_expiry);
        assert_eq!(d.expiry(ExpiryRole::Bin), d.online_expiry);
    }

    #[test]
    fn overrides_round_trip_and_old_settings_load_unchanged() {
        let d = RepoConfig::default();
        // A repository without the new keys stores and loads exactly what it did.
        assert!(d
            .to_settings()
            .iter()
            .all(|(k, _)| *k != SNAPSHOT_EXPIRY_KEY && *k != BIN_EXPIRY_KEY));
        let back = round_trip(&d);
        assert_eq!((back.snapshot_expiry, back.bin_expiry), (None, None));
        let cfg = RepoConfig {
            snapshot_expiry: Some(Duration::days(3)),
            bin_expiry: Some(Duration::hours(7)),
            ..RepoConfig::default()
        };
        let back = round_trip(&cfg);
        assert_eq!(back.snapshot_expiry, Some(Duration::days(3)));
        assert_eq!(back.bin_expiry, Some(Duration::hours(7)));
        // A blanked (dropped) override reads as absent; a corrupt one fails the load.
        let mut stored: BTreeMap<&str, String> = cfg.to_settings().into_iter().collect();
        stored.insert(BIN_EXPIRY_KEY, NOT_OVERRIDDEN.into());
        let back = RepoConfig::from_settings(|k| stored.get(k).cloned()).unwrap();
        assert_eq!(back.bin_expiry, None);
        stored.insert(BIN_EXPIRY_KEY, "soon".into());
        assert!(RepoConfig::from_settings(|k| stored.get(k).cloned()).is_none());
    }

    #[test]
    fn stagger_stays_within_a_set_bin_expiry() {
        let now = Utc::now();
        let n = 256;
        let cfg = RepoConfig {
            bin_expiry: Some(Duration::days(5)),
            ..RepoConfig::default()
        };
        let full = RoleState::ts(now + Duration::days(5));
        let all: Vec<i64> = (0..n)
            .map(|k| cfg.staggered_bin_expiry(now, k, n))
            .collect();
        assert_eq!(all[0], full);
        assert!(all.iter().all(|&e| e <= full));
        assert!(all
            .iter()
            .all(|&e| e > full - Duration::days(5).num_seconds() / 2));
        assert!(all.windows(2).all(|w| w[1] <= w[0]) && all[n as usize - 1] < full);
        // The default layout keeps its stagger over a second online period.
        let d = RepoConfig::default();
        let base = RoleState::ts(now + d.online_expiry);
        assert_eq!(d.staggered_bin_expiry(now, 0, n), base);
        assert_eq!(d.staggered_bin_expiry(now, 128, n), base + 43_200);
    }
}
