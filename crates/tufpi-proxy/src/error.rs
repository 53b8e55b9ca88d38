//! Proxy errors and the HTTP answers they become: a failed TUF check or an upstream that
//! cannot deliver what the metadata lists is a 502 with a one-line reason (also the HTTP
//! reason phrase, which is what installers print); something not in signed metadata is 404.
//! Every URL in an error text loses its userinfo and query (`redact`): upstream credentials
//! never reach a client or a log.

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
    /// A metadata file the upstream does not have (404 during a refresh) is the upstream's
    /// failure too. URLs in the text are redacted.
    pub fn from_client(e: &ClientError) -> ProxyError {
        match e {
            ClientError::Fetch(
                f @ (FetchError::Transport { .. }
                | FetchError::Timeout { .. }
                | FetchError::Status { .. }
                | FetchError::NotFound { .. }),
            ) => ProxyError::Upstream(redact(&f.to_string())),
            ClientError::Io { .. } | ClientError::Config(_) | ClientError::Order(_) => {
                ProxyError::Internal(redact(&e.to_string()))
            }
            other => ProxyError::Verification(redact(&other.to_string())),
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

/// `url` without userinfo, query and fragment (unchanged if it does not parse, except that
/// anything between `://` and an `@` in its authority goes).
pub fn redact_url(url: &str) -> String {
    if let Ok(mut u) = url::Url::parse(url) {
        if u.has_host() {
            let _ = u.set_username("");
            let _ = u.set_password(None);
        }
        u.set_query(None);
        u.set_fragment(None);
        return u.to_string();
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// `text` with every URL in it (`scheme://…` up to whitespace or a quote) redacted by
/// `redact_url`: error texts of the fetchers carry the URLs they fetched.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: the ASCII letters, digits, `+`, `-`, `.` just before `://`.
        let start = rest[..i]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(j, c)| j + c.len_utf8());
        if start == i {
            // No scheme: not a URL.
            out.push_str(&rest[..i + 3]);
            rest = &rest[i + 3..];
            continue;
        }
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..start]);
        let token = &rest[start..end];
        // A trailing `:` or `,` is the sentence's, not the URL's.
        let trimmed = token.trim_end_matches([':', ',', ';', ')']);
        out.push_str(&redact_url(trimmed));
        out.push_str(&token[trimmed.len()..]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
        let p = ProxyError::from_client(&e);
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
        let missing = ClientError::Fetch(FetchError::NotFound {
            url: "u".into(),
            status: 404,
        });
        assert!(matches!(
            ProxyError::from_client(&missing),
            ProxyError::Upstream(_)
        ));
    }
}
