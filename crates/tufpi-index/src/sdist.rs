//! Reading an uploaded sdist's core metadata: the top-level `NAME-VERSION/PKG-INFO` of a
//! `.tar.gz` (gzip + tar, read as a stream with the decompressed bytes capped; every entry
//! name checked, exactly one top-level `PKG-INFO`) or of a `.zip`, checked like a wheel's
//! `METADATA` ([`crate::wheel`]).

use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use pep440_rs::Version;

use crate::wheel::{self, CoreMetadata, MAX_METADATA};

/// The decompressed bytes a `.tar.gz` sdist may hold when read for its `PKG-INFO`: 50 times
/// its compressed size, at least 64 MiB, at most 1 GiB (a decompression bomb stops there).
pub fn unpack_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(50).clamp(64 << 20, 1 << 30)
}

/// A reader that fails once more than `left` bytes were read, noting that it did.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a full cap from the end of the stream.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.hit.set(true);
            return Err(std::io::Error::other("decompressed size limit reached"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The components of an archive entry name without empty and `.` ones, or an error if the
/// name is unsafe.
fn components(name: &str) -> Result<Vec<&str>, String> {
    if wheel::unsafe_entry_name(name) {
        return Err(format!(
            "Invalid sdist: unsafe path {name:?} in the archive (absolute or with '..')"
        ));
    }
    Ok(name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect())
}

/// The name and bytes of the one top-level `*/PKG-INFO` in a gzip-compressed tar stream,
/// reading it whole but at most `limit` decompressed bytes.
pub fn targz_pkg_info(reader: impl Read, limit: u64) -> Result<(String, Vec<u8>), String> {
    let hit = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: flate2::read::MultiGzDecoder::new(reader),
        left: limit,
        hit: hit.clone(),
    };
    let corrupt = |e: std::io::Error| {
        if hit.get() {
            format!("Invalid sdist: more than {limit} bytes decompressed (decompression bomb?)")
        } else {
            format!("Invalid sdist: not a readable gzip-compressed tar archive ({e})")
        }
    };
    let mut archive = tar::Archive::new(capped);
    let mut found: Option<(String, Vec<u8>)> = None;
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let parts = components(&name)?;
        if parts.len() != 2 || parts[1] != "PKG-INFO" {
            continue;
        }
        if let Some((first, _)) = &found {
            return Err(duplicate(first, &name));
        }
        if !entry.header().entry_type().is_file() {
            return Err(format!("Invalid sdist: {name} is not a regular file"));
        }
        let size = entry.header().size().map_err(corrupt)?;
        if size > MAX_METADATA {
            return Err(format!(
                "Invalid sdist: {name} is larger than {MAX_METADATA} bytes"
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry
            .take(MAX_METADATA + 1)
            .read_to_end(&mut bytes)
            .map_err(corrupt)?;
        if bytes.len() as u64 != size {
            return Err(format!("Invalid sdist: {name} is truncated"));
        }
        found = Some((name, bytes));
    }
    if hit.get() {
        return Err(corrupt(std::io::Error::other("limit")));
    }
    found.ok_or_else(|| {
        "Invalid sdist: no top-level PKG-INFO (expected NAME-VERSION/PKG-INFO)".to_string()
    })
}

/// The refusal of an sdist with two top-level `PKG-INFO` files (installers and twine may
/// each read another one).
fn duplicate(first: &str, second: &str) -> String {
    format!("Invalid sdist: more than one top-level PKG-INFO ({first:?} and {second:?})")
}

/// The top-level `*/PKG-INFO` of the zip sdist at `path`.
fn zip_pkg_info(path: &Path) -> Result<(String, Vec<u8>), String> {
    let mut zip = wheel::open_zip(path, "sdist")?;
    let found: Vec<String> = zip
        .file_names()
        .filter(|n| {
            components(n).is_ok_and(|p| p.len() == 2 && p[1] == "PKG-INFO" && !n.ends_with('/'))
        })
        .map(str::to_string)
        .collect();
    let chosen = match &found[..] {
        [] => {
            return Err(
                "Invalid sdist: no top-level PKG-INFO (expected NAME-VERSION/PKG-INFO)".into(),
            )
        }
        [one] => one.clone(),
        [a, b, ..] => return Err(duplicate(a, b)),
    };
    let bytes = wheel::read_zip_entry(&mut zip, &chosen, "sdist")?;
    Ok((chosen, bytes))
}

/// Read and check the core metadata of the sdist at `path` (named `filename`: `.tar.gz` or
/// `.zip`): its top-level `PKG-INFO` must name `project` and `version`.
pub fn sdist_metadata(
    path: &Path,
    filename: &str,
    project: &str,
    version: &Version,
) -> Result<CoreMetadata, String> {
    let (name, bytes) = if filename.ends_with(".zip") {
        zip_pkg_info(path)?
    } else {
        let f = std::fs::File::open(path).map_err(|e| format!("reading the upload: {e}"))?;
        let size = f
            .metadata()
            .map_err(|e| format!("reading the upload: {e}"))?
            .len();
        targz_pkg_info(std::io::BufReader::new(f), unpack_limit(size))?
    };
    wheel::parse_core_metadata(bytes, "sdist", &name, project, version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::str::FromStr;

    const PKG_INFO: &str = "Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.0\n\n";

    fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        for (name, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, name, *body).unwrap();
        }
        t.into_inner().unwrap().finish().unwrap()
    }

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    #[test]
    fn reads_top_level_pkg_info() {
        let sd = targz(&[
            ("foo_bar-1.0/foo_bar.egg-info/PKG-INFO", b"Name: other\n"),
            ("foo_bar-1.0/setup.py", b""),
            ("./foo_bar-1.0/PKG-INFO", PKG_INFO.as_bytes()),
        ]);
        let f = file(&sd);
        let m = sdist_metadata(f.path(), "foo_bar-1.0.tar.gz", "foo-bar", &v("1.0.0")).unwrap();
        assert_eq!(m.name, "Foo.Bar");
        assert_eq!(m.bytes, PKG_INFO.as_bytes());
    }

    #[test]
    fn refuses_mismatches_and_broken_archives() {
        let f = file(&targz(&[("foo_bar-1.0/PKG-INFO", PKG_INFO.as_bytes())]));
        let e = sdist_metadata(f.path(), "x.tar.gz", "baz", &v("1.0")).unwrap_err();
        assert_eq!(
            e,
            "Sdist metadata names project \"Foo.Bar\", but the filename and form are for \"baz\""
        );
        let e = sdist_metadata(f.path(), "x.tar.gz", "foo-bar", &v("1.1")).unwrap_err();
        assert!(e.contains("has version \"1.0\""), "{e}");
        let f = file(&targz(&[("foo_bar-1.0/setup.py", b"")]));
        let e = sdist_metadata(f.path(), "x.tar.gz", "foo-bar", &v("1.0")).unwrap_err();
        assert!(e.contains("no top-level PKG-INFO"), "{e}");
        for junk in [
            &b"not gzip"[..],
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3][..],
        ] {
            let f = file(junk);
            let e = sdist_metadata(f.path(), "x.tar.gz", "foo-bar", &v("1.0")).unwrap_err();
            assert!(e.starts_with("Invalid sdist: not a readable gzip"), "{e}");
        }
        // A gzip of something that is not a tar.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[7u8; 2000]).unwrap();
        let f = file(&gz.finish().unwrap());
        let e = sdist_metadata(f.path(), "x.tar.gz", "foo-bar", &v("1.0")).unwrap_err();
        assert!(e.starts_with("Invalid sdist:"), "{e}");
        // Truncated archive.
        let mut sd = targz(&[("foo_bar-1.0/PKG-INFO", PKG_INFO.as_bytes())]);
        sd.truncate(sd.len() / 2);
        let f = file(&sd);
        let e = sdist_metadata(f.path(), "x.tar.gz", "foo-bar", &v("1.0")).unwrap_err();
        assert!(e.starts_with("Invalid sdist:"), "{e}");
    }

    #[test]
    fn refuses_unsafe_names_and_bombs() {
        let mut h = tar::Header::new_gnu();
        // tar::Builder refuses '..' itself: write the name into the header directly.
        let body = PKG_INFO.as_bytes();
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../x/PKG-INFO");
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let mut t = tar::Builder::new(Vec::new());
        t.append(&h, body).unwrap();
        let e = targz_pkg_info(&*gzip(&t.into_inner().unwrap()), 1 << 20).unwrap_err();
        assert!(e.contains("unsafe path \"../x/PKG-INFO\""), "{e}");

        let two = targz(&[
            ("a-1.0/PKG-INFO", PKG_INFO.as_bytes()),
            ("b-1.0/PKG-INFO", PKG_INFO.as_bytes()),
        ]);
        let e = targz_pkg_info(&*two, 1 << 20).unwrap_err();
        assert_eq!(
            e,
            "Invalid sdist: more than one top-level PKG-INFO (\"a-1.0/PKG-INFO\" and \"b-1.0/PKG-INFO\")"
        );

        let zeros = vec![0u8; 3 << 20];
        let sd = targz(&[
            ("foo_bar-1.0/big.bin", &zeros),
            ("foo_bar-1.0/PKG-INFO", PKG_INFO.as_bytes()),
        ]);
        let e = targz_pkg_info(&*sd, 1 << 20).unwrap_err();
        assert!(e.contains("decompression bomb"), "{e}");
        assert!(targz_pkg_info(&*sd, 4 << 20).is_ok());
        // The whole archive is read (a second PKG-INFO may follow), so the cap holds there too.
        let sd = targz(&[
            ("foo_bar-1.0/PKG-INFO", PKG_INFO.as_bytes()),
            ("foo_bar-1.0/big.bin", &zeros),
        ]);
        let e = targz_pkg_info(&*sd, 1 << 20).unwrap_err();
        assert!(e.contains("decompression bomb"), "{e}");
        assert_eq!(unpack_limit(1000), 64 << 20);
        assert_eq!(unpack_limit(100 << 20), 1 << 30);
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn zip_sdists() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("foo_bar-1.0/PKG-INFO", o).unwrap();
        z.write_all(PKG_INFO.as_bytes()).unwrap();
        z.finish().unwrap();
        assert!(sdist_metadata(f.path(), "foo_bar-1.0.zip", "foo-bar", &v("1.0")).is_ok());
        let e = sdist_metadata(f.path(), "foo_bar-2.0.zip", "foo-bar", &v("2.0")).unwrap_err();
        assert!(e.contains("has version \"1.0\""), "{e}");
        let e = sdist_metadata(f.path(), "foo_bar-1.0.tar.gz", "foo-bar", &v("1.0")).unwrap_err();
        assert!(e.contains("not a readable gzip"), "{e}");
    }
}
