//! The trust store's state: where the upstream is, the current generation, the refresh's
//! bookkeeping, the flights and download slots; and opening it (from `--root`, or the chain
//! the store already holds).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{watch, Semaphore};
use tracing::{error, info, warn};
use tufpi_client::quote::with_slash;
use tufpi_client::{AnyFetcher, Fetcher, TrustedSet, Updater, UpdaterConfig};
use tufpi_core::metadata::{Signed, TargetFile};

use super::flights::Flights;
use super::generation::Generation;
use crate::error::ProxyError;
use crate::sync::lock;

/// The root `--root` gave when this trust store was created: later runs compare theirs.
const ANCHOR: &str = "proxy-initial-root.json";

/// Most delegated-role downloads at once (a flood of unknown names that each need another
/// bin must not take every blocking thread; waiting for a slot costs nothing).
const METADATA_FETCHES: usize = 32;

/// Where the proxy finds the repository.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// TUF metadata base URL (`…/metadata/`).
    pub metadata_url: String,
    /// Target base URL: target paths are relative to it.
    pub target_base: String,
}

/// A target the signed metadata lists: its entry and the URL to fetch it from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Target path.
    pub path: String,
    /// Length and hashes, as signed.
    pub info: TargetFile,
    /// Upstream URL (hash-prefixed under consistent snapshots).
    pub url: String,
}

/// The result of loading a delegated role, shared by every lookup that waits for it:
/// the role, or the refusal and whether it is a consistent-snapshot race (the file is gone
/// because the repository moved on: refresh and look again).
pub(super) type RoleLoad = Result<Arc<Signed>, (bool, ProxyError)>;

/// Refresh bookkeeping (the single flight of refreshes).
#[derive(Default)]
pub(super) struct Refresh {
    /// When the last finished attempt started, and how it ended.
    pub(super) last: Option<(Instant, Result<(), ProxyError>)>,
    /// The attempt in progress: when it started, and its result to come.
    pub(super) running: Option<(Instant, RefreshRx)>,
    /// When the last successful attempt finished.
    pub(super) last_success: Option<Instant>,
}

/// What `/health` reports about the trusted metadata, kept apart from the refresh.
#[derive(Default)]
pub(super) struct Summary {
    pub(super) failure: Option<String>,
    pub(super) version: Option<u64>,
    /// The first expiry among root, timestamp, snapshot and targets: (role, version, when).
    pub(super) expires: Option<(String, u64, DateTime<Utc>)>,
}

pub(super) type RefreshRx = watch::Receiver<Option<Result<(), ProxyError>>>;

/// The trusted metadata and the way to fetch verified targets.
pub struct Trust {
    /// The refresher's updater: locked only by the refresh in progress (one at a time).
    pub(super) updater: Mutex<Updater>,
    /// The current generation: replaced whole by a refresh, read by cloning the `Arc`.
    pub(super) current: Mutex<Option<Arc<Generation>>>,
    pub(super) generations: AtomicU64,
    pub(super) refresh: Mutex<Refresh>,
    pub(super) summary: Mutex<Summary>,
    pub(super) roles: Flights<(u64, String, String), RoleLoad>,
    pub(super) transfers: Flights<(String, String), Result<Bytes, ProxyError>>,
    pub(super) dir: PathBuf,
    pub(super) fetcher: Arc<dyn Fetcher>,
    pub(super) metadata_fetches: Arc<Semaphore>,
    pub(super) downloads: Arc<Semaphore>,
    pub(super) interval: Duration,
    /// A refresh in progress longer than this is reported by `/health`.
    pub(super) stuck_after: Duration,
    pub(super) config: UpdaterConfig,
    pub(super) upstream: Upstream,
}

impl Trust {
    /// Open the trust store in `dir` (created from `root` if it holds no `root.json` yet:
    /// a root already there may have rotated past `root` and is kept, with a loud warning if
    /// the store was not started from `root`). At most `max_downloads` targets are fetched
    /// at once.
    pub fn open(
        dir: &Path,
        root: &[u8],
        upstream: Upstream,
        interval: Duration,
        max_downloads: usize,
        config: UpdaterConfig,
    ) -> Result<Trust, ProxyError> {
        let given = TrustedSet::new(root, Utc::now())
            .map_err(|e| ProxyError::Config(format!("the given root: {e}")))?;
        if !dir.join("root.json").is_file() {
            Updater::init(dir, root).map_err(|e| ProxyError::Config(e.to_string()))?;
            if let Err(e) = std::fs::write(dir.join(ANCHOR), root) {
                warn!("recording the initial root in {}: {e}", dir.display());
            }
            info!(dir = %dir.display(), "trust store created from the given root");
        } else {
            check_anchor(dir, root, given.root_signed().version);
        }
        let make = || {
            AnyFetcher::new(config.connect_timeout, config.fetch_timeout)
                .map_err(|e| ProxyError::Config(e.to_string()))
        };
        let updater = Updater::new(
            dir,
            &upstream.metadata_url,
            Some(&upstream.target_base),
            Box::new(make()?),
            config.clone(),
        )
        .map_err(|e| ProxyError::Config(e.to_string()))?;
        let upstream = Upstream {
            metadata_url: with_slash(&upstream.metadata_url),
            target_base: with_slash(&upstream.target_base),
        };
        Ok(Trust {
            updater: Mutex::new(updater),
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
            refresh: Mutex::new(Refresh::default()),
            summary: Mutex::new(Summary::default()),
            roles: Flights::default(),
            transfers: Flights::default(),
            dir: dir.to_path_buf(),
            fetcher: Arc::new(make()?),
            metadata_fetches: Arc::new(Semaphore::new(METADATA_FETCHES)),
            downloads: Arc::new(Semaphore::new(max_downloads.max(1))),
            interval,
            stuck_after: (config.fetch_timeout / 2)
                .clamp(Duration::from_secs(1), Duration::from_secs(10)),
            config,
            upstream,
        })
    }

    /// The upstream URLs.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub(super) fn generation(&self) -> Option<Arc<Generation>> {
        lock(&self.current).clone()
    }
}

/// Warn (loudly) when `root` is not the root this store was created from: the store's own,
/// possibly rotated, trust chain is what the proxy uses.
fn check_anchor(dir: &Path, root: &[u8], given_version: u64) {
    let d = dir.display();
    match std::fs::read(dir.join(ANCHOR)) {
        Ok(anchor) if anchor == root => {
            info!(dir = %d, "using the trust chain in the cache, started from the given root")
        }
        Ok(_) => error!(
            "--root (v{given_version}) is NOT the root the trust store {d} was created from: the \
             store's own trust chain is used and --root is ignored; remove {d} to start over \
             from --root"
        ),
        Err(_) => {
            let cached = std::fs::read(dir.join("root.json")).unwrap_or_default();
            if cached != root {
                let v = TrustedSet::new(&cached, Utc::now())
                    .map(|t| t.root_signed().version.to_string())
                    .unwrap_or_else(|_| "?".into());
                warn!(
                    "the trust store {d} holds root v{v}, not the given --root (v{given_version}), \
                     and does not record the root it was created from: its own trust chain is \
                     used; remove {d} to start over from --root"
                );
            }
        }
    }
}
