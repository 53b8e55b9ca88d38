//! Yank, unyank and remove, as PyPI does them: a yanked file (PEP 592) stays listed and
//! downloadable, marked `data-yanked` / `"yanked"`; a removed file is gone for good, and its
//! filename can never be uploaded again. Each operation runs in one database transaction
//! that re-renders the project's pages and records the TUF target changes in the outbox,
//! exactly like an upload: page targets first, then removed file targets, so no signed
//! snapshot ever has a page linking to a file that is no longer a target.
//!
//! Removing every file of a release or a project leaves the project with an empty page;
//! removing the project itself (`Selector::Project`) drops its page targets too and takes it
//! off `/simple/` (its name may then be registered again, its filenames never).

use std::str::FromStr;

use axum::http::StatusCode;
use pep440_rs::Version;
use tufpi_repo::Change;
use tufpi_simple::targets::metadata_path;
use tufpi_simple::PageKind;

use crate::db::{record_pages, IndexDb, WriteTx};
use crate::error::IndexError;
use crate::names::{normalize, parse_version, valid_project_name};
use crate::pages::{self, FileRow};
use crate::storage::Storage;

/// Longest accepted yank reason, characters.
pub const MAX_REASON: usize = 500;

/// What to do to the selected files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Mark yanked (PEP 592) with a reason, possibly empty.
    Yank {
        /// Why, shown to installers.
        reason: String,
    },
    /// Clear the yank mark.
    Unyank,
    /// Delete the files (and, for `Selector::Project`, the project).
    Remove,
}

impl Action {
    /// The action's name, as in the CLI and the API.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Yank { .. } => "yank",
            Action::Unyank => "unyank",
            Action::Remove => "remove",
        }
    }
}

/// Which files of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One file, by filename.
    File(String),
    /// Every file of a release, by PEP 440 version.
    Release(String),
    /// The whole project (removal only).
    Project,
}

/// One management operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The project, as given (normalised here).
    pub project: String,
    /// Which of its files.
    pub selector: Selector,
    /// What to do.
    pub action: Action,
}

/// What an operation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Normalised project name.
    pub project: String,
    /// Files changed, by filename.
    pub changed: Vec<String>,
    /// Files selected but already in the asked state (yank with the same reason, unyank of a
    /// file not yanked).
    pub unchanged: Vec<String>,
    /// Whether the project itself was removed.
    pub project_removed: bool,
    /// Stored files (target paths) no longer referenced, to delete once committed.
    pub(crate) dead_paths: Vec<String>,
}

fn not_found(message: String) -> IndexError {
    IndexError::refused(StatusCode::NOT_FOUND, message)
}

fn check(op: &Operation) -> Result<(), IndexError> {
    if !valid_project_name(&op.project) {
        return Err(IndexError::bad(format!(
            "Invalid project name {:?}",
            op.project
        )));
    }
    if let Action::Yank { reason } = &op.action {
        if reason.chars().count() > MAX_REASON {
            return Err(IndexError::bad(format!(
                "The yank reason is too long: at most {MAX_REASON} characters"
            )));
        }
        if reason.chars().any(char::is_control) {
            return Err(IndexError::bad(
                "The yank reason must be one line of text, without control characters",
            ));
        }
    }
    if op.selector == Selector::Project && op.action != Action::Remove {
        return Err(IndexError::bad(format!(
            "Cannot {} a whole project: give a file or a release",
            op.action.name()
        )));
    }
    Ok(())
}

/// The files of `files` that `selector` picks, or a 404 saying nothing matched.
fn select(
    files: Vec<FileRow>,
    project: &str,
    selector: &Selector,
) -> Result<Vec<FileRow>, IndexError> {
    let (picked, missing): (Vec<FileRow>, String) = match selector {
        Selector::Project => return Ok(files),
        Selector::File(name) => (
            files
                .into_iter()
                .filter(|f| f.filename.eq_ignore_ascii_case(name))
                .collect(),
            format!("No file {name:?} in project {project:?}"),
        ),
        Selector::Release(v) => {
            let wanted = parse_version(v.trim()).map_err(IndexError::bad)?;
            (
                files
                    .into_iter()
                    .filter(|f| Version::from_str(&f.version).is_ok_and(|fv| fv == wanted))
                    .collect(),
                format!("No release {v:?} of project {project:?}"),
            )
        }
    };
    if picked.is_empty() {
        return Err(not_found(missing));
    }
    Ok(picked)
}

/// Apply `op` in one transaction: files, pages (rendered and stored through `storage`) and
/// outbox. The caller then flushes the outbox and deletes the dead files
/// ([`delete_dead_files`]).
pub fn apply(db: &mut IndexDb, storage: &Storage, op: &Operation) -> Result<Outcome, IndexError> {
    check(op)?;
    let project = normalize(&op.project);
    db.write(|tx| apply_in(tx, storage, op, project))
}

/// [`apply`] inside its transaction. The project's lock comes first: its uploads and other
/// operations on it (from any replica) wait, so the pages rendered here list exactly the
/// files this transaction leaves.
fn apply_in(
    tx: &mut dyn WriteTx,
    storage: &Storage,
    op: &Operation,
    project: String,
) -> Result<Outcome, IndexError> {
    if !tx.lock_project(&project, None)? {
        return Err(not_found(format!("No such project: {project:?}")));
    }
    let selected = select(tx.files_of(&project)?, &project, &op.selector)?;
    let mut out = Outcome {
        project: project.clone(),
        ..Outcome::default()
    };
    let mut removals = Vec::new();
    for f in &selected {
        let changed = match &op.action {
            Action::Yank { reason } => {
                f.yanked.as_deref() != Some(reason.as_str())
                    && tx.set_yanked(&f.filename, Some(reason))?
            }
            Action::Unyank => f.yanked.is_some() && tx.set_yanked(&f.filename, None)?,
            Action::Remove => {
                tx.delete_file(&f.filename)?;
                removals.push(Change::Remove(f.path.clone()));
                out.dead_paths.push(f.path.clone());
                if f.metadata.is_some() {
                    let md = metadata_path(&f.path);
                    removals.push(Change::Remove(md.clone()));
                    out.dead_paths.push(md);
                }
                true
            }
        };
        if changed {
            out.changed.push(f.filename.clone());
        } else {
            out.unchanged.push(f.filename.clone());
        }
    }
    let mut changes = Vec::new();
    if op.selector == Selector::Project {
        tx.delete_project(&project)?;
        out.project_removed = true;
        changes.extend(
            PageKind::ALL
                .into_iter()
                .map(|k| Change::Remove(k.target_path(&project))),
        );
    } else if !out.changed.is_empty() {
        let files = tx.files_of(&project)?;
        let pages = [
            storage.put_page(&pages::project_html(&project, &files))?,
            storage.put_page(&pages::project_json(&project, &files))?,
        ];
        changes.extend(record_pages(tx, &project, &pages)?);
    }
    // Pages before files: a batch boundary between them must never leave a signed page
    // linking to a file that is no longer a target.
    changes.extend(removals);
    if !changes.is_empty() {
        tx.push_outbox(&changes)?;
    }
    Ok(out)
}

/// Delete the stored bytes of removed files (after the commit: a crash before leaves only
/// unreferenced files, never served since the database no longer names them).
pub fn delete_dead_files(storage: &Storage, out: &Outcome) {
    for p in &out.dead_paths {
        // Whatever store holds them (absent is fine); a failure leaves an unreferenced file
        // for the sweep.
        if let Err(e) = storage.remove_file(p) {
            tracing::warn!("removing {p}: {e}");
        }
    }
}

/// Decode an `application/x-www-form-urlencoded` body.
fn parse_urlencoded(body: &[u8]) -> Result<Vec<(String, String)>, IndexError> {
    fn decode(s: &[u8]) -> Result<String, IndexError> {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = s
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| IndexError::bad("Malformed form body: bad % escape"))?;
                    out.push(hex);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| IndexError::bad("Malformed form body: not UTF-8"))
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The members of a JSON object of strings, in order and with repeated keys kept: a
/// `serde_json` map keeps only the last of a repeated key, which would accept
/// `{"version": "1.0", "version": "2.0"}` where a form repeating a field is refused.
fn json_string_members(body: &[u8]) -> Result<Vec<(String, String)>, IndexError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| IndexError::bad(format!("Malformed JSON body: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| IndexError::bad("The JSON body must be an object"))?;
    if let Some((k, _)) = obj.iter().find(|(_, v)| !v.is_string()) {
        return Err(IndexError::bad(format!("Field {k:?} must be a string")));
    }
    // Valid JSON, one object whose members are all strings: outside its string tokens there
    // are only `{`, `}`, `:`, `,` and whitespace, and the tokens alternate key, value. Each
    // token is decoded by serde_json (escapes: `"vers\u0069on"` is the key `version`).
    let mut tokens = Vec::with_capacity(2 * obj.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'"' {
            let start = i;
            i += 1;
            while i < body.len() && body[i] != b'"' {
                i += if body[i] == b'\\' { 2 } else { 1 };
            }
            let token = body
                .get(start..=i)
                .and_then(|t| serde_json::from_slice::<String>(t).ok())
                .ok_or_else(|| IndexError::bad("Malformed JSON body"))?;
            tokens.push(token);
        }
        i += 1;
    }
    if tokens.len() % 2 != 0 {
        return Err(IndexError::bad("Malformed JSON body"));
    }
    let mut tokens = tokens.into_iter();
    Ok(std::iter::from_fn(|| Some((tokens.next()?, tokens.next()?))).collect())
}

/// The request's fields: a JSON object of strings or a urlencoded form (by Content-Type).
/// A field given twice is refused in either.
pub fn request_fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<std::collections::HashMap<String, String>, IndexError> {
    let ct = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let pairs = match ct.as_str() {
        "application/json" => json_string_members(body)?,
        "application/x-www-form-urlencoded" | "" => parse_urlencoded(body)?,
        other => {
            return Err(IndexError::refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported Content-Type {other:?}: send application/x-www-form-urlencoded or application/json"),
            ))
        }
    };
    let mut fields = std::collections::HashMap::new();
    for (k, v) in pairs {
        if !matches!(k.as_str(), "filename" | "version" | "reason" | "confirm") {
            return Err(IndexError::bad(format!(
                "Unknown field {k:?}: use filename, version, reason or confirm"
            )));
        }
        if fields.insert(k.clone(), v).is_some() {
            return Err(IndexError::bad(format!("Field {k:?} given twice")));
        }
    }
    Ok(fields)
}

/// The operation a `POST /manage/project/<project>/<action>` asks for.
pub fn operation_from_request(
    project: &str,
    action: &str,
    fields: &std::collections::HashMap<String, String>,
) -> Result<Operation, IndexError> {
    let field = |k: &str| fields.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let action = match action {
        "yank" => Action::Yank {
            reason: field("reason").unwrap_or("").to_string(),
        },
        "unyank" => Action::Unyank,
        "remove" => Action::Remove,
        other => {
            return Err(not_found(format!(
                "No action {other:?}: use yank, unyank or remove"
            )))
        }
    };
    if field("reason").is_some() && action.name() != "yank" {
        return Err(IndexError::bad("Only yank takes a reason"));
    }
    let selector = match (field("filename"), field("version")) {
        (Some(_), Some(_)) => {
            return Err(IndexError::bad("Give filename or version, not both"));
        }
        (Some(f), None) => Selector::File(f.to_string()),
        (None, Some(v)) => Selector::Release(v.to_string()),
        (None, None) if action == Action::Remove => {
            // Removing a whole project cannot be undone: it must be asked for by name.
            if field("confirm").map(normalize) != Some(normalize(project)) {
                return Err(IndexError::bad(format!(
                    "Say what to remove: filename=..., version=..., or the whole project with confirm={project}"
                )));
            }
            Selector::Project
        }
        (None, None) => {
            return Err(IndexError::bad(format!(
                "Say what to {}: filename=... or version=...",
                action.name()
            )));
        }
    };
    if field("confirm").is_some() && selector != Selector::Project {
        return Err(IndexError::bad(
            "confirm is only for removing a whole project",
        ));
    }
    Ok(Operation {
        project: project.to_string(),
        selector,
        action,
    })
}

/// The JSON answer describing `out` of `action`.
pub fn outcome_json(action: &Action, out: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "project": out.project,
        "action": action.name(),
        "changed": out.changed,
        "unchanged": out.unchanged,
        "project_removed": out.project_removed,
    })
}
