//! The PEP 458 role graph: root; targets → bins (all paths); bins → bin-n (succinct or
//! hash-prefix); bin-n list targets. Builders for each role's `signed`, no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tufpi_core::json::Map;
use tufpi_core::metadata::{
    Body, DelegatedRole, Delegations, Key, MetaFile, Role, Root, Signed, Snapshot, SuccinctRoles,
    TargetFile, Targets, Timestamp, SPEC_VERSION,
};
use tufpi_core::pathmatch;

use crate::change::TargetRecord;
use crate::config::{BinsMode, RepoConfig};
use crate::store::RoleState;

/// The name of the published timestamp, the one metadata file ever overwritten (every
/// other is `<version>.<role>.json`).
pub const TIMESTAMP_FILE: &str = "timestamp.json";

/// Name of the role the bins are delegated from (`bins`, or `targets` when targets is online).
pub fn bins_delegator(cfg: &RepoConfig) -> &'static str {
    if cfg.targets_online {
        "targets"
    } else {
        "bins"
    }
}

/// The succinct description of the bins (also used to name them in hash-prefix mode).
pub fn succinct(cfg: &RepoConfig, online: &[String]) -> SuccinctRoles {
    SuccinctRoles {
        keyids: online.to_vec(),
        threshold: 1,
        bit_length: cfg.bit_length,
        name_prefix: cfg.name_prefix.clone(),
        unrecognized: Map::new(),
    }
}

/// Bin index of a target path: the first `bit_length` bits of SHA-256(path) — the same bin in
/// both modes, since hash-prefix bins cover 16^k / 2^bit_length consecutive prefixes each.
pub fn bin_of(cfg: &RepoConfig, path: &str) -> u64 {
    let d = pathmatch::path_hash(path);
    u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) >> (32 - cfg.bit_length))
}

/// The bin index named by `name`, if it is one of this repository's bins.
pub fn succinct_index(cfg: &RepoConfig, name: &str) -> Option<u64> {
    succinct(cfg, &[]).index_of(name)
}

/// Role name of bin `index`.
pub fn bin_name(cfg: &RepoConfig, index: u64) -> String {
    succinct(cfg, &[]).role_name(index)
}

fn signed(version: u64, expires: DateTime<Utc>, body: Body) -> Signed {
    Signed {
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        body,
        unrecognized: Map::new(),
    }
}

/// Keys of the top-level roles, by role.
pub struct TopKeys {
    /// Root keys and threshold.
    pub root: (Vec<(String, Key)>, u64),
    /// Targets keys and threshold.
    pub targets: (Vec<(String, Key)>, u64),
    /// The online key (timestamp, snapshot, bin-n).
    pub online: (String, Key),
}

/// Root metadata for this layout.
pub fn build_root(top: &TopKeys, version: u64, expires: DateTime<Utc>) -> Signed {
    let mut keys = BTreeMap::new();
    let mut role = |list: &[(String, Key)], threshold: u64| {
        for (id, k) in list {
            keys.insert(id.clone(), k.clone());
        }
        Role {
            keyids: list.iter().map(|(id, _)| id.clone()).collect(),
            threshold,
            unrecognized: Map::new(),
        }
    };
    let root_role = role(&top.root.0, top.root.1);
    let targets_role = role(&top.targets.0, top.targets.1);
    let online = role(std::slice::from_ref(&top.online), 1);
    let roles = BTreeMap::from([
        ("root".to_string(), root_role),
        ("targets".to_string(), targets_role),
        ("snapshot".to_string(), online.clone()),
        ("timestamp".to_string(), online),
    ]);
    signed(
        version,
        expires,
        Body::Root(Root {
            consistent_snapshot: Some(true),
            keys,
            roles,
        }),
    )
}

/// Delegations of all bins, signed by the online key.
fn bin_delegations(cfg: &RepoConfig, online: &(String, Key)) -> Delegations {
    let ids = vec![online.0.clone()];
    let keys = BTreeMap::from([online.clone()]);
    match cfg.bins_mode {
        BinsMode::Succinct => Delegations {
            keys,
            roles: None,
            succinct_roles: Some(succinct(cfg, &ids)),
            unrecognized: Map::new(),
        },
        BinsMode::HashPrefix => {
            // k hex digits name 16^k prefixes; each bin takes 16^k / 2^bit_length of them.
            let k = format!("{:x}", cfg.bins() - 1).len() as u32;
            let per_bin = 16u64.pow(k) / cfg.bins();
            let roles = (0..cfg.bins())
                .map(|i| DelegatedRole {
                    name: bin_name(cfg, i),
                    keyids: ids.clone(),
                    threshold: 1,
                    terminating: true,
                    paths: None,
                    path_hash_prefixes: Some(
                        (i * per_bin..(i + 1) * per_bin)
                            .map(|p| format!("{p:0w$x}", w = k as usize))
                            .collect(),
                    ),
                    unrecognized: Map::new(),
                })
                .collect();
            Delegations {
                keys,
                roles: Some(roles),
                succinct_roles: None,
                unrecognized: Map::new(),
            }
        }
    }
}

/// Top-level targets: delegates every path to `bins` (or, targets-online, to the bins directly).
/// `path_hash_prefixes` "0"…"f" cover every path whatever its number of `/` parts, which a
/// `paths` glob (where `*` stops at `/`) could not.
pub fn build_targets(
    cfg: &RepoConfig,
    bins_keys: &[(String, Key)],
    bins_threshold: u64,
    online: &(String, Key),
    version: u64,
    expires: DateTime<Utc>,
) -> Signed {
    let delegations = if cfg.targets_online {
        bin_delegations(cfg, online)
    } else {
        Delegations {
            keys: bins_keys.iter().cloned().collect(),
            roles: Some(vec![DelegatedRole {
                name: "bins".into(),
                keyids: bins_keys.iter().map(|(id, _)| id.clone()).collect(),
                threshold: bins_threshold,
                terminating: true,
                paths: None,
                path_hash_prefixes: Some((0..16).map(|d| format!("{d:x}")).collect()),
                unrecognized: Map::new(),
            }]),
            succinct_roles: None,
            unrecognized: Map::new(),
        }
    };
    delegating(delegations, version, expires)
}

/// A targets role listing no targets, only `delegations`.
fn delegating(delegations: Delegations, version: u64, expires: DateTime<Utc>) -> Signed {
    signed(
        version,
        expires,
        Body::Targets(Targets {
            targets: BTreeMap::new(),
            delegations: Some(delegations),
        }),
    )
}

/// The `bins` role: delegates to the bin-n roles.
pub fn build_bins(
    cfg: &RepoConfig,
    online: &(String, Key),
    version: u64,
    expires: DateTime<Utc>,
) -> Signed {
    delegating(bin_delegations(cfg, online), version, expires)
}

/// The `targets` entry for `record`: (path, entry), `custom` kept as given.
pub fn target_entry(record: TargetRecord) -> (String, TargetFile) {
    let mut t = TargetFile::new(record.length, record.hashes);
    if let Some(c) = record.custom {
        t.unrecognized.insert("custom".into(), c);
    }
    (record.path, t)
}

/// A bin-n role listing `records`.
pub fn build_bin(records: Vec<TargetRecord>, version: u64, expires: DateTime<Utc>) -> Signed {
    bin_of_targets(
        records.into_iter().map(target_entry).collect(),
        version,
        expires,
    )
}

/// A bin-n role listing `targets`.
pub fn bin_of_targets(
    targets: BTreeMap<String, TargetFile>,
    version: u64,
    expires: DateTime<Utc>,
) -> Signed {
    signed(
        version,
        expires,
        Body::Targets(Targets {
            targets,
            delegations: None,
        }),
    )
}

/// Snapshot listing targets, bins (if any) and every bin-n at their recorded versions.
pub fn build_snapshot(
    roles: &BTreeMap<String, RoleState>,
    version: u64,
    expires: DateTime<Utc>,
) -> Signed {
    let meta = roles
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "root" | "snapshot" | "timestamp"))
        .map(|(name, st)| (format!("{name}.json"), MetaFile::new(st.version)))
        .collect();
    signed(version, expires, Body::Snapshot(Snapshot { meta }))
}

/// Timestamp pointing at snapshot `meta`.
pub fn build_timestamp(meta: MetaFile, version: u64, expires: DateTime<Utc>) -> Signed {
    signed(version, expires, Body::Timestamp(Timestamp::new(meta)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_agree_with_python_tuf_succinct_roles() {
        let cfg = RepoConfig::default();
        let s = succinct(&cfg, &[]);
        for p in [
            "packages/a/b.whl",
            "simple/requests/vnd.pypi.simple.v1.html",
            "",
            "é",
        ] {
            assert_eq!(bin_name(&cfg, bin_of(&cfg, p)), s.role_for_target(p));
        }
    }

    #[test]
    fn hash_prefix_bins_cover_the_same_paths() {
        let cfg = RepoConfig {
            bins_mode: BinsMode::HashPrefix,
            bit_length: 6,
            ..RepoConfig::default()
        };
        let online = (
            "k".to_string(),
            Key {
                keytype: "ed25519".into(),
                scheme: "ed25519".into(),
                keyval: Map::new(),
                unrecognized: Map::new(),
            },
        );
        let d = bin_delegations(&cfg, &online);
        for p in ["packages/a/b.whl", "x", "simple/y/vnd.pypi.simple.v1.json"] {
            let roles = d.roles_for_target(p);
            assert_eq!(roles.len(), 1, "{p}");
            assert_eq!(roles[0].0, bin_name(&cfg, bin_of(&cfg, p)));
        }
    }
}
