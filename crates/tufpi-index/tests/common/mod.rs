//! Helpers for the index tests: an index in a temp dir, distributions built in memory, and
//! multipart upload requests sent through the router.

#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tufpi_index::{Index, IndexOptions, PublisherConfig};

/// An index in a temp dir with its router and an unscoped token.
pub struct TestIndex {
    pub dir: tempfile::TempDir,
    pub index: Arc<Index>,
    pub router: Router,
    pub token: String,
}

pub fn index_with(max_upload: u64) -> TestIndex {
    index_from(IndexOptions {
        max_upload,
        ..test_options()
    })
}

/// Small bins and a quick publisher.
pub fn test_options() -> IndexOptions {
    IndexOptions {
        bins_bit_length: 4,
        max_upload: 1 << 20,
        publisher: PublisherConfig {
            interval: Duration::from_millis(50),
            ..PublisherConfig::default()
        },
        ..IndexOptions::default()
    }
}

/// An index opened with `opts` in a temp dir.
pub fn index_from(opts: IndexOptions) -> TestIndex {
    let (t, created) = index_opened(&opts, |dir| {
        tufpi_index::db::IndexDb::open(&dir.join("index.db"))
            .unwrap()
            .create_token(None, None)
            .unwrap()
    });
    assert!(created);
    t
}

/// An index opened with `opts` in a new temp dir, its token made by `token` (given the data
/// directory) once it is open; and whether it made the repository.
pub fn index_opened(
    opts: &IndexOptions,
    token: impl FnOnce(&std::path::Path) -> String,
) -> (TestIndex, bool) {
    let dir = tempfile::tempdir().unwrap();
    let (index, created) = Index::open(dir.path(), opts).unwrap();
    let token = token(dir.path());
    let index = Arc::new(index);
    (
        TestIndex {
            router: tufpi_index::router(index.clone()),
            dir,
            index,
            token,
        },
        created,
    )
}

pub fn index() -> TestIndex {
    index_with(1 << 20)
}

/// Uploads of `demo`: 1.0 as a wheel and an sdist, 2.0 as a wheel (for
/// [`TestIndex::upload_all`]).
pub fn demo_files() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    vec![
        (
            "demo",
            "1.0",
            "demo-1.0-py3-none-any.whl",
            wheel("demo", "1.0"),
        ),
        ("demo", "1.0", "demo-1.0.tar.gz", sdist("demo", "1.0")),
        (
            "demo",
            "2.0",
            "demo-2.0-py3-none-any.whl",
            wheel("demo", "2.0"),
        ),
    ]
}

/// A wheel whose METADATA names `name` and `version`.
pub fn wheel(name: &str, version: &str) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        let dist = format!("{}-{version}.dist-info", name.replace('-', "_"));
        z.start_file("pkg/__init__.py", opts).unwrap();
        z.write_all(b"X = 1\n").unwrap();
        z.start_file(format!("{dist}/METADATA"), opts).unwrap();
        write!(
            z,
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n\nA test project.\n"
        )
        .unwrap();
        z.start_file(format!("{dist}/WHEEL"), opts).unwrap();
        z.write_all(
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        .unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// Upload `content` as `filename` of `name` `version`, the form changed by `edit`.
pub async fn upload_with(
    t: &TestIndex,
    name: &str,
    version: &str,
    filename: &str,
    content: &[u8],
    edit: impl FnOnce(&mut Vec<(String, String)>),
) -> Reply {
    let mut fm = form(name, version, filename, content);
    edit(&mut fm);
    let body = multipart(&fm, Some((filename, content)));
    send(
        &t.router,
        upload_request(Some(basic("__token__", &t.token)), body),
    )
    .await
}

/// A zip archive of `entries` (name, text).
pub fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, body) in entries {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// A `.tar.gz` archive of `entries` (name, bytes), names written as given.
pub fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let raw = &mut h.as_gnu_mut().unwrap().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        t.append(&h, *body).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

/// Core metadata naming `name` and `version`.
pub fn pkg_info(name: &str, version: &str) -> String {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n\n")
}

/// An sdist (`NAME-VERSION/PKG-INFO`, `setup.py`) whose PKG-INFO names `name` and `version`.
pub fn sdist(name: &str, version: &str) -> Vec<u8> {
    let root = format!("{}-{version}", name.replace('-', "_"));
    targz(&[
        (
            &format!("{root}/setup.py"),
            b"from setuptools import setup\nsetup()\n",
        ),
        (
            &format!("{root}/PKG-INFO"),
            pkg_info(name, version).as_bytes(),
        ),
    ])
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The form twine sends for `filename` with `content`, as (name, value) pairs.
pub fn form(name: &str, version: &str, filename: &str, content: &[u8]) -> Vec<(String, String)> {
    let filetype = if filename.ends_with(".whl") {
        "bdist_wheel"
    } else {
        "sdist"
    };
    [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", name),
        ("version", version),
        ("filetype", filetype),
        (
            "pyversion",
            if filetype == "sdist" { "source" } else { "py3" },
        ),
        ("metadata_version", "2.1"),
        ("requires_python", ""),
        ("sha256_digest", &sha256_hex(content)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub const BOUNDARY: &str = "----tufpi-test-boundary";

/// A multipart/form-data body: the fields, then the file (if any) as `content`.
pub fn multipart(fields: &[(String, String)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        write!(
            body,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        )
        .unwrap();
    }
    if let Some((filename, bytes)) = file {
        write!(
            body,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").unwrap();
    body
}

pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// A POST /legacy/ request with `body`, authenticated with `auth` if given.
pub fn upload_request(auth: Option<String>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post("/legacy/")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::from(body)).unwrap()
}

/// A response's status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
    pub reason: Option<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Reply {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
        reason,
    }
}

pub async fn get(router: &Router, uri: &str, accept: Option<&str>) -> Reply {
    let mut b = Request::get(uri);
    if let Some(a) = accept {
        b = b.header(header::ACCEPT, a);
    }
    send(router, b.body(Body::empty()).unwrap()).await
}

impl TestIndex {
    /// Upload `content` as `filename` of `name` `version` with this index's token.
    pub async fn upload(&self, name: &str, version: &str, filename: &str, content: &[u8]) -> Reply {
        let body = multipart(
            &form(name, version, filename, content),
            Some((filename, content)),
        );
        send(
            &self.router,
            upload_request(Some(basic("__token__", &self.token)), body),
        )
        .await
    }

    /// Every file below the data dir's packages/ and tmp/ areas.
    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![
            self.dir.path().join("packages"),
            self.dir.path().join("tmp"),
        ];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out
    }

    /// Wait until the publisher has nothing pending; returns the health report.
    pub async fn settled(&self) -> serde_json::Value {
        for _ in 0..100 {
            let h = get(&self.router, "/health", None).await.json();
            if h["pending_changes"] == 0 && h["publisher"]["state"] == "idle" {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("publisher did not settle");
    }
}

/// Every signed target as a client would resolve it from the served metadata (timestamp →
/// snapshot → each delegated role): path → (length, sha256).
pub async fn signed_targets(router: &Router) -> std::collections::BTreeMap<String, (u64, String)> {
    let ts = get(router, "/metadata/timestamp.json", None).await.json();
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snap = get(router, &format!("/metadata/{sv}.snapshot.json"), None)
        .await
        .json();
    let mut out = std::collections::BTreeMap::new();
    for (name, meta) in snap["signed"]["meta"].as_object().unwrap() {
        let role = name.strip_suffix(".json").unwrap();
        let v = meta["version"].as_u64().unwrap();
        let md = get(router, &format!("/metadata/{v}.{role}.json"), None).await;
        assert_eq!(md.status, StatusCode::OK, "{v}.{role}.json");
        for (path, t) in md.json()["signed"]["targets"].as_object().unwrap() {
            out.insert(
                path.clone(),
                (
                    t["length"].as_u64().unwrap(),
                    t["hashes"]["sha256"].as_str().unwrap().to_string(),
                ),
            );
        }
    }
    out
}

/// A form or JSON POST to `uri`, authenticated with `auth` if given.
pub fn post_request(
    uri: &str,
    auth: Option<String>,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Request<Body> {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, content_type);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::from(body.into())).unwrap()
}

impl TestIndex {
    /// `POST /manage/project/<project>/<action>` with a urlencoded `form`, this index's token.
    pub async fn manage(&self, project: &str, action: &str, form: &str) -> Reply {
        send(
            &self.router,
            post_request(
                &format!("/manage/project/{project}/{action}"),
                Some(basic("__token__", &self.token)),
                "application/x-www-form-urlencoded",
                form,
            ),
        )
        .await
    }
}

impl TestIndex {
    /// Upload each of `files` (name, version, filename, bytes), every one accepted, and wait
    /// until they are published.
    pub async fn upload_all(&self, files: &[(&str, &str, &str, Vec<u8>)]) {
        for (name, version, file, bytes) in files {
            let r = self.upload(name, version, file, bytes).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        }
        self.settled().await;
    }

    /// Stop this index and let go of it: its data directory, to open by other means.
    pub fn close(self) -> tempfile::TempDir {
        self.index.shutdown();
        let TestIndex {
            dir, index, router, ..
        } = self;
        drop(router);
        drop(index);
        dir
    }

    /// Stop this index and open its data directory again (a restart), same token.
    pub fn restart(self) -> TestIndex {
        self.restart_with(&IndexOptions::default())
    }

    /// [`TestIndex::restart`] with `opts`.
    pub fn restart_with(self, opts: &IndexOptions) -> TestIndex {
        let token = self.token.clone();
        let dir = self.close();
        let (index, created) = Index::open(dir.path(), opts).unwrap();
        assert!(!created);
        let index = Arc::new(index);
        TestIndex {
            router: tufpi_index::router(index.clone()),
            index,
            dir,
            token,
        }
    }
}
