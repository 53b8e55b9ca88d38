//! `POST /legacy/`: twine's upload API (multipart form, HTTP basic auth `__token__` + upload
//! token). Every check runs before anything is stored; a refusal says why in one line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use md5::{Digest, Md5};
use pep440_rs::VersionSpecifiers;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::TokenScope;
use crate::error::IndexError;
use crate::index::{Accepted, Index};
use crate::names::{self, DistIdentity, DistKind};
use crate::pages::Digests;
use crate::sdist;
use crate::storage::DigestsHasher;
use crate::wheel;

/// Room for the form's other fields (description, classifiers…) on top of the file: also the
/// most text the form's fields may hold together ([`MAX_FORM_TEXT`]).
pub const FORM_SLACK: u64 = 8 << 20;

/// Most bytes the text fields of one upload may hold together.
pub const MAX_FORM_TEXT: usize = FORM_SLACK as usize;

/// Most parts (fields and files) one upload form may have.
pub const MAX_FORM_PARTS: usize = 10_000;

/// Most values a repeatable field (`classifiers`, `requires_dist`…) may have.
pub const MAX_FIELD_VALUES: usize = 2_000;

/// Longest `description` (the README) accepted, bytes. PyPI sets no explicit limit; 4 MiB
/// holds the longest READMEs in use, images inlined.
pub const MAX_DESCRIPTION: usize = 4 << 20;

/// Longest `summary`, characters (PyPI's limit), on one line.
pub const MAX_SUMMARY_CHARS: usize = 512;

/// Longest `license` (some put the whole license text there), bytes.
pub const MAX_LICENSE: usize = 128 << 10;

/// Longest `requires_python` (a PEP 440 specifier set), bytes.
pub const MAX_REQUIRES_PYTHON: usize = 1024;

/// Longest value of any other field (author, keywords, one classifier or requirement…),
/// bytes.
pub const MAX_SHORT_FIELD: usize = 8 << 10;

/// Longest project name, bytes.
pub const MAX_NAME: usize = 200;

/// Longest version, bytes.
pub const MAX_VERSION: usize = 128;

/// Longest `gpg_signature` (PyPI's limit); read and ignored.
pub const MAX_SIGNATURE: usize = 8 << 10;

/// The fields twine sends more than once, one value each.
const LIST_FIELDS: &[&str] = &[
    "classifiers",
    "requires_dist",
    "provides_dist",
    "obsoletes_dist",
    "requires_external",
    "project_urls",
    "provides_extra",
    "supported_platform",
    "platform",
    "dynamic",
    "license_file",
    "requires",
    "provides",
    "obsoletes",
];

/// The most bytes one value of form field `name` may hold, and whether the field may be
/// given more than once.
pub fn field_limit(name: &str) -> (usize, bool) {
    match name {
        ":action" | "protocol_version" | "filetype" | "pyversion" | "metadata_version" => {
            (64, false)
        }
        "md5_digest" | "sha256_digest" | "blake2_256_digest" => (128, false),
        "name" => (MAX_NAME, false),
        "version" => (MAX_VERSION, false),
        "requires_python" => (MAX_REQUIRES_PYTHON, false),
        // Characters are counted once read; a character is at most 4 bytes.
        "summary" => (MAX_SUMMARY_CHARS * 4, false),
        "description" => (MAX_DESCRIPTION, false),
        "license" => (MAX_LICENSE, false),
        "attestations" => (256 << 10, false),
        "gpg_signature" => (MAX_SIGNATURE, false),
        "description_content_type" => (256, false),
        "keywords" | "author" | "author_email" | "maintainer" | "maintainer_email"
        | "home_page" | "download_url" | "license_expression" | "comment" => {
            (MAX_SHORT_FIELD, false)
        }
        n if LIST_FIELDS.contains(&n) => (MAX_SHORT_FIELD, true),
        // Anything else is kept (and ignored) within the same bounds.
        _ => (MAX_SHORT_FIELD, true),
    }
}

/// The form's text fields: every value of each, in the order sent.
pub type FormFields = HashMap<String, Vec<String>>;

/// The received file: its name as sent, size and digests.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `content` part's filename.
    pub filename: String,
    /// Size and digests of what was received.
    pub digests: Digests,
    /// Its MD5 (hex), to check the `md5_digest` twine sends.
    pub md5: String,
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
    /// `requires_python` as sent (a checked PEP 440 specifier set), if not empty.
    pub requires_python: Option<String>,
    /// What makes the file the same as another ([`DistIdentity`]).
    pub identity: DistIdentity,
}

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

/// Check a `requires_python` value (from `source`: the form field or a core metadata file):
/// at most [`MAX_REQUIRES_PYTHON`] bytes of printable ASCII forming a PEP 440 version
/// specifier set. Returns it parsed.
pub fn check_requires_python(text: &str, source: &str) -> Result<VersionSpecifiers, String> {
    if text.len() > MAX_REQUIRES_PYTHON {
        return Err(format!(
            "Invalid {source}: {} bytes long, at most {MAX_REQUIRES_PYTHON} are accepted",
            text.len()
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!(
            "Invalid {source} {text:?}: not a PEP 440 version specifier set (only printable ASCII)"
        ));
    }
    VersionSpecifiers::from_str(text).map_err(|e| {
        format!("Invalid {source} {text:?}: not a PEP 440 version specifier set ({e})")
    })
}

/// Check the form fields and the received file against each other and the token's scope.
pub fn check_form(
    fields: &FormFields,
    received: Option<&Received>,
    scope: &TokenScope,
) -> Result<Checked, IndexError> {
    let field = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.first())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    };
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
    names::check_public_version(version_text, &version).map_err(IndexError::bad)?;
    if let Some(summary) = field("summary") {
        if summary.chars().count() > MAX_SUMMARY_CHARS {
            return Err(IndexError::bad(format!(
                "Form field 'summary' is longer than {MAX_SUMMARY_CHARS} characters (PyPI's limit)"
            )));
        }
        if summary.contains(['\r', '\n']) {
            return Err(IndexError::bad(
                "Form field 'summary' must be a single line",
            ));
        }
    }
    let requires_python = match field("requires_python") {
        Some(rp) => {
            check_requires_python(rp, "requires_python").map_err(IndexError::bad)?;
            Some(rp.to_string())
        }
        None => None,
    };
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
    if field("sha256_digest").is_none() && field("blake2_256_digest").is_none() {
        return Err(IndexError::bad(
            "Missing sha256_digest: send the file's SHA-256 (hex)",
        ));
    }
    // Every digest sent must be well-formed and match.
    for (which, actual, hex_len) in [
        ("md5_digest", &received.md5, 32),
        ("sha256_digest", &received.digests.sha256, 64),
        ("blake2_256_digest", &received.digests.blake2b, 64),
    ] {
        let Some(given) = field(which) else {
            continue;
        };
        if given.len() != hex_len || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IndexError::bad(format!(
                "Invalid {which} {given:?}: expected {hex_len} hex digits"
            )));
        }
        if !given.eq_ignore_ascii_case(actual) {
            return Err(IndexError::bad(format!(
                "The digest supplied does not match a digest calculated from the uploaded file ({which})"
            )));
        }
    }
    let identity =
        DistIdentity::new(&received.filename, name, &version, kind).map_err(IndexError::bad)?;
    Ok(Checked {
        project,
        display_name: name.to_string(),
        version: version.to_string(),
        kind,
        filename: received.filename.clone(),
        requires_python,
        identity,
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

/// The form as received: its text fields, and the `content` file in the temp area.
type Form = (FormFields, Option<(Received, TempUpload)>);

/// Receive the multipart form: text fields into a map, each read with its cap
/// ([`field_limit`], [`MAX_FORM_TEXT`] in all, [`MAX_FORM_PARTS`] parts), the `content` file
/// streamed to the temp area with its digests. Once a limit is passed nothing more is kept:
/// the rest of the body is read and dropped (so the client gets the answer; the body limit
/// still ends it) and the upload refused for that limit.
async fn receive(index: &Index, mut mp: Multipart) -> Result<Form, IndexError> {
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

/// Check the core metadata's `Requires-Python` (from `file`) and the form's against each
/// other; returns the one to record: the metadata's if it has one (as PyPI), else the
/// form's.
pub fn settle_requires_python(
    form: Option<&str>,
    metadata: Option<&str>,
    file: &str,
) -> Result<Option<String>, String> {
    let Some(meta) = metadata else {
        return Ok(form.map(str::to_string));
    };
    let parsed = check_requires_python(meta, &format!("Requires-Python in {file}"))?;
    if let Some(f) = form {
        if check_requires_python(f, "requires_python")? != parsed {
            return Err(format!(
                "Form field requires_python {f:?} does not match Requires-Python {meta:?} in {file}"
            ));
        }
    }
    Ok(Some(meta.to_string()))
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
