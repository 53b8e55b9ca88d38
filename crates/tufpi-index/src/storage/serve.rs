//! Serving a stored page or file: a local one with [`ServeFile`] (sendfile, Range,
//! If-Modified-Since, HEAD), bytes from a remote store (through the cache) with the same
//! headers and a single byte Range. Both carry a strong ETag, the content hash, and answer
//! a matching If-None-Match with 304.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tufpi_blob::Bytes;

use crate::error::IndexError;

/// A stored page or file, ready to serve.
#[derive(Debug, Clone)]
pub enum Stored {
    /// A file of a local store (opened when served).
    Local(PathBuf),
    /// The bytes of a remote store's object.
    Bytes(Bytes),
}

/// How a stored blob is served.
#[derive(Debug, Clone)]
pub struct Served {
    /// Content-Type.
    pub content_type: &'static str,
    /// Cache-Control.
    pub cache_control: &'static str,
    /// Vary, if the route negotiates.
    pub vary: Option<&'static str>,
    /// A hex content hash of the bytes: the strong ETag of a remote blob.
    pub etag: Option<String>,
}

/// The Content-Type a file named `name` is served with (as [`ServeFile`] guesses it).
pub fn guess_type(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

impl Stored {
    /// The response to `req` (GET or HEAD) for this blob.
    pub async fn respond(self, req: Request, served: &Served) -> Result<Response, IndexError> {
        match self {
            Stored::Local(path) => serve_local(path, req, served).await,
            Stored::Bytes(bytes) => bytes_response(bytes, req.headers(), served),
        }
    }
}

fn set_common(h: &mut HeaderMap, served: &Served) {
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(served.cache_control),
    );
    if let Some(v) = served.vary {
        h.insert(header::VARY, HeaderValue::from_static(v));
    }
}

/// The strong ETag header of `served`, if it names a content hash.
fn etag_header(served: &Served) -> Result<Option<HeaderValue>, IndexError> {
    served
        .etag
        .as_deref()
        .map(|e| HeaderValue::from_str(&format!("\"{e}\"")))
        .transpose()
        .map_err(bad_header)
}

/// A 304 Not Modified if the request's If-None-Match names the blob's ETag.
fn not_modified(req: &HeaderMap, served: &Served) -> Result<Option<Response>, IndexError> {
    let (Some(e), Some(inm)) = (
        served.etag.as_deref(),
        header_str(req, header::IF_NONE_MATCH),
    ) else {
        return Ok(None);
    };
    if !etag_listed(inm, e) {
        return Ok(None);
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    let h = resp.headers_mut();
    set_common(h, served);
    if let Some(v) = etag_header(served)? {
        h.insert(header::ETAG, v);
    }
    Ok(Some(resp))
}

async fn serve_local(path: PathBuf, req: Request, served: &Served) -> Result<Response, IndexError> {
    // The content hash validates as well as the file's time, and costs no open.
    if let Some(resp) = not_modified(req.headers(), served)? {
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            return Ok(resp);
        }
    }
    let mut resp = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| IndexError::Internal(e.to_string()))?
        .map(Body::new);
    let found = resp.status().is_success();
    let h = resp.headers_mut();
    set_common(h, served);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(served.content_type),
    );
    if found {
        if let Some(v) = etag_header(served)? {
            h.insert(header::ETAG, v);
        }
    }
    Ok(resp)
}

/// A byte range asked for: satisfiable (first and last byte), unsatisfiable, or none to
/// honour (absent, several ranges, or not understood: the whole blob is sent, as RFC 9110
/// allows).
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn range_ask(value: &str, len: u64) -> RangeAsk {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), b.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(b) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if len == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part(len.saturating_sub(n), len - 1),
            None => RangeAsk::Whole,
        },
        (false, bempty) => {
            let Some(first) = num(a) else {
                return RangeAsk::Whole;
            };
            let last = if bempty {
                u64::MAX
            } else {
                match num(b) {
                    Some(l) if l >= first => l,
                    _ => return RangeAsk::Whole,
                }
            };
            if first >= len {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(first, last.min(len - 1))
            }
        }
        (true, true) => RangeAsk::Whole,
    }
}

/// Whether an If-None-Match (or If-Range) value names `etag` (weak comparison for
/// If-None-Match, as RFC 9110 says; `*` matches anything).
fn etag_listed(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == etag)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bad_header(e: impl std::fmt::Display) -> IndexError {
    IndexError::Internal(format!("building a response: {e}"))
}

/// The response for `bytes` to a request with headers `req`.
fn bytes_response(bytes: Bytes, req: &HeaderMap, served: &Served) -> Result<Response, IndexError> {
    if let Some(resp) = not_modified(req, served)? {
        return Ok(resp);
    }
    let len = bytes.len() as u64;
    let etag = served.etag.as_deref();
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    set_common(h, served);
    if let Some(v) = etag_header(served)? {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(served.content_type),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // A Range is honoured only for the version the client has (If-Range: the same ETag).
    let if_range_ok = match header_str(req, header::IF_RANGE) {
        None => true,
        Some(v) => etag.is_some_and(|e| v.trim().trim_matches('"') == e),
    };
    let ask = match header_str(req, header::RANGE) {
        Some(r) if if_range_ok => range_ask(r, len),
        _ => RangeAsk::Whole,
    };
    let (status, body) = match ask {
        RangeAsk::Whole => (StatusCode::OK, bytes),
        RangeAsk::Part(first, last) => {
            let range = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}"))
                .map_err(bad_header)?;
            h.insert(header::CONTENT_RANGE, range);
            // Within bounds: first <= last < len, checked by range_ask.
            let part = bytes.slice(first as usize..=last as usize);
            (StatusCode::PARTIAL_CONTENT, part)
        }
        RangeAsk::Unsatisfiable => {
            let range = HeaderValue::from_str(&format!("bytes */{len}")).map_err(bad_header)?;
            h.insert(header::CONTENT_RANGE, range);
            (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new())
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    *resp.status_mut() = status;
    *resp.body_mut() = Body::from(body);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(range_ask("bytes=0-3", 10), Part(0, 3));
        assert_eq!(range_ask("bytes=4-", 10), Part(4, 9));
        assert_eq!(range_ask("bytes=4-100", 10), Part(4, 9));
        assert_eq!(range_ask("bytes=-3", 10), Part(7, 9));
        assert_eq!(range_ask("bytes=-30", 10), Part(0, 9));
        assert_eq!(range_ask("bytes=10-", 10), Unsatisfiable);
        assert_eq!(range_ask("bytes=-0", 10), Unsatisfiable);
        assert_eq!(range_ask("bytes=-1", 0), Unsatisfiable);
        assert_eq!(range_ask("bytes=0-1,3-4", 10), Whole);
        assert_eq!(range_ask("bytes=3-1", 10), Whole);
        assert_eq!(range_ask("items=0-1", 10), Whole);
        assert_eq!(range_ask("bytes=x-1", 10), Whole);
        assert_eq!(range_ask("bytes=-", 10), Whole);
    }

    #[test]
    fn etags() {
        assert!(etag_listed("\"ab\"", "ab"));
        assert!(etag_listed("\"x\", W/\"ab\"", "ab"));
        assert!(etag_listed("*", "ab"));
        assert!(!etag_listed("\"abc\"", "ab"));
    }

    #[test]
    fn types_as_serve_file_guesses_them() {
        assert_eq!(guess_type("x-1.0.tar.gz"), "application/gzip");
        assert_eq!(
            guess_type("x-1.0-py3-none-any.whl.metadata"),
            "application/octet-stream"
        );
    }
}
