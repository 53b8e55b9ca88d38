//! Several replicas on one PostgreSQL database at once: what SQLite gets from its one write
//! lock must hold under concurrency too (a filename used once, identities unique, pages
//! recorded from every committed file, the outbox in commit order, each change handed over
//! once). Each test uses a database of its own, dropped afterwards.

#[path = "db_support.rs"]
mod support;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use support::{postgres, render, upload, wheel_row, Case};
use tufpi_index::db::IndexDb;
use tufpi_index::storage::Storage;
use tufpi_index::IndexError;
use tufpi_repo::Change;
use tufpi_simple::PageKind;

/// Run `n` uploads at once, each on its own handle (a replica), all released together.
fn race(case: &Case, rows: Vec<tufpi_index::pages::FileRow>) -> Vec<Result<(), IndexError>> {
    let barrier = Arc::new(Barrier::new(rows.len()));
    let handles: Vec<_> = rows
        .into_iter()
        .map(|row| {
            let mut db = case.reopen();
            let storage = Storage::open(case.dir.path()).unwrap();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                upload(&mut db, &storage, &row, &row.project.clone())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn already_exists(r: &Result<(), IndexError>) -> bool {
    matches!(r, Err(IndexError::Refused { status, message })
        if *status == StatusCode::BAD_REQUEST && message.starts_with("File already exists"))
}

/// Of `results` of racing uploads, exactly one went in; every other is refused as one that
/// already exists.
fn one_won(results: &[Result<(), IndexError>]) {
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().filter(|r| r.is_err()).all(already_exists),
        "{results:?}"
    );
}

#[test]
fn one_filename_committed_at_once_from_two_replicas_lands_once() {
    let case = postgres();
    // The first holds its transaction open (rendering) while the second commits the same
    // file: the second waits for it, then is refused as a later retry would be.
    let row = wheel_row("alpha", "1.0", "alpha-1.0-py3-none-any.whl");
    let (entered, rendering) = mpsc::channel();
    let first = {
        let mut db = case.reopen();
        let storage = Storage::open(case.dir.path()).unwrap();
        let row = row.clone();
        thread::spawn(move || {
            db.commit_upload(&row, "alpha", &mut |files| {
                entered.send(()).unwrap();
                thread::sleep(Duration::from_millis(300));
                render(&storage, "alpha", files)
            })
        })
    };
    rendering.recv().unwrap();
    let mut second = case.reopen();
    let r = upload(&mut second, &case.storage, &row, "alpha");
    first.join().unwrap().unwrap();
    assert!(already_exists(&r), "{r:?}");
    // And with both released at once, many times over: exactly one wins each time.
    for i in 0..10 {
        let name = format!("alpha-2.{i}-py3-none-any.whl");
        let rows = vec![wheel_row("alpha", &format!("2.{i}"), &name); 4];
        let results = race(&case, rows);
        one_won(&results);
    }
    assert_eq!(case.db.files_of("alpha").unwrap().len(), 11);
    // Every committed upload queued its file and pages, once.
    assert_eq!(case.db.outbox_len().unwrap(), 11 * 4);
}

#[test]
fn one_identity_under_two_names_at_once_lands_once() {
    let case = postgres();
    for i in 0..10 {
        // `4.0.{i}` and `4.0.{i}.0` are one PEP 440 version: one wheel for these tags.
        let rows = vec![
            wheel_row(
                "beta",
                &format!("4.0.{i}"),
                &format!("beta-4.0.{i}-py3-none-any.whl"),
            ),
            wheel_row(
                "beta",
                &format!("4.0.{i}.0"),
                &format!("beta-4.0.{i}.0-py3-none-any.whl"),
            ),
        ];
        let results = race(&case, rows);
        one_won(&results);
    }
    assert_eq!(case.db.files_of("beta").unwrap().len(), 10);
}

#[test]
fn uploads_of_one_project_at_once_all_land_with_consistent_pages_and_outbox() {
    let case = postgres();
    let n = 6;
    let rows: Vec<_> = (0..n)
        .map(|i| {
            wheel_row(
                "gamma",
                &format!("1.{i}"),
                &format!("gamma-1.{i}-py3-none-any.whl"),
            )
        })
        .collect();
    let results = race(&case, rows.clone());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let db = &case.db;
    let files = db.files_of("gamma").unwrap();
    assert_eq!(files.len(), n);
    // The current pages list every file: each upload rendered after the one before it
    // committed.
    let current = db.project("gamma").unwrap().unwrap();
    let want = render(&case.storage, "gamma", &files).unwrap();
    assert_eq!(current.html_sha256, Some(want[0].sha256.clone()));
    assert_eq!(current.json_sha256, Some(want[1].sha256.clone()));
    // The outbox holds each upload's changes together (file, metadata, html, json), in the
    // order they committed: the k-th upload's pages list k files, the last the current ones.
    let outbox = db.outbox().unwrap();
    assert_eq!(outbox.len(), n * 4);
    for (k, group) in outbox.chunks(4).enumerate() {
        let Change::Add(file) = &group[0] else {
            panic!("{group:?}")
        };
        assert!(rows.iter().any(|r| r.path == file.path));
        assert_eq!(group[2].path(), PageKind::Html.target_path("gamma"));
        let Change::Add(html) = &group[2] else {
            panic!("{group:?}")
        };
        let page = db
            .page("gamma", PageKind::Html, &html.hashes["sha256"])
            .unwrap();
        assert!(page.is_some(), "page {k} recorded");
        if k == n - 1 {
            assert_eq!(Some(html.hashes["sha256"].clone()), current.html_sha256);
        }
    }
    // Every page but the current two is superseded: each was recorded.
    assert_eq!(db.superseded_pages().unwrap().len(), 2 * (n - 1));
}

#[test]
fn drains_from_two_replicas_hand_each_change_over_once_in_order() {
    let case = postgres();
    let rows: Vec<_> = (0..8)
        .map(|i| wheel_row(&format!("p{i}"), "1", &format!("p{i}-1-py3-none-any.whl")))
        .collect();
    let handed = Arc::new(std::sync::Mutex::new(Vec::<Change>::new()));
    let barrier = Arc::new(Barrier::new(3));
    let drainers: Vec<_> = (0..2)
        .map(|_| {
            let mut db = case.reopen();
            let handed = handed.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..20 {
                    db.drain_outbox(&mut |c| {
                        // Slow hand-overs, so drains and commits overlap.
                        thread::sleep(Duration::from_millis(5));
                        handed.lock().unwrap().extend_from_slice(c);
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    let uploader = {
        let mut db = case.reopen();
        let storage = Storage::open(case.dir.path()).unwrap();
        let barrier = barrier.clone();
        thread::spawn(move || {
            barrier.wait();
            for r in &rows {
                upload(&mut db, &storage, r, &r.project).unwrap();
            }
        })
    };
    uploader.join().unwrap();
    for d in drainers {
        d.join().unwrap();
    }
    let mut db = case.reopen();
    db.drain_outbox(&mut |c| {
        handed.lock().unwrap().extend_from_slice(c);
        Ok(())
    })
    .unwrap();
    let handed = handed.lock().unwrap();
    assert_eq!(handed.len(), 8 * 4, "each change handed over exactly once");
    // Within a project, the order committed: file before its pages.
    for i in 0..8 {
        let project = format!("p{i}");
        let of: Vec<&str> = handed
            .iter()
            .map(Change::path)
            .filter(|p| p.contains(&format!("/{project}-")) || p.contains(&format!("/{project}/")))
            .collect();
        assert_eq!(of.len(), 4, "{project}: {of:?}");
        assert!(!of[0].contains("simple"), "{of:?}");
    }
    assert_eq!(db.outbox_len().unwrap(), 0);
}

#[test]
fn a_lost_database_is_unavailable_503_with_retry_after() {
    let case = postgres();
    let Case { db, pg, .. } = case;
    // The database goes away under an open handle.
    drop(pg);
    let err = db.counts().unwrap_err();
    assert!(matches!(err, IndexError::Unavailable(_)), "{err}");
    let resp = err.into_response();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get("retry-after").is_some());
}

#[test]
fn a_newer_schema_is_refused() {
    let t = tufpi_pg::testing::TestDb::create();
    let pool = t.database();
    IndexDb::open_postgres(&pool).unwrap();
    pool.get()
        .unwrap()
        .batch_execute("INSERT INTO schema_versions(component, version) VALUES ('index', 99)")
        .unwrap();
    let err = IndexDb::open_postgres(&pool).err().expect("refused");
    assert!(err.to_string().contains("upgrade tufpi"), "{err}");
    drop(pool);
}

#[test]
fn changes_can_go_straight_into_the_repository_queue_in_the_uploads_transaction() {
    use tufpi_repo::store::PostgresStore;
    use tufpi_repo::StateStore;

    let case = postgres();
    let pool = case.pg.as_ref().unwrap().database();
    let store = PostgresStore::open(&pool, None).unwrap();
    let mut db = case.reopen();
    db.queue_in_repository(tufpi_repo::RepoConfig::default())
        .unwrap();
    let row = wheel_row("eta", "1.0", "eta-1.0-py3-none-any.whl");
    upload(&mut db, &case.storage, &row, "eta").unwrap();
    // File, metadata and both pages queued with the rows; nothing left to hand over.
    assert_eq!(store.pending().unwrap(), 4);
    assert_eq!(db.outbox_len().unwrap(), 0);
    // A refused or failed upload queues nothing.
    assert!(already_exists(&upload(&mut db, &case.storage, &row, "eta")));
    let other = wheel_row("eta", "2.0", "eta-2.0-py3-none-any.whl");
    let failed = db.commit_upload(&other, "eta", &mut |_| {
        Err(IndexError::Internal("disk full".into()))
    });
    assert!(failed.is_err());
    assert_eq!(store.pending().unwrap(), 4);
    // So does a management operation, pages before the removed file.
    let op = tufpi_index::Operation {
        project: "eta".into(),
        selector: tufpi_index::Selector::File(row.filename.clone()),
        action: tufpi_index::Action::Remove,
    };
    tufpi_index::manage::apply(&mut db, &case.storage, &op).unwrap();
    assert_eq!(store.pending().unwrap(), 4 + 2 + 2);
    // SQLite's repository is another database: refused there.
    let mut lite = support::sqlite();
    assert!(lite
        .db
        .queue_in_repository(tufpi_repo::RepoConfig::default())
        .is_err());
    drop(store);
    drop(pool);
}

#[test]
fn an_upload_and_a_yank_of_one_project_at_once_leave_pages_listing_both() {
    let case = postgres();
    let first = wheel_row("theta", "1.0", "theta-1.0-py3-none-any.whl");
    let mut db = case.reopen();
    upload(&mut db, &case.storage, &first, "theta").unwrap();
    for i in 0..5 {
        let barrier = Arc::new(Barrier::new(2));
        let uploader = {
            let mut db = case.reopen();
            let storage = Storage::open(case.dir.path()).unwrap();
            let barrier = barrier.clone();
            let row = wheel_row(
                "theta",
                &format!("2.{i}"),
                &format!("theta-2.{i}-py3-none-any.whl"),
            );
            thread::spawn(move || {
                barrier.wait();
                upload(&mut db, &storage, &row, "theta")
            })
        };
        let yanker = {
            let mut db = case.reopen();
            let storage = Storage::open(case.dir.path()).unwrap();
            let barrier = barrier.clone();
            let op = tufpi_index::Operation {
                project: "theta".into(),
                selector: tufpi_index::Selector::File(first.filename.clone()),
                action: tufpi_index::Action::Yank {
                    reason: format!("round {i}"),
                },
            };
            thread::spawn(move || {
                barrier.wait();
                tufpi_index::manage::apply(&mut db, &storage, &op)
            })
        };
        uploader.join().unwrap().unwrap();
        yanker.join().unwrap().unwrap();
        // Whichever committed second rendered from the other's rows: the current pages
        // are those of the files as they are now.
        let files = case.db.files_of("theta").unwrap();
        assert_eq!(files.len(), i + 2);
        let yanked = format!("round {i}");
        assert_eq!(files[0].yanked.as_deref(), Some(yanked.as_str()));
        let want = render(&case.storage, "theta", &files).unwrap();
        let current = case.db.project("theta").unwrap().unwrap();
        assert_eq!(
            current.html_sha256,
            Some(want[0].sha256.clone()),
            "round {i}"
        );
        assert_eq!(
            current.json_sha256,
            Some(want[1].sha256.clone()),
            "round {i}"
        );
    }
}
