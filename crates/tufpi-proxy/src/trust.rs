//! The TUF side of the proxy: one `tufpi-client` updater (not `Sync`, so behind a mutex)
//! with a refresh policy, and verified downloads of targets. Lookups are serialised; the
//! downloads themselves run outside the lock (at most `max_downloads` at once), so different
//! files come in in parallel.
//!
//! The policy: every lookup (page or file) refreshes once the refresh interval has passed,
//! and no lookup is ever answered from metadata that has expired by now (root, timestamp,
//! snapshot, targets, or a delegated role on the way to the target): that forces a refresh,
//! and if the refresh cannot replace it, the answer is the refusal.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tracing::{error, info, warn};
use tufpi_client::{AnyFetcher, FetchError, Fetcher, TrustedSet, Updater, UpdaterConfig};
use tufpi_core::metadata::{Body, Signed, TargetFile};

use crate::error::{redact, ProxyError};

/// The root `--root` gave when this trust store was created: later runs compare theirs.
const ANCHOR: &str = "proxy-initial-root.json";

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

struct State {
    updater: Updater,
    /// When the last refresh was attempted.
    last_attempt: Option<Instant>,
    /// Why the last refresh failed: until one succeeds, nothing is looked up.
    failure: Option<ProxyError>,
}

/// What `/health` reports, kept apart from the updater so it never waits for a refresh.
#[derive(Default)]
struct Summary {
    failure: Option<String>,
    version: Option<u64>,
    /// The first expiry among root, timestamp, snapshot and targets: (role, version, when).
    expires: Option<(String, u64, DateTime<Utc>)>,
}

/// The trusted metadata and the way to fetch verified targets.
pub struct Trust {
    state: Mutex<State>,
    summary: Mutex<Summary>,
    fetcher: Arc<dyn Fetcher>,
    downloads: Arc<Semaphore>,
    interval: Duration,
    upstream: Upstream,
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
        Ok(Trust {
            state: Mutex::new(State {
                updater,
                last_attempt: None,
                failure: None,
            }),
            summary: Mutex::new(Summary::default()),
            fetcher: Arc::new(make()?),
            downloads: Arc::new(Semaphore::new(max_downloads.max(1))),
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
        lock(&self.state)
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
        let t = st.updater.trusted();
        let mut top = vec![("root", Some(t.root_signed()))];
        top.extend([
            ("timestamp", t.timestamp()),
            ("snapshot", t.snapshot()),
            ("targets", t.targets("targets")),
        ]);
        let expires = top
            .into_iter()
            .filter_map(|(role, s)| s.map(|s| (role.to_string(), s.version, s.expires)))
            .min_by_key(|r| r.2);
        *lock(&self.summary) = Summary {
            failure: st.failure.as_ref().map(ToString::to_string),
            version: timestamp_version(&st.updater),
            expires,
        };
    }

    /// Refresh now (at startup), reporting the failure if any.
    pub fn refresh(&self) -> Result<(), ProxyError> {
        let mut st = self.lock();
        self.refresh_locked(&mut st);
        st.failure.clone().map_or(Ok(()), Err)
    }

    /// Look `path` up in the signed metadata, refreshing it first once the interval has
    /// passed, and never on metadata expired by now. `None`: no trusted role lists it.
    pub fn lookup(&self, path: &str) -> Result<Option<Resolved>, ProxyError> {
        let mut st = self.lock();
        let mut refreshed = false;
        if self.due(&st) {
            self.refresh_locked(&mut st);
            refreshed = true;
        }
        let mut found = find(&mut st, path)?;
        if let Some(why) = expired(st.updater.trusted(), path, Utc::now()) {
            if !refreshed {
                info!("{why}; refreshing before answering");
                self.refresh_locked(&mut st);
                found = find(&mut st, path)?;
            }
            if let Some(why) = expired(st.updater.trusted(), path, Utc::now()) {
                return Err(ProxyError::Verification(why));
            }
        }
        Ok(found)
    }

    /// `fetch_verified` off the runtime, once one of the `max_downloads` slots is free.
    pub async fn download(self: &Arc<Self>, t: Resolved) -> Result<Vec<u8>, ProxyError> {
        let _slot = self
            .downloads
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ProxyError::Internal(e.to_string()))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.fetch_verified(&t))
            .await
            .map_err(|e| ProxyError::Internal(e.to_string()))?
    }

    /// Download a resolved target (never more than its signed length) and verify its length
    /// and every hash. Blocking; call it off the async runtime.
    pub fn fetch_verified(&self, t: &Resolved) -> Result<Vec<u8>, ProxyError> {
        let data = self
            .fetcher
            .fetch(&t.url, t.info.length)
            .map_err(|e| match e {
                FetchError::NotFound { .. } => ProxyError::Upstream(redact(&format!(
                    "target {:?} is in the signed metadata but the upstream does not have it: {e}",
                    t.path
                ))),
                FetchError::TooLong { .. } => ProxyError::Verification(redact(&format!(
                    "target {:?}: {e} (signed length {})",
                    t.path, t.info.length
                ))),
                other => ProxyError::Upstream(redact(&other.to_string())),
            })?;
        Updater::verify_target(&t.path, &t.info, &data).map_err(|e| ProxyError::from_client(&e))?;
        Ok(data)
    }

    /// One line on the trusted state, for `/health`: failing when the last refresh failed or
    /// the trusted metadata has expired since. Never waits for a refresh in progress.
    pub fn status(&self) -> (bool, String) {
        let sum = lock(&self.summary);
        match (&sum.failure, sum.version, &sum.expires) {
            (Some(e), _, _) => (false, e.clone()),
            (None, _, Some((role, v, at))) if *at <= Utc::now() => (
                false,
                format!("trusted {role} v{v} expired at {at} and no refresh has replaced it yet"),
            ),
            (None, Some(v), _) => (true, format!("trusted timestamp v{v}")),
            (None, None, _) => (true, "not refreshed yet".into()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// Why the metadata behind a lookup of `path` is expired at `now`, if it is: the root, the
/// timestamp, the snapshot, or a loaded targets role that could list `path`.
fn expired(t: &TrustedSet, path: &str, now: DateTime<Utc>) -> Option<String> {
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
    let mut stack = vec!["targets".to_string()];
    let mut seen = BTreeSet::new();
    while let Some(role) = stack.pop() {
        if seen.len() >= 1024 || !seen.insert(role.clone()) {
            continue;
        }
        let Some(s) = t.targets(&role) else { continue };
        if s.is_expired(now) {
            return Some(why(&role, s));
        }
        if let Body::Targets(tg) = &s.body {
            if tg.targets.contains_key(path) {
                continue;
            }
            if let Some(d) = &tg.delegations {
                stack.extend(d.roles_for_target(path).into_iter().map(|(r, _)| r));
            }
        }
    }
    None
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
