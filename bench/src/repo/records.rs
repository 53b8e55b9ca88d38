//! Deterministic PyPI-like target records, identical to those `bench/repo_bench.py` makes:
//! record `i` derives from `seed = sha256("tufpi-repo-bench" || i as 8 big-endian bytes)`.

use std::collections::BTreeMap;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use sha2::Sha256;
use tufpi_repo::{Change, TargetRecord};

/// Record `i`: path `packages/xx/yy/<60 hex>/proj-1.0-py3-none-any.whl`, a length in
/// 2,000..5,002,000, and sha256 + blake2b-256 digests.
pub fn record(i: u64) -> TargetRecord {
    let mut h = Sha256::new();
    h.update(b"tufpi-repo-bench");
    h.update(i.to_be_bytes());
    let seed: [u8; 32] = h.finalize().into();
    let s = hex32(&seed);
    let path = format!(
        "packages/{}/{}/{}/proj-1.0-py3-none-any.whl",
        &s[..2],
        &s[2..4],
        &s[4..]
    );
    let n = u64::from_be_bytes(seed[..8].try_into().unwrap_or_default());
    let hashes = BTreeMap::from([
        ("sha256".to_string(), hex32(&Sha256::digest(seed).into())),
        (
            "blake2b-256".to_string(),
            hex32(&Blake2b::<U32>::digest(seed).into()),
        ),
    ]);
    TargetRecord {
        path,
        length: 2_000 + n % 5_000_000,
        hashes,
        custom: None,
    }
}

/// Lowercase hex of 32 bytes (a table lookup per nibble: `hex::encode` goes char by char).
fn hex32(b: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(64);
    for &x in b {
        out.push(DIGITS[usize::from(x >> 4)]);
        out.push(DIGITS[usize::from(x & 15)]);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// `Change::Add` of record `i`.
pub fn add(i: u64) -> Change {
    Change::Add(record(i))
}
