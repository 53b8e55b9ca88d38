//! `POST /legacy/`: twine's upload API (multipart form, HTTP basic auth `__token__` + upload
//! token). Every check runs before anything is stored; a refusal says why in one line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use blake2::Digest;
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

use crate::db::TokenScope;
use crate::error::IndexError;
use crate::index::{Accepted, Index};
use crate::names::{self, DistKind};
use crate::pages::Digests;
use crate::sdist;
use crate::storage::Blake2b256;
use crate::wheel;

/// Room for the form's other fields (description, classifiers…) on top of the file.
pub const FORM_SLACK: u64 = 8 << 20;

/// The received file: its name as sent, size and digests.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `content` part's filename.
    pub filename: String,
    /// Size and digests of what was received.
    pub digests: Digests,
}

/// The upload after the form checks: who, what, which file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Normalised project name.
    pub project: String,
    /// Project name as sent.
    pub display_name: String,
    /// PEP 440 version, normalised.
    pub version: String,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// The file name.
    pub filename: String,
    /// `requires_python` as sent, if not empty.
    pub requires_python: Option<String>,
}

/// A received upload in the temp area, removed unless committed.
struct TempUpload(PathBuf);

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn forbidden(msg: impl Into<String>) -> IndexError {
    IndexError::refused(StatusCode::FORBIDDEN, msg)
}

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

/// Check the form fields and the received file against each other and the token's scope.
pub fn check_form(
    fields: &HashMap<String, String>,
    received: Option<&Received>,
    scope: &TokenScope,
) -> Result<Checked, IndexError> {
    let field = |k: &str| fields.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    match field(":action") {
        Some("file_upload") => {}
        Some(other) => {
            return Err(IndexError::bad(format!(
                "Unsupported :action {other:?}: only file_upload is"
            )))
        }
        None => return Err(IndexError::bad("Missing form field :action=file_upload")),
    }
    if let Some(p) = field("protocol_version") {
        if p != "1" {
            return Err(IndexError::bad(format!(
                "Unsupported protocol_version {p:?}"
            )));
        }
    }
    let name = field("name")
        .ok_or_else(|| IndexError::bad("Missing form field 'name' (the project name)"))?;
    if !names::valid_project_name(name) {
        return Err(IndexError::bad(format!(
            "Invalid project name {name:?}: use ASCII letters, digits, '.', '_' and '-', starting and ending with a letter or digit"
        )));
    }
    let project = names::normalize(name);
    if let Some(only) = &scope.project {
        if *only != project {
            return Err(forbidden(format!(
                "This token may only upload to project {only:?}, not {project:?}"
            )));
        }
    }
    let version_text =
        field("version").ok_or_else(|| IndexError::bad("Missing form field 'version'"))?;
    let version = names::parse_version(version_text).map_err(IndexError::bad)?;
    let received = received
        .ok_or_else(|| IndexError::bad("No file uploaded: send it as the form field 'content'"))?;
    let kind =
        names::check_filename(&received.filename, name, &version).map_err(IndexError::bad)?;
    if let Some(ft) = field("filetype") {
        if ft != kind.packagetype() {
            return Err(IndexError::bad(format!(
                "filetype {ft:?} does not match {:?}: wheels are bdist_wheel, sdists are sdist",
                received.filename
            )));
        }
    }
    if received.digests.size == 0 {
        return Err(IndexError::bad("The uploaded file is empty"));
    }
    let sha = field("sha256_digest");
    let b2 = field("blake2_256_digest");
    if sha.is_none() && b2.is_none() {
        return Err(IndexError::bad(
            "Missing sha256_digest: send the file's SHA-256 (hex)",
        ));
    }
    for (given, actual, which) in [
        (sha, &received.digests.sha256, "sha256_digest"),
        (b2, &received.digests.blake2b, "blake2_256_digest"),
    ] {
        if let Some(g) = given {
            if !g.eq_ignore_ascii_case(actual) {
                return Err(IndexError::bad(format!(
                    "The digest supplied does not match a digest calculated from the uploaded file ({which})"
                )));
            }
        }
    }
    Ok(Checked {
        project,
        display_name: name.to_string(),
        version: version.to_string(),
        kind,
        filename: received.filename.clone(),
        requires_python: field("requires_python").map(str::to_string),
    })
}

fn multipart_error(e: MultipartError, max: u64) -> IndexError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        IndexError::bad(format!("Malformed multipart upload: {}", e.body_text()))
    }
}

fn too_large(max: u64) -> IndexError {
    IndexError::refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("File too large: this index accepts files up to {max} bytes"),
    )
}

fn random_name() -> String {
    let mut b = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    format!("upload-{}", hex::encode(b))
}

/// Receive the multipart form: text fields into a map, the `content` file streamed to the
/// temp area with its digests (over-limit files are drained, not stored).
async fn receive(
    index: &Index,
    mut mp: Multipart,
) -> Result<(HashMap<String, String>, Option<(Received, TempUpload)>), IndexError> {
    let max = index.max_upload();
    let mut fields = HashMap::new();
    let mut content: Option<(Received, TempUpload)> = None;
    let mut oversize = false;
    while let Some(mut f) = mp.next_field().await.map_err(|e| multipart_error(e, max))? {
        let name = f.name().unwrap_or("").to_string();
        if name != "content" {
            let text = f.text().await.map_err(|e| multipart_error(e, max))?;
            fields.insert(name, text);
            continue;
        }
        if content.is_some() {
            return Err(IndexError::bad(
                "More than one 'content' file in the upload",
            ));
        }
        let filename = f
            .file_name()
            .map(str::to_string)
            .ok_or_else(|| IndexError::bad("The 'content' field has no filename"))?;
        names::check_safe_filename(&filename).map_err(IndexError::bad)?;
        let tmp = TempUpload(index.storage().tmp_dir().join(random_name()));
        let mut out = tokio::fs::File::create(&tmp.0)
            .await
            .map_err(|e| IndexError::io("creating the upload temp file", e))?;
        let (mut sha, mut b2, mut size) = (Sha256::new(), Blake2b256::new(), 0u64);
        while let Some(chunk) = f.chunk().await.map_err(|e| multipart_error(e, max))? {
            size += chunk.len() as u64;
            if size > max {
                oversize = true; // keep reading so the client sees the answer, store nothing
                continue;
            }
            sha.update(&chunk);
            b2.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| IndexError::io("writing the upload temp file", e))?;
        }
        out.sync_all()
            .await
            .map_err(|e| IndexError::io("syncing the upload temp file", e))?;
        let digests = Digests {
            size,
            sha256: hex::encode(sha.finalize()),
            blake2b: hex::encode(b2.finalize()),
        };
        content = Some((Received { filename, digests }, tmp));
    }
    if oversize {
        return Err(too_large(max));
    }
    Ok((fields, content))
}

/// The upload handler.
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
        let version = names::parse_version(&checked.version).map_err(IndexError::bad)?;
        // The core metadata must agree with the filename and form (as PyPI checks); a
        // wheel's is also served (PEP 658).
        let metadata = match checked.kind {
            DistKind::Wheel => Some(
                wheel::wheel_metadata(&tmp.0, &checked.display_name, &version)
                    .map_err(IndexError::bad)?,
            ),
            DistKind::Sdist => {
                sdist::sdist_metadata(&tmp.0, &checked.filename, &checked.display_name, &version)
                    .map_err(IndexError::bad)?;
                None
            }
        };
        let requires_python = checked
            .requires_python
            .clone()
            .or_else(|| metadata.as_ref().and_then(|m| m.requires_python.clone()));
        let accepted = Accepted {
            project: checked.project,
            display_name: checked.display_name,
            version: checked.version,
            kind: checked.kind,
            filename: checked.filename,
            tmp: tmp.0.clone(),
            digests: received.digests,
            requires_python,
            metadata,
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
