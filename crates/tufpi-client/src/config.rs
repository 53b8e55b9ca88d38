//! Client configuration, with python-tuf's defaults.

use std::time::Duration;

/// Limits and switches of the updater.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Most root versions to step through in one update.
    pub max_root_rotations: u32,
    /// Most delegated roles to visit when searching for a target.
    pub max_delegations: usize,
    /// Cap on a root file, bytes.
    pub root_max_length: u64,
    /// Cap on timestamp, bytes.
    pub timestamp_max_length: u64,
    /// Cap on snapshot when timestamp gives no length, bytes.
    pub snapshot_max_length: u64,
    /// Cap on targets metadata when snapshot gives no length, bytes.
    pub targets_max_length: u64,
    /// With consistent snapshots, fetch targets as `dir/HASH.name` (off: content-addressed
    /// paths such as PyPI's `packages/…` are fetched as they are).
    pub prefix_targets_with_hash: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Overall timeout of one download.
    pub fetch_timeout: Duration,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        UpdaterConfig {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512_000,
            timestamp_max_length: 16_384,
            snapshot_max_length: 2_000_000,
            targets_max_length: 5_000_000,
            prefix_targets_with_hash: true,
            connect_timeout: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(120),
        }
    }
}
