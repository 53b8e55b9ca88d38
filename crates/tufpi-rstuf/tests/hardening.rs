//! Hostile requests: no way out of `/metadata/` (dot segments, percent-encoded or not), a
//! body over the cap is refused before it is read, absurd numbers are refused naming the
//! field, and the payload helpers the routes use keep to what was validated.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tufpi_core::crypto::Scheme;
use tufpi_rstuf::payload;
use tufpi_rstuf::validate::Check;

/// GET `uri` as given (no normalisation); (status, body bytes).
async fn get_raw(env: &Env, uri: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = env.app.clone().oneshot(req).await.unwrap();
    let st = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (st, b.to_vec())
}

#[tokio::test]
async fn metadata_serving_cannot_leave_the_metadata_dir() {
    let env = Env::new();
    std::fs::create_dir_all(env.metadata()).unwrap();
    std::fs::write(env.metadata().join("timestamp.json"), b"{}").unwrap();
    let (st, b) = get_raw(&env, "/metadata/timestamp.json").await;
    assert_eq!((st, b.as_slice()), (StatusCode::OK, &b"{}"[..]));

    let db = std::fs::read(env.dir.path().join("data/rstuf.db")).unwrap();
    assert!(db.starts_with(b"SQLite format 3"));
    for uri in [
        "/metadata/../rstuf.db",
        "/metadata/%2e%2e/rstuf.db",
        "/metadata/%2E%2E/rstuf.db",
        "/metadata/..%2frstuf.db",
        "/metadata/%2e%2e%2frstuf.db",
        "/metadata/..%5crstuf.db",
        "/metadata/./../rstuf.db",
        "/metadata//../rstuf.db",
        "/metadata/%2e%2e/%2e%2e/etc/passwd",
        "/metadata/%2fetc%2fpasswd",
        "/metadata//etc/passwd",
        "/metadata/../rstuf.lock",
    ] {
        let (st, b) = get_raw(&env, uri).await;
        assert_ne!(st, StatusCode::OK, "{uri} answered 200");
        assert!(!b.starts_with(b"SQLite"), "{uri} served the task database");
        assert!(
            !b.windows(5).any(|w| w == b"root:"),
            "{uri} served /etc/passwd"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_with_413() {
    let env = Env::new();
    let big = vec![b' '; tufpi_rstuf::routes::MAX_BODY + 1];
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/bootstrap")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let resp = env.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was accepted: still available for bootstrap.
    let (st, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["state"], Value::Null, "{v}");
}

#[tokio::test]
async fn absurd_bin_counts_are_refused_naming_the_field_and_value() {
    let env = Env::new();
    let rk = root_key(Scheme::Ed25519);
    let online = online_key(&env.keys(), Scheme::Ed25519);
    let root_md = signed(root(1, &[&rk], 1, &online), &[&rk]);
    let loc = json!([
        "body",
        "settings",
        "roles",
        "bins",
        "number_of_delegated_bins"
    ]);
    for (n, kind, says) in [
        (json!(u64::MAX), "int_type", "valid integer"),
        (json!(i64::MIN), "greater_than", "greater than 1"),
        (json!(1u64 << 40), "less_than", "less than 16385"),
        (json!(16385), "less_than", "less than 16385"),
        (json!(12), "value_error", "power of 2, not 12"),
        (json!(16.0), "int_type", "valid integer"),
        (json!("16"), "int_type", "valid integer"),
    ] {
        let mut p = ceremony_payload(&root_md, 16);
        p["settings"]["roles"]["bins"]["number_of_delegated_bins"] = n.clone();
        let (st, v) = env.call("POST", "/api/v1/bootstrap", Some(p)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{n}: {v}");
        let e = &v["detail"][0];
        assert_eq!(e["loc"], loc, "{n}: {v}");
        assert_eq!(e["type"], kind, "{n}: {v}");
        assert!(e["msg"].as_str().unwrap().contains(says), "{n}: {v}");
        assert_eq!(e["input"], n, "{n}: {v}");
    }
    // Custom delegations without bins: refused at `delegations`, quoting it.
    let mut p = ceremony_payload(&root_md, 16);
    let roles = p["settings"]["roles"].as_object_mut().unwrap();
    roles.remove("bins");
    roles.insert("delegations".into(), json!({"roles": []}));
    let (st, v) = env.call("POST", "/api/v1/bootstrap", Some(p)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let e = &v["detail"][0];
    assert_eq!(
        e["loc"],
        json!(["body", "settings", "roles", "delegations"])
    );
    assert_eq!(e["input"], json!({"roles": []}));
    let (_, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(v["data"]["state"], Value::Null, "nothing was accepted: {v}");
}

#[test]
fn add_task_id_keeps_to_validated_artifacts() {
    let mut v = json!({"targets": [
        {"path": "a", "info": {"length": 1, "hashes": {"sha256": "00"}}},
        {"path": "b", "info": {"length": 1, "hashes": {"sha256": "00"}, "custom": null}},
        {"path": "c", "info": {"length": 1, "hashes": {"sha256": "00"}, "custom": {"k": [1]}}},
    ]});
    payload::targets_alias(&mut v);
    let mut c = Check::new();
    let a = payload::add_artifacts(&mut c, &v).unwrap();
    payload::check_customs(&mut c, &a);
    assert!(c.ok());
    payload::add_task_id(&mut v, "t1");
    let mut c = Check::new();
    let a = payload::add_artifacts(&mut c, &v).unwrap();
    for art in &a.artifacts {
        assert_eq!(art.custom.as_ref().unwrap()["added_by_task_id"], "t1");
    }
    assert_eq!(a.artifacts[2].custom.as_ref().unwrap()["k"], json!([1]));

    // Not an accepted payload: left alone, no panic.
    for mut odd in [
        json!(null),
        json!({"artifacts": 3}),
        json!({"artifacts": [7, {"info": 1}, {"info": {"custom": 5}}]}),
    ] {
        let before = odd.clone();
        payload::add_task_id(&mut odd, "t");
        if before != json!({"artifacts": [7, {"info": 1}, {"info": {"custom": 5}}]}) {
            assert_eq!(odd, before);
        }
    }

    // A float in custom is refused, located.
    let v = json!({"artifacts": [{"path": "a", "info": {"length": 1, "hashes": {"sha256": "00"}, "custom": {"f": 1.5}}}]});
    let mut c = Check::new();
    let a = payload::add_artifacts(&mut c, &v).unwrap();
    payload::check_customs(&mut c, &a);
    let d = c.into_detail();
    assert_eq!(
        d["detail"][0]["loc"],
        json!(["body", "artifacts", 0, "info", "custom"])
    );
    assert!(
        d["detail"][0]["msg"].as_str().unwrap().contains("1.5"),
        "{d}"
    );
}

#[test]
fn fn_key_uris_cannot_name_a_file_outside_the_key_dir() {
    let d = tempfile::tempdir().unwrap();
    let keys = d.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let rk = root_key(Scheme::Ed25519);
    let mut online = online_key(&keys, Scheme::Ed25519);
    // The real key, one level up: reachable only by escaping the key directory.
    std::fs::write(
        d.path().join("outside.pem"),
        online.private.to_pkcs8_pem().unwrap(),
    )
    .unwrap();
    let inside = root(1, &[&rk], 1, &online);
    assert!(tufpi_rstuf::online::load(&inside, Some(&keys)).is_ok());
    let outside = d.path().join("outside.pem");
    for uri in [
        "fn:../outside.pem".to_string(),
        "fn:./../outside.pem".to_string(),
        "fn:sub/../../outside.pem".to_string(),
        format!("fn:{}", outside.display()),
        "fn:".to_string(),
        "fn:.".to_string(),
        "fn:%2e%2e/outside.pem".to_string(),
        "file:../outside.pem".to_string(),
    ] {
        online.public.unrecognized.insert(
            tufpi_rstuf::online::KEY_URI_FIELD.into(),
            tufpi_core::json::Value::String(uri.clone()),
        );
        let md = root(1, &[&rk], 1, &online);
        let e = match tufpi_rstuf::online::load(&md, Some(&keys)) {
            Ok(_) => panic!("{uri}: loaded a key from outside the key directory"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(&format!("{uri:?}")), "{uri}: {e}");
    }
}
