//! The service's shared state: the task store, the bootstrap state, and the queue to the
//! worker thread that does every change (see `worker.rs`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, RwLock};

use serde_json::Value;

use crate::error::RstufError;
use crate::tasks::{new_task_id, TaskStore};

/// Setting: the bootstrap state (`pre-<task>`, `signing-<task>`, or the finishing task id).
pub const BOOTSTRAP: &str = "BOOTSTRAP";
/// Setting: a root waiting for signatures (JSON).
pub const ROOT_SIGNING: &str = "ROOT_SIGNING";

/// Work for the worker thread.
#[derive(Debug)]
pub enum Job {
    /// A task accepted through the API (or left unfinished by the previous process).
    Task {
        /// Task id.
        id: String,
        /// RSTUF task name (`add_artifacts`, `bootstrap`, …).
        name: String,
        /// The checked payload.
        payload: Value,
    },
    /// Re-sign online roles close to expiry.
    Refresh,
    /// Stop the worker.
    Stop,
}

/// RSTUF's view of the bootstrap state: (bootstrap finished, state name, task id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapState {
    /// Bootstrap finished.
    pub done: bool,
    /// `pre`, `signing`, `finished`, or `None` (available for bootstrap).
    pub state: Option<&'static str>,
    /// The bootstrap task id.
    pub task_id: Option<String>,
}

impl BootstrapState {
    /// From the stored setting.
    pub fn parse(value: Option<&str>) -> BootstrapState {
        match value {
            None => BootstrapState {
                done: false,
                state: None,
                task_id: None,
            },
            Some(v) => {
                let (state, id) = if let Some(id) = v.strip_prefix("pre-") {
                    ("pre", id)
                } else if let Some(id) = v.strip_prefix("signing-") {
                    ("signing", id)
                } else {
                    ("finished", v)
                };
                BootstrapState {
                    done: state == "finished",
                    state: Some(state),
                    task_id: Some(id.to_string()),
                }
            }
        }
    }

    /// The state as RSTUF prints it in messages (`None` when unset).
    pub fn name(&self) -> &'static str {
        self.state.unwrap_or("None")
    }
}

/// Shared by the HTTP handlers and the worker.
pub struct Service {
    /// Tasks and settings.
    pub tasks: TaskStore,
    /// The data directory (the repository lives here once bootstrapped).
    pub data_dir: PathBuf,
    /// Where `fn:` online keys are.
    pub online_key_dir: Option<PathBuf>,
    bootstrap: RwLock<Option<String>>,
    queue: Mutex<Sender<Job>>,
    /// Held while the service runs: one server per data directory.
    _lock: std::fs::File,
}

impl Service {
    /// Open the service state in `data_dir`; returns it and the worker's end of the queue.
    pub fn open(
        data_dir: &Path,
        online_key_dir: Option<PathBuf>,
    ) -> Result<(Service, Receiver<Job>), RstufError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| RstufError::io(format!("creating {}", data_dir.display()), e))?;
        let lock = lock_dir(data_dir)?;
        let tasks = TaskStore::open(&data_dir.join("rstuf.db"))?;
        let bootstrap = tasks.setting(BOOTSTRAP)?;
        let (tx, rx) = mpsc::channel();
        Ok((
            Service {
                tasks,
                data_dir: data_dir.to_path_buf(),
                online_key_dir,
                bootstrap: RwLock::new(bootstrap),
                queue: Mutex::new(tx),
                _lock: lock,
            },
            rx,
        ))
    }

    /// The bootstrap state.
    pub fn bootstrap_state(&self) -> BootstrapState {
        let v = self.bootstrap.read().unwrap_or_else(|p| p.into_inner());
        BootstrapState::parse(v.as_deref())
    }

    /// Record a new bootstrap state (stored, then visible).
    pub fn set_bootstrap(&self, value: Option<&str>) -> Result<(), RstufError> {
        self.tasks.set_setting(BOOTSTRAP, value)?;
        *self.bootstrap.write().unwrap_or_else(|p| p.into_inner()) = value.map(str::to_string);
        Ok(())
    }

    /// Move from "available" to `pre-<id>` atomically: false (nothing changed) if a bootstrap
    /// is done or in progress, so two bootstraps posted at once cannot both be accepted.
    pub fn begin_bootstrap(&self, id: &str) -> Result<bool, RstufError> {
        let mut v = self.bootstrap.write().unwrap_or_else(|p| p.into_inner());
        if v.is_some() {
            return Ok(false);
        }
        let pre = format!("pre-{id}");
        self.tasks.set_setting(BOOTSTRAP, Some(&pre))?;
        *v = Some(pre);
        Ok(true)
    }

    /// Hand a job to the worker.
    pub fn send(&self, job: Job) {
        let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        // The worker only stops at shutdown; a job sent then is run at the next start.
        let _ = q.send(job);
    }

    /// Accept a task: record it (readable at once, PENDING) and queue it. Returns its id.
    pub fn submit(&self, name: &str, payload: Value) -> Result<String, RstufError> {
        let id = new_task_id();
        self.submit_as(&id, name, payload)?;
        Ok(id)
    }

    /// [`Service::submit`] under a chosen id.
    pub fn submit_as(&self, id: &str, name: &str, payload: Value) -> Result<(), RstufError> {
        self.tasks.insert(id, name, &payload.to_string())?;
        self.send(Job::Task {
            id: id.to_string(),
            name: name.to_string(),
            payload,
        });
        Ok(())
    }

    /// Queue again the tasks the previous process accepted but did not finish.
    pub fn requeue_unfinished(&self) -> Result<usize, RstufError> {
        let left = self.tasks.unfinished()?;
        let n = left.len();
        for (id, name, payload) in left {
            let payload = serde_json::from_str(&payload).unwrap_or(Value::Null);
            self.send(Job::Task { id, name, payload });
        }
        Ok(n)
    }

    /// The root waiting for signatures, if any.
    pub fn root_signing(&self) -> Result<Option<Value>, RstufError> {
        Ok(self
            .tasks
            .setting(ROOT_SIGNING)?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// The published metadata directory.
    pub fn metadata_dir(&self) -> PathBuf {
        self.data_dir.join("metadata")
    }
}

/// Take `DIR/rstuf.lock` (released by the OS when the process ends): a second server on the
/// same data directory is refused, naming it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, RstufError> {
    use std::os::fd::AsRawFd;
    let path = dir.join("rstuf.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RstufError::io(format!("opening {}", path.display()), e))?;
    // SAFETY: flock only reads the descriptor, which `f` keeps open.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(RstufError::Refused(format!(
            "{} is in use by another tufpi repo serve (lock {})",
            dir.display(),
            path.display()
        )));
    }
    Ok(f)
}
