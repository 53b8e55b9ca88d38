//! Proxy errors and the HTTP answers they become: a failed TUF check or an upstream that
//! cannot deliver what the metadata lists is a 502 with a one-line reason (also the HTTP
//! reason phrase, which is what installers print); something not in signed metadata is 404.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tufpi_client::{ClientError, FetchError};

/// Why a request could not be answered with verified content.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// A TUF check failed: the role or target, the check and the values.
    #[error("TUF verification failed: {0}")]
    Verification(String),
    /// The upstream could not deliver (unreachable, timed out, missing a listed file).
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// Not in the signed metadata (or no such route).
    #[error("{0}")]
    NotFound(String),
    /// No representation the client accepts.
    #[error("{0}")]
    NotAcceptable(String),
    /// A local failure (cache directory, runtime).
    #[error("internal error: {0}")]
    Internal(String),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
}

impl ProxyError {
    /// Sort a client error: transport trouble is the upstream's, everything else a failed
    /// check (an oversized file is a refused check, not a transport failure).
    pub fn from_client(e: &ClientError) -> ProxyError {
        match e {
            ClientError::Fetch(
                f @ (FetchError::Transport { .. }
                | FetchError::Timeout { .. }
                | FetchError::Status { .. }),
            ) => ProxyError::Upstream(f.to_string()),
            ClientError::Io { .. } | ClientError::Config(_) | ClientError::Order(_) => {
                ProxyError::Internal(e.to_string())
            }
            other => ProxyError::Verification(other.to_string()),
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
        let line = one_line(&self.to_string(), 1000);
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

    #[test]
    fn reasons_are_one_short_line() {
        assert_eq!(one_line("a\r\nb\té", 100), "a??b??");
        let long = "x".repeat(50);
        assert_eq!(one_line(&long, 10), "xxxxxxx...");
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
            ProxyError::from_client(&too_long),
            ProxyError::Verification(_)
        ));
    }
}
