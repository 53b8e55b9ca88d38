//! Upload tokens: only their SHA-256 is stored, with the project each may upload to.

use base64::Engine;
use rand_core::{OsRng, RngCore};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::conn::{now_text, IndexDb};
use crate::error::IndexError;
use crate::names::{normalize, valid_project_name};

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
        self.conn.execute(
            "INSERT INTO tokens(hash, project, description, created) VALUES (?1, ?2, ?3, ?4)",
            params![
                hash_token(&token),
                project.map(normalize),
                description,
                now_text()
            ],
        )?;
        Ok(token)
    }

    /// The scope of `token`, if it is a known token.
    pub fn token_scope(&self, token: &str) -> Result<Option<TokenScope>, IndexError> {
        let hash = hash_token(token);
        Ok(self
            .conn
            .query_row(
                "SELECT project FROM tokens WHERE hash = ?1",
                params![hash],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .map(|project| TokenScope {
                id: hash[..12].to_string(),
                project,
            }))
    }

    /// Every token: (id, project, description, created).
    #[allow(clippy::type_complexity)]
    pub fn tokens(
        &self,
    ) -> Result<Vec<(String, Option<String>, Option<String>, String)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash, project, description, created FROM tokens ORDER BY created")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?[..12].to_string(),
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let matches: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT hash FROM tokens WHERE substr(hash, 1, ?1) = ?2 ORDER BY hash")?;
            let rows = stmt.query_map(params![id.len() as i64, id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        match matches.as_slice() {
            [] => Ok(false),
            [hash] => {
                tx.execute("DELETE FROM tokens WHERE hash = ?1", params![hash])?;
                tx.commit()?;
                Ok(true)
            }
            many => {
                // The shortest prefix (at least the 12 digits `token list` shows) that
                // still tells every match apart.
                let len = (12..64)
                    .find(|&l| {
                        let ids: std::collections::BTreeSet<&str> =
                            many.iter().map(|h| &h[..l]).collect();
                        ids.len() == many.len()
                    })
                    .unwrap_or(64);
                let ids: Vec<&str> = many.iter().map(|h| &h[..len]).collect();
                Err(IndexError::bad(format!(
                    "token id {id} is ambiguous: it matches {} tokens ({}); give more of the id, nothing was revoked",
                    many.len(),
                    ids.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, IndexDb) {
        let d = tempfile::tempdir().unwrap();
        let db = IndexDb::open(&d.path().join("index.db")).unwrap();
        (d, db)
    }

    #[test]
    fn tokens_are_stored_hashed_and_scoped() {
        let (d, mut db) = db();
        let any = db.create_token(None, Some("ci")).unwrap();
        let scoped = db.create_token(Some("Foo_Bar"), None).unwrap();
        assert!(any.starts_with("tufpi-") && any.len() > 40);
        assert_ne!(any, scoped);
        assert_eq!(db.token_scope(&any).unwrap().unwrap().project, None);
        assert_eq!(
            db.token_scope(&scoped).unwrap().unwrap().project.as_deref(),
            Some("foo-bar")
        );
        assert_eq!(db.token_scope("tufpi-nope").unwrap(), None);
        assert_eq!(db.token_scope("").unwrap(), None);
        // Only the hash is on disk.
        drop(db);
        let raw = std::fs::read(d.path().join("index.db")).unwrap();
        let wal = std::fs::read(d.path().join("index.db-wal")).unwrap_or_default();
        for bytes in [raw, wal] {
            assert!(!bytes.windows(any.len()).any(|w| w == any.as_bytes()));
        }
        let db = IndexDb::open(&d.path().join("index.db")).unwrap();
        let h = hash_token(&any);
        assert!(db.tokens().unwrap().iter().any(|t| h.starts_with(&t.0)));
    }

    #[test]
    fn tokens_can_be_revoked() {
        let (_d, mut db) = db();
        let t = db.create_token(None, None).unwrap();
        let id = db.token_scope(&t).unwrap().unwrap().id;
        assert!(db.revoke_token("abc").is_err());
        assert!(db.revoke_token(&id).unwrap());
        assert_eq!(db.token_scope(&t).unwrap(), None);
        assert!(db.create_token(Some("bad name"), None).is_err());
    }

    #[test]
    fn an_ambiguous_token_id_revokes_nothing() {
        let (_d, mut db) = db();
        // Two tokens whose hashes share their first 12 hex digits, a third sharing 8.
        let a = format!("deadbeef0123{}", "a".repeat(52));
        let b = format!("deadbeef0123{}", "b".repeat(52));
        let c = format!("deadbeef9999{}", "c".repeat(52));
        for h in [&a, &b, &c] {
            db.conn
                .execute(
                    "INSERT INTO tokens(hash, project, description, created) VALUES (?1, NULL, NULL, '')",
                    params![h],
                )
                .unwrap();
        }
        let err = db.revoke_token("DEADBEEF").unwrap_err().to_string();
        assert!(err.contains("matches 3 tokens"), "{err}");
        // The ids listed are long enough to tell the matches apart.
        for id in ["deadbeef0123a", "deadbeef0123b", "deadbeef9999"] {
            assert!(err.contains(id), "{err}");
        }
        assert_eq!(db.tokens().unwrap().len(), 3);
        let err = db.revoke_token("deadbeef0123").unwrap_err().to_string();
        assert!(err.contains("matches 2 tokens"), "{err}");
        assert_eq!(db.tokens().unwrap().len(), 3);
        // An unambiguous prefix revokes exactly that token.
        assert!(db.revoke_token("deadbeef9").unwrap());
        assert!(db.revoke_token("deadbeef0123a").unwrap());
        let left: Vec<String> = db.tokens().unwrap().into_iter().map(|t| t.0).collect();
        assert_eq!(left, ["deadbeef0123"]);
        assert!(!db.revoke_token("deadbeef0123a").unwrap());
        assert!(db.revoke_token("deadbeef").unwrap());
        assert!(db.tokens().unwrap().is_empty());
    }
}
