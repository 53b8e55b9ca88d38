//! The routes: `/simple/` pages with PEP 691 content negotiation, their TUF target names
//! (also hash-prefixed, as consistent-snapshot clients fetch them), `/packages/…` files,
//! `/metadata/…` TUF metadata, `POST /legacy/` uploads, `POST /manage/project/<name>/<action>`
//! (yank, unyank, remove) and `/health`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tufpi_simple::targets::{
    is_hex64, metadata_path, package_path, parse_package_path, split_hash_prefix, split_metadata,
};
use tufpi_simple::{moved_permanently, negotiate_request, PageKind};

use crate::error::IndexError;
use crate::gzip;
use crate::index::Index;
use crate::manage;
use crate::names::normalize;
use crate::pages::{self, HTML_TYPE, JSON_TYPE};
use crate::storage::{serve::guess_type, Served, Stored};
use crate::upload::{self, FORM_SLACK};

/// The index's routes over `index`.
pub fn router(index: Arc<Index>) -> Router {
    let limit = (index.max_upload() + FORM_SLACK) as usize;
    Router::new()
        .route("/", get(home))
        .route("/simple", get(|| async { moved("/simple/".into(), None) }))
        .route("/simple/", get(simple_index))
        .route("/simple/{project}", get(project_redirect))
        .route("/simple/{project}/", get(project_page))
        .route("/simple/{project}/{name}", get(project_target))
        .route("/packages/{*rest}", get(package_file))
        .route("/metadata/{name}", get(metadata_file))
        .route("/health", get(health))
        .route(
            "/manage/project/{project}/{action}",
            post(manage_project).layer(DefaultBodyLimit::max(64 << 10)),
        )
        .route(
            "/legacy/",
            post(upload::upload).layer(DefaultBodyLimit::max(limit)),
        )
        .route(
            "/legacy",
            post(upload::upload).layer(DefaultBodyLimit::max(limit)),
        )
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(index)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
) -> Result<T, IndexError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IndexError::Internal(e.to_string()))?
}

fn not_found(what: impl Into<String>) -> IndexError {
    IndexError::refused(StatusCode::NOT_FOUND, what)
}

/// A page representation: which rendering, and the Content-Type to send.
type Negotiated = (PageKind, &'static str);

fn negotiated(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Negotiated, IndexError> {
    negotiate_request(headers, query.get("format").map(String::as_str)).ok_or_else(|| {
        IndexError::refused(
            StatusCode::NOT_ACCEPTABLE,
            format!("Not acceptable: this index serves {JSON_TYPE}, {HTML_TYPE} and text/html"),
        )
    })
}

fn page_response(bytes: Vec<u8>, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::VARY, HeaderValue::from_static("Accept")),
        ],
        bytes,
    )
        .into_response()
}

async fn home() -> Response {
    page_response(
        b"tufpi index: /simple/ (PEP 503/691), /legacy/ (uploads), /metadata/ (TUF), /health\n\
POST /manage/project/<name>/{yank,unyank,remove} with basic auth __token__:TOKEN and a form\n\
or JSON body: filename=F or version=V (yank: optional reason=R; remove of the whole project:\n\
confirm=<name>). Answers JSON: changed and unchanged filenames.\n"
            .to_vec(),
        "text/plain; charset=utf-8",
    )
}

async fn simple_index(
    State(index): State<Arc<Index>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, IndexError> {
    let (kind, ct) = negotiated(&headers, &query)?;
    let projects = blocking(move || index.projects()).await?;
    let body = match kind {
        PageKind::Html => pages::index_html(&projects),
        PageKind::Json => pages::index_json(&projects),
    };
    Ok(page_response(body, ct))
}

/// A 301 Moved Permanently to `path` (with the request's query, if any).
fn moved(path: String, query: Option<&str>) -> Response {
    moved_permanently(path, query).unwrap_or_else(|| not_found("Not found").into_response())
}

async fn project_redirect(Path(project): Path<String>, req: Request) -> Response {
    moved(
        format!("/simple/{}/", normalize(&project)),
        req.uri().query(),
    )
}

/// A stored page and its SHA-256.
type StoredPage = (Stored, String);

/// The stored page with SHA-256 `sha`: its local file or its bytes (through the cache).
fn read_page(index: &Index, sha: String) -> Result<StoredPage, IndexError> {
    let stored = index
        .storage()
        .read_page(&sha)?
        .ok_or_else(|| not_found("No such page"))?;
    Ok((stored, sha))
}

/// `project`'s current page of `kind`, or why not.
async fn current_page(
    index: Arc<Index>,
    project: String,
    kind: PageKind,
) -> Result<StoredPage, IndexError> {
    blocking(move || {
        let p = index
            .project(&project)?
            .ok_or_else(|| not_found(format!("No such project: {project}")))?;
        let sha = match kind {
            PageKind::Html => p.html_sha256,
            PageKind::Json => p.json_sha256,
        }
        .ok_or_else(|| not_found(format!("No such project: {project}")))?;
        read_page(&index, sha)
    })
    .await
}

/// A stored page: streamed from its file (a page can be large: never read whole), or its
/// bytes from the store's cache.
async fn page_file(
    (stored, sha): StoredPage,
    content_type: &'static str,
    req: Request,
    cache: &'static str,
) -> Result<Response, IndexError> {
    let served = Served {
        content_type,
        cache_control: cache,
        vary: Some("Accept"),
        etag: Some(sha),
    };
    stored.respond(req, &served).await
}

async fn project_page(
    State(index): State<Arc<Index>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, IndexError> {
    let norm = normalize(&project);
    if norm != project {
        return Ok(moved(format!("/simple/{norm}/"), req.uri().query()));
    }
    let (kind, ct) = negotiated(&headers, &query)?;
    page_file(current_page(index, norm, kind).await?, ct, req, "no-cache").await
}

/// `/simple/<project>/vnd.pypi.simple.v1.{html,json}` (the current page) and
/// `/simple/<project>/<sha256 or blake2b>.vnd.pypi.simple.v1.{html,json}` (any page the
/// project ever had: a snapshot may still name it).
async fn project_target(
    State(index): State<Arc<Index>>,
    Path((project, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, IndexError> {
    for kind in PageKind::ALL {
        let base = kind.target_basename();
        if name == base {
            let page = current_page(index, project, kind).await?;
            return page_file(page, kind.media_type(), req, "no-cache").await;
        }
        let Some((digest, _)) = split_hash_prefix(&name).filter(|(_, rest)| *rest == base) else {
            continue;
        };
        if !is_hex64(digest) {
            break;
        }
        let digest = digest.to_string();
        let page = blocking(move || {
            let sha = index
                .page(&project, kind, &digest)?
                .ok_or_else(|| not_found("No such page"))?;
            read_page(&index, sha)
        })
        .await?;
        let immutable = "public, max-age=31536000, immutable";
        return page_file(page, kind.media_type(), req, immutable).await;
    }
    Err(not_found("Not found"))
}

/// Resolve `/packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<name>` to a stored file: a distribution,
/// its `.metadata`, or either under `<sha256 or blake2b>.<name>`. Returns its target path
/// and SHA-256.
pub(crate) fn resolve_package(index: &Index, rest: &str) -> Result<(String, String), IndexError> {
    let nf = || not_found("No such file");
    let path = format!("packages/{rest}");
    let Some((b2, name)) = parse_package_path(&path) else {
        return Err(nf());
    };
    let lookup = |name: &str| -> Result<Option<(String, [String; 2])>, IndexError> {
        let (file, is_meta) = split_metadata(name);
        let Some(row) = index.file(file)? else {
            return Ok(None);
        };
        if row.path != package_path(&b2, file) {
            return Ok(None);
        }
        let d = if is_meta {
            match row.metadata {
                Some(m) => m,
                None => return Ok(None),
            }
        } else {
            row.digests
        };
        let target = if is_meta {
            metadata_path(&row.path)
        } else {
            row.path
        };
        Ok(Some((target, [d.sha256, d.blake2b])))
    };
    if let Some((target, [sha256, _])) = lookup(name)? {
        return Ok((target, sha256));
    }
    if let Some((digest, base)) = split_hash_prefix(name) {
        if is_hex64(digest) {
            if let Some((target, hashes)) = lookup(base)? {
                if hashes.iter().any(|h| h == digest) {
                    let [sha256, _] = hashes;
                    return Ok((target, sha256));
                }
            }
        }
    }
    Err(nf())
}

async fn serve_file(
    path: std::path::PathBuf,
    req: Request,
    cache: &'static str,
) -> Result<Response, IndexError> {
    let mut resp = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| IndexError::Internal(e.to_string()))?
        .map(Body::new);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(resp)
}

async fn package_file(
    State(index): State<Arc<Index>>,
    Path(rest): Path<String>,
    req: Request,
) -> Result<Response, IndexError> {
    if let Some(base) = index.scale_out().and_then(|s| s.files_url.clone()) {
        return crate::metadata::files_redirect(index, rest, base).await;
    }
    let (stored, target, sha256) = blocking(move || {
        let (target, sha256) = resolve_package(&index, &rest)?;
        let stored = index
            .storage()
            .read_file(&target)?
            .ok_or_else(|| not_found("No such file"))?;
        Ok((stored, target, sha256))
    })
    .await?;
    let served = Served {
        content_type: guess_type(&target),
        cache_control: "public, max-age=31536000, immutable",
        vary: None,
        etag: Some(sha256),
    };
    stored.respond(req, &served).await
}

async fn metadata_file(
    State(index): State<Arc<Index>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, IndexError> {
    let ok = name.ends_with(".json")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(not_found("No such metadata file"));
    }
    // Versioned files never change; timestamp.json (and any unversioned name) does.
    let versioned = name
        .split('.')
        .next()
        .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()));
    let cache = if versioned {
        "public, max-age=3600"
    } else {
        "no-cache"
    };
    if let Some(so) = index.scale_out().cloned() {
        return crate::metadata::serve(index, so, name, versioned, cache, req).await;
    }
    let path = index.metadata_dir().join(&name);
    if !path.is_file() {
        return Err(not_found("No such metadata file"));
    }
    if gzip::accepts_gzip(req.headers()) {
        let gz_dir = index.dir().join("cache").join("metadata-gz");
        let src = path.clone();
        let gz = blocking(move || gzip::compressed(&gz_dir, &name, &src, versioned)).await?;
        if let Some(bytes) = gz {
            return Ok(gzip::response(bytes, cache));
        }
    }
    let mut resp = serve_file(path, req, cache).await?;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(resp)
}

/// `POST /manage/project/<project>/<yank|unyank|remove>`, authenticated like uploads with a
/// token for that project (or any project).
async fn manage_project(
    State(index): State<Arc<Index>>,
    Path((project, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, IndexError> {
    let token = upload::basic_auth_token(&headers)?;
    let idx = index.clone();
    let scope = blocking(move || idx.read(|db| db.token_scope(&token)))
        .await?
        .ok_or_else(|| {
            IndexError::refused(StatusCode::FORBIDDEN, "Invalid or unknown upload token")
        })?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let fields = manage::request_fields(ct, &body)?;
    let op = manage::operation_from_request(&project, &action, &fields)?;
    let norm = normalize(&project);
    if let Some(only) = scope.project {
        if only != norm {
            return Err(IndexError::refused(
                StatusCode::FORBIDDEN,
                format!("This token may only manage project {only:?}, not {norm:?}"),
            ));
        }
    }
    let out = blocking(move || index.manage(&op).map(|o| (op, o))).await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        format!("{:#}\n", manage::outcome_json(&out.0.action, &out.1)),
    )
        .into_response())
}

async fn health(State(index): State<Arc<Index>>) -> Result<Response, IndexError> {
    let (ok, report) = blocking(move || index.health()).await?;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_simple::negotiate;

    #[test]
    fn negotiation_follows_pep_691() {
        let j = Some((PageKind::Json, JSON_TYPE));
        let h = Some((PageKind::Html, HTML_TYPE));
        let t = Some((PageKind::Html, "text/html; charset=utf-8"));
        assert_eq!(negotiate(None, None), t);
        assert_eq!(negotiate(Some("*/*"), None), t);
        assert_eq!(negotiate(Some(JSON_TYPE), None), j);
        // pip's and uv's Accept header.
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(negotiate(Some(pip), None), j);
        assert_eq!(
            negotiate(
                Some("application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json"),
                None
            ),
            h
        );
        assert_eq!(
            negotiate(
                Some("text/html;q=0.5, application/vnd.pypi.simple.latest+json;q=0.6"),
                None
            ),
            j
        );
        assert_eq!(negotiate(Some("application/json"), None), None);
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json;q=0"), None),
            None
        );
        // ?format= wins over Accept.
        assert_eq!(negotiate(Some(JSON_TYPE), Some(HTML_TYPE)), h);
        assert_eq!(negotiate(Some("text/html"), Some(JSON_TYPE)), j);
    }
}
