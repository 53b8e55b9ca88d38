//! The publisher: one thread holding the repository lock that publishes queued target changes
//! (bins → snapshot → timestamp) as soon as an upload is acknowledged, and at least every
//! `interval` while anything is pending, and re-signs online roles before they expire. Each
//! round it first moves the index's outbox into the repository queue, so a change committed
//! by anyone (an upload whose own hand-over failed, `tufpi project` run next to the server)
//! is signed within a round.
//!
//! The right to publish is the only thing the publisher learns about the deployment: the
//! repository lock file (an flock, [`Publisher::start`]) in embedded mode, the PostgreSQL
//! publisher lease (its term fencing every write, [`Publisher::start_leased`]) scaled out.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};
use tufpi_repo::{RepoError, Repository, RoleState};

use crate::error::IndexError;

mod leased;

pub use leased::{Leased, DEFAULT_LEASE_TTL};

/// How the publisher paces itself.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Longest wait between checks for pending changes.
    pub interval: Duration,
    /// How often to check online roles for expiry.
    pub refresh_every: Duration,
    /// Re-sign online roles expiring within this margin.
    pub refresh_margin: chrono::Duration,
    /// Most changes per publish batch.
    pub batch: usize,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            interval: Duration::from_millis(200),
            refresh_every: Duration::from_secs(60),
            refresh_margin: chrono::Duration::hours(6),
            batch: 100_000,
        }
    }
}

/// What the publisher is doing and has done.
#[derive(Debug, Clone, Default)]
pub struct PublisherStatus {
    /// `idle`, `publishing`, `error` or `stopped`; scaled out also `standby` (another
    /// replica leads), `waiting for database`, `waiting for storage` and `no keys`.
    pub state: String,
    /// Whether this publisher may publish now (embedded: always, holding the lock).
    pub leader: bool,
    /// The publisher lease's term it leads under (scaled out).
    pub term: Option<i64>,
    /// Whether this replica has the online key (scaled out: without it, it never publishes).
    pub keys: bool,
    /// Whether this publisher created the repository (a first start, development keys).
    pub created: bool,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// When changes were last published (RFC 3339).
    pub last_publish: Option<String>,
    /// Changes published since start.
    pub published_changes: u64,
    /// Current snapshot version and expiry.
    pub snapshot: Option<RoleState>,
    /// Current timestamp version and expiry.
    pub timestamp: Option<RoleState>,
}

struct Inner {
    stop: bool,
    kicked: bool,
    status: PublisherStatus,
}

/// The repository a leased publisher holds while it leads, and the term it was opened for.
type LeasedRepo = Option<(i64, Repository)>;

struct Shared {
    inner: Mutex<Inner>,
    wake: Condvar,
    /// Scaled out: the leader's repository (garbage collection borrows it between rounds).
    leased: Mutex<LeasedRepo>,
}

impl Shared {
    fn new(status: PublisherStatus) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                stop: false,
                kicked: false,
                status,
            }),
            wake: Condvar::new(),
            leased: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn leased(&self) -> MutexGuard<'_, LeasedRepo> {
        self.leased.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, state: &str) {
        let mut g = self.lock();
        if g.status.state != state {
            g.status.state = state.to_string();
        }
    }

    /// Wake the publisher's thread for a round now.
    fn kick(&self) {
        self.lock().kicked = true;
        self.wake.notify_all();
    }

    /// Wait for a kick, a stop or `wait`; returns whether to stop.
    fn wait(&self, wait: Duration) -> bool {
        let mut g = self.lock();
        if !g.stop && !g.kicked {
            g = self
                .wake
                .wait_timeout(g, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        g.kicked = false;
        g.stop
    }
}

/// Moves pending target changes from elsewhere (the index outbox) into the repository
/// queue; returns how many it moved.
pub type Feed = Box<dyn FnMut(&mut Repository) -> Result<usize, IndexError> + Send>;

/// How long a starting publisher waits for another holder of the repository lock (a
/// `tufpi project` command publishing while no server ran) to finish. Another server is not
/// waited for.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// The holder a server's publisher records in the repository lock file.
pub const SERVER_LOCK_HOLDER: &str = "tufpi serve";

/// Whether `holder` is a running server (which will not let go of the lock).
fn is_server(holder: &tufpi_repo::repo::LockHolder) -> bool {
    holder.pid.is_some() && holder.what == SERVER_LOCK_HOLDER
}

/// The refusal to serve the data directory `dir` that `holder` has.
pub(crate) fn data_dir_in_use(
    dir: &Path,
    holder: Option<&tufpi_repo::repo::LockHolder>,
) -> IndexError {
    let holder = holder.map_or_else(|| "another process".to_string(), |h| h.to_string());
    IndexError::Internal(format!(
        "data dir {} in use by {holder}: one server per data directory (`tufpi project` and `tufpi token` work next to it)",
        dir.display()
    ))
}

/// Fail if a server already runs on the data directory `dir` (its publisher holds the
/// repository lock). Cheap: call it before binding the port. [`Publisher::start`] (through
/// `Index::open`) refuses the same, for good, when it takes the lock.
pub fn ensure_not_served(dir: &Path) -> Result<(), IndexError> {
    match tufpi_repo::repo::lock_holder(&dir.join("repo")) {
        Some(h) if is_server(&h) => Err(data_dir_in_use(dir, Some(&h))),
        _ => Ok(()),
    }
}

/// Take the repository lock as a server, waiting a little for a short-lived holder (not for
/// another server: that one fails at once).
fn lock_patiently(repo: &mut Repository) -> Result<(), IndexError> {
    let t0 = Instant::now();
    loop {
        match repo.lock_as(SERVER_LOCK_HOLDER) {
            Err(RepoError::Locked(m)) => {
                let server = repo.lock_holder().is_some_and(|h| is_server(&h));
                if server || t0.elapsed() >= LOCK_WAIT {
                    return Err(RepoError::Locked(m).into());
                }
                std::thread::sleep(Duration::from_millis(100))
            }
            other => return Ok(other?),
        }
    }
}

/// A running publisher.
pub struct Publisher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Scaled out: wakes the publisher when any replica queues a change.
    _listener: Option<tufpi_pg::Listener>,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn record(status: &mut PublisherStatus, repo: &Repository) {
    let roles = repo.role_states();
    status.snapshot = roles.get("snapshot").copied();
    status.timestamp = roles.get("timestamp").copied();
}

impl Publisher {
    /// Take the repository lock (another server holding it: refused at once with
    /// `RepoError::Locked`; a short-lived holder: waited for), finish any interrupted publish, move in what `feed` has,
    /// publish what is queued and refresh expiring roles, then keep doing so on a thread.
    pub fn start(
        mut repo: Repository,
        cfg: PublisherConfig,
        mut feed: Feed,
    ) -> Result<Publisher, IndexError> {
        lock_patiently(&mut repo)?;
        feed(&mut repo)?;
        let rep = repo.publish(cfg.batch)?;
        if rep.changes > 0 {
            info!(
                changes = rep.changes,
                "published changes queued before start"
            );
        }
        repo.refresh(cfg.refresh_margin)?;
        let mut status = PublisherStatus {
            state: "idle".into(),
            leader: true,
            keys: true,
            ..PublisherStatus::default()
        };
        record(&mut status, &repo);
        let shared = Shared::new(status);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tufpi-publisher".into())
            .spawn(move || run(repo, cfg, feed, s))
            .map_err(|e| IndexError::io("starting the publisher thread", e))?;
        Ok(Publisher {
            shared,
            thread: Mutex::new(Some(thread)),
            _listener: None,
        })
    }

    /// Publish soon: an upload was just queued.
    pub fn kick(&self) {
        self.shared.kick();
    }

    /// A copy of the current status.
    pub fn status(&self) -> PublisherStatus {
        self.shared.lock().status.clone()
    }

    /// Scaled out: run `f` on the repository this publisher leads with, between rounds;
    /// `None` unless it leads now (only the leader collects garbage).
    pub fn with_leased<T>(
        &self,
        f: impl FnOnce(&mut Repository) -> Result<T, IndexError>,
    ) -> Option<Result<T, IndexError>> {
        let mut slot = self.shared.leased();
        let (_, repo) = slot.as_mut()?;
        Some(f(repo))
    }

    /// Publish what is pending, stop the thread and wait for it.
    pub fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One round: publish pending changes, refresh when due.
fn step(
    repo: &mut Repository,
    cfg: &PublisherConfig,
    feed: &mut Feed,
    shared: &Shared,
    last_refresh: &mut Instant,
) -> Result<(), IndexError> {
    feed(repo)?;
    if repo.pending()? > 0 {
        shared.set_state("publishing");
        let rep = repo.publish(cfg.batch)?;
        let mut g = shared.lock();
        g.status.published_changes += rep.changes;
        g.status.last_publish = Some(now_text());
        record(&mut g.status, repo);
        info!(
            changes = rep.changes,
            bins = rep.bins,
            snapshot = rep.snapshot_version,
            "published"
        );
    }
    if last_refresh.elapsed() >= cfg.refresh_every {
        *last_refresh = Instant::now();
        let n = repo.refresh(cfg.refresh_margin)?;
        if n > 0 {
            info!(bins = n, "refreshed expiring online roles");
        }
        record(&mut shared.lock().status, repo);
    }
    Ok(())
}

fn run(mut repo: Repository, cfg: PublisherConfig, mut feed: Feed, shared: Arc<Shared>) {
    let mut last_refresh = Instant::now();
    let mut failing = false;
    loop {
        // After a failure, back off a little before trying again.
        let stopping = shared.wait(if failing {
            Duration::from_secs(1)
        } else {
            cfg.interval
        });
        match step(&mut repo, &cfg, &mut feed, &shared, &mut last_refresh) {
            Ok(()) => {
                failing = false;
                let mut g = shared.lock();
                g.status.state = "idle".into();
                g.status.last_error = None;
            }
            Err(e) => {
                if !failing {
                    error!("publisher: {e}");
                } else {
                    warn!("publisher still failing: {e}");
                }
                failing = true;
                let mut g = shared.lock();
                g.status.state = "error".into();
                g.status.last_error = Some(e.to_string());
            }
        }
        if stopping {
            shared.set_state("stopped");
            return;
        }
    }
}
