//! `/metadata/<name>` of a scaled-out index, read from the blob store's `metadata/` prefix:
//! versioned files (`N.role.json`) never change, so they (and their gzip form) are kept in
//! the index storage's in-process cache (one cache, keyed by blob key); `timestamp.json` is
//! checked against the store on every request (see [`ScaleOut::timestamp`]), so no replica
//! serves an older one after another served a newer one. Headers as an embedded index sends
//! them.
//!
//! With `--files-url`, `/packages/…` answers a redirect to the file there (a CDN in front of
//! the bucket's `packages/`): pages keep their relative links, so every replica renders and
//! signs the same page bytes whatever URL it was given, and installers follow the redirect.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use tufpi_blob::Bytes;
use tufpi_repo::layout::TIMESTAMP_FILE;

use crate::deploy::ScaleOut;
use crate::error::IndexError;
use crate::gzip::gzip;
use crate::index::Index;
use crate::storage::{blob_error, Served, Stored};

/// The bytes of metadata file `name` and, if asked for and worth it, their gzip form.
fn read(
    index: &Index,
    so: &ScaleOut,
    name: &str,
    versioned: bool,
    want_gzip: bool,
) -> Result<Option<(Bytes, Option<Bytes>)>, IndexError> {
    let cache = index.storage().cache();
    let bytes = if versioned {
        let key = format!("{}/{name}", tufpi_repo::METADATA_PREFIX);
        cache
            .get_or_load(&key, || so.metadata.get(name))
            .map_err(blob_error)?
    } else if name == TIMESTAMP_FILE {
        so.timestamp()?
    } else {
        so.metadata.get(name).map_err(blob_error)?
    };
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    if !want_gzip || (bytes.len() as u64) < crate::gzip::MIN_SIZE {
        return Ok(Some((bytes, None)));
    }
    let gz = if versioned {
        let key = format!("{}.gz/{name}", tufpi_repo::METADATA_PREFIX);
        cache.get_or_load(&key, || gzip(&bytes).map(|gz| Some(Bytes::from(gz))))?
    } else {
        Some(Bytes::from(gzip(&bytes)?))
    };
    Ok(Some((bytes, gz)))
}

/// The response to `req` for metadata file `name` (checked by the caller), from the blob
/// store, with `cache` as its Cache-Control.
pub(crate) async fn serve(
    index: Arc<Index>,
    so: Arc<ScaleOut>,
    name: String,
    versioned: bool,
    cache: &'static str,
    req: Request,
) -> Result<Response, IndexError> {
    let want_gzip = crate::gzip::accepts_gzip(req.headers());
    let got = tokio::task::spawn_blocking(move || read(&index, &so, &name, versioned, want_gzip))
        .await
        .map_err(|e| IndexError::Internal(e.to_string()))??;
    let Some((bytes, gz)) = got else {
        return Err(IndexError::refused(
            axum::http::StatusCode::NOT_FOUND,
            "No such metadata file",
        ));
    };
    if let Some(gz) = gz {
        return Ok(crate::gzip::response(gz, cache));
    }
    let etag = crate::storage::digests(&bytes).sha256;
    let served = Served {
        content_type: "application/json",
        cache_control: cache,
        vary: Some("Accept-Encoding"),
        etag: Some(etag),
    };
    Stored::Bytes(bytes).respond(req, &served).await
}

/// `/packages/<rest>` with `--files-url BASE`: a 302 to `BASE/<target path>` of the file
/// (a hash-prefixed name resolved to its target), or 404 if the index has no such file.
pub(crate) async fn files_redirect(
    index: Arc<Index>,
    rest: String,
    base: String,
) -> Result<Response, IndexError> {
    let (target, _) =
        tokio::task::spawn_blocking(move || crate::routes::resolve_package(&index, &rest))
            .await
            .map_err(|e| IndexError::Internal(e.to_string()))??;
    let to = format!("{}/{target}", base.trim_end_matches('/'));
    let location =
        HeaderValue::try_from(to).map_err(|e| IndexError::Internal(format!("--files-url: {e}")))?;
    Ok((
        axum::http::StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
    )
        .into_response())
}
