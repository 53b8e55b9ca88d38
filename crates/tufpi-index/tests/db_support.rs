//! Helpers for the database tests (`db_*.rs`): an index database on each backend (SQLite in
//! a temp dir, PostgreSQL in a database of its own per run, dropped afterwards), file rows
//! and the page rendering an upload does.

#![allow(dead_code)]

use tufpi_index::db::IndexDb;
use tufpi_index::pages::{self, Digests, FileRow};
use tufpi_index::storage::{digests, Storage};
use tufpi_index::IndexError;
use tufpi_pg::testing::TestDb;

/// A database on one backend with a storage area. Fields drop in order: the database's
/// pool closes before its PostgreSQL test database is dropped.
pub struct Case {
    pub db: IndexDb,
    pub storage: Storage,
    pub name: &'static str,
    pub pg: Option<TestDb>,
    pub dir: tempfile::TempDir,
}

impl Case {
    /// Another handle on the same database (a second process or replica).
    pub fn reopen(&self) -> IndexDb {
        match &self.pg {
            Some(t) => IndexDb::open_postgres(&t.database()).unwrap(),
            None => IndexDb::open(&self.dir.path().join("index.db")).unwrap(),
        }
    }
}

/// A fresh SQLite database.
pub fn sqlite() -> Case {
    let dir = tempfile::tempdir().unwrap();
    Case {
        db: IndexDb::open(&dir.path().join("index.db")).unwrap(),
        storage: Storage::open(dir.path()).unwrap(),
        name: "sqlite",
        pg: None,
        dir,
    }
}

/// A fresh PostgreSQL database.
pub fn postgres() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let t = TestDb::create();
    Case {
        db: IndexDb::open_postgres(&t.database()).unwrap(),
        storage: Storage::open(dir.path()).unwrap(),
        name: "postgres",
        pg: Some(t),
        dir,
    }
}

/// Run `test` on each backend.
pub fn matrix(test: impl Fn(Case)) {
    for case in [sqlite, postgres] {
        test(case());
    }
}

/// Digests of some bytes named after `what` (the tests never read the files).
pub fn fake(what: &str) -> Digests {
    digests(what.as_bytes())
}

/// The row of wheel `filename` of `project` `version` (with core metadata).
pub fn wheel_row(project: &str, version: &str, filename: &str) -> FileRow {
    let d = fake(filename);
    FileRow {
        filename: filename.to_string(),
        project: project.to_string(),
        version: version.to_string(),
        packagetype: "bdist_wheel".to_string(),
        path: tufpi_simple::targets::package_path(&d.blake2b, filename),
        digests: d,
        requires_python: Some(">=3.8".to_string()),
        metadata: Some(fake(&format!("{filename}.metadata"))),
        upload_time: "2026-01-01T00:00:00.000000Z".to_string(),
        yanked: None,
    }
}

/// The row of sdist `filename` (no core metadata).
pub fn sdist_row(project: &str, version: &str, filename: &str) -> FileRow {
    FileRow {
        packagetype: "sdist".to_string(),
        metadata: None,
        requires_python: None,
        ..wheel_row(project, version, filename)
    }
}

/// Render and store `project`'s pages from `files`, as an upload does.
pub fn render(
    storage: &Storage,
    project: &str,
    files: &[FileRow],
) -> Result<[Digests; 2], IndexError> {
    Ok([
        storage.put_page(&pages::project_html(project, files))?,
        storage.put_page(&pages::project_json(project, files))?,
    ])
}

/// Commit `row` as an upload with display name `display`.
pub fn upload(
    db: &mut IndexDb,
    storage: &Storage,
    row: &FileRow,
    display: &str,
) -> Result<(), IndexError> {
    db.commit_upload(row, display, &mut |files| {
        render(storage, &row.project, files)
    })
}
