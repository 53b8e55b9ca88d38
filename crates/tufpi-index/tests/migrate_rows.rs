//! The index's rows exported from SQLite and imported into PostgreSQL come back the same:
//! yanks with and without a reason, a removed file (its name and identity still used), an
//! outbox holding additions and removals in order, scoped and unscoped tokens; an import into
//! tables that hold rows is refused.

mod common;

use common::*;
use tufpi_index::db::IndexDb;
use tufpi_index::storage::Storage;
use tufpi_index::{Action, Operation, Selector};
use tufpi_pg::testing::TestDb;
use tufpi_repo::Change;

async fn source() -> tempfile::TempDir {
    let t = index();
    t.upload_all(&demo_files()).await;
    t.close()
}

#[test]
fn rows_survive_the_move_to_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = rt.block_on(source());
    drop(rt);
    let mut db = IndexDb::open(&dir.path().join("index.db")).unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    db.create_token(Some("demo"), None).unwrap();
    db.create_token(None, Some("admin")).unwrap();
    for (selector, action) in [
        (
            Selector::File("demo-1.0.tar.gz".into()),
            Action::Yank {
                reason: String::new(),
            },
        ),
        (
            Selector::Release("2.0".into()),
            Action::Yank {
                reason: "broken".into(),
            },
        ),
        (
            Selector::File("demo-1.0-py3-none-any.whl".into()),
            Action::Remove,
        ),
    ] {
        let op = Operation {
            project: "demo".into(),
            selector,
            action,
        };
        tufpi_index::manage::apply(&mut db, &storage, &op).unwrap();
    }
    let rows = db.export().unwrap();
    assert!(rows.outbox.iter().any(|c| matches!(c, Change::Remove(_))));
    assert_eq!(rows.files.len(), 2);
    assert_eq!(
        rows.used_filenames.len(),
        3,
        "a removed file's name stays used"
    );
    assert_eq!(rows.tokens.len(), 3);

    let pg = TestDb::create();
    let mut target = IndexDb::open_postgres(&pg.database()).unwrap();
    assert!(target.tables_with_rows().unwrap().is_empty());
    target.import(&rows).unwrap();
    assert_eq!(target.export().unwrap(), rows);
    assert_eq!(target.outbox().unwrap(), rows.outbox);
    // The rules hold on the imported rows: the removed file's name is still used.
    assert!(target.filename_used("demo-1.0-py3-none-any.whl").unwrap());
    assert!(target.filename_used("DEMO-1.0-py3-none-any.whl").unwrap());
    let err = target.import(&rows).unwrap_err().to_string();
    assert!(err.contains("holds an index already"), "{err}");
    assert!(IndexDb::open(&dir.path().join("x.db"))
        .unwrap()
        .import(&rows)
        .is_err());
}
