//! File hashes as TUF metadata lists them (`sha256`, `sha512`, `blake2b-256`, …).
//! Every listed algorithm must be known and match: an unknown one fails closed.

use std::collections::BTreeMap;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest as _};
use sha2::{Sha224, Sha256, Sha384, Sha512};

/// Why data does not match its listed length or hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The byte count differs.
    #[error("length {actual} does not match expected {expected}")]
    Length {
        /// Listed length.
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// A digest differs.
    #[error("{algorithm} hash mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// Algorithm name.
        algorithm: String,
        /// Listed digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// An algorithm we do not implement (fails closed, as python-tuf).
    #[error("unsupported hash algorithm {0:?}")]
    Unsupported(String),
}

/// Every algorithm name `Hasher::new` knows (`blake2b` and `blake2b-512` are one algorithm).
pub const ALGORITHMS: [&str; 7] = [
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "blake2b-256",
    "blake2b",
    "blake2b-512",
];

/// An incremental digest with one of the algorithms TUF metadata lists: the one table of
/// algorithm names in the workspace.
#[derive(Clone)]
pub struct Hasher(Inner);

#[derive(Clone)]
enum Inner {
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
    Blake2b256(Blake2b<U32>),
    Blake2b512(Blake2b512),
}

impl Hasher {
    /// A hasher for `algorithm` (`sha224`, `sha256`, `sha384`, `sha512`, `blake2b-256`,
    /// `blake2b`/`blake2b-512`), or `None` if unknown.
    pub fn new(algorithm: &str) -> Option<Hasher> {
        Some(Hasher(match algorithm {
            "sha224" => Inner::Sha224(Sha224::new()),
            "sha256" => Inner::Sha256(Sha256::new()),
            "sha384" => Inner::Sha384(Sha384::new()),
            "sha512" => Inner::Sha512(Sha512::new()),
            "blake2b-256" => Inner::Blake2b256(Blake2b::<U32>::new()),
            "blake2b" | "blake2b-512" => Inner::Blake2b512(Blake2b512::new()),
            _ => return None,
        }))
    }

    /// Feed the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Sha224(h) => h.update(data),
            Inner::Sha256(h) => h.update(data),
            Inner::Sha384(h) => h.update(data),
            Inner::Sha512(h) => h.update(data),
            Inner::Blake2b256(h) => h.update(data),
            Inner::Blake2b512(h) => h.update(data),
        }
    }

    /// The lower-case hex digest of everything fed.
    pub fn finish_hex(self) -> String {
        match self.0 {
            Inner::Sha224(h) => hex::encode(h.finalize()),
            Inner::Sha256(h) => hex::encode(h.finalize()),
            Inner::Sha384(h) => hex::encode(h.finalize()),
            Inner::Sha512(h) => hex::encode(h.finalize()),
            Inner::Blake2b256(h) => hex::encode(h.finalize()),
            Inner::Blake2b512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Lower-case hex digest of `data` with `algorithm`, or `None` if unknown.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Option<String> {
    let mut h = Hasher::new(algorithm)?;
    h.update(data);
    Some(h.finish_hex())
}

/// Check `data` against an optional length and optional hashes.
pub fn verify_length_and_hashes(
    data: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), HashError> {
    if let Some(expected) = length {
        let actual = data.len() as u64;
        if actual != expected {
            return Err(HashError::Length { expected, actual });
        }
    }
    for (algorithm, expected) in hashes.into_iter().flatten() {
        let actual =
            digest_hex(algorithm, data).ok_or_else(|| HashError::Unsupported(algorithm.clone()))?;
        // Exact comparison with the lower-case hex digest, as python-tuf does.
        if actual != *expected {
            return Err(HashError::Mismatch {
                algorithm: algorithm.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_matches_one_shot() {
        for alg in ALGORITHMS {
            let mut h = Hasher::new(alg).unwrap();
            h.update(b"a");
            h.update(b"");
            h.update(b"bc");
            assert_eq!(h.finish_hex(), digest_hex(alg, b"abc").unwrap(), "{alg}");
        }
        assert!(Hasher::new("md5").is_none());
        assert_eq!(digest_hex("blake2b", b"").unwrap().len(), 128);
        assert_eq!(digest_hex("sha224", b"").unwrap().len(), 56);
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            digest_hex("sha256", b"abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest_hex("blake2b-256", b"abc").unwrap(),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
        let mut h = BTreeMap::new();
        h.insert("sha256".to_string(), digest_hex("sha256", b"abc").unwrap());
        assert!(verify_length_and_hashes(b"abc", Some(3), Some(&h)).is_ok());
        assert!(matches!(
            verify_length_and_hashes(b"abd", Some(3), Some(&h)),
            Err(HashError::Mismatch { .. })
        ));
        assert!(matches!(
            verify_length_and_hashes(b"abc", Some(4), None),
            Err(HashError::Length { .. })
        ));
        h.insert("md5".into(), "00".into());
        assert_eq!(
            verify_length_and_hashes(b"abc", None, Some(&h)),
            Err(HashError::Unsupported("md5".into()))
        );
    }
}
