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

/// Read entry `name` of `zip` (at most [`MAX_METADATA`] bytes decompressed).
pub(crate) fn read_zip_entry<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    what: &str,
) -> Result<Vec<u8>, String> {
    let entry = zip
        .by_name(name)
        .map_err(|e| format!("Invalid {what}: reading {name}: {e}"))?;
    if entry.is_dir() {
        return Err(format!("Invalid {what}: {name} is a directory"));
    }
    if entry.size() > MAX_METADATA {
        return Err(format!(
            "Invalid {what}: {name} is larger than {MAX_METADATA} bytes"
        ));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .take(MAX_METADATA + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("Invalid {what}: reading {name}: {e}"))?;
    if bytes.len() as u64 > MAX_METADATA {
        return Err(format!(
            "Invalid {what}: {name} is larger than {MAX_METADATA} bytes"
        ));
    }
    Ok(bytes)
}

/// Open the zip archive at `path`, refusing unsafe entry names.
pub(crate) fn open_zip(path: &Path, what: &str) -> Result<zip::ZipArchive<std::fs::File>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("reading the upload: {e}"))?;
    let zip = zip::ZipArchive::new(f)
        .map_err(|e| format!("Invalid {what}: not a readable zip archive ({e})"))?;
    if let Some(bad) = zip.file_names().find(|n| unsafe_entry_name(n)) {
        return Err(format!(
            "Invalid {what}: unsafe path {bad:?} in the archive (absolute or with '..')"
        ));
    }
    Ok(zip)
}

/// Read and check the core metadata of the wheel at `path`: it must be a zip archive with one
/// top-level `*.dist-info` directory whose `METADATA` names `project` and `version`.
pub fn wheel_metadata(
    path: &Path,
    project: &str,
    version: &Version,
) -> Result<CoreMetadata, String> {
    let mut zip = open_zip(path, "wheel")?;
    // One .dist-info directory, as installers (pip) require: with several, tools could each
    // read another one.
    let mut dirs: Vec<&str> = zip
        .file_names()
        .filter_map(|n| n.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    let chosen = match &dirs[..] {
        [] => return Err("Invalid wheel: no .dist-info/METADATA file".into()),
        [one] => format!("{one}/METADATA"),
        [a, b, ..] => {
            return Err(format!(
                "Invalid wheel: more than one .dist-info directory ({a:?} and {b:?})"
            ))
        }
    };
    if zip.index_for_name(&chosen).is_none() {
        return Err(format!("Invalid wheel: no {chosen} file"));
    }
    let bytes = read_zip_entry(&mut zip, &chosen, "wheel")?;
    parse_core_metadata(bytes, "wheel", &chosen, project, version)
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
}
