//! The S3 store against a real S3-API server on loopback (`scripts/s3-server start DIR`
//! prints `TUFPI_TEST_S3_ENDPOINT`). Without it these tests are skipped, unless
//! `TUFPI_REQUIRE_S3=1`, when they fail. Each test uses its own bucket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{Attribute, GetOptions, ObjectStore};
use tufpi_blob::testing::{self, test_bucket};
use tufpi_blob::{
    open, BlobError, BlobStore, Bytes, Created, Etag, S3Credentials, S3Store, Scoped,
    StorageOptions,
};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn keys(v: Vec<tufpi_blob::BlobMeta>) -> Vec<String> {
    v.into_iter().map(|m| m.key).collect()
}

/// The server itself refuses a second create-only write (HTTP 412 → `Existed`), and the
/// first bytes stay.
#[test]
fn server_refuses_a_second_create_only_write() {
    let Some(s) = testing::s3_store_for_test("second-create") else {
        return;
    };
    assert_eq!(s.put_new("m/1.root.json", b("one")).unwrap(), Created::New);
    assert_eq!(
        s.put_new("m/1.root.json", b("two")).unwrap(),
        Created::Existed
    );
    assert_eq!(s.get("m/1.root.json").unwrap().unwrap(), b("one"));
    // The same refusal through the swap API: "create if absent" on a present key.
    let e = s.put_swap("m/1.root.json", b("three"), None).unwrap_err();
    assert!(matches!(e, BlobError::Precondition { .. }), "{e}");
    assert_eq!(s.get("m/1.root.json").unwrap().unwrap(), b("one"));
}

/// The server itself refuses `If-Match` with a stale or made-up ETag (HTTP 412), and on an
/// absent key.
#[test]
fn server_refuses_a_stale_if_match() {
    let Some(s) = testing::s3_store_for_test("stale-if-match") else {
        return;
    };
    let k = "metadata/timestamp.json";
    let t1 = s.put_swap(k, b("t1"), None).unwrap();
    let t2 = s.put_swap(k, b("t2"), Some(&t1)).unwrap();
    assert_ne!(t1, t2);
    let e = s.put_swap(k, b("t3"), Some(&t1)).unwrap_err();
    assert!(matches!(e, BlobError::Precondition { .. }), "{e}");
    assert!(e.to_string().contains("precondition failed"), "{e}");
    let bogus = Etag("\"0123456789abcdef0123456789abcdef\"".into());
    let e = s.put_swap(k, b("t3"), Some(&bogus)).unwrap_err();
    assert!(matches!(e, BlobError::Precondition { .. }), "{e}");
    let e = s.put_swap("absent.json", b("x"), Some(&t2)).unwrap_err();
    assert!(matches!(e, BlobError::Precondition { .. }), "{e}");
    let (bytes, tag) = s.get_tagged(k).unwrap().unwrap();
    assert_eq!((bytes, tag), (b("t2"), t2.clone()));
    // Refused, but the bytes there are the ones offered (a retried attempt that landed):
    // success, with the current ETag.
    assert_eq!(s.put_swap(k, b("t2"), Some(&t1)).unwrap(), t2);
    assert_eq!(s.head(k).unwrap().unwrap().etag, Some(t2));
}

/// Two writers swap from the same version at once: exactly one wins (the fencing the
/// publisher relies on).
#[test]
fn concurrent_swaps_from_one_version_one_wins() {
    let Some(s) = testing::s3_store_for_test("swap-race") else {
        return;
    };
    let s = Arc::new(s);
    let t0 = s.put_swap("timestamp.json", b("t0"), None).unwrap();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let (s, t0) = (s.clone(), t0.clone());
            std::thread::spawn(move || {
                s.put_swap("timestamp.json", Bytes::from(format!("w{i}")), Some(&t0))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, BlobError::Precondition { .. }), "{e}");
        }
    }
}

#[test]
fn every_method() {
    let Some(tb) = test_bucket("every-method") else {
        return;
    };
    let s = tb.store("");
    assert!(s.local_path("a").is_none());
    assert_eq!(
        s.describe(),
        format!("s3://{} (endpoint {})", tb.bucket, tb.endpoint)
    );
    assert!(!format!("{s:?}").contains(testing::SECRET_ACCESS_KEY));

    assert!(s.get("m/absent.json").unwrap().is_none());
    assert!(s.get_tagged("m/absent.json").unwrap().is_none());
    assert!(s.head("m/absent.json").unwrap().is_none());
    assert!(s.list("").unwrap().is_empty());

    assert_eq!(s.put_new("m/1.root.json", b("root")).unwrap(), Created::New);
    let m = s.head("m/1.root.json").unwrap().unwrap();
    assert_eq!((m.key.as_str(), m.size), ("m/1.root.json", 4));
    assert!(m.etag.is_some());
    assert!((chrono::Utc::now() - m.modified).num_minutes().abs() < 5);
    let (bytes, tag) = s.get_tagged("m/1.root.json").unwrap().unwrap();
    assert_eq!(bytes, b("root"));
    assert_eq!(Some(tag), m.etag);

    // Many at once, one of them present already (kept as it is).
    let mut items: Vec<(String, Bytes)> = (0..40)
        .map(|i| {
            (
                format!("m/2.bin-{i:02}.json"),
                Bytes::from(format!("bin {i}")),
            )
        })
        .collect();
    items.push(("m/1.root.json".into(), b("other")));
    s.put_many_new(items).unwrap();
    assert_eq!(s.get("m/1.root.json").unwrap().unwrap(), b("root"));
    assert_eq!(s.get("m/2.bin-07.json").unwrap().unwrap(), b("bin 7"));

    // A local file: new, then present (not overwritten); one larger than a read chunk.
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("up.whl");
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    std::fs::write(&f, &big).unwrap();
    assert_eq!(
        s.put_new_file("p/ab/x-1.0-py3-none-any.whl", &f).unwrap(),
        Created::New
    );
    std::fs::write(&f, b"different").unwrap();
    assert_eq!(
        s.put_new_file("p/ab/x-1.0-py3-none-any.whl", &f).unwrap(),
        Created::Existed
    );
    assert_eq!(
        s.get("p/ab/x-1.0-py3-none-any.whl").unwrap().unwrap().len(),
        big.len()
    );
    assert_eq!(
        s.get("p/ab/x-1.0-py3-none-any.whl").unwrap().unwrap(),
        Bytes::from(big)
    );
    let missing = d.path().join("missing");
    assert!(matches!(
        s.put_new_file("p/missing.whl", &missing),
        Err(BlobError::Io(_))
    ));

    // Listing is by string prefix, not only by whole segments.
    assert_eq!(s.list("").unwrap().len(), 42);
    assert_eq!(s.list("m/").unwrap().len(), 41);
    assert_eq!(
        keys(s.list("m/2.bin-3").unwrap()),
        (30..40)
            .map(|i| format!("m/2.bin-{i}.json"))
            .collect::<Vec<_>>()
    );
    assert_eq!(keys(s.list("m/1.").unwrap()), ["m/1.root.json"]);
    assert_eq!(keys(s.list("p").unwrap()), ["p/ab/x-1.0-py3-none-any.whl"]);
    assert!(s.list("q/").unwrap().is_empty());
    let listed = s.list("m/1.").unwrap().remove(0);
    assert_eq!(listed.size, 4);

    s.delete("m/2.bin-07.json").unwrap();
    s.delete("m/2.bin-07.json").unwrap();
    assert!(s.get("m/2.bin-07.json").unwrap().is_none());
    assert_eq!(s.list("m/2.").unwrap().len(), 39);

    // Bad keys are refused before any request.
    for bad in ["", "/a", "a/../b", "a//b", "a\u{1}b"] {
        assert!(
            matches!(s.put_new(bad, b("x")), Err(BlobError::BadKey { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn a_prefix_and_a_scope_see_only_their_keys() {
    let Some(tb) = test_bucket("prefix") else {
        return;
    };
    let whole = tb.store("");
    let s = tb.store("tenant/repo");
    assert!(s
        .describe()
        .starts_with(&format!("s3://{}/tenant/repo", tb.bucket)));
    whole.put_new("tenant/other.json", b("x")).unwrap();
    whole.put_new("tenant/repox/a.json", b("x")).unwrap();
    s.put_new("metadata/1.root.json", b("r")).unwrap();
    s.put_swap("metadata/timestamp.json", b("t"), None).unwrap();
    assert_eq!(
        whole
            .get("tenant/repo/metadata/1.root.json")
            .unwrap()
            .unwrap(),
        b("r")
    );
    assert_eq!(
        keys(s.list("").unwrap()),
        ["metadata/1.root.json", "metadata/timestamp.json"]
    );
    let scoped = Scoped::new(Arc::new(s), "metadata").unwrap();
    assert_eq!(
        keys(scoped.list("").unwrap()),
        ["1.root.json", "timestamp.json"]
    );
    assert_eq!(
        scoped.head("1.root.json").unwrap().unwrap().key,
        "1.root.json"
    );
}

/// Objects carry the Cache-Control `cache_control` names and a Content-Type from the name.
#[test]
fn objects_carry_cache_control_and_content_type() {
    let Some(tb) = test_bucket("attributes") else {
        return;
    };
    let s = tb.store("");
    s.put_new("metadata/1.root.json", b("{}")).unwrap();
    s.put_swap("metadata/timestamp.json", b("{}"), None)
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x.whl");
    std::fs::write(&f, b"PK").unwrap();
    s.put_new_file("p/x-1.0-py3-none-any.whl", &f).unwrap();

    let raw = AmazonS3Builder::new()
        .with_bucket_name(&tb.bucket)
        .with_endpoint(&tb.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(testing::ACCESS_KEY_ID)
        .with_secret_access_key(testing::SECRET_ACCESS_KEY)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let attrs = |key: &str| {
        let r = rt
            .block_on(raw.get_opts(
                &ObjPath::from(key),
                GetOptions {
                    head: true,
                    ..Default::default()
                },
            ))
            .unwrap();
        let get = |a: &Attribute| r.attributes.get(a).map(|v| v.to_string());
        (get(&Attribute::CacheControl), get(&Attribute::ContentType))
    };
    assert_eq!(
        attrs("metadata/1.root.json"),
        (
            Some("public, max-age=31536000, immutable".into()),
            Some("application/json".into())
        )
    );
    assert_eq!(
        attrs("metadata/timestamp.json"),
        (
            Some("public, max-age=10".into()),
            Some("application/json".into())
        )
    );
    assert_eq!(
        attrs("p/x-1.0-py3-none-any.whl"),
        (
            Some("public, max-age=31536000, immutable".into()),
            Some("application/zip".into())
        )
    );
}

/// The blocking API works from `spawn_blocking` threads of the caller's own runtimes
/// (multi-thread and current-thread), and dropping the store inside async code is fine.
#[test]
fn callable_from_another_runtimes_blocking_threads() {
    let Some(tb) = test_bucket("runtimes") else {
        return;
    };
    let s: Arc<dyn BlobStore> = Arc::new(tb.store("x"));
    for multi in [true, false] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let s2 = s.clone();
        let got = rt.block_on(async move {
            let key = format!("k-{multi}");
            tokio::task::spawn_blocking(move || {
                s2.put_new(&key, b("v")).unwrap();
                s2.get(&key).unwrap()
            })
            .await
            .unwrap()
        });
        assert_eq!(got, Some(b("v")));
    }
    let owned = tb.store("y");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move { drop(owned) });
}

/// `open` builds the S3 store for an s3:// URL from the environment plus the endpoint option.
#[test]
fn open_builds_an_s3_store() {
    let Some(endpoint) = testing::test_endpoint("open_builds_an_s3_store") else {
        return;
    };
    let s = open(
        "s3://some-bucket/pre/fix",
        &StorageOptions {
            endpoint: Some(endpoint.clone()),
        },
    )
    .unwrap();
    assert_eq!(
        s.describe(),
        format!("s3://some-bucket/pre/fix (endpoint {endpoint})")
    );
    assert!(s.local_path("a").is_none());
}

/// A dead server is reported as `Unavailable` (→ HTTP 503 + Retry-After) within seconds.
#[test]
fn a_closed_port_is_unavailable_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = S3Store::open_with(
        "no-such-bucket",
        "",
        &StorageOptions {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
        },
        Some(S3Credentials {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
        }),
    )
    .unwrap();
    let t = Instant::now();
    let e = s.get("metadata/timestamp.json").unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = s.put_new("metadata/1.root.json", b("x")).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = s.list("").unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// A loopback server answering every request with `status` and an S3 error body.
fn canned_server(status: &'static str, code: &'static str) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code></Error>");
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn store_at(endpoint: String) -> S3Store {
    S3Store::open_with(
        "some-bucket",
        "",
        &StorageOptions {
            endpoint: Some(endpoint),
        },
        Some(S3Credentials {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
        }),
    )
    .unwrap()
}

/// 5xx and throttling are `Unavailable` (after the few quick retries); a refusal is not.
#[test]
fn server_errors_are_unavailable_refusals_are_not() {
    let t = Instant::now();
    let s = store_at(canned_server("503 Service Unavailable", "SlowDown"));
    let e = s.get("a.json").unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = s.head("a.json").unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let s = store_at(canned_server("500 Internal Server Error", "InternalError"));
    assert!(s.get("a.json").unwrap_err().is_unavailable());
    let s = store_at(canned_server("403 Forbidden", "AccessDenied"));
    let e = s.get("a.json").unwrap_err();
    assert!(matches!(e, BlobError::Other { .. }), "{e}");
}

/// Opened from the environment (which may hold no credentials: object_store then asks the
/// instance-metadata service), a dead endpoint is still reported quickly: as `Unavailable`,
/// or as another error when the metadata service refuses (no credentials is no outage).
#[test]
fn opened_from_the_environment_a_dead_endpoint_is_quick() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = open(
        "s3://some-bucket/p",
        &StorageOptions {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
        },
    )
    .unwrap();
    let t = Instant::now();
    let e = s.get("metadata/timestamp.json").unwrap_err();
    assert!(
        matches!(e, BlobError::Unavailable { .. } | BlobError::Other { .. }),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// Keys with characters URLs escape come back from a listing exactly as written.
#[test]
fn unusual_characters_round_trip() {
    let Some(s) = testing::s3_store_for_test("chars") else {
        return;
    };
    let names = [
        "p/x-1.0+local.7-py3-none-any.whl",
        "p/100%-sure 1.0.tar.gz",
        "p/tilde~and=equals&amp;.json",
        "p/ünïcødé-1.0.zip",
        "p/q?hash#frag.json",
    ];
    for n in names {
        assert_eq!(s.put_new(n, Bytes::from(n)).unwrap(), Created::New, "{n}");
        assert_eq!(s.get(n).unwrap().unwrap(), Bytes::from(n), "{n}");
        assert!(s.head(n).unwrap().is_some(), "{n}");
    }
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(keys(s.list("p/").unwrap()), want);
    for n in names {
        s.delete(n).unwrap();
    }
    assert!(s.list("").unwrap().is_empty());
}
