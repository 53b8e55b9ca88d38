//! What the PostgreSQL state store adds to the contract (`store_contract.rs`): the lease's
//! fence on the publisher's writes, queuing inside the caller's transaction, a plan that
//! waits for enqueues in flight, the schema's version check. A fresh database per test.

mod common;

use std::time::Duration;

use common::add;
use tufpi_pg::testing::TestDb;
use tufpi_pg::{Database, Lease};
use tufpi_repo::store::{enqueue_in, PostgresStore};
use tufpi_repo::{Change, RepoError, RoleState, StateStore};

fn no_plan(_: &[u64], _: u64) -> Result<(Vec<(String, RoleState)>, String), RepoError> {
    Ok((vec![], "plan".into()))
}

#[test]
fn a_publisher_that_lost_its_lease_is_fenced_and_the_next_finishes_its_plan() {
    let t = TestDb::create();
    let db = t.database();
    PostgresStore::prepare(&db).unwrap();
    let ttl = Duration::from_millis(300);
    let a = Lease::acquire(&db, "publisher", "a", ttl).unwrap().unwrap();
    let mut old = PostgresStore::open(&db, Some(a.fence())).unwrap();
    old.enqueue_all(&mut [(0, add("x")), (1, add("y"))].into_iter().map(Ok))
        .unwrap();
    let (upto, _) = old.plan_batch(1, &mut no_plan).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let b = Lease::acquire(&db, "publisher", "b", ttl).unwrap().unwrap();
    // Every write of the old publisher is refused, and changes nothing.
    let fenced = |r: Result<(), RepoError>| {
        assert!(
            matches!(
                r,
                Err(RepoError::Fenced {
                    held: 1,
                    current: 2
                })
            ),
            "{r:?}"
        );
    };
    fenced(old.plan_batch(10, &mut no_plan).map(|_| ()));
    fenced(old.record_plan(&[], "stale"));
    fenced(old.clear_plan(upto, &[(0, 1)]));
    // Queuing needs no fence: the old process still serves uploads.
    old.enqueue_all(&mut std::iter::once(Ok((2, add("z")))))
        .unwrap();
    // The new leader finds the half-finished plan and finishes it.
    let mut new = PostgresStore::open(&db, Some(b.fence())).unwrap();
    assert_eq!(new.plan().unwrap().as_deref(), Some("plan"));
    assert_eq!(new.pending().unwrap(), 3);
    new.clear_plan(upto, &[(0, 1)]).unwrap();
    assert_eq!(new.pending().unwrap(), 2);
    assert_eq!(new.target_count().unwrap(), 1);
    assert_eq!(new.plan_batch(10, &mut no_plan).unwrap().1, 2);
}

#[test]
fn changes_queued_in_the_callers_transaction_commit_or_roll_back_with_it() {
    let t = TestDb::create();
    let db = t.database();
    let store = PostgresStore::open(&db, None).unwrap();
    let mut conn = db.get().unwrap();
    conn.batch_execute("CREATE TABLE uploads (path TEXT)")
        .unwrap();
    {
        let mut tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO uploads VALUES ('a')", &[]).unwrap();
        assert!(enqueue_in(&mut tx, [(0, add("a"))]).unwrap() > 0);
        // Dropped without commit: rolled back, upload and change alike.
    }
    assert_eq!(store.pending().unwrap(), 0);
    let mut tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO uploads VALUES ('b')", &[]).unwrap();
    let seq = enqueue_in(&mut tx, [(4, add("b")), (4, Change::Remove("c".into()))]).unwrap();
    tx.commit().unwrap();
    assert_eq!(store.pending().unwrap(), 2);
    assert_eq!(
        store.changes_in_bin(4, seq).unwrap(),
        vec![add("b"), Change::Remove("c".into())]
    );
}

#[test]
fn a_plan_waits_for_an_enqueue_in_flight_with_a_lower_sequence_number() {
    let t = TestDb::create();
    let db = t.database();
    let mut store = PostgresStore::open(&db, None).unwrap();
    let mut conn = db.get().unwrap();
    let mut tx = conn.transaction().unwrap();
    let first = enqueue_in(&mut tx, [(0, add("early"))]).unwrap();
    // A later enqueue commits first, with a higher sequence number.
    let second = store
        .enqueue_all(&mut std::iter::once(Ok((1, add("late")))))
        .unwrap();
    assert!(second > first);
    let mut publisher = store.clone();
    let plan = std::thread::spawn(move || publisher.plan_batch(100, &mut no_plan).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !plan.is_finished(),
        "the plan did not wait for the enqueue in flight"
    );
    tx.commit().unwrap();
    // Had it not waited, it would have taken "late" alone and its clear_plan would then
    // have dropped "early" unpublished.
    assert_eq!(plan.join().unwrap(), (second, 2));
    store.clear_plan(second, &[]).unwrap();
    assert_eq!(store.pending().unwrap(), 0);
}

#[test]
fn a_newer_schema_is_refused_with_a_message() {
    let t = TestDb::create();
    let db = t.database();
    PostgresStore::open(&db, None).unwrap();
    // Reopening is idempotent.
    PostgresStore::open(&db, None).unwrap();
    db.get()
        .unwrap()
        .batch_execute("INSERT INTO schema_versions(component, version) VALUES ('repo', 99)")
        .unwrap();
    let e = PostgresStore::open(&db, None).unwrap_err();
    assert!(
        e.to_string().contains(
            "database schema for repo is version 99; this tufpi knows up to 1: upgrade tufpi"
        ),
        "{e}"
    );
}

#[test]
fn unavailable_stays_unavailable_and_fenced_stays_fenced() {
    let e = tufpi_repo::store::postgres::pg_err(tufpi_pg::PgError::Unavailable {
        detail: "connection refused".into(),
        source: None,
    });
    assert!(matches!(e, RepoError::Unavailable(_)), "{e}");
    let e = tufpi_repo::store::postgres::pg_err(tufpi_pg::PgError::Fenced {
        name: "p".into(),
        held_term: 3,
        current_term: 4,
    });
    assert!(
        matches!(
            e,
            RepoError::Fenced {
                held: 3,
                current: 4
            }
        ),
        "{e}"
    );
}

#[test]
fn a_dropped_connection_is_replaced_and_a_corrupt_row_is_an_error() {
    let t = TestDb::create();
    let db = t.database();
    let store = PostgresStore::open(&db, None).unwrap();
    // End every connection of the pool from the server side.
    let admin = Database::connect(t.url()).unwrap();
    let mut c = admin.get().unwrap();
    c.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .unwrap();
    // The pool tests a connection that sat idle before handing it out and replaces a dead
    // one: the store carries on (a connection used within VALIDATE_IDLE is handed out as is).
    std::thread::sleep(tufpi_pg::db::VALIDATE_IDLE + std::time::Duration::from_millis(100));
    assert_eq!(store.pending().unwrap(), 0);
    // A corrupt row is an error, not a panic.
    c.batch_execute("INSERT INTO repo_bin_counts(bin, count) VALUES (1, -5)")
        .unwrap();
    assert!(matches!(
        store.bin_counts(),
        Err(RepoError::CorruptStore { .. })
    ));
}

#[test]
fn every_acknowledged_change_is_planned_once_while_writers_race_a_publisher() {
    let t = TestDb::create();
    let db = t.database();
    let store = PostgresStore::open(&db, None).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writers: half through enqueue_all, half in their own transactions that linger a
    // little before committing (as an upload's would).
    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let mut s = store.clone();
            let db = db.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..60u64 {
                    let path = format!("w{w}/{i}");
                    if w % 2 == 0 {
                        s.enqueue_all(&mut std::iter::once(Ok((i % 5, add(&path)))))
                            .unwrap();
                    } else {
                        let mut c = db.get().unwrap();
                        let mut tx = c.transaction().unwrap();
                        enqueue_in(&mut tx, [(i % 5, add(&path))]).unwrap();
                        std::thread::sleep(Duration::from_millis((i % 4) * 3));
                        tx.commit().unwrap();
                    }
                    acked.push(path);
                }
                acked
            })
        })
        .collect();
    let mut publisher = store.clone();
    let stop2 = stop.clone();
    let publishing = std::thread::spawn(move || {
        let mut published = Vec::new();
        loop {
            let done = stop2.load(std::sync::atomic::Ordering::SeqCst);
            // Batches large enough to take the newest committed changes, past one in flight.
            let (upto, _) = publisher.plan_batch(100, &mut no_plan).unwrap();
            if upto == 0 {
                if done {
                    return published;
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            for bin in 0..5 {
                for c in publisher.changes_in_bin(bin, upto).unwrap() {
                    published.push(c.path().to_string());
                }
            }
            // Signing and writing the bins take a while: an enqueue in flight at the plan
            // may commit meanwhile, and must not be cleared with the batch.
            std::thread::sleep(Duration::from_millis(5));
            publisher.clear_plan(upto, &[]).unwrap();
        }
    });
    let mut acked: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut published = publishing.join().unwrap();
    acked.sort();
    published.sort();
    assert_eq!(
        published.len(),
        acked.len(),
        "a change published twice or lost"
    );
    assert_eq!(published, acked);
}
