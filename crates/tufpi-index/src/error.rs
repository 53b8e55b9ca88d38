//! Index errors: refusals (4xx, their message shown to the uploader) and internal failures.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tufpi_repo::RepoError;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The request is refused; the message says why (sent as the body and the reason phrase).
    #[error("{message}")]
    Refused {
        /// HTTP status (4xx).
        status: StatusCode,
        /// What the client did wrong, in one line.
        message: String,
    },
    /// The TUF repository failed.
    #[error("repository: {0}")]
    Repo(#[from] RepoError),
    /// The index database failed.
    #[error("index database: {0}")]
    Db(#[from] rusqlite::Error),
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A dependency cannot be reached now (PostgreSQL: connection refused, closed or timed
    /// out, a lock not had in time; the blob store: unreachable or overloaded): answered 503
    /// with Retry-After.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else that is the server's fault.
    #[error("{0}")]
    Internal(String),
}

impl From<tufpi_fs::Error> for IndexError {
    fn from(e: tufpi_fs::Error) -> IndexError {
        let (context, source) = e.into_parts();
        IndexError::Io { context, source }
    }
}

impl IndexError {
    /// A refusal with `status` and `message` (made one line: line breaks become spaces).
    pub fn refused(status: StatusCode, message: impl Into<String>) -> IndexError {
        let message: String = message.into();
        let message = if message.contains(['\r', '\n']) {
            message.replace(['\r', '\n'], " ")
        } else {
            message
        };
        IndexError::Refused { status, message }
    }

    /// A 400 Bad Request refusal.
    pub fn bad(message: impl Into<String>) -> IndexError {
        IndexError::refused(StatusCode::BAD_REQUEST, message)
    }

    /// Wrap an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> IndexError {
        IndexError::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            IndexError::Refused { status, .. } => *status,
            IndexError::Unavailable(_) | IndexError::Repo(RepoError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            IndexError::Repo(RepoError::Blob(b)) if b.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// How long a client told the database is unavailable waits before retrying, seconds.
const RETRY_AFTER_SECS: &str = "5";

/// A reason phrase carrying `message` (twine prints the reason phrase, as with PyPI): visible
/// ASCII only, bounded.
fn reason_phrase(message: &str) -> Option<hyper::ext::ReasonPhrase> {
    let text: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(400)
        .collect();
    hyper::ext::ReasonPhrase::try_from(text.trim().to_string()).ok()
}

impl IntoResponse for IndexError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            IndexError::Refused { message, .. } => message.clone(),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                // The detail (host, database) is for the log, not for clients.
                tracing::warn!("{self}");
                "Temporarily unavailable (a storage dependency); retry later".to_string()
            }
            other => {
                tracing::error!("internal error: {other}");
                format!("internal error: {other}")
            }
        };
        let mut resp = (status, format!("{message}\n")).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tufpi\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if let Some(r) = reason_phrase(&message) {
            resp.extensions_mut().insert(r);
        }
        resp
    }
}
