//! The index's file areas over a blob store: the same behaviour on the local directory
//! (`FsStore`), on a remote-shaped store (no local paths: reads through the cache) and on
//! S3 when a test server is configured; an unreachable store answers 503, never 500, and
//! what is cached keeps being served.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tufpi_blob::{
    BlobError, BlobMeta, BlobStore, Bytes, Created, Etag, FsStore, Result as BlobResult,
    SharedStore,
};
use tufpi_index::db::References;
use tufpi_index::storage::{digests, Served, Storage, Stored};
use tufpi_simple::targets::{metadata_path, package_path};

/// A remote-shaped store in memory: no local paths, counts its GETs, can be taken down.
#[derive(Debug, Default)]
struct MemStore {
    objects: Mutex<BTreeMap<String, (Bytes, DateTime<Utc>)>>,
    down: AtomicBool,
    gets: AtomicUsize,
}

impl MemStore {
    fn check(&self, what: &str) -> BlobResult<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BlobError::Unavailable {
                what: what.to_string(),
                detail: "connection refused".to_string(),
            });
        }
        Ok(())
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, DateTime<Utc>)>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make `key` look written `age` ago.
    fn age(&self, key: &str, age: Duration) {
        if let Some(o) = self.objects().get_mut(key) {
            o.1 = Utc::now() - chrono::Duration::from_std(age).unwrap();
        }
    }
}

impl BlobStore for MemStore {
    fn put_new(&self, key: &str, bytes: Bytes) -> BlobResult<Created> {
        self.check("put")?;
        tufpi_blob::check_key(key)?;
        let mut o = self.objects();
        if o.contains_key(key) {
            return Ok(Created::Existed);
        }
        o.insert(key.to_string(), (bytes, Utc::now()));
        Ok(Created::New)
    }
    fn put_new_file(&self, key: &str, file: &Path) -> BlobResult<Created> {
        self.check("put")?;
        let bytes = std::fs::read(file).map_err(|e| BlobError::Other {
            what: "reading".into(),
            detail: e.to_string(),
        })?;
        self.put_new(key, Bytes::from(bytes))
    }
    fn put_swap(&self, key: &str, bytes: Bytes, _expected: Option<&Etag>) -> BlobResult<Etag> {
        self.check("put")?;
        self.objects().insert(key.to_string(), (bytes, Utc::now()));
        Ok(Etag(String::new()))
    }
    fn get(&self, key: &str) -> BlobResult<Option<Bytes>> {
        self.check("get")?;
        self.gets.fetch_add(1, Ordering::SeqCst);
        Ok(self.objects().get(key).map(|o| o.0.clone()))
    }
    fn get_tagged(&self, key: &str) -> BlobResult<Option<(Bytes, Etag)>> {
        Ok(self.get(key)?.map(|b| (b, Etag(String::new()))))
    }
    fn head(&self, key: &str) -> BlobResult<Option<BlobMeta>> {
        self.check("head")?;
        Ok(self.objects().get(key).map(|(b, t)| BlobMeta {
            key: key.to_string(),
            size: b.len() as u64,
            modified: *t,
            etag: None,
        }))
    }
    fn delete(&self, key: &str) -> BlobResult<()> {
        self.check("delete")?;
        self.objects().remove(key);
        Ok(())
    }
    fn list(&self, prefix: &str) -> BlobResult<Vec<BlobMeta>> {
        self.check("list")?;
        Ok(self
            .objects()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, t))| BlobMeta {
                key: k.clone(),
                size: b.len() as u64,
                modified: *t,
                etag: None,
            })
            .collect())
    }
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
    fn describe(&self) -> String {
        "mem://".to_string()
    }
}

/// A store on a new bucket of the S3 test server (`TUFPI_TEST_S3_ENDPOINT`, started by
/// `scripts/s3-server`), or `None` (skipped, unless `TUFPI_REQUIRE_S3=1`).
fn s3_store(test: &str) -> Option<SharedStore> {
    let store = tufpi_blob::testing::s3_store_for_test(test)?;
    Some(Arc::new(store))
}

fn read(stored: Option<Stored>) -> Option<Vec<u8>> {
    match stored? {
        Stored::Local(p) => std::fs::read(p).ok(),
        Stored::Bytes(b) => Some(b.to_vec()),
    }
}

/// Write a received upload into the temp area, as the upload handler does.
fn received(s: &Storage, name: &str, bytes: &[u8]) -> PathBuf {
    let p = s.tmp_dir().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Put, read, install (twice: a retry), remove and sweep on `store`.
fn exercise(store: SharedStore, tmp: &Path) {
    let s = Storage::with_store(store.clone(), tmp).unwrap();
    let page = s.put_page(b"<html>demo</html>").unwrap();
    assert_eq!(s.put_page(b"<html>demo</html>").unwrap(), page);
    assert!(s.has_page(&page.sha256).unwrap());
    assert!(!s.has_page(&"0".repeat(64)).unwrap());
    assert_eq!(
        read(s.read_page(&page.sha256).unwrap()).unwrap(),
        b"<html>demo</html>"
    );

    let dist = b"a distribution".to_vec();
    let d = digests(&dist);
    let target = package_path(&d.blake2b, "demo-1.0.tar.gz");
    let meta = metadata_path(&target);
    s.put_file(&meta, b"Name: demo").unwrap();
    let tmp_file = received(&s, "upload-1", &dist);
    s.install(&tmp_file, &target).unwrap();
    assert!(!tmp_file.exists(), "the temp file is moved or removed");
    // A twine retry of the same file: the same key, written once.
    let tmp_file = received(&s, "upload-2", &dist);
    s.install(&tmp_file, &target).unwrap();
    assert_eq!(read(s.read_file(&target).unwrap()).unwrap(), dist);
    assert_eq!(read(s.read_file(&meta).unwrap()).unwrap(), b"Name: demo");
    // Another replica (a fresh process) reads the same.
    let other = Storage::with_store(store.clone(), tmp).unwrap();
    assert_eq!(read(other.read_file(&target).unwrap()).unwrap(), dist);

    // Sweep: unreferenced files and pages go, referenced ones stay.
    let orphan = package_path(&digests(b"orphan").blake2b, "demo-2.0.tar.gz");
    s.put_file(&orphan, b"orphan").unwrap();
    let old_page = s.put_page(b"<html>old</html>").unwrap();
    let refs = References {
        files: [target.clone(), meta.clone()].into_iter().collect(),
        pages: [page.sha256.clone()].into_iter().collect(),
    };
    let mut removed = if s.is_local() {
        s.sweep(&refs)
    } else {
        // Recent objects are another replica's upload in flight: kept.
        assert!(s.sweep(&refs).is_empty());
        s.sweep_older_than(&refs, Duration::ZERO).unwrap()
    };
    removed.sort();
    let mut expected = vec![orphan.clone(), format!("pages/{}", old_page.sha256)];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(read(s.read_file(&orphan).unwrap()).is_none());
    assert!(!s.has_page(&old_page.sha256).unwrap());
    assert_eq!(read(s.read_file(&target).unwrap()).unwrap(), dist);
    assert!(s.has_page(&page.sha256).unwrap());

    s.remove_file(&meta).unwrap();
    s.remove_file(&meta).unwrap();
    assert!(read(s.read_file(&meta).unwrap()).is_none());
    s.remove_page(&page.sha256).unwrap();
    assert!(!s.has_page(&page.sha256).unwrap());
}

#[test]
fn on_the_data_directory() {
    let t = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(FsStore::open(t.path()).unwrap());
    exercise(store, &t.path().join("tmp"));
    // Storage::open is the same layout: packages/ and pages/ under the data dir.
    let s = Storage::open(t.path()).unwrap();
    assert!(s.is_local());
    let d = s.put_page(b"x").unwrap();
    assert!(t.path().join("pages").join(&d.sha256).is_file());
    assert_eq!(s.tmp_dir(), t.path().join("tmp"));
}

#[test]
fn on_a_remote_store() {
    let t = tempfile::tempdir().unwrap();
    exercise(Arc::new(MemStore::default()), &t.path().join("tmp"));
}

#[test]
fn on_s3() {
    let Some(store) = s3_store("index storage areas") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    exercise(store, &t.path().join("tmp"));
}

#[test]
fn reads_go_through_the_cache_by_content_hash() {
    let t = tempfile::tempdir().unwrap();
    let mem = Arc::new(MemStore::default());
    let writer = Storage::with_store(mem.clone(), t.path()).unwrap();
    let page = writer.put_page(b"<html>p</html>").unwrap();
    let dist = b"wheel bytes".to_vec();
    let target = package_path(&digests(&dist).blake2b, "p-1.0-py3-none-any.whl");
    writer.put_file(&target, &dist).unwrap();
    // The writer cached the page it stored: no GET.
    read(writer.read_page(&page.sha256).unwrap()).unwrap();
    assert_eq!(mem.gets.load(Ordering::SeqCst), 0);

    // Another replica: one GET per blob, then memory.
    let reader = Storage::with_store(mem.clone(), t.path()).unwrap();
    for _ in 0..3 {
        assert_eq!(
            read(reader.read_page(&page.sha256).unwrap()).unwrap(),
            b"<html>p</html>"
        );
        assert_eq!(read(reader.read_file(&target).unwrap()).unwrap(), dist);
    }
    assert_eq!(mem.gets.load(Ordering::SeqCst), 2);
    assert!(reader.cache().weight() > 0);

    // Without a cache every read is a GET.
    let uncached = Storage::with_store(mem.clone(), t.path())
        .unwrap()
        .with_cache_bytes(0);
    read(uncached.read_page(&page.sha256).unwrap()).unwrap();
    read(uncached.read_page(&page.sha256).unwrap()).unwrap();
    assert_eq!(mem.gets.load(Ordering::SeqCst), 4);

    // A blob absent from the store is not remembered as absent.
    let later = package_path(&digests(b"later").blake2b, "p-2.0.tar.gz");
    assert!(reader.read_file(&later).unwrap().is_none());
    writer.put_file(&later, b"later").unwrap();
    assert_eq!(read(reader.read_file(&later).unwrap()).unwrap(), b"later");
}

/// The response `err` becomes.
fn status_of(err: tufpi_index::IndexError) -> (StatusCode, axum::http::HeaderMap) {
    let r = err.into_response();
    (r.status(), r.headers().clone())
}

#[test]
fn an_unreachable_store_is_a_503_and_the_cache_keeps_serving() {
    let t = tempfile::tempdir().unwrap();
    let mem = Arc::new(MemStore::default());
    let s = Storage::with_store(mem.clone(), &t.path().join("tmp"))
        .unwrap()
        .with_ride_out(std::time::Duration::ZERO);
    let page = s.put_page(b"<html>cached</html>").unwrap();
    let dist = b"dist".to_vec();
    let target = package_path(&digests(&dist).blake2b, "p-1.0.tar.gz");
    s.put_file(&target, &dist).unwrap();
    read(s.read_file(&target).unwrap()).unwrap();

    mem.down.store(true, Ordering::SeqCst);
    // What is cached is served.
    assert_eq!(
        read(s.read_page(&page.sha256).unwrap()).unwrap(),
        b"<html>cached</html>"
    );
    assert_eq!(read(s.read_file(&target).unwrap()).unwrap(), dist);
    // Everything else is a 503 (retry later), never a 500.
    let other = package_path(&digests(b"other").blake2b, "p-2.0.tar.gz");
    let tmp_file = received(&s, "upload-1", b"other");
    let failures = [
        s.read_file(&other).map(|_| ()).unwrap_err(),
        s.read_page(&"1".repeat(64)).map(|_| ()).unwrap_err(),
        s.put_page(b"<html>new</html>").map(|_| ()).unwrap_err(),
        s.put_file(&metadata_path(&other), b"Name: p").unwrap_err(),
        s.install(&tmp_file, &other).unwrap_err(),
        s.remove_page(&page.sha256).unwrap_err(),
        s.sweep_older_than(&References::default(), Duration::ZERO)
            .map(|_| ())
            .unwrap_err(),
    ];
    for e in failures {
        let msg = e.to_string();
        let (status, headers) = status_of(e);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{msg}");
        assert!(headers.contains_key(header::RETRY_AFTER), "{msg}");
        assert!(msg.contains("unavailable"), "{msg}");
    }
    // The upload's temp file is still there for the handler to drop.
    assert!(tmp_file.exists());
    // The start-up sweep only logs.
    assert!(s.sweep(&References::default()).is_empty());

    mem.down.store(false, Ordering::SeqCst);
    s.install(&tmp_file, &other).unwrap();
    assert_eq!(read(s.read_file(&other).unwrap()).unwrap(), b"other");
    // A sweep honours the grace for fresh objects only.
    mem.age(&other, Duration::from_secs(7200));
    assert_eq!(s.sweep(&References::default()), vec![other.clone()]);
}

async fn body_of(r: axum::response::Response) -> Vec<u8> {
    r.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// A router serving `stored` at `/x` as the index serves a package file.
fn router_for(stored: Stored, etag: &str) -> axum::Router {
    let served = Served {
        content_type: tufpi_index::storage::serve::guess_type("x-1.0.tar.gz"),
        cache_control: "public, max-age=31536000, immutable",
        vary: None,
        etag: Some(etag.to_string()),
    };
    axum::Router::new().route(
        "/x",
        axum::routing::get(move |req: axum::extract::Request| {
            let (stored, served) = (stored.clone(), served.clone());
            async move { stored.respond(req, &served).await }
        }),
    )
}

fn request(method: &str, headers: &[(header::HeaderName, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri("/x");
    for (k, v) in headers {
        b = b.header(k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn bytes_are_served_like_files() {
    let t = tempfile::tempdir().unwrap();
    let bytes = b"0123456789".to_vec();
    let path = t.path().join("x-1.0.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    let sha = digests(&bytes).sha256;
    let local = router_for(Stored::Local(path), &sha);
    let remote = router_for(Stored::Bytes(Bytes::from(bytes.clone())), &sha);
    for app in [&local, &remote] {
        let r = app.clone().oneshot(request("GET", &[])).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(h[header::CONTENT_TYPE], "application/gzip");
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(h[header::CONTENT_LENGTH], "10");
        assert_eq!(h[header::ACCEPT_RANGES], "bytes");
        assert_eq!(body_of(r).await, bytes);

        let r = app
            .clone()
            .oneshot(request("GET", &[(header::RANGE, "bytes=2-4")]))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 2-4/10");
        assert_eq!(body_of(r).await, b"234");

        let r = app
            .clone()
            .oneshot(request("GET", &[(header::RANGE, "bytes=20-")]))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        let r = app.clone().oneshot(request("HEAD", &[])).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "10");
        assert!(body_of(r).await.is_empty());
    }
    // The ETag is the content hash: a revalidation costs no bytes.
    for app in [&local, &remote] {
        let r = app.clone().oneshot(request("GET", &[])).await.unwrap();
        assert_eq!(r.headers()[header::ETAG], format!("\"{sha}\"").as_str());
        let inm = format!("\"{sha}\"");
        let r = app
            .clone()
            .oneshot(request("GET", &[(header::IF_NONE_MATCH, &inm)]))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], inm.as_str());
        assert!(body_of(r).await.is_empty());
    }
    // A missing local file is a 404 without an ETag, whatever the client holds.
    let gone = router_for(Stored::Local(t.path().join("gone.tar.gz")), &sha);
    let inm = format!("\"{sha}\"");
    let r = gone
        .oneshot(request("GET", &[(header::IF_NONE_MATCH, &inm)]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.headers().contains_key(header::ETAG));
    // A Range for another version (If-Range) gets the whole blob.
    let r = remote
        .oneshot(request(
            "GET",
            &[
                (header::RANGE, "bytes=0-1"),
                (header::IF_RANGE, "\"other\""),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_of(r).await, bytes);
}
