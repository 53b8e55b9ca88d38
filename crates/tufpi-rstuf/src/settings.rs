//! Repository settings as RSTUF keeps them (`<ROLE>_EXPIRATION` in days,
//! `NUMBER_OF_DELEGATED_BINS`, …), stored in the task database, and the repository layout
//! they make.

use std::collections::BTreeMap;

use chrono::Duration;
use serde_json::{Map, Value};
use tufpi_repo::{BinsMode, RepoConfig, TargetHashes};

use crate::error::RstufError;
use crate::payload::Bootstrap;
use crate::service::BOOTSTRAP;
use crate::tasks::TaskStore;

/// The roles with an expiration setting.
pub const ROLES: [&str; 5] = ["root", "targets", "snapshot", "timestamp", "bins"];

fn exp_key(role: &str) -> String {
    format!("{}_EXPIRATION", role.to_ascii_uppercase())
}

/// Store the ceremony's settings.
pub fn save_bootstrap(tasks: &TaskStore, b: &Bootstrap) -> Result<(), RstufError> {
    let e = &b.expirations;
    for (role, days) in [
        ("root", e.root),
        ("targets", e.targets),
        ("snapshot", e.snapshot),
        ("timestamp", e.timestamp),
        ("bins", e.bins),
    ] {
        tasks.set_setting(&exp_key(role), Some(&days.to_string()))?;
    }
    tasks.set_setting("NUMBER_OF_DELEGATED_BINS", Some(&b.bins.to_string()))?;
    tasks.set_setting("TARGETS_ONLINE_KEY", Some("true"))?;
    if let Some(r) = b.root.as_root().and_then(|r| r.role("root")) {
        tasks.set_setting("ROOT_THRESHOLD", Some(&r.threshold.to_string()))?;
        tasks.set_setting("ROOT_NUM_KEYS", Some(&r.keyids.len().to_string()))?;
    }
    Ok(())
}

fn days(tasks: &TaskStore, role: &str) -> Result<i64, RstufError> {
    tasks
        .setting(&exp_key(role))?
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RstufError::Refused(format!("setting {} missing", exp_key(role))))
}

/// The repository layout the settings make: targets online delegating to succinct bins
/// named `bins-…` (as RSTUF's worker names them), hashes listed as the caller gives them,
/// and each role expiring after its own `<ROLE>_EXPIRATION` days.
pub fn repo_config(tasks: &TaskStore) -> Result<RepoConfig, RstufError> {
    let bins: u64 = tasks
        .setting("NUMBER_OF_DELEGATED_BINS")?
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RstufError::Refused("setting NUMBER_OF_DELEGATED_BINS missing".into()))?;
    let expiry = |role: &str| days(tasks, role).map(Duration::days);
    Ok(RepoConfig {
        bit_length: bins.trailing_zeros(),
        bins_mode: BinsMode::Succinct,
        targets_online: true,
        name_prefix: "bins".into(),
        root_expiry: expiry("root")?,
        offline_expiry: expiry("targets")?,
        online_expiry: expiry("timestamp")?,
        snapshot_expiry: Some(expiry("snapshot")?),
        bin_expiry: Some(expiry("bins")?),
        target_hashes: TargetHashes::as_given(),
    })
}

/// Set the expirations named (known roles only); returns (updated, invalid) role names.
pub fn update_expirations(
    tasks: &TaskStore,
    exp: &BTreeMap<String, i64>,
) -> Result<(Vec<String>, Vec<String>), RstufError> {
    let mut updated = Vec::new();
    let mut invalid = Vec::new();
    for (role, d) in exp {
        if ROLES.contains(&role.as_str()) && tasks.setting(&exp_key(role))?.is_some() {
            tasks.set_setting(&exp_key(role), Some(&d.to_string()))?;
            updated.push(role.clone());
        } else {
            invalid.push(role.clone());
        }
    }
    Ok((updated, invalid))
}

/// The settings as `GET /config` shows them: RSTUF's keys lower-cased (`bins_expiration`,
/// `number_of_delegated_bins`, …), as its API lists them.
pub fn config_data(tasks: &TaskStore) -> Result<Value, RstufError> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_ascii_lowercase(), v);
    };
    for role in ROLES {
        if let Some(v) = tasks.setting(&exp_key(role))? {
            put(&exp_key(role), num(&v));
        }
    }
    for k in [
        "NUMBER_OF_DELEGATED_BINS",
        "ROOT_THRESHOLD",
        "ROOT_NUM_KEYS",
        BOOTSTRAP,
    ] {
        if let Some(v) = tasks.setting(k)? {
            put(k, num(&v));
        }
    }
    if let Some(v) = tasks.setting("TARGETS_ONLINE_KEY")? {
        put("TARGETS_ONLINE_KEY", Value::Bool(v == "true"));
    }
    Ok(Value::Object(m))
}

fn num(v: &str) -> Value {
    v.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(v.to_string()))
}
