//! Many writers queue changes while a publisher loops; a sampler watches timestamp.json.
//! Afterwards every acknowledged change is published, and the timestamp (and the snapshot it
//! names) only ever moved forward, one content per version.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_targets, record, target, verify_published, Expect};
use tufpi_core::metadata::Metadata;
use tufpi_repo::{Change, RepoConfig, Repository};

const WRITERS: u64 = 8;
const PER_WRITER: u64 = 200;

#[test]
fn writers_and_a_looping_publisher() {
    let tmp = common::TestDir::new(module_path!());
    let dir = tmp.path().to_path_buf();
    let cfg = RepoConfig {
        bit_length: 6,
        ..RepoConfig::default()
    };
    drop(Repository::init_dev(&dir, cfg).unwrap());

    let writers_done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let model: Arc<Mutex<BTreeMap<String, Expect>>> = Arc::default();

    // Sampler: (timestamp version, sha256 of the file, snapshot version it names).
    let sampler = {
        let stop = stop.clone();
        let meta = dir.join("metadata");
        std::thread::spawn(move || {
            let mut samples: Vec<(u64, String, u64)> = Vec::new();
            loop {
                // Read once more after `stop`: the publisher has finished by then, so the
                // last sample is the final timestamp.
                let last_round = stop.load(Ordering::SeqCst);
                let bytes =
                    std::fs::read(meta.join("timestamp.json")).expect("timestamp.json vanished");
                let md = Metadata::from_bytes(&bytes).expect("timestamp.json unparsable");
                let sv = md.as_timestamp().unwrap().snapshot_meta.version;
                // The snapshot it names is there, whole.
                let snap =
                    std::fs::read(meta.join(format!("{sv}.snapshot.json"))).unwrap_or_else(|e| {
                        panic!(
                            "timestamp v{} names missing snapshot v{sv}: {e}",
                            md.signed.version
                        )
                    });
                let want = md
                    .as_timestamp()
                    .unwrap()
                    .snapshot_meta
                    .hashes
                    .clone()
                    .unwrap();
                assert_eq!(
                    want["sha256"],
                    common::sha256_hex(&snap),
                    "snapshot v{sv} hash"
                );
                let s = (md.signed.version, common::sha256_hex(&bytes), sv);
                if samples.last() != Some(&s) {
                    samples.push(s);
                }
                if last_round {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            samples
        })
    };

    // Publisher: loops until all writers are done and the queue is empty.
    let publisher = {
        let dir = dir.clone();
        let writers_done = writers_done.clone();
        std::thread::spawn(move || {
            let mut repo = Repository::open(&dir).unwrap();
            let mut rounds = 0;
            let mut changes = 0;
            loop {
                let finished = writers_done.load(Ordering::SeqCst) == WRITERS as usize;
                let rep = repo.publish(37).expect("publish");
                changes += rep.changes;
                rounds += 1;
                if finished && repo.pending().unwrap() == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(3));
            }
            (rounds, changes)
        })
    };

    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let dir = dir.clone();
            let done = writers_done.clone();
            let model = model.clone();
            std::thread::spawn(move || {
                for k in 0..PER_WRITER {
                    let i = w * 10_000 + k;
                    let (p, e) = target(i, 0);
                    // A fresh handle per change, as separate web workers would do.
                    let mut repo = Repository::open(&dir).unwrap();
                    let mut changes = vec![Change::Add(record(&p, &e))];
                    let mut m = model.lock().unwrap();
                    m.insert(p.clone(), e.clone());
                    // Every 10th: replace an earlier one of ours; every 25th: remove one.
                    if k % 10 == 9 {
                        let (old, _) = target(i - 5, 0);
                        let (_, e2) = target(i - 5, 1);
                        m.insert(old.clone(), e2.clone());
                        changes.push(Change::Add(record(&old, &e2)));
                    }
                    if k % 25 == 24 {
                        let (old, _) = target(i - 20, 0);
                        m.remove(&old);
                        changes.push(Change::Remove(old));
                    }
                    // Enqueue while holding the model lock so the model's order is the queue's.
                    repo.enqueue(&changes).unwrap();
                    drop(m);
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (rounds, changes) = publisher.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    eprintln!(
        "{} writers × {PER_WRITER} in {:?}; publisher: {rounds} rounds, {changes} changes; {} distinct timestamps seen",
        WRITERS,
        start.elapsed(),
        samples.len()
    );

    let model = model.lock().unwrap();
    let p = verify_published(&dir.join("metadata")).unwrap();
    assert_targets(&p, &model);
    let repo = Repository::open(&dir).unwrap();
    assert_eq!(repo.pending().unwrap(), 0);
    let total_changes: u64 = WRITERS * (PER_WRITER + PER_WRITER / 10 + PER_WRITER / 25);
    assert_eq!(
        changes, total_changes,
        "publish reports must add up to the changes queued"
    );

    // Over time: timestamp and snapshot versions strictly increase, one content per version.
    assert!(samples.len() > 2, "sampler saw too little: {samples:?}");
    for w in samples.windows(2) {
        assert!(
            w[1].0 > w[0].0,
            "timestamp went from v{} to v{}",
            w[0].0,
            w[1].0
        );
        assert!(
            w[1].2 > w[0].2,
            "snapshot went from v{} to v{}",
            w[0].2,
            w[1].2
        );
    }
    let last = samples.last().unwrap();
    assert_eq!(last.0, p.timestamp_version);
}
