//! tufpi-fs: the workspace's one way to put a file on disk durably.
//!
//! A file is replaced atomically and durably: its bytes go to a temp file beside it, created
//! new (never an existing file, never through a symlink), which is synced, renamed over the
//! target, and the directory is synced so the rename survives a power loss. Readers see the
//! old file or the whole new one, never a part of it.
//!
//! | need | use |
//! |---|---|
//! | replace a file, durably | [`write_atomic`] |
//! | …with a mode (keys: `0o600`), or batching the syncs yourself | [`WriteOptions`] |
//! | a versioned file that is never rewritten | [`write_once`], [`write_many_once`] |
//! | a new file that must not exist yet (`O_EXCL`) | [`write_new`] |
//! | make renames / data durable | [`sync_dir`], [`sync_files`] |
//! | a directory, durably | [`ensure_dir`] |
//! | clean up after a killed writer | [`remove_stale_temps`], [`is_temp`] |
//!
//! Temp files are named `.NAME.PID.SEQ.tmp` ([`temp_path`]): NAME the target's file name,
//! PID this process, SEQ a per-process counter, so concurrent writers never share one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file-system operation that failed: what was being done, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct Error {
    context: String,
    source: io::Error,
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `source` with `context` (e.g. `writing /x/y.json`).
    pub fn new(context: impl Into<String>, source: io::Error) -> Error {
        Error {
            context: context.into(),
            source,
        }
    }

    /// What was being done.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The OS error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    /// The OS error's kind (`AlreadyExists` from [`write_new`], `NotFound`…).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// (context, OS error), for callers with their own error type.
    pub fn into_parts(self) -> (String, io::Error) {
        (self.context, self.source)
    }
}

impl From<Error> for io::Error {
    /// The same kind, the context in the message.
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The directory holding `path` ("." for a bare file name, whose parent is "").
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A fresh temp name beside `path`: `.NAME.PID.SEQ.tmp` (unique within this process).
pub fn temp_path(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    parent_dir(path).join(format!(".{name}.{}.{seq}.tmp", std::process::id()))
}

/// Whether a file name is a temp file of this crate: `.NAME.PID.SEQ.tmp`. The two forms
/// earlier versions wrote, `.NAME.PID.tmp` and `.PID.SEQ.tmp`, match too, so leftovers of
/// an upgraded writer are cleaned up: a leading dot, then `.DIGITS.tmp` at the end.
pub fn is_temp(file_name: &str) -> bool {
    let Some(inner) = file_name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
    else {
        return false;
    };
    match inner.rsplit_once('.') {
        Some((_, digits)) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Remove the temp files (see [`is_temp`]) a killed writer left in `dir`; returns how many.
/// A missing `dir` has none. Call it only when nobody else writes there (under the writer's
/// lock, or at start-up of the directory's only writer).
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::new(format!("listing {}", dir.display()), e)),
    };
    let mut removed = 0;
    for e in entries.flatten() {
        if is_temp(&e.file_name().to_string_lossy()) && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// How [`WriteOptions::write`] writes. The default is the durable one: mode `0o644`, the
/// data synced before the rename, the directory synced after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    mode: u32,
    sync_data: bool,
    sync_dir: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions::new()
    }
}

impl WriteOptions {
    /// Mode `0o644`, data and directory synced.
    pub const fn new() -> WriteOptions {
        WriteOptions {
            mode: 0o644,
            sync_data: true,
            sync_dir: true,
        }
    }

    /// Create the file with `mode` (Unix; the umask applies). Keys: `0o600`.
    pub const fn mode(self, mode: u32) -> WriteOptions {
        WriteOptions { mode, ..self }
    }

    /// Whether the data is synced before the rename. Off only where losing the file's
    /// content in a power loss is acceptable (a cache that re-verifies what it reads).
    pub const fn sync_data(self, on: bool) -> WriteOptions {
        WriteOptions {
            sync_data: on,
            ..self
        }
    }

    /// Whether the directory is synced after the rename. Off for a caller that writes several
    /// files and then calls [`sync_dir`] once itself.
    pub const fn sync_dir(self, on: bool) -> WriteOptions {
        WriteOptions {
            sync_dir: on,
            ..self
        }
    }

    /// Replace `path` with `bytes`: temp file (created new) → sync → rename → sync of the
    /// directory, as configured. On failure the temp file is removed and `path` is as it was.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let writing = || format!("writing {}", path.display());
        let (tmp, mut f) = create_temp(path, self.mode).map_err(|e| Error::new(writing(), e))?;
        let written =
            f.write_all(bytes)
                .and_then(|()| if self.sync_data { f.sync_all() } else { Ok(()) });
        drop(f);
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::new(writing(), e));
        }
        if self.sync_dir {
            fsync_dir(parent_dir(path)).map_err(|e| Error::new(writing(), e))?;
        }
        Ok(())
    }
}

/// A new temp file beside `path`, created with `mode` (`O_EXCL`: never an existing file or a
/// symlink). A name taken by a leftover of an earlier process with this PID is skipped.
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    let opts = create_new(mode);
    let mut tries = 0;
    loop {
        let tmp = temp_path(path);
        match opts.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Options creating a new file (`O_CREAT | O_EXCL`: never an existing file, never through a
/// symlink) with `mode` (Unix; the umask applies).
fn create_new(mode: u32) -> fs::OpenOptions {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    opts
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Replace `path` with `bytes` atomically and durably (mode `0o644`): [`WriteOptions::new`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    WriteOptions::new().write(path, bytes)
}

/// Write `bytes` to `path` unless a complete file is already there (files appear only by
/// rename, so an existing one is whole). Returns the bytes now at `path`: a replayed publish
/// never puts two different files under one version name.
pub fn write_once(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>> {
    match fs::read(path) {
        Ok(existing) => Ok(existing),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            write_atomic(path, &bytes)?;
            Ok(bytes)
        }
        Err(e) => Err(Error::new(format!("reading {}", path.display()), e)),
    }
}

/// Write many new files durably with one file-system sync instead of one fsync each: write
/// every temp file, [`sync_files`], link them into place ([`place_new`]), sync their
/// directories. Files already present, or put there meanwhile by anyone, are kept. On failure
/// the temp files are removed.
pub fn write_many_once(files: Vec<(PathBuf, Vec<u8>)>) -> Result<()> {
    use rayon::prelude::*;
    // Temp files are written and renamed in parallel: creating thousands of files is most of
    // the cost of a large publish.
    let staged: Vec<Result<(PathBuf, PathBuf)>> = files
        .into_par_iter()
        .filter(|(path, _)| !path.exists())
        .map(|(path, bytes)| {
            let writing = |e| Error::new(format!("writing {}", path.display()), e);
            let (tmp, mut f) = create_temp(&path, 0o644).map_err(writing)?;
            if let Err(e) = f.write_all(&bytes) {
                drop(f);
                let _ = fs::remove_file(&tmp);
                return Err(writing(e));
            }
            Ok((tmp, path))
        })
        .collect();
    let remove_all = |staged: &[(PathBuf, PathBuf)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    let mut ok = Vec::with_capacity(staged.len());
    let mut failed = None;
    for s in staged {
        match s {
            Ok(pair) => ok.push(pair),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        remove_all(&ok);
        return Err(e);
    }
    let temps: Vec<&Path> = ok.iter().map(|(t, _)| t.as_path()).collect();
    if let Err(e) = sync_files(&temps) {
        remove_all(&ok);
        return Err(e);
    }
    // Placed by a hard link, not a rename: a file another process put there meanwhile is
    // kept, never replaced (a publisher that lost its lease must not overwrite the next one's).
    let placed = ok.par_iter().try_for_each(|(tmp, path)| {
        place_new(tmp, path)
            .map(|_| ())
            .map_err(|e| Error::new(format!("creating {}", path.display()), e))
    });
    if let Err(e) = placed {
        // Those placed are gone already; the others are removed.
        remove_all(&ok);
        return Err(e);
    }
    let dirs: std::collections::BTreeSet<&Path> = ok.iter().map(|(_, p)| parent_dir(p)).collect();
    for d in dirs {
        sync_dir(d)?;
    }
    Ok(())
}

/// Give the complete, synced temp file `tmp` the name `path` unless that name exists, and drop
/// the temp name: a hard link, which the OS refuses for an existing name, so even another
/// process's file there is never replaced (a rename would replace it). Whether it was placed.
pub fn place_new(tmp: &Path, path: &Path) -> io::Result<bool> {
    let linked = fs::hard_link(tmp, path);
    let _ = fs::remove_file(tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Create `path` with `bytes` (mode `0o644`) unless it exists, durably and atomically across
/// processes: a temp file written and synced, then [`place_new`], then the directory synced.
/// Whether it was created (`false`: a file was there, and is kept as it is).
pub fn write_if_absent(path: &Path, bytes: &[u8]) -> Result<bool> {
    let writing = |e| Error::new(format!("writing {}", path.display()), e);
    let (tmp, mut f) = create_temp(path, 0o644).map_err(writing)?;
    if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = fs::remove_file(&tmp);
        return Err(writing(e));
    }
    drop(f);
    let created =
        place_new(&tmp, path).map_err(|e| Error::new(format!("creating {}", path.display()), e))?;
    if created {
        sync_dir(parent_dir(path))?;
    }
    Ok(created)
}

/// Create `path`, which must not exist (`O_CREAT | O_EXCL`: a concurrent writer cannot be
/// overwritten either, and a symlink there is not followed), with `mode` (Unix); write
/// `bytes` and make the file and its directory entry durable. If `path` exists the error's
/// [`kind`](Error::kind) is `AlreadyExists`; a partly written file is removed.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = create_new(mode)
        .open(path)
        .map_err(|e| Error::new(format!("creating {}", path.display()), e))?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| fsync_dir(parent_dir(path)));
    if let Err(e) = written {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(Error::new(format!("writing {}", path.display()), e));
    }
    Ok(())
}

/// Make the renames and creations in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fsync_dir(dir).map_err(|e| Error::new(format!("syncing {}", dir.display()), e))
}

/// Make the data of `files` durable: on Linux one `syncfs` of their file system (they must
/// share one); elsewhere an fsync per file.
pub fn sync_files(files: &[&Path]) -> Result<()> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let f = fs::File::open(first)
            .map_err(|e| Error::new(format!("opening {}", first.display()), e))?;
        // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(Error::new("syncfs", io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = first;
        for p in files {
            fs::File::open(p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::new(format!("syncing {}", p.display()), e))?;
        }
    }
    Ok(())
}

/// Create `dir` and any missing parents, making each new entry durable in its parent.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(Error::new(format!("creating {}", dir.display()), e)),
    }
    sync_dir(parent_dir(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(names(d.path()), ["a.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn mode_is_applied_and_default_is_0644() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("k.pem");
        WriteOptions::new().mode(0o600).write(&key, b"k").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        let plain = d.path().join("p");
        write_atomic(&plain, b"p").unwrap();
        // The umask may only take bits away.
        assert_eq!(mode(&plain) & !0o644, 0);
        assert_ne!(mode(&plain) & 0o600, 0);
    }

    #[test]
    fn unsynced_writes_still_land_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        let fast = WriteOptions::new().sync_data(false).sync_dir(false);
        assert_eq!(
            fast,
            WriteOptions::default().sync_data(false).sync_dir(false)
        );
        fast.write(&p, b"abc").unwrap();
        sync_dir(d.path()).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"abc");
        assert_eq!(names(d.path()), ["x"]);
    }

    #[test]
    fn failed_write_removes_its_temp_and_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        // A directory in the way: the rename fails.
        let p = d.path().join("busy");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("inside"), b"").unwrap();
        let e = write_atomic(&p, b"x").unwrap_err();
        assert_eq!(e.context(), format!("writing {}", p.display()));
        assert!(e
            .to_string()
            .starts_with(&format!("writing {}: ", p.display())));
        assert_eq!(names(d.path()), ["busy"]);
        // No such directory: the temp cannot be created.
        let e = write_atomic(&d.path().join("no/such"), b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(io.to_string().contains("no/such"), "{io}");
    }

    #[test]
    fn temp_names_have_one_format() {
        let t = temp_path(Path::new("/r/metadata/3.bin-0a.json"));
        assert_eq!(t.parent(), Some(Path::new("/r/metadata")));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        let pid = std::process::id().to_string();
        let inner = name
            .strip_prefix(".3.bin-0a.json.")
            .and_then(|n| n.strip_suffix(".tmp"))
            .unwrap();
        let (p, seq) = inner.split_once('.').unwrap();
        assert_eq!(p, pid);
        assert!(seq.bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert!(is_temp(&name));
        assert_ne!(temp_path(Path::new("x")), temp_path(Path::new("x")));
        assert_eq!(temp_path(Path::new("x")).parent(), Some(Path::new(".")));
    }

    #[test]
    fn is_temp_matches_temps_only() {
        for t in [".a.json.12.3.tmp", ".a.json.12.tmp", ".1.0.tmp", "..5.tmp"] {
            assert!(is_temp(t), "{t}");
        }
        for n in [
            "a.json",
            "timestamp.json",
            "3.snapshot.json",
            ".hidden",
            ".notes.tmp",
            ".a.json.12.x.tmp",
            "a.1.2.tmp",
            ".tmp",
            "..tmp",
            ".a..tmp",
        ] {
            assert!(!is_temp(n), "{n}");
        }
    }

    #[test]
    fn remove_stale_temps_removes_temps_only() {
        let d = tempfile::tempdir().unwrap();
        for n in ["1.root.json", ".1.root.json.99.0.tmp", ".x.7.tmp", ".keep"] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        assert_eq!(remove_stale_temps(d.path()).unwrap(), 2);
        assert_eq!(names(d.path()), [".keep", "1.root.json"]);
        assert_eq!(remove_stale_temps(&d.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn a_leftover_temp_name_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        // Occupy the next few names, as an earlier process with this PID could have.
        let next: Vec<PathBuf> = (0..3).map(|_| temp_path(&p)).collect();
        let seq = |t: &Path| -> u64 {
            let n = t.file_name().unwrap().to_string_lossy().into_owned();
            let inner = n.strip_suffix(".tmp").unwrap();
            inner.rsplit_once('.').unwrap().1.parse().unwrap()
        };
        let last = seq(next.last().unwrap());
        for k in 1..=4 {
            let name = format!(".f.{}.{}.tmp", std::process::id(), last + k);
            fs::write(d.path().join(name), b"old").unwrap();
        }
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(remove_stale_temps(d.path()).unwrap(), 4);
    }

    #[test]
    fn write_once_keeps_what_is_there() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("1.root.json");
        assert_eq!(write_once(&p, b"a".to_vec()).unwrap(), b"a");
        assert_eq!(write_once(&p, b"b".to_vec()).unwrap(), b"a");
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }

    #[test]
    fn write_many_once_writes_new_files_and_keeps_old_ones() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(d.path().join("0"), b"old").unwrap();
        let mut files: Vec<(PathBuf, Vec<u8>)> = (0..50)
            .map(|i| (d.path().join(i.to_string()), vec![b'a'; i]))
            .collect();
        files.push((sub.join("s"), b"s".to_vec()));
        write_many_once(files).unwrap();
        assert_eq!(fs::read(d.path().join("0")).unwrap(), b"old");
        assert_eq!(fs::read(d.path().join("49")).unwrap(), vec![b'a'; 49]);
        assert_eq!(fs::read(sub.join("s")).unwrap(), b"s");
        assert_eq!(names(d.path()).len(), 51);
        write_many_once(Vec::new()).unwrap();
    }

    #[test]
    fn write_many_once_failure_leaves_no_temps() {
        let d = tempfile::tempdir().unwrap();
        let files = vec![
            (d.path().join("ok"), b"1".to_vec()),
            (d.path().join("missing/x"), b"2".to_vec()),
        ];
        let e = write_many_once(files).unwrap_err();
        assert!(e.to_string().contains("missing/x"), "{e}");
        assert!(!d.path().join("ok").exists());
        assert_eq!(names(d.path()), Vec::<String>::new());
    }

    #[test]
    fn write_new_refuses_an_existing_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.pem");
        write_new(&p, b"first", 0o600).unwrap();
        let e = write_new(&p, b"second", 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(e.context(), format!("creating {}", p.display()));
        assert_eq!(fs::read(&p).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            // A symlink is not followed.
            let target = d.path().join("target");
            std::os::unix::fs::symlink(&target, d.path().join("link")).unwrap();
            let e = write_new(&d.path().join("link"), b"x", 0o600).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            assert!(!target.exists());
        }
    }

    #[test]
    fn ensure_dir_creates_parents() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        ensure_dir(&deep).unwrap();
        assert!(deep.is_dir());
        ensure_dir(&deep).unwrap();
        fs::write(d.path().join("file"), b"").unwrap();
        let e = ensure_dir(&d.path().join("file/x")).unwrap_err();
        assert!(e.context().starts_with("creating "), "{e}");
    }

    #[test]
    fn concurrent_writers_never_share_a_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("shared");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(p, &[i; 64]).unwrap();
                    }
                });
            }
        });
        let got = fs::read(&p).unwrap();
        assert_eq!(got.len(), 64);
        assert!(got.iter().all(|&b| b == got[0]));
        assert_eq!(names(d.path()), ["shared"]);
    }

    #[test]
    fn sync_helpers() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::write(&a, b"a").unwrap();
        sync_files(&[a.as_path()]).unwrap();
        sync_files(&[]).unwrap();
        sync_dir(d.path()).unwrap();
        let e = sync_dir(&d.path().join("nope")).unwrap_err();
        assert_eq!(
            e.context(),
            format!("syncing {}", d.path().join("nope").display())
        );
    }

    #[test]
    fn a_name_taken_meanwhile_is_never_replaced() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("3.bin-1.json");
        // Another process's file appears after this writer checked and staged its own.
        let tmp = d.path().join(".3.bin-1.json.1.0.tmp");
        fs::write(&tmp, b"stale leader").unwrap();
        fs::write(&path, b"new leader").unwrap();
        assert!(!place_new(&tmp, &path).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"new leader");
        assert!(!tmp.exists(), "the temp name is dropped either way");
        // Absent: placed.
        let other = d.path().join("4.bin-1.json");
        assert!(write_if_absent(&other, b"a").unwrap());
        assert!(!write_if_absent(&other, b"b").unwrap());
        assert_eq!(fs::read(&other).unwrap(), b"a");
        let names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
