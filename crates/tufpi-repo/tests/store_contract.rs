//! The `StateStore` contract, written once and run against every store: SQLite (a fresh file)
//! and PostgreSQL (a fresh database per test on `TUFPI_TEST_PG_URL`, default the local
//! server, dropped afterwards).

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;

use common::add;
use tufpi_core::json::Value;
use tufpi_repo::store::{PostgresStore, SqliteStore};
use tufpi_repo::{Change, RepoError, RoleState, StateStore, TargetRecord};

fn rm(path: &str) -> Change {
    Change::Remove(path.into())
}

fn enqueue(s: &mut dyn StateStore, changes: Vec<(u64, Change)>) -> u64 {
    s.enqueue_all(&mut changes.into_iter().map(Ok)).unwrap()
}

fn st(version: u64, expires: i64) -> RoleState {
    RoleState { version, expires }
}

/// Everything queued in `bins`, in queue order per bin.
const ALL: u64 = i64::MAX as u64;

fn queue_is_durable_ordered_and_planned_in_batches(s: &mut dyn StateStore) {
    assert_eq!(s.pending().unwrap(), 0);
    let first = enqueue(s, vec![(3, add("a")), (1, add("b"))]);
    let last = enqueue(s, vec![(3, rm("a")), (2, add("c"))]);
    assert!(last > first);
    assert_eq!(s.pending().unwrap(), 4);
    assert_eq!(s.changes_in_bin(3, ALL).unwrap(), vec![add("a"), rm("a")]);
    // A batch of 3: the first three changes, bins 1 and 3, sorted.
    let seen = Cell::new(None);
    let (upto, taken) = s
        .plan_batch(3, &mut |touched, last| {
            seen.set(Some((touched.to_vec(), last)));
            Ok((
                vec![
                    ("bin-1".into(), st(2, 100)),
                    ("timestamp".into(), st(5, 50)),
                ],
                "plan-1".into(),
            ))
        })
        .unwrap();
    assert_eq!(taken, 3);
    assert_eq!(seen.take(), Some((vec![1, 3], upto)));
    assert!(upto > first && upto < last);
    assert_eq!(s.plan().unwrap().as_deref(), Some("plan-1"));
    assert_eq!(s.roles().unwrap()["bin-1"], st(2, 100));
    // Up to the batch's last sequence number only; still queued until cleared.
    assert_eq!(s.changes_in_bin(3, upto).unwrap(), vec![add("a"), rm("a")]);
    assert_eq!(s.changes_in_bin(2, upto).unwrap(), vec![]);
    assert_eq!(s.pending().unwrap(), 4);
    s.clear_plan(upto, &[(1, 1), (3, 0)]).unwrap();
    assert_eq!(s.plan().unwrap(), None);
    assert_eq!(s.pending().unwrap(), 1);
    assert_eq!(s.changes_in_bin(2, ALL).unwrap(), vec![add("c")]);
    assert_eq!(s.bin_counts().unwrap(), BTreeMap::from([(1, 1)]));
    // The rest; counts replace, and a zero count drops the bin.
    let (upto2, taken) = s
        .plan_batch(10, &mut |touched, _| {
            assert_eq!(touched, [2]);
            Ok((vec![], "plan-2".into()))
        })
        .unwrap();
    assert_eq!((upto2, taken), (last, 1));
    s.clear_plan(upto2, &[(2, 7), (1, 0)]).unwrap();
    assert_eq!(s.bin_counts().unwrap(), BTreeMap::from([(2, 7)]));
    assert_eq!(s.target_count().unwrap(), 7);
    assert_eq!(s.pending().unwrap(), 0);
}

fn an_empty_queue_plans_nothing(s: &mut dyn StateStore) {
    let r = s
        .plan_batch(10, &mut |_, _| panic!("no plan for an empty queue"))
        .unwrap();
    assert_eq!(r, (0, 0));
    assert_eq!(s.plan().unwrap(), None);
    assert_eq!(enqueue(s, vec![]), 0);
    assert_eq!(s.target_count().unwrap(), 0);
}

fn a_failed_enqueue_or_plan_leaves_nothing(s: &mut dyn StateStore) {
    let mut changes =
        vec![Ok((0, add("x"))), Err(RepoError::Invalid("refused".into()))].into_iter();
    assert!(matches!(
        s.enqueue_all(&mut changes),
        Err(RepoError::Invalid(_))
    ));
    assert_eq!(s.pending().unwrap(), 0);
    enqueue(s, vec![(0, add("y"))]);
    let e = s.plan_batch(10, &mut |_, _| Err(RepoError::Invalid("no".into())));
    assert!(matches!(e, Err(RepoError::Invalid(_))));
    assert_eq!(s.plan().unwrap(), None);
    assert_eq!(s.roles().unwrap(), BTreeMap::new());
    assert_eq!(s.pending().unwrap(), 1);
}

fn targets_round_trip_with_hashes_and_custom(s: &mut dyn StateStore) {
    let custom = [("n".to_string(), Value::String("é \"q\" \\".into()))]
        .into_iter()
        .collect();
    let t = Change::Add(TargetRecord {
        path: "p/x y.whl".into(),
        length: 1 << 40,
        hashes: BTreeMap::from([
            ("sha256".to_string(), "b".repeat(64)),
            ("blake2b-256".to_string(), "c".repeat(64)),
        ]),
        custom: Some(Value::Object(custom)),
    });
    enqueue(s, vec![(9, t.clone()), (9, rm("p/x y.whl"))]);
    assert_eq!(s.changes_in_bin(9, ALL).unwrap(), vec![t, rm("p/x y.whl")]);
}

fn plans_roles_and_settings_are_recorded(s: &mut dyn StateStore) {
    assert_eq!(s.get_setting("k").unwrap(), None);
    s.set_setting("k", "v1").unwrap();
    s.set_setting("k", "v2").unwrap();
    assert_eq!(s.get_setting("k").unwrap().as_deref(), Some("v2"));
    s.record_plan(
        &[
            ("snapshot".into(), st(1, 10)),
            ("timestamp".into(), st(1, 5)),
        ],
        "p1",
    )
    .unwrap();
    s.record_plan(&[("timestamp".into(), st(2, i64::MAX))], "p2")
        .unwrap();
    assert_eq!(s.plan().unwrap().as_deref(), Some("p2"));
    assert_eq!(
        s.roles().unwrap(),
        BTreeMap::from([
            ("snapshot".to_string(), st(1, 10)),
            ("timestamp".to_string(), st(2, i64::MAX))
        ])
    );
    // Of two states for one role, or two counts for one bin, the last wins.
    s.record_plan(
        &[("bin-0".into(), st(1, 1)), ("bin-0".into(), st(2, 2))],
        "p3",
    )
    .unwrap();
    assert_eq!(s.roles().unwrap()["bin-0"], st(2, 2));
    // A plan without queue items is cleared with upto 0: the queue is left alone.
    enqueue(s, vec![(0, add("q"))]);
    s.clear_plan(0, &[(4, 1), (4, 3), (5, 2), (5, 0)]).unwrap();
    assert_eq!(s.plan().unwrap(), None);
    assert_eq!(s.pending().unwrap(), 1);
    assert_eq!(s.bin_counts().unwrap(), BTreeMap::from([(4, 3)]));
}

fn a_queued_change_wins_over_a_relisting_and_the_setting_lands_with_it(s: &mut dyn StateStore) {
    // Another writer removed "b" after the relisting read the published bins.
    enqueue(s, vec![(0, rm("b"))]);
    let n = s
        .enqueue_unqueued_and_set(vec![(0, add("a")), (0, add("b"))], "k", "v")
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.get_setting("k").unwrap().as_deref(), Some("v"));
    assert_eq!(s.changes_in_bin(0, ALL).unwrap(), vec![rm("b"), add("a")]);
}

fn thousands_of_changes_keep_their_order(s: &mut dyn StateStore) {
    // Past any chunking a store does, with removals and re-additions of the same paths.
    let changes: Vec<(u64, Change)> = (0..2500u64)
        .map(|i| {
            let path = format!("t{}", i % 700);
            let c = if i % 3 == 1 { rm(&path) } else { add(&path) };
            (i % 4, c)
        })
        .collect();
    let last = enqueue(s, changes.clone());
    assert_eq!(s.pending().unwrap(), 2500);
    for bin in 0..4 {
        let want: Vec<Change> = changes
            .iter()
            .filter(|(b, _)| *b == bin)
            .map(|(_, c)| c.clone())
            .collect();
        assert_eq!(s.changes_in_bin(bin, last).unwrap(), want, "bin {bin}");
    }
    // The first 1200 in order, exactly.
    let (upto, taken) = s
        .plan_batch(1200, &mut |_, _| Ok((vec![], "p".into())))
        .unwrap();
    assert_eq!(taken, 1200);
    s.clear_plan(upto, &[]).unwrap();
    let rest: Vec<Change> = changes[1200..]
        .iter()
        .filter(|(b, _)| *b == 0)
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(s.changes_in_bin(0, last).unwrap(), rest);
    // A relisting of 3000 paths, 700 of which are queued (and one listed twice).
    let mut relist: Vec<(u64, Change)> = (0..3000u64).map(|i| (5, add(&format!("t{i}")))).collect();
    relist.push((5, rm("t2999")));
    let n = s.enqueue_unqueued_and_set(relist, "k", "v").unwrap();
    assert_eq!(n, 2300);
    let queued = s.changes_in_bin(5, ALL).unwrap();
    assert_eq!(queued.first(), Some(&add("t700")));
    assert_eq!(queued.last(), Some(&add("t2999")));
}

/// One `#[test]` per contract function and store.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let mut s = super::SqliteStore::open(&dir.path().join("state.db")).unwrap();
                super::$name(&mut s);
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                let t = tufpi_pg::testing::TestDb::create();
                let mut s = super::PostgresStore::open(&t.database(), None).unwrap();
                super::$name(&mut s);
            })*
        }
    };
}

contract!(
    queue_is_durable_ordered_and_planned_in_batches,
    an_empty_queue_plans_nothing,
    a_failed_enqueue_or_plan_leaves_nothing,
    targets_round_trip_with_hashes_and_custom,
    plans_roles_and_settings_are_recorded,
    a_queued_change_wins_over_a_relisting_and_the_setting_lands_with_it,
    thousands_of_changes_keep_their_order,
);
