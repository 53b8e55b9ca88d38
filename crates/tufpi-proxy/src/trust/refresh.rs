//! The refresh policy: one refresh of the top-level metadata at a time (single flight),
//! which every lookup that needs one joins; a successful one installs a new generation; and
//! what `/health` says about it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::generation::Generation;
use super::store::{Refresh, RefreshRx, Summary, Trust};
use crate::error::ProxyError;
use crate::sync::lock;

impl Trust {
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
    pub(super) async fn refreshed_since(
        self: &Arc<Self>,
        since: Option<Instant>,
    ) -> Result<(), ProxyError> {
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
