//! The TUF side of the proxy: the trusted metadata, its refresh policy, target lookups and
//! verified downloads of targets. No network I/O ever happens under a lock that a lookup
//! waits for.
//!
//! - The top-level metadata (root chain, timestamp, snapshot, targets) is refreshed by one
//!   `tufpi-client` updater, owned by the refresh task: one refresh at a time (single
//!   flight), every lookup that needs one joins it. A successful refresh installs a new
//!   immutable *generation* (its `TrustedSet`) with one pointer swap, so a lookup sees one
//!   consistent snapshot of the metadata from start to end.
//! - Delegated roles (PEP 458's `bins` and `bin-n`) are loaded lazily per generation: from
//!   the local cache or the upstream, verified against the generation's snapshot and the
//!   delegator's keys, once per role however many lookups want it (single flight), without
//!   holding anything a lookup of another project needs. Roles whose snapshot entry did not
//!   change are carried over to the next generation.
//! - A target no role lists is remembered as missing for the generation (negative cache):
//!   asked again, it is a 404 at once, until a refresh brings a different snapshot.
//!
//! The policy: every lookup (page or file) waits for a refresh started no longer than the
//! refresh interval before it arrived; no lookup is answered while the last refresh failed,
//! nor from metadata that has expired by now (root, timestamp, snapshot, targets, or a
//! delegated role on the way to the target): that forces a refresh, and if the refresh cannot
//! replace it, the answer is the refusal. `/health` reports a refresh that hangs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, error, info, warn};
use tufpi_client::trusted::targets_of;
use tufpi_client::updater::{quote, target_url_for};
use tufpi_client::{
    redact, AnyFetcher, ClientError, FetchError, Fetcher, TrustedSet, Updater, UpdaterConfig,
};
use tufpi_core::metadata::{Body, Signed, TargetFile};

use crate::error::{ProxyError, Reason};

/// The root `--root` gave when this trust store was created: later runs compare theirs.
const ANCHOR: &str = "proxy-initial-root.json";

/// Most delegated-role downloads at once (a flood of unknown names that each need another
/// bin must not take every blocking thread; waiting for a slot costs nothing).
const METADATA_FETCHES: usize = 32;

/// Most targets remembered as missing per generation (the set starts over when full).
const MISSING_CAP: usize = 100_000;

/// How many times a lookup starts over on fresh metadata when a consistent-snapshot role it
/// was told to fetch is already gone (the repository moved on).
const RACE_RETRIES: usize = 3;

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

/// Single flight: at most one task per key, whose result every caller for the key gets. The
/// task is detached, so a caller that goes away (a client that hangs up) stops nothing and a
/// retry joins the same task. The map's lock is held only to look up or insert a key.
pub struct Flights<K, V> {
    map: FlightMap<K, V>,
}

type FlightMap<K, V> = Arc<Mutex<HashMap<K, (Instant, watch::Receiver<Option<V>>)>>>;

/// Takes a flight out of its map when its task ends, however it ends.
struct Landed<K: Hash + Eq, V>(FlightMap<K, V>, Option<K>);

impl<K: Hash + Eq, V> Drop for Landed<K, V> {
    fn drop(&mut self) {
        if let Some(k) = self.1.take() {
            lock(&self.0).remove(&k);
        }
    }
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Flights {
            map: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of the flight for `key`: joined if one is in the air, else `task()` started
    /// as one. `None` if the task panicked or the runtime is going down.
    pub async fn run<F>(&self, key: K, task: impl FnOnce() -> F) -> Option<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let mut rx = {
            let mut m = lock(&self.map);
            match m.get(&key) {
                Some((_, rx)) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    m.insert(key.clone(), (Instant::now(), rx.clone()));
                    let fut = task();
                    let landed = Landed(self.map.clone(), Some(key));
                    tokio::spawn(async move {
                        let v = fut.await;
                        let _ = tx.send(Some(v));
                        drop(landed);
                    });
                    rx
                }
            }
        };
        let out = rx.wait_for(Option::is_some).await.ok()?.clone();
        out
    }

    /// How many flights are in the air.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether no flight is in the air.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flight in the air longest: its key and when it started.
    pub fn oldest(&self) -> Option<(K, Instant)> {
        lock(&self.map)
            .iter()
            .min_by_key(|(_, (t, _))| *t)
            .map(|(k, (t, _))| (k.clone(), *t))
    }
}

/// One verified state of the top-level metadata and the delegated roles verified against it.
struct Generation {
    /// Root, timestamp, snapshot and top-level targets, verified by the refresh.
    trusted: TrustedSet,
    /// The root (the top-level targets role's delegator) and the top-level targets role.
    root: Arc<Signed>,
    top: Arc<Signed>,
    /// Delegated roles verified against this generation, by (delegator, role).
    roles: Mutex<HashMap<(String, String), Arc<Signed>>>,
    /// Targets no role of this generation lists (negative cache).
    missing: Mutex<HashSet<String>>,
    id: u64,
    consistent: bool,
}

impl Generation {
    fn new(trusted: TrustedSet, id: u64, prev: Option<&Generation>) -> Option<Generation> {
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

    fn version(&self) -> (u64, Option<u64>) {
        (
            self.trusted.root_signed().version,
            self.trusted.timestamp().map(|s| s.version),
        )
    }

    /// A role as verified in this generation: the top-level targets, or a delegated role
    /// already loaded.
    fn loaded(&self, role: &str, delegator: &str) -> Option<Arc<Signed>> {
        if role == "targets" && delegator == "root" {
            return Some(self.top.clone());
        }
        lock(&self.roles)
            .get(&(delegator.to_string(), role.to_string()))
            .cloned()
    }

    fn is_missing(&self, path: &str) -> bool {
        lock(&self.missing).contains(path)
    }

    fn set_missing(&self, path: &str) {
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

/// The result of loading a delegated role, shared by every lookup that waits for it:
/// the role, or the refusal and whether it is a consistent-snapshot race (the file is gone
/// because the repository moved on: refresh and look again).
type RoleLoad = Result<Arc<Signed>, (bool, ProxyError)>;

/// Refresh bookkeeping (the single flight of refreshes).
#[derive(Default)]
struct Refresh {
    /// When the last finished attempt started, and how it ended.
    last: Option<(Instant, Result<(), ProxyError>)>,
    /// The attempt in progress: when it started, and its result to come.
    running: Option<(Instant, RefreshRx)>,
    /// When the last successful attempt finished.
    last_success: Option<Instant>,
}

/// What `/health` reports about the trusted metadata, kept apart from the refresh.
#[derive(Default)]
struct Summary {
    failure: Option<String>,
    version: Option<u64>,
    /// The first expiry among root, timestamp, snapshot and targets: (role, version, when).
    expires: Option<(String, u64, DateTime<Utc>)>,
}

/// The trusted metadata and the way to fetch verified targets.
pub struct Trust {
    /// The refresher's updater: locked only by the refresh in progress (one at a time).
    updater: Mutex<Updater>,
    /// The current generation: replaced whole by a refresh, read by cloning the `Arc`.
    current: Mutex<Option<Arc<Generation>>>,
    generations: AtomicU64,
    refresh: Mutex<Refresh>,
    summary: Mutex<Summary>,
    roles: Flights<(u64, String, String), RoleLoad>,
    transfers: Flights<(String, String), Result<Bytes, ProxyError>>,
    dir: PathBuf,
    fetcher: Arc<dyn Fetcher>,
    metadata_fetches: Arc<Semaphore>,
    downloads: Arc<Semaphore>,
    interval: Duration,
    /// A refresh in progress longer than this is reported by `/health`.
    stuck_after: Duration,
    config: UpdaterConfig,
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

    fn generation(&self) -> Option<Arc<Generation>> {
        lock(&self.current).clone()
    }

    /// Refresh now (at startup), reporting the failure if any. Blocking: call it off the
    /// async runtime (from `spawn_blocking`), or outside any runtime.
    pub fn refresh(self: &Arc<Self>) -> Result<(), ProxyError> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h.block_on(self.refreshed_since(Some(Instant::now()))),
            Err(_) => {
                let start = Instant::now();
                let out = self.refresh_blocking();
                self.finished(start, out.clone());
                out
            }
        }
    }

    /// Wait for a refresh that started at `since` or later (any, for `None`), joining the one
    /// in progress if it did, else starting one (after the one in progress, if any, ends).
    /// Its result: a lookup is not answered while the last refresh failed.
    async fn refreshed_since(self: &Arc<Self>, since: Option<Instant>) -> Result<(), ProxyError> {
        let recent = |t: Instant| since.is_none_or(|s| t >= s);
        loop {
            let (mut rx, join) = {
                let mut st = lock(&self.refresh);
                if let Some((start, out)) = &st.last {
                    if recent(*start) {
                        return out.clone();
                    }
                }
                match &st.running {
                    Some((start, rx)) => (rx.clone(), recent(*start)),
                    None => (self.start_refresh(&mut st), true),
                }
            };
            let out = rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|v| v.clone())
                .unwrap_or_else(|| {
                    Err(ProxyError::Internal(
                        "the refresh ended without a result".into(),
                    ))
                });
            if join {
                return out;
            }
            // That one started too early for us: the next one, then.
        }
    }

    /// Start a refresh task (the caller holds the refresh state and records it running).
    fn start_refresh(self: &Arc<Self>, st: &mut Refresh) -> RefreshRx {
        let (tx, rx) = watch::channel(None);
        let start = Instant::now();
        st.running = Some((start, rx.clone()));
        let me = self.clone();
        tokio::spawn(async move {
            let m = me.clone();
            let out = tokio::task::spawn_blocking(move || m.refresh_blocking())
                .await
                .unwrap_or_else(|e| Err(ProxyError::Internal(format!("refresh: {e}").into())));
            me.finished(start, out.clone());
            let _ = tx.send(Some(out));
        });
        rx
    }

    fn finished(&self, start: Instant, out: Result<(), ProxyError>) {
        let mut st = lock(&self.refresh);
        if st.running.as_ref().is_some_and(|(s, _)| *s == start) {
            st.running = None;
        }
        if out.is_ok() {
            st.last_success = Some(Instant::now());
        }
        st.last = Some((start, out));
    }

    /// One update cycle of the top-level metadata (network I/O: only the refresh task and
    /// nobody else waits for the updater's lock). On success the generation is replaced,
    /// unless root and timestamp are the versions it already has.
    fn refresh_blocking(&self) -> Result<(), ProxyError> {
        let mut up = lock(&self.updater);
        let before = self.generation();
        let out = match up.refresh_at(Utc::now()) {
            Ok(()) => {
                let t = up.trusted();
                let version = (t.root_signed().version, t.timestamp().map(|s| s.version));
                if before.as_ref().map(|g| g.version()) != Some(version) {
                    let id = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                    match Generation::new(t.clone(), id, before.as_deref()) {
                        Some(g) => {
                            let carried = lock(&g.roles).len();
                            *lock(&self.current) = Some(Arc::new(g));
                            info!(timestamp = version.1, carried, "TUF metadata updated");
                            Ok(())
                        }
                        None => Err(ProxyError::Internal(
                            "the refresh left no top-level targets".into(),
                        )),
                    }
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(ProxyError::from_client(e)),
        };
        let failed_before = lock(&self.summary).failure.is_some();
        match &out {
            Ok(()) if failed_before => info!("TUF metadata refresh succeeds again"),
            Ok(()) => {}
            Err(e) => warn!("TUF metadata refresh failed: {e}"),
        }
        let t = up.trusted();
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
            failure: out.as_ref().err().map(ToString::to_string),
            version: t.timestamp().map(|s| s.version),
            expires,
        };
        out
    }

    /// Look `path` up in the signed metadata, after a refresh once the interval has passed,
    /// and never on metadata expired by now. `None`: no trusted role lists it.
    pub async fn lookup(self: &Arc<Self>, path: &str) -> Result<Option<Resolved>, ProxyError> {
        let arrival = Instant::now();
        self.refreshed_since(arrival.checked_sub(self.interval))
            .await?;
        let mut attempt = 0;
        let mut expiry_refresh = false;
        loop {
            let gen = self
                .generation()
                .ok_or_else(|| ProxyError::Internal("no trusted metadata yet".into()))?;
            let found = match self.resolve(&gen, path).await {
                Err((true, e)) if attempt + 1 < RACE_RETRIES => {
                    attempt += 1;
                    warn!("{e}; the repository moved on, looking again on fresh metadata");
                    self.refreshed_since(Some(Instant::now())).await?;
                    continue;
                }
                Err((_, e)) => return Err(e),
                Ok(found) => found,
            };
            match expired(&gen, path, Utc::now()) {
                None => return Ok(found),
                Some(why) if !expiry_refresh => {
                    info!("{why}; refreshing before answering");
                    expiry_refresh = true;
                    self.refreshed_since(Some(arrival)).await?;
                }
                Some(why) => return Err(ProxyError::Verification(why.into())),
            }
        }
    }

    /// Resolve `path` on the current metadata, without refreshing or waiting for a refresh:
    /// for looking ahead (loading the roles an installer's next requests will need).
    /// Failures are left for the real lookup to report.
    pub async fn warm(self: &Arc<Self>, path: &str) {
        let ok = lock(&self.refresh)
            .last
            .as_ref()
            .is_some_and(|(_, out)| out.is_ok());
        if let (true, Some(gen)) = (ok, self.generation()) {
            let _ = self.resolve(&gen, path).await;
        }
    }

    /// Find `path` in `gen`'s delegation graph: a pre-order depth-first search as the spec
    /// and python-tuf do it, loading delegated roles as needed.
    async fn resolve(
        self: &Arc<Self>,
        gen: &Arc<Generation>,
        path: &str,
    ) -> Result<Option<Resolved>, (bool, ProxyError)> {
        if gen.is_missing(path) {
            return Ok(None);
        }
        let internal = |m: &str| (false, ProxyError::Internal(m.to_string().into()));
        let mut to_visit: Vec<(String, String, Arc<Signed>)> =
            vec![("targets".into(), "root".into(), gen.root.clone())];
        let mut visited: BTreeSet<String> = BTreeSet::new();
        while visited.len() <= self.config.max_delegations {
            let Some((role, parent, delegator)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            let signed = match gen.loaded(&role, &parent) {
                Some(s) => s,
                None => self.load_role(gen, &role, &parent, delegator).await?,
            };
            let targets = targets_of(&signed).ok_or_else(|| internal("targets body"))?;
            if let Some(info) = targets.targets.get(path) {
                debug!(role, path, "target found");
                let url = target_url_for(
                    &self.upstream.target_base,
                    path,
                    info,
                    gen.consistent && self.config.prefix_targets_with_hash,
                )
                .map_err(|e| (false, ProxyError::from_client(e)))?;
                return Ok(Some(Resolved {
                    path: path.to_string(),
                    info: info.clone(),
                    url,
                }));
            }
            visited.insert(role.clone());
            if let Some(d) = &targets.delegations {
                let mut children = Vec::new();
                for (child, terminating) in d.roles_for_target(path) {
                    children.push((child, role.clone(), signed.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
                to_visit.extend(children.into_iter().rev());
            }
        }
        if !to_visit.is_empty() {
            warn!(
                "{path}: gave up after visiting {} delegated roles",
                visited.len()
            );
        }
        gen.set_missing(path);
        Ok(None)
    }

    /// `role` (delegated by `parent`, whose verified metadata is `delegator`) verified for
    /// `gen`: one load per role and generation, shared by every lookup that needs it.
    async fn load_role(
        self: &Arc<Self>,
        gen: &Arc<Generation>,
        role: &str,
        parent: &str,
        delegator: Arc<Signed>,
    ) -> RoleLoad {
        let key = (gen.id, parent.to_string(), role.to_string());
        let (me, g, r, p) = (
            self.clone(),
            gen.clone(),
            role.to_string(),
            parent.to_string(),
        );
        let task = || async move {
            // Someone may have finished loading it just before this flight took off.
            if let Some(s) = g.loaded(&r, &p) {
                return Ok(s);
            }
            let _slot = me
                .metadata_fetches
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| (false, ProxyError::Internal(e.to_string().into())))?;
            let (m, g2, r2) = (me.clone(), g.clone(), r.clone());
            let s = tokio::task::spawn_blocking(move || m.load_role_blocking(&g2, &r2, &delegator))
                .await
                .map_err(|e| (false, ProxyError::Internal(e.to_string().into())))??;
            let s = Arc::new(s);
            lock(&g.roles).insert((p, r), s.clone());
            Ok(s)
        };
        self.roles.run(key, task).await.unwrap_or_else(|| {
            Err((
                false,
                ProxyError::Internal("loading a delegated role ended without a result".into()),
            ))
        })
    }

    /// Load `role` from the local cache if it verifies for `gen`, else from the upstream
    /// (within the length the snapshot gives, or the configured cap), verify it, and keep
    /// its bytes in the cache. Blocking.
    fn load_role_blocking(
        &self,
        gen: &Generation,
        role: &str,
        delegator: &Signed,
    ) -> Result<Signed, (bool, ProxyError)> {
        let refused = |e: ClientError| (false, ProxyError::from_client(e));
        let file = self.dir.join(format!("{}.json", quote(role)));
        if let Ok(local) = std::fs::read(&file) {
            match gen
                .trusted
                .verify_delegated_targets_at(&local, role, delegator, Utc::now())
            {
                Ok(s) => return Ok(s),
                Err(e) => debug!("local {role} not usable: {e}"),
            }
        }
        let meta = gen.trusted.snapshot_entry(role).map_err(refused)?;
        let length = meta.length.unwrap_or(self.config.targets_max_length);
        let name = quote(role);
        let url = if gen.consistent {
            format!("{}{}.{name}.json", self.upstream.metadata_url, meta.version)
        } else {
            format!("{}{name}.json", self.upstream.metadata_url)
        };
        debug!(url = %redact(&url), length, "fetching metadata");
        let data = self.fetcher.fetch(&url, length).map_err(|e| {
            let race = gen.consistent && e.is_not_found();
            (race, ProxyError::from_client(ClientError::Fetch(e)))
        })?;
        let s = gen
            .trusted
            .verify_delegated_targets_at(&data, role, delegator, Utc::now())
            .map_err(refused)?;
        // Only verified bytes are kept (a lost or torn copy is only fetched again), and only
        // for the current generation: a lookup still on an older one does not put back the
        // version a newer snapshot has replaced.
        if self.generation().is_some_and(|c| c.id == gen.id) {
            // Not synced: a copy a power loss damaged fails verification and is fetched again.
            let cache = tufpi_fs::WriteOptions::new()
                .sync_data(false)
                .sync_dir(false);
            if let Err(e) = cache.write(&file, &data) {
                warn!("caching {role}: {e}");
            }
        }
        Ok(s)
    }

    /// `fetch_verified` off the runtime, once one of the `max_downloads` slots is free: one
    /// download per target at a time, shared by every request for it (a client that hangs
    /// up stops nothing).
    pub async fn download(self: &Arc<Self>, t: Resolved) -> Result<Bytes, ProxyError> {
        let digest = t.info.hashes.values().next().cloned().unwrap_or_default();
        let key = (t.path.clone(), digest);
        let me = self.clone();
        let task = || async move {
            let _slot = me
                .downloads
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| ProxyError::Internal(e.to_string().into()))?;
            let m = me.clone();
            tokio::task::spawn_blocking(move || m.fetch_verified(&t).map(Bytes::from))
                .await
                .map_err(|e| ProxyError::Internal(e.to_string().into()))?
        };
        self.transfers.run(key, task).await.unwrap_or_else(|| {
            Err(ProxyError::Internal(
                "the download ended without a result".into(),
            ))
        })
    }

    /// Download a resolved target (never more than its signed length) and verify its length
    /// and every hash. Blocking; call it off the async runtime.
    pub fn fetch_verified(&self, t: &Resolved) -> Result<Vec<u8>, ProxyError> {
        let data = self
            .fetcher
            .fetch(&t.url, t.info.length)
            .map_err(|e| {
                let path = &t.path;
                let (sort, context): (fn(Reason) -> ProxyError, String) = match &e {
                    FetchError::NotFound { .. } => (
                        ProxyError::Upstream,
                        format!("target {path:?} is in the signed metadata but the upstream does not have it"),
                    ),
                    FetchError::TooLong { .. } => (
                        ProxyError::Verification,
                        format!("target {path:?} (signed length {})", t.info.length),
                    ),
                    _ => return ProxyError::from_client(ClientError::Fetch(e)),
                };
                sort(Reason::Client {
                    context: Some(context),
                    error: Arc::new(ClientError::Fetch(e)),
                })
            })?;
        Updater::verify_target(&t.path, &t.info, &data).map_err(ProxyError::from_client)?;
        Ok(data)
    }

    /// One line on the trusted state, for `/health`: failing while a refresh has been in
    /// progress for too long (the upstream hangs: every lookup that needs it waits), when the
    /// last refresh failed, or when the trusted metadata has expired since. A delegated role
    /// that has been loading for too long is mentioned (only its projects wait). Never
    /// waits for anything.
    pub fn status(&self) -> (bool, String) {
        let (running, last_success) = {
            let st = lock(&self.refresh);
            (st.running.as_ref().map(|(t, _)| *t), st.last_success)
        };
        if let Some(t) = running {
            let for_ = t.elapsed();
            if for_ >= self.stuck_after {
                let since = match last_success {
                    Some(s) => format!("last successful refresh {} s ago", s.elapsed().as_secs()),
                    None => "no successful refresh yet".into(),
                };
                return (
                    false,
                    format!(
                        "a TUF metadata refresh has been in progress for {:.1} s (more than {} s): the upstream is not answering; {since}",
                        for_.as_secs_f64(),
                        self.stuck_after.as_secs()
                    ),
                );
            }
        }
        let sum = lock(&self.summary);
        let (ok, mut line) = match (&sum.failure, sum.version, &sum.expires) {
            (Some(e), _, _) => (false, e.clone()),
            (None, _, Some((role, v, at))) if *at <= Utc::now() => (
                false,
                format!("trusted {role} v{v} expired at {at} and no refresh has replaced it yet"),
            ),
            (None, Some(v), _) => (true, format!("trusted timestamp v{v}")),
            (None, None, _) => (true, "not refreshed yet".into()),
        };
        if let Some(((_, _, role), t)) = self.roles.oldest() {
            if t.elapsed() >= self.stuck_after {
                line.push_str(&format!(
                    "; slow upstream: {role} metadata pending for {:.1} s",
                    t.elapsed().as_secs_f64()
                ));
            }
        }
        (ok, line)
    }
}

type RefreshRx = watch::Receiver<Option<Result<(), ProxyError>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take every later request down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
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

/// Why the metadata behind a lookup of `path` is expired at `now`, if it is: the root, the
/// timestamp, the snapshot, or a loaded targets role that could list `path`.
fn expired(gen: &Generation, path: &str, now: DateTime<Utc>) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn one_flight_per_key_and_callers_may_leave() {
        let f: Arc<Flights<&'static str, usize>> = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, gate) = watch::channel(false);
        let start = |f: Arc<Flights<&'static str, usize>>, key| {
            let (runs, gate) = (runs.clone(), gate.clone());
            tokio::spawn(async move {
                f.run(key, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let mut g = gate;
                    let _ = g.wait_for(|v| *v).await;
                    7
                })
                .await
            })
        };
        let waiters: Vec<_> = (0..10).map(|_| start(f.clone(), "a")).collect();
        let other = start(f.clone(), "b");
        // A caller that goes away stops nothing.
        let gone = start(f.clone(), "a");
        tokio::time::sleep(Duration::from_millis(50)).await;
        gone.abort();
        assert_eq!(f.len(), 2);
        assert!(f.oldest().is_some());
        release.send(true).unwrap();
        for w in waiters {
            assert_eq!(w.await.unwrap(), Some(7));
        }
        assert_eq!(other.await.unwrap(), Some(7));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(f.is_empty());
        // Landed: the next call runs again.
        assert_eq!(f.run("a", || async { 8 }).await, Some(8));
    }

    #[tokio::test]
    async fn a_panicking_flight_is_an_answer_not_a_hang() {
        let f: Flights<u8, u8> = Flights::default();
        let out = f
            .run(1, || async {
                if true {
                    panic!("boom");
                }
                1
            })
            .await;
        assert_eq!(out, None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(f.is_empty());
    }
}
