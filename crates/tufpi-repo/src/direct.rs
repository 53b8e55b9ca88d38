//! Metadata written straight to bytes where the model would cost most: bins of a bulk import
//! (empty before) and the snapshot listing every bin. The canonical form is the document's
//! skeleton (made by the model, so the two cannot drift apart) with the sorted entries spliced
//! in. Only for printable-ASCII entries, where canonical JSON is also python-tuf's compact
//! form; anything else goes through the model.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::error::RepoError;
use crate::keys::SigningKey;
use crate::layout;
use crate::store::RoleState;

/// A target record as an import bucket holds it, borrowed from the bucket's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecView<'a> {
    /// The bin the path falls in.
    pub bin: u64,
    /// Target path.
    pub path: &'a str,
    /// Length in bytes.
    pub length: u64,
    /// Number of hashes.
    pub nhashes: u32,
    /// The encoded hashes: (algorithm, hex) pairs, sorted by algorithm.
    pub hashes: &'a [u8],
    /// Canonical JSON of `custom`, or empty.
    pub custom: &'a [u8],
}

/// Printable ASCII other than `"` and `\`: written as is by both canonical and compact JSON.
fn plain(s: &[u8]) -> bool {
    s.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Split a length-prefixed field off `data`.
pub(crate) fn field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let rest = &data[4..];
    Some((rest.get(..n)?, &rest[n..]))
}

/// The (algorithm, hex) pairs of a view.
pub(crate) fn hash_pairs<'a>(v: &RecView<'a>) -> Option<Vec<(&'a [u8], &'a [u8])>> {
    let mut out = Vec::with_capacity(v.nhashes as usize);
    let mut rest = v.hashes;
    for _ in 0..v.nhashes {
        let (alg, r) = field(rest)?;
        let (hex, r) = field(r)?;
        out.push((alg, hex));
        rest = r;
    }
    Some(out)
}

/// Append the canonical entry `"path":{...}` of `v` to `out`; false if the record is not
/// plain enough for the direct path (the caller then drops `out`).
fn entry(out: &mut Vec<u8>, v: &RecView<'_>) -> bool {
    if !plain(v.path.as_bytes()) || !v.custom.iter().all(|b| (0x20..0x7f).contains(b)) {
        return false;
    }
    out.push(b'"');
    out.extend_from_slice(v.path.as_bytes());
    out.extend_from_slice(b"\":{");
    if !v.custom.is_empty() {
        out.extend_from_slice(b"\"custom\":");
        out.extend_from_slice(v.custom);
        out.push(b',');
    }
    out.extend_from_slice(b"\"hashes\":{");
    let mut rest = v.hashes;
    for i in 0..v.nhashes {
        let Some((alg, r)) = field(rest) else {
            return false;
        };
        let Some((hex, r)) = field(r) else {
            return false;
        };
        rest = r;
        if !plain(alg) || !plain(hex) {
            return false;
        }
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(alg);
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(hex);
        out.push(b'"');
    }
    out.extend_from_slice(b"},\"length\":");
    let mut digits = [0u8; 20];
    let mut n = v.length;
    let mut k = digits.len();
    loop {
        k -= 1;
        digits[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[k..]);
    out.push(b'}');
    true
}

/// `skeleton` (canonical bytes holding `hole`, e.g. `"targets":{}`) with `fill` writing the
/// entries inside the braces; `None` if the hole is missing or `fill` declines.
fn splice(
    skeleton: &[u8],
    hole: &[u8],
    size: usize,
    fill: impl FnOnce(&mut Vec<u8>) -> bool,
) -> Option<Vec<u8>> {
    let at = skeleton.windows(hole.len()).position(|w| w == hole)?;
    let split = at + hole.len() - 1;
    let mut out = Vec::with_capacity(skeleton.len() + size);
    out.extend_from_slice(&skeleton[..split]);
    if !fill(&mut out) {
        return None;
    }
    out.extend_from_slice(&skeleton[split..]);
    Some(out)
}

/// The signed file of a bin listing exactly `recs` (sorted by path, one per path), or `None`
/// if some record needs the general writer.
pub(crate) fn direct_bin(
    recs: &[RecView<'_>],
    version: u64,
    expires: DateTime<Utc>,
    key: &SigningKey,
) -> Result<Option<Vec<u8>>, RepoError> {
    let skeleton = layout::bin_of_targets(BTreeMap::new(), version, expires).canonical()?;
    let signed = splice(&skeleton, b"\"targets\":{}", recs.len() * 260, |out| {
        for (i, r) in recs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if !entry(out, r) {
                return false;
            }
        }
        true
    });
    match signed {
        Some(signed) => signed_file(signed, key),
        None => Ok(None),
    }
}

/// The snapshot listing every role in `roles` but root, snapshot and timestamp (as
/// `layout::build_snapshot`), or `None` if a name needs the general writer.
pub(crate) fn direct_snapshot(
    roles: &BTreeMap<String, RoleState>,
    version: u64,
    expires: DateTime<Utc>,
    key: &SigningKey,
) -> Result<Option<Vec<u8>>, RepoError> {
    let skeleton = layout::build_snapshot(&BTreeMap::new(), version, expires).canonical()?;
    let signed = splice(&skeleton, b"\"meta\":{}", roles.len() * 36, |out| {
        let mut first = true;
        // BTreeMap order is byte order: canonical JSON's key order for these names.
        for (name, st) in roles {
            if matches!(name.as_str(), "root" | "snapshot" | "timestamp") {
                continue;
            }
            if !plain(name.as_bytes()) {
                return false;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b".json\":{\"version\":");
            out.extend_from_slice(st.version.to_string().as_bytes());
            out.push(b'}');
        }
        true
    });
    match signed {
        Some(signed) => signed_file(signed, key),
        None => Ok(None),
    }
}

/// The file holding canonical `signed` and one signature over it by `key`.
fn signed_file(signed: Vec<u8>, key: &SigningKey) -> Result<Option<Vec<u8>>, RepoError> {
    let sig = key.private.sign_hex(&signed)?;
    if !plain(key.keyid.as_bytes()) {
        return Ok(None);
    }
    let mut file = Vec::with_capacity(signed.len() + 200);
    file.extend_from_slice(b"{\"signatures\":[{\"keyid\":\"");
    file.extend_from_slice(key.keyid.as_bytes());
    file.extend_from_slice(b"\",\"sig\":\"");
    file.extend_from_slice(sig.as_bytes());
    file.extend_from_slice(b"\"}],\"signed\":");
    file.extend_from_slice(&signed);
    file.push(b'}');
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_core::crypto::{PrivateKey, Scheme};

    #[test]
    fn direct_snapshot_equals_model() {
        let key = SigningKey::new(PrivateKey::generate(Scheme::Ed25519).unwrap());
        let mut roles = BTreeMap::new();
        for (i, name) in [
            "root",
            "targets",
            "bins",
            "snapshot",
            "timestamp",
            "bin-0",
            "bin-f",
            "bin-a",
        ]
        .iter()
        .enumerate()
        {
            roles.insert(
                name.to_string(),
                RoleState {
                    version: 1 + i as u64 * 1000,
                    expires: 1_900_000_000,
                },
            );
        }
        let exp = RoleState::at(1_900_000_123);
        let direct = direct_snapshot(&roles, 77, exp, &key).unwrap().unwrap();
        let model = key
            .sign(layout::build_snapshot(&roles, 77, exp))
            .unwrap()
            .to_compact_bytes();
        assert_eq!(
            String::from_utf8_lossy(&direct),
            String::from_utf8_lossy(&model)
        );
        // Empty meta too.
        let direct = direct_snapshot(&BTreeMap::new(), 1, exp, &key)
            .unwrap()
            .unwrap();
        let model = key
            .sign(layout::build_snapshot(&BTreeMap::new(), 1, exp))
            .unwrap()
            .to_compact_bytes();
        assert_eq!(direct, model);
    }
}
