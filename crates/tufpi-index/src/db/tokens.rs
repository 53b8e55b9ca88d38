//! Upload tokens: only their SHA-256 is stored, with the project each may upload to.

use base64::Engine;
use rand_core::{OsRng, RngCore};

use super::conn::{dispatch, now_text, IndexDb};
use crate::error::IndexError;
use crate::names::{normalize, valid_project_name};

/// A stored token: (hash, project, description, created).
pub(super) type TokenRow = (String, Option<String>, Option<String>, String);

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    /// Short id (hash prefix) for listing and revoking.
    pub id: String,
    /// The only project (normalised) it may upload to, or any if `None`.
    pub project: Option<String>,
}

/// The SHA-256 (hex) under which a token is stored.
pub fn hash_token(token: &str) -> String {
    tufpi_core::hashes::digest_hex("sha256", token.as_bytes()).expect("sha256 is known")
}

/// A new random upload token (`tufpi-` + 32 random bytes, base64url).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "tufpi-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl IndexDb {
    /// Create an upload token, optionally limited to `project`; returns the token (shown
    /// once: only its hash is stored).
    pub fn create_token(
        &mut self,
        project: Option<&str>,
        description: Option<&str>,
    ) -> Result<String, IndexError> {
        if let Some(p) = project {
            if !valid_project_name(p) {
                return Err(IndexError::bad(format!("invalid project name {p:?}")));
            }
        }
        let token = new_token();
        let project = project.map(normalize);
        dispatch!(&mut self.backend, b => b.insert_token(
            &hash_token(&token),
            project.as_deref(),
            description,
            &now_text(),
        ))?;
        Ok(token)
    }

    /// The scope of `token`, if it is a known token.
    pub fn token_scope(&self, token: &str) -> Result<Option<TokenScope>, IndexError> {
        let hash = hash_token(token);
        Ok(
            dispatch!(&self.backend, b => b.token_project(&hash))?.map(|project| TokenScope {
                id: hash[..12].to_string(),
                project,
            }),
        )
    }

    /// Every token: (id, project, description, created).
    #[allow(clippy::type_complexity)]
    pub fn tokens(
        &self,
    ) -> Result<Vec<(String, Option<String>, Option<String>, String)>, IndexError> {
        let rows = dispatch!(&self.backend, b => b.tokens())?;
        Ok(rows
            .into_iter()
            .map(|(hash, project, description, created)| {
                // A malformed stored hash shows whole rather than panicking on a slice.
                let id = hash.get(..12).map(str::to_string).unwrap_or(hash);
                (id, project, description, created)
            })
            .collect())
    }

    /// Revoke the token whose id (hash prefix, at least 8 characters) is `id`; `false` if no
    /// token has it. A prefix matching several tokens revokes none: the refusal lists their
    /// ids, each long enough to tell them apart.
    pub fn revoke_token(&mut self, id: &str) -> Result<bool, IndexError> {
        if id.len() < 8 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IndexError::bad(
                "give a token id (from `token list`) of at least 8 hex digits",
            ));
        }
        let id = id.to_ascii_lowercase();
        // The backend deletes the token only if it is the one match, in one transaction.
        let matches = dispatch!(&mut self.backend, b => b.revoke_matching(&id))?;
        match matches.as_slice() {
            [] => Ok(false),
            [_] => Ok(true),
            many => {
                // The shortest prefix (at least the 12 digits `token list` shows) that
                // still tells every match apart.
                let len = (12..64)
                    .find(|&l| {
                        let ids: std::collections::BTreeSet<&str> =
                            many.iter().map(|h| prefix(h, l)).collect();
                        ids.len() == many.len()
                    })
                    .unwrap_or(64);
                let ids: Vec<&str> = many.iter().map(|h| prefix(h, len)).collect();
                Err(IndexError::bad(format!(
                    "token id {id} is ambiguous: it matches {} tokens ({}); give more of the id, nothing was revoked",
                    many.len(),
                    ids.join(", ")
                )))
            }
        }
    }
}

/// The first `len` bytes of a stored hash (all of it if shorter or not cut at a character).
fn prefix(hash: &str, len: usize) -> &str {
    hash.get(..len).unwrap_or(hash)
}
