//! Uploads through the router, then the simple pages, files, TUF target names and health.

mod common;

use axum::http::{header, StatusCode};
use common::*;
use tufpi_index::pages::JSON_TYPE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_serve_pages_files_and_targets() {
    let t = index();
    let whl = wheel("Foo_Bar", "1.0");
    let r = t
        .upload("Foo_Bar", "1.0", "foo_bar-1.0-py3-none-any.whl", &whl)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sd = sdist("foo-bar", "1.0");
    let r = t.upload("foo-bar", "1.0", "foo_bar-1.0.tar.gz", &sd).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Project list, both renderings.
    let html = get(&t.router, "/simple/", None).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(
        html.text().contains("<a href=\"foo-bar/\">Foo_Bar</a>"),
        "{}",
        html.text()
    );
    let list = get(&t.router, "/simple/", Some(JSON_TYPE)).await;
    assert_eq!(list.json()["projects"][0]["name"], "Foo_Bar");

    // Unnormalised names redirect (301), keeping the query.
    let r = get(&t.router, "/simple/Foo_Bar/?format=x", None).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.headers[header::LOCATION], "/simple/foo-bar/?format=x");
    let r = get(&t.router, "/simple/foo-bar", None).await;
    assert_eq!(r.headers[header::LOCATION], "/simple/foo-bar/");

    // JSON detail page (PEP 691 + 700 + 658/714).
    let page = get(&t.router, "/simple/foo-bar/", Some(JSON_TYPE)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CONTENT_TYPE], JSON_TYPE);
    let v = page.json();
    assert_eq!(v["name"], "foo-bar");
    assert_eq!(v["meta"]["api-version"], "1.1");
    assert_eq!(v["versions"], serde_json::json!(["1.0"]));
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let w = files
        .iter()
        .find(|f| f["filename"] == "foo_bar-1.0-py3-none-any.whl")
        .unwrap();
    assert_eq!(w["hashes"]["sha256"], sha256_hex(&whl));
    assert_eq!(w["size"], whl.len());
    assert_eq!(w["requires-python"], ">=3.8");
    assert!(w["upload-time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(w["yanked"], false);
    let core = w["core-metadata"]["sha256"].as_str().unwrap().to_string();
    let s = files
        .iter()
        .find(|f| f["filename"] == "foo_bar-1.0.tar.gz")
        .unwrap();
    assert!(s.get("core-metadata").is_none());

    // Files by their URL relative to the page, and the core metadata next to the wheel.
    let url = w["url"]
        .as_str()
        .unwrap()
        .strip_prefix("../..")
        .unwrap()
        .to_string();
    assert!(url.starts_with("/packages/"));
    let f = get(&t.router, &url, None).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.body, whl);
    let m = get(&t.router, &format!("{url}.metadata"), None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(sha256_hex(&m.body), core);
    assert!(m.text().starts_with("Metadata-Version: 2.1\nName: Foo_Bar"));
    // Consistent-snapshot names: <dir>/<sha256 or blake2b>.<name>.
    let (dir, name) = url.rsplit_once('/').unwrap();
    let b2 = dir.trim_start_matches("/packages/").replace('/', "");
    for digest in [sha256_hex(&whl), b2.clone()] {
        let r = get(&t.router, &format!("{dir}/{digest}.{name}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{digest}");
        assert_eq!(r.body, whl);
    }
    let r = get(&t.router, &format!("{dir}/{core}.{name}.metadata"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let wrong = "0".repeat(64);
    assert_eq!(
        get(&t.router, &format!("{dir}/{wrong}.{name}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&t.router, &format!("{dir}/other.whl"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&t.router, "/packages/../index.db", None).await.status,
        StatusCode::NOT_FOUND
    );

    // HTML page, by Accept and by target names, plain and hash-prefixed; same bytes.
    let h = get(&t.router, "/simple/foo-bar/", Some("text/html")).await;
    assert!(h
        .text()
        .contains(&format!("data-core-metadata=\"sha256={core}\"")));
    assert!(h.text().contains("data-requires-python=\"&gt;=3.8\""));
    let h2 = get(&t.router, "/simple/foo-bar/vnd.pypi.simple.v1.html", None).await;
    assert_eq!(h.body, h2.body);
    let j2 = get(&t.router, "/simple/foo-bar/vnd.pypi.simple.v1.json", None).await;
    assert_eq!(j2.body, page.body);
    let hashed = get(
        &t.router,
        &format!(
            "/simple/foo-bar/{}.vnd.pypi.simple.v1.json",
            sha256_hex(&page.body)
        ),
        None,
    )
    .await;
    assert_eq!(hashed.status, StatusCode::OK);
    assert_eq!(hashed.body, page.body);
    // ?format= wins over Accept; unsupported Accept is 406.
    let r = get(
        &t.router,
        "/simple/foo-bar/?format=application/vnd.pypi.simple.v1%2Bjson",
        Some("text/html"),
    )
    .await;
    assert_eq!(r.body, page.body);
    assert_eq!(
        get(&t.router, "/simple/foo-bar/", Some("application/xml"))
            .await
            .status,
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        get(&t.router, "/simple/nope/", None).await.status,
        StatusCode::NOT_FOUND
    );

    let h = t.settled().await;
    assert_eq!(h["files"], 2);
    assert_eq!(h["projects"], 1);
    assert_eq!(h["publisher"]["state"], "idle");
    assert!(h["snapshot"]["version"].as_u64().unwrap() >= 2, "{h}");
    assert!(h["timestamp"]["expires"].as_str().unwrap().ends_with('Z'));

    // TUF metadata is served from the repository.
    let ts = get(&t.router, "/metadata/timestamp.json", None).await;
    assert_eq!(ts.status, StatusCode::OK);
    assert_eq!(ts.headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(
        get(&t.router, "/metadata/1.root.json", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&t.router, "/metadata/..%2Fstate.db", None).await.status,
        StatusCode::NOT_FOUND
    );

    // Compressed on the wire when the client accepts gzip; the same bytes once decoded.
    // (root: over the 1 KiB below which files go as they are)
    let uri = "/metadata/1.root.json";
    let plain = get(&t.router, uri, None).await;
    assert!(plain.body.len() > 1024);
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    for _ in 0..2 {
        let req = axum::http::Request::get(uri)
            .header(header::ACCEPT_ENCODING, "gzip, deflate")
            .body(axum::body::Body::empty())
            .unwrap();
        let gz = send(&t.router, req).await;
        assert_eq!(gz.status, StatusCode::OK);
        assert_eq!(gz.headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers[header::VARY], "Accept-Encoding");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut out)
            .unwrap();
        assert_eq!(out, plain.body);
        assert!(gz.body.len() < plain.body.len());
    }
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_pages_stay_served_by_hash() {
    let t = index();
    let w1 = wheel("demo", "1.0");
    assert_eq!(
        t.upload("demo", "1.0", "demo-1.0-py3-none-any.whl", &w1)
            .await
            .status,
        StatusCode::OK
    );
    let first = get(&t.router, "/simple/demo/vnd.pypi.simple.v1.json", None)
        .await
        .body;
    let w2 = wheel("demo", "2.0");
    assert_eq!(
        t.upload("demo", "2.0", "demo-2.0-py3-none-any.whl", &w2)
            .await
            .status,
        StatusCode::OK
    );
    let second = get(&t.router, "/simple/demo/vnd.pypi.simple.v1.json", None).await;
    assert_ne!(first, second.body);
    assert_eq!(second.json()["versions"], serde_json::json!(["1.0", "2.0"]));
    let old = get(
        &t.router,
        &format!(
            "/simple/demo/{}.vnd.pypi.simple.v1.json",
            sha256_hex(&first)
        ),
        None,
    )
    .await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(old.body, first);
    // Not under another project's name.
    let other = get(
        &t.router,
        &format!(
            "/simple/other/{}.vnd.pypi.simple.v1.json",
            sha256_hex(&first)
        ),
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    t.settled().await;
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_serves_what_was_acknowledged() {
    let t = index();
    let w = wheel("demo", "1.0");
    assert_eq!(
        t.upload("demo", "1.0", "demo-1.0-py3-none-any.whl", &w)
            .await
            .status,
        StatusCode::OK
    );
    let before = get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await.body;
    t.index.shutdown();
    let TestIndex {
        dir,
        index,
        router,
        token,
    } = t;
    drop(router);
    drop(index);
    // A crash after the database commit but before the repository queue: the outbox row is
    // queued (and published) at the next start.
    let targets = tufpi_repo::Repository::open(&dir.path().join("repo"))
        .unwrap()
        .target_count()
        .unwrap();
    rusqlite::Connection::open(dir.path().join("index.db"))
        .unwrap()
        .execute(
            "INSERT INTO outbox(path, size, sha256, blake2b) VALUES ('simple/x/vnd.pypi.simple.v1.json', 1, ?1, ?1)",
            [&"a".repeat(64)],
        )
        .unwrap();
    let (index, created) = tufpi_index::Index::open(dir.path(), &Default::default()).unwrap();
    assert!(!created);
    let index = std::sync::Arc::new(index);
    let t = TestIndex {
        router: tufpi_index::router(index.clone()),
        index,
        dir,
        token,
    };
    assert_eq!(
        get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await.body,
        before
    );
    // The token still works; the same file again is the file it has (stored once); other
    // bytes under the name are refused.
    let r = t
        .upload("demo", "1.0", "demo-1.0-py3-none-any.whl", &w)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut other = w.clone();
    other.extend_from_slice(b"\0");
    let r = t
        .upload("demo", "1.0", "demo-1.0-py3-none-any.whl", &other)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("already exists"), "{}", r.text());
    let h = t.settled().await;
    assert_eq!(h["files"], 1);
    let repo = tufpi_repo::Repository::open(&t.dir.path().join("repo")).unwrap();
    assert_eq!(repo.target_count().unwrap(), targets + 1);
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_all_land() {
    let t = index();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let router = t.router.clone();
            let auth = basic("__token__", &t.token);
            tokio::spawn(async move {
                let version = format!("1.{i}");
                let w = wheel("demo", &version);
                let f = format!("demo-{version}-py3-none-any.whl");
                let body = multipart(&form("demo", &version, &f, &w), Some((&f, &w)));
                send(&router, upload_request(Some(auth), body)).await.status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let page = get(&t.router, "/simple/demo/", Some(JSON_TYPE))
        .await
        .json();
    assert_eq!(page["versions"].as_array().unwrap().len(), 12);
    assert_eq!(page["versions"][11], "1.11");
    let h = t.settled().await;
    assert_eq!(h["files"], 12);
    // Each upload queued 4 targets (file, core metadata, two pages).
    assert!(
        h["publisher"]["published_changes"].as_u64().unwrap() >= 48,
        "{h}"
    );
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_retries_of_one_file_all_succeed() {
    // A twine retry overlapping its original (the first answer was lost, the upload still in
    // flight): the same name with the same bytes is that file's success, at whatever step
    // the two meet (the handler's check, the commit's, or the transaction's).
    let t = index();
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let router = t.router.clone();
            let auth = basic("__token__", &t.token);
            let body = multipart(&form("demo", "1.0", f, &w), Some((f, &w)));
            tokio::spawn(async move {
                let r = send(&router, upload_request(Some(auth), body)).await;
                (r.status, r.text())
            })
        })
        .collect();
    for task in tasks {
        let (status, text) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    let h = t.settled().await;
    assert_eq!(h["files"], 1);
    assert_eq!(
        signed_targets(&t.router)
            .await
            .keys()
            .filter(|k| k.ends_with(f))
            .count(),
        1
    );
    t.index.shutdown();
}
