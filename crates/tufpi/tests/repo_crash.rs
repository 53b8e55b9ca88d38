//! Crash safety of the publisher: `tufpi repo publish` is SIGKILLed at random points (seeded;
//! set TUFPI_TEST_SEED to replay) while it works through a large queue, and restarted. After
//! every kill, before any restart, the published repository must verify end to end as a client
//! would see it (timestamp → an existing, whole snapshot → every listed role); no version name
//! may ever hold two different files; timestamp only moves forward. At the end every
//! acknowledged change is published. Bulk imports (`tufpi repo import`) are killed too: a
//! killed import is all or nothing, and re-running it completes it.

#[path = "../../tufpi-repo/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_targets, record, target, verify_published, Expect, Rng, TestDir};
use tufpi_repo::{Change, Repository};

const BIN: &str = env!("CARGO_BIN_EXE_tufpi");

/// What the test has seen so far, across kills and restarts.
#[derive(Default)]
struct Seen {
    /// `N.role.json` → sha256 of its bytes, as first seen.
    files: BTreeMap<String, String>,
    /// timestamp version → sha256 of timestamp.json.
    timestamps: BTreeMap<u64, String>,
    last_timestamp: u64,
    max_temps: usize,
    check_time: Duration,
    verifier: common::Verifier,
    scan: common::ScanCache,
}

/// The repository as it stands right now (publisher dead): verifies end to end, and agrees
/// with everything seen before.
fn check_now(meta: &Path, seen: &mut Seen, when: &str) -> common::Published {
    let t0 = Instant::now();
    let p = seen
        .verifier
        .verify(meta, false)
        .unwrap_or_else(|e| panic!("{when}: published repository broken: {e}"));
    let (files, temps, other) = common::scan_metadata_dir_cached(meta, &mut seen.scan);
    assert!(other.is_empty(), "{when}: unexpected files {other:?}");
    seen.max_temps = seen.max_temps.max(temps.len());
    for (name, h) in files {
        match seen.files.get(&name) {
            Some(old) => assert_eq!(old, &h, "{when}: {name} changed content"),
            None => {
                seen.files.insert(name, h);
            }
        }
    }
    let ts = std::fs::read(meta.join("timestamp.json")).unwrap();
    let h = common::sha256_hex(&ts);
    let v = p.timestamp_version;
    assert!(
        v >= seen.last_timestamp,
        "{when}: timestamp went back from v{} to v{v}",
        seen.last_timestamp
    );
    if let Some(old) = seen.timestamps.insert(v, h.clone()) {
        assert_eq!(
            old, h,
            "{when}: two different timestamp.json files with version {v}"
        );
    }
    seen.last_timestamp = v;
    seen.check_time += t0.elapsed();
    p
}

fn enqueue(repo: &Path, changes: &[Change]) {
    let mut r = Repository::open(repo).unwrap();
    for chunk in changes.chunks(5000) {
        r.enqueue(chunk).unwrap();
    }
}

#[test]
fn sigkill_publisher_at_random_points() {
    let seed = common::seed(20_261_127);
    let mut rng = Rng::new(seed);
    let base = TestDir::new("crash");
    let repo = base.path().join("repo");
    let meta = repo.join("metadata");
    let out = Command::new(BIN)
        .args([
            "repo",
            "init",
            "--repo",
            repo.to_str().unwrap(),
            "--dev-keys",
            "--bins-bit-length",
            "8",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut seen = Seen::default();
    check_now(&meta, &mut seen, "after init");

    // The model of what has been acknowledged: path → content; `live` ids for replace/remove.
    let mut model: BTreeMap<String, Expect> = BTreeMap::new();
    let mut live: Vec<u64> = Vec::new();
    let mut next_id = 0u64;
    let mut add_new = |n: u64, model: &mut BTreeMap<String, Expect>, live: &mut Vec<u64>| {
        (0..n)
            .map(|_| {
                let (p, e) = target(next_id, 0);
                model.insert(p.clone(), e.clone());
                live.push(next_id);
                next_id += 1;
                Change::Add(record(&p, &e))
            })
            .collect::<Vec<_>>()
    };
    enqueue(&repo, &add_new(20_000, &mut model, &mut live));
    // Import files: fresh paths (never replaced or removed later, so re-running a killed
    // import is idempotent), written as JSON lines.
    let mut imports: Vec<(std::path::PathBuf, BTreeMap<String, Expect>)> = Vec::new();
    let mut next_import = 10_000_000u64;
    let mut make_import = |n: u64| {
        let mut recs = BTreeMap::new();
        let mut text = String::new();
        for _ in 0..n {
            let (p, e) = target(next_import, 0);
            next_import += 1;
            text.push_str(&format!(
                "{{\"path\": \"{p}\", \"length\": {}, \"hashes\": {{\"sha256\": \"{}\"}}}}\n",
                e.length, e.sha256
            ));
            recs.insert(p, e);
        }
        let file = base.path().join(format!("import-{next_import}.jsonl"));
        std::fs::write(&file, text).unwrap();
        (file, recs)
    };
    // Imports killed before finishing, to re-run at the end.
    let mut unfinished: Vec<(std::path::PathBuf, BTreeMap<String, Expect>)> = Vec::new();

    let cycles = 24;
    let mut est = Duration::from_millis(1500); // typical full publish; updated from clean runs
    let (mut killed, mut finished) = (0, 0);
    let started = Instant::now();
    for cycle in 0..cycles {
        if cycle > 0 && rng.chance(60) {
            // More work while earlier work may still be in flight: new targets, replacements
            // (same path, new content) and removals.
            let mut changes = add_new(rng.range(100, 1500), &mut model, &mut live);
            for _ in 0..rng.range(0, 300) {
                let k = rng.range(0, live.len() as u64) as usize;
                let id = live[k];
                let (path, _) = target(id, 0);
                if rng.chance(50) {
                    let (_, e) = target(id, cycle + 1);
                    model.insert(path.clone(), e.clone());
                    changes.push(Change::Add(record(&path, &e)));
                } else {
                    live.swap_remove(k);
                    model.remove(&path);
                    changes.push(Change::Remove(path));
                }
            }
            enqueue(&repo, &changes);
        }
        let batch = [100u64, 700, 2500, 100_000][rng.range(0, 4) as usize].to_string();
        let r = repo.to_str().unwrap();
        // Mostly publish; sometimes an expiry refresh of every bin, or a GC keeping nothing
        // superseded (both finish an interrupted publish first, and are killed too).
        let choice = rng.range(0, 12);
        let import_file = if choice >= 10 {
            imports.push(make_import(rng.range(500, 8000)));
            imports
                .last()
                .map(|(f, _)| f.to_string_lossy().into_owned())
        } else {
            None
        };
        let args: Vec<&str> = match (choice, &import_file) {
            (_, Some(f)) => vec!["repo", "import", "--repo", r, "--from-jsonl", f.as_str()],
            (0 | 1, _) => vec!["repo", "refresh", "--repo", r, "--margin-hours", "48"],
            (2, _) => vec!["repo", "gc", "--repo", r, "--retention-secs", "0"],
            _ => vec!["repo", "publish", "--repo", r, "--batch", &batch],
        };
        let what = if args[1] == "publish" {
            format!("publish --batch {batch}")
        } else {
            args[1].to_string()
        };
        // Mostly anywhere in a typical run; sometimes right at the start (recovery).
        let delay = if rng.chance(20) {
            Duration::from_millis(rng.range(0, 40))
        } else {
            Duration::from_millis(rng.range(0, est.as_millis() as u64 + 1))
        };
        let t0 = Instant::now();
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let when = match child.try_wait().unwrap() {
            Some(status) => {
                let out = child.wait_with_output().unwrap();
                assert!(
                    status.success(),
                    "cycle {cycle}: {what} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                finished += 1;
                if args[1] == "publish" {
                    est = (est + t0.elapsed()) / 2;
                }
                if let Some((_, recs)) = import_file.as_ref().and_then(|_| imports.pop()) {
                    model.extend(recs);
                }
                format!("cycle {cycle} ({what}, finished)")
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                if let Some(job) = import_file.as_ref().and_then(|_| imports.pop()) {
                    unfinished.push(job);
                }
                format!("cycle {cycle} ({what}, killed after {delay:?})")
            }
        };
        let p = check_now(&meta, &mut seen, &when);
        if import_file.is_some() {
            // All or nothing: every import so far is either wholly listed or wholly absent.
            let listed = verify_published(&meta).unwrap().targets;
            for (file, recs) in &unfinished {
                let n = recs.keys().filter(|p| listed.contains_key(*p)).count();
                assert!(
                    n == 0 || n == recs.len(),
                    "{when}: import {} half published ({n} of {})",
                    file.display(),
                    recs.len()
                );
            }
        }
        eprintln!("{when}: snapshot v{}", p.snapshot_version);
    }

    // Restart to completion.
    let t_final = Instant::now();
    let out = Command::new(BIN)
        .args(["repo", "publish", "--repo", repo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "final publish: {out:?}");
    eprintln!(
        "final publish: {:?}: {}",
        t_final.elapsed(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    for (file, recs) in unfinished {
        let out = Command::new(BIN)
            .args([
                "repo",
                "import",
                "--repo",
                repo.to_str().unwrap(),
                "--from-jsonl",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "re-running import: {out:?}");
        model.extend(recs);
    }
    let p = check_now(&meta, &mut seen, "after the final publish");
    assert_targets(&verify_published(&meta).unwrap(), &model);
    let r = Repository::open(&repo).unwrap();
    assert_eq!(r.pending().unwrap(), 0);
    assert_eq!(r.target_count().unwrap(), model.len() as u64);
    let (_, temps, _) = common::scan_metadata_dir(&meta);
    eprintln!(
        "{cycles} cycles in {:?}: {killed} killed, {finished} finished; {} targets; snapshot v{}; \
         {} versioned files; temp files: at most {} after a kill, {} left at the end; checks took {:?}",
        started.elapsed(),
        model.len(),
        p.snapshot_version,
        seen.files.len(),
        seen.max_temps,
        temps.len(),
        seen.check_time
    );
    assert!(
        killed >= cycles / 3,
        "too few kills ({killed}): the publisher ran faster than expected"
    );
    assert!(
        temps.is_empty(),
        "{} temporary files left in metadata/, e.g. {:?}",
        temps.len(),
        temps.iter().take(5).collect::<Vec<_>>()
    );
}
