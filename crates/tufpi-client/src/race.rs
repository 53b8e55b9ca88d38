//! Retry on a race with the repository: a consistent-snapshot file the client was told to
//! fetch is already gone because the repository moved on mid-update. The update starts over
//! from timestamp, a few times at most.

use tracing::warn;

use crate::error::ClientError;
use crate::redact::redact;

/// How many times an operation is tried in all when each try loses a race.
pub const RACE_RETRIES: usize = 3;

/// What a retry needs from the state it runs on.
pub trait Restart {
    /// Whether `e` means the repository moved on under the operation.
    fn is_race(&self, e: &ClientError) -> bool;
    /// Start over from the trusted root (and from timestamp on the network).
    fn restart(&mut self) -> Result<(), ClientError>;
}

/// `op` on `state`, restarted (`Restart::restart`) and tried again while it loses a race,
/// at most `RACE_RETRIES` times in all: its last result.
pub fn retry_on_race<S: Restart, T>(
    state: &mut S,
    mut op: impl FnMut(&mut S) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let mut attempt = 0;
    loop {
        match op(state) {
            Err(e) if attempt + 1 < RACE_RETRIES && state.is_race(&e) => {
                attempt += 1;
                warn!(
                    "{}; the repository moved on, restarting the update from timestamp",
                    redact(&e.to_string())
                );
                state.restart()?;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter {
        tries: usize,
        restarts: usize,
    }

    impl Restart for Counter {
        fn is_race(&self, e: &ClientError) -> bool {
            matches!(e, ClientError::Order("race"))
        }
        fn restart(&mut self) -> Result<(), ClientError> {
            self.restarts += 1;
            Ok(())
        }
    }

    #[test]
    fn races_are_retried_a_bounded_number_of_times() {
        let mut c = Counter::default();
        let out: Result<(), _> = retry_on_race(&mut c, |c| {
            c.tries += 1;
            Err(ClientError::Order("race"))
        });
        assert!(matches!(out, Err(ClientError::Order("race"))));
        assert_eq!((c.tries, c.restarts), (RACE_RETRIES, RACE_RETRIES - 1));

        let mut c = Counter::default();
        let out = retry_on_race(&mut c, |c| {
            c.tries += 1;
            if c.tries == 2 {
                Ok(7)
            } else {
                Err(ClientError::Order("race"))
            }
        });
        assert_eq!(out.unwrap(), 7);
        assert_eq!((c.tries, c.restarts), (2, 1));

        let mut c = Counter::default();
        let out: Result<(), _> = retry_on_race(&mut c, |c| {
            c.tries += 1;
            Err(ClientError::Order("other"))
        });
        assert!(matches!(out, Err(ClientError::Order("other"))));
        assert_eq!((c.tries, c.restarts), (1, 0));
    }
}
