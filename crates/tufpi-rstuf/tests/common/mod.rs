//! Shared by the API tests: a service in a temp directory driven through its router, and
//! RSTUF ceremony payloads built here (root keys, an online key file named by
//! `x-rstuf-online-key-uri`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tufpi_client::{FileFetcher, Updater, UpdaterConfig};
use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::json::Value as CoreValue;
use tufpi_core::metadata::{Key, Metadata};
use tufpi_repo::layout::{build_root, TopKeys};

/// A running service over a temp directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub started: Option<tufpi_rstuf::Started>,
    pub app: Router,
}

impl Env {
    /// Start a service with data in `dir/data` and online keys in `dir/keys`.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let (started, app) = start(dir.path());
        Env {
            dir,
            started: Some(started),
            app,
        }
    }

    /// The online key directory.
    pub fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// The published metadata directory.
    pub fn metadata(&self) -> PathBuf {
        self.dir.path().join("data/metadata")
    }

    /// Stop and start the service again over the same directory.
    pub fn restart(&mut self) {
        if let Some(s) = self.started.take() {
            s.stop();
        }
        // The old router holds the old service (and its data directory lock).
        self.app = Router::new();
        let (started, app) = start(self.dir.path());
        self.started = Some(started);
        self.app = app;
    }

    /// One request; (status, JSON body).
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        call_on(self.app.clone(), method, uri, body).await
    }

    /// POST `body`, expect 202 and `message`; returns the task id.
    pub async fn submit(&self, uri: &str, body: Option<Value>, message: &str) -> String {
        let (st, v) = self.call("POST", uri, body).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{uri}: {v}");
        assert_eq!(v["message"], message, "{v}");
        v["data"]["task_id"].as_str().unwrap().to_string()
    }

    /// Poll a task until it is finished; returns `data`.
    /// Wait for task `id` to end ERRORED with an error that contains `needle`; its state.
    pub async fn wait_errored(&self, id: &str, needle: &str) -> Value {
        let d = self.wait(id).await;
        assert_eq!(d["state"], "ERRORED", "{d}");
        let err = d["result"]["error"].as_str().unwrap_or_default();
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
        d
    }

    pub async fn wait(&self, id: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let (st, v) = self
                .call("GET", &format!("/api/v1/task/?task_id={id}"), None)
                .await;
            assert_eq!(st, StatusCode::OK);
            let state = v["data"]["state"].as_str().unwrap().to_string();
            if matches!(state.as_str(), "SUCCESS" | "ERRORED" | "FAILURE") {
                return v["data"].clone();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "task {id} stuck: {v}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Wait for a task and require SUCCESS with `status: true`.
    pub async fn success(&self, id: &str) -> Value {
        let d = self.wait(id).await;
        assert_eq!(d["state"], "SUCCESS", "{d}");
        assert_eq!(d["result"]["status"], true, "{d}");
        d["result"].clone()
    }

    /// A client trusting `1.root.json`, refreshed against the published metadata.
    pub fn client(&self) -> (tempfile::TempDir, Updater) {
        let cdir = tempfile::tempdir().unwrap();
        let root = std::fs::read(self.metadata().join("1.root.json")).unwrap();
        Updater::init(cdir.path(), &root).unwrap();
        let url = format!("file://{}/", self.metadata().display());
        let mut u = Updater::new(
            cdir.path(),
            &url,
            None,
            Box::new(FileFetcher),
            UpdaterConfig::default(),
        )
        .unwrap();
        u.refresh().unwrap();
        (cdir, u)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.started.take() {
            s.stop();
        }
    }
}

/// One request to `app`; (status, JSON body).
pub async fn call_on(
    app: Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

fn start(dir: &Path) -> (tufpi_rstuf::Started, Router) {
    let started = tufpi_rstuf::start(&dir.join("data"), Some(dir.join("keys"))).unwrap();
    let app = tufpi_rstuf::router(started.service.clone());
    (started, app)
}

/// A key with its keyid, as the ceremony lists it.
pub struct TestKey {
    pub private: PrivateKey,
    pub keyid: String,
    pub public: Key,
}

/// A root key of `scheme`.
pub fn root_key(scheme: Scheme) -> TestKey {
    let private = PrivateKey::generate(scheme).unwrap();
    let public = Key::from_private(&private);
    TestKey {
        keyid: public.compute_keyid(),
        private,
        public,
    }
}

/// An online key of `scheme`, its PEM written to `keys/<keyid>` and named by `fn:<keyid>`.
pub fn online_key(keys: &Path, scheme: Scheme) -> TestKey {
    let mut k = root_key(scheme);
    std::fs::write(keys.join(&k.keyid), k.private.to_pkcs8_pem().unwrap()).unwrap();
    k.public.unrecognized.insert(
        "x-rstuf-online-key-uri".into(),
        CoreValue::String(format!("fn:{}", k.keyid)),
    );
    k
}

/// Root `version` with `root_keys` (threshold `threshold`) and `online`, unsigned.
pub fn root(version: u64, root_keys: &[&TestKey], threshold: u64, online: &TestKey) -> Metadata {
    let top = TopKeys {
        root: (
            root_keys
                .iter()
                .map(|k| (k.keyid.clone(), k.public.clone()))
                .collect(),
            threshold,
        ),
        targets: (vec![(online.keyid.clone(), online.public.clone())], 1),
        online: (online.keyid.clone(), online.public.clone()),
    };
    Metadata::new(build_root(
        &top,
        version,
        Utc::now() + chrono::Duration::days(365),
    ))
}

/// `md` signed by `keys`.
pub fn signed(mut md: Metadata, keys: &[&TestKey]) -> Metadata {
    for k in keys {
        md.sign(&k.private, &k.keyid).unwrap();
    }
    md
}

/// Metadata as a JSON value.
pub fn to_json(md: &Metadata) -> Value {
    serde_json::from_slice(&md.to_bytes()).unwrap()
}

/// The ceremony payload `rstuf admin ceremony` writes.
pub fn ceremony_payload(root: &Metadata, bins: u64) -> Value {
    json!({
        "settings": {"roles": {
            "root": {"expiration": 365},
            "timestamp": {"expiration": 1},
            "snapshot": {"expiration": 1},
            "targets": {"expiration": 365},
            "bins": {"expiration": 1, "number_of_delegated_bins": bins},
        }},
        "metadata": {"root": to_json(root)},
        "timeout": 300,
    })
}

/// An artifact entry as Warehouse posts one: blake2b-256 only.
pub fn artifact(path: &str, n: u8) -> Value {
    json!({"path": path, "info": {"length": 100 + n as u64, "hashes": {"blake2b-256": format!("{:064x}", n)}}})
}
