//! The database's tests, each run on both backends: SQLite in a temp directory and
//! PostgreSQL in a database of its own (`tufpi_pg::testing::TestDb`, dropped afterwards).

use tufpi_repo::Change;

use super::conn::dispatch;
use super::*;
use crate::error::IndexError;

/// An open database and what keeps its storage alive. Fields drop in order: the pool
/// closes before its test database is dropped.
struct Case {
    db: IndexDb,
    name: &'static str,
    _sqlite: Option<tempfile::TempDir>,
    pg: Option<tufpi_pg::testing::TestDb>,
}

/// A fresh database on each backend.
fn cases() -> Vec<Case> {
    let d = tempfile::tempdir().unwrap();
    let sqlite = IndexDb::open(&d.path().join("index.db")).unwrap();
    let t = tufpi_pg::testing::TestDb::create();
    let pg = IndexDb::open_postgres(&t.database()).unwrap();
    vec![
        Case {
            db: sqlite,
            name: "sqlite",
            _sqlite: Some(d),
            pg: None,
        },
        Case {
            db: pg,
            name: "postgres",
            _sqlite: None,
            pg: Some(t),
        },
    ]
}

/// Every byte the database holds, as text, to look for a secret in.
fn raw_contents(c: &Case) -> Vec<u8> {
    match (&c._sqlite, &c.pg) {
        (Some(d), _) => {
            let mut bytes = std::fs::read(d.path().join("index.db")).unwrap();
            bytes.extend(std::fs::read(d.path().join("index.db-wal")).unwrap_or_default());
            bytes
        }
        (_, Some(t)) => {
            let mut conn = t.database().get().unwrap();
            let mut out = Vec::new();
            for table in ["index_tokens", "index_projects", "index_outbox"] {
                for r in conn
                    .query(&format!("SELECT t::text FROM {table} t"), &[])
                    .unwrap()
                {
                    out.extend(r.get::<_, String>(0).into_bytes());
                }
            }
            out
        }
        _ => unreachable!("a case has one backend"),
    }
}

#[test]
fn tokens_are_stored_hashed_and_scoped() {
    for c in cases() {
        let mut db = c.db;
        let any = db.create_token(None, Some("ci")).unwrap();
        let scoped = db.create_token(Some("Foo_Bar"), None).unwrap();
        assert!(any.starts_with("tufpi-") && any.len() > 40);
        assert_ne!(any, scoped);
        assert_eq!(db.token_scope(&any).unwrap().unwrap().project, None);
        assert_eq!(
            db.token_scope(&scoped).unwrap().unwrap().project.as_deref(),
            Some("foo-bar"),
            "{}",
            c.name
        );
        assert_eq!(db.token_scope("tufpi-nope").unwrap(), None);
        assert_eq!(db.token_scope("").unwrap(), None);
        // Only the hash is stored.
        drop(db);
        let c = Case {
            db: match (&c._sqlite, &c.pg) {
                (Some(d), _) => IndexDb::open(&d.path().join("index.db")).unwrap(),
                (_, Some(t)) => IndexDb::open_postgres(&t.database()).unwrap(),
                _ => unreachable!("a case has one backend"),
            },
            ..c
        };
        let raw = raw_contents(&c);
        assert!(!raw.is_empty(), "{}", c.name);
        assert!(
            !raw.windows(any.len()).any(|w| w == any.as_bytes()),
            "{}",
            c.name
        );
        let h = hash_token(&any);
        assert!(c.db.tokens().unwrap().iter().any(|t| h.starts_with(&t.0)));
    }
}

#[test]
fn tokens_can_be_revoked() {
    for c in cases() {
        let mut db = c.db;
        let t = db.create_token(None, None).unwrap();
        let id = db.token_scope(&t).unwrap().unwrap().id;
        assert!(db.revoke_token("abc").is_err());
        assert!(db.revoke_token(&id).unwrap(), "{}", c.name);
        assert_eq!(db.token_scope(&t).unwrap(), None);
        assert!(!db.revoke_token(&id).unwrap());
        assert!(db.create_token(Some("bad name"), None).is_err());
    }
}

#[test]
fn an_ambiguous_token_id_revokes_nothing() {
    for c in cases() {
        let mut db = c.db;
        // Two tokens whose hashes share their first 12 hex digits, a third sharing 8.
        let a = format!("deadbeef0123{}", "a".repeat(52));
        let b = format!("deadbeef0123{}", "b".repeat(52));
        let c3 = format!("deadbeef9999{}", "c".repeat(52));
        for h in [&a, &b, &c3] {
            dispatch!(&mut db.backend, be => be.insert_token(h, None, None, "")).unwrap();
        }
        let err = db.revoke_token("DEADBEEF").unwrap_err().to_string();
        assert!(err.contains("matches 3 tokens"), "{}: {err}", c.name);
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

#[test]
fn the_outbox_drains_in_order_and_survives_a_failed_hand_over() {
    for c in cases() {
        let mut db = c.db;
        let add = |p: &str| {
            Change::Add(outbox::target(
                p,
                &crate::pages::Digests {
                    size: 3,
                    sha256: "s".repeat(64),
                    blake2b: "b".repeat(64),
                },
            ))
        };
        db.write(|tx| tx.push_outbox(&[add("a"), Change::Remove("a".into())]))
            .unwrap();
        db.write(|tx| tx.push_outbox(&[add("b")])).unwrap();
        assert_eq!(db.outbox_len().unwrap(), 3, "{}", c.name);
        assert_eq!(
            db.outbox().unwrap(),
            [add("a"), Change::Remove("a".into()), add("b")]
        );
        // A failed hand-over keeps the outbox for the next try.
        let err = db.drain_outbox(&mut |_| Err(IndexError::Internal("queue down".into())));
        assert!(err.is_err());
        assert_eq!(db.outbox_len().unwrap(), 3);
        let mut seen = Vec::new();
        let n = db
            .drain_outbox(&mut |c| {
                seen.extend_from_slice(c);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(seen, [add("a"), Change::Remove("a".into()), add("b")]);
        assert_eq!(db.drain_outbox(&mut |_| Ok(())).unwrap(), 0);
        assert_eq!(db.outbox_len().unwrap(), 0);
    }
}
