//! (d) Sustained throughput: a producer thread enqueues single-target adds (one `enqueue` call,
//! one durable transaction, per target) for a fixed time while a publisher thread loops
//! `publish(batch)`; a watcher records when each change reaches a published `timestamp.json`.
//!
//! `publish` drains the queue before it returns, so under a steady stream it may not return
//! for the whole run: latency is observed on disk instead. The watcher reads, in one SQLite
//! statement, the timestamp version the engine has planned and the lowest queued sequence
//! number (every lower one was applied in a batch of that version or earlier); once
//! `timestamp.json` on disk shows that version, those changes are published.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tufpi_core::metadata::Metadata;
use tufpi_repo::Repository;

use super::records;
use crate::measure::{emit, peak_rss_mb, percentile, Error};

/// How often the watcher polls.
const POLL: Duration = Duration::from_millis(1);

/// The producer is stopped early when the work file system has less free space than this:
/// every publish writes new versions of the touched bins and of the 16,386-entry snapshot
/// (consistent snapshots, nothing collected meanwhile), and the work dir is usually tmpfs, i.e.
/// RAM. Small batches on a 1M-target repository write tens of MB per publish.
const MIN_FREE: u64 = 3 << 30;

/// Free bytes on the file system holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return u64::MAX;
    };
    // SAFETY: statvfs writes into the zeroed struct it is given; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return u64::MAX;
    }
    st.f_bavail.saturating_mul(st.f_frsize)
}

/// (planned timestamp version, every queue seq below this one has been applied).
fn planned(db: &Connection) -> rusqlite::Result<(u64, u64)> {
    db.query_row(
        "SELECT (SELECT version FROM roles WHERE name = 'timestamp'), \
         (SELECT MIN(seq) FROM queue), \
         (SELECT seq FROM sqlite_sequence WHERE name = 'queue')",
        [],
        |r| {
            let v: i64 = r.get(0)?;
            let min: Option<i64> = r.get(1)?;
            let last: Option<i64> = r.get(2)?;
            Ok((v as u64, min.unwrap_or(last.unwrap_or(0) + 1) as u64))
        },
    )
}

/// Version of the timestamp currently published in `meta`.
fn published_version(meta: &Path) -> Option<u64> {
    let bytes = std::fs::read(meta.join("timestamp.json")).ok()?;
    Some(Metadata::from_bytes(&bytes).ok()?.signed.version)
}

/// How the stream runs.
pub struct StreamCfg {
    /// How long the producer runs.
    pub secs: Duration,
    /// Most changes per publish batch.
    pub batch: usize,
    /// Offered adds per second (0: as fast as the producer can enqueue).
    pub rate: f64,
    /// Prefix of the result keys.
    pub prefix: &'static str,
}

/// Run the stream on the repository in `dir`, adding new targets.
pub fn run(dir: &Path, cfg: &StreamCfg) -> Result<(), Error> {
    let (secs, batch, rate) = (cfg.secs, cfg.batch, cfg.rate);
    // New target indices: past every record made so far.
    let first = 2_000_000_000 + Repository::open(dir)?.target_count()?;
    let produced = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();

    let producer = {
        let (dir, produced, abort) = (dir.to_path_buf(), produced.clone(), abort.clone());
        thread::spawn(move || -> Result<Vec<(u64, Instant)>, Error> {
            let mut repo = Repository::open(&dir)?;
            let mut log = Vec::with_capacity(1 << 20);
            let mut i = first;
            while t0.elapsed() < secs && !abort.load(Ordering::SeqCst) {
                if rate > 0.0 {
                    let due = t0 + Duration::from_secs_f64((i - first) as f64 / rate);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                let seq = repo.enqueue(&[records::add(i)])?;
                log.push((seq, Instant::now()));
                i += 1;
            }
            produced.store(true, Ordering::SeqCst);
            Ok(log)
        })
    };
    let publisher = {
        let (dir, produced, drained) = (dir.to_path_buf(), produced.clone(), drained.clone());
        // `publish` returns only once the queue is empty, so under a fast stream one call
        // can span the whole run.
        thread::spawn(move || -> Result<(u64, u64, f64), Error> {
            let mut repo = Repository::open(&dir)?;
            let (mut changes, mut calls, mut bins) = (0u64, 0u64, 0u64);
            loop {
                let rep = repo.publish(batch)?;
                changes += rep.changes;
                bins += rep.bins as u64;
                calls += 1;
                if rep.changes == 0 {
                    if produced.load(Ordering::SeqCst) && repo.pending()? == 0 {
                        break;
                    }
                    thread::sleep(POLL);
                }
            }
            drained.store(true, Ordering::SeqCst);
            let bins_per_change = bins as f64 / changes.max(1) as f64;
            Ok((changes, calls, bins_per_change))
        })
    };

    // Watcher (this thread): (exclusive upper seq bound, time it was seen published).
    let db = Connection::open_with_flags(
        dir.join("state.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(Duration::from_secs(5))?;
    let meta = dir.join("metadata");
    let mut free_min = u64::MAX;
    let mut plans: Vec<(u64, u64)> = Vec::new();
    let mut seen: Vec<(u64, Instant)> = Vec::new();
    let mut upto = 0u64;
    loop {
        let stop = drained.load(Ordering::SeqCst);
        free_min = free_min.min(free_bytes(dir));
        if free_min < MIN_FREE && !abort.swap(true, Ordering::SeqCst) {
            eprintln!(
                "stream: under {} GB free, stopping the producer",
                MIN_FREE >> 30
            );
        }
        let (v, below) = planned(&db)?;
        if !matches!(plans.last(), Some(&(pv, pb)) if v <= pv && below <= pb) {
            plans.push((v, below));
        }
        if let Some(disk) = published_version(&meta) {
            let now = Instant::now();
            let best = plans
                .iter()
                .filter(|(pv, _)| *pv <= disk)
                .map(|(_, b)| *b)
                .max();
            if let Some(b) = best.filter(|&b| b > upto) {
                upto = b;
                seen.push((b, now));
            }
        }
        if stop {
            break;
        }
        thread::sleep(POLL);
    }
    let log = producer.join().map_err(|_| "producer panicked")??;
    let (changes, calls, bins_per_change) =
        publisher.join().map_err(|_| "publisher panicked")??;

    let mut lat = Vec::with_capacity(log.len());
    let mut last_pub = t0;
    let mut k = 0;
    for (seq, t_enq) in &log {
        while k < seen.len() && seen[k].0 <= *seq {
            k += 1;
        }
        if let Some((_, t_pub)) = seen.get(k) {
            lat.push(t_pub.saturating_duration_since(*t_enq).as_secs_f64() * 1000.0);
            last_pub = last_pub.max(*t_pub);
        }
    }
    // The producer's actual run (shorter than `secs` if it was stopped early).
    let window = log
        .last()
        .map_or(secs, |(_, t)| t.duration_since(t0))
        .as_secs_f64()
        .max(1e-3);
    let span = last_pub.duration_since(t0).as_secs_f64().max(window);
    let key = |k: &str| format!("{}_{k}", cfg.prefix);
    emit(&key("secs"), window);
    emit(&key("enqueued"), log.len() as f64);
    emit(&key("enqueue_per_s"), log.len() as f64 / window);
    emit(&key("published"), lat.len() as f64);
    emit(&key("applied"), changes as f64);
    emit(&key("per_s"), lat.len() as f64 / span);
    emit(&key("drain_ms"), (span - window) * 1000.0);
    emit(&key("publish_calls"), calls as f64);
    emit(&key("timestamps"), seen.len() as f64);
    emit(&key("bins_per_change"), bins_per_change);
    emit(&key("lat_p50_ms"), percentile(&lat, 50.0));
    emit(&key("lat_p99_ms"), percentile(&lat, 99.0));
    let written = std::fs::read_dir(&meta).map_or(0, |d| d.count());
    emit(&key("metadata_files"), written as f64);
    emit(
        &key("aborted"),
        f64::from(u8::from(abort.load(Ordering::SeqCst))),
    );
    emit(&key("rss_mb"), peak_rss_mb());
    Ok(())
}
