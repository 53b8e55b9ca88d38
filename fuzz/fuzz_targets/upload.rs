//! The upload path: `POST /legacy/` through the index's real router (`tufpi_index::router`)
//! over a real index in a scratch dir, with a valid token. The input's first line is the
//! request's Content-Type (e.g. `multipart/form-data; boundary=X`), the rest the body.
//! Checks: nothing panics, no request gets a 5xx (whatever a client sends is its fault, a
//! 4xx), and every 200 stored the file it names. The index is replaced every 200 accepted
//! uploads so it stays small.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use base64::Engine;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tufpi_index::{Index, IndexOptions, PublisherConfig};

struct Server {
    dir: std::path::PathBuf,
    index: Arc<Index>,
    router: axum::Router,
    auth: String,
    accepted: usize,
}

#[allow(clippy::needless_update)]
fn open(n: usize) -> Server {
    let dir = tufpi_fuzz::scratch(&format!("index-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = IndexOptions {
        bins_bit_length: 2,
        max_upload: 1 << 20,
        publisher: PublisherConfig {
            interval: Duration::from_secs(3600),
            ..PublisherConfig::default()
        },
        // Any option added later keeps its default.
        ..IndexOptions::default()
    };
    let (index, _) = Index::open(&dir, &opts).expect("index");
    let token = tufpi_index::db::IndexDb::open(&dir.join("index.db"))
        .expect("index db")
        .create_token(None, None)
        .expect("token");
    let index = Arc::new(index);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("__token__:{token}"))
    );
    Server {
        router: tufpi_index::router(index.clone()),
        dir,
        index,
        auth,
        accepted: 0,
    }
}

fn state() -> &'static (tokio::runtime::Runtime, Mutex<(usize, Server)>) {
    static S: OnceLock<(tokio::runtime::Runtime, Mutex<(usize, Server)>)> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        (rt, Mutex::new((0, open(0))))
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, m) = state();
    let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
    if g.1.accepted >= 200 {
        let n = g.0 + 1;
        g.1.index.shutdown();
        let old = std::mem::replace(&mut g.1, open(n));
        g.0 = n;
        let _ = std::fs::remove_dir_all(&old.dir);
    }
    let (ctype, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let mut req = Request::post("/legacy/")
        .header(header::AUTHORIZATION, g.1.auth.as_str())
        .header(header::CONTENT_LENGTH, body.len());
    if let Ok(v) = header::HeaderValue::from_bytes(ctype) {
        req = req.header(header::CONTENT_TYPE, v);
    }
    let req = req.body(Body::from(body.to_vec())).unwrap();
    let router = g.1.router.clone();
    let (status, text) = rt.block_on(async move {
        let r = router.oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    assert!(!status.is_server_error(), "{status}: {text}");
    if status.is_success() {
        g.1.accepted += 1;
        let name = text
            .strip_prefix("OK: ")
            .and_then(|t| t.split(" stored").next())
            .expect("an accepted upload names its file");
        let found = g
            .1
            .index
            .read(|db| Ok(db.file(name).ok().flatten().is_some()))
            .unwrap();
        assert!(found, "{name} accepted but not recorded");
    }
});
