//! A running index collects superseded metadata and the superseded pages no retained bin
//! lists any more (they used to stay forever: seven uploads with huge pages filled 3.3 GB);
//! pages are rendered outside the index-wide writer lock and still match the files, however
//! uploads to one project interleave.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use tufpi_index::pages::JSON_TYPE;

fn stored_pages(t: &TestIndex) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(t.dir.path().join("pages"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_pages_go_once_no_retained_bin_lists_them() {
    let t = index();
    for v in ["1.0", "2.0", "3.0"] {
        let f = format!("demo-{v}-py3-none-any.whl");
        let r = t.upload("demo", v, &f, &wheel("demo", v)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    t.settled().await;
    assert_eq!(stored_pages(&t).len(), 6, "3 uploads x 2 renderings");

    // Within the retention window nothing goes: old bins still list the old pages.
    let idx = t.index.clone();
    let kept = tokio::task::spawn_blocking(move || idx.collect(Duration::from_secs(3600)))
        .await
        .unwrap()
        .unwrap();
    assert!(kept.pages_checked);
    assert_eq!(kept.pages_deleted, 0);
    assert_eq!(kept.pages_retained, 4);
    assert_eq!(stored_pages(&t).len(), 6);

    // Past it, the old bins are collected and so are the pages only they listed.
    let idx = t.index.clone();
    let done = tokio::task::spawn_blocking(move || idx.collect(Duration::ZERO))
        .await
        .unwrap()
        .unwrap();
    assert!(done.metadata.deleted > 0, "{done:?}");
    assert_eq!(done.pages_deleted, 4, "{done:?}");
    assert_eq!(stored_pages(&t).len(), 2);

    // What is signed is still served, byte for byte.
    let signed = signed_targets(&t.router).await;
    for kind in ["html", "json"] {
        let path = format!("simple/demo/vnd.pypi.simple.v1.{kind}");
        let r = get(&t.router, &format!("/{path}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(sha256_hex(&r.body), signed[&path].1);
        let hashed = format!("/simple/demo/{}.vnd.pypi.simple.v1.{kind}", signed[&path].1);
        assert_eq!(get(&t.router, &hashed, None).await.status, StatusCode::OK);
    }

    // A page whose bytes come back (yank, then unyank) after being collected is stored
    // again and served.
    for (action, form) in [("yank", "version=3.0"), ("unyank", "version=3.0")] {
        let r = t.manage("demo", action, form).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    t.settled().await;
    let idx = t.index.clone();
    tokio::task::spawn_blocking(move || idx.collect(Duration::ZERO))
        .await
        .unwrap()
        .unwrap();
    let signed = signed_targets(&t.router).await;
    let r = get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        sha256_hex(&r.body),
        signed["simple/demo/vnd.pypi.simple.v1.json"].1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_uploads_to_one_project_all_reach_its_page() {
    let t = index();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let router = t.router.clone();
        // A token each: one token's uploads at once are capped.
        let token = tufpi_index::db::IndexDb::open(&t.dir.path().join("index.db"))
            .unwrap()
            .create_token(None, None)
            .unwrap();
        let project = if i % 3 == 0 { "other" } else { "demo" };
        tasks.push(tokio::spawn(async move {
            let v = format!("1.{i}");
            let f = format!("{project}-{v}-py3-none-any.whl");
            let body = multipart(
                &form(project, &v, &f, &wheel(project, &v)),
                Some((&f, &wheel(project, &v))),
            );
            let r = send(
                &router,
                upload_request(Some(basic("__token__", &token)), body),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    t.settled().await;
    let page = get(&t.router, "/simple/demo/", Some(JSON_TYPE))
        .await
        .json();
    assert_eq!(page["files"].as_array().unwrap().len(), 8);
    let page = get(&t.router, "/simple/other/", Some(JSON_TYPE))
        .await
        .json();
    assert_eq!(page["files"].as_array().unwrap().len(), 4);
    let signed = signed_targets(&t.router).await;
    let r = get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await;
    assert_eq!(
        sha256_hex(&r.body),
        signed["simple/demo/vnd.pypi.simple.v1.json"].1
    );
}
