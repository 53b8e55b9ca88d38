//! Single flight: at most one task per key, whose result every caller for the key gets.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use crate::sync::lock;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

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
