//! `tufpi repo …` driven as a user would: init, add, remove, publish, import, status; bad
//! input refused with nothing queued; the publisher lock between processes; many `repo add
//! --publish` processes at once.

#[path = "../../tufpi-repo/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_targets, sha256_hex, target, verify_published, Expect, TestDir};
use tufpi_core::metadata::Metadata;

const BIN: &str = env!("CARGO_BIN_EXE_tufpi");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running tufpi")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "tufpi {args:?} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit 1 with `needle` in stderr (one line: "error: …").
fn fails(args: &[&str], needle: &str) -> Output {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "tufpi {args:?}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(needle),
        "tufpi {args:?}: expected {needle:?} in {}",
        text(&o)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn init(name: &str, extra: &[&str]) -> (TestDir, PathBuf) {
    let base = TestDir::new(name);
    let repo = base.path().join("repo");
    let mut args = vec!["repo", "init", "--repo", s(&repo), "--dev-keys"];
    args.extend_from_slice(extra);
    let out = ok(&args);
    assert!(out.contains("initialised"), "{out}");
    (base, repo)
}

fn status(repo: &Path) -> String {
    ok(&["repo", "status", "--repo", s(repo)])
}

#[test]
fn init_add_remove_publish_status() {
    let (_dir, repo) = init("cli_basic", &["--bins-bit-length", "4"]);
    let files = repo.parent().unwrap().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let f = files.join("demo-1.0.tar.gz");
    std::fs::write(&f, b"hello tufpi\n").unwrap();
    let out = ok(&[
        "repo",
        "add",
        "--repo",
        s(&repo),
        "packages/demo/demo-1.0.tar.gz",
        "--file",
        s(&f),
    ]);
    assert!(out.contains("queued change #1"), "{out}");
    let (p2, e2) = target(2, 0);
    let len = e2.length.to_string();
    ok(&[
        "repo",
        "add",
        "--repo",
        s(&repo),
        &p2,
        "--length",
        &len,
        "--sha256",
        &e2.sha256,
    ]);
    let st = status(&repo);
    assert!(st.contains("pending changes: 2"), "{st}");
    let out = ok(&["repo", "publish", "--repo", s(&repo)]);
    assert!(out.contains("published 2 changes"), "{out}");
    assert!(out.contains("snapshot v2, timestamp v2"), "{out}");
    let mut model = BTreeMap::from([
        (
            "packages/demo/demo-1.0.tar.gz".to_string(),
            Expect {
                length: 12,
                sha256: sha256_hex(b"hello tufpi\n"),
            },
        ),
        (p2.clone(), e2),
    ]);
    let p = verify_published(&repo.join("metadata")).unwrap();
    assert_targets(&p, &model);
    // By default every target lists sha256 alone (every TUF client verifies it).
    let (_, tf) = &p.targets["packages/demo/demo-1.0.tar.gz"];
    assert_eq!(
        tf.hashes.keys().collect::<Vec<_>>(),
        ["sha256"],
        "{:?}",
        tf.hashes
    );
    assert!(status(&repo).contains("target hashes: sha256"));

    let out = ok(&["repo", "remove", "--repo", s(&repo), &p2, "--publish"]);
    assert!(out.contains("snapshot v3, timestamp v3"), "{out}");
    model.remove(&p2);
    let p = verify_published(&repo.join("metadata")).unwrap();
    assert_targets(&p, &model);
    let st = status(&repo);
    assert!(st.contains("targets: 1   pending changes: 0"), "{st}");
    assert!(st.contains("bins       16 roles"), "{st}");
    assert!(!st.contains("WARNING"), "{st}");
    // Publishing with nothing queued changes nothing.
    let out = ok(&["repo", "publish", "--repo", s(&repo)]);
    assert!(out.contains("published 0 changes"), "{out}");
    assert_eq!(
        verify_published(&repo.join("metadata"))
            .unwrap()
            .snapshot_version,
        3
    );
}

#[test]
fn target_hashes_are_chosen_at_init_required_and_switched() {
    let (base, repo) = init(
        module_path!(),
        &[
            "--bins-bit-length",
            "3",
            "--target-hashes",
            "sha256,blake2b-256",
        ],
    );
    assert!(status(&repo).contains("target hashes: blake2b-256,sha256"));
    let files = base.path().join("files");
    let f = files.join("packages/a/a-1.0.tar.gz");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, b"file a\n").unwrap();
    ok(&[
        "repo",
        "add",
        "--repo",
        s(&repo),
        "packages/a/a-1.0.tar.gz",
        "--file",
        s(&f),
    ]);
    // By hash: sha256 alone is not enough here; --hash gives the other.
    let sha = sha256_hex(b"file b");
    let b2 = tufpi_core::hashes::digest_hex("blake2b-256", b"file b").unwrap();
    let by_hash = [
        "repo",
        "add",
        "--repo",
        s(&repo),
        "b.txt",
        "--length",
        "6",
        "--sha256",
        &sha,
    ];
    fails(&by_hash, "hashes lack blake2b-256");
    let arg = format!("blake2b-256={b2}");
    ok(&[&by_hash[..], &["--hash", &arg, "--publish"]].concat());
    let listed = |repo: &Path| -> Vec<Vec<String>> {
        let p = verify_published(&repo.join("metadata")).unwrap();
        p.targets
            .values()
            .map(|(_, tf)| tf.hashes.keys().cloned().collect())
            .collect()
    };
    assert_eq!(listed(&repo), [["blake2b-256", "sha256"]; 2]);

    // Dropping blake2b-256 re-lists both targets, re-signed.
    let out = ok(&["repo", "set-target-hashes", "--repo", s(&repo), "sha256"]);
    assert!(out.contains("targets list sha256: 2 re-listed"), "{out}");
    assert_eq!(listed(&repo), [["sha256"]; 2]);
    // Adding sha512 needs the files: refused without them, changing nothing ...
    fails(
        &[
            "repo",
            "set-target-hashes",
            "--repo",
            s(&repo),
            "sha256,sha512",
        ],
        "2 targets lack a digest",
    );
    assert!(status(&repo).contains("target hashes: sha256\n"));
    // ... and b.txt is not among them.
    let with_files = [
        "repo",
        "set-target-hashes",
        "--repo",
        s(&repo),
        "sha256,sha512",
        "--files-dir",
        s(&files),
    ];
    let out = text(&run(&with_files));
    assert!(
        out.contains("1 targets lack a digest") && out.contains("\"b.txt\""),
        "{out}"
    );
    // A file that is not the target's content (another sha256) lends it no digest.
    std::fs::write(files.join("b.txt"), b"stale b").unwrap();
    let out = text(&run(&with_files));
    assert!(out.contains("1 targets lack a digest"), "{out}");
    std::fs::write(files.join("b.txt"), b"file b").unwrap();
    let out = ok(&with_files);
    assert!(out.contains("2 re-listed"), "{out}");
    assert_eq!(listed(&repo), [["sha256", "sha512"]; 2]);
    fails(
        &[
            "repo",
            "set-target-hashes",
            "--repo",
            s(&repo),
            "blake2b-256",
        ],
        "must include sha256",
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_queued() {
    let (_dir, repo) = init("cli_bad_input", &["--bins-bit-length", "2"]);
    let r = s(&repo);
    let h = "ab".repeat(32);
    for path in [
        "../escape.whl",
        "/etc/passwd",
        "a/../../b.whl",
        "a//b.whl",
        "./a.whl",
        "",
    ] {
        fails(
            &[
                "repo", "add", "--repo", r, path, "--length", "1", "--sha256", &h,
            ],
            "invalid input",
        );
        fails(&["repo", "remove", "--repo", r, path], "invalid input");
    }
    fails(
        &[
            "repo", "add", "--repo", r, "x.whl", "--length", "1", "--sha256", "abc",
        ],
        "sha256",
    );
    fails(
        &[
            "repo",
            "add",
            "--repo",
            r,
            "x.whl",
            "--length",
            "1",
            "--sha256",
            &"z".repeat(64),
        ],
        "sha256",
    );
    // Usage errors exit 1 too.
    fails(
        &["repo", "add", "--repo", r, "x.whl", "--length", "1"],
        "--sha256",
    );
    fails(&["repo", "add", "--repo", r, "x.whl"], "--file");
    fails(
        &[
            "repo",
            "add",
            "--repo",
            r,
            "x.whl",
            "--file",
            "/nonexistent/file",
        ],
        "reading",
    );

    let dir = repo.parent().unwrap();
    let good = format!(r#"{{"path": "ok/a.whl", "length": 3, "hashes": {{"sha256": "{h}"}}}}"#);
    let cases = [
        (
            r#"{"path": "ok/b.whl", "length": 3, "hashes": {"blake2b-256": "00"}}"#.to_string(),
            "sha256",
        ),
        (
            format!(r#"{{"path": "../b.whl", "length": 3, "hashes": {{"sha256": "{h}"}}}}"#),
            "invalid input",
        ),
        (
            format!(r#"{{"path": "ok/b.whl", "length": -3, "hashes": {{"sha256": "{h}"}}}}"#),
            "length",
        ),
        (
            format!(r#"{{"path": "ok/b.whl", "length": "3", "hashes": {{"sha256": "{h}"}}}}"#),
            "length",
        ),
        (
            format!(r#"{{"length": 3, "hashes": {{"sha256": "{h}"}}}}"#),
            "path",
        ),
        (r#"{"path": "ok/b.whl", "length": 3}"#.to_string(), "hashes"),
        ("not json".to_string(), "line 2"),
    ];
    for (i, (bad, needle)) in cases.iter().enumerate() {
        let f = dir.join(format!("bad{i}.jsonl"));
        std::fs::write(&f, format!("{good}\n{bad}\n{good}\n")).unwrap();
        fails(
            &["repo", "import", "--repo", r, "--from-jsonl", s(&f)],
            needle,
        );
    }
    fails(&["repo", "import", "--repo", r], "--from-jsonl");
    let st = status(&repo);
    assert!(st.contains("targets: 0   pending changes: 0"), "{st}");
    let p = verify_published(&repo.join("metadata")).unwrap();
    assert_eq!(p.snapshot_version, 1);

    // Not a repository / no --dev-keys / already initialised.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &["repo", "status", "--repo", s(&empty)],
        "not a tufpi repository",
    );
    fails(
        &["repo", "publish", "--repo", s(&empty)],
        "not a tufpi repository",
    );
    fails(&["repo", "init", "--repo", s(&empty)], "--dev-keys");
    assert!(!empty.join("state.db").exists());
    fails(
        &["repo", "init", "--repo", r, "--dev-keys"],
        "already holds a repository",
    );
}

#[test]
fn second_publisher_fails_with_the_lock_error() {
    let (_dir, repo) = init("cli_lock", &["--bins-bit-length", "2"]);
    let r = s(&repo);
    // Hold the lock from this process, as a running publisher would.
    let mut holder = tufpi_repo::Repository::open(&repo).unwrap();
    holder.lock().unwrap();
    let (p, e) = target(1, 0);
    let len = e.length.to_string();
    fails(&["repo", "publish", "--repo", r], "another publisher holds");
    fails(
        &["repo", "refresh", "--repo", r, "--margin-hours", "48"],
        "another publisher holds",
    );
    // The change is acknowledged (queued) even though publishing it here was refused.
    let o = fails(
        &[
            "repo",
            "add",
            "--repo",
            r,
            &p,
            "--length",
            &len,
            "--sha256",
            &e.sha256,
            "--publish",
        ],
        "another publisher holds",
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("queued change #1"),
        "{}",
        text(&o)
    );
    // Status and queueing need no lock.
    assert!(status(&repo).contains("pending changes: 1"));
    drop(holder);
    ok(&["repo", "publish", "--repo", r]);
    assert_targets(
        &verify_published(&repo.join("metadata")).unwrap(),
        &BTreeMap::from([(p, e)]),
    );
}

#[test]
fn two_publisher_processes_at_once() {
    let (_dir, repo) = init("cli_two_publishers", &["--bins-bit-length", "8"]);
    let r = s(&repo);
    let mut q = tufpi_repo::Repository::open(&repo).unwrap();
    let mut model = BTreeMap::new();
    let changes: Vec<_> = (0..6000)
        .map(|i| {
            let (p, e) = target(i, 0);
            model.insert(p.clone(), e.clone());
            tufpi_repo::Change::Add(common::record(&p, &e))
        })
        .collect();
    q.enqueue(&changes).unwrap();
    drop(q);
    // Small batches keep the first publisher busy long enough for the second to start.
    let a = Command::new(BIN)
        .args(["repo", "publish", "--repo", r, "--batch", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let b = run(&["repo", "publish", "--repo", r, "--batch", "200"]);
    let a = a.wait_with_output().unwrap();
    assert!(a.status.success(), "first publisher: {}", text(&a));
    assert_eq!(b.status.code(), Some(1), "second publisher: {}", text(&b));
    assert!(
        String::from_utf8_lossy(&b.stderr).contains("another publisher holds"),
        "{}",
        text(&b)
    );
    assert_targets(&verify_published(&repo.join("metadata")).unwrap(), &model);
}

/// Many `repo add --publish` processes at once: each queues (acknowledged), then publishes or
/// is refused by the lock. Afterwards one publish catches up and nothing is lost; the
/// timestamp only moves forward.
#[test]
fn many_add_publish_processes_at_once() {
    const PROCS: u64 = 8;
    const EACH: u64 = 20;
    let (_dir, repo) = init("cli_many_adders", &["--bins-bit-length", "4"]);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let ts = repo.join("metadata").join("timestamp.json");
        std::thread::spawn(move || {
            let mut seen: Vec<(u64, String)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let bytes = std::fs::read(&ts).unwrap();
                let v = Metadata::from_bytes(&bytes).unwrap().signed.version;
                let s = (v, sha256_hex(&bytes));
                if seen.last() != Some(&s) {
                    seen.push(s);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    let workers: Vec<_> = (0..PROCS)
        .map(|w| {
            let repo = repo.clone();
            std::thread::spawn(move || {
                let mut model = BTreeMap::new();
                let (mut published, mut locked) = (0, 0);
                for k in 0..EACH {
                    let (p, e) = target(w * 1000 + k, 0);
                    let len = e.length.to_string();
                    let o = run(&[
                        "repo",
                        "add",
                        "--repo",
                        s(&repo),
                        &p,
                        "--length",
                        &len,
                        "--sha256",
                        &e.sha256,
                        "--publish",
                    ]);
                    let out = String::from_utf8_lossy(&o.stdout);
                    assert!(
                        out.contains("queued change #"),
                        "not acknowledged: {}",
                        text(&o)
                    );
                    if o.status.success() {
                        published += 1;
                    } else {
                        assert!(
                            String::from_utf8_lossy(&o.stderr).contains("another publisher holds"),
                            "{}",
                            text(&o)
                        );
                        locked += 1;
                    }
                    model.insert(p, e);
                }
                (model, published, locked)
            })
        })
        .collect();
    let mut model = BTreeMap::new();
    let (mut published, mut locked) = (0, 0);
    for w in workers {
        let (m, p, l) = w.join().unwrap();
        model.extend(m);
        published += p;
        locked += l;
    }
    ok(&["repo", "publish", "--repo", s(&repo)]);
    std::thread::sleep(Duration::from_millis(10));
    stop.store(true, Ordering::Relaxed);
    let seen = sampler.join().unwrap();
    eprintln!(
        "{published} published themselves, {locked} refused by the lock; {} timestamps seen",
        seen.len()
    );
    let p = verify_published(&repo.join("metadata")).unwrap();
    assert_targets(&p, &model);
    for w in seen.windows(2) {
        assert!(
            w[1].0 > w[0].0,
            "timestamp v{} then v{} (different bytes)",
            w[0].0,
            w[1].0
        );
    }
    // Every version name holds what the snapshot chain says (verify_published) and no
    // leftovers: the final state has exactly the expected number of snapshot versions.
    let (files, temps, other) = common::scan_metadata_dir(&repo.join("metadata"));
    assert!(temps.is_empty() && other.is_empty(), "{temps:?} {other:?}");
    let snapshots = files
        .keys()
        .filter(|f| f.ends_with(".snapshot.json"))
        .count() as u64;
    assert_eq!(snapshots, p.snapshot_version);
}
