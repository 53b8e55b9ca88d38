//! Leadership: a background thread that takes a lease when it is free and renews it every
//! TTL/3, and a view (`is_leader`, `term`, `fence`) that turns false once no renewal has
//! succeeded for TTL/2 by the local monotonic clock: before the lease can lapse in the
//! database. A standby tries to take the lease every TTL/8 (at least 100 ms), so a lapsed or
//! released lease is taken over within TTL/8 of becoming free. See the crate docs for why
//! that is safe and why fencing, not timing, is what guarantees it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::db::Database;
use crate::lease::{Fence, Held, Lease};

/// The lease TTL `tufpi` uses: renewed every 5 s, stepped down from after 7.5 s without a
/// renewal, taken over by a standby 15 s after the last renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// How often a standby tries to take the lease with `ttl`: TTL/8, at least 100 ms (the
/// delay between the lease falling free and its takeover, at most).
pub fn standby_retry(ttl: Duration) -> Duration {
    (ttl / 8).max(Duration::from_millis(100))
}

#[derive(Debug)]
struct State {
    /// The term held, if leader (as of `last_ok`).
    term: Option<i64>,
    /// When the last successful acquisition or renewal was *sent*: the database's expiry
    /// is at least TTL after it.
    last_ok: Instant,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    name: String,
    ttl: Duration,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn step_down_after(&self) -> Duration {
        self.ttl / 2
    }
}

/// Campaigns for a lease in a background thread and says whether this process leads.
#[derive(Debug)]
pub struct Leadership {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Start campaigning for lease `name` as `holder` (see `lease::holder_id`) with `ttl`.
    pub fn start(db: Database, name: &str, holder: &str, ttl: Duration) -> Leadership {
        let shared = Arc::new(Shared {
            name: name.to_string(),
            ttl,
            state: Mutex::new(State {
                term: None,
                last_ok: Instant::now(),
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let holder = holder.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("lease-{name}"))
            .spawn(move || campaign(&db, &s, &holder))
            .ok();
        if thread.is_none() {
            tracing::error!(
                lease = name,
                "could not start the lease thread: never leading"
            );
        }
        Leadership { shared, thread }
    }

    /// Whether this process leads now: it holds the lease and renewed it within TTL/2.
    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// The term held, if leading now.
    pub fn term(&self) -> Option<i64> {
        let st = self.shared.lock();
        st.term
            .filter(|_| st.last_ok.elapsed() < self.shared.step_down_after())
    }

    /// The fence to write under, if leading now.
    pub fn fence(&self) -> Option<Fence> {
        self.term().map(|term| Fence {
            name: self.shared.name.clone(),
            term,
        })
    }

    /// Wait up to `timeout` to lead; the term if leading.
    pub fn wait_for_leadership(&self, timeout: Duration) -> Option<i64> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(t) = self.term() {
                return Some(t);
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    /// Stop campaigning and release the lease if held (also done on drop).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread: acquire when not holding (every TTL/8), renew every TTL/3 when holding, retry
/// a failed renewal sooner, step down when a renewal has not succeeded for TTL/2.
fn campaign(db: &Database, s: &Shared, holder: &str) {
    let every = s.ttl / 3;
    let standby = standby_retry(s.ttl);
    let retry = (s.ttl / 15).max(Duration::from_millis(50));
    // A standby retries often: say that it cannot reach the database once, not every try.
    let mut failing = false;
    let mut held: Option<Held> = None;
    // The table once (a standby would otherwise run the migration check every TTL/3).
    let mut prepared = false;
    loop {
        let sent = Instant::now();
        let pause = match &held {
            None if !prepared => match crate::lease::prepare(db) {
                Ok(()) => {
                    prepared = true;
                    Duration::ZERO
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(lease = %s.name, error = %e, "lease: could not prepare");
                    }
                    failing = true;
                    standby
                }
            },
            None => match Lease::take(db, &s.name, holder, s.ttl) {
                Ok(Some(h)) => {
                    let mut st = s.lock();
                    st.term = Some(h.term());
                    st.last_ok = sent;
                    held = Some(h);
                    failing = false;
                    every
                }
                Ok(None) => {
                    failing = false;
                    standby
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(lease = %s.name, error = %e, "lease: could not campaign (retrying)");
                    }
                    failing = true;
                    standby
                }
            },
            Some(h) => match h.renew() {
                Ok(()) => {
                    s.lock().last_ok = sent;
                    every
                }
                Err(e) if e.is_fenced() => {
                    tracing::warn!(lease = %s.name, term = h.term(), "lease lost: stepping down");
                    s.lock().term = None;
                    held = None;
                    standby
                }
                Err(e) => {
                    let mut st = s.lock();
                    if st.last_ok.elapsed() >= s.step_down_after() {
                        tracing::warn!(lease = %s.name, term = h.term(), error = %e,
                            "lease not renewed in time: stepping down");
                        st.term = None;
                        drop(st);
                        held = None;
                    } else {
                        tracing::warn!(lease = %s.name, error = %e, "lease renewal failed: retrying");
                    }
                    retry
                }
            },
        };
        let st = s.lock();
        let (st, _) = s
            .wake
            .wait_timeout_while(st, pause, |st| !st.stop)
            .unwrap_or_else(|e| e.into_inner());
        if st.stop {
            drop(st);
            if let Some(h) = held.take() {
                s.lock().term = None;
                if let Err(e) = h.release() {
                    tracing::warn!(lease = %s.name, error = %e, "lease release failed");
                }
            }
            return;
        }
    }
}
