//! Distributed asynchronous signing (DAS) and root rotation through the RSTUF API: a
//! bootstrap root below its threshold waits for signatures via `/metadata/sign`; a root
//! update rotates root keys and the online key (every online role re-signed with it); a
//! pending signing can be stopped. The client verifies from the bootstrap root throughout.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};
use tufpi_core::crypto::Scheme;
use tufpi_core::metadata::Metadata;

fn signature(md: &Metadata, key: &TestKey) -> Value {
    let sig = key
        .private
        .sign_hex(&md.signed.canonical().unwrap())
        .unwrap();
    json!({"role": "root", "signature": {"keyid": key.keyid, "sig": sig}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn das_bootstrap_then_root_and_online_key_rotation() {
    let env = Env::new();
    let rk1 = root_key(Scheme::Ed25519);
    let rk2 = root_key(Scheme::EcdsaP256);
    let online1 = online_key(&env.keys(), Scheme::Ed25519);
    let v1 = root(1, &[&rk1, &rk2], 2, &online1);

    // Bootstrap with one of two signatures: accepted, waiting for the second.
    let id = env
        .submit(
            "/api/v1/bootstrap",
            Some(ceremony_payload(&signed(v1.clone(), &[&rk1]), 8)),
            "Bootstrap accepted.",
        )
        .await;
    let r = env.success(&id).await;
    assert_eq!(r["details"]["bootstrap"], "Root v1 is pending signature");
    let (_, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(v["data"]["state"], "signing");
    assert_eq!(v["data"]["bootstrap"], false);
    assert!(!env.metadata().join("1.root.json").exists());
    let (st, _) = env
        .call("POST", "/api/v1/artifacts", Some(json!({"artifacts": []})))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, v) = env.call("GET", "/api/v1/metadata/sign/", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["metadata"]["root"]["signed"]["version"], 1);
    assert!(v["data"]["metadata"].get("trusted_root").is_none());

    // A signature that does not verify is refused, naming the check.
    let mut bad = signature(&v1, &rk2);
    bad["signature"]["sig"] = json!("00".repeat(64));
    let id = env
        .submit(
            "/api/v1/metadata/sign",
            Some(bad),
            "Metadata sign accepted.",
        )
        .await;
    env.wait_errored(&id, "does not verify").await;

    // The second key holder signs: bootstrap finishes.
    let id = env
        .submit(
            "/api/v1/metadata/sign/",
            Some(signature(&v1, &rk2)),
            "Metadata sign accepted.",
        )
        .await;
    env.success(&id).await;
    let (_, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(v["data"]["bootstrap"], true);
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("before/rotation", 1)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    env.success(&id).await;
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("before/rotation").unwrap().is_some());

    // Root v2: rk2 out, rk3 in, and a new online key. Signed by rk1 and rk3 (the new
    // threshold) but only one of the trusted root's keys: it waits.
    let rk3 = root_key(Scheme::Ed25519);
    let online2 = online_key(&env.keys(), Scheme::EcdsaP384);
    let v2 = root(2, &[&rk1, &rk3], 2, &online2);
    let id = env
        .submit(
            "/api/v1/metadata/",
            Some(json!({"metadata": {"root": to_json(&signed(v2.clone(), &[&rk1, &rk3]))}})),
            "Metadata update accepted.",
        )
        .await;
    let r = env.success(&id).await;
    assert_eq!(r["details"]["update"], "Root v2 is pending signatures");
    let (_, v) = env.call("GET", "/api/v1/metadata/sign", None).await;
    assert_eq!(v["data"]["metadata"]["root"]["signed"]["version"], 2);
    assert_eq!(
        v["data"]["metadata"]["trusted_root"]["signed"]["version"],
        1
    );
    // Still served with the old keys meanwhile.
    assert!(!env.metadata().join("2.root.json").exists());

    // The old key holder signs too: root v2 is published and the online key rotated.
    let id = env
        .submit(
            "/api/v1/metadata/sign",
            Some(signature(&v2, &rk2)),
            "Metadata sign accepted.",
        )
        .await;
    let r = env.success(&id).await;
    assert!(r["details"]["message"]
        .as_str()
        .unwrap()
        .contains("new online key"));
    let ts = std::fs::read(env.metadata().join("timestamp.json")).unwrap();
    let ts = Metadata::from_bytes(&ts).unwrap();
    assert_eq!(ts.signatures[0].keyid, online2.keyid);

    // A client that trusted v1 follows to v2 and still finds what was added before.
    let (_c, mut client) = env.client();
    assert_eq!(client.trusted().root_signed().version, 2);
    assert!(client.get_targetinfo("before/rotation").unwrap().is_some());
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("after/rotation", 2)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    env.success(&id).await;
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("after/rotation").unwrap().is_some());

    // A pending update can be stopped; then nothing is pending.
    let v3 = root(3, &[&rk1, &rk3], 2, &online2);
    let id = env
        .submit(
            "/api/v1/metadata",
            Some(json!({"metadata": {"root": to_json(&signed(v3, &[&rk1]))}})),
            "Metadata update accepted.",
        )
        .await;
    env.success(&id).await;
    let id = env
        .submit(
            "/api/v1/metadata/sign/delete",
            Some(json!({"role": "root"})),
            "Metadata sign delete accepted.",
        )
        .await;
    env.success(&id).await;
    let (_, v) = env.call("GET", "/api/v1/metadata/sign", None).await;
    assert_eq!(v["data"]["metadata"], json!({}));
    let (st, _) = env
        .call(
            "POST",
            "/api/v1/metadata/sign/delete",
            Some(json!({"role": "root"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A root that skips a version is refused, naming the versions.
    let v5 = root(5, &[&rk1, &rk3], 2, &online2);
    let id = env
        .submit(
            "/api/v1/metadata",
            Some(json!({"metadata": {"root": to_json(&signed(v5, &[&rk1, &rk3]))}})),
            "Metadata update accepted.",
        )
        .await;
    env.wait_errored(&id, "expected 3").await;
}
