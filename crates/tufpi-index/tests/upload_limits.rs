//! Upload limits (issue 10, findings 2 and 4): every form field capped and `requires_python`
//! a PEP 440 specifier set; archives with too many entries refused before they are listed;
//! concurrent uploads bounded per token (429) and per server (503), with Retry-After.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tufpi_index::pages::JSON_TYPE;
use tufpi_index::upload::{UploadLimits, MAX_DESCRIPTION, MAX_FIELD_VALUES};
use tufpi_index::wheel::MAX_ARCHIVE_ENTRIES;
use tufpi_index::IndexOptions;

fn set(form: &mut Vec<(String, String)>, key: &str, value: &str) {
    form.retain(|(k, _)| k != key);
    form.push((key.to_string(), value.to_string()));
}

/// Expect a 400 naming `needle`, and nothing stored.
fn refused(t: &TestIndex, r: &Reply, needle: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.text().contains(needle),
        "{needle:?} not in {:?}",
        r.text()
    );
    assert!(
        r.reason.as_deref().unwrap_or("").contains(needle),
        "{needle:?} not in the reason phrase {:?}",
        r.reason
    );
    let tmp = t.dir.path().join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a temp file was left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_python_must_be_a_short_specifier_set() {
    let t = index();
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    // The attack of the issue: a huge requires_python copied into every page.
    let huge = ">=3.8,".repeat(10_000);
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
        set(fm, "requires_python", &huge)
    })
    .await;
    refused(
        &t,
        &r,
        "Form field \"requires_python\" is longer than 1024 bytes",
    );
    for bad in ["banana", ">=3.8; rm -rf /", "=>3", ">=3.8,,<4"] {
        let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
            set(fm, "requires_python", bad)
        })
        .await;
        refused(&t, &r, "not a PEP 440 version specifier set");
    }
    // The wheel's METADATA says >=3.8: the form may not say otherwise.
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
        set(fm, "requires_python", ">=3.9")
    })
    .await;
    refused(
        &t,
        &r,
        "requires_python \">=3.9\" does not match Requires-Python \">=3.8\"",
    );
    // Nor may the METADATA hold something that is not a specifier set.
    let bad_meta = zip_of(&[
        (
            "demo-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Python: not a specifier\n\n",
        ),
        ("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n"),
    ]);
    let r = upload_with(&t, "demo", "1.0", f, &bad_meta, |_| {}).await;
    refused(
        &t,
        &r,
        "Invalid Requires-Python in the wheel's METADATA \"not a specifier\"",
    );
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
        set(fm, "requires_python", " >= 3.8 ")
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = get(&t.router, "/simple/demo/", Some(JSON_TYPE))
        .await
        .json();
    assert_eq!(page["files"][0]["requires-python"], ">=3.8");
    t.settled().await;
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_field_is_capped() {
    let t = index();
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    let long_summary = "x".repeat(513);
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
        set(fm, "summary", &long_summary)
    })
    .await;
    refused(&t, &r, "Form field 'summary' is longer than 512 characters");
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
        set(fm, "summary", "two\nlines")
    })
    .await;
    refused(&t, &r, "Form field 'summary' must be a single line");
    // 512 characters of 2 bytes each are fine.
    let wide = "é".repeat(512);
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| set(fm, "summary", &wide)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let w = wheel("demo", "1.1");
    let f = "demo-1.1-py3-none-any.whl";
    let description = "d".repeat(MAX_DESCRIPTION + 1);
    let r = upload_with(&t, "demo", "1.1", f, &w, |fm| {
        set(fm, "description", &description)
    })
    .await;
    refused(
        &t,
        &r,
        &format!("Form field \"description\" is longer than {MAX_DESCRIPTION} bytes"),
    );
    for field in ["author", "keywords", "home_page", "an_unknown_field"] {
        let value = "a".repeat(9000);
        let r = upload_with(&t, "demo", "1.1", f, &w, |fm| set(fm, field, &value)).await;
        refused(
            &t,
            &r,
            &format!("Form field \"{field}\" is longer than 8192 bytes"),
        );
    }
    let r = upload_with(&t, "demo", "1.1", f, &w, |fm| {
        for i in 0..=MAX_FIELD_VALUES {
            fm.push(("classifiers".into(), format!("Topic :: {i}")));
        }
    })
    .await;
    refused(
        &t,
        &r,
        &format!("Form field \"classifiers\" is given more than {MAX_FIELD_VALUES} times"),
    );
    let r = upload_with(&t, "demo", "1.1", f, &w, |fm| {
        fm.push(("version".into(), "1.1".into()))
    })
    .await;
    refused(&t, &r, "Form field \"version\" is given more than once");
    // Many fields, each within its cap, but too much text together.
    let r = upload_with(&t, "demo", "1.1", f, &w, |fm| {
        for _ in 0..1100 {
            fm.push(("requires_dist".into(), "r".repeat(8000)));
        }
    })
    .await;
    refused(&t, &r, "text fields hold more than 8388608 bytes");
    let r = upload_with(&t, "demo", "1.1", f, &w, |fm| {
        set(fm, "name", &"n".repeat(201))
    })
    .await;
    refused(&t, &r, "Form field \"name\" is longer than 200 bytes");
    // Within the caps: accepted, list fields repeated as twine sends them.
    let description = "d".repeat(MAX_DESCRIPTION);
    let r = upload_with(&t, "demo", "1.1", f, &w, |fm| {
        set(fm, "description", &description);
        set(fm, "license", &"MIT ".repeat(10_000));
        for c in [
            "Programming Language :: Python :: 3",
            "License :: OSI Approved",
        ] {
            fm.push(("classifiers".into(), c.into()));
        }
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(t.settled().await["files"], 2);
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_with_too_many_entries_are_refused() {
    let t = index_with(32 << 20);
    // A wheel of MAX + 1 entries (the issue's had 900,000): refused from its end record,
    // before its central directory is listed.
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("demo-1.0.dist-info/METADATA", stored).unwrap();
        z.write_all(pkg_info("demo", "1.0").as_bytes()).unwrap();
        for i in 1..=MAX_ARCHIVE_ENTRIES {
            z.start_file(format!("d/{i:x}"), stored).unwrap();
        }
        z.finish().unwrap();
    }
    let w = buf.into_inner();
    let f = "demo-1.0-py3-none-any.whl";
    let r = upload_with(&t, "demo", "1.0", f, &w, |_| {}).await;
    refused(
        &t,
        &r,
        &format!(
            "Invalid wheel: the archive holds {} entries; this index accepts at most {MAX_ARCHIVE_ENTRIES}",
            MAX_ARCHIVE_ENTRIES + 1
        ),
    );
    // An sdist likewise, counted as it is read.
    let mut names: Vec<String> = (0..MAX_ARCHIVE_ENTRIES)
        .map(|i| format!("demo-1.0/{i:x}"))
        .collect();
    names.push("demo-1.0/PKG-INFO".into());
    let info = pkg_info("demo", "1.0");
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| {
            let body: &[u8] = if n.ends_with("PKG-INFO") {
                info.as_bytes()
            } else {
                b""
            };
            (n.as_str(), body)
        })
        .collect();
    let sd = targz(&entries);
    let r = upload_with(&t, "demo", "1.0", "demo-1.0.tar.gz", &sd, |_| {}).await;
    refused(
        &t,
        &r,
        &format!("Invalid sdist: the archive holds more than {MAX_ARCHIVE_ENTRIES} members"),
    );
    // One entry fewer is fine.
    let sd = targz(&entries[1..]);
    let r = upload_with(&t, "demo", "1.0", "demo-1.0.tar.gz", &sd, |_| {}).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    t.index.shutdown();
}

/// Serve `router` on a loopback port.
async fn serve(router: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    addr
}

/// An upload in flight over a real connection: headers and half the body sent.
struct InFlight {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl InFlight {
    async fn start(addr: SocketAddr, token: &str, version: &str) -> InFlight {
        let w = wheel("demo", version);
        let f = format!("demo-{version}-py3-none-any.whl");
        let body = multipart(&form("demo", version, &f, &w), Some((&f, &w)));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /legacy/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
            basic("__token__", token),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let half = body.len() / 2;
        stream.write_all(&body[..half]).await.unwrap();
        InFlight {
            stream,
            rest: body[half..].to_vec(),
        }
    }

    /// Send the rest of the body; the status line and the whole answer.
    async fn finish(mut self) -> (u16, String) {
        // The server may answer before reading the body (a refusal): ignore write errors.
        let _ = self.stream.write_all(&self.rest).await;
        let mut out = Vec::new();
        let _ = self.stream.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_are_bounded_per_token_and_per_server() {
    let t = index_from(IndexOptions {
        uploads: UploadLimits {
            per_server: 2,
            per_token: 1,
            wait: Duration::from_millis(300),
        },
        ..test_options()
    });
    let addr = serve(t.router.clone()).await;
    let db = || tufpi_index::db::IndexDb::open(&t.dir.path().join("index.db")).unwrap();
    let (t2, t3) = (
        db().create_token(None, None).unwrap(),
        db().create_token(None, None).unwrap(),
    );
    let pause = || tokio::time::sleep(Duration::from_millis(300));

    // The token's one slot is taken: its next upload waits, then gets a 429.
    let a = InFlight::start(addr, &t.token, "1.0").await;
    pause().await;
    let (status, text) = InFlight::start(addr, &t.token, "1.1").await.finish().await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("Too many concurrent uploads with this token: at most 1 at a time"));
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{text}"
    );
    // Another token still gets a slot of the server: now both are taken, a third token's
    // upload gets a 503.
    let b = InFlight::start(addr, &t2, "2.0").await;
    pause().await;
    let (status, text) = InFlight::start(addr, &t3, "3.0").await.finish().await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("Too many uploads in progress on this index: at most 2 at a time"));
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{text}"
    );
    // The held uploads complete; their slots are free again.
    let (status, text) = a.finish().await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = b.finish().await;
    assert_eq!(status, 200, "{text}");
    for (token, v) in [(&t.token, "1.1"), (&t3, "3.0")] {
        let (status, text) = InFlight::start(addr, token, v).await.finish().await;
        assert_eq!(status, 200, "{text}");
    }
    // A waiting upload gets a slot freed while it waits: here by a client that hangs up.
    let gone = InFlight::start(addr, &t.token, "4.0").await;
    pause().await;
    let waiting = InFlight::start(addr, &t.token, "4.1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(gone);
    let (status, text) = waiting.finish().await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(t.settled().await["files"], 5);
    t.index.shutdown();
}

#[test]
fn an_index_gets_the_default_upload_limits_unless_told() {
    let t = index();
    assert_eq!(
        t.index.upload_limiter().limits(),
        &UploadLimits {
            per_server: 16,
            per_token: 4,
            wait: Duration::from_secs(5)
        }
    );
    t.index.shutdown();
}
