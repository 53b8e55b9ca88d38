//! The simple repository API bits that the index server and the verifying proxy share:
//! PEP 503 project names, the TUF target names of pages and files ([`targets`]), PEP 691
//! content negotiation, HTML escaping for PEP 503 pages, the redirect and shutdown plumbing
//! of serving them, and the hardened connection loop both serve with ([`conn`]).

pub mod conn;
pub mod targets;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use targets::PageKind;

/// Media type of PEP 691 JSON pages.
pub const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
/// Media type of PEP 691 HTML pages.
pub const HTML_TYPE: &str = "application/vnd.pypi.simple.v1+html";
/// The Content-Type of a plain `text/html` page.
pub const TEXT_HTML: &str = "text/html; charset=utf-8";

/// PEP 691 content negotiation over `Accept` (or a `?format=` value, which wins): the
/// highest-q supported type, the first listed on ties; HTML when nothing is asked for.
/// Returns the rendering and the Content-Type to send, or `None` if nothing offered fits.
pub fn negotiate(accept: Option<&str>, format: Option<&str>) -> Option<(PageKind, &'static str)> {
    let wanted = format.or(accept).map(str::trim).filter(|s| !s.is_empty());
    let Some(wanted) = wanted else {
        return Some((PageKind::Html, TEXT_HTML));
    };
    let mut best: Option<(f32, (PageKind, &'static str))> = None;
    for item in wanted.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let rep = match media.as_str() {
            JSON_TYPE | "application/vnd.pypi.simple.latest+json" => (PageKind::Json, JSON_TYPE),
            HTML_TYPE | "application/vnd.pypi.simple.latest+html" => (PageKind::Html, HTML_TYPE),
            "text/html" | "text/*" | "*/*" => (PageKind::Html, TEXT_HTML),
            _ => continue,
        };
        if q > 0.0 && !matches!(best, Some((bq, _)) if q <= bq) {
            best = Some((q, rep));
        }
    }
    best.map(|(_, r)| r)
}

/// [`negotiate`] for a request: its `Accept` header, and its `?format=` value if it has one
/// (an unescaped `+` in a query arrives as a space: taken back).
pub fn negotiate_request(
    headers: &HeaderMap,
    format: Option<&str>,
) -> Option<(PageKind, &'static str)> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = format.map(|f| f.replace(' ', "+"));
    negotiate(accept, format.as_deref())
}

/// PEP 503 normalised name: lowercase, each run of `-`, `_`, `.` replaced by one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    if sep {
        out.push('-');
    }
    out
}

/// Whether `name` is a valid project name (PEP 508: ASCII letters and digits, with `.`, `_`
/// and `-` inside but not at either end), at most 200 bytes.
pub fn valid_project_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 200
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter()
            .all(|c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
}

/// The PEP 503 normalised name of `name` if it is a valid project name
/// ([`valid_project_name`]), else `None`: nothing else can become a page's target path.
pub fn normalize_valid(name: &str) -> Option<String> {
    valid_project_name(name).then(|| normalize(name))
}

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The `Location` of a redirect to `path`, keeping the request's query (if any).
pub fn location(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

/// A 301 Moved Permanently to `path`, keeping the request's query ([`location`]); `None` if
/// that is not a valid header value.
pub fn moved_permanently(path: String, query: Option<&str>) -> Option<Response> {
    let to = HeaderValue::try_from(location(path, query)).ok()?;
    Some((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response())
}

/// Resolves on Ctrl-C or (Unix) SIGTERM: a server's cue to shut down gracefully.
pub async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let j = Some((PageKind::Json, JSON_TYPE));
        let h = Some((PageKind::Html, HTML_TYPE));
        assert_eq!(negotiate(None, None), Some((PageKind::Html, TEXT_HTML)));
        assert_eq!(negotiate(Some(JSON_TYPE), None), j);
        assert_eq!(
            negotiate(Some(&format!("{HTML_TYPE};q=0.2, {JSON_TYPE};q=0.9")), None),
            j
        );
        assert_eq!(negotiate(Some(JSON_TYPE), Some(HTML_TYPE)), h);
        assert_eq!(negotiate(Some("application/xml"), None), None);
        assert_eq!(negotiate(Some(&format!("{JSON_TYPE};q=0")), None), None);
    }

    #[test]
    fn requests_negotiate_and_redirect() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(JSON_TYPE));
        assert_eq!(
            negotiate_request(&h, None),
            Some((PageKind::Json, JSON_TYPE))
        );
        // `?format=application/vnd.pypi.simple.v1+html` unescaped: the `+` became a space.
        let spaced = HTML_TYPE.replace('+', " ");
        assert_eq!(
            negotiate_request(&h, Some(&spaced)),
            Some((PageKind::Html, HTML_TYPE))
        );
        assert_eq!(
            negotiate_request(&HeaderMap::new(), None),
            Some((PageKind::Html, TEXT_HTML))
        );
        let r = moved_permanently("/simple/a/".into(), Some("format=x")).unwrap();
        assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers()[header::LOCATION], "/simple/a/?format=x");
        assert!(moved_permanently("/a\nb".into(), None).is_none());
    }

    #[test]
    fn names() {
        assert_eq!(normalize("Foo.Bar__baz-1"), "foo-bar-baz-1");
        assert!(valid_project_name("a.b_c-d"));
        assert!(!valid_project_name("-a"));
        assert!(!valid_project_name("a b"));
        assert!(!valid_project_name(""));
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
        );
    }

    #[test]
    fn only_valid_names_normalize() {
        assert_eq!(
            normalize_valid("Foo__Bar.baz").as_deref(),
            Some("foo-bar-baz")
        );
        assert_eq!(normalize_valid("a").as_deref(), Some("a"));
        for bad in ["", "-a", "a-", "a/b", "..", "a b", "é"] {
            assert_eq!(normalize_valid(bad), None, "{bad}");
        }
    }
}
