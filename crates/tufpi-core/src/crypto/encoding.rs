//! Key and signature encodings both sides read: algorithm OIDs, PEM blocks, Python-style hex.

use pkcs8::ObjectIdentifier;

use super::scheme::CryptoError;

pub(super) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
pub(super) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(super) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(super) const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(super) const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Decode hex like python's `bytes.fromhex`: pairs of hex digits in either case, with ASCII
/// whitespace allowed between (not inside) pairs.
pub(super) fn py_fromhex(s: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
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
pub(super) fn pem_decode(text: &str, labels: &[&str]) -> Result<(String, Vec<u8>), String> {
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
