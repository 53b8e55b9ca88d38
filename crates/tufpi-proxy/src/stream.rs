//! Verifying a target from a file without holding it in memory: an incremental check of the
//! signed length and every signed hash, and a response body that streams a file already
//! verified, hashing it again on the way (length and one signed hash) and holding back its
//! last chunk until that second check passes too (a file changed in between ends in a cut-off response, never in a
//! complete one with unverified bytes).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;
use tufpi_core::hashes::Hasher;
use tufpi_core::metadata::TargetFile;

/// Bytes read (and sent) at a time.
const CHUNK: usize = 256 * 1024;

/// What a check does about the BLAKE2b-256 beyond the signed hashes (a signed
/// `blake2b-256` is always checked as signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blake2b256 {
    /// Nothing: only the signed hashes.
    Ignore,
    /// Compute it (one more hasher in the same pass) and report it.
    Observe,
    /// Require it to be this digest (lower-case hex), as a signed hash, and report it: how
    /// the digest a cache file's name records is held to the file's bytes.
    Expect(String),
}

/// The BLAKE2b-256 algorithm name, as TUF metadata spells it.
pub const BLAKE2B_256: &str = "blake2b-256";

/// An incremental check of a target's signed length and every signed hash (an algorithm we
/// do not know fails closed, as `tufpi_core::hashes` does), and optionally of its
/// BLAKE2b-256 (`Blake2b256`).
pub struct Check {
    length: u64,
    seen: u64,
    /// Algorithm, the digest it must have (`None`: observed only), hasher.
    hashes: Vec<(String, Option<String>, Hasher)>,
    /// A BLAKE2b-256 that must match on top of the signed hashes.
    expect_b2: Option<String>,
}

impl Check {
    /// A check against `info`, or why it cannot be made.
    pub fn new(info: &TargetFile) -> Result<Check, String> {
        Check::with_blake2b_256(info, Blake2b256::Ignore)
    }

    /// A check against `info` that also observes or expects the BLAKE2b-256.
    pub fn with_blake2b_256(info: &TargetFile, b2: Blake2b256) -> Result<Check, String> {
        let mut hashes = info
            .hashes
            .iter()
            .map(|(alg, want)| {
                Hasher::new(alg)
                    .map(|h| (alg.clone(), Some(want.clone()), h))
                    .ok_or_else(|| format!("unsupported hash algorithm {alg:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let observe = b2 != Blake2b256::Ignore;
        if observe && !info.hashes.contains_key(BLAKE2B_256) {
            if let Some(h) = Hasher::new(BLAKE2B_256) {
                hashes.push((BLAKE2B_256.to_string(), None, h));
            }
        }
        Ok(Check {
            length: info.length,
            seen: 0,
            hashes,
            expect_b2: match b2 {
                Blake2b256::Expect(d) => Some(d),
                _ => None,
            },
        })
    }

    /// A check of the length and one signed hash (sha256 if listed, else the first): enough
    /// to tell that bytes which passed the full check have not changed since.
    pub fn recheck(info: &TargetFile) -> Result<Check, String> {
        let mut one = info.clone();
        let keep = one
            .hashes
            .get_key_value("sha256")
            .or_else(|| one.hashes.iter().next())
            .map(|(a, h)| (a.clone(), h.clone()));
        one.hashes = keep.into_iter().collect();
        Check::new(&one)
    }

    /// Feed the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.seen += data.len() as u64;
        for (_, _, h) in &mut self.hashes {
            h.update(data);
        }
    }

    /// Whether everything fed is exactly the signed target (and has the expected
    /// BLAKE2b-256, if one was given). On success, the BLAKE2b-256 of the bytes if it was
    /// computed (signed, observed or expected), in lower-case hex.
    pub fn finish(self) -> Result<Option<String>, String> {
        if self.seen != self.length {
            return Err(format!(
                "length {} does not match expected {}",
                self.seen, self.length
            ));
        }
        let mut b2 = None;
        for (alg, want, h) in self.hashes {
            let got = h.finish_hex();
            if let Some(want) = want {
                if got != want {
                    return Err(format!("{alg} hash mismatch: expected {want}, got {got}"));
                }
            }
            if alg == BLAKE2B_256 {
                b2 = Some(got);
            }
        }
        if let Some(want) = self.expect_b2 {
            if b2.as_deref() != Some(want.as_str()) {
                return Err(format!(
                    "{BLAKE2B_256} hash mismatch: expected {want}, got {}",
                    b2.as_deref().unwrap_or("none")
                ));
            }
        }
        Ok(b2)
    }
}

/// Check `data` against `info` (and the BLAKE2b-256 as `b2` says) in one pass; on success,
/// the BLAKE2b-256 if computed (`Check::finish`).
pub fn verify_bytes(
    data: &[u8],
    info: &TargetFile,
    b2: Blake2b256,
) -> Result<Option<String>, String> {
    let mut check = Check::with_blake2b_256(info, b2)?;
    check.update(data);
    check.finish()
}

/// Read `file` from its start to its end through `check`, chunk by chunk, handing each chunk
/// to `each`; stops early (returning `Ok(false)`) when `each` does.
fn read_through(
    file: &mut File,
    check: &mut Check,
    mut each: impl FnMut(Bytes) -> bool,
) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(0))?;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        buf.truncate(n);
        check.update(&buf);
        if check.seen > check.length {
            // Longer than signed: no need to read on.
            return Ok(true);
        }
        if !each(Bytes::from(buf)) {
            return Ok(false);
        }
    }
}

/// Check the whole of `file` against `info` (and the BLAKE2b-256 as `b2` says; blocking);
/// on success, the BLAKE2b-256 if computed (`Check::finish`).
pub fn verify_file(
    file: &mut File,
    info: &TargetFile,
    b2: Blake2b256,
) -> Result<Option<String>, String> {
    let mut check = Check::with_blake2b_256(info, b2)?;
    read_through(file, &mut check, |_| true).map_err(|e| format!("reading: {e}"))?;
    check.finish()
}

/// A response body streaming a verified file (see the module doc).
pub struct VerifiedBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    length: u64,
}

impl VerifiedBody {
    /// Stream `file`, which `verify_file` has just passed against `info`. `what` names it in
    /// the error if the second check fails. Must be called within a tokio runtime.
    pub fn new(mut file: File, info: &TargetFile, what: String) -> VerifiedBody {
        let (tx, rx) = mpsc::channel(4);
        let length = info.length;
        let check = Check::recheck(info);
        tokio::task::spawn_blocking(move || {
            let fail = |msg: String| {
                tracing::warn!("{what}: {msg}; the response is cut off");
                let _ = tx.blocking_send(Err(std::io::Error::other(msg)));
            };
            let mut check = match check {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let mut held: Option<Bytes> = None;
            let sent = read_through(&mut file, &mut check, |chunk| match held.replace(chunk) {
                Some(prev) => tx.blocking_send(Ok(prev)).is_ok(),
                None => true,
            });
            match sent {
                Ok(false) => {} // the client went away
                Err(e) => fail(format!("reading the cached file: {e}")),
                Ok(true) => match check.finish() {
                    Ok(_) => {
                        if let Some(last) = held {
                            let _ = tx.blocking_send(Ok(last));
                        }
                    }
                    Err(e) => fail(format!("changed while being served: {e}")),
                },
            }
        });
        VerifiedBody { rx, length }
    }
}

impl hyper::body::Body for VerifiedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;
    use tufpi_core::hashes::digest_hex;

    fn info_for(data: &[u8], algs: &[&str]) -> TargetFile {
        let hashes: BTreeMap<String, String> = algs
            .iter()
            .map(|a| (a.to_string(), digest_hex(a, data).unwrap()))
            .collect();
        TargetFile::new(data.len() as u64, hashes)
    }

    fn temp_with(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(data).unwrap();
        let f = File::open(t.path()).unwrap();
        (t, f)
    }

    #[test]
    fn incremental_check_agrees_with_core() {
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let info = info_for(&data, &tufpi_core::hashes::ALGORITHMS);
        let (_t, mut f) = temp_with(&data);
        assert_eq!(
            verify_file(&mut f, &info, Blake2b256::Ignore),
            Ok(Some(digest_hex("blake2b-256", &data).unwrap()))
        );
        let mut bad = data.clone();
        bad[CHUNK + 1] ^= 1;
        let (_t2, mut f2) = temp_with(&bad);
        assert!(verify_file(&mut f2, &info, Blake2b256::Ignore)
            .unwrap_err()
            .contains("hash mismatch"));
        let (_t3, mut f3) = temp_with(&data[..10]);
        assert!(verify_file(&mut f3, &info, Blake2b256::Ignore)
            .unwrap_err()
            .contains("length 10"));
        let mut unknown = info.clone();
        unknown.hashes.insert("md5".into(), "00".into());
        assert!(verify_file(&mut f, &unknown, Blake2b256::Ignore)
            .unwrap_err()
            .contains("unsupported"));
    }

    #[test]
    fn the_blake2b_256_is_observed_or_expected_in_the_same_pass() {
        let data: Vec<u8> = (0..(CHUNK + 3)).map(|i| (i % 7) as u8).collect();
        let b2 = digest_hex("blake2b-256", &data).unwrap();
        let other = digest_hex("blake2b-256", b"other").unwrap();
        let sha = info_for(&data, &["sha256"]);
        let (_t, mut f) = temp_with(&data);
        // sha256 alone signed: nothing computed unless asked.
        assert_eq!(verify_file(&mut f, &sha, Blake2b256::Ignore), Ok(None));
        assert_eq!(
            verify_file(&mut f, &sha, Blake2b256::Observe),
            Ok(Some(b2.clone()))
        );
        assert_eq!(
            verify_bytes(&data, &sha, Blake2b256::Expect(b2.clone())),
            Ok(Some(b2.clone()))
        );
        // An expected digest the bytes do not have fails the check, though sha256 matches.
        let e = verify_file(&mut f, &sha, Blake2b256::Expect(other.clone())).unwrap_err();
        assert!(e.contains("blake2b-256 hash mismatch"), "{e}");
        // Observing never turns a failing signed check into a pass, and reports nothing.
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert!(verify_bytes(&bad, &sha, Blake2b256::Observe).is_err());
        // A signed blake2b-256 is checked as signed, reported, and must agree with the
        // expected one too.
        let both = info_for(&data, &["sha256", "blake2b-256"]);
        assert_eq!(
            verify_bytes(&data, &both, Blake2b256::Observe),
            Ok(Some(b2.clone()))
        );
        assert!(verify_bytes(&data, &both, Blake2b256::Expect(other)).is_err());
        let mut wrong = both.clone();
        wrong.hashes.insert("blake2b-256".into(), "0".repeat(64));
        assert!(verify_bytes(&data, &wrong, Blake2b256::Observe).is_err());
    }

    async fn collect(mut body: VerifiedBody) -> (Vec<u8>, bool) {
        use hyper::body::Body as _;
        use std::future::poll_fn;
        let mut out = Vec::new();
        loop {
            let frame = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                None => return (out, true),
                Some(Ok(f)) => out.extend_from_slice(f.data_ref().unwrap()),
                Some(Err(_)) => return (out, false),
            }
        }
    }

    #[tokio::test]
    async fn streams_verified_and_cuts_off_changed_files() {
        let data: Vec<u8> = (0..(2 * CHUNK + 5)).map(|i| (i % 13) as u8).collect();
        let info = info_for(&data, &["sha256"]);
        let (_t, f) = temp_with(&data);
        let (got, ok) = collect(VerifiedBody::new(f, &info, "t".into())).await;
        assert!(ok && got == data);
        // Changed after the first check: the last chunk never goes out.
        let mut bad = data.clone();
        bad[0] ^= 1;
        let (_t2, f2) = temp_with(&bad);
        let (got, ok) = collect(VerifiedBody::new(f2, &info, "t".into())).await;
        assert!(!ok && got.len() < data.len());
        // A single-chunk file that changed: not one byte.
        let small = b"abc".to_vec();
        let (_t3, f3) = temp_with(b"abd");
        let (got, ok) = collect(VerifiedBody::new(
            f3,
            &info_for(&small, &["sha256"]),
            "t".into(),
        ))
        .await;
        assert!(!ok && got.is_empty());
    }
}
