//! The routes: `/simple/<project>/` pages (verified, re-rendered, links back at the proxy),
//! every other path a target (verified, cached), `/health`. pip gets its answers through
//! [`crate::pip`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::warn;
use tufpi_client::redact;
use tufpi_simple::targets::{basename, named_blake2b_256, split_hash_prefix};
use tufpi_simple::{
    moved_permanently, negotiate_request, normalize_valid, PageKind, HTML_TYPE, JSON_TYPE,
};

use crate::error::ProxyError;
use crate::files::{Content, FileCache};
use crate::pages::{self, Page, PageCache};
use crate::pip::{for_pip, PageResponse};
use crate::sync::lock;
use crate::trust::{Resolved, Trust};

/// What every route shares.
pub(crate) struct App {
    trust: Arc<Trust>,
    files: FileCache,
    /// Verified, rewritten pages (the version the signed sha256 names).
    pages: Mutex<PageCache>,
}

impl App {
    /// The routes' state over an opened trust store and file cache.
    pub(crate) fn new(trust: Arc<Trust>, files: FileCache) -> App {
        App {
            trust,
            files,
            pages: Mutex::new(PageCache::default()),
        }
    }
}

/// The routes over an opened trust store and file cache.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/health", get(health))
        .route("/simple", get(|| async { moved("/simple/".into(), None) }))
        .route("/simple/", get(simple_root))
        .route("/simple/{project}", get(project_redirect))
        .route("/simple/{project}/", get(project_page))
        .fallback(target_file)
        .layer(axum::middleware::from_fn(for_pip))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

async fn home() -> Response {
    text(
        StatusCode::OK,
        "tufpi verifying proxy: /simple/<project>/ (PEP 503/691), files verified with TUF, /health\n",
    )
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// 200 while the trusted metadata is fresh, 503 with the reason once a refresh failed or it
/// has expired; never waits for a refresh in progress.
async fn health(State(app): State<Arc<App>>) -> Response {
    match app.trust.status() {
        (true, line) => text(StatusCode::OK, &format!("ok: {line}\n")),
        (false, line) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("failing: {}\n", redact(&line)),
        ),
    }
}

/// The project list is not a TUF target: serving it would be serving unverified data.
async fn simple_root() -> Response {
    ProxyError::NotFound(
        "the project list is not covered by the signed TUF metadata, so this proxy does not serve it: ask for /simple/<project>/".into(),
    )
    .into_response()
}

/// A 301 Moved Permanently to `path` (with the request's query, if any).
fn moved(path: String, query: Option<&str>) -> Response {
    moved_permanently(path, query)
        .unwrap_or_else(|| ProxyError::NotFound("Not found".into()).into_response())
}

fn bad_name(project: &str) -> ProxyError {
    ProxyError::NotFound(format!(
        "{:?} is not a valid project name",
        crate::error::one_line(project, 100)
    ))
}

async fn project_redirect(Path(project): Path<String>, req: Request) -> Response {
    match normalize_valid(&project) {
        Some(norm) => moved(format!("/simple/{norm}/"), req.uri().query()),
        None => bad_name(&project).into_response(),
    }
}

/// A project page, marked as one (`PageResponse`), refusals included.
async fn project_page(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let mut resp = project_page_of(app, project, query, headers, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    resp.extensions_mut().insert(PageResponse);
    resp
}

async fn project_page_of(
    app: Arc<App>,
    project: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ProxyError> {
    let norm = normalize_valid(&project).ok_or_else(|| bad_name(&project))?;
    if norm != project {
        return Ok(moved(format!("/simple/{norm}/"), req.uri().query()));
    }
    let format = query.get("format").map(String::as_str);
    let (kind, content_type) = negotiate_request(&headers, format).ok_or_else(|| {
        ProxyError::NotAcceptable(format!(
            "Not acceptable: this proxy serves {JSON_TYPE}, {HTML_TYPE} and text/html"
        ))
    })?;
    let page = verified_page(&app, norm).await?;
    let body = match kind {
        PageKind::Html => page.html(),
        PageKind::Json => page.json(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::VARY, HeaderValue::from_static("Accept")),
            // Fresh metadata decides every time: installers must come back to the proxy.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response())
}

/// The project's page, looked up on refreshed metadata, downloaded and verified (or taken
/// from memory when the signed hash is the one verified before), links rewritten.
async fn verified_page(app: &Arc<App>, project: String) -> Result<Arc<Page>, ProxyError> {
    let target = pages::VERIFIED_PAGE.target_path(&project);
    let resolved = app.trust.lookup(&target).await?.ok_or_else(|| {
        ProxyError::NotFound(format!(
            "project {project:?} is not in the signed TUF metadata ({target} is not a target)"
        ))
    })?;
    let digest = resolved
        .info
        .hashes
        .get("sha256")
        .or_else(|| resolved.info.hashes.values().next())
        .cloned()
        .unwrap_or_default();
    if let Some(p) = lock(&app.pages).get(&target, &digest) {
        return Ok(p);
    }
    let upstream = app.trust.upstream().clone();
    let page_url = format!("{}{target}", upstream.target_base);
    let bytes = app.trust.download(resolved).await?;
    // Signed, yet not a page we can read: refuse it whole rather than guess.
    let page = pages::rewrite(&bytes, &page_url, &upstream.target_base).map_err(|e| {
        ProxyError::Verification(format!("target {target:?} verified, but {e}").into())
    })?;
    if !page.dropped.is_empty() {
        warn!(
            project = page.name(),
            files = ?page.dropped,
            "left out files whose URL is outside the target base (they cannot be verified)"
        );
    }
    let page = Arc::new(page);
    prefetch(app, &page);
    lock(&app.pages).insert(target, digest, page.clone(), bytes.len());
    Ok(page)
}

/// Files of a page resolved ahead, in the background, at most this many (the newest).
const PREFETCH: usize = 4;

/// An installer that reads a page asks next for the core metadata and the file of the newest
/// release: resolve those targets now (fetching and verifying the bins that list them) while
/// it parses the page, so its next requests find the metadata loaded. Only metadata is
/// fetched, never a file; failures are left for the real request to report.
fn prefetch(app: &Arc<App>, page: &Page) {
    let paths: Vec<String> = page
        .targets
        .iter()
        .rev()
        .take(PREFETCH)
        .flat_map(|(t, m)| std::iter::once(t.clone()).chain(m.clone()))
        .collect();
    if paths.is_empty() {
        return;
    }
    let t = app.trust.clone();
    tokio::spawn(async move {
        for p in paths {
            t.warm(&p).await;
        }
    });
}

/// Any other GET (or HEAD) path is a target path (`/packages/…`, `….metadata`): verified,
/// then served. A HEAD is answered from the signed metadata alone: nothing is downloaded (so
/// nothing verified tells it a BLAKE2b-256 that is not signed: its `Cache-Control` may say
/// `no-cache` where the GET says `immutable`).
async fn target_file(State(app): State<Arc<App>>, req: Request) -> Result<Response, ProxyError> {
    let head = req.method() == axum::http::Method::HEAD;
    if req.method() != axum::http::Method::GET && !head {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "read-only proxy\n"));
    }
    let path = pages::target_of_request(req.uri().path())
        .ok_or_else(|| ProxyError::NotFound("Not found".into()))?;
    let resolved = FileCache::resolve(&app.trust, path).await?;
    let (headers, body) = if head {
        (file_headers(&resolved, None), Body::empty())
    } else {
        // The headers follow the verification: `get` establishes the BLAKE2b-256 of the
        // bytes before it returns, and nothing has been sent by then (a download is
        // verified whole first; a cache file is checked before it is streamed).
        let served = app.files.get(&app.trust, resolved.clone()).await?;
        let headers = file_headers(&resolved, served.blake2b_256.as_deref());
        let body = match served.content {
            Content::Bytes(b) => Body::from(b),
            Content::Stream(s) => Body::new(s),
        };
        (headers, body)
    };
    let mut resp = Response::new(body);
    *resp.headers_mut() = headers;
    Ok(resp)
}

/// Content-Type, Content-Length (the signed length), ETag (the signed sha256, if listed) and
/// Cache-Control of a verified target: `immutable` only when its path names its content.
/// `verified_b2` is the BLAKE2b-256 a check of the bytes sent established
/// (`Served::blake2b_256`), if any.
fn file_headers(r: &Resolved, verified_b2: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let content_type = if r.path.ends_with(".metadata") {
        "text/plain; charset=utf-8"
    } else if r.path.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.info.length));
    if let Some(v) = r
        .info
        .hashes
        .get("sha256")
        .and_then(|d| HeaderValue::try_from(format!("\"sha256-{d}\"")).ok())
    {
        h.insert(header::ETAG, v);
    }
    let cache = if content_addressed(&r.path, &r.info, verified_b2) {
        "public, max-age=31536000, immutable"
    } else {
        // The signed metadata may change what this path is: ask again every time.
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h
}

/// Whether `path` names exactly this content: `packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/NAME`
/// with `b2` the BLAKE2b-256 of the bytes, signed (and so checked against every byte served)
/// or `verified_b2`, established by a check of exactly the bytes served
/// (`Served::blake2b_256`); or a file name prefixed with one of its signed hashes
/// (`HASH.NAME`, consistent-snapshot style).
fn content_addressed(
    path: &str,
    info: &tufpi_core::metadata::TargetFile,
    verified_b2: Option<&str>,
) -> bool {
    if let Some(named) = named_blake2b_256(path) {
        let signed = info.hashes.get(crate::stream::BLAKE2B_256);
        if signed == Some(&named) || verified_b2 == Some(named.as_str()) {
            return true;
        }
    }
    split_hash_prefix(basename(path))
        .is_some_and(|(prefix, _)| info.hashes.values().any(|h| !h.is_empty() && h == prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tufpi_core::metadata::TargetFile;
    use tufpi_simple::negotiate;

    #[test]
    fn only_content_addressed_paths_are_immutable() {
        let b2 = format!("abcd{}", "e".repeat(60));
        let mut hashes = BTreeMap::new();
        hashes.insert("blake2b-256".to_string(), b2.clone());
        hashes.insert("sha256".to_string(), "f".repeat(64));
        let info = TargetFile::new(3, hashes);
        let good = format!("packages/ab/cd/{}/x-1.0.tar.gz", "e".repeat(60));
        assert!(content_addressed(&good, &info, None));
        // A wheel's .metadata sits in the wheel's directory, but the path names the wheel.
        let mut meta = info.clone();
        meta.hashes.insert("blake2b-256".into(), "1".repeat(64));
        assert!(!content_addressed(&format!("{good}.metadata"), &meta, None));
        assert!(!content_addressed(
            &format!("{good}.metadata"),
            &meta,
            Some(&"1".repeat(64))
        ));
        assert!(!content_addressed(
            &format!("packages/ab/cd/{}/x-1.0.tar.gz", "0".repeat(60)),
            &info,
            None
        ));
        assert!(!content_addressed(
            "simple/x/vnd.pypi.simple.v1.json",
            &info,
            Some(&b2)
        ));
        assert!(content_addressed(
            &format!("simple/x/{}.page.json", "f".repeat(64)),
            &info,
            None
        ));
        let r = Resolved {
            path: "simple/x/vnd.pypi.simple.v1.json".into(),
            info: info.clone(),
            url: String::new(),
        };
        let h = file_headers(&r, None);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h[header::CONTENT_LENGTH], "3");
        assert_eq!(
            h[header::ETAG],
            format!("\"sha256-{}\"", "f".repeat(64)).as_str()
        );
        let r = Resolved { path: good, ..r };
        assert!(file_headers(&r, None)[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
    }

    #[test]
    fn a_verified_blake2b_256_makes_a_path_content_addressed_only_if_it_is_the_named_one() {
        // sha256 alone signed, as repositories list it by default.
        let b2 = format!("abcd{}", "e".repeat(60));
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_string(), "f".repeat(64));
        let info = TargetFile::new(3, hashes);
        let path = format!("packages/ab/cd/{}/x-1.0.tar.gz", "e".repeat(60));
        // Nothing verified (a HEAD): the path alone proves nothing.
        assert!(!content_addressed(&path, &info, None));
        assert!(content_addressed(&path, &info, Some(&b2)));
        assert!(!content_addressed(&path, &info, Some(&"0".repeat(64))));
        // Upper-case or short digests in a path are not the digest, whatever was verified.
        let upper = format!("packages/AB/cd/{}/x-1.0.tar.gz", "e".repeat(60));
        assert!(!content_addressed(&upper, &info, Some(&b2)));
        let short = "packages/ab/cd/ee/x-1.0.tar.gz";
        assert!(!content_addressed(short, &info, Some("abcdee")));
        // A signed blake2b-256 other than the path's is not overridden by anything.
        let mut other = info.clone();
        other.hashes.insert("blake2b-256".into(), "0".repeat(64));
        assert!(!content_addressed(&path, &other, None));
        let r = Resolved {
            path,
            info,
            url: String::new(),
        };
        assert_eq!(file_headers(&r, None)[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            file_headers(&r, Some(&b2))[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }

    #[test]
    fn negotiation_follows_pep_691() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(
            negotiate(Some(pip), None),
            Some((PageKind::Json, JSON_TYPE))
        );
        assert_eq!(negotiate(None, None).map(|r| r.0), Some(PageKind::Html));
        assert_eq!(
            negotiate(Some(JSON_TYPE), Some(HTML_TYPE)).map(|r| r.0),
            Some(PageKind::Html)
        );
        assert_eq!(negotiate(Some("application/json"), None), None);
    }
}
