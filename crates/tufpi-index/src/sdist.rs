//! Reading an uploaded sdist's core metadata: the top-level `NAME-VERSION/PKG-INFO` of a
//! `.tar.gz` (gzip + tar, read as a stream with the decompressed bytes capped; every entry
//! name checked, exactly one top-level `PKG-INFO`) or of a `.zip`, checked like a wheel's
//! `METADATA` ([`crate::wheel`]).

use std::cell::Cell;
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use pep440_rs::Version;

use crate::wheel::{self, CoreMetadata, MAX_ARCHIVE_ENTRIES, MAX_METADATA};

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

/// Largest GNU long-name / long-link or pax extended header read (they carry a member's path
/// or link target, and a few attributes).
pub const MAX_EXTENSION_HEADER: u64 = 64 << 10;

/// Largest symlink target read from a zip sdist.
const MAX_LINK_TARGET: u64 = 4096;

/// A link member: a symlink (target relative to its directory) or a hard link (target
/// relative to the archive's root).
struct Link {
    symlink: bool,
    target: String,
}

/// The members of an sdist, as far as links go: every symlink, and every member's path
/// (components) and link, checked once the whole archive was read.
#[derive(Default)]
struct Links {
    symlinks: HashSet<Vec<String>>,
    members: Vec<(Vec<String>, Option<Link>)>,
}

impl Links {
    fn add(&mut self, path: &[&str], link: Option<Link>) {
        let path: Vec<String> = path.iter().map(|c| c.to_string()).collect();
        if link.as_ref().is_some_and(|l| l.symlink) {
            self.symlinks.insert(path.clone());
        }
        self.members.push((path, link));
    }

    /// Refuse links that point outside the archive (absolute targets, or `..` climbing out of
    /// it) or through another symlink, and members stored under a symlink: when unpacked,
    /// such an sdist writes or exposes files outside the directory it is unpacked in (what
    /// Python's `tarfile` "data" filter refuses).
    fn check(&self) -> Result<(), String> {
        for (path, link) in &self.members {
            let shown = path.join("/");
            for n in 1..path.len() {
                if self.symlinks.contains(&path[..n]) {
                    return Err(format!(
                        "Invalid sdist: {shown:?} is stored under the symlink {:?}",
                        path[..n].join("/")
                    ));
                }
            }
            let Some(Link { symlink, target }) = link else {
                continue;
            };
            let kind = if *symlink { "symlink" } else { "hard link" };
            if path.is_empty() {
                return Err(format!(
                    "Invalid sdist: a {kind} is named as the archive's root"
                ));
            }
            let escape = || {
                format!(
                    "Invalid sdist: the {kind} {shown:?} points outside the archive ({target:?})"
                )
            };
            let b = target.as_bytes();
            let absolute = target.starts_with(['/', '\\'])
                || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic());
            if target.is_empty() || absolute {
                return Err(escape());
            }
            // A symlink's target is relative to its directory, a hard link's to the root.
            let mut at: Vec<String> = if *symlink {
                path[..path.len() - 1].to_vec()
            } else {
                Vec::new()
            };
            let parts: Vec<&str> = target
                .split(['/', '\\'])
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            for (i, c) in parts.iter().enumerate() {
                if *c == ".." {
                    if at.pop().is_none() {
                        return Err(escape());
                    }
                    continue;
                }
                at.push(c.to_string());
                if i + 1 < parts.len() && self.symlinks.contains(&at) {
                    return Err(format!(
                        "Invalid sdist: the {kind} {shown:?} points through the symlink {:?} ({target:?})",
                        at.join("/")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The value of each `key=value` record of a pax extended header.
fn pax_records(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let bad = || "Invalid sdist: malformed pax extended header".to_string();
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && rest.iter().any(|&b| b != 0) {
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        out.push((
            String::from_utf8_lossy(&rec[..eq]).into_owned(),
            rec[eq + 1..].to_vec(),
        ));
        rest = &rest[len..];
    }
    Ok(out)
}

/// A name from a GNU long-name or long-link header (NUL-terminated).
fn trim_nul(mut b: Vec<u8>) -> Vec<u8> {
    while b.last() == Some(&0) {
        b.pop();
    }
    b
}

/// The name and bytes of the one top-level `*/PKG-INFO` in a gzip-compressed tar stream,
/// reading it whole but at most `limit` decompressed bytes and at most
/// [`MAX_ARCHIVE_ENTRIES`] members. Every member's name is checked; links must stay inside
/// the archive; device files and pipes are refused. GNU long names and pax headers are read
/// here (each at most [`MAX_EXTENSION_HEADER`] bytes) as Python's `tarfile` reads them.
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
    let mut links = Links::default();
    let (mut long_name, mut long_link, mut pax_size) = (None, None, None);
    let mut members = 0usize;
    for entry in archive.entries().map_err(corrupt)?.raw(true) {
        let mut entry = entry.map_err(corrupt)?;
        let et = entry.header().entry_type();
        let size = entry.header().entry_size().map_err(corrupt)?;
        if et.is_gnu_longname()
            || et.is_gnu_longlink()
            || et.is_pax_local_extensions()
            || et.is_pax_global_extensions()
        {
            if size > MAX_EXTENSION_HEADER {
                return Err(format!(
                    "Invalid sdist: an extended header of {size} bytes (at most {MAX_EXTENSION_HEADER})"
                ));
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(size)
                .read_to_end(&mut data)
                .map_err(corrupt)?;
            if et.is_gnu_longname() {
                long_name = Some(trim_nul(data));
            } else if et.is_gnu_longlink() {
                long_link = Some(trim_nul(data));
            } else {
                let global = et.is_pax_global_extensions();
                for (k, v) in pax_records(&data)? {
                    let known = matches!(k.as_str(), "path" | "linkpath" | "size");
                    if k.starts_with("GNU.sparse") || (global && known) {
                        return Err(format!(
                            "Invalid sdist: unsupported pax header field {k:?}{}",
                            if global { " in a global header" } else { "" }
                        ));
                    }
                    match k.as_str() {
                        "path" => long_name = Some(v),
                        "linkpath" => long_link = Some(v),
                        "size" => pax_size = Some(v),
                        _ => {}
                    }
                }
            }
            continue;
        }
        members += 1;
        if members > MAX_ARCHIVE_ENTRIES {
            return Err(format!(
                "Invalid sdist: the archive holds more than {MAX_ARCHIVE_ENTRIES} members; this index accepts at most {MAX_ARCHIVE_ENTRIES}"
            ));
        }
        let raw = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = String::from_utf8_lossy(&raw).into_owned();
        if let Some(s) = pax_size.take() {
            if std::str::from_utf8(&s)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                != Some(size)
            {
                return Err(format!(
                    "Invalid sdist: {name:?} has a pax size that differs from its header's"
                ));
            }
        }
        let target = long_link
            .take()
            .or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
        let parts = components(&name)?;
        use tar::EntryType as T;
        let link = match et {
            T::Regular | T::Continuous | T::Directory => None,
            T::Symlink | T::Link => Some(Link {
                symlink: et == T::Symlink,
                target: String::from_utf8_lossy(&target.unwrap_or_default()).into_owned(),
            }),
            T::Char | T::Block | T::Fifo => {
                return Err(format!(
                    "Invalid sdist: {name:?} is a device file or a pipe"
                ))
            }
            other => {
                return Err(format!(
                    "Invalid sdist: {name:?} has unsupported member type {:?}",
                    other.as_byte() as char
                ))
            }
        };
        links.add(&parts, link);
        if parts.len() != 2 || parts[1] != "PKG-INFO" {
            continue;
        }
        if let Some((first, _)) = &found {
            return Err(duplicate(first, &name));
        }
        if !et.is_file() {
            return Err(format!("Invalid sdist: {name} is not a regular file"));
        }
        if size > MAX_METADATA {
            return Err(format!(
                "Invalid sdist: {name} is larger than {MAX_METADATA} bytes"
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry)
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
    links.check()?;
    found.ok_or_else(|| {
        "Invalid sdist: no top-level PKG-INFO (expected NAME-VERSION/PKG-INFO)".to_string()
    })
}

/// The refusal of an sdist with two top-level `PKG-INFO` files (installers and twine may
/// each read another one).
fn duplicate(first: &str, second: &str) -> String {
    format!("Invalid sdist: more than one top-level PKG-INFO ({first:?} and {second:?})")
}

/// Unix file type bits.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// The top-level `*/PKG-INFO` of the zip sdist at `path`; links and special files checked as
/// in a `.tar.gz`.
fn zip_pkg_info(path: &Path) -> Result<(String, Vec<u8>), String> {
    let mut zip = wheel::open_zip(path, "sdist")?;
    let mut links = Links::default();
    let entries = zip.entries.clone();
    for e in &entries {
        let parts = components(&e.name)?;
        let link = match e.unix_mode.map(|m| m & S_IFMT) {
            None | Some(0) | Some(S_IFREG) | Some(S_IFDIR) => None,
            Some(S_IFLNK) => {
                let target = zip.read(e, MAX_LINK_TARGET)?;
                Some(Link {
                    symlink: true,
                    target: String::from_utf8_lossy(&target).into_owned(),
                })
            }
            Some(_) => {
                return Err(format!(
                    "Invalid sdist: {:?} is a device file, a pipe or a socket",
                    e.name
                ))
            }
        };
        links.add(&parts, link);
    }
    links.check()?;
    let found: Vec<&wheel::ZipEntry> = entries
        .iter()
        .filter(|e| {
            !e.is_dir() && components(&e.name).is_ok_and(|p| p.len() == 2 && p[1] == "PKG-INFO")
        })
        .collect();
    let chosen = match &found[..] {
        [] => {
            return Err(
                "Invalid sdist: no top-level PKG-INFO (expected NAME-VERSION/PKG-INFO)".into(),
            )
        }
        [one] => *one,
        [a, b, ..] => return Err(duplicate(&a.name, &b.name)),
    };
    if chosen.unix_mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
        return Err(format!(
            "Invalid sdist: {} is not a regular file",
            chosen.name
        ));
    }
    let bytes = zip.read(chosen, MAX_METADATA)?;
    Ok((chosen.name.clone(), bytes))
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
pub(crate) mod tests {
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
    /// A raw tar header of `kind` for `name` with `data` (name written as given).
    fn raw(t: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        t.append(&h, data).unwrap();
    }

    /// A pax extended header's data: `LEN key=value\n` records.
    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut n = body.len() + 1;
            while body.len() + n.to_string().len() != n {
                n = body.len() + n.to_string().len();
            }
            out.extend_from_slice(format!("{n}{body}").as_bytes());
        }
        out
    }

    #[test]
    fn long_names_and_pax_headers_are_read_like_pythons_tarfile() {
        let info = PKG_INFO.as_bytes();
        // A pax path renames the next member: here to the top-level PKG-INFO.
        let mut t = tar::Builder::new(Vec::new());
        raw(
            &mut t,
            tar::EntryType::XHeader,
            "pax",
            &pax(&[("path", "foo_bar-1.0/PKG-INFO"), ("mtime", "1")]),
        );
        raw(&mut t, tar::EntryType::Regular, "renamed", info);
        let (name, bytes) = targz_pkg_info(&*gzip(&t.into_inner().unwrap()), 1 << 20).unwrap();
        assert_eq!(
            (name.as_str(), bytes.as_slice()),
            ("foo_bar-1.0/PKG-INFO", info)
        );
        // A GNU long name likewise.
        let long = format!("{}/PKG-INFO", "d".repeat(300));
        let mut t = tar::Builder::new(Vec::new());
        raw(
            &mut t,
            tar::EntryType::GNULongName,
            "././@LongLink",
            format!("{long}\0").as_bytes(),
        );
        raw(&mut t, tar::EntryType::Regular, "short", info);
        let (name, _) = targz_pkg_info(&*gzip(&t.into_inner().unwrap()), 1 << 20).unwrap();
        assert_eq!(name, long);
        // A pax path with '..' is checked like any name.
        let mut t = tar::Builder::new(Vec::new());
        raw(
            &mut t,
            tar::EntryType::XHeader,
            "pax",
            &pax(&[("path", "../x")]),
        );
        raw(&mut t, tar::EntryType::Regular, "x", b"");
        let e = targz_pkg_info(&*gzip(&t.into_inner().unwrap()), 1 << 20).unwrap_err();
        assert!(e.contains("unsafe path \"../x\""), "{e}");
        // Refused: a huge extension header, a global path, a pax size other than the
        // header's, sparse files.
        for (kind, data, needle) in [
            (
                tar::EntryType::GNULongName,
                vec![b'a'; (MAX_EXTENSION_HEADER + 1) as usize],
                "an extended header of 65537 bytes",
            ),
            (
                tar::EntryType::XGlobalHeader,
                pax(&[("path", "foo_bar-1.0/PKG-INFO")]),
                "unsupported pax header field \"path\" in a global header",
            ),
            (
                tar::EntryType::XHeader,
                pax(&[("size", "5")]),
                "has a pax size that differs from its header's",
            ),
            (
                tar::EntryType::XHeader,
                pax(&[("GNU.sparse.name", "x")]),
                "unsupported pax header field \"GNU.sparse.name\"",
            ),
        ] {
            let mut t = tar::Builder::new(Vec::new());
            raw(&mut t, kind, "ext", &data);
            raw(
                &mut t,
                tar::EntryType::Regular,
                "foo_bar-1.0/PKG-INFO",
                info,
            );
            let e = targz_pkg_info(&*gzip(&t.into_inner().unwrap()), 1 << 20).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
        // A global header without names (git archive's comment) is fine.
        let mut t = tar::Builder::new(Vec::new());
        raw(
            &mut t,
            tar::EntryType::XGlobalHeader,
            "g",
            &pax(&[("comment", "abc")]),
        );
        raw(
            &mut t,
            tar::EntryType::Regular,
            "foo_bar-1.0/PKG-INFO",
            info,
        );
        assert!(targz_pkg_info(&*gzip(&t.into_inner().unwrap()), 1 << 20).is_ok());
    }

    #[test]
    fn links_stay_inside_the_archive() {
        let check = |members: &[(&str, Option<(bool, &str)>)]| {
            let mut l = Links::default();
            for (path, link) in members {
                let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
                l.add(
                    &parts,
                    link.map(|(symlink, t)| Link {
                        symlink,
                        target: t.to_string(),
                    }),
                );
            }
            l.check()
        };
        for ok in [
            vec![("p/a/l", Some((true, "../b")))],
            vec![("p/l", Some((true, "..")))],
            vec![("p/l", Some((true, "./x/./y")))],
            vec![("p/h", Some((false, "p/x")))],
            vec![("p/l", Some((true, "q"))), ("p/q", Some((true, "l")))],
        ] {
            assert!(check(&ok).is_ok(), "{ok:?}");
        }
        for (bad, needle) in [
            (vec![("p/l", Some((true, "../..")))], "points outside"),
            (vec![("p/l", Some((true, "/etc")))], "points outside"),
            (vec![("p/l", Some((true, "\\\\srv\\x")))], "points outside"),
            (vec![("p/l", Some((true, "C:x")))], "points outside"),
            (vec![("p/l", Some((true, "")))], "points outside"),
            (vec![("p/h", Some((false, "../p")))], "points outside"),
            (
                vec![("p/l", Some((true, "a/../../../x")))],
                "points outside",
            ),
            (
                vec![("p/l", Some((true, ".."))), ("p/m", Some((true, "l/x")))],
                "points through the symlink",
            ),
            (
                vec![("p/l", Some((true, "."))), ("p/l/x", None)],
                "is stored under the symlink",
            ),
            (vec![("", Some((true, "x")))], "named as the archive's root"),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(needle), "{bad:?}: {e}");
        }
    }

    /// Bytes of `seed` with a few bytes changed, cut or repeated (xorshift, deterministic).
    pub(crate) fn mutations(seed: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|_| {
                let mut b = seed.to_vec();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % b.len();
                    match next() % 4 {
                        0 => b[i] = next() as u8,
                        1 => b[i] = [0, 0xFF, b'.', b'/'][(next() % 4) as usize],
                        2 => b.truncate(i.max(1)),
                        _ => b.insert(i, next() as u8),
                    }
                }
                b
            })
            .collect()
    }

    #[test]
    fn mutated_sdists_never_panic() {
        let tar = {
            let mut t = tar::Builder::new(Vec::new());
            raw(
                &mut t,
                tar::EntryType::XHeader,
                "pax",
                &pax(&[("path", "foo_bar-1.0/x")]),
            );
            raw(&mut t, tar::EntryType::Regular, "y", b"data");
            raw(&mut t, tar::EntryType::Symlink, "foo_bar-1.0/l", b"");
            raw(
                &mut t,
                tar::EntryType::Regular,
                "foo_bar-1.0/PKG-INFO",
                PKG_INFO.as_bytes(),
            );
            t.into_inner().unwrap()
        };
        // Mutate the tar before and after compression.
        for m in mutations(&tar, 3000) {
            let _ = targz_pkg_info(&*gzip(&m), 1 << 20);
        }
        for m in mutations(&gzip(&tar), 3000) {
            let _ = targz_pkg_info(&*m, 1 << 20);
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("foo_bar-1.0/PKG-INFO", o).unwrap();
        z.write_all(PKG_INFO.as_bytes()).unwrap();
        z.add_symlink("foo_bar-1.0/l", "../x", o).unwrap();
        z.finish().unwrap();
        let zip = std::fs::read(f.path()).unwrap();
        for m in mutations(&zip, 3000) {
            let f = file(&m);
            let _ = sdist_metadata(f.path(), "foo_bar-1.0.zip", "foo-bar", &v("1.0"));
        }
    }
}
