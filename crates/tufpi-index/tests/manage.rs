//! Yank, unyank and remove through `POST /manage/project/…` and through the data directory
//! (`tufpi project`, with and without a running server): pages, files, signed targets.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use tufpi_index::pages::JSON_TYPE;
use tufpi_index::{manage_data_dir, wait_signed, Action, Operation, Publication, Selector};

const W1: &str = "demo-1.0-py3-none-any.whl";
const S1: &str = "demo-1.0.tar.gz";
const W2: &str = "demo-2.0-py3-none-any.whl";

async fn three_files(t: &TestIndex) -> Vec<u8> {
    let w2 = wheel("demo", "2.0");
    for (v, f, bytes) in [
        ("1.0", W1, wheel("demo", "1.0")),
        ("1.0", S1, sdist("demo", "1.0")),
        ("2.0", W2, w2.clone()),
    ] {
        let r = t.upload("demo", v, f, &bytes).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    w2
}

async fn page(t: &TestIndex) -> (Vec<u8>, serde_json::Value) {
    let r = get(&t.router, "/simple/demo/", Some(JSON_TYPE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    (r.body, v)
}

fn file<'a>(page: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == name)
}

fn url_of(page: &serde_json::Value, name: &str) -> String {
    file(page, name).unwrap()["url"]
        .as_str()
        .unwrap()
        .strip_prefix("../../")
        .unwrap()
        .to_string()
}

/// The page targets are signed with the current pages' digests.
async fn pages_signed(t: &TestIndex) {
    t.settled().await;
    let signed = signed_targets(&t.router).await;
    for (name, accept) in [
        ("vnd.pypi.simple.v1.json", JSON_TYPE),
        ("vnd.pypi.simple.v1.html", "text/html"),
    ] {
        let body = get(&t.router, "/simple/demo/", Some(accept)).await.body;
        let target = &signed[&format!("simple/demo/{name}")];
        assert_eq!(target.1, sha256_hex(&body), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yank_unyank_and_remove_through_the_api() {
    let t = index();
    let w2 = three_files(&t).await;
    let (_, before) = page(&t).await;
    let w2_url = url_of(&before, W2);

    // Yank a release with a reason: both files, listed and still downloadable.
    let r = t
        .manage("demo", "yank", "version=1.0&reason=broken+%3Cbuild%3E")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["changed"], serde_json::json!([W1, S1]));
    assert_eq!(v["action"], "yank");
    let (_, p) = page(&t).await;
    assert_eq!(file(&p, W1).unwrap()["yanked"], "broken <build>");
    assert_eq!(file(&p, S1).unwrap()["yanked"], "broken <build>");
    assert_eq!(file(&p, W2).unwrap()["yanked"], false);
    let html = get(&t.router, "/simple/demo/", Some("text/html"))
        .await
        .text();
    assert!(
        html.contains("data-yanked=\"broken &lt;build&gt;\">demo-1.0.tar.gz</a>"),
        "{html}"
    );
    let f = get(&t.router, &format!("/{}", url_of(&p, W1)), None).await;
    assert_eq!(f.status, StatusCode::OK);
    pages_signed(&t).await;

    // Again: nothing changes. JSON bodies work too.
    let r = send(
        &t.router,
        post_request(
            "/manage/project/Demo/yank",
            Some(basic("__token__", &t.token)),
            "application/json",
            r#"{"version": "1.0.0", "reason": "broken <build>"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["changed"], serde_json::json!([]));
    assert_eq!(r.json()["unchanged"], serde_json::json!([W1, S1]));

    // Unyank one file.
    let r = t.manage("demo", "unyank", &format!("filename={S1}")).await;
    assert_eq!(r.json()["changed"], serde_json::json!([S1]), "{}", r.text());
    let (_, p) = page(&t).await;
    assert_eq!(file(&p, S1).unwrap()["yanked"], false);
    assert_eq!(file(&p, W1).unwrap()["yanked"], "broken <build>");

    // Remove a file: gone from the page, the disk and the signed targets; name never reusable.
    let r = t.manage("demo", "remove", &format!("filename={W2}")).await;
    assert_eq!(r.json()["changed"], serde_json::json!([W2]), "{}", r.text());
    let (_, p) = page(&t).await;
    assert!(file(&p, W2).is_none());
    assert_eq!(p["versions"], serde_json::json!(["1.0"]));
    for u in [w2_url.clone(), format!("{w2_url}.metadata")] {
        assert_eq!(
            get(&t.router, &format!("/{u}"), None).await.status,
            StatusCode::NOT_FOUND
        );
        assert!(!t.dir.path().join(&u).exists(), "{u} still on disk");
    }
    pages_signed(&t).await;
    let signed = signed_targets(&t.router).await;
    assert!(!signed.contains_key(&w2_url));
    assert!(!signed.contains_key(&format!("{w2_url}.metadata")));
    assert!(signed.contains_key(&url_of(&p, W1)));
    let r = t.upload("demo", "2.0", W2, &w2).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("File already exists"), "{}", r.text());

    // Remove the last release: the project stays, with an empty (signed) page.
    let r = t.manage("demo", "remove", "version=1.0").await;
    assert_eq!(
        r.json()["changed"],
        serde_json::json!([W1, S1]),
        "{}",
        r.text()
    );
    let (_, p) = page(&t).await;
    assert_eq!(p["files"], serde_json::json!([]));
    pages_signed(&t).await;
    assert!(!signed_targets(&t.router)
        .await
        .keys()
        .any(|k| k.starts_with("packages/")));
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_a_whole_project() {
    let t = index();
    three_files(&t).await;
    let other = wheel("other", "1.0");
    assert_eq!(
        t.upload("other", "1.0", "other-1.0-py3-none-any.whl", &other)
            .await
            .status,
        StatusCode::OK
    );
    // The whole project only when confirmed by name.
    let r = t.manage("demo", "remove", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("confirm=demo"), "{}", r.text());
    let r = t.manage("demo", "remove", "confirm=other").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t.manage("Demo", "remove", "confirm=Demo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["project_removed"], true);
    assert_eq!(v["changed"].as_array().unwrap().len(), 3);
    assert_eq!(
        get(&t.router, "/simple/demo/", None).await.status,
        StatusCode::NOT_FOUND
    );
    let list = get(&t.router, "/simple/", Some(JSON_TYPE)).await.json();
    assert_eq!(list["projects"], serde_json::json!([{"name": "other"}]));
    t.settled().await;
    let signed = signed_targets(&t.router).await;
    assert!(
        signed.keys().all(|k| !k.contains("demo")),
        "{:?}",
        signed.keys().collect::<Vec<_>>()
    );
    assert!(signed.contains_key("simple/other/vnd.pypi.simple.v1.json"));
    // The name may come back; the filenames may not.
    let r = t.upload("demo", "1.0", W1, &wheel("demo", "1.0")).await;
    assert!(r.text().contains("File already exists"), "{}", r.text());
    let r = t
        .upload(
            "demo",
            "3.0",
            "demo-3.0-py3-none-any.whl",
            &wheel("demo", "3.0"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    pages_signed(&t).await;
    t.index.shutdown();
}

/// A refusal case: auth, URI, Content-Type, body, expected status and message.
type Case<'a> = (
    Option<String>,
    &'a str,
    &'a str,
    &'a str,
    StatusCode,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_refusals() {
    let t = index();
    three_files(&t).await;
    t.settled().await;
    let before = signed_targets(&t.router).await;
    let uri = "/manage/project/demo/yank";
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<Case> = vec![
        (
            None,
            uri,
            form,
            "version=1.0",
            StatusCode::UNAUTHORIZED,
            "Authentication required",
        ),
        (
            Some(basic("__token__", "tufpi-nope")),
            uri,
            form,
            "version=1.0",
            StatusCode::FORBIDDEN,
            "Invalid or unknown upload token",
        ),
        (
            Some(basic("__token__", &t.token)),
            "/manage/project/demo/delete",
            form,
            "version=1.0",
            StatusCode::NOT_FOUND,
            "No action \"delete\"",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "version=9.9",
            StatusCode::NOT_FOUND,
            "No release \"9.9\" of project \"demo\"",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "filename=other-1.0.tar.gz",
            StatusCode::NOT_FOUND,
            "No file \"other-1.0.tar.gz\"",
        ),
        (
            Some(basic("__token__", &t.token)),
            "/manage/project/nope/yank",
            form,
            "version=1.0",
            StatusCode::NOT_FOUND,
            "No such project: \"nope\"",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "",
            StatusCode::BAD_REQUEST,
            "Say what to yank",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "version=1.0&filename=x",
            StatusCode::BAD_REQUEST,
            "not both",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "version=not+a+version",
            StatusCode::BAD_REQUEST,
            "Invalid version",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "version=1.0&colour=red",
            StatusCode::BAD_REQUEST,
            "Unknown field \"colour\"",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "version=1.0&reason=a%0Ab",
            StatusCode::BAD_REQUEST,
            "one line",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            "version=%zz",
            StatusCode::BAD_REQUEST,
            "Malformed form body",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            "application/json",
            "[1]",
            StatusCode::BAD_REQUEST,
            "must be an object",
        ),
        (
            Some(basic("__token__", &t.token)),
            uri,
            "text/plain",
            "version=1.0",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type",
        ),
        (
            Some(basic("__token__", &t.token)),
            "/manage/project/demo/unyank",
            form,
            "version=1.0&reason=x",
            StatusCode::BAD_REQUEST,
            "Only yank takes a reason",
        ),
        (
            Some(basic("__token__", &t.token)),
            "/manage/project/bad%20name/yank",
            form,
            "version=1.0",
            StatusCode::BAD_REQUEST,
            "Invalid project name",
        ),
    ];
    let long = format!("version=1.0&reason={}", "x".repeat(501));
    let scoped = tufpi_index::db::IndexDb::open(&t.dir.path().join("index.db"))
        .unwrap()
        .create_token(Some("other"), None)
        .unwrap();
    let more: Vec<Case> = vec![
        (
            Some(basic("__token__", &t.token)),
            uri,
            form,
            &long,
            StatusCode::BAD_REQUEST,
            "too long",
        ),
        (
            Some(basic("__token__", &scoped)),
            uri,
            form,
            "version=1.0",
            StatusCode::FORBIDDEN,
            "may only manage project \"other\"",
        ),
    ];
    for (auth, uri, ct, body, status, message) in cases.into_iter().chain(more) {
        let r = send(&t.router, post_request(uri, auth, ct, body)).await;
        assert_eq!(r.status, status, "{uri} {body}: {}", r.text());
        assert!(r.text().contains(message), "{uri} {body}: {}", r.text());
        assert_eq!(r.text().lines().count(), 1, "{}", r.text());
    }
    // A token scoped to the project may manage it.
    let mine = tufpi_index::db::IndexDb::open(&t.dir.path().join("index.db"))
        .unwrap()
        .create_token(Some("Demo"), None)
        .unwrap();
    t.settled().await;
    assert_eq!(signed_targets(&t.router).await, before);
    let r = send(
        &t.router,
        post_request(uri, Some(basic("__token__", &mine)), form, "version=2.0"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_management_with_and_without_a_server() {
    let t = index();
    three_files(&t).await;
    t.settled().await;
    let yank = Operation {
        project: "demo".into(),
        selector: Selector::Release("2.0".into()),
        action: Action::Yank {
            reason: "old".into(),
        },
    };
    // The server runs (it holds the repository lock): queued, signed by its publisher.
    let dir = t.dir.path().to_path_buf();
    let d = dir.clone();
    let y = yank.clone();
    let (out, publication) = tokio::task::spawn_blocking(move || manage_data_dir(&d, &y, 1000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.changed, vec![W2.to_string()]);
    assert_eq!(publication, Publication::Queued);
    let d = dir.clone();
    let v = tokio::task::spawn_blocking(move || wait_signed(&d, Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert!(v.is_some());
    let (_, p) = page(&t).await;
    assert_eq!(file(&p, W2).unwrap()["yanked"], "old");
    pages_signed(&t).await;

    // No server: published by the call itself.
    t.index.shutdown();
    let TestIndex { dir, token, .. } = t;
    let remove = Operation {
        project: "demo".into(),
        selector: Selector::File(W1.into()),
        action: Action::Remove,
    };
    let (out, publication) = manage_data_dir(dir.path(), &remove, 1000).unwrap();
    assert_eq!(out.changed, vec![W1.to_string()]);
    assert!(
        matches!(publication, Publication::Published(v) if v > 0),
        "{publication:?}"
    );
    let (_, publication) = manage_data_dir(dir.path(), &yank, 1000).unwrap();
    assert_eq!(publication, Publication::Nothing);
    let err = manage_data_dir(dir.path(), &remove, 1000).unwrap_err();
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    assert!(manage_data_dir(&dir.path().join("nope"), &remove, 1000).is_err());

    // A server started afterwards serves and has signed it.
    let (index, _) = tufpi_index::Index::open(dir.path(), &Default::default()).unwrap();
    let index = std::sync::Arc::new(index);
    let t = TestIndex {
        router: tufpi_index::router(index.clone()),
        index,
        dir,
        token,
    };
    let (_, p) = page(&t).await;
    assert!(file(&p, W1).is_none());
    pages_signed(&t).await;
    let signed = signed_targets(&t.router).await;
    assert_eq!(
        signed.keys().filter(|k| k.starts_with("packages/")).count(),
        3,
        "{signed:?}"
    );
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_signs_outbox_changes_committed_elsewhere() {
    let t = index();
    three_files(&t).await;
    t.settled().await;
    let (_, p) = page(&t).await;
    let gone = url_of(&p, S1);
    // Another process (a `tufpi project` whose own hand-over failed) left a change behind.
    rusqlite::Connection::open(t.dir.path().join("index.db"))
        .unwrap()
        .execute(
            "INSERT INTO outbox(op, path, size, sha256, blake2b) VALUES ('remove', ?1, 0, '', '')",
            [&gone],
        )
        .unwrap();
    for _ in 0..100 {
        if !signed_targets(&t.router).await.contains_key(&gone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!signed_targets(&t.router).await.contains_key(&gone));
    assert_eq!(t.settled().await["pending_changes"], 0);
    t.index.shutdown();
}

/// A repeated field is refused, in a form and in JSON alike (serde_json's maps would keep
/// only the last of a repeated key), and so is a key spelled with escapes that repeats one.
#[test]
fn repeated_fields_are_refused_in_forms_and_json() {
    use tufpi_index::manage::request_fields;
    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    for (ct, body, want) in [
        (
            FORM,
            "version=1.0&version=2.0",
            "Field \"version\" given twice",
        ),
        (
            JSON,
            r#"{"version": "1.0", "version": "2.0"}"#,
            "Field \"version\" given twice",
        ),
        (
            JSON,
            r#"{"version": "1.0", "reason": "a", "reason": "b"}"#,
            "Field \"reason\" given twice",
        ),
        (
            JSON,
            r#"{"version": "1.0", "vers\u0069on": "2.0"}"#,
            "Field \"version\" given twice",
        ),
        (
            JSON,
            r#"{"version": 1}"#,
            "Field \"version\" must be a string",
        ),
        (JSON, "[1]", "must be an object"),
        (JSON, r#"{"version": "1.0""#, "Malformed JSON body"),
    ] {
        let err = request_fields(Some(ct), body.as_bytes()).expect_err(body);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(err.to_string().contains(want), "{body}: {err}");
    }
    // Escapes, whitespace and key order are fine once each key appears once.
    let f = request_fields(
        Some(JSON),
        br#" { "reason" : "say \"no\" \\ \u00e9" ,"version":"1.0" } "#,
    )
    .unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f["version"], "1.0");
    assert_eq!(f["reason"], "say \"no\" \\ \u{e9}");
    let f = request_fields(Some(FORM), b"version=1.0&reason=a+b").unwrap();
    assert_eq!(
        (f["version"].as_str(), f["reason"].as_str()),
        ("1.0", "a b")
    );
}
