//! tufpi-pg against the real PostgreSQL (`TUFPI_TEST_PG_URL`, default the local server): a
//! database of its own per test, dropped afterwards.

use std::time::{Duration, Instant};

use tufpi_pg::testing::TestDb;
use tufpi_pg::{
    check_term, migrate, schema_version, Database, Leadership, Lease, Options, PgError,
};

const M: &[&str] = &[
    "CREATE TABLE t1 (id BIGINT PRIMARY KEY)",
    "ALTER TABLE t1 ADD COLUMN name TEXT; CREATE TABLE t2 (x INT)",
];

#[test]
fn migrations_apply_in_order_once_and_refuse_a_newer_schema() {
    let t = TestDb::create();
    let db = t.database();
    assert_eq!(schema_version(&db, "c").unwrap(), 0);
    assert_eq!(migrate(&db, "c", &M[..1]).unwrap(), 1);
    assert_eq!(migrate(&db, "c", M).unwrap(), 2);
    // Rerun: nothing to do, nothing applied twice.
    assert_eq!(migrate(&db, "c", M).unwrap(), 2);
    let mut c = db.get().unwrap();
    c.execute("INSERT INTO t1(id, name) VALUES (1, 'a')", &[])
        .unwrap();
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM schema_versions WHERE component = 'c'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    // Another component keeps its own versions.
    assert_eq!(
        migrate(&db, "other", &["CREATE TABLE o (x INT)"]).unwrap(),
        1
    );
    // An older tufpi knowing one migration refuses the version-2 database.
    let e = migrate(&db, "c", &M[..1]).unwrap_err();
    assert!(
        matches!(
            e,
            PgError::SchemaTooNew {
                found: 2,
                known: 1,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "database schema for c is version 2; this tufpi knows up to 1: upgrade tufpi"
    );
}

#[test]
fn concurrent_migrations_apply_each_once() {
    let t = TestDb::create();
    let url = t.url().to_string();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || migrate(&Database::connect(&url).unwrap(), "c", M))
        })
        .collect();
    for th in threads {
        assert_eq!(th.join().unwrap().unwrap(), 2);
    }
}

#[test]
fn a_failed_migration_leaves_the_previous_version() {
    let t = TestDb::create();
    let db = t.database();
    let bad = &[M[0], "CREATE TABLE t1 (id INT)"];
    assert!(matches!(migrate(&db, "c", bad), Err(PgError::Db { .. })));
    assert_eq!(schema_version(&db, "c").unwrap(), 1);
}

#[test]
fn a_lease_is_held_by_one_renewed_lapses_and_is_taken_over_with_the_next_term() {
    let t = TestDb::create();
    let db = t.database();
    let ttl = Duration::from_millis(1500);
    let a = Lease::acquire(&db, "publisher", "a", ttl).unwrap().unwrap();
    assert_eq!(a.term(), 1);
    assert!(Lease::acquire(&db, "publisher", "b", ttl)
        .unwrap()
        .is_none());
    a.renew().unwrap();
    // Another lease name is independent.
    assert!(Lease::acquire(&db, "other", "b", ttl).unwrap().is_some());
    std::thread::sleep(ttl + Duration::from_millis(300));
    let b = Lease::acquire(&db, "publisher", "b", ttl).unwrap().unwrap();
    assert_eq!(b.term(), 2);
    // The old holder's renewal finds it lost; its transactions are fenced.
    assert!(matches!(a.renew(), Err(PgError::Lost { term: 1, .. })));
    let mut c = db.get().unwrap();
    let mut tx = c.transaction().unwrap();
    let e = check_term(&mut tx, "publisher", a.term()).unwrap_err();
    assert!(
        matches!(
            e,
            PgError::Fenced {
                held_term: 1,
                current_term: 2,
                ..
            }
        ),
        "{e}"
    );
    drop(tx);
    let mut tx = c.transaction().unwrap();
    b.fence().check(&mut tx).unwrap();
    tx.commit().unwrap();
    // An unknown lease fences everything.
    let mut tx = c.transaction().unwrap();
    assert!(matches!(
        check_term(&mut tx, "nobody", 1),
        Err(PgError::Fenced {
            current_term: 0,
            ..
        })
    ));
    drop(tx);
    // Released: taken at once, next term.
    b.release().unwrap();
    let c2 = Lease::acquire(&db, "publisher", "c", Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(c2.term(), 3);
    // A lapsed but untaken lease is not renewed either: it is lost.
    assert!(matches!(a.renew(), Err(PgError::Lost { .. })));
}

#[test]
fn a_takeover_waits_for_a_transaction_that_passed_the_fence() {
    let t = TestDb::create();
    let db = t.database();
    let ttl = Duration::from_millis(300);
    let a = Lease::acquire(&db, "p", "a", ttl).unwrap().unwrap();
    let mut c = db.get().unwrap();
    let mut tx = c.transaction().unwrap();
    a.fence().check(&mut tx).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Lapsed meanwhile: the takeover blocks on the row lock until the fenced transaction ends.
    let db2 = db.clone();
    let taker =
        std::thread::spawn(move || Lease::acquire(&db2, "p", "b", ttl).unwrap().unwrap().term());
    std::thread::sleep(Duration::from_millis(400));
    assert!(!taker.is_finished(), "the takeover did not wait");
    tx.commit().unwrap();
    assert_eq!(taker.join().unwrap(), 2);
}

#[test]
fn the_holder_renews_while_its_own_fenced_transaction_is_open() {
    let t = TestDb::create();
    let db = t.database();
    let a = Lease::acquire(&db, "p", "a", Duration::from_secs(30))
        .unwrap()
        .unwrap();
    let mut c = db.get().unwrap();
    let mut tx = c.transaction().unwrap();
    a.fence().check(&mut tx).unwrap();
    // A long publishing transaction must not keep its leader from renewing (else it steps
    // down mid-publish): the renewal runs on another connection and does not wait.
    let db2 = db.clone();
    let t0 = Instant::now();
    let renewer = std::thread::spawn(move || {
        let a2 = Lease::acquire(&db2, "p", "other", Duration::from_secs(30)).unwrap();
        assert!(a2.is_none(), "taken while held");
    });
    renewer.join().unwrap();
    a.renew().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    tx.commit().unwrap();
}

#[test]
fn leadership_goes_to_one_and_passes_on_when_it_stops() {
    let t = TestDb::create();
    let ttl = Duration::from_secs(2);
    let a = Leadership::start(t.database(), "pub", "a", ttl);
    let ta = a.wait_for_leadership(Duration::from_secs(5)).unwrap();
    let b = Leadership::start(t.database(), "pub", "b", ttl);
    // Renewals keep a ahead past the TTL.
    std::thread::sleep(ttl + Duration::from_millis(500));
    assert_eq!(a.term(), Some(ta));
    assert!(!b.is_leader());
    a.stop();
    let tb = b.wait_for_leadership(Duration::from_secs(5)).unwrap();
    assert_eq!(tb, ta + 1);
    assert_eq!(b.fence().unwrap().term, tb);
}

#[test]
fn a_leader_that_cannot_renew_steps_down_before_its_lease_lapses() {
    let t = TestDb::create();
    let ttl = Duration::from_millis(1500);
    let a = Leadership::start(t.database(), "pub", "a", ttl);
    a.wait_for_leadership(Duration::from_secs(5)).unwrap();
    // Cut the leader off: its renewals fail (the statement is cancelled by a lock wait).
    let db = t.database();
    let mut c = db.get().unwrap();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL lock_timeout = '20s'; LOCK TABLE lease IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let blocked = Instant::now();
    while a.is_leader() {
        assert!(blocked.elapsed() < ttl, "did not step down within the TTL");
        std::thread::sleep(Duration::from_millis(10));
    }
    // It stepped down within TTL/2 (plus the time of its last renewal) of its last renewal.
    assert!(blocked.elapsed() <= ttl / 2 + ttl / 3 + Duration::from_millis(200));
    tx.rollback().unwrap();
}

#[test]
fn an_unreachable_database_is_unavailable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:secret@127.0.0.1:{port}/db");
    let opts = Options {
        connect_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let e = Database::connect_with(&url, &opts).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    // A malformed connection string is not "unavailable", and is shown redacted.
    let e = Database::connect("postgres://u:secret@h/db?sslmode=bogus").unwrap_err();
    assert!(!e.is_unavailable());
    assert!(!e.to_string().contains("secret"), "{e}");
    // A bad statement is not "unavailable" either.
    let t = TestDb::create();
    // Nor a database that is not there, and that is said at once, not after a timeout.
    let started = Instant::now();
    let e = Database::connect(&t.url().replace(t.name(), "tufpi_no_such_db")).unwrap_err();
    assert!(!e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let e: PgError = t
        .database()
        .get()
        .unwrap()
        .batch_execute("SELEC 1")
        .unwrap_err()
        .into();
    assert!(!e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("syntax error"), "{e}");
}

#[test]
fn tls_modes_connect() {
    let t = TestDb::create();
    for mode in ["disable", "prefer", "require"] {
        let sep = if t.url().contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}sslmode={mode}", t.url());
        match Database::connect(&url) {
            Ok(db) => {
                let ssl: Option<bool> = db
                    .get()
                    .unwrap()
                    .query_one(
                        "SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                if mode == "require" {
                    assert_eq!(ssl, Some(true));
                }
                if mode == "disable" {
                    assert_ne!(ssl, Some(true));
                }
            }
            // `require` against a server without TLS is refused, as libpq does.
            Err(e) => assert_eq!(mode, "require", "{mode}: {e}"),
        }
    }
}

#[test]
fn verify_full_refuses_a_certificate_no_root_vouches_for() {
    // The local server's certificate is self-signed (or it has no TLS at all): either way
    // verify-full must refuse, and not as "unavailable" (a retry will not mend it).
    let t = TestDb::create();
    let sep = if t.url().contains('?') { '&' } else { '?' };
    let e = Database::connect(&format!("{}{sep}sslmode=verify-full", t.url())).unwrap_err();
    assert!(!e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("TLS"), "{e}");
    let e = Database::connect(&format!("{}{sep}sslmode=verify-ca", t.url())).unwrap_err();
    assert!(e.to_string().contains("verify-full"), "{e}");
}

#[test]
fn a_connection_the_server_ended_is_unavailable() {
    let t = TestDb::create();
    let db = t.database();
    let mut c1 = db.get().unwrap();
    let pid: i32 = c1.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut c2 = db.get().unwrap();
    c2.execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let e: PgError = c1.batch_execute("SELECT 1").unwrap_err().into();
    assert!(e.is_unavailable(), "{e}");
    // A statement cut by the statement timeout is too: the database is overloaded.
    let e: PgError = c2
        .batch_execute("SET statement_timeout = 50; SELECT pg_sleep(1)")
        .unwrap_err()
        .into();
    assert!(e.is_unavailable(), "{e}");
}

#[test]
fn a_notification_committed_wakes_the_listener_and_a_rolled_back_one_does_not() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let t = TestDb::create();
    let db = t.database();
    let woken = Arc::new(AtomicU64::new(0));
    let w = woken.clone();
    let listener = tufpi_pg::Listener::start(&db, "tufpi_test_chan", move || {
        w.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let wait_for = |n: u64| {
        let t0 = Instant::now();
        while woken.load(Ordering::SeqCst) < n {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "not woken {n} times"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Once on connecting (anything announced before it listened).
    wait_for(1);
    let mut c = db.get().unwrap();
    {
        let mut tx = c.transaction().unwrap();
        tufpi_pg::notify_in(&mut tx, "tufpi_test_chan").unwrap();
        tx.rollback().unwrap();
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        woken.load(Ordering::SeqCst),
        1,
        "a rolled-back NOTIFY woke it"
    );
    let t0 = Instant::now();
    {
        let mut tx = c.transaction().unwrap();
        tufpi_pg::notify_in(&mut tx, "tufpi_test_chan").unwrap();
        tufpi_pg::notify_in(&mut tx, "tufpi_test_chan").unwrap();
        tx.commit().unwrap();
    }
    wait_for(2);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "woken after {:?}",
        t0.elapsed()
    );
    // Another channel does not wake it.
    tufpi_pg::notify_in(&mut *c, "tufpi_other_chan").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(woken.load(Ordering::SeqCst), 2);
    // A bad channel name is refused before anything runs.
    assert!(tufpi_pg::Listener::start(&db, "Bad;", || {}).is_err());
    drop(listener);
}

#[test]
fn a_pooled_connection_the_server_ended_while_idle_is_replaced_on_checkout() {
    let t = TestDb::create();
    let db = t.database();
    let pid_of = |c: &mut tufpi_pg::postgres::Client| -> i32 {
        c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0)
    };
    let first = pid_of(&mut db.get().unwrap());
    // Back in the pool, idle; the server ends it (as a restart would).
    let mut admin = db.connect_dedicated().unwrap();
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&first])
        .unwrap();
    std::thread::sleep(tufpi_pg::db::VALIDATE_IDLE + Duration::from_millis(200));
    let mut c = db.get().unwrap();
    assert_ne!(pid_of(&mut c), first, "a new connection");
}
