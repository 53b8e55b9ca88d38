//! `tufpi repo …` with `--database` and `--storage`: the repository engine on PostgreSQL and
//! an S3-API server (the test server scripts/test starts), as for an existing index.

mod cli;

use tufpi_blob::BlobStore;
use tufpi_core::metadata::{Body, Metadata};
use tufpi_pg::testing::TestDb;

/// `tufpi ARGS…` in `dir` with `env`; (success, stdout, stderr).
fn run(dir: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> (bool, String, String) {
    let out = cli::tufpi_with(dir, env, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn version_in(bytes: &[u8]) -> (u64, Option<u64>) {
    let md = Metadata::from_bytes(bytes).expect("metadata");
    let snap = match &md.signed.body {
        Body::Timestamp(t) => Some(t.snapshot_meta.version),
        _ => None,
    };
    (md.signed.version, snap)
}

#[test]
fn the_engine_runs_on_postgres_and_object_storage() {
    let Some(bucket) = tufpi_blob::testing::test_bucket("repo-scaleout") else {
        return;
    };
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut env = bucket.env();
    env.push(("TUFPI_DATABASE_URL", db.url().to_string()));
    env.push(("TUFPI_STORAGE_URL", bucket.url("idx")));
    let ok = |args: &[&str]| {
        let (ok, out, err) = run(dir, &env, args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let out = ok(&[
        "repo",
        "init",
        "--dev-keys",
        "--repo",
        "r",
        "--bins-bit-length",
        "3",
    ]);
    assert!(out.contains("s3://"), "{out}");
    // DIR holds only the keys: state and metadata are elsewhere.
    let local: Vec<String> = std::fs::read_dir(dir.join("r"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(local, ["keys"]);
    std::fs::write(dir.join("f.txt"), b"hello\n").unwrap();
    ok(&[
        "repo",
        "add",
        "--repo",
        "r",
        "--file",
        "f.txt",
        "files/f.txt",
    ]);
    let status = ok(&["repo", "status", "--repo", "r"]);
    assert!(status.contains("pending changes: 1"), "{status}");
    ok(&["repo", "publish", "--repo", "r"]);
    let status = ok(&["repo", "status", "--repo", "r"]);
    assert!(
        status.contains("targets: 1   pending changes: 0"),
        "{status}"
    );

    // What clients fetch is in the bucket under metadata/, the timestamp naming the snapshot.
    let store = bucket.store("idx/metadata");
    let ts = store
        .get("timestamp.json")
        .unwrap()
        .expect("timestamp.json");
    let (ts_v, snap_v) = version_in(&ts);
    assert_eq!((ts_v, snap_v), (2, Some(2)));
    assert!(store.get("2.snapshot.json").unwrap().is_some());
    assert!(store.get("1.root.json").unwrap().is_some());
    let head = store.head("timestamp.json").unwrap().unwrap();
    assert!(head.etag.is_some());

    // A refresh and a second publish continue the versions; nothing is rewritten.
    ok(&["repo", "remove", "--repo", "r", "files/f.txt", "--publish"]);
    let (ts_v, snap_v) = version_in(&store.get("timestamp.json").unwrap().unwrap());
    assert_eq!((ts_v, snap_v), (3, Some(3)));
    let status = ok(&["repo", "status", "--repo", "r"]);
    assert!(status.contains("targets: 0"), "{status}");
}

#[test]
fn database_without_storage_is_refused() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TUFPI_DATABASE_URL", db.url().to_string())];
    let (ok, _, err) = run(
        tmp.path(),
        &env,
        &["repo", "init", "--dev-keys", "--repo", "r"],
    );
    assert!(!ok);
    assert!(err.contains("--database needs --storage"), "{err}");
    cli::refused(
        tmp.path(),
        &[
            "repo",
            "status",
            "--repo",
            "r",
            "--storage-endpoint",
            "http://x",
        ],
        "--storage",
    );
}
