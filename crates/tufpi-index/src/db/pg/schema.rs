//! The PostgreSQL tables of the index (schema component `index`), prefixed `index_` so they
//! sit next to the repository's `repo_*` tables in one database: an upload's rows and its
//! queued change then commit in one transaction. Migration N is the N-th entry; never edit
//! one that has shipped, append another.
//!
//! Differences from the SQLite tables, each keeping SQLite's behaviour:
//! - text keys are `COLLATE "C"` (byte order, as SQLite's BINARY), whatever the database's
//!   default collation, so listings sort the same on both;
//! - SQLite's `filename ... COLLATE NOCASE` becomes a `filename_key` column holding the name
//!   with ASCII letters lowered (exactly what NOCASE folds), unique, next to the name as
//!   given;
//! - the outbox's sequence is an identity column.

/// The migrations, in order.
pub(super) const MIGRATIONS: &[&str] = &[V1];

const V1: &str = r#"
CREATE TABLE index_projects (
    name TEXT COLLATE "C" PRIMARY KEY,
    display_name TEXT NOT NULL,
    created TEXT NOT NULL,
    html_sha256 TEXT COLLATE "C",
    json_sha256 TEXT COLLATE "C"
);
CREATE INDEX index_projects_html ON index_projects(html_sha256);
CREATE INDEX index_projects_json ON index_projects(json_sha256);
CREATE TABLE index_files (
    filename_key TEXT COLLATE "C" PRIMARY KEY,
    filename TEXT NOT NULL,
    project TEXT COLLATE "C" NOT NULL,
    version TEXT NOT NULL,
    packagetype TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b TEXT NOT NULL,
    requires_python TEXT,
    metadata_size BIGINT,
    metadata_sha256 TEXT,
    metadata_blake2b TEXT,
    upload_time TEXT NOT NULL,
    yanked TEXT
);
CREATE INDEX index_files_project ON index_files(project);
CREATE TABLE index_used_filenames (
    filename_key TEXT COLLATE "C" PRIMARY KEY,
    filename TEXT NOT NULL
);
CREATE TABLE index_used_dists (
    key TEXT COLLATE "C" PRIMARY KEY,
    filename TEXT NOT NULL
);
CREATE TABLE index_pages (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    blake2b TEXT COLLATE "C" NOT NULL,
    project TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL
);
CREATE INDEX index_pages_blake2b ON index_pages(blake2b);
CREATE TABLE index_tokens (
    hash TEXT COLLATE "C" PRIMARY KEY,
    project TEXT,
    description TEXT,
    created TEXT NOT NULL
);
CREATE TABLE index_outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b TEXT NOT NULL
);
"#;

/// The key SQLite's `COLLATE NOCASE` compares a filename by: ASCII letters lowered.
pub(super) fn filename_key(filename: &str) -> String {
    filename.to_ascii_lowercase()
}
