//! The index database (`DIR/index.db`, SQLite): projects, files, every filename and every
//! distribution identity ([`DistIdentity`]: project, release, wheel tags) ever used, rendered
//! pages, upload tokens (only their SHA-256 is stored) and an outbox of TUF target
//! changes not yet handed to the repository queue.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use base64::Engine;
use rand_core::{OsRng, RngCore};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use tufpi_repo::{Change, TargetRecord};
use tufpi_simple::targets::{basename, is_page_path, metadata_path, split_metadata};
use tufpi_simple::PageKind;

use crate::error::IndexError;
use crate::names::{normalize, valid_project_name, DistIdentity, DistKind};
use crate::pages::{Digests, FileRow};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created TEXT NOT NULL,
    html_sha256 TEXT,
    json_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS files (
    filename TEXT PRIMARY KEY COLLATE NOCASE,
    project TEXT NOT NULL,
    version TEXT NOT NULL,
    packagetype TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b TEXT NOT NULL,
    requires_python TEXT,
    metadata_size INTEGER,
    metadata_sha256 TEXT,
    metadata_blake2b TEXT,
    upload_time TEXT NOT NULL,
    yanked TEXT
);
CREATE INDEX IF NOT EXISTS files_project ON files(project);
CREATE TABLE IF NOT EXISTS used_filenames (filename TEXT PRIMARY KEY COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS used_dists (key TEXT PRIMARY KEY, filename TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    sha256 TEXT PRIMARY KEY,
    blake2b TEXT NOT NULL,
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_blake2b ON pages(blake2b);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    project TEXT,
    description TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b TEXT NOT NULL,
    op TEXT NOT NULL DEFAULT 'add'
);
";

/// The stored files the database references (see [`IndexDb::with_references`]).
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Target paths (`packages/…`) of distributions and their `.metadata` files.
    pub files: HashSet<String>,
    /// SHA-256s of stored pages (`pages/<sha256>`), current and past.
    pub pages: HashSet<String>,
}

/// Renders a project's pages from its files and stores them; returns their digests, HTML
/// then JSON.
pub type RenderFn<'a> = dyn FnMut(&[FileRow]) -> Result<[Digests; 2], IndexError> + 'a;

/// A project's names and current pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Normalised name.
    pub name: String,
    /// Name as first uploaded.
    pub display_name: String,
    /// SHA-256 of the current HTML page.
    pub html_sha256: Option<String>,
    /// SHA-256 of the current JSON page.
    pub json_sha256: Option<String>,
}

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

pub(crate) fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    let meta: (Option<i64>, Option<String>, Option<String>) = (r.get(9)?, r.get(10)?, r.get(11)?);
    Ok(FileRow {
        filename: r.get(0)?,
        project: r.get(1)?,
        version: r.get(2)?,
        packagetype: r.get(3)?,
        path: r.get(4)?,
        digests: Digests {
            size: r.get::<_, i64>(5)? as u64,
            sha256: r.get(6)?,
            blake2b: r.get(7)?,
        },
        requires_python: r.get(8)?,
        metadata: match meta {
            (Some(size), Some(sha256), Some(blake2b)) => Some(Digests {
                size: size as u64,
                sha256,
                blake2b,
            }),
            _ => None,
        },
        upload_time: r.get(12)?,
        yanked: r.get(13)?,
    })
}

const FILE_COLUMNS: &str = "filename, project, version, packagetype, path, size, sha256, blake2b, requires_python, metadata_size, metadata_sha256, metadata_blake2b, upload_time, yanked";

/// The TUF target record of a stored file or page, with every digest the index keeps (the
/// repository lists those its target hashes name).
pub(crate) fn target(path: &str, d: &Digests) -> TargetRecord {
    TargetRecord {
        path: path.to_string(),
        length: d.size,
        hashes: digest_map(d),
        custom: None,
    }
}

/// The digests the index keeps of every file and page, as TUF names them.
pub(crate) const KEPT_HASHES: [&str; 2] = ["sha256", "blake2b-256"];

fn digest_map(d: &Digests) -> BTreeMap<String, String> {
    KEPT_HASHES
        .into_iter()
        .map(String::from)
        .zip([d.sha256.clone(), d.blake2b.clone()])
        .collect()
}

/// The index database.
pub struct IndexDb {
    pub(crate) conn: Connection,
}

impl IndexDb {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<IndexDb, IndexError> {
        let mut conn = Connection::open(path)?;
        // WAL + synchronous=FULL: an acknowledged upload survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        Ok(IndexDb { conn })
    }

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

    /// Whether `filename` was ever used in this index (case-insensitively), even if deleted,
    /// or names a distribution identity used before (read from the name alone:
    /// [`DistIdentity::candidates`]; `alpha-4.0.0-py3-none-any.whl` after
    /// `alpha-4-py3-none-any.whl`).
    pub fn filename_used(&self, filename: &str) -> Result<bool, IndexError> {
        let exact = self
            .conn
            .query_row(
                "SELECT 1 FROM used_filenames WHERE filename = ?1",
                params![filename],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exact {
            return Ok(true);
        }
        for id in DistIdentity::candidates(filename) {
            if dist_used(&self.conn, &id)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The file that holds, or once held, distribution identity `id` in this index.
    pub fn dist_used(&self, id: &DistIdentity) -> Result<Option<String>, IndexError> {
        dist_used(&self.conn, id)
    }

    /// A project by normalised name.
    pub fn project(&self, name: &str) -> Result<Option<Project>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, display_name, html_sha256, json_sha256 FROM projects WHERE name = ?1",
                params![name],
                |r| {
                    Ok(Project {
                        name: r.get(0)?,
                        display_name: r.get(1)?,
                        html_sha256: r.get(2)?,
                        json_sha256: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every project: (normalised, display) names, by normalised name.
    pub fn projects(&self) -> Result<Vec<(String, String)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, display_name FROM projects ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The files of a project (normalised name).
    pub fn files_of(&self, project: &str) -> Result<Vec<FileRow>, IndexError> {
        files_of(&self.conn, project)
    }

    /// A file by name.
    pub fn file(&self, filename: &str) -> Result<Option<FileRow>, IndexError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {FILE_COLUMNS} FROM files WHERE filename = ?1"),
                params![filename],
                file_row,
            )
            .optional()?)
    }

    /// Every digest the index keeps of the file or page that target `path` lists with the
    /// SHA-256 in `listed` (`None` if it keeps no such content: it lists only its own).
    pub fn known_hashes(
        &self,
        path: &str,
        listed: &BTreeMap<String, String>,
    ) -> Result<Option<BTreeMap<String, String>>, IndexError> {
        let Some(sha) = listed.get("sha256") else {
            return Ok(None);
        };
        let found = if is_page_path(path) {
            self.conn
                .query_row(
                    "SELECT size, sha256, blake2b FROM pages WHERE sha256 = ?1",
                    params![sha],
                    |r| {
                        Ok(Digests {
                            size: r.get::<_, i64>(0)? as u64,
                            sha256: r.get(1)?,
                            blake2b: r.get(2)?,
                        })
                    },
                )
                .optional()?
        } else {
            let (file, is_meta) = split_metadata(path);
            self.file(basename(file))?
                .filter(|row| row.path == file)
                .and_then(|row| {
                    if is_meta {
                        row.metadata
                    } else {
                        Some(row.digests)
                    }
                })
        };
        Ok(found.filter(|d| &d.sha256 == sha).map(|d| digest_map(&d)))
    }

    /// The SHA-256 of a stored page of `project` and `kind` whose SHA-256 or BLAKE2b-256 is
    /// `digest` (hex).
    pub fn page(
        &self,
        project: &str,
        kind: PageKind,
        digest: &str,
    ) -> Result<Option<String>, IndexError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256 FROM pages WHERE (sha256 = ?1 OR blake2b = ?1) AND project = ?2 AND kind = ?3",
                params![digest, project, kind.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stored pages no project shows any more: (sha256, project, kind).
    pub fn superseded_pages(&self) -> Result<Vec<crate::collect::Superseded>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT sha256, project, kind FROM pages WHERE sha256 NOT IN \
             (SELECT html_sha256 FROM projects WHERE html_sha256 IS NOT NULL \
              UNION SELECT json_sha256 FROM projects WHERE json_sha256 IS NOT NULL)",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (sha, project, kind) = row?;
            let Some(kind) = PageKind::from_name(&kind) else {
                continue;
            };
            out.push((sha, project, kind));
        }
        Ok(out)
    }

    /// Forget each of `pages` that is still superseded and delete its file with `remove`,
    /// in one write transaction: a commit that makes such a page current again (same bytes)
    /// either comes first (the page is kept) or after (it finds the file gone and writes it
    /// again). Returns how many were deleted.
    pub fn delete_superseded_pages(
        &mut self,
        pages: &[String],
        remove: &dyn Fn(&str) -> Result<(), IndexError>,
    ) -> Result<usize, IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        for sha in pages {
            let current: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM projects WHERE html_sha256 = ?1 OR json_sha256 = ?1)",
                params![sha],
                |r| r.get(0),
            )?;
            if current {
                continue;
            }
            remove(sha)?;
            deleted += tx.execute("DELETE FROM pages WHERE sha256 = ?1", params![sha])?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Numbers of projects and files.
    pub fn counts(&self) -> Result<(u64, u64), IndexError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM projects), (SELECT COUNT(*) FROM files)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Record an uploaded file in one transaction: the filename as used, the project (created
    /// with `display_name` if new), the file, its project's new pages (`render` is given the
    /// project's files, stores both pages and returns their digests, HTML then JSON), and the
    /// TUF target changes in the outbox. A filename used before is refused.
    pub fn commit_upload(
        &mut self,
        file: &FileRow,
        display_name: &str,
        render: &mut RenderFn<'_>,
    ) -> Result<(), IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO used_filenames(filename) VALUES (?1)",
            params![file.filename],
        )?;
        if fresh == 0 {
            return Err(already_exists(&file.filename, &file.filename, None));
        }
        // One file per distribution identity, ever (also after a removal), and one release
        // per PEP 440 version: a file of 4.0.0 joins release 4.0 if it exists.
        let id = identity_of(file)?;
        if let Some(previous) = dist_used(&tx, &id)? {
            return Err(already_exists(&file.filename, &previous, Some(&id)));
        }
        tx.execute(
            "INSERT INTO used_dists(key, filename) VALUES (?1, ?2)",
            params![id.key(), file.filename],
        )?;
        let mut file = file.clone();
        if let Some(v) = release_version(&tx, &file.project, &file.version)? {
            file.version = v;
        }
        let file = &file;
        tx.execute(
            "INSERT OR IGNORE INTO projects(name, display_name, created) VALUES (?1, ?2, ?3)",
            params![file.project, display_name, now_text()],
        )?;
        let m = file.metadata.as_ref();
        tx.execute(
            &format!("INSERT INTO files({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![
                file.filename,
                file.project,
                file.version,
                file.packagetype,
                file.path,
                file.digests.size as i64,
                file.digests.sha256,
                file.digests.blake2b,
                file.requires_python,
                m.map(|d| d.size as i64),
                m.map(|d| d.sha256.clone()),
                m.map(|d| d.blake2b.clone()),
                file.upload_time,
                file.yanked,
            ],
        )?;
        let files = files_of(&tx, &file.project)?;
        let pages = render(&files)?;
        let mut changes = vec![Change::Add(target(&file.path, &file.digests))];
        if let Some(md) = m {
            changes.push(Change::Add(target(&metadata_path(&file.path), md)));
        }
        changes.extend(record_pages(&tx, &file.project, &pages)?);
        push_outbox(&tx, &changes)?;
        tx.commit()?;
        Ok(())
    }

    /// Run `f` with every stored file the database references, holding the database's write
    /// lock throughout, so no page can be stored and recorded meanwhile (pages are written
    /// inside write transactions). An upload moves its file in before its transaction: call
    /// this only where no upload can be in flight (a starting server, under the repository
    /// lock).
    pub fn with_references<T>(
        &mut self,
        f: impl FnOnce(&References) -> T,
    ) -> Result<T, IndexError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut refs = References::default();
        {
            let mut stmt = tx.prepare("SELECT path, metadata_sha256 IS NOT NULL FROM files")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let path: String = r.get(0)?;
                if r.get::<_, bool>(1)? {
                    refs.files.insert(metadata_path(&path));
                }
                refs.files.insert(path);
            }
            let mut stmt = tx.prepare("SELECT sha256 FROM pages")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                refs.pages.insert(r.get(0)?);
            }
        }
        let out = f(&refs);
        tx.rollback()?;
        Ok(out)
    }

    /// Target changes recorded but not yet queued in the repository, in order.
    pub fn outbox(&self) -> Result<Vec<Change>, IndexError> {
        read_outbox(&self.conn).map(|(_, changes)| changes)
    }

    /// Number of changes in the outbox.
    pub fn outbox_len(&self) -> Result<u64, IndexError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Hand the outbox to `queue` (which durably queues the changes in the repository) and
    /// forget it, inside one write transaction: flushes from several connections or
    /// processes (server, publisher, `tufpi project`) are serialised, so changes reach the
    /// repository queue in the order they were committed. If this dies after `queue` but
    /// before the commit, the next flush queues the same changes again, still ahead of any
    /// later ones: harmless. Returns how many changes were handed over.
    pub fn drain_outbox(
        &mut self,
        queue: &mut dyn FnMut(&[Change]) -> Result<(), IndexError>,
    ) -> Result<usize, IndexError> {
        // Most calls find nothing: check without taking the write lock.
        let empty: bool =
            self.conn
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM outbox)", [], |r| r.get(0))?;
        if empty {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (last, changes) = read_outbox(&tx)?;
        if changes.is_empty() {
            return Ok(0);
        }
        queue(&changes)?;
        tx.execute("DELETE FROM outbox WHERE seq <= ?1", params![last])?;
        tx.commit()?;
        Ok(changes.len())
    }
}

/// Add columns that databases made by earlier versions lack (serialised against other
/// processes opening the same database).
fn migrate(conn: &mut Connection) -> Result<(), IndexError> {
    let has_op = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'op'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if !has_op(conn)? {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !has_op(&tx)? {
            tx.execute_batch("ALTER TABLE outbox ADD COLUMN op TEXT NOT NULL DEFAULT 'add'")?;
        }
        tx.commit()?;
    }
    backfill_used_dists(conn)
}

/// Record the distribution identities of the files used before `used_dists` existed: those of
/// current files exactly, and every identity each filename ever used may stand for.
fn backfill_used_dists(conn: &mut Connection) -> Result<(), IndexError> {
    let needed = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM used_dists) AND EXISTS (SELECT 1 FROM used_filenames)",
            [],
            |r| r.get(0),
        )
    };
    if !needed(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if needed(&tx)? {
        let mut ids: Vec<(String, String)> = Vec::new();
        {
            let mut stmt = tx.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM files ORDER BY upload_time"
            ))?;
            for f in stmt.query_map([], file_row)? {
                let f = f?;
                if let Ok(id) = identity_of(&f) {
                    ids.push((id.key(), f.filename));
                }
            }
            let mut stmt = tx.prepare("SELECT filename FROM used_filenames")?;
            for name in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let name = name?;
                for id in DistIdentity::candidates(&name) {
                    ids.push((id.key(), name.clone()));
                }
            }
        }
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO used_dists(key, filename) VALUES (?1, ?2)")?;
        for (key, name) in &ids {
            insert.execute(params![key, name])?;
        }
        drop(insert);
        tracing::info!(
            identities = ids.len(),
            "recorded the distribution identities of earlier uploads"
        );
    }
    tx.commit()?;
    Ok(())
}

/// The distribution identity of a stored file.
fn identity_of(file: &FileRow) -> Result<DistIdentity, IndexError> {
    let kind = if file.packagetype == DistKind::Wheel.packagetype() {
        DistKind::Wheel
    } else {
        DistKind::Sdist
    };
    let version = crate::names::parse_version(&file.version).map_err(IndexError::Internal)?;
    DistIdentity::new(&file.filename, &file.project, &version, kind).map_err(IndexError::Internal)
}

fn dist_used(conn: &Connection, id: &DistIdentity) -> Result<Option<String>, IndexError> {
    Ok(conn
        .query_row(
            "SELECT filename FROM used_dists WHERE key = ?1",
            params![id.key()],
            |r| r.get(0),
        )
        .optional()?)
}

/// The version string of `project`'s release that is PEP 440-equal to `version`, if it has
/// one (`4.0` for `4.0.0`).
fn release_version(
    conn: &Connection,
    project: &str,
    version: &str,
) -> Result<Option<String>, IndexError> {
    let Ok(want) = crate::names::parse_version(version) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached("SELECT DISTINCT version FROM files WHERE project = ?1")?;
    let versions = stmt.query_map(params![project], |r| r.get::<_, String>(0))?;
    for v in versions {
        let v = v?;
        if crate::names::parse_version(&v).is_ok_and(|p| p == want) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The refusal of `filename` because `previous` holds (or held) the same distribution
/// identity `id` (or the same name, when `id` is `None`).
pub fn already_exists(filename: &str, previous: &str, id: Option<&DistIdentity>) -> IndexError {
    let msg = match id {
        None => format!(
            "File already exists: {filename:?} has been used before in this index; upload a new version instead"
        ),
        Some(id) if previous.eq_ignore_ascii_case(filename) => format!(
            "File already exists: {filename:?} has been used before in this index ({}); upload a new version instead",
            id.describe()
        ),
        Some(id) if id.kind == DistKind::Sdist => format!(
            "File already exists: {filename:?} would be a second sdist of {} {}: {previous:?} was uploaded before (one sdist per release, even once removed; versions compare as PEP 440); upload a new version instead",
            id.project, id.version
        ),
        Some(id) => format!(
            "File already exists: {filename:?} is the same file as {previous:?}, uploaded before in this index: {} (versions compare as PEP 440, tags once expanded); upload a new version instead",
            id.describe()
        ),
    };
    IndexError::bad(msg)
}

/// Record `project`'s newly rendered pages (HTML, JSON) as its current ones; returns their
/// target changes.
pub(crate) fn record_pages(
    conn: &Connection,
    project: &str,
    pages: &[Digests; 2],
) -> Result<Vec<Change>, IndexError> {
    let mut changes = Vec::with_capacity(2);
    for (kind, d) in PageKind::ALL.into_iter().zip(pages.iter()) {
        conn.execute(
            "INSERT OR IGNORE INTO pages(sha256, blake2b, project, kind, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![d.sha256, d.blake2b, project, kind.as_str(), d.size as i64],
        )?;
        changes.push(Change::Add(target(&kind.target_path(project), d)));
    }
    conn.execute(
        "UPDATE projects SET html_sha256 = ?1, json_sha256 = ?2 WHERE name = ?3",
        params![pages[0].sha256, pages[1].sha256, project],
    )?;
    Ok(changes)
}

/// Append target changes to the outbox (inside the caller's transaction).
pub(crate) fn push_outbox(conn: &Connection, changes: &[Change]) -> Result<(), IndexError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO outbox(op, path, size, sha256, blake2b) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for c in changes {
        match c {
            Change::Add(t) => stmt.execute(params![
                "add",
                t.path,
                t.length as i64,
                t.hashes.get("sha256").map(String::as_str).unwrap_or(""),
                t.hashes
                    .get("blake2b-256")
                    .map(String::as_str)
                    .unwrap_or("")
            ])?,
            Change::Remove(path) => stmt.execute(params!["remove", path, 0i64, "", ""])?,
        };
    }
    Ok(())
}

/// The outbox in order, with the sequence number of its last entry.
fn read_outbox(conn: &Connection) -> Result<(i64, Vec<Change>), IndexError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, op, path, size, sha256, blake2b FROM outbox ORDER BY seq")?;
    let rows: Vec<(i64, String, String, i64, String, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let last = rows.last().map(|r| r.0).unwrap_or(0);
    let changes = rows
        .into_iter()
        .map(|(_, op, path, size, sha256, blake2b)| {
            if op == "remove" {
                Change::Remove(path)
            } else {
                Change::Add(target(
                    &path,
                    &Digests {
                        size: size as u64,
                        sha256,
                        blake2b,
                    },
                ))
            }
        })
        .collect();
    Ok((last, changes))
}

pub(crate) fn files_of(conn: &Connection, project: &str) -> Result<Vec<FileRow>, IndexError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE project = ?1 ORDER BY filename"
    ))?;
    let rows = stmt.query_map(params![project], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    fn old_outboxes_are_migrated_and_drained_in_order() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("index.db");
        // A database made before removals existed: no `op` column, one pending add.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL,
                 size INTEGER NOT NULL, sha256 TEXT NOT NULL, blake2b TEXT NOT NULL);
                 INSERT INTO outbox(path, size, sha256, blake2b) VALUES ('a', 1, 'x', 'y');",
            )
            .unwrap();
        let mut db = IndexDb::open(&path).unwrap();
        let _again = IndexDb::open(&path).unwrap();
        push_outbox(&db.conn, &[Change::Remove("a".into())]).unwrap();
        assert_eq!(db.outbox_len().unwrap(), 2);
        let mut seen = Vec::new();
        let n = db
            .drain_outbox(&mut |c| {
                seen.extend(
                    c.iter()
                        .map(|c| (matches!(c, Change::Add(_)), c.path().to_string())),
                );
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, [(true, "a".to_string()), (false, "a".to_string())]);
        // A failed hand-over keeps the outbox for the next try.
        push_outbox(&db.conn, &[Change::Remove("b".into())]).unwrap();
        let err = db.drain_outbox(&mut |_| Err(IndexError::Internal("queue down".into())));
        assert!(err.is_err());
        assert_eq!(db.outbox().unwrap(), vec![Change::Remove("b".into())]);
        assert_eq!(db.drain_outbox(&mut |_| Ok(())).unwrap(), 1);
        assert_eq!(db.drain_outbox(&mut |_| Ok(())).unwrap(), 0);
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
