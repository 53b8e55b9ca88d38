//! `POST /legacy/`: twine's upload API (multipart form, HTTP basic auth `__token__` + upload
//! token). Every check runs before anything is stored; a refusal says why in one line.
//!
//! `form` holds the form's limits and checks, `receive` reads the form within them, `limits`
//! bounds concurrent uploads; this module authenticates and runs an upload through them.

mod form;
pub mod limits;
mod receive;

use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::error::IndexError;
use crate::index::{Accepted, Index};
use crate::names::{self, DistKind};
use crate::sdist;
use crate::wheel;

use form::forbidden;
pub use form::{
    check_form, check_requires_python, field_limit, settle_requires_python, Checked, FormFields,
    Received, FORM_SLACK, MAX_DESCRIPTION, MAX_FIELD_VALUES, MAX_FORM_PARTS, MAX_FORM_TEXT,
    MAX_LICENSE, MAX_NAME, MAX_REQUIRES_PYTHON, MAX_SHORT_FIELD, MAX_SIGNATURE, MAX_SUMMARY_CHARS,
    MAX_VERSION,
};
pub use limits::{UploadLimiter, UploadLimits, UploadPermit};
use receive::{receive, too_large};

/// The token from an `Authorization: Basic` header with username `__token__`.
pub fn basic_auth_token(headers: &HeaderMap) -> Result<String, IndexError> {
    let unauthorized = || {
        IndexError::refused(
            StatusCode::UNAUTHORIZED,
            "Authentication required: use username __token__ and an upload token (tufpi token create) as the password",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(unauthorized)?
        .to_str()
        .map_err(|_| unauthorized())?;
    let (scheme, b64) = value.trim().split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(unauthorized)?;
    let (user, pass) = decoded.split_once(':').ok_or_else(unauthorized)?;
    if user != "__token__" {
        return Err(forbidden(
            "Invalid credentials: the username must be __token__ and the password an upload token",
        ));
    }
    Ok(pass.to_string())
}

/// The upload handler: authenticate, take an upload slot (the index's [`UploadLimiter`]),
/// receive the form within its limits, check it, refuse a file
/// this index already has (or had) under any spelling, check the archive and its core
/// metadata, commit.
pub async fn upload(
    State(index): State<Arc<Index>>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<Response, IndexError> {
    let token = basic_auth_token(&headers)?;
    let idx = index.clone();
    let scope = tokio::task::spawn_blocking(move || idx.read(|db| db.token_scope(&token)))
        .await
        .map_err(|e| IndexError::Internal(e.to_string()))??
        .ok_or_else(|| forbidden("Invalid or unknown upload token"))?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > index.max_upload() + FORM_SLACK) {
        return Err(too_large(index.max_upload()));
    }
    let _permit = match index.upload_limiter().acquire(&scope.id).await {
        Ok(p) => p,
        Err(busy) => return Ok(busy),
    };
    let mp =
        mp.map_err(|e| IndexError::bad(format!("Malformed multipart upload: {}", e.body_text())))?;
    let (fields, content) = receive(&index, mp).await?;
    let (received, tmp) = match content {
        Some((r, t)) => (Some(r), Some(t)),
        None => (None, None),
    };
    let checked = check_form(&fields, received.as_ref(), &scope)?;
    let (Some(received), Some(tmp)) = (received, tmp) else {
        return Err(IndexError::bad("No file uploaded"));
    };
    let idx = index.clone();
    let row = tokio::task::spawn_blocking(move || {
        // The very file this index has (same name, same bytes): a retry of an upload whose
        // answer was lost (a timeout, a 503 after the commit, a replica killed) succeeds
        // again without storing anything, as on PyPI.
        if let Some(row) = idx.read(|db| db.file(&checked.filename))? {
            // Spelt exactly so (another spelling of a used name is refused, as on PyPI).
            if row.filename == checked.filename && row.digests.sha256 == received.digests.sha256 {
                tracing::info!(file = %row.filename, "the same file again: already stored");
                return Ok(row);
            }
        }
        // A file this index has, or had, under this or another spelling: refused before
        // its archive is read.
        if let Some(previous) = idx.read(|db| db.dist_used(&checked.identity))? {
            return Err(crate::db::already_exists(
                &checked.filename,
                &previous,
                Some(&checked.identity),
            ));
        }
        let version = names::parse_version(&checked.version).map_err(IndexError::bad)?;
        // The core metadata must agree with the filename and form (as PyPI checks); a
        // wheel's is also served (PEP 658).
        let (metadata, meta_file) = match checked.kind {
            DistKind::Wheel => (
                wheel::wheel_metadata(&tmp.0, &checked.display_name, &version)
                    .map_err(IndexError::bad)?,
                "the wheel's METADATA",
            ),
            DistKind::Sdist => (
                sdist::sdist_metadata(&tmp.0, &checked.filename, &checked.display_name, &version)
                    .map_err(IndexError::bad)?,
                "the sdist's PKG-INFO",
            ),
        };
        let requires_python = settle_requires_python(
            checked.requires_python.as_deref(),
            metadata.requires_python.as_deref(),
            meta_file,
        )
        .map_err(IndexError::bad)?;
        let accepted = Accepted {
            project: checked.project,
            display_name: checked.display_name,
            version: checked.version,
            kind: checked.kind,
            filename: checked.filename,
            tmp: tmp.0.clone(),
            digests: received.digests,
            requires_python,
            metadata: (checked.kind == DistKind::Wheel).then_some(metadata),
        };
        let row = idx.commit(accepted);
        drop(tmp);
        row
    })
    .await
    .map_err(|e| IndexError::Internal(e.to_string()))??;
    Ok((
        StatusCode::OK,
        format!(
            "OK: {} stored; it is signed within a second\n",
            row.filename
        ),
    )
        .into_response())
}
