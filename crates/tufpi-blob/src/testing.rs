//! Test support (not for production use): a fresh bucket on the S3-API test server that
//! `scripts/s3-server` starts (its endpoint in `TUFPI_TEST_S3_ENDPOINT`), so any crate's
//! tests can run their suites against S3 too.
//!
//! With the variable unset an S3 test is skipped (with a message), unless
//! `TUFPI_REQUIRE_S3=1` (CI), when it fails.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{S3Credentials, S3Store, StorageOptions};

/// The variable naming the test server's endpoint (`http://127.0.0.1:PORT`).
pub const ENDPOINT_VAR: &str = "TUFPI_TEST_S3_ENDPOINT";
/// The variable that turns a skipped S3 test into a failure.
pub const REQUIRE_VAR: &str = "TUFPI_REQUIRE_S3";
/// The access key id used against the test server (moto accepts any).
pub const ACCESS_KEY_ID: &str = "tufpi-test";
/// The secret access key used against the test server.
pub const SECRET_ACCESS_KEY: &str = "tufpi-test-secret";

/// A bucket created for one test on the test server.
#[derive(Debug, Clone)]
pub struct TestBucket {
    /// The server's endpoint.
    pub endpoint: String,
    /// The bucket's name (unique per call).
    pub bucket: String,
}

impl TestBucket {
    /// `s3://BUCKET[/PREFIX]`.
    pub fn url(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{prefix}", self.bucket)
        }
    }

    /// A store on this bucket under `prefix` ("" for the whole bucket).
    pub fn store(&self, prefix: &str) -> S3Store {
        let opts = StorageOptions {
            endpoint: Some(self.endpoint.clone()),
        };
        let creds = S3Credentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
        };
        match S3Store::open_with(&self.bucket, prefix, &opts, Some(creds)) {
            Ok(s) => s,
            Err(e) => panic!("opening the test bucket {}: {e}", self.bucket),
        }
    }

    /// The environment a child process (`tufpi serve --storage s3://…`) needs for this bucket.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

/// The test server's endpoint, or `None` after printing that `what` is skipped. Panics (fails
/// the test) when `TUFPI_REQUIRE_S3=1` and no server is configured.
pub fn test_endpoint(what: &str) -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(e) if !e.trim().is_empty() => Some(e.trim().trim_end_matches('/').to_string()),
        _ => {
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!("{what}: {REQUIRE_VAR}=1 but {ENDPOINT_VAR} is unset (start one with scripts/s3-server start DIR)");
            }
            eprintln!(
                "skipping {what}: {ENDPOINT_VAR} is unset (scripts/s3-server start DIR prints it)"
            );
            None
        }
    }
}

/// A new, empty bucket on the test server for the test `name`, or `None` (skipped).
pub fn test_bucket(name: &str) -> Option<TestBucket> {
    static N: AtomicU64 = AtomicU64::new(0);
    let endpoint = test_endpoint(name)?;
    let clean: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let bucket = format!(
        "t-{}-{}-{}-{:x}",
        clean.trim_matches('-'),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    if let Err(e) = create_bucket(&endpoint, &bucket) {
        panic!("creating the test bucket {bucket} on {endpoint}: {e}");
    }
    Some(TestBucket { endpoint, bucket })
}

/// A store on a new bucket of the test server for the test `name`, or `None` (skipped).
pub fn s3_store_for_test(name: &str) -> Option<S3Store> {
    test_bucket(name).map(|b| b.store(""))
}

/// `PUT /BUCKET` over plain HTTP: the test server (moto) checks no signature, and object_store
/// has no bucket API.
fn create_bucket(endpoint: &str, bucket: &str) -> Result<(), String> {
    let hostport = endpoint
        .strip_prefix("http://")
        .ok_or("the test endpoint must be http://HOST:PORT")?
        .split('/')
        .next()
        .unwrap_or("");
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let status = resp.lines().next().unwrap_or("");
    if status.contains(" 200 ") {
        Ok(())
    } else {
        Err(format!("the server answered {status:?}"))
    }
}
