//! The request payloads of RSTUF's API, read and checked (see `validate.rs`): what the
//! `rstuf` CLI and Warehouse send.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tufpi_core::metadata::Metadata;

use crate::validate::{Check, Loc};

/// Per-role expirations, in days, as the ceremony sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expirations {
    /// root.
    pub root: i64,
    /// targets.
    pub targets: i64,
    /// snapshot.
    pub snapshot: i64,
    /// timestamp.
    pub timestamp: i64,
    /// The hash bins.
    pub bins: i64,
}

/// `POST /bootstrap`: the ceremony payload.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// Role expirations.
    pub expirations: Expirations,
    /// `settings.roles.bins.number_of_delegated_bins`.
    pub bins: u64,
    /// `metadata.root`.
    pub root: Metadata,
}

/// One artifact of `POST /artifacts`.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Target path.
    pub path: String,
    /// `info.length`.
    pub length: u64,
    /// `info.hashes`.
    pub hashes: BTreeMap<String, String>,
    /// `info.custom`.
    pub custom: Option<Value>,
}

/// `POST /artifacts`.
#[derive(Debug, Clone)]
pub struct AddArtifacts {
    /// The artifacts.
    pub artifacts: Vec<Artifact>,
    /// Publish at once (default true).
    pub publish: bool,
    /// Put the task id into each artifact's custom (`added_by_task_id`).
    pub add_task_id_to_custom: bool,
}

/// `POST /artifacts/delete`.
#[derive(Debug, Clone)]
pub struct DeleteArtifacts {
    /// Target paths.
    pub artifacts: Vec<String>,
    /// Publish at once (default true).
    pub publish: bool,
}

/// `POST /metadata/sign`.
#[derive(Debug, Clone)]
pub struct Sign {
    /// Role being signed.
    pub role: String,
    /// Signing keyid.
    pub keyid: String,
    /// Hex signature.
    pub sig: String,
}

fn metadata_root(c: &mut Check, body: &Map<String, Value>, loc: &Loc) -> Option<Metadata> {
    let md = c.required(body, loc, "metadata")?;
    let mloc = loc.key("metadata");
    let md = c.object(md, &mloc)?;
    let root = c.required(md, &mloc, "root")?;
    let rloc = mloc.key("root");
    c.object(root, &rloc)?;
    let bytes = serde_json::to_vec(root).unwrap_or_default();
    match Metadata::from_bytes(&bytes) {
        Ok(m) if m.as_root().is_some() => Some(m),
        Ok(m) => {
            c.error(
                "value_error",
                &rloc,
                format!(
                    "Value error, metadata.root is {} metadata, not root",
                    m.signed.role_type()
                ),
                root,
            );
            None
        }
        Err(e) => {
            c.error(
                "value_error",
                &rloc,
                format!("Value error, not valid TUF metadata: {e}"),
                root,
            );
            None
        }
    }
}

/// Read a `POST /bootstrap` payload.
pub fn bootstrap(c: &mut Check, v: &Value) -> Option<Bootstrap> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    let root = metadata_root(c, body, &loc);
    let settings = c.required(body, &loc, "settings");
    let sloc = loc.key("settings");
    let settings = settings.and_then(|s| c.object(s, &sloc));
    let roles = settings.and_then(|s| c.required(s, &sloc, "roles"));
    let rloc = sloc.key("roles");
    let roles = roles.and_then(|r| c.object(r, &rloc));
    let days = |c: &mut Check, role: &str| -> Option<i64> {
        let roles = roles?;
        let r = c.required(roles, &rloc, role)?;
        let l = rloc.key(role);
        let r = c.object(r, &l)?;
        let e = c.required(r, &l, "expiration")?;
        c.days(e, &l.key("expiration"))
    };
    let exp = (
        days(c, "root"),
        days(c, "targets"),
        days(c, "snapshot"),
        days(c, "timestamp"),
    );
    let mut bins = None;
    let mut bins_days = None;
    if let Some(roles) = roles {
        let delegations = roles.get("delegations").filter(|d| !d.is_null());
        if let (Some(d), None) = (delegations, roles.get("bins")) {
            c.error(
                "value_error",
                &rloc.key("delegations"),
                "Value error, custom delegations are not supported by tufpi's RSTUF API: \
                 use hash bins (settings.roles.bins)",
                d,
            );
        } else if let Some(b) = c.required(roles, &rloc, "bins") {
            let bl = rloc.key("bins");
            if let Some(b) = c.object(b, &bl) {
                bins_days = c
                    .required(b, &bl, "expiration")
                    .and_then(|e| c.days(e, &bl.key("expiration")));
                let nl = bl.key("number_of_delegated_bins");
                if let Some(nv) = c.required(b, &bl, "number_of_delegated_bins") {
                    bins = number_of_bins(c, nv, &nl);
                }
            }
        }
    }
    if !c.ok() {
        return None;
    }
    Some(Bootstrap {
        expirations: Expirations {
            root: exp.0?,
            targets: exp.1?,
            snapshot: exp.2?,
            timestamp: exp.3?,
            bins: bins_days?,
        },
        bins: bins?,
        root: root?,
    })
}

/// Most hash bins a bootstrap may ask for (RSTUF's limit).
pub const MAX_BINS: u64 = 16384;

/// `number_of_delegated_bins`: a power of two from 2 to [`MAX_BINS`].
fn number_of_bins(c: &mut Check, v: &Value, loc: &Loc) -> Option<u64> {
    let n = c.int_gt(v, loc, 1)?;
    match u64::try_from(n) {
        Ok(n) if n > MAX_BINS => {
            c.error(
                "less_than",
                loc,
                format!("Input should be less than {}", MAX_BINS + 1),
                v,
            );
            None
        }
        Ok(n) if n.is_power_of_two() => Some(n),
        _ => {
            c.error(
                "value_error",
                loc,
                format!("Value error, the number of bins must be a power of 2, not {n}"),
                v,
            );
            None
        }
    }
}

/// Read a `POST /metadata` (root update) payload.
pub fn metadata_update(c: &mut Check, v: &Value) -> Option<Metadata> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    metadata_root(c, body, &loc)
}

/// Check a target path as the repository will (relative, no empty, `.` or `..` segment).
fn check_path(c: &mut Check, v: &Value, loc: &Loc) -> Option<String> {
    let p = c.string(v, loc)?;
    let bad = p.is_empty()
        || p.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        c.error(
            "value_error",
            loc,
            "Value error, artifact path invalid: it must be relative, without empty, \
             '.' or '..' segments",
            v,
        );
        return None;
    }
    Some(p.to_string())
}

/// Read a `POST /artifacts` payload.
pub fn add_artifacts(c: &mut Check, v: &Value) -> Option<AddArtifacts> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    let publish = c.opt_bool(body, &loc, "publish_artifacts", true);
    let add_task_id_to_custom = c.opt_bool(body, &loc, "add_task_id_to_custom", false);
    let al = loc.key("artifacts");
    let list = c.required_list(body, &loc, "artifacts");
    let mut artifacts = Vec::new();
    for (i, a) in list.into_iter().flatten().enumerate() {
        let l = al.index(i);
        let Some(a) = c.object(a, &l) else { continue };
        let path = c
            .required(a, &l, "path")
            .and_then(|p| check_path(c, p, &l.key("path")));
        let il = l.key("info");
        let Some(info) = c.required(a, &l, "info").and_then(|i| c.object(i, &il)) else {
            continue;
        };
        let ll = il.key("length");
        let length = c
            .required(info, &il, "length")
            .and_then(|n| match n.as_u64() {
                Some(n) => Some(n),
                None => {
                    c.error(
                        "int_type",
                        &ll,
                        "Input should be a valid non-negative integer",
                        n,
                    );
                    None
                }
            });
        let hl = il.key("hashes");
        let mut hashes = BTreeMap::new();
        if let Some(h) = c
            .required(info, &il, "hashes")
            .and_then(|h| c.object(h, &hl))
        {
            for (alg, d) in h {
                if let Some(d) = c.string(d, &hl.key(alg)) {
                    hashes.insert(alg.clone(), d.to_string());
                }
            }
            if h.is_empty() {
                c.error(
                    "value_error",
                    &hl,
                    "Value error, at least one hash is required",
                    &Value::Object(h.clone()),
                );
            }
        }
        let custom = match info.get("custom") {
            None | Some(Value::Null) => None,
            Some(v) => c
                .object(v, &il.key("custom"))
                .map(|m| Value::Object(m.clone())),
        };
        if let (Some(path), Some(length)) = (path, length) {
            artifacts.push(Artifact {
                path,
                length,
                hashes,
                custom,
            });
        }
    }
    if !c.ok() {
        return None;
    }
    Some(AddArtifacts {
        artifacts,
        publish,
        add_task_id_to_custom,
    })
}

/// Pre-1.0 clients (Warehouse's merged integration among them) send `targets` where RSTUF 1.0
/// says `artifacts`: taken as the same field.
pub fn targets_alias(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        if !m.contains_key("artifacts") {
            if let Some(t) = m.remove("targets") {
                m.insert("artifacts".into(), t);
            }
        }
    }
}

/// Refuse, located, every `info.custom` of `a` that cannot be signed (a float in it).
pub fn check_customs(c: &mut Check, a: &AddArtifacts) {
    for (i, art) in a.artifacts.iter().enumerate() {
        if let Some(custom) = &art.custom {
            if let Err(e) = crate::convert::to_core(custom) {
                let loc = Loc::body()
                    .key("artifacts")
                    .index(i)
                    .key("info")
                    .key("custom");
                c.error("value_error", &loc, format!("Value error, {e}"), custom);
            }
        }
    }
}

/// Put `added_by_task_id: id` into the `info.custom` of every artifact of a payload that
/// [`add_artifacts`] accepted (anything else in it is left alone).
pub fn add_task_id(v: &mut Value, id: &str) {
    let Some(list) = v.get_mut("artifacts").and_then(Value::as_array_mut) else {
        return;
    };
    for info in list
        .iter_mut()
        .filter_map(|a| a.get_mut("info").and_then(Value::as_object_mut))
    {
        let custom = info
            .entry("custom")
            .or_insert_with(|| Value::Object(Map::new()));
        if !custom.is_object() {
            *custom = Value::Object(Map::new());
        }
        if let Some(m) = custom.as_object_mut() {
            m.insert("added_by_task_id".into(), Value::String(id.to_string()));
        }
    }
}

/// Read a `POST /artifacts/delete` payload.
pub fn delete_artifacts(c: &mut Check, v: &Value) -> Option<DeleteArtifacts> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    let publish = c.opt_bool(body, &loc, "publish_artifacts", true);
    let al = loc.key("artifacts");
    let list = c.required_list(body, &loc, "artifacts");
    let mut artifacts = Vec::new();
    for (i, p) in list.into_iter().flatten().enumerate() {
        if let Some(p) = check_path(c, p, &al.index(i)) {
            artifacts.push(p);
        }
    }
    if !c.ok() {
        return None;
    }
    Some(DeleteArtifacts { artifacts, publish })
}

/// Read a `POST /metadata/sign` payload.
pub fn sign(c: &mut Check, v: &Value) -> Option<Sign> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    let role = c
        .required(body, &loc, "role")
        .and_then(|r| c.string(r, &loc.key("role")))
        .map(str::to_string);
    let sl = loc.key("signature");
    let sig = c
        .required(body, &loc, "signature")
        .and_then(|s| c.object(s, &sl));
    let (mut keyid, mut hexsig) = (None, None);
    if let Some(s) = sig {
        keyid = c
            .required(s, &sl, "keyid")
            .and_then(|k| c.string(k, &sl.key("keyid")))
            .map(str::to_string);
        hexsig = c
            .required(s, &sl, "sig")
            .and_then(|k| c.string(k, &sl.key("sig")))
            .map(str::to_string);
    }
    Some(Sign {
        role: role?,
        keyid: keyid?,
        sig: hexsig?,
    })
}

/// Read a payload naming one role (`POST /metadata/sign/delete`).
pub fn role(c: &mut Check, v: &Value) -> Option<String> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    c.required(body, &loc, "role")
        .and_then(|r| c.string(r, &loc.key("role")))
        .map(str::to_string)
}

/// Read `POST /metadata/online`: the roles to re-sign now.
pub fn online_roles(c: &mut Check, v: &Value) -> Option<Vec<String>> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    let rl = loc.key("roles");
    let list = c.required_list(body, &loc, "roles")?;
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let l = rl.index(i);
        if let Some(s) = c.string(r, &l) {
            if matches!(s, "targets" | "snapshot" | "timestamp" | "bins") {
                out.push(s.to_string());
            } else {
                c.error(
                    "value_error",
                    &l,
                    "Value error, an online role is one of targets, snapshot, timestamp, bins",
                    r,
                );
            }
        }
    }
    c.ok().then_some(out)
}

/// Read `PUT /config`: `settings.expiration` {role: days}.
pub fn config(c: &mut Check, v: &Value) -> Option<BTreeMap<String, i64>> {
    let loc = Loc::body();
    let body = c.object(v, &loc)?;
    let sl = loc.key("settings");
    let s = c
        .required(body, &loc, "settings")
        .and_then(|s| c.object(s, &sl))?;
    let el = sl.key("expiration");
    let e = c
        .required(s, &sl, "expiration")
        .and_then(|e| c.object(e, &el))?;
    let mut out = BTreeMap::new();
    for (role, d) in e {
        if let Some(n) = c.days(d, &el.key(role)) {
            out.insert(role.clone(), n);
        }
    }
    c.ok().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_and_bad_fields_are_reported_like_fastapi() {
        let mut c = Check::new();
        let v = json!({"artifacts": [{"path": "../x", "info": {"length": "7", "hashes": {}}}]});
        assert!(add_artifacts(&mut c, &v).is_none());
        let d = c.into_detail();
        let locs: Vec<String> = d["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loc"].to_string())
            .collect();
        assert!(
            locs.contains(&r#"["body","artifacts",0,"path"]"#.to_string()),
            "{locs:?}"
        );
        assert!(locs.contains(&r#"["body","artifacts",0,"info","length"]"#.to_string()));
        assert!(locs.contains(&r#"["body","artifacts",0,"info","hashes"]"#.to_string()));

        let mut c = Check::new();
        assert!(add_artifacts(&mut c, &json!({})).is_none());
        let d = c.into_detail();
        assert_eq!(d["detail"][0]["type"], "missing");
        assert_eq!(d["detail"][0]["msg"], "Field required");
    }

    #[test]
    fn absurd_expirations_are_refused() {
        let mut c = Check::new();
        let v = json!({"settings": {"expiration": {"timestamp": 9_000_000_000_000i64, "bins": 0}}});
        assert!(config(&mut c, &v).is_none());
        let d = c.into_detail();
        let kinds: Vec<&str> = d["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"less_than_equal"), "{d}");
        assert!(kinds.contains(&"greater_than"), "{d}");
    }

    #[test]
    fn defaults_as_rstuf() {
        let mut c = Check::new();
        let v = json!({"artifacts": [{"path": "a/b", "info": {"length": 1, "hashes": {"blake2b-256": "00"}}}]});
        let a = add_artifacts(&mut c, &v).unwrap();
        assert!(a.publish);
        assert!(!a.add_task_id_to_custom);
        assert_eq!(a.artifacts[0].path, "a/b");
    }
}
