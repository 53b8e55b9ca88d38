//! The TUF side of the proxy: one `tufpi-client` updater (not `Sync`, so behind a mutex)
//! with a refresh policy, and verified downloads of targets. Lookups are serialised; the
//! downloads themselves run outside the lock, so different files come in in parallel.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{info, warn};
use tufpi_client::{AnyFetcher, FetchError, Fetcher, Updater, UpdaterConfig};
use tufpi_core::metadata::TargetFile;

use crate::error::ProxyError;

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

/// How fresh the metadata must be for a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A project page: refresh when the interval has passed.
    Page,
    /// A file the page (already fresh) links to: refresh only if it is not found.
    File,
}

struct State {
    updater: Updater,
    /// When the last refresh was attempted.
    last_attempt: Option<Instant>,
    /// Why the last refresh failed: until one succeeds, nothing is looked up.
    failure: Option<ProxyError>,
}

/// The trusted metadata and the way to fetch verified targets.
pub struct Trust {
    state: Mutex<State>,
    fetcher: Arc<dyn Fetcher>,
    interval: Duration,
    upstream: Upstream,
}

impl Trust {
    /// Open the trust store in `dir` (created from `root` if it holds no `root.json` yet:
    /// a root already there may have rotated past `root` and is kept).
    pub fn open(
        dir: &Path,
        root: &[u8],
        upstream: Upstream,
        interval: Duration,
        config: UpdaterConfig,
    ) -> Result<Trust, ProxyError> {
        if !dir.join("root.json").is_file() {
            Updater::init(dir, root).map_err(|e| ProxyError::Config(e.to_string()))?;
            info!(dir = %dir.display(), "trust store created from the given root");
        } else {
            info!(dir = %dir.display(), "using the trusted root already in the cache");
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
        Ok(Trust {
            state: Mutex::new(State {
                updater,
                last_attempt: None,
                failure: None,
            }),
            fetcher: Arc::new(make()?),
            interval,
            upstream,
        })
    }

    /// The upstream URLs.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take every later request down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn due(&self, st: &State) -> bool {
        match st.last_attempt {
            Some(t) => t.elapsed() >= self.interval,
            None => true,
        }
    }

    fn refresh_locked(&self, st: &mut State) {
        st.last_attempt = Some(Instant::now());
        let before = timestamp_version(&st.updater);
        match st.updater.refresh_at(Utc::now()) {
            Ok(()) => {
                if st.failure.take().is_some() {
                    info!("TUF metadata refresh succeeds again");
                }
                let after = timestamp_version(&st.updater);
                if after != before {
                    info!(timestamp = after, "TUF metadata updated");
                }
            }
            Err(e) => {
                let err = ProxyError::from_client(&e);
                warn!("TUF metadata refresh failed: {err}");
                st.failure = Some(err);
            }
        }
    }

    /// Refresh now (at startup), reporting the failure if any.
    pub fn refresh(&self) -> Result<(), ProxyError> {
        let mut st = self.lock();
        self.refresh_locked(&mut st);
        st.failure.clone().map_or(Ok(()), Err)
    }

    /// Look `path` up in the signed metadata, refreshing it as `fresh` asks (at most once per
    /// interval). `None`: no trusted role lists it.
    pub fn lookup(&self, path: &str, fresh: Freshness) -> Result<Option<Resolved>, ProxyError> {
        let mut st = self.lock();
        let due = self.due(&st);
        let mut refreshed = false;
        if due && (fresh == Freshness::Page || st.failure.is_some()) {
            self.refresh_locked(&mut st);
            refreshed = true;
        }
        let mut found = find(&mut st, path)?;
        if found.is_none() && fresh == Freshness::File && due && !refreshed {
            // Published since the last refresh, perhaps: look once more on fresh metadata.
            self.refresh_locked(&mut st);
            found = find(&mut st, path)?;
        }
        Ok(found)
    }

    /// Download a resolved target (never more than its signed length) and verify its length
    /// and every hash. Blocking; call it off the async runtime.
    pub fn fetch_verified(&self, t: &Resolved) -> Result<Vec<u8>, ProxyError> {
        let data = self
            .fetcher
            .fetch(&t.url, t.info.length)
            .map_err(|e| match e {
                FetchError::NotFound { .. } => ProxyError::Upstream(format!(
                    "target {:?} is in the signed metadata but the upstream does not have it: {e}",
                    t.path
                )),
                FetchError::TooLong { .. } => ProxyError::Verification(format!(
                    "target {:?}: {e} (signed length {})",
                    t.path, t.info.length
                )),
                other => ProxyError::Upstream(other.to_string()),
            })?;
        Updater::verify_target(&t.path, &t.info, &data).map_err(|e| ProxyError::from_client(&e))?;
        Ok(data)
    }

    /// One line on the trusted state, for `/health`.
    pub fn status(&self) -> (bool, String) {
        let st = self.lock();
        match (&st.failure, timestamp_version(&st.updater)) {
            (Some(e), _) => (false, e.to_string()),
            (None, Some(v)) => (true, format!("trusted timestamp v{v}")),
            (None, None) => (true, "not refreshed yet".into()),
        }
    }
}

fn find(st: &mut State, path: &str) -> Result<Option<Resolved>, ProxyError> {
    if let Some(e) = &st.failure {
        return Err(e.clone());
    }
    let Some(info) = st
        .updater
        .get_targetinfo(path)
        .map_err(|e| ProxyError::from_client(&e))?
    else {
        return Ok(None);
    };
    let url = st
        .updater
        .target_url(path, &info)
        .map_err(|e| ProxyError::from_client(&e))?;
    Ok(Some(Resolved {
        path: path.to_string(),
        info,
        url,
    }))
}

fn timestamp_version(u: &Updater) -> Option<u64> {
    u.trusted().timestamp().map(|s| s.version)
}
