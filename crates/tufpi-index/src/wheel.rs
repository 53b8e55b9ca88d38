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

/// Most entries (files, directories, links) an uploaded archive, wheel or sdist, may hold.
/// PyPI sets no number; the largest wheels and sdists on it hold a few tens of thousands of
/// files, and past this a hostile archive only costs memory and time to list.
pub const MAX_ARCHIVE_ENTRIES: usize = 50_000;

/// Largest zip central directory read (it is read whole, after its entry count was checked).
pub const MAX_CENTRAL_DIRECTORY: u64 = 16 << 20;

/// Declared uncompressed sizes past this many bytes and [`BOMB_RATIO`] times the archive's
/// size make a zip a decompression bomb (PyPI's rule).
pub const BOMB_MIN_SIZE: u64 = 64 << 20;

/// See [`BOMB_MIN_SIZE`].
pub const BOMB_RATIO: u64 = 50;

/// One entry of a zip archive's central directory.
#[derive(Debug, Clone)]
pub(crate) struct ZipEntry {
    /// Name (UTF-8, or lossily decoded).
    pub name: String,
    /// Name as stored.
    raw_name: Vec<u8>,
    /// General purpose flags.
    flags: u16,
    /// Compression method: 0 stored, 8 deflate.
    method: u16,
    crc: u32,
    compressed: u64,
    /// Uncompressed size.
    pub size: u64,
    local_offset: u64,
    /// Unix mode (type and permission bits) when made on Unix.
    pub unix_mode: Option<u32>,
}

impl ZipEntry {
    /// Whether the entry is a directory (name ending in `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// A zip archive whose central directory was read and checked: strict end records (no
/// data before the archive or after its comment), at most [`MAX_ARCHIVE_ENTRIES`] entries,
/// counted before anything is listed, names safe and unique, stored or deflate entries only,
/// no encryption, not a decompression bomb.
pub(crate) struct ZipIndex {
    file: std::fs::File,
    cd_offset: u64,
    /// The entries, in central directory order.
    pub entries: Vec<ZipEntry>,
    what: &'static str,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at(f: &mut std::fs::File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD64_LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";
const CDFH_SIG: &[u8] = b"PK\x01\x02";
const LFH_SIG: &[u8] = b"PK\x03\x04";

impl ZipIndex {
    /// Open the zip archive at `path` (a `what`: "wheel" or "sdist") and check its central
    /// directory.
    pub fn open(path: &Path, what: &'static str) -> Result<ZipIndex, String> {
        let mut file = std::fs::File::open(path).map_err(|e| format!("reading the upload: {e}"))?;
        let len = file
            .metadata()
            .map_err(|e| format!("reading the upload: {e}"))?
            .len();
        let bad = |why: &str| format!("Invalid {what}: not a readable zip archive ({why})");
        let io = |e: std::io::Error| bad(&e.to_string());
        if len < 22 {
            return Err(bad("too short"));
        }
        // The end of central directory record: the last one in the final 64 KiB, its comment
        // running exactly to the end of the file.
        let tail_len = len.min(22 + 0xFFFF);
        let tail = read_at(&mut file, len - tail_len, tail_len as usize).map_err(io)?;
        let pos = (0..=tail.len() - 22)
            .rev()
            .find(|&i| &tail[i..i + 4] == EOCD_SIG)
            .ok_or_else(|| bad("no end of central directory record"))?;
        let eocd = &tail[pos..];
        if pos + 22 + le16(eocd, 20) as usize != tail.len() {
            return Err(bad("data after the end of central directory record"));
        }
        let eocd_offset = len - tail_len + pos as u64;
        if le16(eocd, 4) != 0 || le16(eocd, 6) != 0 || le16(eocd, 8) != le16(eocd, 10) {
            return Err(bad("multi-disk archive"));
        }
        let (mut count, mut cd_size, mut cd_offset) = (
            le16(eocd, 10) as u64,
            le32(eocd, 12) as u64,
            le32(eocd, 16) as u64,
        );
        let mut cd_end = eocd_offset;
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            // Zip64: the locator right before the record, pointing at the zip64 record
            // that ends where the locator starts.
            let loc_offset = eocd_offset
                .checked_sub(20)
                .ok_or_else(|| bad("no zip64 end of central directory locator"))?;
            let loc = read_at(&mut file, loc_offset, 20).map_err(io)?;
            if &loc[..4] != EOCD64_LOCATOR_SIG || le32(&loc, 4) != 0 || le32(&loc, 16) != 1 {
                return Err(bad("no zip64 end of central directory locator"));
            }
            let rec_offset = le64(&loc, 8);
            if rec_offset.checked_add(56).is_none_or(|e| e > loc_offset) {
                return Err(bad("invalid zip64 end of central directory record"));
            }
            let rec = read_at(&mut file, rec_offset, 56).map_err(io)?;
            if &rec[..4] != EOCD64_SIG
                || le64(&rec, 4).checked_add(12 + rec_offset) != Some(loc_offset)
                || le32(&rec, 16) != 0
                || le32(&rec, 20) != 0
                || le64(&rec, 24) != le64(&rec, 32)
            {
                return Err(bad("invalid zip64 end of central directory record"));
            }
            (count, cd_size, cd_offset) = (le64(&rec, 32), le64(&rec, 40), le64(&rec, 48));
            cd_end = rec_offset;
        }
        if count > MAX_ARCHIVE_ENTRIES as u64 {
            return Err(format!(
                "Invalid {what}: the archive holds {count} entries; this index accepts at most {MAX_ARCHIVE_ENTRIES}"
            ));
        }
        if cd_size > MAX_CENTRAL_DIRECTORY {
            return Err(format!(
                "Invalid {what}: its central directory is {cd_size} bytes; this index accepts at most {MAX_CENTRAL_DIRECTORY}"
            ));
        }
        if cd_offset.checked_add(cd_size) != Some(cd_end) {
            return Err(bad(
                "the central directory does not end at the end record (data before the archive?)",
            ));
        }
        let cd = read_at(&mut file, cd_offset, cd_size as usize).map_err(io)?;
        let entries =
            parse_central_directory(&cd, count as usize, cd_offset).map_err(|why| bad(&why))?;
        let index = ZipIndex {
            file,
            cd_offset,
            entries,
            what,
        };
        index.check(len)?;
        Ok(index)
    }

    /// The checks on the listed entries.
    fn check(&self, archive_size: u64) -> Result<(), String> {
        let what = self.what;
        let mut seen = std::collections::HashSet::with_capacity(self.entries.len());
        let mut declared = 0u64;
        for e in &self.entries {
            if unsafe_entry_name(&e.name) {
                return Err(format!(
                    "Invalid {what}: unsafe path {:?} in the archive (absolute or with '..')",
                    e.name
                ));
            }
            if !seen.insert(e.name.as_str()) {
                return Err(format!(
                    "Invalid {what}: {:?} appears twice in the archive",
                    e.name
                ));
            }
            if e.flags & 1 != 0 {
                return Err(format!("Invalid {what}: {:?} is encrypted", e.name));
            }
            if e.method != 0 && e.method != 8 {
                return Err(format!(
                    "Invalid {what}: {:?} uses compression method {}; only stored (0) and deflate (8) are accepted",
                    e.name, e.method
                ));
            }
            declared = declared.saturating_add(e.size);
        }
        if declared > BOMB_MIN_SIZE && declared / BOMB_RATIO > archive_size {
            return Err(format!(
                "Invalid {what}: its entries declare {declared} bytes uncompressed, more than {BOMB_RATIO} times the archive's {archive_size} (decompression bomb?)"
            ));
        }
        Ok(())
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
    /// decompressed, checked against its size and CRC-32.
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
        let header =
            read_at(&mut self.file, entry.local_offset, 30).map_err(|e| corrupt(e.to_string()))?;
        if &header[..4] != LFH_SIG {
            return Err(corrupt("no local file header".into()));
        }
        let (nlen, xlen) = (le16(&header, 26) as u64, le16(&header, 28) as u64);
        let stored_name = read_at(&mut self.file, entry.local_offset + 30, nlen as usize)
            .map_err(|e| corrupt(e.to_string()))?;
        if stored_name != entry.raw_name || le16(&header, 8) != entry.method {
            return Err(corrupt(
                "its local header does not match the central directory".into(),
            ));
        }
        let start = entry.local_offset + 30 + nlen + xlen;
        if start
            .checked_add(entry.compressed)
            .is_none_or(|end| end > self.cd_offset)
        {
            return Err(corrupt("its data runs into the central directory".into()));
        }
        use std::io::{Seek, SeekFrom};
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|e| corrupt(e.to_string()))?;
        let raw = (&mut self.file).take(entry.compressed);
        let mut bytes = Vec::with_capacity(entry.size as usize);
        let read = match entry.method {
            0 => raw.take(limit + 1).read_to_end(&mut bytes),
            _ => flate2::read::DeflateDecoder::new(raw)
                .take(limit + 1)
                .read_to_end(&mut bytes),
        };
        read.map_err(|e| corrupt(e.to_string()))?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "Invalid {what}: {name} is larger than {limit} bytes"
            ));
        }
        let mut crc = flate2::Crc::new();
        crc.update(&bytes);
        if bytes.len() as u64 != entry.size || crc.sum() != entry.crc {
            return Err(corrupt("size or CRC-32 does not match".into()));
        }
        Ok(bytes)
    }
}

/// Parse `count` central directory headers filling `cd` exactly.
fn parse_central_directory(
    cd: &[u8],
    count: usize,
    cd_offset: u64,
) -> Result<Vec<ZipEntry>, String> {
    let mut entries = Vec::with_capacity(count);
    let mut at = 0usize;
    for _ in 0..count {
        let h = cd
            .get(at..at + 46)
            .ok_or("the central directory is truncated")?;
        if &h[..4] != CDFH_SIG {
            return Err("bad central directory header".into());
        }
        let (nlen, xlen, clen) = (
            le16(h, 28) as usize,
            le16(h, 30) as usize,
            le16(h, 32) as usize,
        );
        let var = cd
            .get(at + 46..at + 46 + nlen + xlen + clen)
            .ok_or("the central directory is truncated")?;
        let (raw_name, extra) = (&var[..nlen], &var[nlen..nlen + xlen]);
        let flags = le16(h, 8);
        let name = if flags & 0x800 != 0 {
            String::from_utf8(raw_name.to_vec()).map_err(|_| "an entry name is not UTF-8")?
        } else {
            String::from_utf8_lossy(raw_name).into_owned()
        };
        let (mut compressed, mut size, mut local_offset) =
            (le32(h, 20) as u64, le32(h, 24) as u64, le32(h, 42) as u64);
        if size == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF || local_offset == 0xFFFF_FFFF {
            // The zip64 extra field holds, in order, the values that overflowed.
            let mut x = 0usize;
            let mut z64: Option<&[u8]> = None;
            while x + 4 <= extra.len() {
                let (id, n) = (le16(extra, x), le16(extra, x + 2) as usize);
                let data = extra.get(x + 4..x + 4 + n).ok_or("bad extra field")?;
                if id == 1 {
                    z64 = Some(data);
                }
                x += 4 + n;
            }
            let z = z64.ok_or("missing zip64 extra field")?;
            let mut k = 0usize;
            for v in [&mut size, &mut compressed, &mut local_offset] {
                if *v == 0xFFFF_FFFF {
                    *v = z
                        .get(k..k + 8)
                        .map(|b| le64(b, 0))
                        .ok_or("short zip64 extra field")?;
                    k += 8;
                }
            }
        }
        if local_offset >= cd_offset {
            return Err("an entry starts inside the central directory".into());
        }
        let unix_mode = (h[5] == 3).then(|| le32(h, 38) >> 16);
        entries.push(ZipEntry {
            name,
            raw_name: raw_name.to_vec(),
            flags,
            method: le16(h, 10),
            crc: le32(h, 16),
            compressed,
            size,
            local_offset,
            unix_mode,
        });
        at += 46 + nlen + xlen + clen;
    }
    if at != cd.len() {
        return Err("the central directory holds more than its declared entries".into());
    }
    Ok(entries)
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
        fails(&b, "\"foo/AAAA\" appears twice");
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
        fails(&b, "size or CRC-32 does not match");
        let mut b = good.clone();
        b[30] = b'g';
        fails(&b, "its local header does not match the central directory");
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
