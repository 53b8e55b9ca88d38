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
mod tests;
