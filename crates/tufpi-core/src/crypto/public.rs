//! The public side: verifying a signature with a key as it sits in TUF metadata.

use p256::ecdsa::signature::Verifier;
use pkcs8::der::Decode;
use rsa::BigUint;
use sha2::{Digest, Sha256};

use super::encoding::{
    pem_decode, py_fromhex, OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384, OID_RSA,
};
use super::scheme::{CryptoError, Scheme};

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
pub(super) enum PublicKey {
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
pub(super) fn rsa_public(n_be: &[u8], e_be: &[u8]) -> Result<PublicKey, CryptoError> {
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
pub(super) fn verify_rsa_pss_sha256_auto(
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
