//! The upload form's rules: how much each field may hold, and the checks of the fields and
//! the received file against each other and the token's scope. Every check runs before
//! anything is stored; a refusal says why in one line.

use std::collections::HashMap;
use std::str::FromStr;

use axum::http::StatusCode;
use pep440_rs::VersionSpecifiers;

use crate::db::TokenScope;
use crate::error::IndexError;
use crate::names::{self, DistIdentity, DistKind};
use crate::pages::Digests;

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

pub(super) fn forbidden(msg: impl Into<String>) -> IndexError {
    IndexError::refused(StatusCode::FORBIDDEN, msg)
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
