//! Verified downloads of targets: one per target at a time, in one of the download slots,
//! never more than the signed length, checked against every signed hash.

use std::sync::Arc;

use axum::body::Bytes;
use tufpi_client::{ClientError, FetchError, Updater};

use super::store::{Resolved, Trust};
use crate::error::{ProxyError, Reason};

impl Trust {
    /// `fetch_verified` off the runtime, once one of the `max_downloads` slots is free: one
    /// download per target at a time, shared by every request for it (a client that hangs
    /// up stops nothing).
    pub async fn download(self: &Arc<Self>, t: Resolved) -> Result<Bytes, ProxyError> {
        let digest = t.info.hashes.values().next().cloned().unwrap_or_default();
        let key = (t.path.clone(), digest);
        let me = self.clone();
        let task = || async move {
            let _slot = me
                .downloads
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| ProxyError::Internal(e.to_string().into()))?;
            let m = me.clone();
            tokio::task::spawn_blocking(move || m.fetch_verified(&t).map(Bytes::from))
                .await
                .map_err(|e| ProxyError::Internal(e.to_string().into()))?
        };
        self.transfers.run(key, task).await.unwrap_or_else(|| {
            Err(ProxyError::Internal(
                "the download ended without a result".into(),
            ))
        })
    }

    /// Download a resolved target (never more than its signed length) and verify its length
    /// and every hash. Blocking; call it off the async runtime.
    pub fn fetch_verified(&self, t: &Resolved) -> Result<Vec<u8>, ProxyError> {
        let data = self
            .fetcher
            .fetch(&t.url, t.info.length)
            .map_err(|e| {
                let path = &t.path;
                let (sort, context): (fn(Reason) -> ProxyError, String) = match &e {
                    FetchError::NotFound { .. } => (
                        ProxyError::Upstream,
                        format!("target {path:?} is in the signed metadata but the upstream does not have it"),
                    ),
                    FetchError::TooLong { .. } => (
                        ProxyError::Verification,
                        format!("target {path:?} (signed length {})", t.info.length),
                    ),
                    _ => return ProxyError::from_client(ClientError::Fetch(e)),
                };
                sort(Reason::Client {
                    context: Some(context),
                    error: Arc::new(ClientError::Fetch(e)),
                })
            })?;
        Updater::verify_target(&t.path, &t.info, &data).map_err(ProxyError::from_client)?;
        Ok(data)
    }
}
