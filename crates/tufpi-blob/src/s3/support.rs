//! Helpers of the S3 store: endpoint handling, object attributes and error classification.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};
use object_store::{Attribute, AttributeValue, Attributes, ObjectMeta};

use crate::{cache_control, BlobError, BlobMeta, Etag};

pub(super) fn env_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

/// Whether `endpoint` (`http://host[:port][/…]`) names a loopback host.
pub(super) fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `endpoint` without any `user:password@` (for logs).
pub(super) fn redact_endpoint(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", endpoint));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or("");
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// The Content-Type an object is stored with, from its name.
pub fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "whl" | "zip" | "egg" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "bz2" => "application/x-bzip2",
        "metadata" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub(super) fn attributes(key: &str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(
        Attribute::CacheControl,
        AttributeValue::from(cache_control(key)),
    );
    a.insert(
        Attribute::ContentType,
        AttributeValue::from(content_type(key)),
    );
    a
}

/// Every message along `e`'s source chain, joined (for classification and reports).
pub(super) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

/// Whether `e` is a transport failure, a timeout, throttling or a server error.
pub(super) fn transient(e: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = cur {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            if matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            ) {
                return true;
            }
        }
        cur = s.source();
    }
    // object_store does not export its status-carrying error type: read the status it prints.
    let text = chain(e);
    text.contains("status code: 5")
        || text.contains("status code: 429")
        || [
            "SlowDown",
            "ServiceUnavailable",
            "InternalError",
            "RequestTimeout",
        ]
        .iter()
        .any(|c| text.contains(c))
}

pub(super) fn truncate(mut s: String) -> String {
    const MAX: usize = 600;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Map an `object_store` error that no caller handles specially.
pub(super) fn classify(what: String, e: object_store::Error) -> BlobError {
    let detail = truncate(chain(&e));
    if transient(&e) {
        BlobError::Unavailable { what, detail }
    } else {
        BlobError::Other { what, detail }
    }
}

pub(super) fn meta_of(key: String, m: ObjectMeta) -> BlobMeta {
    BlobMeta {
        key,
        size: m.size,
        modified: m.last_modified,
        etag: m.e_tag.map(Etag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_redaction() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://localhost"));
        assert!(is_loopback("http://[::1]:9000/x"));
        assert!(is_loopback("http://u:p@127.0.0.1:1"));
        assert!(!is_loopback("http://minio:9000"));
        assert!(!is_loopback("https://s3.amazonaws.com"));
        assert_eq!(redact_endpoint("https://u:p@host:1/x"), "https://host:1/x");
        assert_eq!(redact_endpoint("http://host"), "http://host");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("metadata/1.root.json"), "application/json");
        assert_eq!(content_type("p/x-1.0-py3-none-any.whl"), "application/zip");
        assert_eq!(content_type("p/x-1.0.tar.gz"), "application/gzip");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
