//! The publisher of a scaled-out index: any number of replicas campaign for the PostgreSQL
//! publisher lease ([`PUBLISHER_LEASE`]); the one leading under term T opens the repository
//! fenced by T and publishes (each round: the outbox into the queue, publish, refresh), the
//! others stand by. A new term opens a new repository, whose first publish finishes a plan a
//! previous leader left half done.
//!
//! A write refused because the term is over (`Fenced`, or the timestamp's compare-and-swap
//! found another writer's `timestamp.json`) is logged once, at error level; the replica
//! drops its repository, gives its campaign up and campaigns again as a standby. A database
//! or object store that cannot be reached pauses the publisher ("waiting for …") until it
//! can; nothing is lost, the queue is in PostgreSQL.
//!
//! Only a replica with the online key campaigns (without it, it serves and queues but never
//! publishes, and says so loudly); so does one that finds no repository at all, which,
//! while it holds the lease, initialises one with development keys in its keys directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};
use tufpi_blob::SharedStore;
use tufpi_pg::{Database, Fence, Leadership};
use tufpi_repo::store::QUEUE_CHANNEL;
use tufpi_repo::{Backend, RepoConfig, RepoError, Repository, PUBLISHER_LEASE};

use super::{record, step, Feed, Publisher, PublisherConfig, PublisherStatus, Shared};
use crate::error::IndexError;

/// The publisher lease's default time to live: renewed every 1 s, stepped down from after
/// 1.5 s without a renewal, taken over by a standby (trying every 375 ms) at most 3 s after
/// the leader's last renewal: a standby publishes within about 4 s of the leader's death.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);

/// Rounds a leader may fail in a row (for another reason than an unreachable dependency)
/// before it hands the lease on: another replica may do better.
const FAILURES_BEFORE_RESIGNING: u32 = 5;

/// How often a replica without the online key looks for it again.
const KEYS_RECHECK: Duration = Duration::from_secs(5);

/// What a leased publisher works with.
#[derive(Debug, Clone)]
pub struct Leased {
    /// The shared database (the lease, the repository's state).
    pub db: Database,
    /// The shared blob store (metadata under `metadata/`).
    pub blobs: SharedStore,
    /// The repository's keys on this replica.
    pub keys_dir: PathBuf,
    /// The lease's time to live.
    pub ttl: Duration,
    /// The layout of a repository made on a first start.
    pub init: RepoConfig,
    /// Set once this replica starts making the repository (before any of it is visible).
    pub created: Arc<AtomicBool>,
}

/// Whether `dir` holds the online key.
pub fn has_online_key(dir: &Path) -> bool {
    dir.join("online.pem").is_file()
}

/// Whether `dir` holds any key at all (development keys are never generated over them).
fn has_any_key(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".pem"))
    })
}

impl Leased {
    fn backend(&self, fence: Option<Fence>) -> Result<Backend, RepoError> {
        Backend::scale_out(&self.db, fence, self.blobs.clone(), &self.keys_dir)
    }

    /// The repository, opened to queue and read only; `None` if none is initialised yet.
    pub fn open_unfenced(&self) -> Result<Option<Repository>, RepoError> {
        match Repository::open_with(self.backend(None)?) {
            Ok(r) => Ok(Some(r)),
            Err(RepoError::InitialisationUnfinished { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The repository fenced by `term`, initialised first (development keys) if there is
    /// none; returns it and whether it was made here.
    fn open_fenced(&self, term: i64) -> Result<(Repository, bool), IndexError> {
        let fence = Fence {
            name: PUBLISHER_LEASE.to_string(),
            term,
        };
        match Repository::open_with(self.backend(Some(fence.clone()))?) {
            Ok(r) => return Ok((r, false)),
            Err(RepoError::InitialisationUnfinished { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if has_any_key(&self.keys_dir) {
            return Err(IndexError::Internal(format!(
                "the database holds no repository and {} holds keys: refusing to generate \
                 development keys over them (initialise the repository with `tufpi repo init` \
                 on this database and storage, or give an empty --keys-dir)",
                self.keys_dir.display()
            )));
        }
        self.created.store(true, Ordering::SeqCst);
        let repo = Repository::init_dev_with(self.backend(Some(fence))?, self.init.clone())?;
        Ok((repo, true))
    }
}

/// Why a round failed, as the leased publisher acts on it.
enum Failure {
    /// This replica's term is over: step down.
    Fenced(String),
    /// A dependency cannot be reached now: wait for it.
    Unavailable(&'static str),
    /// Anything else: retried after a pause.
    Other,
}

fn classify(e: &IndexError, term: Option<i64>) -> Failure {
    use axum::http::StatusCode;
    match e {
        IndexError::Repo(RepoError::Fenced { held, current }) => Failure::Fenced(format!(
            "publisher: fenced: lease term {held} is over (current {current}); this replica's \
             writes are refused, stepping down"
        )),
        IndexError::Repo(RepoError::TimestampReplaced { detail }) => Failure::Fenced(format!(
            "publisher: fenced: timestamp.json was replaced by another writer while this \
             replica led (lease term {}); its write is refused, stepping down ({detail})",
            term.map_or_else(|| "?".to_string(), |t| t.to_string())
        )),
        IndexError::Unavailable(_) | IndexError::Repo(RepoError::Unavailable(_)) => {
            Failure::Unavailable("database")
        }
        IndexError::Repo(RepoError::Blob(b)) if b.is_unavailable() => {
            Failure::Unavailable("storage")
        }
        IndexError::Refused { status, .. } if *status == StatusCode::SERVICE_UNAVAILABLE => {
            Failure::Unavailable("storage")
        }
        _ => Failure::Other,
    }
}

/// The leased publisher's loop state.
struct Campaigner {
    so: Leased,
    cfg: PublisherConfig,
    feed: Feed,
    shared: Arc<Shared>,
    holder: String,
    campaign: Option<Leadership>,
    /// When to look for the online key again (without it this replica does not campaign).
    keys_check: Instant,
    said_no_keys: bool,
    last_refresh: Instant,
}

impl Campaigner {
    fn status(&self, f: impl FnOnce(&mut PublisherStatus)) {
        f(&mut self.shared.lock().status);
    }

    /// Stop leading: drop the repository, and the campaign too if `resign` (it releases the
    /// lease if this replica still holds it; a new campaign starts as a standby).
    fn stand_down(&mut self, resign: bool) {
        *self.shared.leased() = None;
        if resign {
            if let Some(c) = self.campaign.take() {
                c.stop();
            }
        }
        self.status(|s| {
            s.leader = false;
            s.term = None;
        });
    }

    /// Whether this replica may campaign: it has the online key, or no repository exists yet
    /// (a first start: the leader makes it).
    fn may_campaign(&mut self) -> Result<bool, IndexError> {
        if has_online_key(&self.so.keys_dir) {
            if self.said_no_keys {
                info!("publisher: the online key is here now: campaigning");
                self.said_no_keys = false;
            }
            self.status(|s| s.keys = true);
            return Ok(true);
        }
        if Instant::now() < self.keys_check {
            return Ok(false);
        }
        self.keys_check = Instant::now() + KEYS_RECHECK;
        if self.so.open_unfenced()?.is_none() {
            return Ok(true);
        }
        // Made meanwhile, its keys (in a shared keys directory) written before it.
        if has_online_key(&self.so.keys_dir) {
            return Ok(true);
        }
        self.no_keys();
        Ok(false)
    }

    fn no_keys(&mut self) {
        if !self.said_no_keys {
            error!(
                keys_dir = %self.so.keys_dir.display(),
                "publisher: NO ONLINE KEY in {}: this replica serves and queues uploads but \
                 NEVER PUBLISHES; give every publishing replica the repository's keys \
                 (--keys-dir)",
                self.so.keys_dir.display()
            );
            self.said_no_keys = true;
        }
        self.status(|s| {
            s.keys = false;
            s.state = "no keys".into();
        });
    }

    /// One round: campaign, open the repository for a new term, publish and refresh.
    fn round(&mut self) -> Result<(), IndexError> {
        // The keys may be copied in while running (a shared keys directory filled by the
        // replica that made the repository).
        let keys = has_online_key(&self.so.keys_dir);
        self.status(|s| s.keys = keys);
        if self.campaign.is_none() {
            if !self.may_campaign()? {
                return Ok(());
            }
            self.campaign = Some(Leadership::start(
                self.so.db.clone(),
                PUBLISHER_LEASE,
                &self.holder,
                self.so.ttl,
            ));
        }
        let term = self.campaign.as_ref().and_then(Leadership::term);
        let Some(term) = term else {
            let held = self.shared.leased().as_ref().map(|(t, _)| *t);
            // A failed round drops the repository but not what /health says: going by the
            // status too keeps a replica from calling itself leader after it lost the lease.
            let said = {
                let g = self.shared.lock();
                g.status.leader.then_some(g.status.term).flatten()
            };
            if let Some(t) = held.or(said) {
                warn!("publisher: lease term {t} lost (not renewed in time): standing by");
            }
            if held.is_some() || self.shared.lock().status.leader {
                self.stand_down(false);
            }
            self.shared.set_state("standby");
            return Ok(());
        };
        let shared = self.shared.clone();
        let mut slot = shared.leased();
        let fresh = slot.as_ref().map(|(t, _)| *t) != Some(term);
        if fresh {
            *slot = None;
            let (repo, created) = self.so.open_fenced(term)?;
            if !has_online_key(&self.so.keys_dir) {
                // Initialised by another replica meanwhile, and this one has no key.
                drop(slot);
                self.stand_down(true);
                self.no_keys();
                return Ok(());
            }
            if created {
                warn!(
                    keys_dir = %self.so.keys_dir.display(),
                    "NEW REPOSITORY WITH DEVELOPMENT KEYS in {}: for development and testing \
                     only, never for production; every publishing replica needs these keys",
                    self.so.keys_dir.display()
                );
            }
            info!(term, "publisher: leading under lease term {term}");
            self.status(|s| {
                // Its first round (finishing what the last leader left) starts now.
                s.state = "publishing".into();
                s.leader = true;
                s.term = Some(term);
                s.keys = true;
                s.created |= created;
            });
            *slot = Some((term, repo));
        }
        let Some((_, repo)) = slot.as_mut() else {
            return Ok(());
        };
        if fresh {
            // A new term: finish what the last leader left (a recorded plan), then publish
            // and refresh as a starting publisher does.
            let rep = repo.publish(self.cfg.batch)?;
            if rep.changes > 0 {
                info!(
                    changes = rep.changes,
                    "published changes queued before this term"
                );
            }
            repo.refresh(self.cfg.refresh_margin)?;
            self.last_refresh = Instant::now();
            record(&mut self.shared.lock().status, repo);
        }
        step(
            repo,
            &self.cfg,
            &mut self.feed,
            &self.shared,
            &mut self.last_refresh,
        )
    }
}

impl Publisher {
    /// Scaled out: campaign for the publisher lease on a thread and, while leading, publish
    /// (see the module docs). Returns at once; the status says whether it leads.
    pub fn start_leased(
        so: Leased,
        cfg: PublisherConfig,
        feed: Feed,
    ) -> Result<Publisher, IndexError> {
        let shared = Shared::new(PublisherStatus {
            state: "standby".into(),
            keys: has_online_key(&so.keys_dir),
            ..PublisherStatus::default()
        });
        // Any replica's enqueue wakes the leader at once (its poll is the fallback).
        let woken = shared.clone();
        let listener = tufpi_pg::Listener::start(&so.db, QUEUE_CHANNEL, move || woken.kick())
            .map_err(|e| IndexError::io("starting the queue listener", e))?;
        let mut c = Campaigner {
            so,
            cfg,
            feed,
            shared: shared.clone(),
            holder: tufpi_pg::lease::holder_id(),
            campaign: None,
            keys_check: Instant::now(),
            said_no_keys: false,
            last_refresh: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("tufpi-publisher".into())
            .spawn(move || run_leased(&mut c))
            .map_err(|e| IndexError::io("starting the publisher thread", e))?;
        Ok(Publisher {
            shared,
            thread: std::sync::Mutex::new(Some(thread)),
            _listener: Some(listener),
        })
    }
}

fn run_leased(c: &mut Campaigner) {
    let mut failing: Option<String> = None;
    let mut failures = 0;
    loop {
        let stopping = c.shared.wait(if failing.is_some() {
            Duration::from_secs(1)
        } else {
            c.cfg.interval
        });
        let term = c.shared.lock().status.term;
        match c.round() {
            Ok(()) => {
                failures = 0;
                if failing.take().is_some() {
                    info!("publisher: working again");
                }
                let no_keys = c.said_no_keys;
                let mut g = c.shared.lock();
                g.status.state = if g.status.leader {
                    "idle"
                } else if no_keys {
                    "no keys"
                } else {
                    "standby"
                }
                .into();
                g.status.last_error = None;
            }
            Err(e) => {
                let text = e.to_string();
                // Reopened next round: the repository's view (versions, the timestamp's
                // ETag) may be stale after a failure half way.
                *c.shared.leased() = None;
                let state = match classify(&e, term) {
                    Failure::Fenced(line) => {
                        error!("{line}");
                        c.stand_down(true);
                        "standby".to_string()
                    }
                    Failure::Unavailable(dep) => {
                        if failing.as_deref() != Some(text.as_str()) {
                            warn!("publisher: waiting for the {dep}: {text}");
                        }
                        format!("waiting for {dep}")
                    }
                    Failure::Other => {
                        if failing.is_none() {
                            error!("publisher: {text}");
                        } else if failing.as_deref() != Some(text.as_str()) {
                            warn!("publisher still failing: {text}");
                        }
                        failures += 1;
                        if failures >= FAILURES_BEFORE_RESIGNING && c.campaign.is_some() {
                            error!(
                                "publisher: failed {failures} rounds in a row: handing the \
                                 publisher lease on"
                            );
                            c.stand_down(true);
                            failures = 0;
                        }
                        "error".to_string()
                    }
                };
                failing = Some(text.clone());
                let mut g = c.shared.lock();
                g.status.state = state;
                g.status.last_error = Some(text);
            }
        }
        if stopping {
            // The round above published what was pending, as an embedded server does;
            // releasing the lease lets a standby take over at once.
            c.stand_down(true);
            c.shared.set_state("stopped");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart() {
        let fenced = IndexError::Repo(RepoError::Fenced {
            held: 4,
            current: 5,
        });
        match classify(&fenced, Some(4)) {
            Failure::Fenced(line) => assert_eq!(
                line,
                "publisher: fenced: lease term 4 is over (current 5); this replica's writes \
                 are refused, stepping down"
            ),
            _ => panic!("not fenced"),
        }
        let replaced = IndexError::Repo(RepoError::TimestampReplaced { detail: "x".into() });
        assert!(
            matches!(classify(&replaced, Some(7)), Failure::Fenced(l) if l.contains("lease term 7"))
        );
        let db = IndexError::Unavailable("gone".into());
        assert!(matches!(
            classify(&db, None),
            Failure::Unavailable("database")
        ));
        let blob = IndexError::Repo(RepoError::Blob(tufpi_blob::BlobError::Unavailable {
            what: "get".into(),
            detail: "refused".into(),
        }));
        assert!(matches!(
            classify(&blob, None),
            Failure::Unavailable("storage")
        ));
        let other = IndexError::Internal("bad".into());
        assert!(matches!(classify(&other, None), Failure::Other));
    }

    #[test]
    fn keys_are_looked_for_by_name() {
        let d = tempfile::tempdir().unwrap();
        assert!(!has_online_key(d.path()) && !has_any_key(d.path()));
        std::fs::write(d.path().join("root.pem"), "x").unwrap();
        assert!(!has_online_key(d.path()) && has_any_key(d.path()));
        std::fs::write(d.path().join("online.pem"), "x").unwrap();
        assert!(has_online_key(d.path()));
    }
}
