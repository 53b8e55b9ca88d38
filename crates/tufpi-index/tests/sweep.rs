//! At start, files no database row references (uploads interrupted between moving the file in
//! and committing its row, temp files of interrupted writes) are swept; referenced ones never.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use common::*;
use tufpi_index::pages::JSON_TYPE;
use tufpi_index::storage::digests;
use tufpi_simple::targets::package_path;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every file under packages/ and pages/ with its bytes, by path relative to the data dir.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.join("packages"), dir.join("pages")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_sweeps_unreferenced_files_only() {
    let t = index();
    let (w1, w2, sd) = (
        wheel("demo", "1.0"),
        wheel("demo", "2.0"),
        sdist("demo", "1.0"),
    );
    for (v, f, b) in [
        ("1.0", "demo-1.0-py3-none-any.whl", &w1),
        ("2.0", "demo-2.0-py3-none-any.whl", &w2),
        ("1.0", "demo-1.0.tar.gz", &sd),
    ] {
        let r = t.upload("demo", v, f, b).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    // A removed file's bytes are gone at once; its old pages stay (a snapshot may name them).
    let r = t
        .manage("demo", "remove", "filename=demo-2.0-py3-none-any.whl")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    let page = get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await.body;
    let kept = snapshot(t.dir.path());
    // 2 files + 1 core metadata, 4 uploads/removals x 2 pages.
    assert_eq!(kept.len(), 3 + 8, "{:?}", kept.keys());
    let dir = t.dir.path().to_path_buf();

    // What a crash between moving an upload in and committing it leaves behind, a removal
    // interrupted before deleting the bytes, temp files of interrupted writes.
    let orphan = wheel("demo", "3.0");
    let orphan_path = package_path(&digests(&orphan).blake2b, "demo-3.0-py3-none-any.whl");
    let mut planted = vec![
        orphan_path.clone(),
        format!("{orphan_path}.metadata"),
        "tmp/upload-0123456789abcdef01234567".to_string(),
        format!(
            "{}.metadata",
            package_path(&digests(&sd).blake2b, "demo-1.0.tar.gz")
        ),
        format!("pages/{}", "ab".repeat(32)),
        format!("pages/.{}.4242.tmp", "cd".repeat(32)),
    ];
    let referenced = kept.keys().next().unwrap().clone();
    let (parent, name) = referenced.rsplit_once('/').unwrap();
    planted.push(format!("{parent}/.{name}.4242.tmp"));
    for p in &planted {
        write(&dir.join(p), b"left over");
    }
    std::fs::create_dir_all(dir.join("packages/ee/ff/empty")).unwrap();

    let t = t.restart();
    assert_eq!(snapshot(&dir), kept, "only the planted files are removed");
    for p in &planted {
        assert!(!dir.join(p).exists(), "{p} was not swept");
    }
    assert!(
        !dir.join("packages/ee").exists(),
        "empty directories are removed"
    );
    assert!(
        dir.join("packages").is_dir() && dir.join("pages").is_dir() && dir.join("tmp").is_dir()
    );
    assert_eq!(t.stored_files().len(), 3);
    // Everything is served as before, and the interrupted upload can be made again.
    assert_eq!(
        get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await.body,
        page
    );
    for f in serde_json::from_slice::<serde_json::Value>(&page).unwrap()["files"]
        .as_array()
        .unwrap()
    {
        let url = f["url"].as_str().unwrap().trim_start_matches("../..");
        let r = get(&t.router, url, None).await;
        assert_eq!(r.status, StatusCode::OK, "{url}");
        assert_eq!(sha256_hex(&r.body), f["hashes"]["sha256"]);
    }
    let r = t
        .upload("demo", "3.0", "demo-3.0-py3-none-any.whl", &orphan)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_sweeps_nothing() {
    let t = index();
    let w = wheel("demo", "1.0");
    let r = t
        .upload("demo", "1.0", "demo-1.0-py3-none-any.whl", &w)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    let dir = t.dir.path().to_path_buf();
    let kept = snapshot(&dir);
    t.index.shutdown();
    drop(t.router);
    drop(t.index);
    // A lost index.db must not take the stored files with it.
    for f in ["index.db", "index.db-wal", "index.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let (index, created) =
        tufpi_index::Index::open(&dir, &tufpi_index::IndexOptions::default()).unwrap();
    assert!(!created);
    assert_eq!(snapshot(&dir), kept);
    index.shutdown();
    drop(t.dir);
}
