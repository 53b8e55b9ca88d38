//! Durable writes of published files: temp file → fsync → rename → fsync(dir).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::RepoError;

/// The directory holding `path` ("." for a bare file name, whose parent is "").
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Write `bytes` to `path` atomically and durably (mode 0644).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    write_atomic_mode(path, bytes, 0o644)
}

/// Write `bytes` to `path` atomically and durably, creating it with `mode` (Unix).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), RepoError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(RepoError::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

/// Remove the temp files (`.NAME.PID.tmp`) a killed writer left in `dir`. Call only with the
/// publisher lock held: then nobody else is writing there.
pub fn remove_stale_temps(dir: &Path) -> Result<usize, RepoError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(RepoError::io(format!("listing {}", dir.display()), e)),
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Write `bytes` to `path` unless a complete file is already there (files appear only by
/// rename, so an existing one is whole). Returns the bytes now at `path`: a replayed publish
/// never puts two different files under one version name.
pub fn write_once(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, RepoError> {
    match fs::read(path) {
        Ok(existing) => Ok(existing),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(path, &bytes)?;
            Ok(bytes)
        }
        Err(e) => Err(RepoError::io(format!("reading {}", path.display()), e)),
    }
}

/// Write many new files durably with one filesystem sync instead of one fsync each: write
/// every temp file, `syncfs`, rename them into place, fsync the directories. Files already
/// present are kept (see `write_once`).
pub fn write_many_once(files: Vec<(std::path::PathBuf, Vec<u8>)>) -> Result<(), RepoError> {
    use rayon::prelude::*;
    // Temp files are written and renamed in parallel: creating thousands of files is most of
    // the cost of a large publish.
    let staged: Vec<(PathBuf, PathBuf)> = files
        .into_par_iter()
        .filter(|(path, _)| !path.exists())
        .map(|(path, bytes)| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = parent_dir(&path).join(format!(".{name}.{}.tmp", std::process::id()));
            fs::write(&tmp, &bytes)
                .map_err(|e| RepoError::io(format!("writing {}", tmp.display()), e))?;
            Ok((tmp, path))
        })
        .collect::<Result<_, RepoError>>()?;
    let temps: Vec<&Path> = staged.iter().map(|(t, _)| t.as_path()).collect();
    sync_files(&temps)?;
    staged.par_iter().try_for_each(|(tmp, path)| {
        fs::rename(tmp, path)
            .map_err(|e| RepoError::io(format!("renaming onto {}", path.display()), e))
    })?;
    let dirs: std::collections::BTreeSet<PathBuf> = staged
        .iter()
        .map(|(_, p)| parent_dir(p).to_path_buf())
        .collect();
    for d in dirs {
        fs::File::open(&d)
            .and_then(|f| f.sync_all())
            .map_err(|e| RepoError::io(format!("syncing {}", d.display()), e))?;
    }
    Ok(())
}

/// Make renames in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), RepoError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| RepoError::io(format!("syncing {}", dir.display()), e))
}

/// Make the data of `files` durable: Linux `syncfs` once on their filesystem; elsewhere an
/// fsync per file.
pub fn sync_files(files: &[&Path]) -> Result<(), RepoError> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = files;
        let f = fs::File::open(first)
            .map_err(|e| RepoError::io(format!("opening {}", first.display()), e))?;
        // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(RepoError::io("syncfs", std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = first;
        for p in files {
            fs::File::open(p)
                .and_then(|f| f.sync_all())
                .map_err(|e| RepoError::io(format!("syncing {}", p.display()), e))?;
        }
    }
    Ok(())
}
