//! Shared pieces of the fuzz targets: the fixture repository (made by python-tuf with the fixed
//! keys in `fixtures/keys`, see `make-corpus.py`) and the keys to re-sign mutated metadata.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use tufpi_core::crypto::PrivateKey;
use tufpi_core::metadata::{Key, Metadata, Signed};

/// The fixture root (v1): root threshold 2 (ed25519 + ecdsa P-256).
pub const ROOT_V1: &[u8] = include_bytes!("../fixtures/repo/1.root.json");
/// The fixture `bins` role (a succinct delegation to `bin-0` … `bin-7`).
pub const BINS: &[u8] = include_bytes!("../fixtures/repo/bins.json");
/// The fixture top-level targets (delegates to `bins` and to `legacy`, an RSA-PSS key).
pub const TARGETS: &[u8] = include_bytes!("../fixtures/repo/targets.json");
/// The fixture `legacy` role.
pub const LEGACY: &[u8] = include_bytes!("../fixtures/repo/legacy.json");

const PEMS: [(&str, &str); 6] = [
    ("root1", include_str!("../fixtures/keys/root1.pem")),
    ("root2", include_str!("../fixtures/keys/root2.pem")),
    ("targets", include_str!("../fixtures/keys/targets.pem")),
    ("snapshot", include_str!("../fixtures/keys/snapshot.pem")),
    ("timestamp", include_str!("../fixtures/keys/timestamp.pem")),
    ("bins", include_str!("../fixtures/keys/bins.pem")),
];

/// A fixture signing key and its keyid.
pub struct FixtureKey {
    /// Key name in `fixtures/keys`.
    pub name: &'static str,
    /// Its keyid as root / targets list it.
    pub keyid: String,
    /// The private key.
    pub key: PrivateKey,
}

/// The fixture keys, loaded once.
pub fn keys() -> &'static [FixtureKey] {
    static KEYS: OnceLock<Vec<FixtureKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        PEMS.iter()
            .map(|(name, pem)| {
                let key = PrivateKey::from_pem(pem).expect("fixture key");
                FixtureKey {
                    name,
                    keyid: Key::from_private(&key).compute_keyid(),
                    key,
                }
            })
            .collect()
    })
}

/// The fixture keys that sign `role`: root1+root2 for root, `bins` for `bins` and `bin-*`,
/// the role's own key for the other top-level roles; none for `legacy` (RSA, python only).
pub fn signing_keys(role: &str) -> Vec<&'static FixtureKey> {
    let names: &[&str] = match role {
        "root" => &["root1", "root2"],
        "targets" | "snapshot" | "timestamp" => &[],
        r if r == "bins" || r.starts_with("bin-") => &["bins"],
        _ => return Vec::new(),
    };
    let names: Vec<&str> = if names.is_empty() {
        vec![role]
    } else {
        names.to_vec()
    };
    keys().iter().filter(|k| names.contains(&k.name)).collect()
}

/// Re-sign parsed metadata with the fixture keys for `role` (replacing its signatures):
/// lets a mutated file get past signature checks so the checks after them are fuzzed too.
pub fn resign(md: &mut Metadata, role: &str) -> bool {
    md.signatures.clear();
    let keys = signing_keys(role);
    for k in &keys {
        if md.sign(&k.key, &k.keyid).is_err() {
            return false;
        }
    }
    !keys.is_empty()
}

/// The fixture root's `signed`, parsed once.
pub fn root_signed() -> &'static Signed {
    static ROOT: OnceLock<Signed> = OnceLock::new();
    ROOT.get_or_init(|| Metadata::from_bytes(ROOT_V1).expect("fixture root").signed)
}

/// A fixture targets role's `signed`, parsed once (index 0: targets, 1: bins, 2: legacy).
pub fn delegators() -> &'static [(&'static str, Signed)] {
    static D: OnceLock<Vec<(&'static str, Signed)>> = OnceLock::new();
    D.get_or_init(|| {
        [("targets", TARGETS), ("bins", BINS), ("legacy", LEGACY)]
            .into_iter()
            .map(|(n, b)| (n, Metadata::from_bytes(b).expect("fixture").signed))
            .collect()
    })
}

/// The fixed reference time of the fuzz client (the fixtures expire in 2035).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// A per-process scratch path under `$TMPDIR` (the archive readers take paths).
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tufpi-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// Write `data` to the scratch file `name` and return its path. The old file is removed
/// first: rewriting it in place makes ext4 flush it on close (its guard for truncate and
/// rewrite), which costs milliseconds per input.
pub fn scratch_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = scratch(name);
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, data).expect("scratch file");
    path
}
