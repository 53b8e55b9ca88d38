//! The index database's rules, each test run on both backends (SQLite and PostgreSQL):
//! uploads and their refusals, pages, the outbox, management operations, references and
//! page collection.

#[path = "db_support.rs"]
mod support;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use support::{fake, matrix, render, sdist_row, upload, wheel_row, Case};
use tufpi_index::manage::{self, Action, Operation, Selector};
use tufpi_index::pages::{project_html, project_json};
use tufpi_index::IndexError;
use tufpi_repo::Change;
use tufpi_simple::targets::metadata_path;
use tufpi_simple::PageKind;

fn refusal(e: IndexError) -> String {
    match e {
        IndexError::Refused { status, message } => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
            message
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

fn paths(changes: &[Change]) -> Vec<(bool, String)> {
    changes
        .iter()
        .map(|c| (matches!(c, Change::Add(_)), c.path().to_string()))
        .collect()
}

#[test]
fn an_upload_records_its_file_pages_and_target_changes() {
    matrix(
        |Case {
             mut db,
             storage,
             name,
             ..
         }| {
            let row = wheel_row("alpha", "1.0", "alpha-1.0-py3-none-any.whl");
            upload(&mut db, &storage, &row, "Alpha").unwrap();
            assert_eq!(
                db.file(&row.filename).unwrap().as_ref(),
                Some(&row),
                "{name}"
            );
            // Filenames compare case-insensitively, as on SQLite.
            assert_eq!(
                db.file("ALPHA-1.0-py3-none-any.whl").unwrap().as_ref(),
                Some(&row)
            );
            assert_eq!(db.files_of("alpha").unwrap(), std::slice::from_ref(&row));
            assert_eq!(db.projects().unwrap(), [("alpha".into(), "Alpha".into())]);
            assert_eq!(db.counts().unwrap(), (1, 1));
            let p = db.project("alpha").unwrap().unwrap();
            let files = [row.clone()];
            let html = tufpi_index::storage::digests(&project_html("alpha", &files));
            let json = tufpi_index::storage::digests(&project_json("alpha", &files));
            assert_eq!(p.html_sha256.as_deref(), Some(html.sha256.as_str()));
            assert_eq!(p.json_sha256.as_deref(), Some(json.sha256.as_str()));
            assert_eq!(db.project("nope").unwrap(), None);
            // Pages by either digest, of the right project and kind only.
            for digest in [&html.sha256, &html.blake2b] {
                assert_eq!(
                    db.page("alpha", PageKind::Html, digest).unwrap(),
                    Some(html.sha256.clone())
                );
            }
            assert_eq!(
                db.page("alpha", PageKind::Json, &html.sha256).unwrap(),
                None
            );
            assert_eq!(db.page("beta", PageKind::Html, &html.sha256).unwrap(), None);
            // The outbox: file, its metadata, then the pages.
            let md = metadata_path(&row.path);
            assert_eq!(
                paths(&db.outbox().unwrap()),
                [
                    (true, row.path.clone()),
                    (true, md.clone()),
                    (true, PageKind::Html.target_path("alpha")),
                    (true, PageKind::Json.target_path("alpha")),
                ]
            );
            assert_eq!(db.outbox_len().unwrap(), 4);
            // Every kept digest of what a target lists, if the listed SHA-256 is what is kept.
            let listed = |sha: &str| BTreeMap::from([("sha256".to_string(), sha.to_string())]);
            let kept = db
                .known_hashes(&row.path, &listed(&row.digests.sha256))
                .unwrap()
                .unwrap();
            assert_eq!(kept["blake2b-256"], row.digests.blake2b);
            let meta = row.metadata.clone().unwrap();
            let kept = db
                .known_hashes(&md, &listed(&meta.sha256))
                .unwrap()
                .unwrap();
            assert_eq!(kept["blake2b-256"], meta.blake2b);
            let page = PageKind::Html.target_path("alpha");
            let kept = db
                .known_hashes(&page, &listed(&html.sha256))
                .unwrap()
                .unwrap();
            assert_eq!(kept["blake2b-256"], html.blake2b);
            assert_eq!(
                db.known_hashes(&row.path, &listed(&"0".repeat(64)))
                    .unwrap(),
                None
            );
            assert_eq!(db.known_hashes(&row.path, &BTreeMap::new()).unwrap(), None);
        },
    );
}

#[test]
fn a_filename_and_a_distribution_are_used_once_ever() {
    matrix(
        |Case {
             mut db,
             storage,
             name,
             ..
         }| {
            let row = wheel_row("alpha", "4", "alpha-4-py3-none-any.whl");
            upload(&mut db, &storage, &row, "alpha").unwrap();
            // The same name again (a twine retry), in any case: the same refusal.
            for again in ["alpha-4-py3-none-any.whl", "ALPHA-4-py3-none-any.whl"] {
                let msg = refusal(
                    upload(&mut db, &storage, &wheel_row("alpha", "4", again), "alpha")
                        .unwrap_err(),
                );
                assert!(msg.starts_with("File already exists"), "{name}: {msg}");
                assert!(db.filename_used(again).unwrap());
            }
            // The same identity under another name (versions compare as PEP 440).
            let same = wheel_row("alpha", "4.0.0", "alpha-4.0.0-py3-none-any.whl");
            assert!(db.filename_used(&same.filename).unwrap(), "{name}");
            let msg = refusal(upload(&mut db, &storage, &same, "alpha").unwrap_err());
            assert!(
                msg.contains("is the same file as \"alpha-4-py3-none-any.whl\""),
                "{name}: {msg}"
            );
            // One sdist per release.
            upload(
                &mut db,
                &storage,
                &sdist_row("alpha", "4", "alpha-4.tar.gz"),
                "alpha",
            )
            .unwrap();
            let msg = refusal(
                upload(
                    &mut db,
                    &storage,
                    &sdist_row("alpha", "4.0", "alpha-4.0.zip"),
                    "alpha",
                )
                .unwrap_err(),
            );
            assert!(msg.contains("would be a second sdist"), "{name}: {msg}");
            // Refusals changed nothing.
            assert_eq!(db.files_of("alpha").unwrap().len(), 2);
            assert_eq!(db.outbox_len().unwrap(), 4 + 3);
            // Still refused once removed.
            let op = Operation {
                project: "alpha".into(),
                selector: Selector::File(row.filename.clone()),
                action: Action::Remove,
            };
            manage::apply(&mut db, &storage, &op).unwrap();
            assert!(db.file(&row.filename).unwrap().is_none());
            let msg = refusal(upload(&mut db, &storage, &row, "alpha").unwrap_err());
            assert!(msg.starts_with("File already exists"), "{msg}");
            assert_eq!(
                db.dist_used(&tufpi_index::names::DistIdentity::candidates(&row.filename)[0])
                    .unwrap()
                    .as_deref(),
                Some(row.filename.as_str())
            );
        },
    );
}

#[test]
fn a_failed_commit_leaves_nothing_behind() {
    matrix(|Case { mut db, name, .. }| {
        let row = wheel_row("beta", "1.0", "beta-1.0-py3-none-any.whl");
        let err = db
            .commit_upload(&row, "Beta", &mut |_| {
                Err(IndexError::Internal("disk full".into()))
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{name}");
        assert!(!db.filename_used(&row.filename).unwrap(), "{name}");
        assert_eq!(db.project("beta").unwrap(), None);
        assert_eq!(
            (db.counts().unwrap(), db.outbox_len().unwrap()),
            ((0, 0), 0)
        );
    });
}

#[test]
fn a_file_joins_the_release_its_version_equals() {
    matrix(
        |Case {
             mut db,
             storage,
             name,
             ..
         }| {
            upload(
                &mut db,
                &storage,
                &wheel_row("gamma", "4.0", "gamma-4.0-py3-none-any.whl"),
                "gamma",
            )
            .unwrap();
            upload(
                &mut db,
                &storage,
                &wheel_row("gamma", "4.0.0", "gamma-4.0.0-py2-none-any.whl"),
                "gamma",
            )
            .unwrap();
            let versions: Vec<String> = db
                .files_of("gamma")
                .unwrap()
                .into_iter()
                .map(|f| f.version)
                .collect();
            assert_eq!(versions, ["4.0", "4.0"], "{name}");
            // The render callback saw both files, and the pages list both.
            let p = db.project("gamma").unwrap().unwrap();
            let files = db.files_of("gamma").unwrap();
            let html = render(&storage, "gamma", &files).unwrap();
            assert_eq!(p.html_sha256, Some(html[0].sha256.clone()));
        },
    );
}

#[test]
fn yank_unyank_and_remove_rerender_pages_and_queue_targets() {
    matrix(
        |Case {
             mut db,
             storage,
             name,
             ..
         }| {
            let a = wheel_row("delta", "1.0", "delta-1.0-py3-none-any.whl");
            let b = sdist_row("delta", "1.0", "delta-1.0.tar.gz");
            let c = wheel_row("delta", "2.0", "delta-2.0-py3-none-any.whl");
            for r in [&a, &b, &c] {
                upload(&mut db, &storage, r, "Delta").unwrap();
            }
            db.drain_outbox(&mut |_| Ok(())).unwrap();
            let op = |selector, action| Operation {
                project: "Delta".into(),
                selector,
                action,
            };
            let yank = Action::Yank {
                reason: "broken".into(),
            };
            let out = manage::apply(
                &mut db,
                &storage,
                &op(Selector::Release("1".into()), yank.clone()),
            )
            .unwrap();
            assert_eq!(
                out.changed,
                [a.filename.clone(), b.filename.clone()],
                "{name}"
            );
            assert_eq!(
                db.file(&a.filename).unwrap().unwrap().yanked.as_deref(),
                Some("broken")
            );
            let pages_only = [
                (true, PageKind::Html.target_path("delta")),
                (true, PageKind::Json.target_path("delta")),
            ];
            assert_eq!(paths(&db.outbox().unwrap()), pages_only);
            let current = db.project("delta").unwrap().unwrap();
            let rendered = render(&storage, "delta", &db.files_of("delta").unwrap()).unwrap();
            assert_eq!(current.html_sha256, Some(rendered[0].sha256.clone()));
            // The same yank again changes nothing and queues nothing.
            db.drain_outbox(&mut |_| Ok(())).unwrap();
            let out = manage::apply(
                &mut db,
                &storage,
                &op(Selector::File(a.filename.to_uppercase()), yank),
            )
            .unwrap();
            assert_eq!((out.changed.len(), out.unchanged.len()), (0, 1));
            assert_eq!(db.outbox_len().unwrap(), 0);
            let out = manage::apply(
                &mut db,
                &storage,
                &op(Selector::File(a.filename.clone()), Action::Unyank),
            )
            .unwrap();
            assert_eq!(out.changed, std::slice::from_ref(&a.filename));
            assert_eq!(db.file(&a.filename).unwrap().unwrap().yanked, None);
            db.drain_outbox(&mut |_| Ok(())).unwrap();
            // A removal: pages first, then the file and its metadata.
            let out = manage::apply(
                &mut db,
                &storage,
                &op(Selector::File(c.filename.clone()), Action::Remove),
            )
            .unwrap();
            assert_eq!(out.changed, std::slice::from_ref(&c.filename));
            let mut expected = pages_only.to_vec();
            expected.push((false, c.path.clone()));
            expected.push((false, metadata_path(&c.path)));
            assert_eq!(paths(&db.outbox().unwrap()), expected);
            // Nothing selected, or no such project: 404.
            for (project, selector) in [
                ("delta", Selector::Release("9".into())),
                ("nope", Selector::Project),
            ] {
                let o = Operation {
                    project: project.into(),
                    selector,
                    action: Action::Remove,
                };
                match manage::apply(&mut db, &storage, &o).unwrap_err() {
                    IndexError::Refused { status, .. } => assert_eq!(status, StatusCode::NOT_FOUND),
                    e => panic!("{name}: {e}"),
                }
            }
            // The whole project: its page targets go, its name is free, its filenames are not.
            db.drain_outbox(&mut |_| Ok(())).unwrap();
            let out =
                manage::apply(&mut db, &storage, &op(Selector::Project, Action::Remove)).unwrap();
            assert!(out.project_removed);
            let outbox = paths(&db.outbox().unwrap());
            assert_eq!(
                outbox[..2],
                [
                    (false, PageKind::Html.target_path("delta")),
                    (false, PageKind::Json.target_path("delta"))
                ]
            );
            assert_eq!(outbox.len(), 2 + 3);
            assert_eq!(db.project("delta").unwrap(), None);
            assert_eq!(db.counts().unwrap(), (0, 0));
            upload(
                &mut db,
                &storage,
                &wheel_row("delta", "3.0", "delta-3.0-py3-none-any.whl"),
                "DELTA",
            )
            .unwrap();
            assert_eq!(db.project("delta").unwrap().unwrap().display_name, "DELTA");
            assert!(refusal(upload(&mut db, &storage, &a, "delta").unwrap_err())
                .starts_with("File already exists"));
        },
    );
}

#[test]
fn references_and_superseded_pages() {
    matrix(
        |Case {
             mut db,
             storage,
             name,
             ..
         }| {
            let a = wheel_row("eps", "1.0", "eps-1.0-py3-none-any.whl");
            let b = sdist_row("eps", "1.0", "eps-1.0.tar.gz");
            upload(&mut db, &storage, &a, "eps").unwrap();
            let first = db.project("eps").unwrap().unwrap();
            upload(&mut db, &storage, &b, "eps").unwrap();
            let now = db.project("eps").unwrap().unwrap();
            let refs = db.with_references(|r| r.clone()).unwrap();
            let mut files: Vec<&str> = refs.files.iter().map(String::as_str).collect();
            files.sort();
            let md = metadata_path(&a.path);
            let mut want = vec![a.path.as_str(), md.as_str(), b.path.as_str()];
            want.sort();
            assert_eq!(files, want, "{name}");
            assert_eq!(refs.pages.len(), 4);
            // The first upload's pages are superseded; the current ones are not.
            let mut superseded = db.superseded_pages().unwrap();
            superseded.sort_by(|x, y| x.2.as_str().cmp(y.2.as_str()));
            let old: Vec<(String, String, PageKind)> = vec![
                (
                    first.html_sha256.clone().unwrap(),
                    "eps".into(),
                    PageKind::Html,
                ),
                (
                    first.json_sha256.clone().unwrap(),
                    "eps".into(),
                    PageKind::Json,
                ),
            ];
            assert_eq!(superseded, old);
            let removed = std::cell::RefCell::new(Vec::new());
            let mut ask: Vec<String> = old.iter().map(|p| p.0.clone()).collect();
            ask.push(now.html_sha256.clone().unwrap());
            let n = db
                .delete_superseded_pages(&ask, &|sha| {
                    removed.borrow_mut().push(sha.to_string());
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, 2);
            assert_eq!(removed.into_inner(), ask[..2]);
            assert!(db.superseded_pages().unwrap().is_empty());
            assert_eq!(
                db.page("eps", PageKind::Html, first.html_sha256.as_deref().unwrap())
                    .unwrap(),
                None
            );
            assert!(db
                .page("eps", PageKind::Html, now.html_sha256.as_deref().unwrap())
                .unwrap()
                .is_some());
            let _ = fake("unused");
        },
    );
}

#[test]
fn another_handle_sees_the_commits_and_drains_once() {
    matrix(|case| {
        let mut other = case.reopen();
        let Case {
            mut db,
            storage,
            name,
            ..
        } = case;
        upload(
            &mut db,
            &storage,
            &wheel_row("zeta", "1", "zeta-1-py3-none-any.whl"),
            "zeta",
        )
        .unwrap();
        assert!(
            other.filename_used("zeta-1-py3-none-any.whl").unwrap(),
            "{name}"
        );
        let mut seen = 0;
        assert_eq!(
            other
                .drain_outbox(&mut |c| {
                    seen += c.len();
                    Ok(())
                })
                .unwrap(),
            4
        );
        assert_eq!(seen, 4);
        assert_eq!(
            db.drain_outbox(&mut |_| panic!("drained twice")).unwrap(),
            0
        );
    });
}
