//! Realistic PEP 458 benchmark inputs: a root, a targets role delegating to 16,384 succinct
//! hash bins, a snapshot listing targets + every bin (16,385 entries), and one bin with 1,000
//! targets (PyPI distribution paths plus simple-index pages). Contents are deterministic.

use std::collections::BTreeMap;

use tufpi_core::metadata::{
    parse_expires, Body, Delegations, Key, MetaFile, Metadata, Role, Root, Signed, Snapshot,
    SuccinctRoles, TargetFile, Targets, SPEC_VERSION,
};
use tufpi_core::Map;

/// Bits of SHA-256(path) choosing the bin: 2^14 = 16,384 bins, as PEP 458 suggests for PyPI.
pub const BIT_LENGTH: u32 = 14;

/// The succinct bins' name prefix (bins are `bin-0000` … `bin-3fff`).
pub const BIN_PREFIX: &str = "bin";

/// The delegated bin role the 1,000-target file stands for.
pub const BIN_ROLE: &str = "bin-0000";

/// Expiry written into every file (fixed, far future, so files are reproducible).
const EXPIRES: &str = "2035-01-01T00:00:00Z";

/// A tiny deterministic PRNG (SplitMix64): no dependency, same data every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex(&mut self, chars: usize) -> String {
        let mut s = String::with_capacity(chars + 16);
        while s.len() < chars {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(chars);
        s
    }

    fn word(&mut self) -> String {
        const SYL: [&str; 16] = [
            "py", "lib", "req", "dj", "ango", "num", "sci", "test", "flask", "tor", "ch", "aws",
            "core", "ml", "data", "kit",
        ];
        let n = 1 + self.below(3);
        (0..n).map(|_| SYL[self.below(16) as usize]).collect()
    }
}

fn signed(version: u64, body: Body) -> Signed {
    Signed {
        spec_version: SPEC_VERSION.to_string(),
        version,
        expires: parse_expires(EXPIRES).expect("fixed expiry parses"),
        body,
        unrecognized: Map::new(),
    }
}

fn key_map(keyid: &str, key: &Key) -> BTreeMap<String, Key> {
    BTreeMap::from([(keyid.to_string(), key.clone())])
}

/// Root metadata trusting `key` (threshold 1) for all four top-level roles.
pub fn root(keyid: &str, key: &Key) -> Metadata {
    let roles = ["root", "snapshot", "targets", "timestamp"]
        .into_iter()
        .map(|name| {
            let role = Role {
                keyids: vec![keyid.to_string()],
                threshold: 1,
                unrecognized: Map::new(),
            };
            (name.to_string(), role)
        })
        .collect();
    Metadata::new(signed(
        1,
        Body::Root(Root {
            consistent_snapshot: Some(true),
            keys: key_map(keyid, key),
            roles,
        }),
    ))
}

/// Top-level targets delegating to 2^BIT_LENGTH succinct bins, all trusting `key`.
pub fn targets(keyid: &str, key: &Key) -> Metadata {
    let succinct = SuccinctRoles {
        keyids: vec![keyid.to_string()],
        threshold: 1,
        bit_length: BIT_LENGTH,
        name_prefix: BIN_PREFIX.to_string(),
        unrecognized: Map::new(),
    };
    Metadata::new(signed(
        1,
        Body::Targets(Targets {
            targets: BTreeMap::new(),
            delegations: Some(Delegations {
                keys: key_map(keyid, key),
                roles: None,
                succinct_roles: Some(succinct),
                unrecognized: Map::new(),
            }),
        }),
    ))
}

/// Snapshot listing `targets.json` and every bin: 1 + 2^BIT_LENGTH = 16,385 entries.
pub fn snapshot() -> Metadata {
    let mut rng = Rng(458);
    let mut meta = BTreeMap::new();
    meta.insert("targets.json".to_string(), MetaFile::new(1));
    for i in 0..(1u64 << BIT_LENGTH) {
        let name = format!("{BIN_PREFIX}-{i:04x}.json");
        meta.insert(name, MetaFile::new(1 + rng.below(5000)));
    }
    Metadata::new(signed(73_412, Body::Snapshot(Snapshot { meta })))
}

/// A bin with `n` targets: ~85% distribution files under PyPI's blake2b-addressed
/// `packages/` layout, the rest PEP 691/503 simple-index pages.
pub fn bin(n: usize) -> Metadata {
    let mut rng = Rng(15);
    let mut targets = BTreeMap::new();
    while targets.len() < n {
        let project = rng.word();
        let b2 = rng.hex(64); // PyPI addresses files by their blake2b-256 digest
        let (path, length) = if rng.below(100) < 85 {
            let version = format!("{}.{}.{}", rng.below(30), rng.below(20), rng.below(10));
            let file = match rng.below(3) {
                0 => format!("{project}-{version}.tar.gz"),
                1 => format!("{project}-{version}-py3-none-any.whl"),
                _ => format!("{project}-{version}-cp312-cp312-manylinux_2_17_x86_64.whl"),
            };
            let path = format!("packages/{}/{}/{}/{file}", &b2[..2], &b2[2..4], &b2[4..]);
            (path, 1_000 + rng.below(50_000_000))
        } else {
            let page = if rng.below(2) == 0 { "html" } else { "json" };
            let path = format!(
                "simple/{project}-{}/vnd.pypi.simple.v1.{page}",
                rng.below(1000)
            );
            (path, 300 + rng.below(200_000))
        };
        let hashes = BTreeMap::from([
            ("blake2b-256".to_string(), b2),
            ("sha256".to_string(), rng.hex(64)),
        ]);
        targets.insert(path, TargetFile::new(length, hashes));
    }
    Metadata::new(signed(
        9,
        Body::Targets(Targets {
            targets,
            delegations: None,
        }),
    ))
}
