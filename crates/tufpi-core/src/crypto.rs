//! Keys and signatures, byte-compatible with python securesystemslib 1.6 (`SSlibKey` /
//! `CryptoSigner`): ed25519, ECDSA P-256 / P-384 and RSASSA-PSS-SHA256.
//!
//! Public key values are as they sit in TUF metadata `keyval.public`: lowercase hex of the raw
//! key for ed25519, a PEM SubjectPublicKeyInfo for ecdsa and rsa. Signatures are hex strings.

use std::fmt;

use ed25519_dalek::pkcs8::KeypairBytes;
use p256::ecdsa::signature::{Signer, Verifier};
use pkcs8::der::Decode;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding, ObjectIdentifier};
use rand_core::OsRng;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{BigUint, RsaPrivateKey};
use sha2::{Digest, Sha256};
use spki::EncodePublicKey;

const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Size in bits of RSA keys made by [`PrivateKey::generate`] (securesystemslib's default).
pub const RSA_GENERATE_BITS: usize = 3072;

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

/// Verify `sig_hex` (hex-encoded signature as in TUF metadata) over `msg` with a public key as it sits in TUF metadata.
///
/// Hex is decoded like python's `bytes.fromhex` (either case, ASCII whitespace between bytes).
pub fn verify_signature(
    keytype: &str,
    scheme: &str,
    public: &str,
    sig_hex: &str,
    msg: &[u8],
) -> Result<(), CryptoError> {
    let s = Scheme::from_name(scheme)
        .filter(|s| s.accepts_keytype(keytype))
        .ok_or_else(|| CryptoError::Unsupported {
            keytype: keytype.into(),
            scheme: scheme.into(),
        })?;
    let sig = py_fromhex(sig_hex, "signature")?;
    let key = match s {
        Scheme::Ed25519 => parse_ed25519_hex(public)?,
        _ => parse_public_pem(public)?,
    };
    let der_err = |_| CryptoError::MalformedSignature(format!("not a DER {s} signature"));
    let bad_sig = |_| CryptoError::BadSignature;
    match (s, key) {
        (Scheme::Ed25519, PublicKey::Ed25519(vk)) => {
            let sig = ed25519_dalek::Signature::from_slice(&sig).map_err(|_| {
                CryptoError::MalformedSignature(format!("ed25519 signature is {} bytes", sig.len()))
            })?;
            // Plain cofactorless verification (canonical s, R compared as bytes), like OpenSSL.
            vk.verify(msg, &sig).map_err(bad_sig)
        }
        (Scheme::EcdsaP256, PublicKey::P256(vk)) => {
            let sig = p256::ecdsa::Signature::from_der(&sig).map_err(der_err)?;
            vk.verify(msg, &sig).map_err(bad_sig) // high-S accepted, like OpenSSL
        }
        (Scheme::EcdsaP384, PublicKey::P384(vk)) => {
            let sig = p384::ecdsa::Signature::from_der(&sig).map_err(der_err)?;
            vk.verify(msg, &sig).map_err(bad_sig)
        }
        (Scheme::RsaPssSha256, PublicKey::Rsa { n, e }) => {
            verify_rsa_pss_sha256_auto(&n, &e, &sig, msg)
        }
        (_, key) => {
            let what = match key {
                PublicKey::Ed25519(_) => "ed25519",
                PublicKey::P256(_) => "EC P-256",
                PublicKey::P384(_) => "EC P-384",
                PublicKey::Rsa { .. } => "RSA",
            };
            Err(CryptoError::InvalidPublicKey(format!(
                "{what} key does not fit scheme {s}"
            )))
        }
    }
}

/// A parsed public key.
enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Rsa { n: BigUint, e: BigUint },
}

/// Parse an ed25519 keyval.public: hex of the 32-byte raw key.
fn parse_ed25519_hex(public: &str) -> Result<PublicKey, CryptoError> {
    let raw = py_fromhex(public, "public key")?;
    let raw: [u8; 32] = raw.try_into().map_err(|v: Vec<u8>| {
        CryptoError::InvalidPublicKey(format!("ed25519 key is {} bytes, want 32", v.len()))
    })?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw)
        .map(PublicKey::Ed25519)
        .map_err(|_| CryptoError::InvalidPublicKey("ed25519 key is not a curve point".into()))
}

/// Parse a PEM public key like `cryptography.load_pem_public_key`: the first PEM block must be a
/// SubjectPublicKeyInfo ("PUBLIC KEY") or a PKCS#1 RSA key ("RSA PUBLIC KEY").
fn parse_public_pem(pem: &str) -> Result<PublicKey, CryptoError> {
    let bad = |m: String| CryptoError::InvalidPublicKey(m);
    let (label, der) = pem_decode(pem, &[]).map_err(bad)?;
    match label.as_str() {
        "RSA PUBLIC KEY" => {
            let k = rsa::pkcs1::RsaPublicKey::from_der(&der)
                .map_err(|e| bad(format!("bad PKCS#1 RSA public key: {e}")))?;
            rsa_public(k.modulus.as_bytes(), k.public_exponent.as_bytes())
        }
        "PUBLIC KEY" => {
            let info = spki::SubjectPublicKeyInfoRef::from_der(&der)
                .map_err(|e| bad(format!("bad SubjectPublicKeyInfo: {e}")))?;
            let bits = info
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| bad("public key bit string has unused bits".into()))?;
            match info.algorithm.oid {
                OID_RSA => {
                    let k = rsa::pkcs1::RsaPublicKey::from_der(bits)
                        .map_err(|e| bad(format!("bad RSA public key: {e}")))?;
                    rsa_public(k.modulus.as_bytes(), k.public_exponent.as_bytes())
                }
                OID_EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
                    Ok(OID_P256) => p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                        .map(PublicKey::P256)
                        .map_err(|_| bad("invalid P-256 point".into())),
                    Ok(OID_P384) => p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                        .map(PublicKey::P384)
                        .map_err(|_| bad("invalid P-384 point".into())),
                    Ok(other) => Err(bad(format!("unsupported EC curve {other}"))),
                    Err(_) => Err(bad("EC key without a named curve".into())),
                },
                OID_ED25519 => Err(bad("ed25519 keys are hex, not PEM, in TUF metadata".into())),
                other => Err(bad(format!("unsupported public key algorithm {other}"))),
            }
        }
        other => Err(bad(format!("PEM block is {other:?}, want \"PUBLIC KEY\""))),
    }
}

/// Validate RSA public parameters with OpenSSL's limits for the public operation.
fn rsa_public(n_be: &[u8], e_be: &[u8]) -> Result<PublicKey, CryptoError> {
    let (n, e) = (BigUint::from_bytes_be(n_be), BigUint::from_bytes_be(e_be));
    let bad = |m: &str| Err(CryptoError::InvalidPublicKey(m.to_string()));
    if n.bits() > 16384 {
        return bad("RSA modulus larger than 16384 bits");
    }
    if n.bits() < 2 || !matches!(n_be.last(), Some(b) if b & 1 == 1) {
        return bad("RSA modulus must be odd and greater than 1");
    }
    if e >= n || (n.bits() > 3072 && e.bits() > 64) {
        return bad("bad RSA public exponent");
    }
    Ok(PublicKey::Rsa { n, e })
}

/// RSASSA-PSS-VERIFY with SHA-256/MGF1-SHA-256, recovering the salt length from the
/// encoding (OpenSSL's `RSA_PSS_SALTLEN_AUTO`, which securesystemslib verifies with).
fn verify_rsa_pss_sha256_auto(
    n: &BigUint,
    e: &BigUint,
    sig: &[u8],
    msg: &[u8],
) -> Result<(), CryptoError> {
    const H_LEN: usize = 32;
    let mod_bits = n.bits();
    let k = mod_bits.div_ceil(8);
    if sig.len() > k {
        return Err(CryptoError::MalformedSignature(format!(
            "RSA signature is {} bytes, longer than the {k}-byte modulus",
            sig.len()
        )));
    }
    let s = BigUint::from_bytes_be(sig);
    if &s >= n {
        return Err(CryptoError::MalformedSignature(
            "RSA signature not below the modulus".into(),
        ));
    }
    // Too small a key to hold any PSS encoding: nothing can verify (OpenSSL fails too).
    if k < H_LEN + 3 {
        return Err(CryptoError::BadSignature);
    }
    let m = s.modpow(e, n).to_bytes_be();
    let mut em_full = vec![0u8; k];
    if m.len() > k {
        return Err(CryptoError::BadSignature);
    }
    em_full[k - m.len()..].copy_from_slice(&m);

    // emBits = modBits - 1; bits of the first byte above emBits must be zero.
    let ms_bits = (mod_bits - 1) & 7;
    if u32::from(em_full[0]) & (0xff_u32 << ms_bits) & 0xff != 0 {
        return Err(CryptoError::BadSignature);
    }
    let em = if ms_bits == 0 {
        &em_full[1..]
    } else {
        &em_full[..]
    };
    let em_len = em.len();
    if em_len < H_LEN + 2 || em[em_len - 1] != 0xbc {
        return Err(CryptoError::BadSignature);
    }
    let db_len = em_len - H_LEN - 1;
    let (masked_db, h) = (&em[..db_len], &em[db_len..em_len - 1]);
    let mut db = mgf1_sha256(h, db_len);
    for (d, m) in db.iter_mut().zip(masked_db) {
        *d ^= m;
    }
    if ms_bits != 0 {
        db[0] &= 0xff >> (8 - ms_bits);
    }
    let Some(one) = db.iter().position(|&b| b != 0) else {
        return Err(CryptoError::BadSignature);
    };
    if db[one] != 0x01 {
        return Err(CryptoError::BadSignature);
    }
    let salt = &db[one + 1..];
    let m_hash = Sha256::digest(msg);
    let h2 = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    if h2[..] == *h {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(
            &Sha256::new()
                .chain_update(seed)
                .chain_update(counter.to_be_bytes())
                .finalize(),
        );
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// Decode hex like python's `bytes.fromhex`: pairs of hex digits in either case, with ASCII
/// whitespace allowed between (not inside) pairs.
fn py_fromhex(s: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    fn val(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        match (val(b[i]), b.get(i + 1).copied().and_then(val)) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            (None, _) => return Err(hex_err(what, i)),
            (Some(_), None) => return Err(hex_err(what, i + 1)),
        }
        i += 2;
    }
}

fn hex_err(what: &'static str, pos: usize) -> CryptoError {
    CryptoError::InvalidHex(format!("non-hexadecimal digit in {what} at position {pos}"))
}

/// Decode the first PEM block in `text` (if `labels` is empty) or the first whose label is in
/// `labels`. Lenient like `cryptography`: surrounding text, any whitespace and line width.
fn pem_decode(text: &str, labels: &[&str]) -> Result<(String, Vec<u8>), String> {
    let mut rest = text;
    loop {
        let i = rest
            .find("-----BEGIN ")
            .ok_or("no suitable PEM block found")?;
        let (label, after) = rest[i + 11..]
            .split_once("-----")
            .ok_or("bad PEM BEGIN line")?;
        rest = after;
        if !labels.is_empty() && !labels.contains(&label) {
            continue;
        }
        let end = after
            .find(&format!("-----END {label}-----"))
            .ok_or_else(|| format!("PEM block {label:?} has no END line"))?;
        let b64: String = after[..end].split_ascii_whitespace().collect();
        if !b64.is_ascii() {
            return Err(format!("PEM block {label:?} is not base64"));
        }
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .flat_map(std::str::from_utf8)
            .collect();
        let pem = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        );
        let (_, der) = pkcs8::der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| format!("bad PEM block {label:?}: {e}"))?;
        return Ok((label.to_string(), der));
    }
}

#[derive(Clone)]
enum Inner {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<RsaPrivateKey>),
}

/// A private signing key.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Inner,
    public: String,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("scheme", &self.scheme())
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn signing_err(e: impl fmt::Display) -> CryptoError {
    CryptoError::Signing(e.to_string())
}

impl PrivateKey {
    fn new(inner: Inner) -> Result<PrivateKey, CryptoError> {
        let lf = LineEnding::LF;
        let public = match &inner {
            Inner::Ed25519(k) => Ok(hex::encode(k.verifying_key().as_bytes())),
            Inner::P256(k) => k.verifying_key().to_public_key_pem(lf),
            Inner::P384(k) => k.verifying_key().to_public_key_pem(lf),
            Inner::Rsa(k) => k.to_public_key().to_public_key_pem(lf),
        };
        Ok(PrivateKey {
            public: public.map_err(signing_err)?,
            inner,
        })
    }

    /// Generate a fresh key for `scheme` (RSA keys are 3072 bits, like securesystemslib).
    pub fn generate(scheme: Scheme) -> Result<PrivateKey, CryptoError> {
        let inner = match scheme {
            Scheme::Ed25519 => Inner::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
            Scheme::EcdsaP256 => Inner::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Scheme::EcdsaP384 => Inner::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
            Scheme::RsaPssSha256 => Inner::Rsa(Box::new(
                RsaPrivateKey::new(&mut OsRng, RSA_GENERATE_BITS).map_err(signing_err)?,
            )),
        };
        PrivateKey::new(inner)
    }

    /// Load an unencrypted private key from PEM: PKCS#8 ("PRIVATE KEY", v1 or v2) holding
    /// ed25519, EC P-256/P-384 or RSA; SEC1 ("EC PRIVATE KEY"); PKCS#1 ("RSA PRIVATE KEY").
    /// The algorithm is detected from the key itself.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, CryptoError> {
        let bad = |m: String| CryptoError::InvalidPrivateKey(m);
        let labels = [
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "RSA PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ];
        let (label, der) = pem_decode(pem, &labels).map_err(bad)?;
        let inner = match label.as_str() {
            "PRIVATE KEY" => {
                let info = pkcs8::PrivateKeyInfo::from_der(&der)
                    .map_err(|e| bad(format!("bad PKCS#8 structure: {e}")))?;
                let err = |e: pkcs8::Error| bad(format!("bad key in PKCS#8: {e}"));
                match info.algorithm.oid {
                    OID_ED25519 => Inner::Ed25519(
                        ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(err)?,
                    ),
                    OID_RSA => {
                        Inner::Rsa(Box::new(RsaPrivateKey::from_pkcs8_der(&der).map_err(err)?))
                    }
                    OID_EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
                        Ok(OID_P256) => {
                            Inner::P256(p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(err)?)
                        }
                        Ok(OID_P384) => {
                            Inner::P384(p384::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(err)?)
                        }
                        Ok(other) => return Err(bad(format!("unsupported EC curve {other}"))),
                        Err(_) => return Err(bad("EC key without a named curve".into())),
                    },
                    other => return Err(bad(format!("unsupported private key algorithm {other}"))),
                }
            }
            "EC PRIVATE KEY" => {
                if let Ok(k) = p256::SecretKey::from_sec1_der(&der) {
                    Inner::P256(k.into())
                } else if let Ok(k) = p384::SecretKey::from_sec1_der(&der) {
                    Inner::P384(k.into())
                } else {
                    return Err(bad("not a SEC1 EC private key on P-256 or P-384".into()));
                }
            }
            "RSA PRIVATE KEY" => Inner::Rsa(Box::new(
                RsaPrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| bad(format!("bad PKCS#1 RSA key: {e}")))?,
            )),
            _ => return Err(bad("encrypted private keys are not supported".into())),
        };
        PrivateKey::new(inner)
    }

    /// Serialize as unencrypted PKCS#8 PEM, as `cryptography` writes it (ed25519 as PKCS#8 v1).
    pub fn to_pkcs8_pem(&self) -> Result<String, CryptoError> {
        let lf = LineEnding::LF;
        let pem = match &self.inner {
            Inner::Ed25519(k) => KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(lf),
            Inner::P256(k) => k.to_pkcs8_pem(lf),
            Inner::P384(k) => k.to_pkcs8_pem(lf),
            Inner::Rsa(k) => k.to_pkcs8_pem(lf),
        };
        Ok(pem.map_err(signing_err)?.to_string())
    }

    /// The signature scheme this key signs with.
    pub fn scheme(&self) -> Scheme {
        match self.inner {
            Inner::Ed25519(_) => Scheme::Ed25519,
            Inner::P256(_) => Scheme::EcdsaP256,
            Inner::P384(_) => Scheme::EcdsaP384,
            Inner::Rsa(_) => Scheme::RsaPssSha256,
        }
    }

    /// (keytype, scheme, public value) as securesystemslib puts it in keyval.public
    pub fn public_parts(&self) -> (&'static str, &'static str, String) {
        let s = self.scheme();
        (s.keytype(), s.name(), self.public.clone())
    }

    /// hex-encoded signature over msg
    pub fn sign_hex(&self, msg: &[u8]) -> Result<String, CryptoError> {
        let sig = match &self.inner {
            Inner::Ed25519(k) => Signer::<ed25519_dalek::Signature>::try_sign(k, msg)
                .map_err(signing_err)?
                .to_vec(),
            Inner::P256(k) => Signer::<p256::ecdsa::Signature>::try_sign(k, msg)
                .map_err(signing_err)?
                .to_der()
                .as_bytes()
                .to_vec(),
            Inner::P384(k) => Signer::<p384::ecdsa::Signature>::try_sign(k, msg)
                .map_err(signing_err)?
                .to_der()
                .as_bytes()
                .to_vec(),
            Inner::Rsa(k) => {
                // Salt length = digest length, as securesystemslib signs.
                let digest = Sha256::digest(msg);
                k.sign_with_rng(&mut OsRng, rsa::Pss::new::<Sha256>(), &digest)
                    .map_err(signing_err)?
            }
        };
        Ok(hex::encode(sig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = br#"{"signed":{"_type":"root","version":1}}"#;

    // Made by securesystemslib 1.6 CryptoSigner.generate_* (private_bytes, keyval.public, sign()).
    const ED_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOm7flIeMo5I1G1b7KCfcZQlyaoOEeuCuY/IMZVk1rRQ\n-----END PRIVATE KEY-----\n";
    const ED_PUB: &str = "b08aefbfb01eacdc446cbbb81b223ba0143dde6558fea1e3fb982185d38aebbb";
    const ED_SIG: &str = "196f46c963e4309fc4e05e8c736fcfe27adbf7149f52e47265d207c739aee6d04ae5a4337a4dcbf956f305b8f2d5b79be497eaa276afc485ebc3d18f07403f0d";
    const P256_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgorpaAWZwmD4iJeJN\n+CKw1zgajyqpUv7Rznab7Cd+P8ShRANCAAQGxh9YY+dooaRY6dR4gqErQuS4GukK\n5OTPcD2jlHPvJsaIx3+vcocSMbES1cn/W9LNvctpXsjwKaihjm39ZR68\n-----END PRIVATE KEY-----\n";
    const P256_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBsYfWGPnaKGkWOnUeIKhK0LkuBrp\nCuTkz3A9o5Rz7ybGiMd/r3KHEjGxEtXJ/1vSzb3LaV7I8CmooY5t/WUevA==\n-----END PUBLIC KEY-----\n";
    const P256_SIG: &str = "3046022100b5a2ed1da4450a3c2ff3f06643ec3f357a739c512d25ebdce19677e8537dc4f0022100dd30af15038f5dc91a55a712619c37c56a70abfde56f9ee5f4afa418bb764a8c";
    const P256_SIG_LOW_S: &str = "3045022100b5a2ed1da4450a3c2ff3f06643ec3f357a739c512d25ebdce19677e8537dc4f0022022cf50e9fc70a237e5aa58ed9e63c83a52764eafc1a7ff9eff0a26aa40ecdac5";
    const P384_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBUwxEeyZYUThMZkZG1\nZXLtN1iBGoZAspzdI2BuTyPBao/nZhwYOgD5XU/BHmFJmsOhZANiAARfMsDG+3eM\nT6FQMyw8RUQHl02wxvkmeA785gld2NRdurs9yH4oTrXUGdwFwzm87ZhVSHff//ZY\n3SkL0/Ihf8SuHg1MqF+kclpbYZNnDC+AO9vBT5Z+eyIQHSgJxllpnN8=\n-----END PRIVATE KEY-----\n";
    const P384_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEXzLAxvt3jE+hUDMsPEVEB5dNsMb5JngO\n/OYJXdjUXbq7Pch+KE611BncBcM5vO2YVUh33//2WN0pC9PyIX/Erh4NTKhfpHJa\nW2GTZwwvgDvbwU+WfnsiEB0oCcZZaZzf\n-----END PUBLIC KEY-----\n";
    const P384_SIG: &str = "3065023100bf6aad9645460fbc1cf68d4ecd28f3d26b74dd6e756e893c898bb19ab72e5dc38d5d6050cabe13b3c47370108c05580802307832b9948f2387d89213a379a26853854208da63e3ffb59d82a289f8b2b81e54182356995bd0094b123c92b595d4f2ae";
    const RSA_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDqEitl8sR13Dx3\n6/20jr1YKzlxy6JW4LitxvXEH/ErtQQQ5Idaq97SMOLrxbe3EhJjkZFyaKYLdYHl\nRf6AucBmUn7QhkqE/vAbM4RwnF8rRd4s5obIJduJet25O5R1IVZyRMrD2gB2ehaM\nsRaQ4d0J48JUNRxH423+qR1W4+w6PSHN3hK7rrS3CogLywTn2p/hvAPlEy/PnoFj\n85wKoateSNcqM32Jhe0/1wqEleSxw8DfE2jftGxIQXILjjC9oqsGaAaz2GRBX5Mr\nsh7Ey3YGKTzOCEGPMMDVc3W1Ubv7SbmHI+BJ5d5S/S2kzvimJ/BxNvMb3j1jmWm+\n5fDam4vRAgMBAAECgf923MMtAhrBvxT10OEEz3dXTpvdLYtCkts1Y9NpxM6zYzit\nW19gq+Z61lhlYgHo9URhS4qQjpPDPei4hNK4i5soWrwLKCavYsaLCZ43kTDCyLgK\nFQZcnNze84WkipzY3hUH8ecFja6ue1D4IPVUnV2hqAcGu/Ggj91LdJVxikxrRacy\nZwjfepAWLTJCyR1lYOJjGVbh5MbvhqoZFb96tbKo6rXXXtC90LWbWXbZHy8X03o3\nvYsY2HLz0UQxrCqxBWWz8mC1oBnClR6M1t7sOzhO6LsUkmsk5kAdAFKfUDj4IlpC\n49oSMhui3uf5eHRV2czDj/EqfHdylfeg53a/qUkCgYEA+yu9vnfDtyKgZj5CsRKE\nL1+eD7GEjjeO3atCUtzy9Op3hmvKRmYMDqrMATVgledj744dMlsnukwPDEyVCspi\nsr7Vb6DTLjnCOuDtP2UXWwSW7a5ecH18ujnGAMcrEPNykIcNlGYdKYW0b7CbqoDn\noVopvVxpcDdRhFyXqCI+UT8CgYEA7pJDUcDwCkBAOJJ9vdBthKmI1Lr5o+Y7wAf0\niwVlgI4tI+2Dfc+GxCamdzJ8IwtW0TrfDXvoLHmz75HNHVs/y4fhM1IHjeLSwGZr\nbaB8r5rq2P2XHHWCBJ0msL+bKIE69QWEWcA+ge7NlOekrQ0E9zvA/SzjzU2nkkEU\n/pKzzu8CgYAJZbWPrsNv0qfVq3arUVoIu7caNzYSbBm4SXQNzZ55c1xNdzL2N1M0\nKUfAs9KNST7/8308KRTvb3EQsLzSzoeq0GED8Cx2ikquEURPHuUkzqMm+WMnKkrE\nXOz/knQWCkW7CpKDft6QcyQxGZZ5ZqFD9C+jmhWH0UoHfb9e1wkl2QKBgQC3HLBr\nCYm0dIhWY6n7jQTidDXAAhsmP8rQo8qBAg1cVMQ09VKduDGaUIgoqSk6xLNIOMWH\nVfloWalQUjp7M9SNZafmeimuL9DPOE1wgWPybRegoVPg1hiLbguKUibHOhmEg02I\njdPsatyEVB/Da2DKWqTQLipTJC1gRm/UzckRJQKBgQCpG5pRTOzbUPKAowMSEJHH\nBCVCPdvR5No/F6sFblxqFGP0Izf4WH/l9mxpadgr+Ye2z5lBZqb6CK+RZi8iySTt\neauG75t10Oti/eMaKWL0TbWPhIgeGPotpSysYD4Hj0Y7XRXu64l3X+VSfti4/wiS\n7J0jwWfrDesOYd/yIB2zGw==\n-----END PRIVATE KEY-----\n";
    const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6hIrZfLEddw8d+v9tI69\nWCs5ccuiVuC4rcb1xB/xK7UEEOSHWqve0jDi68W3txISY5GRcmimC3WB5UX+gLnA\nZlJ+0IZKhP7wGzOEcJxfK0XeLOaGyCXbiXrduTuUdSFWckTKw9oAdnoWjLEWkOHd\nCePCVDUcR+Nt/qkdVuPsOj0hzd4Su660twqIC8sE59qf4bwD5RMvz56BY/OcCqGr\nXkjXKjN9iYXtP9cKhJXkscPA3xNo37RsSEFyC44wvaKrBmgGs9hkQV+TK7IexMt2\nBik8zghBjzDA1XN1tVG7+0m5hyPgSeXeUv0tpM74pifwcTbzG949Y5lpvuXw2puL\n0QIDAQAB\n-----END PUBLIC KEY-----\n";
    const RSA_SIG: &str = "a93a6682394a8ec878d1a094f52fa79f69677b96d92fcf741619d3478d8f79638254a8ab98fe5ac7b6f0371c68778e7b464520597eca25e3da42c35b34a32056f30fb05fcdcad5d239ee7aa9cbaf2c2f5a1750ac7c1d3ce4aeea4f9e2be617ad7b53743f0a70f5ec9a8abf9d67314c4c2a78a38957c59a30146bfedeb2b28bcaa3b4fb1e72f43b88f9e2e53859d0cac86cbf5f7d10b58257a837ccee54f45f012d114a9a585cc50a9d25e82f4d762ccdcb6c30b0105079f7fb8ac314118055762b21a9cbcfa34081c1c0dbf30e7918781da995c8a61fc8274292981554f142884873ef6382b1361bf4c09894e4f75456d43c7be52e0f1e22bee386aa18a0e8ed";
    const RSA_SIG_SALTMAX: &str = "897e22c10e5809ed1ba4c3174fdd7331d496c1856f8331a72e73130b9b87554123c431214f3f91ccaa7057d743cd922a7d382bedbee8cc038abf59ef7fb7da383a726ec2c733aafef8054ca42a6f7056811cfde9ea551cbccf1c8989177af6796caaa9361cba906df267c294140ed3196c25affb1a3a22887fd3e177125417bd87872c8748883041d1d7fbc7c1281f61447fd117b217ff979b9df205719acd3ecf1ab2927daa2ac0ca0b114038db8f007dfc4453fc65b1ae139d69be426861429f8da248f7154cc3e045a544535b1c4ad83cb3aeb4128ad90a2b8ab35fe781dbd4f8c81deba39c7c48143749ba12e7ea081a9634a4b0aafe7c32946cadf331c9";

    const NP256: &str = "ecdsa-sha2-nistp256";
    const NP384: &str = "ecdsa-sha2-nistp384";
    const PSS: &str = "rsassa-pss-sha256";

    fn v(keytype: &str, scheme: &str, public: &str, sig: &str) -> Result<(), CryptoError> {
        verify_signature(keytype, scheme, public, sig, MSG)
    }

    type Vector = (Scheme, &'static str, &'static str, &'static [&'static str]);
    const VECTORS: [Vector; 4] = [
        (Scheme::Ed25519, ED_PRIV, ED_PUB, &[ED_SIG]),
        (
            Scheme::EcdsaP256,
            P256_PRIV,
            P256_PUB,
            &[P256_SIG, P256_SIG_LOW_S],
        ),
        (Scheme::EcdsaP384, P384_PRIV, P384_PUB, &[P384_SIG]),
        (
            Scheme::RsaPssSha256,
            RSA_PRIV,
            RSA_PUB,
            &[RSA_SIG, RSA_SIG_SALTMAX],
        ),
    ];

    #[test]
    fn scheme_names() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
        }
        let kts = Scheme::ALL.map(|s| s.keytype());
        assert_eq!(kts, ["ed25519", "ecdsa", "ecdsa", "rsa"]);
        assert_eq!(Scheme::from_name("rsassa-pss-sha512"), None);
    }

    #[test]
    fn python_made_keys_and_signatures() {
        for (s, priv_pem, public, sigs) in VECTORS {
            let key = PrivateKey::from_pem(priv_pem).unwrap();
            assert_eq!(key.public_parts(), (s.keytype(), s.name(), public.into()));
            assert_eq!(
                key.to_pkcs8_pem().unwrap(),
                priv_pem,
                "as cryptography writes it"
            );
            for sig in sigs {
                v(s.keytype(), s.name(), public, sig).unwrap();
                let tampered = verify_signature(s.keytype(), s.name(), public, sig, b"other");
                assert_eq!(tampered, Err(CryptoError::BadSignature));
            }
        }
    }

    #[test]
    fn round_trip_each_scheme() {
        for s in Scheme::ALL {
            let key = PrivateKey::generate(s).unwrap();
            let other = PrivateKey::generate(s).unwrap();
            let (kt, sc, public) = key.public_parts();
            assert_eq!((kt, sc, key.scheme()), (s.keytype(), s.name(), s));
            let sig = key.sign_hex(MSG).unwrap();
            v(kt, sc, &public, &sig).unwrap();
            let tampered = verify_signature(kt, sc, &public, &sig, b"tampered");
            assert_eq!(tampered, Err(CryptoError::BadSignature));
            let wrong_key = v(kt, sc, &other.public_parts().2, &sig);
            assert_eq!(wrong_key, Err(CryptoError::BadSignature));
            let reloaded = PrivateKey::from_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(reloaded.public_parts(), key.public_parts());
        }
    }

    #[test]
    fn keytypes_curves_and_encodings() {
        v(NP256, NP256, P256_PUB, P256_SIG).unwrap(); // legacy keytypes
        v(NP384, NP384, P384_PUB, P384_SIG).unwrap();
        for (kt, sc) in [
            (NP384, NP256),
            ("rsa", "ed25519"),
            ("ed25519", PSS),
            ("", ""),
        ] {
            let e = v(kt, sc, P256_PUB, P256_SIG).unwrap_err();
            assert!(
                matches!(&e, CryptoError::Unsupported { keytype, scheme } if keytype == kt && scheme == sc)
            );
        }
        let e = v("ecdsa", NP384, P256_PUB, P256_SIG).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid public key: EC P-256 key does not fit scheme {NP384}")
        );
        assert!(v("ecdsa", NP256, P384_PUB, P384_SIG).is_err());
        assert!(v("ecdsa", NP256, RSA_PUB, P256_SIG).is_err());
        assert!(v("rsa", PSS, P256_PUB, RSA_SIG).is_err());
        let raw = p256::ecdsa::Signature::from_der(&hex::decode(P256_SIG).unwrap()).unwrap();
        let raw = hex::encode(raw.to_bytes()); // r||s, not DER
        assert!(matches!(
            v("ecdsa", NP256, P256_PUB, &raw),
            Err(CryptoError::MalformedSignature(_))
        ));
        // Hex like python's bytes.fromhex: any case, whitespace between byte pairs.
        let pairs: Vec<_> = ED_SIG
            .as_bytes()
            .chunks(2)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let spaced = format!(" {}\n", String::from_utf8(pairs.join(&b' ')).unwrap());
        v("ed25519", "ed25519", ED_PUB, &spaced).unwrap();
        for bad in ["a b", "abc", "zz", "é0", "0x00"] {
            assert!(matches!(
                py_fromhex(bad, "x"),
                Err(CryptoError::InvalidHex(_))
            ));
        }
    }

    #[test]
    fn pem_parsing_like_cryptography() {
        let body: String = P256_PUB.lines().filter(|l| !l.starts_with("---")).collect();
        let one_line = format!("-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----");
        let crlf = P256_PUB.replace('\n', "\r\n");
        let no_newline = P256_PUB.trim_end().to_string();
        for pem in [crlf, no_newline, format!("x\n{P256_PUB}y"), one_line] {
            v("ecdsa", NP256, &pem, P256_SIG).unwrap();
        }
        for pem in [
            P256_PUB.replace('=', ""),
            P256_PUB.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
            format!("{}{P256_PUB}", P256_PUB.replace("PUBLIC KEY", "FOO")),
            P256_PUB.replace("-----END PUBLIC KEY-----", ""),
        ] {
            assert!(v("ecdsa", NP256, &pem, P256_SIG).is_err(), "{pem}");
        }
    }

    #[test]
    fn private_key_formats() {
        use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
        let (lf, load) = (LineEnding::LF, |pem: &str| {
            PrivateKey::from_pem(pem).map(|k| k.public_parts().2)
        });
        let Inner::Ed25519(sk) = PrivateKey::from_pem(ED_PRIV).unwrap().inner else {
            panic!()
        };
        let public_key = Some(ed25519_dalek::pkcs8::PublicKeyBytes(
            sk.verifying_key().to_bytes(),
        ));
        let mut v2 = KeypairBytes {
            secret_key: sk.to_bytes(),
            public_key,
        };
        assert_eq!(load(&v2.to_pkcs8_pem(lf).unwrap()).unwrap(), ED_PUB); // PKCS#8 v2
        v2.public_key = Some(ed25519_dalek::pkcs8::PublicKeyBytes([9; 32]));
        assert!(
            load(&v2.to_pkcs8_pem(lf).unwrap()).is_err(),
            "mismatched v2 public key"
        );
        for (priv_pem, public) in [(P256_PRIV, P256_PUB), (P384_PRIV, P384_PUB)] {
            let sec1 = match PrivateKey::from_pem(priv_pem).unwrap().inner {
                Inner::P256(k) => p256::SecretKey::from(k).to_sec1_pem(lf).unwrap(),
                Inner::P384(k) => p384::SecretKey::from(k).to_sec1_pem(lf).unwrap(),
                _ => panic!(),
            };
            // As `openssl ecparam -genkey` writes it: EC PARAMETERS block first.
            let params =
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
            assert_eq!(load(&format!("{params}{}", *sec1)).unwrap(), public);
        }
        let Inner::Rsa(rk) = PrivateKey::from_pem(RSA_PRIV).unwrap().inner else {
            panic!()
        };
        assert_eq!(load(&rk.to_pkcs1_pem(lf).unwrap()).unwrap(), RSA_PUB);
        // PKCS#1 "RSA PUBLIC KEY" verifies too, like load_pem_public_key.
        let pkcs1_public = rk.to_public_key().to_pkcs1_pem(lf).unwrap();
        v("rsa", PSS, &pkcs1_public, RSA_SIG).unwrap();

        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
        let p521 = "-----BEGIN PRIVATE KEY-----\nMBICAQAwEAYHKoZIzj0CAQYFK4EEACM=\n-----END PRIVATE KEY-----";
        let corrupt = P256_PRIV.replace("MIGH", "MIGI");
        for pem in ["", "junk", P256_PUB, enc, p521, &corrupt] {
            assert!(load(pem).is_err(), "{pem}");
        }
        for (_, pem, _, _) in VECTORS {
            (0..pem.len() - 1)
                .step_by(5)
                .for_each(|end| assert!(load(&pem[..end]).is_err()));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut publics = vec![String::new(), "00".into(), "é".into(), "-----BEGIN ".into()];
        let mut sigs = publics.clone();
        for (_, _, public, vector_sigs) in VECTORS {
            for end in (0..public.len()).step_by(3) {
                publics.push(public[..end].to_string());
                publics.push(public[..end].to_string() + "\n-----END PUBLIC KEY-----\n");
            }
            for sig in vector_sigs {
                sigs.extend([sig[2..].to_string(), format!("00{sig}"), format!("{sig}00")]);
                for i in (0..sig.len()).step_by(7) {
                    let flip = if &sig[i..i + 1] == "f" { "0" } else { "f" };
                    sigs.push(format!("{}{flip}{}", &sig[..i], &sig[i + 1..]));
                }
            }
        }
        for s in Scheme::ALL {
            for (public, sig) in publics
                .iter()
                .flat_map(|p| sigs.iter().step_by(3).map(move |s| (p, s)))
            {
                assert!(v(s.keytype(), s.name(), public, sig).is_err());
            }
        }
        for sig in ["ff".repeat(256), "00".repeat(256), String::new()] {
            assert!(v("rsa", PSS, RSA_PUB, &sig).is_err());
        }
        let tiny: [(&[u8], &[u8]); 4] = [
            (&[1], &[1]),
            (&[9; 20], &[3]),
            (&[15; 40], &[1, 0, 1]),
            (&[16], &[3]),
        ];
        for (n, e) in tiny {
            if let Ok(PublicKey::Rsa { n, e }) = rsa_public(n, e) {
                assert!(verify_rsa_pss_sha256_auto(&n, &e, &[1, 2, 3], MSG).is_err());
            }
        }
    }
}
