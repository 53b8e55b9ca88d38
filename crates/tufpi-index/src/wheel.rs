//! Reading uploaded distributions' core metadata: a wheel's `*.dist-info/METADATA` (served as
//! `<file>.metadata` per PEP 658) and an sdist's top-level `PKG-INFO` ([`crate::sdist`]),
//! each checked against the upload's project name (PEP 503-normalised) and PEP 440 version.
//! Hostile archives get bounded work: only the metadata file is decompressed, capped, and
//! entry names are checked for absolute paths and `..`.

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use pep440_rs::Version;

use crate::names::normalize;
use crate::zipcheck;
pub use crate::zipcheck::{MAX_ARCHIVE_ENTRIES, MAX_CENTRAL_DIRECTORY};

/// Largest core metadata file accepted.
pub const MAX_METADATA: u64 = 16 << 20;

/// A distribution's core metadata file and the fields the index uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    /// The exact bytes of `METADATA` / `PKG-INFO`.
    pub bytes: Vec<u8>,
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Requires-Python`, if present.
    pub requires_python: Option<String>,
}

/// The first value of header `key` in an RFC 822-style metadata file. The headers end at the
/// first empty line, or at the first line that is neither a header nor a continuation (as
/// Python's `email` parser reads it).
pub fn header(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let (k, v) = line.split_once(':')?;
        if k.is_empty() || k.contains([' ', '\t']) {
            return None;
        }
        if k.eq_ignore_ascii_case(key) {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Whether an archive entry name is unsafe: absolute (`/x`, `\x`, `C:x`) or with a `..`
/// component.
pub fn unsafe_entry_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with(['/', '\\'])
        || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic())
        || name.split(['/', '\\']).any(|c| c == "..")
}

/// `wheel` → `Wheel`.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Check core metadata `bytes` (from `file` in a `what`: "wheel" or "sdist") against the
/// upload: `Metadata-Version` present and `MAJOR.MINOR`, `Name` equal to `project` once
/// normalised, `Version` PEP 440-equal to `version`.
pub fn parse_core_metadata(
    bytes: Vec<u8>,
    what: &str,
    file: &str,
    project: &str,
    version: &Version,
) -> Result<CoreMetadata, String> {
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("Invalid {what}: {file} is not UTF-8"))?;
    let mv = header(text, "Metadata-Version")
        .ok_or(format!("Invalid {what}: {file} has no Metadata-Version"))?;
    let well_formed = mv.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if !well_formed {
        return Err(format!(
            "Invalid {what}: {file} has Metadata-Version {mv:?}, expected MAJOR.MINOR such as 2.1"
        ));
    }
    let name = header(text, "Name")
        .filter(|n| !n.is_empty())
        .ok_or(format!("Invalid {what}: {file} has no Name"))?;
    let ver = header(text, "Version")
        .filter(|v| !v.is_empty())
        .ok_or(format!("Invalid {what}: {file} has no Version"))?;
    if normalize(&name) != normalize(project) {
        return Err(format!(
            "{} metadata names project {name:?}, but the filename and form are for {project:?}",
            capitalized(what)
        ));
    }
    if Version::from_str(&ver).ok().as_ref() != Some(version) {
        return Err(format!(
            "{} metadata has version {ver:?}, but the filename and form are for version {version}",
            capitalized(what)
        ));
    }
    let requires_python = header(text, "Requires-Python").filter(|s| !s.is_empty());
    Ok(CoreMetadata {
        bytes,
        name,
        version: ver,
        requires_python,
    })
}

/// Declared uncompressed sizes past this many bytes and [`BOMB_RATIO`] times the archive's
/// size make a zip a decompression bomb (PyPI's rule).
pub const BOMB_MIN_SIZE: u64 = 64 << 20;

/// See [`BOMB_MIN_SIZE`].
pub const BOMB_RATIO: u64 = 50;

/// One entry of a zip archive, as the zip crate lists it.
#[derive(Debug, Clone)]
pub(crate) struct ZipEntry {
    /// Position in the archive.
    index: usize,
    /// Name (UTF-8 if flagged so, else CP437, as Python's zipfile reads it).
    pub name: String,
    /// Uncompressed size.
    pub size: u64,
    /// Unix mode (type and permission bits), if recorded.
    pub unix_mode: Option<u32>,
}

impl ZipEntry {
    /// Whether the entry is a directory (name ending in `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// A compression method's number (`to_u16` is deprecated for matching on constants, but a
/// method this build does not support has no constant).
#[allow(deprecated)]
fn method_number(method: zip::CompressionMethod) -> u16 {
    method.to_u16()
}

/// A zip archive listed by the `zip` crate after [`crate::zipcheck`]'s checks (strict end
/// records, at most [`MAX_ARCHIVE_ENTRIES`] entries counted before anything is listed), with
/// names safe and unique, stored or deflate entries only, no encryption, not a decompression
/// bomb.
pub(crate) struct ZipIndex {
    zip: zip::ZipArchive<zipcheck::Fenced>,
    /// The upload, for [`zipcheck::check_local_header`].
    file: std::fs::File,
    /// Where the central directory starts.
    cd_offset: u64,
    /// The entries, in central directory order.
    pub entries: Vec<ZipEntry>,
    what: &'static str,
}

impl ZipIndex {
    /// Open the zip archive at `path` (a `what`: "wheel" or "sdist") and check its entries.
    pub fn open(path: &Path, what: &'static str) -> Result<ZipIndex, String> {
        let zipcheck::Archive {
            mut zip,
            tail,
            file,
        } = zipcheck::open(path, what)?;
        let mut entries = Vec::with_capacity(zip.len());
        let mut declared = 0u64;
        for index in 0..zip.len() {
            let e = zip.by_index_raw(index).map_err(|e| {
                format!(
                    "Invalid {what}: not a readable zip archive ({})",
                    zipcheck::zip_error(e)
                )
            })?;
            let name = e.name();
            // The zip crate names an entry by its Info-ZIP Unicode Path extra field, if it has
            // one; Python's zipfile (3.11) by the name stored: they must agree.
            let stored = tail
                .stored_name(e.central_header_start())
                .unwrap_or_default();
            if stored != e.name_raw() {
                return Err(format!(
                    "Invalid {what}: {name:?} is stored under another name ({:?})",
                    String::from_utf8_lossy(stored)
                ));
            }
            if unsafe_entry_name(name) {
                return Err(format!(
                    "Invalid {what}: unsafe path {name:?} in the archive (absolute or with '..')"
                ));
            }
            // The zip crate decodes a name flagged UTF-8 lossily.
            if name.contains('\u{FFFD}') && std::str::from_utf8(e.name_raw()).is_err() {
                return Err(format!(
                    "Invalid {what}: not a readable zip archive (an entry name is not UTF-8)"
                ));
            }
            if e.encrypted() {
                return Err(format!("Invalid {what}: {name:?} is encrypted"));
            }
            let method = e.compression();
            if method != zip::CompressionMethod::Stored
                && method != zip::CompressionMethod::Deflated
            {
                return Err(format!(
                    "Invalid {what}: {name:?} uses compression method {}; only stored (0) and deflate (8) are accepted",
                    method_number(method)
                ));
            }
            declared = declared.saturating_add(e.size());
            entries.push(ZipEntry {
                index,
                name: name.to_string(),
                size: e.size(),
                unix_mode: e.unix_mode(),
            });
        }
        let len = tail.end();
        if declared > BOMB_MIN_SIZE && declared / BOMB_RATIO > len {
            return Err(format!(
                "Invalid {what}: its entries declare {declared} bytes uncompressed, more than {BOMB_RATIO} times the archive's {len} (decompression bomb?)"
            ));
        }
        Ok(ZipIndex {
            zip,
            file,
            cd_offset: tail.start,
            entries,
            what,
        })
    }

    /// Every entry name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The entry named `name`.
    pub fn find(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The contents of `entry` (one of [`ZipIndex::entries`]), at most `limit` bytes
    /// decompressed, checked against its size and (by the zip crate) its CRC-32.
    pub fn read(&mut self, entry: &ZipEntry, limit: u64) -> Result<Vec<u8>, String> {
        let (what, name) = (self.what, &entry.name);
        if entry.is_dir() {
            return Err(format!("Invalid {what}: {name} is a directory"));
        }
        if entry.size > limit {
            return Err(format!(
                "Invalid {what}: {name} is larger than {limit} bytes"
            ));
        }
        let corrupt = |why: String| format!("Invalid {what}: reading {name}: {why}");
        let mut e = self
            .zip
            .by_index(entry.index)
            .map_err(|e| corrupt(zipcheck::zip_error(e)))?;
        let method = method_number(e.compression());
        zipcheck::check_local_header(&mut self.file, e.header_start(), e.name_raw(), method)
            .map_err(corrupt)?;
        if e.data_start()
            .checked_add(e.compressed_size())
            .is_none_or(|end| end > self.cd_offset)
        {
            return Err(corrupt("its data runs into the central directory".into()));
        }
        let mut bytes = Vec::with_capacity(entry.size as usize);
        (&mut e)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| corrupt(e.to_string()))?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "Invalid {what}: {name} is larger than {limit} bytes"
            ));
        }
        if bytes.len() as u64 != entry.size {
            return Err(corrupt("its size does not match".into()));
        }
        Ok(bytes)
    }
}

/// Open the zip archive at `path` and check its central directory ([`ZipIndex`]).
pub(crate) fn open_zip(path: &Path, what: &'static str) -> Result<ZipIndex, String> {
    ZipIndex::open(path, what)
}

/// Check that the `.dist-info` directory `dir` (`NAME-VERSION.dist-info`) is for `project`
/// and `version`, as installers require.
fn check_dist_info_name(dir: &str, project: &str, version: &Version) -> Result<(), String> {
    let stem = dir.strip_suffix(".dist-info").unwrap_or(dir);
    let Some((name, ver)) = stem.split_once('-') else {
        return Err(format!(
            "Invalid wheel: its .dist-info directory {dir:?} names no version (expected NAME-VERSION.dist-info)"
        ));
    };
    if normalize(name) != normalize(project) {
        return Err(format!(
            "Invalid wheel: its .dist-info directory {dir:?} is for project {name:?}, not {project:?}"
        ));
    }
    if Version::from_str(ver).ok().as_ref() != Some(version) {
        return Err(format!(
            "Invalid wheel: its .dist-info directory {dir:?} is for version {ver:?}, not {version}"
        ));
    }
    Ok(())
}

/// Read and check the core metadata of the wheel at `path`: it must be a zip archive with one
/// top-level `NAME-VERSION.dist-info` directory, for `project` and `version`, whose
/// `METADATA` names `project` and `version`.
pub fn wheel_metadata(
    path: &Path,
    project: &str,
    version: &Version,
) -> Result<CoreMetadata, String> {
    let mut zip = open_zip(path, "wheel")?;
    // One .dist-info directory, as installers (pip) require: with several, tools could each
    // read another one.
    let mut dirs: Vec<&str> = zip
        .names()
        .filter_map(|n| n.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    let (dir, chosen) = match &dirs[..] {
        [] => return Err("Invalid wheel: no .dist-info/METADATA file".into()),
        [one] => (one.to_string(), format!("{one}/METADATA")),
        [a, b, ..] => {
            return Err(format!(
                "Invalid wheel: more than one .dist-info directory ({a:?} and {b:?})"
            ))
        }
    };
    let entry = zip
        .find(&chosen)
        .cloned()
        .ok_or_else(|| format!("Invalid wheel: no {chosen} file"))?;
    let bytes = zip.read(&entry, MAX_METADATA)?;
    let meta = parse_core_metadata(bytes, "wheel", &chosen, project, version)?;
    check_dist_info_name(&dir, project, version)?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zipcheck::{le16, le32};
    use std::io::Write;

    fn wheel(entries: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        for (name, body) in entries {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.finish().unwrap();
        f
    }

    const META: &str = "Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nRequires-Python: >=3.8\n\nName: not-this\n";

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    #[test]
    fn reads_core_metadata() {
        let w = wheel(&[
            ("foo_bar/__init__.py", ""),
            ("foo_bar-1.0.dist-info/METADATA", META),
        ]);
        let m = wheel_metadata(w.path(), "foo-bar", &v("1.0")).unwrap();
        assert_eq!(m.bytes, META.as_bytes());
        assert_eq!(m.name, "Foo_Bar");
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
        // PEP 440-equal versions and PEP 503-equal names match.
        assert!(wheel_metadata(w.path(), "FOO.bar", &v("1.0.0")).is_ok());
    }

    #[test]
    fn headers_end_at_the_body() {
        let t = "Metadata-Version: 2.1\nSummary: a\n  continued\nname:  x \n\nVersion: 1\n";
        assert_eq!(header(t, "Name").as_deref(), Some("x"));
        assert_eq!(header(t, "Version"), None);
        assert_eq!(header("Body text\nName: x\n", "Name"), None);
    }

    #[test]
    fn refuses_mismatched_or_broken_wheels() {
        let v1 = v("1.0");
        let w = wheel(&[("foo_bar-1.0.dist-info/METADATA", META)]);
        let e = wheel_metadata(w.path(), "other", &v1).unwrap_err();
        assert_eq!(
            e,
            "Wheel metadata names project \"Foo_Bar\", but the filename and form are for \"other\""
        );
        let e = wheel_metadata(w.path(), "foo-bar", &v("2")).unwrap_err();
        assert_eq!(
            e,
            "Wheel metadata has version \"1.0\", but the filename and form are for version 2"
        );
        let w = wheel(&[("foo_bar/__init__.py", "")]);
        let e = wheel_metadata(w.path(), "foo-bar", &v1).unwrap_err();
        assert!(e.contains("no .dist-info/METADATA"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"not a zip").unwrap();
        let e = wheel_metadata(f.path(), "foo-bar", &v1).unwrap_err();
        assert!(e.contains("not a readable zip"), "{e}");
    }

    #[test]
    fn refuses_bad_core_metadata() {
        let v1 = v("1.0");
        for (meta, needle) in [
            ("Name: foo\nVersion: 1.0\n", "no Metadata-Version"),
            (
                "Metadata-Version: two\nName: foo\nVersion: 1.0\n",
                "Metadata-Version \"two\"",
            ),
            ("Metadata-Version: 2.1\nVersion: 1.0\n", "has no Name"),
            ("Metadata-Version: 2.1\nName: foo\n", "has no Version"),
            (
                "Metadata-Version: 2.1\nName: foo\nVersion: banana\n",
                "version \"banana\"",
            ),
            (
                "\nMetadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
                "no Metadata-Version",
            ),
        ] {
            let w = wheel(&[("foo-1.0.dist-info/METADATA", meta)]);
            let e = wheel_metadata(w.path(), "foo", &v1).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
        let e =
            parse_core_metadata(vec![0xff, 0xfe], "sdist", "x/PKG-INFO", "foo", &v1).unwrap_err();
        assert_eq!(e, "Invalid sdist: x/PKG-INFO is not UTF-8");
    }

    #[test]
    fn refuses_unsafe_entry_names() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "\\x", "C:x", "a\\..\\x"] {
            assert!(unsafe_entry_name(bad), "{bad}");
            let w = wheel(&[("foo-1.0.dist-info/METADATA", META), (bad, "")]);
            let e = wheel_metadata(w.path(), "foo-bar", &v("1.0")).unwrap_err();
            assert!(e.contains("unsafe path"), "{e}");
        }
        for ok in ["a/b", "a..b/c", "..a", "x/.../y"] {
            assert!(!unsafe_entry_name(ok), "{ok}");
        }
    }

    #[test]
    fn metadata_size_is_capped() {
        let big = format!(
            "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\n{}",
            "x".repeat((MAX_METADATA + 10) as usize)
        );
        let w = wheel(&[("foo-1.0.dist-info/METADATA", &big)]);
        let e = wheel_metadata(w.path(), "foo", &v("1.0")).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }
    /// A wheel's bytes: `METADATA` for foo 1.0 and `foo/AAAA`, `foo/BBBB`.
    fn wheel_bytes(opts: zip::write::SimpleFileOptions) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            z.start_file("foo-1.0.dist-info/METADATA", opts).unwrap();
            z.write_all(b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\n")
                .unwrap();
            z.start_file("foo/AAAA", opts).unwrap();
            z.write_all(b"a").unwrap();
            z.start_file("foo/BBBB", opts).unwrap();
            z.write_all(b"b").unwrap();
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    fn check(bytes: &[u8]) -> Result<CoreMetadata, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        wheel_metadata(f.path(), "foo", &v("1.0"))
    }

    /// Offset of the central directory header of the `n`th entry.
    fn cdfh(bytes: &[u8], n: usize) -> usize {
        let eocd = bytes.len() - 22;
        let mut at = le32(bytes, eocd + 16) as usize;
        for _ in 0..n {
            at += 46
                + le16(bytes, at + 28) as usize
                + le16(bytes, at + 30) as usize
                + le16(bytes, at + 32) as usize;
        }
        at
    }

    fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        for i in 0..bytes.len() - from.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
            }
        }
    }

    #[test]
    fn the_zip_reader_is_strict() {
        let opts = zip::write::SimpleFileOptions::default();
        let good = wheel_bytes(opts);
        assert!(check(&good).is_ok());
        // Zip64 records (as some writers always emit) are read.
        let z64 = wheel_bytes(opts.large_file(true));
        assert!(check(&z64).is_ok(), "{:?}", check(&z64));

        let fails = |bytes: &[u8], needle: &str| {
            let e = check(bytes).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        };
        let mut b = good.clone();
        b.extend_from_slice(b"trailing");
        fails(&b, "data after the end of central directory record");
        let mut b = b"prepended".to_vec();
        b.extend_from_slice(&good);
        fails(&b, "does not end at the end record");
        fails(&good[..good.len() / 2], "not a readable zip archive");
        fails(b"PK\x05\x06", "too short");
        // An end record that counts fewer entries than there are.
        let mut b = good.clone();
        let n = b.len();
        b[n - 12] = 2;
        b[n - 14] = 2;
        fails(&b, "holds more than its declared entries");
        // A count past the limit is refused before the directory is read.
        let mut b = good.clone();
        b[n - 12..n - 10].copy_from_slice(&0xFFFFu16.to_le_bytes());
        b[n - 14..n - 12].copy_from_slice(&0xFFFFu16.to_le_bytes());
        fails(&b, "no zip64 end of central directory locator");
        // Two entries of one name.
        let mut b = good.clone();
        replace(&mut b, b"foo/BBBB", b"foo/AAAA");
        fails(
            &b,
            "a name appears twice in the archive (3 entries, 2 names)",
        );
        // Compression methods other than stored and deflate, and encryption.
        let mut b = good.clone();
        let at = cdfh(&b, 1);
        b[at + 10] = 12;
        fails(&b, "\"foo/AAAA\" uses compression method 12");
        let mut b = good.clone();
        b[at + 8] |= 1;
        fails(&b, "\"foo/AAAA\" is encrypted");
        // Declared sizes of a bomb.
        let mut b = good.clone();
        b[at + 24..at + 28].copy_from_slice(&0xF000_0000u32.to_le_bytes());
        fails(&b, "(decompression bomb?)");
        // The METADATA entry: its CRC, and its local header, must agree.
        let mut b = good.clone();
        let at = cdfh(&b, 0);
        b[at + 16] ^= 0xFF;
        fails(&b, "reading foo-1.0.dist-info/METADATA: Invalid checksum");
        let mut b = good.clone();
        b[30] = b'g';
        fails(&b, "its local header does not match the central directory");
    }

    #[test]
    fn the_zip_crate_and_python_see_the_same_names() {
        // An entry stored as "../evil.py" whose Info-ZIP Unicode Path extra field says
        // "foo/safe.py": the zip crate reads the latter, Python's zipfile (3.11) the former.
        let mut crc = flate2::Crc::new();
        crc.update(b"../evil.py");
        let mut field = vec![1u8];
        field.extend_from_slice(&crc.sum().to_le_bytes());
        field.extend_from_slice(b"foo/safe.py");
        // (The zip crate writes no such field: it goes in as another, renamed after.)
        let mut opts = zip::write::FileOptions::<zip::write::ExtendedFileOptions>::default();
        opts.add_extra_data(0x7076, field.clone().into(), true)
            .unwrap();
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let plain = zip::write::SimpleFileOptions::default();
            z.start_file("foo-1.0.dist-info/METADATA", plain).unwrap();
            z.write_all(b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\n")
                .unwrap();
            z.start_file("../evil.py", opts).unwrap();
            z.finish().unwrap();
        }
        let mut b = buf.into_inner();
        let n = field.len() as u8;
        replace(&mut b, &[0x76, 0x70, n, 0, 1], &[0x75, 0x70, n, 0, 1]);
        let e = check(&b).unwrap_err();
        assert_eq!(
            e,
            "Invalid wheel: \"foo/safe.py\" is stored under another name (\"../evil.py\")"
        );
    }

    #[test]
    fn the_dist_info_directory_names_the_project() {
        let w = wheel(&[("bar-1.0.dist-info/METADATA", META)]);
        let e = wheel_metadata(w.path(), "foo-bar", &v("1.0")).unwrap_err();
        assert_eq!(
            e,
            "Invalid wheel: its .dist-info directory \"bar-1.0.dist-info\" is for project \"bar\", not \"foo-bar\""
        );
        let w = wheel(&[("Foo.Bar-1.0.0.dist-info/METADATA", META)]);
        assert!(wheel_metadata(w.path(), "foo-bar", &v("1")).is_ok());
    }

    #[test]
    fn mutated_wheels_never_panic() {
        let opts = zip::write::SimpleFileOptions::default();
        for seed in [wheel_bytes(opts), wheel_bytes(opts.large_file(true))] {
            for m in crate::sdist::tests::mutations(&seed, 3000) {
                let _ = check(&m);
            }
        }
    }
}
