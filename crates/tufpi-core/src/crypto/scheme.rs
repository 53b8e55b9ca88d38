//! What both sides share: the signature schemes and the errors.

use std::fmt;

/// Errors from key parsing, signing and signature verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The keytype/scheme combination is not one tufpi supports.
    #[error("unsupported key type/scheme combination: keytype {keytype:?}, scheme {scheme:?}")]
    Unsupported {
        /// The key type as given.
        keytype: String,
        /// The signature scheme as given.
        scheme: String,
    },
    /// A hex string (signature or ed25519 public key) could not be decoded.
    #[error("invalid hex: {0}")]
    InvalidHex(String),
    /// The public key value is malformed or does not fit the scheme.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// The private key could not be parsed or is of an unsupported kind.
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    /// The signature bytes are malformed for the scheme (length, DER, range).
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signature is well-formed but does not verify over the message with the key.
    #[error("signature does not verify")]
    BadSignature,
    /// Signing, key generation or key encoding failed.
    #[error("signing key operation failed: {0}")]
    Signing(String),
}

/// Signature schemes tufpi knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// "ed25519": pure Ed25519.
    Ed25519,
    /// "ecdsa-sha2-nistp256": ECDSA on P-256 with SHA-256, DER signatures.
    EcdsaP256,
    /// "ecdsa-sha2-nistp384": ECDSA on P-384 with SHA-384, DER signatures.
    EcdsaP384,
    /// "rsassa-pss-sha256": RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    RsaPssSha256,
}

impl Scheme {
    /// All schemes, in a fixed order.
    pub const ALL: [Scheme; 4] = [
        Scheme::Ed25519,
        Scheme::EcdsaP256,
        Scheme::EcdsaP384,
        Scheme::RsaPssSha256,
    ];

    /// Parse a scheme name as written in TUF metadata.
    pub fn from_name(scheme: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == scheme)
    }

    /// The scheme name as written in TUF metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::EcdsaP256 => "ecdsa-sha2-nistp256",
            Scheme::EcdsaP384 => "ecdsa-sha2-nistp384",
            Scheme::RsaPssSha256 => "rsassa-pss-sha256",
        }
    }

    /// The keytype securesystemslib writes for this scheme today.
    pub fn keytype(&self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::EcdsaP256 | Scheme::EcdsaP384 => "ecdsa",
            Scheme::RsaPssSha256 => "rsa",
        }
    }

    /// Whether `keytype` may be paired with this scheme (incl. legacy ecdsa keytypes).
    pub fn accepts_keytype(&self, keytype: &str) -> bool {
        keytype == self.keytype() || (keytype == self.name() && self.keytype() == "ecdsa")
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
