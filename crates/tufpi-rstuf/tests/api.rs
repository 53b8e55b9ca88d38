//! The RSTUF API end to end, in process: bootstrap with a ceremony payload, artifacts added
//! and removed through tasks, the published metadata verified by tufpi's own client from the
//! bootstrap root; errors as RSTUF's clients expect them; task results after a restart.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tufpi_core::crypto::Scheme;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_add_remove_and_verify() {
    let env = Env::new();
    let rk = root_key(Scheme::Ed25519);
    let online = online_key(&env.keys(), Scheme::EcdsaP256);
    let root_md = signed(root(1, &[&rk], 1, &online), &[&rk]);

    // Before bootstrap: 404 for artifacts, and the bootstrap state says available.
    let (st, v) = env
        .call("POST", "/api/v1/artifacts/", Some(json!({"artifacts": []})))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        v["detail"]["error"],
        "It requires bootstrap finished. State: None"
    );
    let (_, v) = env.call("GET", "/api/v1/bootstrap/", None).await;
    assert_eq!(v["data"]["bootstrap"], false);

    let id = env
        .submit(
            "/api/v1/bootstrap/",
            Some(ceremony_payload(&root_md, 16)),
            "Bootstrap accepted.",
        )
        .await;
    let r = env.success(&id).await;
    assert_eq!(r["task"], "bootstrap");
    assert_eq!(
        r["details"]["bootstrap"],
        format!("Bootstrap finished {id}")
    );
    let (_, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(v["data"]["bootstrap"], true);
    assert_eq!(v["message"], "System LOCKED for bootstrap.");

    // RSTUF's layout: bins named by python-tuf's SuccinctRoles with prefix "bins".
    let meta = env.metadata();
    assert!(meta.join("1.root.json").exists());
    assert!(meta.join("1.targets.json").exists());
    assert!(meta.join("1.bins-0.json").exists());
    assert!(meta.join("1.bins-f.json").exists());
    assert!(meta.join("timestamp.json").exists());

    // A second bootstrap is refused.
    let (st, _) = env
        .call(
            "POST",
            "/api/v1/bootstrap",
            Some(ceremony_payload(&root_md, 16)),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // Add: one with custom and the task id put into it, the others as Warehouse posts.
    let mut a0 = artifact("simple/demo/index.html", 1);
    a0["info"]["custom"] = json!({"project": "demo"});
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({
                "artifacts": [a0, artifact("packages/a-1.0.tar.gz", 2), artifact("x/y/z.whl", 3)],
                "add_task_id_to_custom": true,
            })),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    let r = env.success(&id).await;
    assert_eq!(r["message"], "Artifact(s) Added");
    assert_eq!(r["details"]["added_artifacts"].as_array().unwrap().len(), 3);
    assert!(r["details"]["target_roles"][0]
        .as_str()
        .unwrap()
        .starts_with("bins-"));

    let (_c, mut client) = env.client();
    let t = client
        .get_targetinfo("simple/demo/index.html")
        .unwrap()
        .expect("listed");
    assert_eq!(t.length, 101);
    assert_eq!(t.hashes["blake2b-256"], format!("{:064x}", 1));
    let custom = t.custom().unwrap();
    assert_eq!(custom.get("added_by_task_id").unwrap().as_str(), Some(&*id));
    assert_eq!(custom.get("project").unwrap().as_str(), Some("demo"));
    assert!(client.get_targetinfo("x/y/z.whl").unwrap().is_some());

    // Remove one that is there and one that never was.
    let id = env
        .submit(
            "/api/v1/artifacts/delete",
            Some(json!({"artifacts": ["x/y/z.whl", "not/there"]})),
            "Remove Artifact(s) successfully submitted.",
        )
        .await;
    let r = env.success(&id).await;
    assert_eq!(r["details"]["deleted_artifacts"], json!(["x/y/z.whl"]));
    assert_eq!(r["details"]["not_found_artifacts"], json!(["not/there"]));
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("x/y/z.whl").unwrap().is_none());
    assert!(client
        .get_targetinfo("packages/a-1.0.tar.gz")
        .unwrap()
        .is_some());

    // Back-signing: added without publishing, listed only after POST /artifacts/publish.
    let id = env
        .submit(
            "/api/v1/artifacts/",
            Some(json!({"artifacts": [artifact("later.txt", 9)], "publish_artifacts": false})),
            "New Artifact(s) successfully submitted. Publishing will be skipped.",
        )
        .await;
    env.success(&id).await;
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("later.txt").unwrap().is_none());
    let id = env
        .submit(
            "/api/v1/artifacts/publish/",
            None,
            "Publish artifacts successfully submitted.",
        )
        .await;
    env.success(&id).await;
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("later.txt").unwrap().is_some());

    // Config as set by the ceremony.
    let (st, v) = env.call("GET", "/api/v1/config/", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["number_of_delegated_bins"], 16);
    assert_eq!(v["data"]["timestamp_expiration"], 1);

    // Custom delegations: refused, saying so.
    let (st, v) = env
        .call("POST", "/api/v1/delegations/", Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED);
    assert!(v["detail"]["error"]
        .as_str()
        .unwrap()
        .contains("custom delegations"));

    // Warehouse's merged client still says `targets`.
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"targets": [artifact("warehouse", 7)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    env.success(&id).await;
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("warehouse").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_errors_name_the_field_and_queue_nothing() {
    let env = Env::new();
    let rk = root_key(Scheme::Ed25519);
    let online = online_key(&env.keys(), Scheme::Ed25519);

    // FastAPI's 422: missing fields, located.
    let (st, v) = env
        .call("POST", "/api/v1/bootstrap", Some(json!({"settings": {}})))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["detail"][0]["type"], "missing");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "metadata"]));

    // Not a power of two.
    let root_md = signed(root(1, &[&rk], 1, &online), &[&rk]);
    let mut p = ceremony_payload(&root_md, 16);
    p["settings"]["roles"]["bins"]["number_of_delegated_bins"] = json!(12);
    let (st, v) = env.call("POST", "/api/v1/bootstrap", Some(p)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["detail"][0]["loc"],
        json!([
            "body",
            "settings",
            "roles",
            "bins",
            "number_of_delegated_bins"
        ])
    );

    // Bad JSON.
    let (st, v) = env.call("GET", "/api/v1/task", None).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["detail"][0]["loc"], json!(["query", "task_id"]));

    // A root signed by a key that is not a root key: the bootstrap task errors, naming it,
    // and the service stays available for bootstrap.
    let stranger = root_key(Scheme::Ed25519);
    let bad = signed(root(1, &[&rk], 1, &online), &[&stranger]);
    let id = env
        .submit(
            "/api/v1/bootstrap",
            Some(ceremony_payload(&bad, 16)),
            "Bootstrap accepted.",
        )
        .await;
    let d = env.wait_errored(&id, "not a root key").await;
    assert_eq!(d["result"]["status"], false);
    let (_, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(v["data"]["bootstrap"], false);
    assert!(v["data"]["state"].is_null());

    // A root without consistent snapshots could not be served from N.role.json files.
    let mut plain = root(1, &[&rk], 1, &online);
    if let tufpi_core::metadata::Body::Root(r) = &mut plain.signed.body {
        r.consistent_snapshot = Some(false);
    }
    let plain = signed(plain, &[&rk]);
    let id = env
        .submit(
            "/api/v1/bootstrap",
            Some(ceremony_payload(&plain, 16)),
            "Bootstrap accepted.",
        )
        .await;
    env.wait_errored(&id, "consistent_snapshot").await;

    // An online key file that is missing: refused before anything is recorded.
    std::fs::remove_file(env.keys().join(&online.keyid)).unwrap();
    let id = env
        .submit(
            "/api/v1/bootstrap",
            Some(ceremony_payload(&root_md, 16)),
            "Bootstrap accepted.",
        )
        .await;
    env.wait_errored(&id, "online key").await;

    // Artifact path and hashes checked in the request.
    std::fs::write(
        env.keys().join(&online.keyid),
        online.private.to_pkcs8_pem().unwrap(),
    )
    .unwrap();
    let id = env
        .submit(
            "/api/v1/bootstrap",
            Some(ceremony_payload(&root_md, 4)),
            "Bootstrap accepted.",
        )
        .await;
    env.success(&id).await;
    let (st, v) = env
        .call(
            "POST",
            "/api/v1/artifacts",
            Some(json!({"artifacts": [{"path": "../etc/passwd", "info": {"length": 1, "hashes": {}}}]})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<String> = v["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"].to_string())
        .collect();
    assert!(locs.contains(&r#"["body","artifacts",0,"path"]"#.to_string()));
    assert!(locs.contains(&r#"["body","artifacts",0,"info","hashes"]"#.to_string()));
    let (st, _) = env.call("POST", "/api/v1/artifacts", Some(json!({"artifacts": [
        {"path": "f", "info": {"length": 1, "hashes": {"sha256": "00"}, "custom": {"x": 1.5}}}
    ]}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_results_survive_a_restart() {
    let mut env = Env::new();
    let rk = root_key(Scheme::Ed25519);
    let online = online_key(&env.keys(), Scheme::RsaPssSha256);
    let root_md = signed(root(1, &[&rk], 1, &online), &[&rk]);
    let id = env
        .submit(
            "/api/v1/bootstrap",
            Some(ceremony_payload(&root_md, 2)),
            "Bootstrap accepted.",
        )
        .await;
    env.success(&id).await;
    let add = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("a", 1)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    env.success(&add).await;
    let held = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("held", 3)], "publish_artifacts": false})),
            "New Artifact(s) successfully submitted. Publishing will be skipped.",
        )
        .await;
    env.success(&held).await;
    env.restart();
    // Queued without publishing: still not published after the restart.
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("held").unwrap().is_none());
    let d = env.wait(&add).await;
    assert_eq!(d["state"], "SUCCESS");
    let (_, v) = env.call("GET", "/api/v1/bootstrap", None).await;
    assert_eq!(v["data"]["bootstrap"], true);
    // Still publishing after the restart, with the RSA-PSS online key.
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("b", 2)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    env.success(&id).await;
    let (_c, mut client) = env.client();
    assert!(client.get_targetinfo("a").unwrap().is_some());
    assert!(client.get_targetinfo("b").unwrap().is_some());
    // The next publish took the held one along, as RSTUF's publish takes every pending file.
    assert!(client.get_targetinfo("held").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_directory_is_refused() {
    let env = Env::new();
    let err = match tufpi_rstuf::start(&env.dir.path().join("data"), None) {
        Ok(_) => panic!("a second server started on the same directory"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use by another tufpi repo serve"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bootstraps_posted_at_once_one_is_accepted() {
    let env = Env::new();
    let rk = root_key(Scheme::Ed25519);
    let online = online_key(&env.keys(), Scheme::Ed25519);
    let payload = ceremony_payload(&signed(root(1, &[&rk], 1, &online), &[&rk]), 4);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, p) = (env.app.clone(), payload.clone());
        calls.spawn(async move { call_on(app, "POST", "/api/v1/bootstrap", Some(p)).await });
    }
    let answers = calls.join_all().await;
    let accepted: Vec<_> = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::ACCEPTED)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(|(st, _)| *st == StatusCode::ACCEPTED || *st == StatusCode::CONFLICT));
    let id = accepted[0].1["data"]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.success(&id).await;
}
