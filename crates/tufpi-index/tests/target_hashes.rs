//! The hashes an index's targets list: sha256 alone by default (tuf-js and go-tuf refuse
//! blake2b-256), more on request, and a change re-lists every file, `.metadata` and page
//! with the digests the index keeps.

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use common::{get, index_from, sdist, test_options, wheel};
use tufpi_core::hashes::digest_hex;
use tufpi_index::IndexOptions;
use tufpi_repo::TargetHashes;

/// Every signed target: path → its `hashes` object, resolved from the served metadata.
async fn listed(router: &axum::Router) -> BTreeMap<String, BTreeMap<String, String>> {
    let ts = get(router, "/metadata/timestamp.json", None).await.json();
    let sv = &ts["signed"]["meta"]["snapshot.json"]["version"];
    let snap = get(router, &format!("/metadata/{sv}.snapshot.json"), None)
        .await
        .json();
    let mut out = BTreeMap::new();
    for (name, meta) in snap["signed"]["meta"].as_object().unwrap() {
        let role = name.strip_suffix(".json").unwrap();
        let md = get(
            router,
            &format!("/metadata/{}.{role}.json", meta["version"]),
            None,
        )
        .await;
        assert_eq!(md.status, StatusCode::OK);
        for (path, t) in md.json()["signed"]["targets"].as_object().unwrap() {
            let h = t["hashes"].as_object().unwrap();
            let h = h
                .iter()
                .map(|(a, v)| (a.clone(), v.as_str().unwrap().to_string()));
            out.insert(path.clone(), h.collect());
        }
    }
    out
}

/// Each target's listed hashes are `algs`, and each is the digest of the bytes served.
async fn check(router: &axum::Router, algs: &[&str]) -> usize {
    let targets = listed(router).await;
    for (path, hashes) in &targets {
        assert_eq!(hashes.keys().collect::<Vec<_>>(), algs, "{path}");
        let body = get(router, &format!("/{path}"), None).await;
        assert_eq!(body.status, StatusCode::OK, "{path}");
        for (alg, hex) in hashes {
            assert_eq!(&digest_hex(alg, &body.body).unwrap(), hex, "{path} {alg}");
        }
    }
    targets.len()
}

fn with(hashes: Option<&str>) -> IndexOptions {
    IndexOptions {
        target_hashes: hashes.map(|h| TargetHashes::parse(h).unwrap()),
        ..test_options()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn default_is_sha256_and_a_change_re_lists_every_target() {
    let t = index_from(test_options());
    let r = t
        .upload(
            "demo",
            "1.0",
            "demo-1.0-py3-none-any.whl",
            &wheel("demo", "1.0"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t
        .upload("demo", "1.0", "demo-1.0.tar.gz", &sdist("demo", "1.0"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    // Wheel, its .metadata, sdist, HTML and JSON pages.
    assert_eq!(check(&t.router, &["sha256"]).await, 5);

    // Asked for blake2b-256 too: every target re-listed at start, from the index's digests.
    let t = t.restart_with(&with(Some("sha256,blake2b-256")));
    t.settled().await;
    assert_eq!(check(&t.router, &["blake2b-256", "sha256"]).await, 5);
    // New uploads list both; without the option the choice is kept.
    let r = t
        .upload("other", "2.0", "other-2.0.tar.gz", &sdist("other", "2.0"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = t.restart_with(&with(None));
    t.settled().await;
    assert_eq!(check(&t.router, &["blake2b-256", "sha256"]).await, 8);

    let t = t.restart_with(&with(Some("sha256")));
    t.settled().await;
    assert_eq!(check(&t.router, &["sha256"]).await, 8);
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_index_takes_the_option_and_refuses_what_it_cannot_list() {
    let t = index_from(with(Some("sha256,blake2b-256")));
    let r = t
        .upload("demo", "1.0", "demo-1.0.tar.gz", &sdist("demo", "1.0"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.settled().await;
    assert_eq!(check(&t.router, &["blake2b-256", "sha256"]).await, 3);
    t.index.shutdown();

    let dir = tempfile::tempdir().unwrap();
    let err = tufpi_index::Index::open(dir.path(), &with(Some("sha256,sha512")))
        .err()
        .expect("sha512 refused")
        .to_string();
    assert!(
        err.contains("sha512") && err.contains("sha256 and blake2b-256"),
        "{err}"
    );
}
