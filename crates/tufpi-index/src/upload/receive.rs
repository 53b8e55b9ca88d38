//! Receiving the multipart form: text fields within their limits, the `content` file
//! streamed to the temp area with its digests (removed unless committed).

use std::path::PathBuf;

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::form::{
    field_limit, FormFields, Received, MAX_FIELD_VALUES, MAX_FORM_PARTS, MAX_FORM_TEXT,
};
use crate::error::IndexError;
use crate::index::Index;
use crate::names;
use crate::pages::Digests;
use crate::storage::DigestsHasher;

/// A received upload in the temp area, removed unless committed.
pub(super) struct TempUpload(pub(super) PathBuf);

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn multipart_error(e: MultipartError, max: u64) -> IndexError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        IndexError::bad(format!("Malformed multipart upload: {}", e.body_text()))
    }
}

pub(super) fn too_large(max: u64) -> IndexError {
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

/// The form as received: its text fields, and the `content` file in the temp area.
pub(super) type Form = (FormFields, Option<(Received, TempUpload)>);

/// Receive the multipart form: text fields into a map, each read with its cap
/// ([`field_limit`], [`MAX_FORM_TEXT`] in all, [`MAX_FORM_PARTS`] parts), the `content` file
/// streamed to the temp area with its digests. Once a limit is passed nothing more is kept:
/// the rest of the body is read and dropped (so the client gets the answer; the body limit
/// still ends it) and the upload refused for that limit.
pub(super) async fn receive(index: &Index, mut mp: Multipart) -> Result<Form, IndexError> {
    let max = index.max_upload();
    let mut fields = FormFields::new();
    let mut content: Option<(Received, TempUpload)> = None;
    let mut refusal: Option<IndexError> = None;
    let (mut parts, mut text_bytes) = (0usize, 0usize);
    while let Some(mut f) = mp
        .next_field()
        .await
        .map_err(|e| refusal.take().unwrap_or_else(|| multipart_error(e, max)))?
    {
        if refusal.is_some() {
            while f
                .chunk()
                .await
                .map_err(|e| refusal.take().unwrap_or_else(|| multipart_error(e, max)))?
                .is_some()
            {}
            continue;
        }
        parts += 1;
        if parts > MAX_FORM_PARTS {
            refusal = Some(IndexError::bad(format!(
                "The upload form has more than {MAX_FORM_PARTS} fields (this index's limit)"
            )));
            continue;
        }
        let name = f.name().unwrap_or("").to_string();
        if name == "content" {
            if content.is_some() {
                return Err(IndexError::bad(
                    "More than one 'content' file in the upload",
                ));
            }
            let (received, tmp) = receive_file(index, &mut f, max).await?;
            if received.digests.size > max {
                refusal = Some(too_large(max));
                continue;
            }
            content = Some((received, tmp));
            continue;
        }
        let (cap, repeatable) = field_limit(&name);
        let shown: String = name.chars().take(64).collect();
        let values = fields.get(&name).map_or(0, Vec::len);
        if values > 0 && !repeatable {
            refusal = Some(IndexError::bad(format!(
                "Form field {shown:?} is given more than once"
            )));
        } else if values >= MAX_FIELD_VALUES {
            refusal = Some(IndexError::bad(format!(
                "Form field {shown:?} is given more than {MAX_FIELD_VALUES} times (this index's limit)"
            )));
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = f
            .chunk()
            .await
            .map_err(|e| refusal.take().unwrap_or_else(|| multipart_error(e, max)))?
        {
            if refusal.is_some() {
                continue;
            }
            if buf.len() + chunk.len() > cap {
                refusal = Some(IndexError::bad(format!(
                    "Form field {shown:?} is longer than {cap} bytes (this index's limit)"
                )));
                buf = Vec::new();
                continue;
            }
            if text_bytes + chunk.len() > MAX_FORM_TEXT {
                refusal = Some(IndexError::bad(format!(
                    "The upload form's text fields hold more than {MAX_FORM_TEXT} bytes (this index's limit)"
                )));
                buf = Vec::new();
                continue;
            }
            text_bytes += chunk.len();
            buf.extend_from_slice(&chunk);
        }
        if refusal.is_some() || name == "gpg_signature" {
            // Signatures are read (bounded) and ignored, as PyPI does.
            continue;
        }
        match String::from_utf8(buf) {
            Ok(text) => fields.entry(name).or_default().push(text),
            Err(_) => {
                refusal = Some(IndexError::bad(format!(
                    "Form field {shown:?} is not UTF-8 text"
                )))
            }
        }
    }
    match refusal {
        Some(e) => Err(e),
        None => Ok((fields, content)),
    }
}

/// Stream the `content` part to a temp file with its digests; past `max` bytes nothing more
/// is written (the size keeps counting).
async fn receive_file(
    index: &Index,
    f: &mut axum::extract::multipart::Field<'_>,
    max: u64,
) -> Result<(Received, TempUpload), IndexError> {
    let filename = f
        .file_name()
        .map(str::to_string)
        .ok_or_else(|| IndexError::bad("The 'content' field has no filename"))?;
    names::check_safe_filename(&filename).map_err(IndexError::bad)?;
    let tmp = TempUpload(index.storage().tmp_dir().join(random_name()));
    let mut out = tokio::fs::File::create(&tmp.0)
        .await
        .map_err(|e| IndexError::io("creating the upload temp file", e))?;
    let (mut hasher, mut md5) = (DigestsHasher::new(), Md5::new());
    let mut size = 0u64;
    while let Some(chunk) = f.chunk().await.map_err(|e| multipart_error(e, max))? {
        size += chunk.len() as u64;
        if size > max {
            continue; // keep reading so the client sees the answer, store nothing
        }
        hasher.update(&chunk);
        md5.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| IndexError::io("writing the upload temp file", e))?;
    }
    if size <= max {
        out.sync_all()
            .await
            .map_err(|e| IndexError::io("syncing the upload temp file", e))?;
    }
    // The size counts every byte received, also past `max` (then the upload is refused).
    let digests = Digests {
        size,
        ..hasher.finish()
    };
    let md5 = hex::encode(md5.finalize());
    Ok((
        Received {
            filename,
            digests,
            md5,
        },
        tmp,
    ))
}
