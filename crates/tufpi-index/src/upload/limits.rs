//! How many uploads may run at once, on the server and with one token, and the slots that
//! enforce it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::IndexError;

/// How many uploads may run at once, on the server and with one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads in progress on the server at once (beyond: 503).
    pub per_server: usize,
    /// Uploads in progress with one token at once (beyond: 429).
    pub per_token: usize,
    /// How long an upload waits for a free slot before it is refused (the answer's
    /// Retry-After says the same).
    pub wait: Duration,
}

impl Default for UploadLimits {
    /// 16 per server, 4 per token (twine uploads one file at a time), 5 s of waiting.
    fn default() -> Self {
        UploadLimits {
            per_server: 16,
            per_token: 4,
            wait: Duration::from_secs(5),
        }
    }
}

/// Bounds concurrent uploads per server and per token: an upload takes a slot of its token
/// and one of the server (waiting up to [`UploadLimits::wait`]) before its body is read, and
/// holds them until it is answered. Each index has one, from [`crate::IndexOptions::uploads`].
#[derive(Debug)]
pub struct UploadLimiter {
    limits: UploadLimits,
    server: Arc<Semaphore>,
    tokens: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The slots an upload holds (released when dropped).
#[derive(Debug)]
pub struct UploadPermit {
    _token: OwnedSemaphorePermit,
    _server: OwnedSemaphorePermit,
}

impl UploadLimiter {
    /// A limiter with `limits` (zeros count as one).
    pub fn new(limits: UploadLimits) -> Arc<UploadLimiter> {
        Arc::new(UploadLimiter {
            server: Arc::new(Semaphore::new(limits.per_server.max(1))),
            tokens: Mutex::new(HashMap::new()),
            limits,
        })
    }

    /// The limits.
    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    fn token_semaphore(&self, token_id: &str) -> Arc<Semaphore> {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 1024 {
            // Forget idle tokens (a revoked one's entry would stay forever).
            let full = self.limits.per_token.max(1);
            map.retain(|_, s| s.available_permits() < full || Arc::strong_count(s) > 1);
        }
        map.entry(token_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_token.max(1))))
            .clone()
    }

    /// Take a slot of token `token_id` and one of the server, waiting up to
    /// [`UploadLimits::wait`] in all; or the refusal to answer with: 429 when the token has
    /// its most uploads running, 503 when the server has, each with Retry-After.
    pub async fn acquire(&self, token_id: &str) -> Result<UploadPermit, Response> {
        let deadline = tokio::time::Instant::now() + self.limits.wait;
        let token =
            tokio::time::timeout_at(deadline, self.token_semaphore(token_id).acquire_owned()).await;
        let token = match token {
            Ok(Ok(p)) => p,
            _ => {
                return Err(self.busy(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many concurrent uploads with this token: at most {} at a time; retry in {} s",
                        self.limits.per_token,
                        self.retry_after()
                    ),
                ))
            }
        };
        match tokio::time::timeout_at(deadline, self.server.clone().acquire_owned()).await {
            Ok(Ok(server)) => Ok(UploadPermit {
                _token: token,
                _server: server,
            }),
            _ => Err(self.busy(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Too many uploads in progress on this index: at most {} at a time; retry in {} s",
                    self.limits.per_server,
                    self.retry_after()
                ),
            )),
        }
    }

    fn retry_after(&self) -> u64 {
        self.limits.wait.as_secs().max(1)
    }

    fn busy(&self, status: StatusCode, message: String) -> Response {
        let mut resp = IndexError::refused(status, message).into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after()));
        resp
    }
}
