//! The proxy's one way to take a lock.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, also when a panic elsewhere poisoned it: a panic must not take every later
/// request down with it (what the lock guards is left consistent at every await-free step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
