//! The private side: signing keys (generated or loaded from PEM), their public parts and
//! signatures.

use std::fmt;

use ed25519_dalek::pkcs8::KeypairBytes;
use p256::ecdsa::signature::Signer;
use pkcs8::der::Decode;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::OsRng;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use spki::EncodePublicKey;

use super::encoding::{pem_decode, OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384, OID_RSA};
use super::scheme::{CryptoError, Scheme};

/// Size in bits of RSA keys made by [`PrivateKey::generate`] (securesystemslib's default).
pub const RSA_GENERATE_BITS: usize = 3072;

#[derive(Clone)]
pub(super) enum Inner {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<RsaPrivateKey>),
}

/// A private signing key.
#[derive(Clone)]
pub struct PrivateKey {
    pub(super) inner: Inner,
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
