//! The measured scenarios, each run in a child process of its own (so VmHWM is per scenario).
//! Each prints `key=value` lines on stdout: times in ms, RSS in MB, rates per second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tufpi_repo::{RepoConfig, Repository, TargetHashes};

use super::records;
use super::stream::{self, StreamCfg};
use crate::measure::{emit, ms, peak_rss_mb, percentile, Error};

/// Parameters of a scenario run.
pub struct Params {
    /// Repository directory (created by `init` / `full`, reused by `stream`).
    pub dir: PathBuf,
    /// Targets in the full build.
    pub n: u64,
    /// Repetitions of the publish-one-target measurement.
    pub reps: usize,
    /// Most changes per publish batch in the stream.
    pub batch: usize,
    /// Seconds the stream producer runs.
    pub secs: f64,
    /// Offered adds per second in the paced stream.
    pub rate: f64,
}

/// Run scenario `name`: "init", "full", "stream" (as fast as the producer can enqueue) or
/// "paced" (adds offered at `rate` per second); the streams reuse the repository of "full".
pub fn run(name: &str, p: &Params) -> Result<(), Error> {
    let stream = |rate: f64, prefix: &'static str| {
        let secs = Duration::from_secs_f64(p.secs);
        let batch = p.batch;
        stream::run(
            &p.dir,
            &StreamCfg {
                secs,
                batch,
                rate,
                prefix,
            },
        )
    };
    match name {
        "init" => init(&p.dir),
        "full" => full(p),
        "stream" => stream(0.0, "stream"),
        "paced" => stream(p.rate, "paced"),
        other => Err(format!("unknown scenario {other}").into()),
    }
}

/// (a) `Repository::init_dev` with 16,384 empty bins: keys, all bins, bins, targets, root,
/// snapshot, timestamp.
fn init(dir: &Path) -> Result<(), Error> {
    let t0 = Instant::now();
    let repo = Repository::init_dev(dir, RepoConfig::default())?;
    emit("init_ms", ms(t0));
    emit("init_rss_mb", peak_rss_mb());
    emit("bins", repo.config().bins() as f64);
    Ok(())
}

/// (b) full build of `n` targets (`Repository::import`: one publish), then (c) `reps` times: enqueue
/// one new target and publish it (bin + snapshot + timestamp).
fn full(p: &Params) -> Result<(), Error> {
    let t0 = Instant::now();
    // The python-tuf side lists both digests each record carries: so does this side.
    let cfg = RepoConfig {
        target_hashes: TargetHashes::legacy(),
        ..RepoConfig::default()
    };
    let mut repo = Repository::init_dev(&p.dir, cfg)?;
    emit("full_init_ms", ms(t0));

    // Making the records alone (also inside the timed build below, as in python-tuf's).
    let t0 = Instant::now();
    let made: usize = (0..p.n).map(|i| records::record(i).path.len()).sum();
    std::hint::black_box(made);
    emit("full_gen_ms", ms(t0));

    // The bulk path (`tufpi repo import`): records straight into signed bins, one publish.
    let t0 = Instant::now();
    let rep = repo.import((0..p.n).map(Ok), |i| Ok(records::record(i)), |_| {})?;
    emit("full_ms", ms(t0));
    emit("full_rss_mb", peak_rss_mb());
    emit("full_bins_signed", rep.bins as f64);
    emit("full_targets", repo.target_count()? as f64);
    for (key, file) in [("full_db_mb", "state.db"), ("full_wal_mb", "state.db-wal")] {
        let len = std::fs::metadata(p.dir.join(file)).map_or(0, |m| m.len());
        emit(key, len as f64 / (1 << 20) as f64);
    }

    let (mut total, mut publish) = (Vec::new(), Vec::new());
    for k in 0..p.reps as u64 {
        let t0 = Instant::now();
        repo.enqueue(&[records::add(p.n + k)])?;
        let t1 = Instant::now();
        let rep = repo.publish(p.batch)?;
        publish.push(ms(t1));
        total.push(ms(t0));
        if rep.changes != 1 || rep.bins != 1 {
            return Err(format!("publish-one published {rep:?}").into());
        }
    }
    for (q, name) in [(50.0, "p50"), (90.0, "p90"), (99.0, "p99")] {
        emit(&format!("one_{name}_ms"), percentile(&total, q));
        emit(&format!("one_publish_{name}_ms"), percentile(&publish, q));
    }
    emit("one_reps", total.len() as f64);
    emit("one_rss_mb", peak_rss_mb());
    Ok(())
}
