//! Targets metadata: target files and delegations (`roles` or TAP 15 `succinct_roles`).

use std::collections::BTreeMap;

use super::error::MetadataError;
use super::fields::{hashes_view, invalid, Ctx, Obj};
use super::key::Key;
use super::key::{keys_from, keys_view};
use super::root::{keyids_threshold, TOP_LEVEL_ROLES};
use super::view::View;
use crate::json::{Map, Value};
use crate::pathmatch;

/// A target file entry: length, hashes, and `custom` (kept with any other unknown fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFile {
    /// Length in bytes.
    pub length: u64,
    /// Algorithm → hex digest of the file bytes (non-empty).
    pub hashes: BTreeMap<String, String>,
    /// Unknown fields, including `custom`.
    pub unrecognized: Map,
}

impl TargetFile {
    /// A target entry with no custom data.
    pub fn new(length: u64, hashes: BTreeMap<String, String>) -> TargetFile {
        TargetFile {
            length,
            hashes,
            unrecognized: Map::new(),
        }
    }

    /// The opaque `custom` value, if any.
    pub fn custom(&self) -> Option<&Value> {
        self.unrecognized.get("custom")
    }

    fn from_value(v: Value, ctx: Ctx<'_>) -> Result<TargetFile, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let length = o.u64("length")?;
        let hashes = o.hashes("hashes")?;
        Ok(TargetFile {
            length,
            hashes,
            unrecognized: o.rest(),
        })
    }

    /// The JSON value of the entry.
    pub fn to_value(&self) -> Value {
        self.view().to_value()
    }

    pub(crate) fn view(&self) -> View<'_> {
        View::obj(
            vec![
                ("length", View::Int(self.length)),
                ("hashes", hashes_view(&self.hashes)),
            ],
            &self.unrecognized,
        )
    }
}

/// A delegated role in a `roles` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedRole {
    /// Role name.
    pub name: String,
    /// Keyids trusted for the role.
    pub keyids: Vec<String>,
    /// Distinct keys needed.
    pub threshold: u64,
    /// Stop the search here if this role matches the path.
    pub terminating: bool,
    /// Glob patterns (exactly one of `paths` / `path_hash_prefixes` is set).
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of SHA-256(target path).
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl DelegatedRole {
    fn from_value(v: Value, ctx: Ctx<'_>) -> Result<DelegatedRole, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let name = o.str("name")?;
        let (keyids, threshold) = keyids_threshold(&mut o)?;
        let terminating = o
            .opt_bool("terminating")?
            .ok_or_else(|| invalid(ctx, "missing field \"terminating\""))?;
        let paths = o.opt_str_list("paths")?;
        let path_hash_prefixes = o.opt_str_list("path_hash_prefixes")?;
        if paths.is_some() == path_hash_prefixes.is_some() {
            return Err(invalid(
                ctx,
                "exactly one of \"paths\" and \"path_hash_prefixes\" must be set",
            ));
        }
        Ok(DelegatedRole {
            name,
            keyids,
            threshold,
            terminating,
            paths,
            path_hash_prefixes,
            unrecognized: o.rest(),
        })
    }

    fn view(&self) -> View<'_> {
        let mut f = vec![
            ("name", View::Str(&self.name)),
            ("keyids", View::strs(&self.keyids)),
            ("threshold", View::Int(self.threshold)),
            ("terminating", View::Bool(self.terminating)),
        ];
        if let Some(p) = &self.paths {
            f.push(("paths", View::strs(p)));
        }
        if let Some(p) = &self.path_hash_prefixes {
            f.push(("path_hash_prefixes", View::strs(p)));
        }
        View::obj(f, &self.unrecognized)
    }

    /// Whether this role is trusted for `target_path` (python-tuf's `is_delegated_path`).
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns
                .iter()
                .any(|p| pathmatch::path_matches(target_path, p));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = pathmatch::path_hash_hex(target_path);
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

/// TAP 15 succinct hash-bin delegation: 2^bit_length roles `{name_prefix}-{hex index}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccinctRoles {
    /// Keyids trusted for every bin.
    pub keyids: Vec<String>,
    /// Distinct keys needed.
    pub threshold: u64,
    /// Bits of SHA-256(path) that pick the bin, 1..=32.
    pub bit_length: u32,
    /// Prefix of the bin role names.
    pub name_prefix: String,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl SuccinctRoles {
    fn from_value(v: Value, ctx: Ctx<'_>) -> Result<SuccinctRoles, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let (keyids, threshold) = keyids_threshold(&mut o)?;
        let bit_length = o.u64("bit_length")?;
        if !(1..=32).contains(&bit_length) {
            return Err(invalid(
                Ctx::Field(&ctx, "bit_length"),
                format!("must be between 1 and 32, got {bit_length}"),
            ));
        }
        let name_prefix = o.str("name_prefix")?;
        Ok(SuccinctRoles {
            keyids,
            threshold,
            bit_length: bit_length as u32,
            name_prefix,
            unrecognized: o.rest(),
        })
    }

    fn view(&self) -> View<'_> {
        View::obj(
            vec![
                ("keyids", View::strs(&self.keyids)),
                ("threshold", View::Int(self.threshold)),
                ("bit_length", View::Int(u64::from(self.bit_length))),
                ("name_prefix", View::Str(&self.name_prefix)),
            ],
            &self.unrecognized,
        )
    }

    /// Number of bins, 2^bit_length.
    pub fn number_of_bins(&self) -> u64 {
        1u64 << self.bit_length
    }

    /// Hex digits in a bin suffix: the width of 2^bit_length − 1 in hex.
    pub fn suffix_len(&self) -> usize {
        format!("{:x}", self.number_of_bins() - 1).len()
    }

    /// Name of bin `index`.
    pub fn role_name(&self, index: u64) -> String {
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            index,
            width = self.suffix_len()
        )
    }

    /// The bin index for `target_path`: the first `bit_length` bits of SHA-256(path).
    pub fn bin_for_target(&self, target_path: &str) -> u64 {
        let d = pathmatch::path_hash(target_path);
        let first = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        u64::from(first >> (32 - self.bit_length))
    }

    /// The bin role name responsible for `target_path`.
    pub fn role_for_target(&self, target_path: &str) -> String {
        self.role_name(self.bin_for_target(target_path))
    }

    /// All bin role names in order.
    pub fn role_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.number_of_bins()).map(|i| self.role_name(i))
    }

    /// The bin index named by `role_name`, if it is one of these bins.
    pub fn index_of(&self, role_name: &str) -> Option<u64> {
        let suffix = role_name
            .strip_prefix(&self.name_prefix)?
            .strip_prefix('-')?;
        if suffix.len() != self.suffix_len() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = u64::from_str_radix(suffix, 16).ok()?;
        (n < self.number_of_bins()).then_some(n)
    }
}

/// The `delegations` of a targets role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegations {
    /// keyid → key for the delegated roles.
    pub keys: BTreeMap<String, Key>,
    /// Ordered delegated roles (exactly one of `roles` / `succinct_roles` is set).
    pub roles: Option<Vec<DelegatedRole>>,
    /// TAP 15 bins.
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields we do not know.
    pub unrecognized: Map,
}

/// The keys and threshold a delegator assigns to one role.
#[derive(Debug, Clone, Copy)]
pub struct RoleKeys<'a> {
    /// Keyids assigned to the role.
    pub keyids: &'a [String],
    /// Distinct keys needed.
    pub threshold: u64,
    /// Where to look the keyids up.
    pub keys: &'a BTreeMap<String, Key>,
}

impl Delegations {
    fn from_value(v: Value, ctx: Ctx<'_>) -> Result<Delegations, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let keys = keys_from(o.obj("keys")?)?;
        let roles = match o.take("roles") {
            None => None,
            Some(v) => {
                let roles_ctx = Ctx::Field(&ctx, "roles");
                let list = super::fields::as_array(v, roles_ctx)?;
                let mut roles: Vec<DelegatedRole> = Vec::with_capacity(list.len());
                for (n, r) in list.into_iter().enumerate() {
                    let rctx = Ctx::Index(&roles_ctx, n);
                    let role = DelegatedRole::from_value(r, rctx)?;
                    if role.name.is_empty() || TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                        return Err(invalid(
                            rctx,
                            format!("delegated role name {:?} is empty or top-level", role.name),
                        ));
                    }
                    if roles.iter().any(|r| r.name == role.name) {
                        return Err(invalid(rctx, format!("duplicate role {}", role.name)));
                    }
                    roles.push(role);
                }
                Some(roles)
            }
        };
        let succinct_roles = o
            .take("succinct_roles")
            .map(|v| SuccinctRoles::from_value(v, Ctx::Field(&ctx, "succinct_roles")))
            .transpose()?;
        if roles.is_some() == succinct_roles.is_some() {
            return Err(invalid(
                ctx,
                "exactly one of \"roles\" and \"succinct_roles\" must be set",
            ));
        }
        Ok(Delegations {
            keys,
            roles,
            succinct_roles,
            unrecognized: o.rest(),
        })
    }

    fn view(&self) -> View<'_> {
        let mut f = vec![("keys", keys_view(&self.keys))];
        if let Some(roles) = &self.roles {
            f.push((
                "roles",
                View::Arr(roles.iter().map(DelegatedRole::view).collect()),
            ));
        }
        if let Some(s) = &self.succinct_roles {
            f.push(("succinct_roles", s.view()));
        }
        View::obj(f, &self.unrecognized)
    }

    /// The keys and threshold assigned to delegated role `name`, if it is delegated here.
    pub fn role_keys(&self, name: &str) -> Option<RoleKeys<'_>> {
        if let Some(roles) = &self.roles {
            let r = roles.iter().find(|r| r.name == name)?;
            return Some(RoleKeys {
                keyids: &r.keyids,
                threshold: r.threshold,
                keys: &self.keys,
            });
        }
        let s = self.succinct_roles.as_ref()?;
        s.index_of(name)?;
        Some(RoleKeys {
            keyids: &s.keyids,
            threshold: s.threshold,
            keys: &self.keys,
        })
    }

    /// The roles trusted for `target_path`, in search order, each with its `terminating` flag.
    /// Succinct bins count as terminating, as python-tuf reports them.
    pub fn roles_for_target(&self, target_path: &str) -> Vec<(String, bool)> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .filter(|r| r.is_delegated_path(target_path))
                .map(|r| (r.name.clone(), r.terminating))
                .collect();
        }
        match &self.succinct_roles {
            Some(s) => vec![(s.role_for_target(target_path), true)],
            None => Vec::new(),
        }
    }
}

/// The body of targets metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Target path → entry.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations, if any.
    pub delegations: Option<Delegations>,
}

impl Targets {
    pub(crate) fn take_from(o: &mut Obj) -> Result<Targets, MetadataError> {
        let targets = o
            .obj("targets")?
            .members(TargetFile::from_value)?
            .into_iter()
            .collect();
        let ctx = o.ctx;
        let delegations = o
            .take("delegations")
            .map(|v| Delegations::from_value(v, Ctx::Field(&ctx, "delegations")))
            .transpose()?;
        Ok(Targets {
            targets,
            delegations,
        })
    }

    pub(crate) fn fields(&self) -> Vec<(&'static str, View<'_>)> {
        let mut f = vec![(
            "targets",
            View::entries(
                self.targets
                    .iter()
                    .map(|(p, t)| (p.as_str(), t.view()))
                    .collect(),
            ),
        )];
        if let Some(d) = &self.delegations {
            f.push(("delegations", d.view()));
        }
        f
    }
}
