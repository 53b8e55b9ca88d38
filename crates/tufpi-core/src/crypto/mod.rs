//! Keys and signatures, byte-compatible with python securesystemslib 1.6 (`SSlibKey` /
//! `CryptoSigner`): ed25519, ECDSA P-256 / P-384 and RSASSA-PSS-SHA256.
//!
//! Public key values are as they sit in TUF metadata `keyval.public`: lowercase hex of the raw
//! key for ed25519, a PEM SubjectPublicKeyInfo for ecdsa and rsa. Signatures are hex strings.
//!
//! `public` verifies (all a client needs), `private` signs; `scheme` holds what both share
//! and `encoding` the key and signature encodings both read.

mod encoding;
mod private;
mod public;
mod scheme;

pub use private::{PrivateKey, RSA_GENERATE_BITS};
pub use public::verify_signature;
pub use scheme::{CryptoError, Scheme};

#[cfg(test)]
mod tests;
