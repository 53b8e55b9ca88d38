//! Proxy errors and the HTTP answers they become: a failed TUF check or an upstream that
//! cannot deliver what the metadata lists is a 502 with a one-line reason (also the HTTP
//! reason phrase, which is what installers print); something not in signed metadata is 404.
//! Every URL in an error text loses its userinfo and query (`tufpi_client::redact`):
//! upstream credentials never reach a client or a log.

use std::fmt;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tufpi_client::{redact, ClientError, FetchError};

/// Why a request could not be answered with verified content.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// A TUF check failed: the role or target, the check and the values.
    #[error("TUF verification failed: {0}")]
    Verification(Reason),
    /// The upstream could not deliver (unreachable, timed out, missing a listed file).
    #[error("upstream failed: {0}")]
    Upstream(Reason),
    /// Not in the signed metadata (or no such route).
    #[error("{0}")]
    NotFound(String),
    /// No representation the client accepts.
    #[error("{0}")]
    NotAcceptable(String),
    /// A local failure (cache directory, runtime).
    #[error("internal error: {0}")]
    Internal(Reason),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
}

/// What failed: the TUF client's error, kept typed (shared: a download's outcome goes to
/// every request waiting for it), or the proxy's own words. Shown with every URL redacted.
#[derive(Debug, Clone)]
pub enum Reason {
    /// The proxy's own words.
    Text(String),
    /// The TUF client's error, after what the proxy was doing (if it says).
    Client {
        /// What the proxy was doing, e.g. `target "x"`.
        context: Option<String>,
        /// What the client refused or could not fetch.
        error: Arc<ClientError>,
    },
}

impl Reason {
    /// The client's error, if the client failed.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            Reason::Text(_) => None,
            Reason::Client { error, .. } => Some(error),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Text(t) => f.write_str(&redact(t)),
            Reason::Client {
                context: None,
                error,
            } => f.write_str(&redact(&error.to_string())),
            Reason::Client {
                context: Some(c),
                error,
            } => f.write_str(&redact(&format!("{c}: {error}"))),
        }
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason::Text(text)
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::Text(text.to_string())
    }
}

impl ProxyError {
    /// Sort a client error: transport trouble is the upstream's, everything else a failed
    /// check (an oversized file is a refused check, not a transport failure).
    /// A metadata file the upstream does not have (404 during a refresh) is the upstream's
    /// failure too. The error is kept as it is; its text is shown redacted.
    pub fn from_client(e: ClientError) -> ProxyError {
        ProxyError::from_client_in(None, e)
    }

    /// [`ProxyError::from_client`], the error said to have happened in `context`.
    pub fn from_client_in(context: Option<String>, e: ClientError) -> ProxyError {
        let sort: fn(Reason) -> ProxyError = match &e {
            ClientError::Fetch(
                FetchError::Transport { .. }
                | FetchError::Timeout { .. }
                | FetchError::Status { .. }
                | FetchError::NotFound { .. },
            ) => ProxyError::Upstream,
            ClientError::Io { .. } | ClientError::Config(_) | ClientError::Order(_) => {
                ProxyError::Internal
            }
            _ => ProxyError::Verification,
        };
        sort(Reason::Client {
            context,
            error: Arc::new(e),
        })
    }

    /// The TUF client's error behind this one, if any.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            ProxyError::Verification(r) | ProxyError::Upstream(r) | ProxyError::Internal(r) => {
                r.client_error()
            }
            _ => None,
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Verification(_) | ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ProxyError::Internal(_) | ProxyError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// `text` as one line of visible ASCII, at most `max` bytes: fit for an HTTP reason phrase
/// (no CR/LF can ever split the response) and for a log line.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.len() > max {
        out.truncate(max.saturating_sub(3));
        out.push_str("...");
    }
    out
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Redacted once more: whatever built the error, no credentials leave.
        let line = one_line(&redact(&self.to_string()), 1000);
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "{line}");
        } else {
            tracing::debug!(status = status.as_u16(), "{line}");
        }
        let mut resp = (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            format!("{line}\n"),
        )
            .into_response();
        // uv (and pip, for 4xx) print the reason phrase, not the body: put the reason there.
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(one_line(&line, 400)) {
            resp.extensions_mut().insert(phrase);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_client::redact_url;

    #[test]
    fn reasons_are_one_short_line() {
        assert_eq!(one_line("a\r\nb\té", 100), "a??b??");
        let long = "x".repeat(50);
        assert_eq!(one_line(&long, 10), "xxxxxxx...");
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        let e = ClientError::Fetch(FetchError::Status {
            url: "https://user:secret@index.test/metadata/timestamp.json?token=abc#x".into(),
            status: 500,
        });
        let p = ProxyError::from_client(e);
        assert!(matches!(p, ProxyError::Upstream(_)));
        let text = p.to_string();
        assert!(!text.contains("secret") && !text.contains("user") && !text.contains("abc"));
        assert!(text.contains("https://index.test/metadata/timestamp.json: HTTP status 500"));
        assert_eq!(
            redact("a \"http://u:p@h:81/x?q=1\", then file:///tmp/y and x://a@b/c?d"),
            "a \"http://h:81/x\", then file:///tmp/y and x://b/c"
        );
        assert_eq!(redact("no urls :// here"), "no urls :// here");
        assert_eq!(redact_url("nonsense://[::1@x/?a"), "nonsense://x/");
        let body = ProxyError::Upstream("http://a:b@h/ failed".into()).into_response();
        let reason = body.extensions().get::<hyper::ext::ReasonPhrase>().unwrap();
        assert_eq!(reason.as_bytes(), b"upstream failed: http://h/ failed");
    }

    #[test]
    fn client_errors_stay_typed() {
        let e = ClientError::Fetch(FetchError::Status {
            url: "https://index.test/metadata/timestamp.json".into(),
            status: 503,
        });
        let p = ProxyError::from_client_in(Some("refreshing".into()), e);
        assert!(matches!(
            p.client_error(),
            Some(ClientError::Fetch(FetchError::Status { status: 503, .. }))
        ));
        assert_eq!(
            p.to_string(),
            "upstream failed: refreshing: https://index.test/metadata/timestamp.json: HTTP status 503"
        );
        // Shared, not copied, by every clone (a download's outcome goes to many requests).
        let q = p.clone();
        assert!(std::ptr::eq(
            p.client_error().unwrap(),
            q.client_error().unwrap()
        ));
        assert!(ProxyError::Upstream("x".into()).client_error().is_none());
    }

    #[test]
    fn statuses() {
        assert_eq!(
            ProxyError::Verification("x".into()).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ProxyError::NotFound("x".into()).status(),
            StatusCode::NOT_FOUND
        );
        let too_long = ClientError::Fetch(FetchError::TooLong {
            url: "u".into(),
            max_length: 1,
        });
        assert!(matches!(
            ProxyError::from_client(too_long),
            ProxyError::Verification(_)
        ));
        let missing = ClientError::Fetch(FetchError::NotFound {
            url: "u".into(),
            status: 404,
        });
        assert!(matches!(
            ProxyError::from_client(missing),
            ProxyError::Upstream(_)
        ));
    }
}
