//! Each role expires after its own RSTUF setting (days), never later: at bootstrap, after an
//! artifact is published, after `PUT /config` (online roles re-signed at once), and after a
//! restart.

mod common;

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{json, Value};
use tufpi_core::crypto::Scheme;
use tufpi_core::metadata::parse_expires;

/// The `signed` part of the highest `N.role.json` (or of `timestamp.json`).
fn latest(meta: &Path, role: &str) -> Value {
    let file = if role == "timestamp" {
        meta.join("timestamp.json")
    } else {
        let suffix = format!(".{role}.json");
        let top = std::fs::read_dir(meta)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(&suffix)?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or_else(|| panic!("no {role} metadata in {}", meta.display()));
        meta.join(format!("{top}{suffix}"))
    };
    let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    v["signed"].clone()
}

fn expires(signed: &Value) -> DateTime<Utc> {
    parse_expires(signed["expires"].as_str().unwrap()).unwrap()
}

/// `role`'s latest version expires `days` after it was signed (between `before` and now),
/// within a minute and never later.
fn assert_expiry(meta: &Path, role: &str, days: i64, before: DateTime<Utc>) {
    let got = expires(&latest(meta, role));
    let latest_allowed = Utc::now() + Duration::days(days);
    let earliest = before + Duration::days(days) - Duration::minutes(1);
    assert!(
        got <= latest_allowed && got >= earliest,
        "{role} expires {got}: want {days} days, in [{earliest}, {latest_allowed}]"
    );
}

/// The payload `rstuf admin ceremony` writes, with distinct expirations.
fn ceremony(root: &tufpi_core::metadata::Metadata, days: [i64; 5], bins: u64) -> Value {
    let [root_d, targets, snapshot, timestamp, bins_d] = days;
    json!({
        "settings": {"roles": {
            "root": {"expiration": root_d},
            "timestamp": {"expiration": timestamp},
            "snapshot": {"expiration": snapshot},
            "targets": {"expiration": targets},
            "bins": {"expiration": bins_d, "number_of_delegated_bins": bins},
        }},
        "metadata": {"root": to_json(root)},
        "timeout": 300,
    })
}

fn bin_names(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("bins-{i:x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_expires_after_its_own_setting() {
    let mut env = Env::new();
    let meta = env.metadata();
    let rk = root_key(Scheme::Ed25519);
    let online = online_key(&env.keys(), Scheme::Ed25519);
    let root_md = signed(root(1, &[&rk], 1, &online), &[&rk]);

    // Bootstrap: timestamp 1, snapshot 3, bins 5, targets 30 days.
    let t0 = Utc::now();
    let id = env
        .submit(
            "/api/v1/bootstrap/",
            Some(ceremony(&root_md, [365, 30, 3, 1, 5], 16)),
            "Bootstrap accepted.",
        )
        .await;
    env.success(&id).await;
    assert_expiry(&meta, "timestamp", 1, t0);
    assert_expiry(&meta, "snapshot", 3, t0);
    assert_expiry(&meta, "targets", 30, t0);
    // Bins are staggered so they do not all fall due together, but within their 5 days:
    // over its second half, the first bin getting all of it.
    assert_expiry(&meta, "bins-0", 5, t0);
    let mut first: Vec<DateTime<Utc>> = Vec::new();
    for b in bin_names(16) {
        let e = expires(&latest(&meta, &b));
        assert!(e <= Utc::now() + Duration::days(5), "{b} expires {e}");
        assert!(
            e >= t0 + Duration::hours(60) - Duration::minutes(1),
            "{b} expires {e}"
        );
        first.push(e);
    }
    first.dedup();
    assert!(first.len() > 1, "bins not staggered: {first:?}");

    // An artifact publish: its bin, snapshot and timestamp at their own settings.
    let t1 = Utc::now();
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("simple/demo/index.html", 1)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    let r = env.success(&id).await;
    let bin = r["details"]["target_roles"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(latest(&meta, &bin)["version"], 2, "{r}");
    assert_expiry(&meta, &bin, 5, t1);
    assert_expiry(&meta, "snapshot", 3, t1);
    assert_expiry(&meta, "timestamp", 1, t1);
    assert_expiry(&meta, "targets", 30, t0);

    // PUT /config: the new settings, every online role re-signed with them at once (none
    // outlives a shortened setting).
    let t2 = Utc::now();
    let (st, v) = env
        .call(
            "PUT",
            "/api/v1/config",
            Some(json!({"settings": {"expiration": {
                "timestamp": 2, "snapshot": 4, "bins": 2, "targets": 20,
            }}})),
        )
        .await;
    assert_eq!(st, axum::http::StatusCode::ACCEPTED, "{v}");
    let r = env.success(v["data"]["task_id"].as_str().unwrap()).await;
    assert_eq!(
        r["details"]["updated_roles"],
        json!(["bins", "snapshot", "targets", "timestamp"])
    );
    assert_expiry(&meta, "timestamp", 2, t2);
    assert_expiry(&meta, "snapshot", 4, t2);
    assert_expiry(&meta, "targets", 20, t2);
    for b in bin_names(16) {
        assert_expiry(&meta, &b, 2, t2);
    }
    let (_, v) = env.call("GET", "/api/v1/config", None).await;
    assert_eq!(v["data"]["snapshot_expiration"], 4, "{v}");
    assert_eq!(v["data"]["bins_expiration"], 2, "{v}");

    // After a restart the settings still apply to what is published.
    env.restart();
    let t3 = Utc::now();
    let id = env
        .submit(
            "/api/v1/artifacts",
            Some(json!({"artifacts": [artifact("packages/a-1.0.tar.gz", 2)]})),
            "New Artifact(s) successfully submitted.",
        )
        .await;
    let r = env.success(&id).await;
    let bin = r["details"]["target_roles"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_expiry(&meta, &bin, 2, t3);
    assert_expiry(&meta, "snapshot", 4, t3);
    assert_expiry(&meta, "timestamp", 2, t3);

    // Clients verify it all from the bootstrap root.
    let (_c, mut client) = env.client();
    assert!(client
        .get_targetinfo("simple/demo/index.html")
        .unwrap()
        .is_some());
    assert!(client
        .get_targetinfo("packages/a-1.0.tar.gz")
        .unwrap()
        .is_some());
}
