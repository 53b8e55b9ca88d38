//! An in-process cache of immutable blobs read from a remote store, bounded by bytes. Keys
//! are store keys that name their content (`pages/<sha256>`, `packages/<blake2b>/…`): an
//! entry is never stale, so nothing is ever invalidated, only evicted. A key's concurrent
//! misses load it once and share the bytes (the others wait for that load), so a popular
//! page just published costs one GET per replica, not one per request, and a distribution
//! too large to cache is held once in memory however many clients fetch it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use quick_cache::sync::Cache;
use quick_cache::{OptionsBuilder, Weighter};
use tufpi_blob::Bytes;

/// Default bound of the cache: 256 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// What an entry costs beyond its key and bytes (the map's slot, the `Bytes` header): so
/// that many tiny entries still count.
const ENTRY_OVERHEAD: u64 = 96;

/// Shards of the cache: few, since each holds a quarter of the bytes and an item must fit
/// in one shard (large files are the point of caching).
const SHARDS: usize = 4;

/// A load in flight, shared by the misses of one key: its outcome once done (`Err`: the
/// loader failed, and each waiter loads for itself). Waiters wait as long as the load takes:
/// the store's own timeouts bound it.
type Slot = OnceLock<Result<Option<Bytes>, LoadFailed>>;

#[derive(Debug, Clone, Copy)]
struct LoadFailed;

#[derive(Debug, Clone, Copy)]
struct ByteWeighter;

impl Weighter<String, Bytes> for ByteWeighter {
    fn weight(&self, key: &String, val: &Bytes) -> u64 {
        key.len() as u64 + val.len() as u64 + ENTRY_OVERHEAD
    }
}

/// A byte-bounded cache of immutable blobs by key (see the module docs).
pub struct BlobCache {
    cache: Option<Cache<String, Bytes, ByteWeighter>>,
    capacity: u64,
    max_item: u64,
    /// Loads in flight by key (weak: a slot lives as long as a miss waits on it).
    inflight: Mutex<HashMap<String, Weak<Slot>>>,
}

impl std::fmt::Debug for BlobCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobCache")
            .field("capacity", &self.capacity)
            .field("max_item", &self.max_item)
            .field("weight", &self.weight())
            .finish()
    }
}

impl BlobCache {
    /// A cache holding at most `capacity` bytes (0: nothing is cached). Blobs larger than an
    /// eighth of it are passed through uncached: one must not evict everything else.
    pub fn new(capacity: u64) -> BlobCache {
        let max_item = capacity / 8;
        let cache = (capacity > 0)
            .then(|| {
                let opts = OptionsBuilder::new()
                    .shards(SHARDS)
                    // Pages are a few KiB, distributions MiBs: a rough guess is enough.
                    .estimated_items_capacity((capacity / (64 << 10)).clamp(16, 1 << 20) as usize)
                    .weight_capacity(capacity)
                    .build()
                    .ok()?;
                Some(Cache::with_options(
                    opts,
                    ByteWeighter,
                    Default::default(),
                    Default::default(),
                ))
            })
            .flatten();
        BlobCache {
            cache,
            capacity,
            max_item,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The bound, bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The largest blob that is cached, bytes.
    pub fn max_item(&self) -> u64 {
        self.max_item
    }

    /// Bytes held now (keys and overhead included).
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }

    /// Whether `key` is cached.
    pub fn contains(&self, key: &str) -> bool {
        self.cache.as_ref().is_some_and(|c| c.contains_key(key))
    }

    /// The cached bytes of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.cache.as_ref()?.get(key)
    }

    /// Cache `bytes` under `key` (unless too large): a blob just written is likely read next.
    pub fn insert(&self, key: &str, bytes: Bytes) {
        if let Some(c) = &self.cache {
            if (bytes.len() as u64) <= self.max_item {
                c.insert(key.to_string(), bytes);
            }
        }
    }

    /// Forget `key` (its blob was deleted: free the memory).
    pub fn remove(&self, key: &str) {
        if let Some(c) = &self.cache {
            c.remove(key);
        }
    }

    /// The bytes of `key`: from the cache, or from `load` (then cached), one load for all
    /// concurrent misses of `key`. `Ok(None)` (absent) and errors are not cached: a later
    /// read asks the store again.
    pub fn get_or_load<E>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Option<Bytes>, E>,
    ) -> Result<Option<Bytes>, E> {
        if let Some(v) = self.get(key) {
            return Ok(Some(v));
        }
        let slot = self.join(key);
        let mut load = Some(load);
        let mut failure = None;
        let shared = slot
            .get_or_init(|| {
                // A load that finished just before this slot was made left its bytes here.
                if let Some(v) = self.get(key) {
                    return Ok(Some(v));
                }
                let Some(f) = load.take() else {
                    return Err(LoadFailed);
                };
                match f() {
                    Ok(got) => {
                        if let Some(b) = &got {
                            self.insert(key, b.clone());
                        }
                        Ok(got)
                    }
                    Err(e) => {
                        failure = Some(e);
                        Err(LoadFailed)
                    }
                }
            })
            .clone();
        drop(slot);
        match (shared, failure, load) {
            (_, Some(e), _) => Err(e),
            (Ok(got), None, _) => Ok(got),
            // Another miss's load failed: this one tries for itself.
            (Err(LoadFailed), None, Some(f)) => f(),
            // Not reached: a failed load of this miss's own leaves its error.
            (Err(LoadFailed), None, None) => Ok(None),
        }
    }

    /// The in-flight slot of `key`, joined or made.
    fn join(&self, key: &str) -> Arc<Slot> {
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = m.get(key).and_then(Weak::upgrade) {
            return slot;
        }
        // Few loads are in flight at once: dropping the finished ones here keeps it small.
        m.retain(|_, w| w.strong_count() > 0);
        let slot = Arc::new(Slot::new());
        m.insert(key.to_string(), Arc::downgrade(&slot));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn loads_once_and_stays_within_its_bound() {
        let cache = BlobCache::new(64 << 10);
        let loads = AtomicUsize::new(0);
        let load = |n: usize| {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Some(Bytes::from(vec![7u8; n])))
        };
        assert_eq!(
            cache.get_or_load("a", || load(100)).unwrap().unwrap().len(),
            100
        );
        assert_eq!(
            cache.get_or_load("a", || load(100)).unwrap().unwrap().len(),
            100
        );
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // Too large for the cache: passed through, loaded every time.
        for _ in 0..2 {
            cache.get_or_load("big", || load(16 << 10)).unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        assert!(!cache.contains("big"));
        for i in 0..200 {
            cache.insert(&format!("k{i}"), Bytes::from(vec![0u8; 4 << 10]));
        }
        assert!(cache.weight() <= cache.capacity(), "{cache:?}");
        // Absent and failed loads are not remembered.
        assert_eq!(cache.get_or_load("none", || Ok::<_, ()>(None)), Ok(None));
        assert_eq!(cache.get_or_load("none", || Err(())), Err(()));
        assert!(!cache.contains("none"));
        cache.insert("x", Bytes::from_static(b"x"));
        cache.remove("x");
        assert!(cache.get("x").is_none());
    }

    /// `n` threads missing `key` at once, each loading `bytes` (failing while `fail`).
    fn misses(
        cache: &Arc<BlobCache>,
        key: &'static str,
        bytes: usize,
        fail: bool,
    ) -> (usize, Vec<Result<Option<Bytes>, ()>>) {
        let loads = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                std::thread::spawn(move || {
                    cache.get_or_load(key, || {
                        let n = loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        if fail && n == 0 {
                            return Err(());
                        }
                        Ok(Some(Bytes::from(vec![1u8; bytes])))
                    })
                })
            })
            .collect();
        let out = threads.into_iter().map(|t| t.join().unwrap()).collect();
        (loads.load(Ordering::SeqCst), out)
    }

    #[test]
    fn concurrent_misses_load_once() {
        let cache = Arc::new(BlobCache::new(1 << 20));
        let (loads, got) = misses(&cache, "page", 10, false);
        assert_eq!(loads, 1);
        assert!(got
            .iter()
            .all(|g| g.as_ref().unwrap().as_ref().unwrap().len() == 10));
        assert!(cache.contains("page"));
        // Too large to cache: still one load, its bytes shared.
        let (loads, got) = misses(&cache, "big", 512 << 10, false);
        assert_eq!(loads, 1);
        assert!(got.iter().all(|g| g.as_ref().unwrap().is_some()));
        assert!(!cache.contains("big"));
        // Gone from memory once served: the next miss loads again.
        let (loads, _) = misses(&cache, "big", 512 << 10, false);
        assert_eq!(loads, 1);
        // A failed load fails its own miss only; the waiters load for themselves.
        let (loads, got) = misses(&cache, "flaky", 10, true);
        assert_eq!(got.iter().filter(|g| g.is_err()).count(), 1);
        assert!(loads >= 2, "{loads}");
        assert!(cache.inflight.lock().unwrap().len() <= 3);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = BlobCache::new(0);
        cache.insert("a", Bytes::from_static(b"a"));
        assert!(!cache.contains("a"));
        let got = cache.get_or_load("a", || Ok::<_, ()>(Some(Bytes::from_static(b"a"))));
        assert_eq!(got, Ok(Some(Bytes::from_static(b"a"))));
    }
}
