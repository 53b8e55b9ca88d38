//! PostgreSQL `LISTEN`/`NOTIFY` as a wake-up call: a writer announces new work inside its own
//! transaction ([`notify_in`]: delivered when it commits, never if it rolls back), and a
//! [`Listener`] thread, on a connection of its own, calls back at once instead of the waiter
//! finding the work at its next poll.
//!
//! A wake-up only: a notification may be lost (the listener's connection broke, or a pooler
//! in transaction mode, such as PgBouncer, does not carry `LISTEN` sessions), so whoever
//! waits keeps polling at its usual interval too. After (re)connecting, the listener calls
//! back once: something may have been announced while it was not listening.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::GenericClient;

use crate::db::Database;

/// How long the listener waits for a notification before it checks whether to stop.
const POLL: Duration = Duration::from_millis(250);

/// How long the listener waits before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(1);

/// Announce work on `channel` in the transaction (or session) `client`: delivered to every
/// listener when it commits. Several in one transaction are delivered once.
pub fn notify_in(client: &mut impl GenericClient, channel: &str) -> Result<(), postgres::Error> {
    client.execute("SELECT pg_notify($1, '')", &[&channel])?;
    Ok(())
}

/// A thread listening on one channel; stopped when dropped.
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

/// Whether `channel` can be written as a `LISTEN` identifier unquoted and unchanged.
fn plain_identifier(channel: &str) -> bool {
    !channel.is_empty()
        && channel.len() < 64
        && channel
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !channel.as_bytes()[0].is_ascii_digit()
}

impl Listener {
    /// Listen on `channel` (lower-case letters, digits and `_`) on a connection of its own,
    /// calling `wake` for each notification (and once after each (re)connection). A
    /// connection that fails is made again after a second, quietly while the database is
    /// down (whoever waits polls meanwhile).
    pub fn start(
        db: &Database,
        channel: &'static str,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Listener> {
        if !plain_identifier(channel) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("listen channel {channel:?}: lower-case letters, digits and _ only"),
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let db = db.clone();
        let thread = std::thread::Builder::new()
            .name("tufpi-pg-listen".into())
            .spawn(move || listen(&db, channel, &wake, &stopped))?;
        Ok(Listener {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn listen(db: &Database, channel: &str, wake: &dyn Fn(), stop: &AtomicBool) {
    let mut said: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let err = match db.connect_dedicated() {
            Ok(mut client) => match client.batch_execute(&format!("LISTEN {channel}")) {
                Ok(()) => {
                    if said.take().is_some() {
                        tracing::info!(channel, "listening for notifications again");
                    }
                    wake();
                    receive(&mut client, wake, stop)
                }
                Err(e) => crate::describe(&e),
            },
            Err(e) => e.to_string(),
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if said.as_deref() != Some(err.as_str()) {
            tracing::debug!(
                channel,
                "not listening for notifications (polling meanwhile): {err}"
            );
            said = Some(err);
        }
        std::thread::sleep(RECONNECT);
    }
}

/// Call `wake` per notification until `stop` or a connection failure (returned).
fn receive(client: &mut postgres::Client, wake: &dyn Fn(), stop: &AtomicBool) -> String {
    while !stop.load(Ordering::SeqCst) {
        let got = client.notifications().timeout_iter(POLL).next();
        match got {
            Ok(Some(_)) => {
                // Everything already received wakes once.
                while let Ok(Some(_)) = client.notifications().iter().next() {}
                wake();
            }
            Ok(None) => {
                if client.is_closed() {
                    return "the connection closed".into();
                }
            }
            Err(e) => return crate::describe(&e),
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_plain_identifiers() {
        assert!(plain_identifier("tufpi_repo_queue"));
        assert!(!plain_identifier(""));
        assert!(!plain_identifier("Queue"));
        assert!(!plain_identifier("a;b"));
        assert!(!plain_identifier("1a"));
    }
}
