//! The publisher lock: one writer per repository. An `flock` on `DIR/publisher.lock`, which
//! the OS drops when the holder dies, so a crashed publisher cannot keep it; the file names
//! the holder (PID and program) so a refusal can say who has it.

use std::fs::File;
use std::path::Path;

use fs4::fs_std::FileExt;
use tracing::warn;

use crate::error::RepoError;

/// The publisher lock's file in a repository directory.
const LOCK_FILE: &str = "publisher.lock";

/// Who holds a repository's publisher lock, as the holder wrote it in the lock file. The
/// `flock` on the file is the lock; this is only for saying who has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's process id; `None` if it has not written it yet (or the file names a
    /// process that no longer runs: written by a holder killed before it could clear it).
    pub pid: Option<u32>,
    /// What holds it: given to [`Repository::lock_as`](crate::Repository::lock_as) (e.g.
    /// `tufpi serve`), or the program and its subcommands. Empty if unknown.
    pub what: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "PID {pid}")?,
            None => write!(f, "another process")?,
        }
        if !self.what.is_empty() {
            write!(f, " ({})", self.what)?;
        }
        Ok(())
    }
}

/// The holder of the publisher lock of the repository in `dir`; `None` if nobody holds it.
/// Probing takes a shared lock for an instant: a publisher locking at that very instant is
/// refused as if the lock were held (it queues; the holder publishes).
pub fn lock_holder(dir: &Path) -> Option<LockHolder> {
    let path = dir.join(LOCK_FILE);
    let f = File::open(&path).ok()?;
    if FileExt::try_lock_shared(&f).unwrap_or(false) {
        return None; // released when `f` closes
    }
    Some(read_lock_holder(&path))
}

/// What the lock file at `path` says about its holder.
fn read_lock_holder(path: &Path) -> LockHolder {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().next().unwrap_or("");
    let (pid, what) = line.split_once(' ').unwrap_or((line, ""));
    match pid.parse::<u32>().ok().filter(|&p| process_alive(p)) {
        Some(pid) => LockHolder {
            pid: Some(pid),
            what: what.trim().to_string(),
        },
        None => LockHolder {
            pid: None,
            what: String::new(),
        },
    }
}

/// Whether a process `pid` exists (signal 0 checks without sending anything).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: kill with signal 0 sends nothing; it only reports whether `pid` exists.
        let sent = unsafe { libc::kill(pid, 0) } == 0;
        sent || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// This program and up to two subcommands (`tufpi repo publish`): what holds a lock taken
/// by [`Repository::lock`](crate::Repository::lock). Options and what follows them are left
/// out (they may be secret).
pub(crate) fn this_program() -> String {
    let mut args = std::env::args();
    let mut words: Vec<String> = args
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(a)
        })
        .into_iter()
        .collect();
    words.extend(
        args.take_while(|a| !a.starts_with('-'))
            .take(2)
            .filter(|a| a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')),
    );
    words.join(" ")
}

/// The held lock file. Its holder line is cleared on release, so only a killed holder leaves
/// one behind (and [`read_lock_holder`] checks that the process still runs).
pub(crate) struct LockFile(File);

impl LockFile {
    /// Write `PID WHAT` into the lock file (informational: failures are only logged).
    pub(crate) fn record(&self, what: &str) {
        use std::io::{Seek, SeekFrom, Write};
        let line = format!(
            "{} {}\n",
            std::process::id(),
            what.replace(['\r', '\n'], " ")
        );
        let mut f = &self.0;
        let written = f
            .set_len(0)
            .and_then(|()| f.seek(SeekFrom::Start(0)))
            .and_then(|_| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            warn!("writing the publisher lock's holder: {e}");
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}

/// Take the publisher lock of the repository in `dir`, recording `what` as the holder; refused
/// (naming the holder) if another process has it.
pub(crate) fn acquire(dir: &Path, what: &str) -> Result<LockFile, RepoError> {
    let path = dir.join(LOCK_FILE);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RepoError::io(format!("opening {}", path.display()), e))?;
    if !f.try_lock_exclusive().unwrap_or(false) {
        let holder = read_lock_holder(&path);
        return Err(RepoError::Locked(
            match (holder.pid, holder.what.as_str()) {
                (Some(pid), "") => format!("{} (PID {pid})", path.display()),
                (Some(pid), what) => format!("{} (PID {pid}: {what})", path.display()),
                (None, _) => path.display().to_string(),
            },
        ));
    }
    let f = LockFile(f);
    f.record(what);
    Ok(f)
}
