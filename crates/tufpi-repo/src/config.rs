//! Repository layout options (PEP 458 + TAP 15 defaults).

use chrono::Duration;

use crate::target_hashes::TargetHashes;

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
    /// timestamp, snapshot and bin-n expiry.
    pub online_expiry: Duration,
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
            target_hashes: TargetHashes::default(),
        }
    }
}

impl RepoConfig {
    /// Number of bins.
    pub fn bins(&self) -> u64 {
        1u64 << self.bit_length
    }

    /// Serialize to settings (key, value) pairs.
    pub fn to_settings(&self) -> Vec<(&'static str, String)> {
        vec![
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
        ]
    }

    /// Read back from settings; `get` returns a stored value.
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Option<RepoConfig> {
        let secs = |k: &str| get(k)?.parse::<i64>().ok().map(Duration::seconds);
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
            // Repositories made before the setting existed listed both: they keep doing so.
            target_hashes: match get("target_hashes") {
                Some(t) => TargetHashes::parse(&t).ok()?,
                None => TargetHashes::legacy(),
            },
        })
    }
}

impl crate::Repository {
    /// Change the expiry policy (new versions use it; nothing is re-signed now) and store it.
    pub fn set_expiry_policy(
        &mut self,
        root_expiry: Duration,
        offline_expiry: Duration,
        online_expiry: Duration,
    ) -> Result<(), crate::RepoError> {
        let mut cfg = self.config.clone();
        cfg.root_expiry = root_expiry;
        cfg.offline_expiry = offline_expiry;
        cfg.online_expiry = online_expiry;
        for (k, v) in cfg.to_settings() {
            self.store.set_setting(k, &v)?;
        }
        self.config = cfg;
        Ok(())
    }
}
