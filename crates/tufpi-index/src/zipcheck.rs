//! The checks of an uploaded zip archive (a wheel or a zip sdist) made before the `zip` crate
//! lists it, and the one it does not make when reading a member ([`check_local_header`]).
//!
//! `zip::ZipArchive::new` reads every central directory header into memory (some 600 bytes an
//! entry: 900,000 entries took 524 MB), so [`open`] first reads the end records and refuses an
//! archive declaring more than [`MAX_ARCHIVE_ENTRIES`] entries, or a central directory past
//! [`MAX_CENTRAL_DIRECTORY`] bytes. The end records must be exact: the comment runs to the end
//! of the file, the central directory ends where they start (nothing before the archive or
//! after it), a zip64 record agrees with the classic one. The central directory must hold
//! exactly the declared headers (Python's zipfile reads as many as fill it).
//!
//! When the zip crate cannot read a central directory it searches the file backwards for
//! another end record, and lists the archive that one describes: one hidden in a member's data
//! may declare any number of entries. So the central directory may hold no end record
//! signature, and the crate reads the upload through a [`Fenced`] reader that shows it nothing
//! before the central directory until it has listed it: it lists the checked one or none.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use zip::result::ZipError;
use zip::ZipArchive;

/// Most entries (files, directories, links) an uploaded archive, wheel or sdist, may hold.
/// PyPI sets no number; the largest wheels and sdists on it hold a few tens of thousands of
/// files, and past this a hostile archive only costs memory and time to list.
pub const MAX_ARCHIVE_ENTRIES: usize = 50_000;

/// Largest zip central directory read (it is read whole, after its entry count was checked).
pub const MAX_CENTRAL_DIRECTORY: u64 = 16 << 20;

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD64_LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";
const CDFH_SIG: &[u8] = b"PK\x01\x02";
const LFH_SIG: &[u8] = b"PK\x03\x04";

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at(f: &mut File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// The zip crate's error, with an I/O error's own text (it shows only "i/o error").
pub(crate) fn zip_error(e: ZipError) -> String {
    match e {
        ZipError::Io(e) => e.to_string(),
        e => e.to_string(),
    }
}

/// A checked zip archive from its central directory on (the end records too), read whole.
#[derive(Clone)]
pub(crate) struct Tail {
    /// Where the central directory starts (the members' data ends before it).
    pub start: u64,
    bytes: Arc<Vec<u8>>,
}

impl Tail {
    /// The name stored in the central directory header at `offset`.
    pub fn stored_name(&self, offset: u64) -> Option<&[u8]> {
        let at = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        let header = self.bytes.get(at..at.checked_add(46)?)?;
        self.bytes.get(at + 46..at + 46 + le16(header, 28) as usize)
    }

    /// The archive's size.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

/// A zip archive the zip crate listed after the checks of this module.
pub(crate) struct Archive {
    /// The archive, as the zip crate lists and reads it.
    pub zip: ZipArchive<Fenced>,
    /// Its central directory and end records.
    pub tail: Tail,
    /// The upload, for [`check_local_header`].
    pub file: File,
}

/// Open the zip archive at `path` (a `what`: "wheel" or "sdist"): check its end records and
/// central directory, then have the zip crate list it, fenced.
pub(crate) fn open(path: &Path, what: &'static str) -> Result<Archive, String> {
    let upload = |e: io::Error| format!("reading the upload: {e}");
    let mut file = File::open(path).map_err(upload)?;
    let len = file.metadata().map_err(upload)?.len();
    let (count, tail) = check(&mut file, len, what)?;
    let bad = |why: &str| format!("Invalid {what}: not a readable zip archive ({why})");
    let fenced = Arc::new(AtomicBool::new(true));
    let reader = Fenced {
        // Its reads, like [`check_local_header`]'s, seek first: the shared offset is no matter.
        file: file.try_clone().map_err(upload)?,
        tail: tail.clone(),
        pos: 0,
        fenced: fenced.clone(),
    };
    let config = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    // (Its error is the last end record search's, fenced: it does not say why.)
    let zip = ZipArchive::with_config(config, reader)
        .map_err(|_| bad("the zip crate cannot read its central directory"))?;
    fenced.store(false, Ordering::Relaxed);
    if zip.central_directory_start() != tail.start {
        return Err(bad("the zip crate read another central directory"));
    }
    // The zip crate keeps one entry of a name (the last one listed).
    if zip.len() as u64 != count {
        return Err(format!(
            "Invalid {what}: a name appears twice in the archive ({count} entries, {} names)",
            zip.len()
        ));
    }
    Ok(Archive { zip, tail, file })
}

/// Check the end records and central directory of the `len`-byte zip archive in `file`; its
/// entry count and its tail.
fn check(file: &mut File, len: u64, what: &str) -> Result<(u64, Tail), String> {
    let bad = |why: &str| format!("Invalid {what}: not a readable zip archive ({why})");
    let io = |e: io::Error| bad(&e.to_string());
    if len < 22 {
        return Err(bad("too short"));
    }
    // The end of central directory record: the last one in the final 64 KiB, its comment
    // running exactly to the end of the file.
    let tail_len = len.min(22 + 0xFFFF);
    let tail = read_at(file, len - tail_len, tail_len as usize).map_err(io)?;
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
    let (count32, size32, offset32) = (le16(eocd, 10), le32(eocd, 12), le32(eocd, 16));
    let (mut count, mut cd_size, mut cd_offset) = (count32 as u64, size32 as u64, offset32 as u64);
    let mut cd_end = eocd_offset;
    let loc = match eocd_offset.checked_sub(20) {
        Some(at) => read_at(file, at, 20).map_err(io)?,
        None => vec![],
    };
    if loc.starts_with(EOCD64_LOCATOR_SIG) {
        // Zip64 (as Python's zipfile reads it: whenever the locator is there): the zip64
        // record ends where the locator starts; the classic record holds its values, or
        // saturated fields.
        let (loc_offset, rec_offset) = (eocd_offset - 20, le64(&loc, 8));
        if le32(&loc, 4) != 0
            || le32(&loc, 16) != 1
            || rec_offset.checked_add(56).is_none_or(|e| e > loc_offset)
        {
            return Err(bad("invalid zip64 end of central directory locator"));
        }
        let rec = read_at(file, rec_offset, 56).map_err(io)?;
        (count, cd_size, cd_offset) = (le64(&rec, 32), le64(&rec, 40), le64(&rec, 48));
        if &rec[..4] != EOCD64_SIG
            || le64(&rec, 4).checked_add(12 + rec_offset) != Some(loc_offset)
            || le32(&rec, 16) != 0
            || le32(&rec, 20) != 0
            || le64(&rec, 24) != count
            || (count32 != 0xFFFF && count32 as u64 != count)
            || (size32 != 0xFFFF_FFFF && size32 as u64 != cd_size)
            || (offset32 != 0xFFFF_FFFF && offset32 as u64 != cd_offset)
        {
            return Err(bad("invalid zip64 end of central directory record"));
        }
        cd_end = rec_offset;
    } else if count32 == 0xFFFF || size32 == 0xFFFF_FFFF || offset32 == 0xFFFF_FFFF {
        return Err(bad("no zip64 end of central directory locator"));
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
    // The central directory and the zip64 records after it: no end record signature (the
    // zip crate could take it for another archive's), `count` headers filling the
    // directory exactly.
    let bytes = read_at(file, cd_offset, (len - cd_offset) as usize).map_err(io)?;
    if bytes[..(eocd_offset - cd_offset) as usize]
        .windows(4)
        .any(|w| w == EOCD_SIG)
    {
        return Err(bad(
            "an end of central directory signature inside the central directory",
        ));
    }
    let mut at = 0usize;
    for _ in 0..count {
        let h = bytes
            .get(at..at + 46)
            .filter(|h| at as u64 + 46 <= cd_size && &h[..4] == CDFH_SIG)
            .ok_or_else(|| bad("bad central directory header"))?;
        at += 46 + le16(h, 28) as usize + le16(h, 30) as usize + le16(h, 32) as usize;
    }
    match (at as u64).cmp(&cd_size) {
        std::cmp::Ordering::Less => Err(bad(
            "the central directory holds more than its declared entries",
        )),
        std::cmp::Ordering::Greater => Err(bad("the central directory is truncated")),
        std::cmp::Ordering::Equal => Ok((
            count,
            Tail {
                start: cd_offset,
                bytes: Arc::new(bytes),
            },
        )),
    }
}

/// The upload as the zip crate reads it: the checked [`Tail`] from memory, the members before
/// it from the file. Until [`open`] has the central directory listed, the bytes before the
/// tail read as zeros and a read wholly before it fails, so the crate's backward search for
/// another end record (which it starts when it cannot read a central directory) ends there.
pub(crate) struct Fenced {
    file: File,
    tail: Tail,
    pos: u64,
    fenced: Arc<AtomicBool>,
}

impl Read for Fenced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.tail.start;
        let n = if buf.is_empty() {
            0
        } else if self.pos >= start {
            let at = usize::try_from(self.pos - start).unwrap_or(usize::MAX);
            let tail = self.tail.bytes.get(at..).unwrap_or_default();
            let n = buf.len().min(tail.len());
            buf[..n].copy_from_slice(&tail[..n]);
            n
        } else {
            let before = usize::try_from(start - self.pos).map_or(buf.len(), |b| b.min(buf.len()));
            if !self.fenced.load(Ordering::Relaxed) {
                self.file.seek(SeekFrom::Start(self.pos))?;
                self.file.read(&mut buf[..before])?
            } else if before < buf.len() {
                buf[..before].fill(0);
                before
            } else {
                return Err(io::Error::other("read before the central directory"));
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Fenced {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.tail.end().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// Check the local header at `header_start` against the central directory: the same name
/// (`raw_name`) and compression `method`. The zip crate checks only its signature; a reader
/// that walks local headers would see another file, and Python's zipfile refuses the member.
pub(crate) fn check_local_header(
    file: &mut File,
    header_start: u64,
    raw_name: &[u8],
    method: u16,
) -> Result<(), String> {
    let header = read_at(file, header_start, 30).map_err(|e| e.to_string())?;
    let name =
        read_at(file, header_start + 30, le16(&header, 26) as usize).map_err(|e| e.to_string())?;
    if &header[..4] != LFH_SIG || name != raw_name || le16(&header, 8) != method {
        return Err("its local header does not match the central directory".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn config() -> zip::read::Config {
        zip::read::Config {
            archive_offset: zip::read::ArchiveOffset::Known(0),
        }
    }

    /// An archive of `names` written by the zip crate `at` bytes into a buffer of zeros.
    fn archive_at(at: usize, names: &[&str]) -> Vec<u8> {
        let mut buf = Cursor::new(vec![0u8; at]);
        buf.set_position(at as u64);
        let mut z = zip::ZipWriter::new(&mut buf);
        for name in names {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"x").unwrap();
        }
        z.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn the_zip_crate_finds_no_other_end_record() {
        // A stored member `junk` holding a whole archive (of more entries than the outer
        // one declares), then `a`; the outer central directory's entry for `junk` claims a
        // local header past the directory, which the zip crate refuses.
        let lfh_len = 30 + "junk".len();
        let hidden = archive_at(lfh_len, &["h/1", "h/2", "h/3"]);
        let mut buf = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let stored = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            z.start_file("junk", stored).unwrap();
            z.write_all(&hidden[lfh_len..]).unwrap();
            z.start_file("a", stored).unwrap();
            z.finish().unwrap();
        }
        let mut bytes = buf.into_inner();
        assert_eq!(&bytes[lfh_len..lfh_len + 4], b"PK\x03\x04");
        let cd = le32(&bytes, bytes.len() - 6) as usize;
        bytes[cd + 42..cd + 46].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        // Read as it is, the zip crate lists the hidden archive.
        let z = ZipArchive::with_config(config(), Cursor::new(&bytes)).unwrap();
        assert_eq!(z.file_names().collect::<Vec<_>>(), ["h/1", "h/2", "h/3"]);
        // Fenced, it finds nothing.
        let opened = |bytes: &[u8]| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(bytes).unwrap();
            open(f.path(), "wheel").map(|a| a.zip.len())
        };
        assert_eq!(
            opened(&bytes),
            Err("Invalid wheel: not a readable zip archive (the zip crate cannot read its central directory)".into())
        );
        // Nor does it in a central directory holding an end record signature.
        let e = opened(&archive_at(0, &["a", "PK\x05\x06"])).unwrap_err();
        assert!(
            e.contains("an end of central directory signature inside"),
            "{e}"
        );
        assert_eq!(opened(&archive_at(0, &["a", "b"])), Ok(2));
    }

    #[test]
    fn fenced_reads() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let fenced = Arc::new(AtomicBool::new(true));
        let mut r = Fenced {
            file: f,
            tail: Tail {
                start: 4,
                bytes: Arc::new(b"456789".to_vec()),
            },
            pos: 0,
            fenced: fenced.clone(),
        };
        let mut buf = [9u8; 6];
        r.seek(SeekFrom::Start(1)).unwrap();
        assert!(r.read(&mut buf[..3]).is_err());
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"\0\0\x00456");
        fenced.store(false, Ordering::Relaxed);
        r.seek(SeekFrom::Start(1)).unwrap();
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"123456");
        assert_eq!(r.seek(SeekFrom::End(-2)).unwrap(), 8);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"89");
    }
}
