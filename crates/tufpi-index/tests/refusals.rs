//! Every refused upload: a 4xx with a clear one-line message (also the reason phrase, which
//! twine prints) and nothing stored.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;

fn set(form: &mut [(String, String)], key: &str, value: &str) {
    for (k, v) in form.iter_mut() {
        if k == key {
            *v = value.to_string();
        }
    }
}

/// Send `req`, expect `status` with `needle` in the message, and nothing stored.
async fn refused(t: &TestIndex, req: Request<Body>, status: StatusCode, needle: &str) {
    let before = t.stored_files();
    let r = send(&t.router, req).await;
    assert_eq!(r.status, status, "{}", r.text());
    assert!(
        r.text().contains(needle),
        "{needle:?} not in {:?}",
        r.text()
    );
    let reason = r.reason.unwrap_or_default();
    assert!(
        reason.contains(needle),
        "{needle:?} not in reason {reason:?}"
    );
    assert_eq!(t.stored_files(), before, "something was stored");
}

fn auth(t: &TestIndex) -> Option<String> {
    Some(basic("__token__", &t.token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_scope() {
    let t = index();
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    let body = || multipart(&form("demo", "1.0", f, &w), Some((f, &w)));
    refused(
        &t,
        upload_request(None, body()),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    let r = send(&t.router, upload_request(None, body())).await;
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Basic realm=\"tufpi\"");
    refused(
        &t,
        upload_request(Some(basic("__token__", "tufpi-wrong")), body()),
        StatusCode::FORBIDDEN,
        "Invalid or unknown upload token",
    )
    .await;
    refused(
        &t,
        upload_request(Some(basic("alice", &t.token)), body()),
        StatusCode::FORBIDDEN,
        "username must be __token__",
    )
    .await;
    refused(
        &t,
        upload_request(Some("Bearer x".into()), body()),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    let other = tufpi_index::db::IndexDb::open(&t.dir.path().join("index.db"))
        .unwrap()
        .create_token(Some("Other.Project"), None)
        .unwrap();
    refused(
        &t,
        upload_request(Some(basic("__token__", &other)), body()),
        StatusCode::FORBIDDEN,
        "may only upload to project \"other-project\"",
    )
    .await;
    // The scoped token works for its own project, whatever the spelling.
    let w2 = wheel("other-project", "1.0");
    let f2 = "other_project-1.0-py3-none-any.whl";
    let b2 = multipart(&form("OTHER_project", "1.0", f2, &w2), Some((f2, &w2)));
    let r = send(
        &t.router,
        upload_request(Some(basic("__token__", &other)), b2),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forms_and_files() {
    let t = index();
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    let req = |fields: &[(String, String)], file: Option<(&str, &[u8])>| {
        upload_request(auth(&t), multipart(fields, file))
    };

    let mut fm = form("demo", "1.0", "other-1.0-py3-none-any.whl", &w);
    refused(
        &t,
        req(&fm, Some(("other-1.0-py3-none-any.whl", &w))),
        StatusCode::BAD_REQUEST,
        "is for project \"other\", not \"demo\"",
    )
    .await;
    fm = form("demo", "1.0", "demo-2.0-py3-none-any.whl", &w);
    refused(
        &t,
        req(&fm, Some(("demo-2.0-py3-none-any.whl", &w))),
        StatusCode::BAD_REQUEST,
        "has version \"2.0\"",
    )
    .await;
    fm = form("demo", "1.0", "demo-1.0.tar.gz", &w);
    refused(
        &t,
        req(&fm, Some(("demo-1.0.exe", &w))),
        StatusCode::BAD_REQUEST,
        "Invalid file extension",
    )
    .await;
    fm = form("demo", "banana", f, &w);
    refused(
        &t,
        req(&fm, Some((f, &w))),
        StatusCode::BAD_REQUEST,
        "Invalid version \"banana\"",
    )
    .await;
    fm = form("demo", "1.0", f, &w);
    set(&mut fm, "sha256_digest", &"0".repeat(64));
    refused(
        &t,
        req(&fm, Some((f, &w))),
        StatusCode::BAD_REQUEST,
        "does not match a digest calculated",
    )
    .await;
    set(&mut fm, "sha256_digest", "");
    refused(
        &t,
        req(&fm, Some((f, &w))),
        StatusCode::BAD_REQUEST,
        "Missing sha256_digest",
    )
    .await;
    fm = form("demo", "1.0", f, &w);
    for bad in [
        "../demo-1.0-py3-none-any.whl",
        "..%2Fdemo-1.0.tar.gz",
        "a/demo-1.0.tar.gz",
        "a\\\\demo-1.0.tar.gz",
    ] {
        refused(
            &t,
            req(&fm, Some((bad, &w))),
            StatusCode::BAD_REQUEST,
            "Invalid filename",
        )
        .await;
    }
    fm = form("demo", "1.0", f, &w);
    set(&mut fm, ":action", "remove_pkg");
    refused(
        &t,
        req(&fm, Some((f, &w))),
        StatusCode::BAD_REQUEST,
        "Unsupported :action",
    )
    .await;
    fm = form("bad name!", "1.0", f, &w);
    refused(
        &t,
        req(&fm, Some((f, &w))),
        StatusCode::BAD_REQUEST,
        "Invalid project name",
    )
    .await;
    fm = form("demo", "1.0", f, &w);
    set(&mut fm, "filetype", "sdist");
    refused(
        &t,
        req(&fm, Some((f, &w))),
        StatusCode::BAD_REQUEST,
        "filetype \"sdist\" does not match",
    )
    .await;
    fm = form("demo", "1.0", f, &w);
    refused(
        &t,
        req(&fm, None),
        StatusCode::BAD_REQUEST,
        "No file uploaded",
    )
    .await;
    fm = form("demo", "1.0", f, b"");
    refused(
        &t,
        req(&fm, Some((f, b""))),
        StatusCode::BAD_REQUEST,
        "empty",
    )
    .await;
    // Contents that are not what the name says.
    let junk = b"not a zip at all".to_vec();
    fm = form("demo", "1.0", f, &junk);
    refused(
        &t,
        req(&fm, Some((f, &junk))),
        StatusCode::BAD_REQUEST,
        "Invalid wheel",
    )
    .await;
    let liar = wheel("someone-else", "1.0");
    fm = form("demo", "1.0", f, &liar);
    refused(
        &t,
        req(&fm, Some((f, &liar))),
        StatusCode::BAD_REQUEST,
        "Wheel metadata names project",
    )
    .await;
    fm = form("demo", "1.0", "demo-1.0.tar.gz", &junk);
    refused(
        &t,
        req(&fm, Some(("demo-1.0.tar.gz", &junk))),
        StatusCode::BAD_REQUEST,
        "Invalid sdist",
    )
    .await;
    assert_eq!(t.settled().await["files"], 0);
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_filenames_size_limits_and_malformed_bodies() {
    let t = index_with(4096);
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    assert_eq!(t.upload("demo", "1.0", f, &w).await.status, StatusCode::OK);
    // Same name again, or in another case, even with other contents: refused.
    let w_other = wheel("demo", "1.0.0");
    let r = t.upload("demo", "1.0", f, &w_other).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("File already exists"), "{}", r.text());
    let upper = "DEMO-1.0-py3-none-any.whl";
    let body = multipart(
        &form("demo", "1.0", upper, &w_other),
        Some((upper, &w_other)),
    );
    refused(
        &t,
        upload_request(auth(&t), body),
        StatusCode::BAD_REQUEST,
        "File already exists",
    )
    .await;

    // Over the limit: refused after reading, nothing kept.
    let big = vec![7u8; 5000];
    let big_name = "demo-1.1.tar.gz";
    let body = multipart(&form("demo", "1.1", big_name, &big), Some((big_name, &big)));
    refused(
        &t,
        upload_request(auth(&t), body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "File too large",
    )
    .await;
    // A Content-Length far over the limit is refused before reading.
    let req = Request::post("/legacy/")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::CONTENT_LENGTH, 1u64 << 40)
        .header(header::AUTHORIZATION, basic("__token__", &t.token))
        .body(Body::empty())
        .unwrap();
    refused(&t, req, StatusCode::PAYLOAD_TOO_LARGE, "File too large").await;

    // Malformed multipart: truncated, wrong boundary, not multipart at all.
    let mut cut = multipart(
        &form("demo", "1.2", "demo-1.2.tar.gz", &sdist("demo", "1.2")),
        Some(("demo-1.2.tar.gz", &sdist("demo", "1.2"))),
    );
    cut.truncate(cut.len() - 30);
    refused(
        &t,
        upload_request(auth(&t), cut),
        StatusCode::BAD_REQUEST,
        "Malformed multipart upload",
    )
    .await;
    refused(
        &t,
        upload_request(auth(&t), b"garbage\r\n".to_vec()),
        StatusCode::BAD_REQUEST,
        "Malformed multipart upload",
    )
    .await;
    let req = Request::post("/legacy/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic("__token__", &t.token))
        .body(Body::from(":action=file_upload&name=demo"))
        .unwrap();
    refused(
        &t,
        req,
        StatusCode::BAD_REQUEST,
        "Malformed multipart upload",
    )
    .await;
    assert_eq!(t.settled().await["files"], 1);
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_metadata_must_match_the_upload() {
    let t = index();
    let try_upload = |version: &'static str, filename: &'static str, bytes: Vec<u8>| {
        let body = multipart(
            &form("demo", version, filename, &bytes),
            Some((filename, &bytes)),
        );
        upload_request(auth(&t), body)
    };
    let whl = "demo-1.0-py3-none-any.whl";
    let tgz = "demo-1.0.tar.gz";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // Wheels: METADATA against the filename and form.
        (
            whl,
            wheel("someone-else", "1.0"),
            "Wheel metadata names project \"someone-else\", but the filename and form are for \"demo\"",
        ),
        (
            whl,
            wheel("demo", "2.0"),
            "Wheel metadata has version \"2.0\", but the filename and form are for version 1.0",
        ),
        (
            whl,
            zip_of(&[("demo/__init__.py", "")]),
            "Invalid wheel: no .dist-info/METADATA file",
        ),
        (
            whl,
            zip_of(&[("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")]),
            "Invalid wheel: demo-1.0.dist-info/METADATA has no Metadata-Version",
        ),
        (
            whl,
            zip_of(&[("demo-1.0.dist-info/METADATA", &pkg_info("demo", "1.0")), ("../../evil.py", "")]),
            "Invalid wheel: unsafe path \"../../evil.py\"",
        ),
        // Sdists: the top-level PKG-INFO, the same way.
        (
            tgz,
            sdist("someone-else", "1.0"),
            "Sdist metadata names project \"someone-else\", but the filename and form are for \"demo\"",
        ),
        (
            tgz,
            targz(&[("demo-1.0/PKG-INFO", pkg_info("demo", "1.0.1").as_bytes())]),
            "Sdist metadata has version \"1.0.1\", but the filename and form are for version 1.0",
        ),
        (
            tgz,
            targz(&[
                ("demo-1.0/setup.py", b""),
                ("demo-1.0/demo.egg-info/PKG-INFO", pkg_info("demo", "1.0").as_bytes()),
            ]),
            "Invalid sdist: no top-level PKG-INFO",
        ),
        (
            tgz,
            targz(&[("demo-1.0/PKG-INFO", b"Name: demo\nVersion: 1.0\n")]),
            "Invalid sdist: demo-1.0/PKG-INFO has no Metadata-Version",
        ),
        (
            tgz,
            targz(&[("../demo-1.0/PKG-INFO", pkg_info("demo", "1.0").as_bytes())]),
            "Invalid sdist: unsafe path \"../demo-1.0/PKG-INFO\"",
        ),
        (
            tgz,
            targz(&[("/demo-1.0/PKG-INFO", pkg_info("demo", "1.0").as_bytes())]),
            "Invalid sdist: unsafe path \"/demo-1.0/PKG-INFO\"",
        ),
        (
            tgz,
            {
                let mut cut = sdist("demo", "1.0");
                cut.truncate(cut.len() / 2);
                cut
            },
            "Invalid sdist: not a readable gzip-compressed tar archive",
        ),
        (
            "demo-1.0.zip",
            zip_of(&[("demo-1.0/PKG-INFO", &pkg_info("Demo", "1.0.0.post1"))]),
            "Sdist metadata has version \"1.0.0.post1\"",
        ),
        (
            tgz,
            targz(&[
                ("demo-1.0/PKG-INFO", pkg_info("other", "1.0").as_bytes()),
                ("demo-1.0/PKG-INFO", pkg_info("demo", "1.0").as_bytes()),
            ]),
            "Invalid sdist: more than one top-level PKG-INFO",
        ),
        (
            whl,
            zip_of(&[
                ("demo-1.0.dist-info/METADATA", &pkg_info("demo", "1.0")),
                ("aaa-1.0.dist-info/METADATA", &pkg_info("demo", "1.0")),
            ]),
            "Invalid wheel: more than one .dist-info directory",
        ),
        (
            "demo-1.0.zip",
            sdist("demo", "1.0"),
            "Invalid sdist: not a readable zip archive",
        ),
    ];
    for (filename, bytes, needle) in cases {
        refused(
            &t,
            try_upload("1.0", filename, bytes),
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    // A decompression bomb: 65 MiB of zeros, about 64 KiB compressed.
    let zeros = vec![0u8; 65 << 20];
    let bomb = targz(&[
        ("demo-1.0/zeros.bin", &zeros),
        ("demo-1.0/PKG-INFO", pkg_info("demo", "1.0").as_bytes()),
    ]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    refused(
        &t,
        try_upload("1.0", tgz, bomb),
        StatusCode::BAD_REQUEST,
        "decompressed (decompression bomb?)",
    )
    .await;
    assert_eq!(t.settled().await["files"], 0);
    // Consistent ones pass, names and versions compared normalised.
    for (version, filename, bytes) in [
        ("1.0", tgz, sdist("Demo", "1.0.0")),
        (
            "2.0",
            "demo-2.0.zip",
            zip_of(&[("demo-2.0/PKG-INFO", &pkg_info("DEMO", "2"))]),
        ),
        ("1.0", whl, wheel("demo", "1.0")),
    ] {
        let r = send(&t.router, try_upload(version, filename, bytes)).await;
        assert_eq!(r.status, StatusCode::OK, "{filename}: {}", r.text());
    }
    // One sdist per release, whatever its format (as PyPI).
    refused(
        &t,
        try_upload(
            "1.0",
            "demo-1.0.zip",
            zip_of(&[("demo-1.0/PKG-INFO", &pkg_info("DEMO", "1.0"))]),
        ),
        StatusCode::BAD_REQUEST,
        "would be a second sdist of demo 1",
    )
    .await;
    assert_eq!(t.settled().await["files"], 3);
    t.index.shutdown();
}
