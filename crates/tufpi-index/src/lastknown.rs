//! Reads that outlive a database outage (scaled out): the lookups behind every page and
//! file request (the project list, a project's current pages, a page by digest, a file by
//! name) remember
//! their last answer, and while the database cannot be reached they are answered from it.
//! Nothing can be committed meanwhile, so what a replica last saw is what it would serve.
//! After a failure the database is left alone for a moment, so that each request does not
//! wait out the connection timeout again. Embedded, these are plain reads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use tufpi_simple::PageKind;

use crate::db::{IndexDb, Project};
use crate::error::IndexError;
use crate::index::Index;
use crate::pages::FileRow;

/// Every project's (normalised, display) names.
pub type ProjectList = Vec<(String, String)>;

/// Answers remembered per kind of lookup.
const ENTRIES: usize = 100_000;

/// How long after an unreachable database remembered answers are served without asking it.
const BACK_OFF: Duration = Duration::from_secs(2);

/// The last answers of the lookups pages and files are served by.
pub(crate) struct LastKnown {
    projects: Cache<String, Option<Project>>,
    files: Cache<String, Option<FileRow>>,
    pages: Cache<String, Option<String>>,
    /// The project list (one entry, shared: not copied per request).
    projects_list: Cache<String, Arc<ProjectList>>,
    down_until: Mutex<Option<Instant>>,
}

impl LastKnown {
    /// Nothing remembered yet.
    pub(crate) fn new() -> LastKnown {
        LastKnown {
            projects: Cache::new(ENTRIES),
            files: Cache::new(ENTRIES),
            pages: Cache::new(ENTRIES),
            projects_list: Cache::new(1),
            down_until: Mutex::new(None),
        }
    }

    fn down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }

    fn mark_down(&self) {
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + BACK_OFF);
    }
}

impl Index {
    /// `f`'s answer for `key`, remembered in `cache` (scaled out; see the module docs).
    fn known<T: Clone>(
        &self,
        cache: impl Fn(&LastKnown) -> &Cache<String, T>,
        key: String,
        f: impl FnOnce(&IndexDb) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let Some(k) = &self.known else {
            return self.read(f);
        };
        if k.down() {
            if let Some(v) = cache(k).get(&key) {
                return Ok(v);
            }
        }
        match self.read(f) {
            Ok(v) => {
                cache(k).insert(key, v.clone());
                Ok(v)
            }
            Err(e @ IndexError::Unavailable(_)) => {
                k.mark_down();
                cache(k).get(&key).ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    /// A project by normalised name (its current pages).
    pub fn project(&self, name: &str) -> Result<Option<Project>, IndexError> {
        self.known(|k| &k.projects, name.to_string(), |db| db.project(name))
    }

    /// Every project: (normalised, display) names, by normalised name.
    pub fn projects(&self) -> Result<Arc<ProjectList>, IndexError> {
        self.known(
            |k| &k.projects_list,
            String::new(),
            |db| db.projects().map(Arc::new),
        )
    }

    /// A file by name.
    pub fn file(&self, filename: &str) -> Result<Option<FileRow>, IndexError> {
        self.known(|k| &k.files, filename.to_string(), |db| db.file(filename))
    }

    /// The SHA-256 of `project`'s page of `kind` whose SHA-256 or BLAKE2b is `digest`.
    pub fn page(
        &self,
        project: &str,
        kind: PageKind,
        digest: &str,
    ) -> Result<Option<String>, IndexError> {
        let key = format!("{project}\0{}\0{digest}", kind.target_basename());
        self.known(|k| &k.pages, key, |db| db.page(project, kind, digest))
    }
}
