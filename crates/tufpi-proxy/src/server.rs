//! Routes and the run loop: `/simple/<project>/` pages (verified, re-rendered, links back at
//! the proxy), every other path a target (verified, cached), `/health`; a one-line banner
//! with the pip and uv command lines; graceful shutdown on Ctrl-C or SIGTERM.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::{info, warn};
use tufpi_client::UpdaterConfig;

use crate::error::ProxyError;
use crate::files::FileCache;
use crate::pages::{self, Format, Page};
use crate::trust::{Freshness, Trust, Upstream};

/// What `tufpi proxy` was asked for.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The index, e.g. `http://127.0.0.1:4458`.
    pub upstream: String,
    /// TUF metadata base URL (default `<upstream>/metadata/`).
    pub metadata_url: Option<String>,
    /// Target base URL (default `<upstream>/`).
    pub target_base: Option<String>,
    /// The trusted root metadata file (used when the cache holds no trusted root yet).
    pub root: PathBuf,
    /// Address to listen on, `HOST:PORT` (port 0: any free port).
    pub listen: String,
    /// Cache directory: trusted metadata and verified files.
    pub cache_dir: PathBuf,
    /// Refresh the metadata at most this often (a page request after it has passed does).
    pub refresh_interval: Duration,
    /// Overall timeout of one upstream download.
    pub fetch_timeout: Duration,
}

/// Most verified pages kept in memory (each a few kB); the lot is dropped when full.
const PAGE_CACHE: usize = 4096;

struct App {
    trust: Arc<Trust>,
    files: FileCache,
    /// Verified, rewritten pages by (target path, signed sha256 or first hash).
    pages: Mutex<HashMap<(String, String), Arc<Page>>>,
}

/// `url` parsed, normalised, with a trailing slash.
fn base_url(url: &str, what: &str) -> Result<String, ProxyError> {
    let with_slash = if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    };
    let u = url::Url::parse(&with_slash)
        .map_err(|e| ProxyError::Config(format!("{what} {url:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https" | "file") {
        return Err(ProxyError::Config(format!(
            "{what} {url:?}: only http, https and file URLs"
        )));
    }
    Ok(u.to_string())
}

/// The routes over an opened trust store and file cache.
fn router(app: Arc<App>) -> Router {
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

/// pip hides the proxy's reasons: it retries a 502 five times and then reports only "too many
/// 502 error responses", and it logs a failed index page only at debug level. So to pip (and
/// only pip, by its User-Agent) a refused file is a 403, which it does not retry and whose
/// reason phrase — the failed check — it prints; and a refused project page is a 200 whose
/// Content-Type carries the reason, which pip prints in its "Skipping page" warning before it
/// fails for want of a distribution. No file link is ever served: the body is the reason, as
/// plain text. Every other client gets the 502.
async fn for_pip(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let pip = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("pip/"));
    let page = req.uri().path().starts_with("/simple/");
    let mut resp = next.run(req).await;
    if !pip || resp.status() != StatusCode::BAD_GATEWAY {
        return resp;
    }
    if !page {
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    }
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| "TUF verification failed".into());
    let ctype = format!("text/plain; tufpi-refused=\"{}\"", reason.replace('"', "'"));
    if let Ok(v) = axum::http::HeaderValue::from_str(&ctype) {
        *resp.status_mut() = StatusCode::OK;
        resp.extensions_mut().remove::<hyper::ext::ReasonPhrase>();
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, v);
    }
    resp
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

async fn health(State(app): State<Arc<App>>) -> Response {
    let t = app.trust.clone();
    match tokio::task::spawn_blocking(move || t.status()).await {
        Ok((true, line)) => text(StatusCode::OK, &format!("ok: {line}\n")),
        Ok((false, line)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("failing: {line}\n"),
        ),
        Err(e) => ProxyError::Internal(e.to_string()).into_response(),
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
    let location = match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    };
    match HeaderValue::try_from(location) {
        Ok(v) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, v)]).into_response(),
        Err(_) => ProxyError::NotFound("Not found".into()).into_response(),
    }
}

fn bad_name(project: &str) -> ProxyError {
    ProxyError::NotFound(format!(
        "{:?} is not a valid project name",
        crate::error::one_line(project, 100)
    ))
}

async fn project_redirect(Path(project): Path<String>, req: Request) -> Response {
    match pages::normalize(&project) {
        Some(norm) => moved(format!("/simple/{norm}/"), req.uri().query()),
        None => bad_name(&project).into_response(),
    }
}

async fn project_page(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ProxyError> {
    let norm = pages::normalize(&project).ok_or_else(|| bad_name(&project))?;
    if norm != project {
        return Ok(moved(format!("/simple/{norm}/"), req.uri().query()));
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    // An unescaped '+' in `?format=` arrives as a space: take it back.
    let format = query.get("format").map(|f| f.replace(' ', "+"));
    let (kind, content_type) = pages::negotiate(accept, format.as_deref()).ok_or_else(|| {
        ProxyError::NotAcceptable(format!(
            "Not acceptable: this proxy serves {}, {} and text/html",
            pages::JSON_TYPE,
            pages::HTML_TYPE
        ))
    })?;
    let page = verified_page(&app, norm).await?;
    let body = match kind {
        Format::Html => page.html(),
        Format::Json => page.json(),
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
    let target = pages::page_target(&project);
    let t = app.trust.clone();
    let path = target.clone();
    let resolved = tokio::task::spawn_blocking(move || t.lookup(&path, Freshness::Page))
        .await
        .map_err(|e| ProxyError::Internal(e.to_string()))??
        .ok_or_else(|| {
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
    let key = (target.clone(), digest);
    if let Some(p) = lock(&app.pages).get(&key) {
        return Ok(p.clone());
    }
    let t = app.trust.clone();
    let upstream = t.upstream().clone();
    let page_url = format!("{}{target}", upstream.target_base);
    let page = tokio::task::spawn_blocking(move || {
        let bytes = t.fetch_verified(&resolved)?;
        // Signed, yet not a page we can read: refuse it whole rather than guess.
        pages::rewrite(&bytes, &page_url, &upstream.target_base)
            .map_err(|e| ProxyError::Verification(format!("target {target:?} verified, but {e}")))
    })
    .await
    .map_err(|e| ProxyError::Internal(e.to_string()))??;
    if !page.dropped.is_empty() {
        warn!(
            project = page.name(),
            files = ?page.dropped,
            "left out files whose URL is outside the target base (they cannot be verified)"
        );
    }
    let page = Arc::new(page);
    let mut cache = lock(&app.pages);
    if cache.len() >= PAGE_CACHE {
        cache.clear();
    }
    cache.insert(key, page.clone());
    Ok(page)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Any other GET path is a target path (`/packages/…`, `….metadata`): verified, then served.
async fn target_file(State(app): State<Arc<App>>, req: Request) -> Result<Response, ProxyError> {
    if req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "read-only proxy\n"));
    }
    let path = pages::target_of_request(req.uri().path())
        .ok_or_else(|| ProxyError::NotFound("Not found".into()))?;
    let data = app.files.get(&app.trust, path.clone()).await?;
    let content_type = if path.ends_with(".metadata") {
        "text/plain; charset=utf-8"
    } else if path.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        data,
    )
        .into_response())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Run the proxy until interrupted.
pub fn run(opts: ProxyOptions) -> Result<(), ProxyError> {
    let upstream = base_url(&opts.upstream, "upstream")?;
    let metadata_url = base_url(
        opts.metadata_url
            .as_deref()
            .unwrap_or(&format!("{upstream}metadata/")),
        "metadata URL",
    )?;
    let target_base = base_url(
        opts.target_base.as_deref().unwrap_or(&upstream),
        "target base URL",
    )?;
    let root = std::fs::read(&opts.root)
        .map_err(|e| ProxyError::Config(format!("reading {}: {e}", opts.root.display())))?;
    let config = UpdaterConfig {
        fetch_timeout: opts.fetch_timeout,
        ..UpdaterConfig::default()
    };
    let trust = Arc::new(Trust::open(
        &opts.cache_dir.join("metadata"),
        &root,
        Upstream {
            metadata_url: metadata_url.clone(),
            target_base: target_base.clone(),
        },
        opts.refresh_interval,
        config,
    )?);
    let files = FileCache::open(&opts.cache_dir.join("files"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tufpi-proxy")
        .build()
        .map_err(|e| ProxyError::Internal(format!("starting the runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&opts.listen)
            .await
            .map_err(|e| ProxyError::Config(format!("listening on {}: {e}", opts.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ProxyError::Internal(format!("reading the bound address: {e}")))?;
        // A first refresh says at once whether the upstream and the root fit; a failure is
        // reported and retried on the next request, not fatal.
        let t = trust.clone();
        match tokio::task::spawn_blocking(move || t.refresh()).await {
            Ok(Ok(())) => info!(%metadata_url, "trusted metadata refreshed"),
            Ok(Err(e)) => warn!("first refresh: {e}"),
            Err(e) => return Err(ProxyError::Internal(e.to_string())),
        }
        let app = Arc::new(App {
            trust,
            files,
            pages: Mutex::new(HashMap::new()),
        });
        let base = format!("http://{addr}");
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "tufpi proxy of {target_base} listening on {base}/ (pip install --index-url {base}/simple/ PROJECT | uv pip install --index-url {base}/simple/ PROJECT)"
            );
            let _ = out.flush();
        }
        // Small responses go out at once, not after the client's delayed ACK (Nagle).
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| ProxyError::Internal(format!("serving: {e}")))?;
        info!("stopped");
        Ok(())
    })
}
