//! S3-compatible object storage as a blob store, through the `object_store` crate.
//!
//! - Create-only writes are `PUT` with `If-None-Match: *`; compare-and-swap writes are `PUT`
//!   with `If-Match: <ETag>`. The server enforces both (AWS S3, MinIO, R2, moto do), so a
//!   fenced-out publisher is refused by the store itself.
//! - Endpoint, region and credentials come from the environment the way the AWS tools read it
//!   (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, …; instance
//!   and web-identity credentials otherwise); `--storage-endpoint` overrides the endpoint. A
//!   custom endpoint is addressed path-style; plain http is allowed for a loopback endpoint
//!   (elsewhere only with `AWS_ALLOW_HTTP=true`).
//! - The trait blocks and `object_store` is async: each store owns a small tokio runtime and
//!   every call is spawned onto it and awaited through a std channel, so any non-async thread
//!   may call (including `spawn_blocking` threads of the caller's own runtime).
//! - Timeouts are short (connect 2 s, request 30 s, retries within 3 s) so a dead server is
//!   reported as [`BlobError::Unavailable`] within seconds, not minutes. Object bodies of any
//!   size (GET, a file's PUT, a large `put_new`) go through a second client that allows
//!   10 min for the whole request but fails a stall of 30 s.

use std::fmt;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};

use crate::{check_key, BlobError, BlobMeta, BlobStore, Bytes, Created, Etag};
use crate::{Result, StorageOptions};

mod support;

pub use support::content_type;
use support::{
    attributes, chain, classify, env_endpoint, is_loopback, meta_of, redact_endpoint, truncate,
};

/// The largest file [`BlobStore::put_new_file`] uploads: S3's limit for one `PUT`.
pub const SINGLE_PUT_MAX: u64 = 5 << 30;

/// How many create-only writes [`BlobStore::put_many_new`] keeps in flight: a publish of many
/// bins (a bulk import: one PUT per bin) is bound by round trips on a real S3 endpoint (tens
/// of ms each: 16,384 bins at 16 in flight would take tens of seconds), by the server's CPU
/// on a loopback one (s3s-fs, measured: about 5 s for 16,384 bins at 8, 16 or 64).
const PUT_MANY_CONCURRENCY: usize = 64;

/// Bodies larger than this are sent without the 30 s limit on the whole request.
const BULK_ABOVE: usize = 1 << 20;

/// Chunk size for reading a local file into a request body.
const FILE_CHUNK: usize = 8 << 20;

/// A blob store in an S3 bucket, under a key prefix.
pub struct S3Store {
    // Requests of bounded size: the whole request within 30 s.
    store: Arc<AmazonS3>,
    // Object bodies of any size (GET, a file's PUT): up to 10 min, a stall of 30 s fails.
    bulk: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    // Some until drop, which shuts it down without blocking (drop may run in async code).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the client's configuration: it holds credentials.
        f.debug_struct("S3Store")
            .field("url", &self.describe())
            .finish()
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Static credentials for [`S3Store::open_with`] (tests, or callers holding their own).
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// The store `s3://bucket/prefix` names, configured from the environment; `opts.endpoint`
    /// (`--storage-endpoint`) overrides the endpoint.
    pub fn open(bucket: &str, prefix: &str, opts: &StorageOptions) -> Result<S3Store> {
        S3Store::open_with(bucket, prefix, opts, None)
    }

    /// As [`S3Store::open`], with static credentials instead of the environment's.
    pub fn open_with(
        bucket: &str,
        prefix: &str,
        opts: &StorageOptions,
        creds: Option<S3Credentials>,
    ) -> Result<S3Store> {
        let url = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let bad = |why: String| BlobError::BadUrl {
            url: url.clone(),
            why,
        };
        if bucket.is_empty() {
            return Err(bad("no bucket".into()));
        }
        if !prefix.is_empty() {
            check_key(prefix).map_err(|e| bad(e.to_string()))?;
        }
        let endpoint = opts
            .endpoint
            .clone()
            .filter(|e| !e.trim().is_empty())
            .or_else(env_endpoint)
            .map(|e| e.trim().trim_end_matches('/').to_string());

        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // Single-key DELETE: some S3-compatible servers lack DeleteObjects.
            .with_disable_bulk_delete(true)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "2s",
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(3),
            });
        if let Some(ep) = &endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(bad(format!(
                    "endpoint {:?} is not an http:// or https:// URL",
                    redact_endpoint(ep)
                )));
            }
            // Custom servers (MinIO, moto, Ceph) rarely have per-bucket host names.
            b = b.with_endpoint(ep.as_str());
            if std::env::var_os("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_none() {
                b = b.with_virtual_hosted_style_request(false);
            }
            if is_loopback(ep) {
                b = b.with_allow_http(true);
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
        }
        if let Some(c) = creds {
            b = b
                .with_access_key_id(c.access_key_id)
                .with_secret_access_key(c.secret_access_key);
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tufpi-s3")
            .enable_all()
            .build()
            .map_err(|e| BlobError::Other {
                what: format!("starting the S3 client for {url}"),
                detail: e.to_string(),
            })?;
        let handle = runtime.handle().clone();
        // The HTTP client may look for a runtime while it is built.
        let timeout = |b: AmazonS3Builder, total: &str| {
            b.with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), total)
        };
        let bulk = b.clone().with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
            "30s",
        );
        let (store, bulk) = {
            let _g = handle.enter();
            let build = |b: AmazonS3Builder| b.build().map_err(|e| bad(truncate(chain(&e))));
            (build(timeout(b, "30s"))?, build(timeout(bulk, "10m"))?)
        };
        Ok(S3Store {
            store: Arc::new(store),
            bulk: Arc::new(bulk),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint,
            runtime: Some(runtime),
            handle,
        })
    }

    /// Run `fut` on this store's runtime and wait for it from the calling (blocking) thread.
    fn run<T, F>(&self, what: impl FnOnce() -> String, fut: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // A spawned task, not `block_on`: the caller may be inside another runtime's context.
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // The sender is dropped unsent only if the task panicked or the runtime stopped.
        rx.recv().unwrap_or_else(|_| {
            Err(BlobError::Other {
                what: what(),
                detail: "the S3 client's task ended without an answer".into(),
            })
        })
    }

    /// The object path of `key` (checked), under the prefix.
    fn path(&self, key: &str) -> Result<ObjPath> {
        check_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjPath::parse(&full).map_err(|_| BlobError::BadKey {
            key: key.to_string(),
            why: "control character",
        })
    }

    /// The key of an object path, relative to the prefix.
    fn key_of<'a>(&self, location: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(location)
        } else {
            location
                .strip_prefix(self.prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix (empty: the whole bucket).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// A create-only `PUT` of `payload` at `path`.
async fn create(
    store: Arc<AmazonS3>,
    key: String,
    path: ObjPath,
    payload: PutPayload,
) -> Result<Created> {
    let opts = PutOptions {
        mode: PutMode::Create,
        attributes: attributes(&key),
        ..Default::default()
    };
    match store.put_opts(&path, payload, opts).await {
        Ok(_) => Ok(Created::New),
        Err(e @ object_store::Error::AlreadyExists { .. })
        | Err(e @ object_store::Error::Precondition { .. }) => {
            // 409 (not 412) is S3's "a concurrent write of this key is in progress": it may
            // still fail, so only an object that is there now counts as existing.
            if !chain(&e).contains("status code: 409") {
                return Ok(Created::Existed);
            }
            match store.head(&path).await {
                Ok(_) => Ok(Created::Existed),
                Err(object_store::Error::NotFound { .. }) => Err(BlobError::Unavailable {
                    what: format!("creating {key}"),
                    detail: "a concurrent write of the same key is in progress".into(),
                }),
                Err(e) => Err(classify(format!("creating {key}"), e)),
            }
        }
        Err(e) => Err(classify(format!("creating {key}"), e)),
    }
}

impl BlobStore for S3Store {
    fn put_new(&self, key: &str, bytes: Bytes) -> Result<Created> {
        let path = self.path(key)?;
        // Large bodies on the client whose total timeout allows for them.
        let store = if bytes.len() > BULK_ABOVE {
            self.bulk.clone()
        } else {
            self.store.clone()
        };
        let k = key.to_string();
        self.run(
            || format!("creating {key}"),
            create(store, k, path, PutPayload::from(bytes)),
        )
    }

    fn put_many_new(&self, items: Vec<(String, Bytes)>) -> Result<()> {
        let mut jobs = Vec::with_capacity(items.len());
        for (k, b) in items {
            jobs.push((self.path(&k)?, k, b));
        }
        let store = self.store.clone();
        self.run(|| "creating many objects".into(), async move {
            let mut puts = futures_util::stream::iter(jobs)
                .map(|(p, k, b)| create(store.clone(), k, p, PutPayload::from(b)))
                .buffer_unordered(PUT_MANY_CONCURRENCY);
            while let Some(r) = puts.next().await {
                r?;
            }
            Ok(())
        })
    }

    /// object_store completes multipart uploads unconditionally, so a large file would lose
    /// create-only; instead: a HEAD (skip the upload if the key exists), then one conditional
    /// `PUT` of the file read in chunks (memory ≈ the file's size; the index caps uploads).
    fn put_new_file(&self, key: &str, file: &Path) -> Result<Created> {
        let path = self.path(key)?;
        let io = |e: std::io::Error| {
            BlobError::Io(tufpi_fs::Error::new(
                format!("reading {}", file.display()),
                e,
            ))
        };
        let mut f = std::fs::File::open(file).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        if self.head(key)?.is_some() {
            return Ok(Created::Existed);
        }
        if size > SINGLE_PUT_MAX {
            return Err(BlobError::Other {
                what: format!("creating {key}"),
                detail: format!(
                    "{} is {size} bytes, over the {SINGLE_PUT_MAX}-byte limit of one create-only PUT",
                    file.display()
                ),
            });
        }
        let mut chunks = Vec::new();
        loop {
            let mut buf = Vec::with_capacity(FILE_CHUNK.min(size as usize + 1));
            let n = (&mut f)
                .take(FILE_CHUNK as u64)
                .read_to_end(&mut buf)
                .map_err(io)?;
            if n == 0 {
                break;
            }
            chunks.push(Bytes::from(buf));
        }
        let payload: PutPayload = chunks.into_iter().collect();
        let (store, k) = (self.bulk.clone(), key.to_string());
        self.run(
            || format!("creating {key}"),
            create(store, k, path, payload),
        )
    }

    /// A refusal is checked against the object now there: our own bytes (an attempt that
    /// landed though its answer was a retried server error) count as success. An
    /// `Unavailable` answer (e.g. a timeout, not retried) leaves it open whether the write
    /// landed: re-read before deciding.
    fn put_swap(&self, key: &str, bytes: Bytes, expected: Option<&Etag>) -> Result<Etag> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let k = key.to_string();
        let expected = expected.cloned();
        self.run(|| format!("replacing {key}"), async move {
            let mode = match &expected {
                Some(e) => PutMode::Update(UpdateVersion {
                    e_tag: Some(e.0.clone()),
                    version: None,
                }),
                None => PutMode::Create,
            };
            let opts = PutOptions {
                mode,
                attributes: attributes(&k),
                ..Default::default()
            };
            let refused = || BlobError::Precondition {
                key: k.clone(),
                expected: expected
                    .as_ref()
                    .map_or_else(|| "absent".to_string(), |e| e.0.clone()),
            };
            match store
                .put_opts(&path, PutPayload::from(bytes.clone()), opts)
                .await
            {
                Ok(r) => match r.e_tag {
                    Some(t) => Ok(Etag(t)),
                    // A server that does not answer with the ETag: ask for it.
                    None => match store.head(&path).await {
                        Ok(m) => m.e_tag.map(Etag).ok_or_else(|| BlobError::Other {
                            what: format!("replacing {k}"),
                            detail: "the server reports no ETag".into(),
                        }),
                        Err(e) => Err(classify(format!("replacing {k}"), e)),
                    },
                },
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::NotModified { .. }
                    | object_store::Error::NotFound { .. },
                ) => {
                    // A server error is retried, and the failed attempt may have landed:
                    // then the refusal is of our own bytes, which are there now.
                    match store.get(&path).await {
                        Ok(r) => {
                            let tag = r.meta.e_tag.clone();
                            match (r.bytes().await, tag) {
                                (Ok(now), Some(t)) if now == bytes => Ok(Etag(t)),
                                _ => Err(refused()),
                            }
                        }
                        Err(_) => Err(refused()),
                    }
                }
                Err(e) => Err(classify(format!("replacing {k}"), e)),
            }
        })
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_tagged_opt(key)?.map(|(b, _)| b))
    }

    fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, Etag)>> {
        match self.get_tagged_opt(key)? {
            None => Ok(None),
            Some((b, Some(t))) => Ok(Some((b, t))),
            Some((_, None)) => Err(BlobError::Other {
                what: format!("reading {key}"),
                detail: "the server reports no ETag".into(),
            }),
        }
    }

    fn head(&self, key: &str) -> Result<Option<BlobMeta>> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let k = key.to_string();
        self.run(|| format!("looking up {key}"), async move {
            match store.head(&path).await {
                Ok(m) => Ok(Some(meta_of(k, m))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(classify(format!("looking up {k}"), e)),
            }
        })
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let k = key.to_string();
        self.run(|| format!("removing {key}"), async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(classify(format!("removing {k}"), e)),
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        // object_store lists whole path segments: list the deepest directory the prefix
        // names in full, then keep the keys that start with the prefix.
        let (dir_rel, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let dir = if dir_rel.is_empty() {
            if self.prefix.is_empty() {
                None
            } else {
                Some(ObjPath::parse(&self.prefix).map_err(|e| BlobError::Other {
                    what: "listing".into(),
                    detail: e.to_string(),
                })?)
            }
        } else {
            Some(self.path(dir_rel)?)
        };
        let store = self.store.clone();
        let what = format!("listing {}", if prefix.is_empty() { "all" } else { prefix });
        let w = what.clone();
        let metas = self.run(|| w, async move {
            let mut out = Vec::new();
            let mut s = store.list(dir.as_ref());
            while let Some(r) = s.next().await {
                out.push(r.map_err(|e| classify(what.clone(), e))?);
            }
            Ok(out)
        })?;
        let mut out: Vec<BlobMeta> = metas
            .into_iter()
            .filter_map(|m| {
                let key = self.key_of(m.location.as_ref())?.to_string();
                key.starts_with(prefix).then(|| meta_of(key, m))
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    fn describe(&self) -> String {
        let mut s = format!("s3://{}", self.bucket);
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        if let Some(ep) = &self.endpoint {
            s.push_str(&format!(" (endpoint {})", redact_endpoint(ep)));
        }
        s
    }
}

impl S3Store {
    /// GET `key`: its bytes and, if the server sent one, its ETag (from the same response).
    fn get_tagged_opt(&self, key: &str) -> Result<Option<(Bytes, Option<Etag>)>> {
        let path = self.path(key)?;
        let store = self.bulk.clone();
        let k = key.to_string();
        self.run(|| format!("reading {key}"), async move {
            let r = match store.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(classify(format!("reading {k}"), e)),
            };
            let tag = r.meta.e_tag.clone().map(Etag);
            let bytes = r
                .bytes()
                .await
                .map_err(|e| classify(format!("reading {k}"), e))?;
            Ok(Some((bytes, tag)))
        })
    }
}
