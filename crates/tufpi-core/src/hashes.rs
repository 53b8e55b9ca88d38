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

/// Lower-case hex digest of `data` with `algorithm`, or `None` if unknown.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Option<String> {
    Some(match algorithm {
        "sha224" => hex::encode(Sha224::digest(data)),
        "sha256" => hex::encode(Sha256::digest(data)),
        "sha384" => hex::encode(Sha384::digest(data)),
        "sha512" => hex::encode(Sha512::digest(data)),
        "blake2b-256" => hex::encode(Blake2b::<U32>::digest(data)),
        "blake2b" | "blake2b-512" => hex::encode(Blake2b512::digest(data)),
        _ => return None,
    })
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
