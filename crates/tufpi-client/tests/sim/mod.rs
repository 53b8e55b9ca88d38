//! An in-process TUF repository simulator for the client tests, in the style of python-tuf's
//! `tests/repository_simulator.py`: it holds the signers, builds every role with the
//! `tufpi_core::metadata` types, signs and stores the bytes of every published version, and
//! serves them through the client's `Fetcher` trait (or over a tiny real HTTP server), with
//! hooks to inject faults.
//!
//! Files are keyed by their percent-decoded path under the server root, e.g.
//! `metadata/3.snapshot.json`, `metadata/timestamp.json`, `targets/<sha256>.file.txt`.

#![allow(dead_code)]

mod client;
mod http;

pub use client::*;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use tufpi_client::{FetchError, Fetcher};
use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::hashes::digest_hex;
use tufpi_core::json::Map;
use tufpi_core::metadata::{
    parse_expires, Body, DelegatedRole, Delegations, Key, MetaFile, Metadata, Role, Root, Signed,
    Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp, SPEC_VERSION,
};

/// Base URL of the simulated metadata.
pub const META_URL: &str = "https://sim.test/metadata/";
/// Base URL of the simulated targets.
pub const TARGETS_URL: &str = "https://sim.test/targets/";
const HOST: &str = "https://sim.test/";

/// The fixed reference time of every test update.
pub fn now() -> DateTime<Utc> {
    parse_expires("2030-06-01T00:00:00Z").expect("valid time")
}

/// `now()` shifted by `days` (may be negative).
pub fn days(n: i64) -> DateTime<Utc> {
    now() + chrono::Duration::days(n)
}

/// A private key and its keyid.
#[derive(Clone)]
pub struct Signer {
    pub keyid: String,
    pub key: PrivateKey,
}

impl Signer {
    pub fn new(scheme: Scheme) -> Signer {
        let key = PrivateKey::generate(scheme).expect("key generation");
        let keyid = Key::from_private(&key).compute_keyid();
        Signer { keyid, key }
    }
    pub fn ed25519() -> Signer {
        Signer::new(Scheme::Ed25519)
    }
    pub fn ecdsa() -> Signer {
        Signer::new(Scheme::EcdsaP256)
    }
    pub fn public(&self) -> Key {
        Key::from_private(&self.key)
    }
}

/// An injected fault for one path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer 404.
    NotFound,
    /// Serve these bytes instead.
    Replace(Vec<u8>),
    /// Serve an endless stream.
    Endless,
    /// Serve the real bytes one at a time, `interval` apart (HTTP server only; the in-process
    /// fetcher just sleeps `interval` once).
    Slow(Duration),
    /// Wait this long before answering.
    Delay(Duration),
}

/// What the repository answers for a path.
pub(crate) enum Served {
    Data(Vec<u8>),
    NotFound,
    Endless,
    Slow(Vec<u8>, Duration),
    Delayed(Duration, Box<Served>),
}

type Hook = Box<dyn FnMut(&mut Repo, &str) + Send>;

/// The repository state.
pub struct Repo {
    /// Top-level `signed` parts.
    pub root: Signed,
    pub timestamp: Signed,
    pub snapshot: Signed,
    /// `targets` and every delegated targets role, by name.
    pub targets: BTreeMap<String, Signed>,
    /// Who signs each role (root: every key here signs, assigned or not).
    pub signers: BTreeMap<String, Vec<Signer>>,
    /// Put length and hashes in timestamp/snapshot meta entries.
    pub meta_lengths: bool,
    /// Serve compact JSON instead of python-tuf's indented form.
    pub compact: bool,
    /// Published bytes by decoded path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Last stored version of each role.
    pub published: BTreeMap<String, u64>,
    /// Faults by decoded path, with how many more times each fires (`None`: always).
    pub faults: BTreeMap<String, (Fault, Option<usize>)>,
    /// Every URL fetched, with the cap the client passed.
    pub fetched: Vec<(String, u64)>,
    /// Called with the decoded path before each fetch is answered.
    pub hook: Option<Hook>,
    /// Succinct-bin signers by name prefix.
    succinct: Vec<(SuccinctRoles, Signer)>,
}

fn signed(body: Body) -> Signed {
    Signed {
        spec_version: SPEC_VERSION.into(),
        version: 1,
        expires: days(7),
        body,
        unrecognized: Map::new(),
    }
}

fn empty_targets() -> Signed {
    signed(Body::Targets(Targets {
        targets: BTreeMap::new(),
        delegations: None,
    }))
}

fn sha256(data: &[u8]) -> String {
    digest_hex("sha256", data).expect("sha256")
}

impl Repo {
    /// A repository with one key per top-level role (snapshot's is ECDSA P-256, the others
    /// ed25519), consistent snapshots on, and version 1 of every role published.
    pub fn new() -> Repo {
        let mut signers = BTreeMap::new();
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let s = if role == "snapshot" {
                Signer::ecdsa()
            } else {
                Signer::ed25519()
            };
            keys.insert(s.keyid.clone(), s.public());
            roles.insert(
                role.to_string(),
                Role {
                    keyids: vec![s.keyid.clone()],
                    threshold: 1,
                    unrecognized: Map::new(),
                },
            );
            signers.insert(role.to_string(), vec![s]);
        }
        let mut root = signed(Body::Root(Root {
            consistent_snapshot: Some(true),
            keys,
            roles,
        }));
        root.expires = days(365);
        let mut targets = BTreeMap::new();
        targets.insert("targets".to_string(), empty_targets());
        let mut repo = Repo {
            root,
            timestamp: signed(Body::Timestamp(Timestamp::new(MetaFile::new(1)))),
            snapshot: signed(Body::Snapshot(Snapshot {
                meta: BTreeMap::new(),
            })),
            targets,
            signers,
            meta_lengths: false,
            compact: false,
            files: BTreeMap::new(),
            published: BTreeMap::new(),
            faults: BTreeMap::new(),
            fetched: Vec::new(),
            hook: None,
            succinct: Vec::new(),
        };
        repo.publish_root();
        repo.publish(&["targets"]);
        repo
    }

    // ----- bodies -----

    pub fn root_body(&mut self) -> &mut Root {
        match &mut self.root.body {
            Body::Root(r) => r,
            _ => unreachable!(),
        }
    }
    pub fn snapshot_body(&mut self) -> &mut Snapshot {
        match &mut self.snapshot.body {
            Body::Snapshot(s) => s,
            _ => unreachable!(),
        }
    }
    pub fn timestamp_body(&mut self) -> &mut Timestamp {
        match &mut self.timestamp.body {
            Body::Timestamp(t) => t,
            _ => unreachable!(),
        }
    }
    /// The `signed` of any role.
    pub fn md(&mut self, role: &str) -> &mut Signed {
        match role {
            "root" => &mut self.root,
            "timestamp" => &mut self.timestamp,
            "snapshot" => &mut self.snapshot,
            _ => self.ensure_targets(role),
        }
    }
    /// The body of targets role `role` (created empty, version 1, if new).
    pub fn targets_body(&mut self, role: &str) -> &mut Targets {
        match &mut self.ensure_targets(role).body {
            Body::Targets(t) => t,
            _ => unreachable!(),
        }
    }

    fn ensure_targets(&mut self, role: &str) -> &mut Signed {
        if !self.signers.contains_key(role) {
            if let Some((_, s)) = self
                .succinct
                .iter()
                .find(|(sr, _)| sr.index_of(role).is_some())
            {
                let s = s.clone();
                self.signers.insert(role.to_string(), vec![s]);
            }
        }
        self.targets
            .entry(role.to_string())
            .or_insert_with(empty_targets)
    }

    // ----- keys -----

    /// Give top-level `role` a fresh key (replacing its keys and signers); root version is
    /// not bumped here.
    pub fn rotate_keys(&mut self, role: &str) -> Signer {
        let s = Signer::ed25519();
        self.set_role_keys(role, std::slice::from_ref(&s), 1);
        if role == "root" {
            // The new root must still be signed by the old root keys: keep them signing.
            self.signers
                .entry("root".into())
                .or_default()
                .push(s.clone());
        } else {
            self.signers.insert(role.to_string(), vec![s.clone()]);
        }
        s
    }

    /// Assign exactly `keys` with `threshold` to top-level `role` in root (signers unchanged).
    pub fn set_role_keys(&mut self, role: &str, keys: &[Signer], threshold: u64) {
        let root = self.root_body();
        let r = root.roles.get_mut(role).expect("top-level role");
        r.keyids = keys.iter().map(|k| k.keyid.clone()).collect();
        r.threshold = threshold;
        for k in keys {
            root.keys.insert(k.keyid.clone(), k.public());
        }
        let used: BTreeSet<String> = root
            .roles
            .values()
            .flat_map(|r| r.keyids.iter().cloned())
            .collect();
        root.keys.retain(|id, _| used.contains(id));
    }

    // ----- signing and storing -----

    /// The signed bytes of `role`'s current metadata, signed by `signers`.
    pub fn sign_with(&mut self, role: &str, signers: &[Signer]) -> Vec<u8> {
        let mut md = Metadata::new(self.md(role).clone());
        for s in signers {
            md.sign(&s.key, &s.keyid).expect("sign");
        }
        if self.compact {
            md.to_compact_bytes()
        } else {
            md.to_bytes()
        }
    }

    /// The signed bytes of `role`'s current metadata, signed by its signers.
    pub fn sign(&mut self, role: &str) -> Vec<u8> {
        let signers = self.signers.get(role).cloned().unwrap_or_default();
        self.sign_with(role, &signers)
    }

    /// Store `data` as `role`'s bytes at `version` (`N.role.json` and `role.json`).
    pub fn store(&mut self, role: &str, version: u64, data: Vec<u8>) {
        self.files
            .insert(format!("metadata/{version}.{role}.json"), data.clone());
        if role != "root" {
            self.files.insert(format!("metadata/{role}.json"), data);
        }
        self.published.insert(role.to_string(), version);
    }

    /// Sign and store `role` at its current version.
    pub fn store_role(&mut self, role: &str) -> Vec<u8> {
        let data = self.sign(role);
        let v = self.md(role).version;
        self.store(role, v, data.clone());
        data
    }

    /// Bump `role`'s version unless the current version was never stored.
    fn bump(&mut self, role: &str) {
        let v = self.md(role).version;
        if self.published.get(role) == Some(&v) {
            self.md(role).version = v + 1;
        }
    }

    /// The bytes of the latest stored version of `role`.
    pub fn latest(&self, role: &str) -> Vec<u8> {
        let v = self.published[role];
        self.file(&format!("metadata/{v}.{role}.json"))
    }

    /// Stored bytes at `path`.
    pub fn file(&self, path: &str) -> Vec<u8> {
        self.files
            .get(path)
            .unwrap_or_else(|| panic!("no file {path}"))
            .clone()
    }

    /// Sign and store root at its current version.
    pub fn publish_root(&mut self) -> Vec<u8> {
        self.store_role("root")
    }

    /// Bump root's version, sign and store it.
    pub fn bump_root(&mut self) -> Vec<u8> {
        self.root.version += 1;
        self.publish_root()
    }

    fn meta_entry(&self, role: &str) -> MetaFile {
        let mut m = MetaFile::new(self.published[role]);
        if self.meta_lengths {
            let data = self.latest(role);
            m.length = Some(data.len() as u64);
            m.hashes = Some(BTreeMap::from([("sha256".to_string(), sha256(&data))]));
        }
        m
    }

    /// Store the given targets roles (bumping those already stored at their version), then
    /// a new snapshot and timestamp.
    pub fn publish(&mut self, roles: &[&str]) {
        for role in roles {
            self.bump(role);
            self.store_role(role);
        }
        self.publish_snapshot();
    }

    /// Recompute snapshot meta from every stored targets role, bump, store; then timestamp.
    pub fn publish_snapshot(&mut self) {
        self.snapshot_meta_refresh();
        self.bump("snapshot");
        self.store_role("snapshot");
        self.publish_timestamp();
    }

    /// Point snapshot meta at the stored version of every stored targets role.
    pub fn snapshot_meta_refresh(&mut self) {
        let names: Vec<String> = self
            .targets
            .keys()
            .filter(|n| self.published.contains_key(*n))
            .cloned()
            .collect();
        let entries: Vec<(String, MetaFile)> = names
            .iter()
            .map(|n| (format!("{n}.json"), self.meta_entry(n)))
            .collect();
        let snap = self.snapshot_body();
        for (k, v) in entries {
            snap.meta.insert(k, v);
        }
    }

    /// Point timestamp at the stored snapshot, bump, store.
    pub fn publish_timestamp(&mut self) {
        let m = self.meta_entry("snapshot");
        self.timestamp_body().snapshot_meta = m;
        self.bump("timestamp");
        self.store_role("timestamp");
    }

    // ----- targets and delegations -----

    /// Add a target file to `role` (not published yet) and store its content under both its
    /// plain and hash-prefixed paths.
    pub fn add_target(&mut self, role: &str, path: &str, content: &[u8]) -> TargetFile {
        let hash = sha256(content);
        let tf = TargetFile::new(
            content.len() as u64,
            BTreeMap::from([("sha256".to_string(), hash.clone())]),
        );
        self.targets_body(role)
            .targets
            .insert(path.to_string(), tf.clone());
        let prefixed = match path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{hash}.{base}"),
            None => format!("{hash}.{path}"),
        };
        self.files
            .insert(format!("targets/{path}"), content.to_vec());
        self.files
            .insert(format!("targets/{prefixed}"), content.to_vec());
        tf
    }

    fn delegations(&mut self, delegator: &str) -> &mut Delegations {
        self.targets_body(delegator)
            .delegations
            .get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                unrecognized: Map::new(),
            })
    }

    /// Delegate `name` from `delegator` with its key (a fresh ed25519 key for a new role),
    /// threshold 1.
    pub fn delegate_role(
        &mut self,
        delegator: &str,
        name: &str,
        paths: Option<&[&str]>,
        prefixes: Option<&[&str]>,
        terminating: bool,
    ) -> Signer {
        let s = match self.signers.get(name).and_then(|v| v.first()) {
            Some(s) => s.clone(),
            None => Signer::ed25519(),
        };
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let role = DelegatedRole {
            name: name.to_string(),
            keyids: vec![s.keyid.clone()],
            threshold: 1,
            terminating,
            paths: paths.map(owned),
            path_hash_prefixes: prefixes.map(owned),
            unrecognized: Map::new(),
        };
        let d = self.delegations(delegator);
        d.keys.insert(s.keyid.clone(), s.public());
        d.roles.get_or_insert_with(Vec::new).push(role);
        self.signers.insert(name.to_string(), vec![s.clone()]);
        self.ensure_targets(name);
        s
    }

    /// Delegate `name` from `delegator` for glob `paths`.
    pub fn delegate(&mut self, delegator: &str, name: &str, paths: &[&str], terminating: bool) {
        self.delegate_role(delegator, name, Some(paths), None, terminating);
    }

    /// Delegate TAP 15 bins `{prefix}-…` from `delegator`, one ed25519 key for all bins.
    /// Bins are created (empty) only when a target is added to them.
    pub fn delegate_succinct(&mut self, delegator: &str, bit_length: u32, prefix: &str) {
        let s = Signer::ed25519();
        let sr = SuccinctRoles {
            keyids: vec![s.keyid.clone()],
            threshold: 1,
            bit_length,
            name_prefix: prefix.to_string(),
            unrecognized: Map::new(),
        };
        let d = self.delegations(delegator);
        d.keys.insert(s.keyid.clone(), s.public());
        d.roles = None;
        d.succinct_roles = Some(sr.clone());
        self.succinct.push((sr, s));
    }

    // ----- serving -----

    fn serve(&mut self, path: &str) -> Served {
        let fault = match self.faults.get_mut(path) {
            Some((f, left)) => {
                let f = f.clone();
                match left {
                    Some(0) => None,
                    Some(n) => {
                        *n -= 1;
                        Some(f)
                    }
                    None => Some(f),
                }
            }
            None => None,
        };
        let real = || match self.files.get(path) {
            Some(d) => Served::Data(d.clone()),
            None => Served::NotFound,
        };
        match fault {
            None => real(),
            Some(Fault::NotFound) => Served::NotFound,
            Some(Fault::Replace(d)) => Served::Data(d),
            Some(Fault::Endless) => Served::Endless,
            Some(Fault::Slow(i)) => match real() {
                Served::Data(d) => Served::Slow(d, i),
                other => other,
            },
            Some(Fault::Delay(d)) => Served::Delayed(d, Box::new(real())),
        }
    }

    /// Inject `fault` at decoded `path`, firing always.
    pub fn fault(&mut self, path: &str, fault: Fault) {
        self.faults.insert(path.to_string(), (fault, None));
    }

    /// Inject `fault` at decoded `path`, firing `times` times.
    pub fn fault_times(&mut self, path: &str, fault: Fault, times: usize) {
        self.faults.insert(path.to_string(), (fault, Some(times)));
    }

    pub(crate) fn answer(&mut self, rel: &str) -> Served {
        if let Some(mut hook) = self.hook.take() {
            hook(self, rel);
            if self.hook.is_none() {
                self.hook = Some(hook);
            }
        }
        self.serve(rel)
    }
}

/// The simulator, shared between the test and the client's fetcher.
#[derive(Clone)]
pub struct Sim(pub Arc<Mutex<Repo>>);

impl Sim {
    pub fn new() -> Sim {
        Sim(Arc::new(Mutex::new(Repo::new())))
    }

    /// Lock the repository state.
    pub fn repo(&self) -> MutexGuard<'_, Repo> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every URL fetched so far.
    pub fn fetched(&self) -> Vec<String> {
        self.repo().fetched.iter().map(|(u, _)| u.clone()).collect()
    }

    /// The cap passed with each fetch of `url`.
    pub fn caps(&self, url: &str) -> Vec<u64> {
        self.repo()
            .fetched
            .iter()
            .filter(|(u, _)| u == url)
            .map(|(_, c)| *c)
            .collect()
    }

    /// How many times `url` was fetched.
    pub fn count(&self, url: &str) -> usize {
        self.caps(url).len()
    }

    pub fn clear_fetched(&self) {
        self.repo().fetched.clear();
    }
}

pub(crate) fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl Fetcher for Sim {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let served = {
            let mut r = self.repo();
            r.fetched.push((url.to_string(), max_length));
            let Some(rel) = url.strip_prefix(HOST) else {
                return Err(FetchError::Transport {
                    url: url.into(),
                    message: "unknown host".into(),
                });
            };
            r.answer(&decode(rel))
        };
        deliver(url, max_length, served)
    }
}

fn deliver(url: &str, max_length: u64, served: Served) -> Result<Vec<u8>, FetchError> {
    let too_long = || FetchError::TooLong {
        url: url.into(),
        max_length,
    };
    match served {
        Served::NotFound => Err(FetchError::NotFound {
            url: url.into(),
            status: 404,
        }),
        Served::Data(d) | Served::Slow(d, _) if d.len() as u64 > max_length => Err(too_long()),
        Served::Data(d) => Ok(d),
        Served::Slow(d, i) => {
            std::thread::sleep(i);
            Ok(d)
        }
        Served::Endless => {
            // Read an endless stream the way a capped reader would.
            let mut stream = std::io::repeat(b'x');
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            loop {
                let n = stream.read(&mut buf).unwrap_or(0) as u64;
                if total + n > max_length {
                    return Err(too_long());
                }
                total += n;
            }
        }
        Served::Delayed(d, inner) => {
            std::thread::sleep(d);
            deliver(url, max_length, *inner)
        }
    }
}
