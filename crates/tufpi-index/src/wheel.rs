//! Reading uploaded distributions: a wheel's core metadata (`*.dist-info/METADATA`, served
//! as `<file>.metadata` per PEP 658) and a light check that an sdist is the archive it claims.

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use pep440_rs::Version;

use crate::names::normalize;

/// Largest METADATA file accepted.
const MAX_METADATA: u64 = 16 << 20;

/// A wheel's core metadata file and the fields the index uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    /// The exact bytes of `METADATA`.
    pub bytes: Vec<u8>,
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Requires-Python`, if present.
    pub requires_python: Option<String>,
}

/// The first value of each wanted header in an RFC 822-style metadata file (the headers end
/// at the first empty line).
pub fn header(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case(key) {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

/// Read and check the core metadata of the wheel at `path`: it must be a zip archive with one
/// top-level `*.dist-info/METADATA` whose Name and Version are `project` and `version`.
pub fn wheel_metadata(
    path: &Path,
    project: &str,
    version: &Version,
) -> Result<CoreMetadata, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("reading the upload: {e}"))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| format!("Invalid wheel: not a readable zip archive ({e})"))?;
    let want = normalize(project);
    let candidates: Vec<String> = zip
        .file_names()
        .filter(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .map(str::to_string)
        .collect();
    let chosen = match candidates.len() {
        0 => return Err("Invalid wheel: no .dist-info/METADATA file".into()),
        1 => candidates[0].clone(),
        _ => candidates
            .iter()
            .find(|n| {
                n.split_once('-')
                    .is_some_and(|(name, _)| normalize(name) == want)
            })
            .cloned()
            .ok_or("Invalid wheel: several .dist-info directories, none for this project")?,
    };
    let entry = zip
        .by_name(&chosen)
        .map_err(|e| format!("Invalid wheel: reading {chosen}: {e}"))?;
    if entry.size() > MAX_METADATA {
        return Err(format!("Invalid wheel: {chosen} is too large"));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .take(MAX_METADATA + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("Invalid wheel: reading {chosen}: {e}"))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("Invalid wheel: {chosen} is not UTF-8"))?;
    let name = header(text, "Name").ok_or(format!("Invalid wheel: {chosen} has no Name"))?;
    let ver = header(text, "Version").ok_or(format!("Invalid wheel: {chosen} has no Version"))?;
    if normalize(&name) != want {
        return Err(format!(
            "Wheel metadata names project {name:?}, but the upload is for {project:?}"
        ));
    }
    if Version::from_str(&ver).ok().as_ref() != Some(version) {
        return Err(format!(
            "Wheel metadata has version {ver:?}, but the upload is for version {version}"
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

/// Check that an sdist starts like its archive format (gzip for `.tar.gz`, zip for `.zip`).
pub fn check_sdist(path: &Path, filename: &str) -> Result<(), String> {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("reading the upload: {e}"))?;
    let ok = if filename.ends_with(".tar.gz") {
        n >= 2 && head[..2] == [0x1f, 0x8b]
    } else {
        n >= 4 && head == *b"PK\x03\x04"
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid sdist: {filename:?} is not a {} archive",
            if filename.ends_with(".zip") {
                "zip"
            } else {
                "gzip-compressed tar"
            }
        ))
    }
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

    #[test]
    fn reads_core_metadata() {
        let w = wheel(&[
            ("foo_bar/__init__.py", ""),
            ("foo_bar-1.0.dist-info/METADATA", META),
        ]);
        let m = wheel_metadata(w.path(), "foo-bar", &Version::from_str("1.0").unwrap()).unwrap();
        assert_eq!(m.bytes, META.as_bytes());
        assert_eq!(m.name, "Foo_Bar");
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
    }

    #[test]
    fn refuses_mismatched_or_broken_wheels() {
        let v1 = Version::from_str("1.0").unwrap();
        let w = wheel(&[("foo_bar-1.0.dist-info/METADATA", META)]);
        let e = wheel_metadata(w.path(), "other", &v1).unwrap_err();
        assert!(e.contains("names project"), "{e}");
        let e = wheel_metadata(w.path(), "foo-bar", &Version::from_str("2").unwrap()).unwrap_err();
        assert!(e.contains("version"), "{e}");
        let w = wheel(&[("foo_bar/__init__.py", "")]);
        let e = wheel_metadata(w.path(), "foo-bar", &v1).unwrap_err();
        assert!(e.contains("no .dist-info/METADATA"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"not a zip").unwrap();
        let e = wheel_metadata(f.path(), "foo-bar", &v1).unwrap_err();
        assert!(e.contains("not a readable zip"), "{e}");
        assert!(check_sdist(f.path(), "x-1.tar.gz").is_err());
    }
}
