//! The worker: one thread that owns the repository and runs every task in order, as RSTUF's
//! worker does, but in milliseconds. Artifact tasks that arrive together are batched: each
//! one's changes are queued (its own transaction, so a bad one fails alone), then one publish
//! signs every touched bin, snapshot and timestamp once for all of them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use tracing::{error, info, warn};
use tufpi_core::metadata::{Metadata, Signature};
use tufpi_repo::config::ExpiryRole;
use tufpi_repo::{layout, Backend, Change, RepoConfig, Repository, TargetRecord};

use crate::error::RstufError;
use crate::payload;
use crate::roots;
use crate::service::{Job, Service, ROOT_SIGNING};
use crate::settings;
use crate::tasks::{result, state};
use crate::validate::Check;

/// Most tasks taken from the queue for one batch.
const MAX_BATCH: usize = 4096;

/// What the publisher's batches hold at most.
const PUBLISH_BATCH: usize = 100_000;

/// The worker's state.
pub struct Worker {
    svc: Arc<Service>,
    repo: Option<Repository>,
}

/// One artifact task in a batch.
struct ArtifactTask {
    id: String,
    name: String,
    publish: bool,
    outcome: Result<Value, RstufError>,
}

impl Worker {
    /// A worker over `svc`; opens the repository if bootstrap has finished.
    pub fn new(svc: Arc<Service>) -> Result<Worker, RstufError> {
        let mut w = Worker { svc, repo: None };
        if w.svc.bootstrap_state().done {
            let mut repo = Repository::open(&w.svc.data_dir)?;
            repo.lock_as("tufpi repo serve (RSTUF API)")?;
            // The settings are RSTUF's to keep: a repository made before the per-role
            // expiries existed takes them now.
            repo.set_expiry_policy(&settings::repo_config(&w.svc.tasks)?)?;
            // An interrupted publish is finished before anything else (and online roles due
            // re-signed); changes queued without publishing stay queued.
            repo.refresh(Duration::zero())?;
            w.repo = Some(repo);
        }
        Ok(w)
    }

    /// Run until [`Job::Stop`] or the queue closes.
    pub fn run(mut self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            let stop = batch.iter().any(|j| matches!(j, Job::Stop));
            let ids: Vec<String> = batch
                .iter()
                .filter_map(|j| match j {
                    Job::Task { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .collect();
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_batch(batch);
            }));
            if ran.is_err() {
                // A bug, not an input: the tasks fail, the worker goes on with the next ones.
                error!(
                    tasks = ids.len(),
                    "the worker panicked: tasks marked FAILURE"
                );
                let res = result("internal", "Task failed", Some("internal error"), None);
                let unfinished = |id: &String| {
                    self.svc
                        .tasks
                        .get(id)
                        .ok()
                        .flatten()
                        .is_some_and(|(st, _)| st == state::PENDING || st == state::RUNNING)
                };
                let updates: Vec<_> = ids
                    .into_iter()
                    .filter(unfinished)
                    .map(|id| (id, state::FAILURE, Some(res.clone())))
                    .collect();
                let _ = self.svc.tasks.set_many(&updates);
            }
            if stop {
                break;
            }
        }
        info!("RSTUF worker stopped");
    }

    fn run_batch(&mut self, batch: Vec<Job>) {
        let mut run: Vec<(String, String, Value)> = Vec::new();
        for job in batch {
            match job {
                Job::Task { id, name, payload } if is_artifact_task(&name) => {
                    run.push((id, name, payload));
                }
                Job::Task { id, name, payload } => {
                    self.artifact_run(std::mem::take(&mut run));
                    self.one(&id, &name, payload);
                }
                Job::Refresh => {
                    self.artifact_run(std::mem::take(&mut run));
                    self.refresh();
                }
                Job::Stop => {}
            }
        }
        self.artifact_run(run);
    }

    /// Re-sign online roles near expiry (RSTUF's scheduled bump); forget old task results.
    fn refresh(&mut self) {
        match self.svc.tasks.prune(crate::tasks::KEEP_RESULTS) {
            Ok(0) => {}
            Ok(n) => info!(tasks = n, "old task results forgotten"),
            Err(e) => error!("pruning old task results: {e}"),
        }
        let Some(repo) = self.repo.as_mut() else {
            return;
        };
        match repo.refresh(refresh_margin(repo.config())) {
            Ok(0) => {}
            Ok(n) => info!(bins = n, "online roles re-signed before expiry"),
            Err(e) => error!("re-signing online roles before expiry: {e}"),
        }
    }

    /// Add, delete and publish tasks that came together: queue all, publish once.
    fn artifact_run(&mut self, run: Vec<(String, String, Value)>) {
        if run.is_empty() {
            return;
        }
        let mut done: Vec<ArtifactTask> = Vec::with_capacity(run.len());
        let mut added_here: HashSet<String> = HashSet::new();
        let mut bin_cache: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, name, payload) in run {
            let (publish, outcome) = match self.repo.as_mut() {
                None => (false, Err(not_bootstrapped())),
                Some(repo) => match name.as_str() {
                    "add_artifacts" => queue_add(repo, &payload, &mut added_here),
                    "remove_artifacts" => queue_remove(repo, &payload, &added_here, &mut bin_cache),
                    _ => (true, Ok(json!({"target_roles": Value::Null}))),
                },
            };
            done.push(ArtifactTask {
                id,
                name,
                publish,
                outcome,
            });
        }
        let publish_err = match self.repo.as_mut() {
            Some(repo) if done.iter().any(|t| t.publish && t.outcome.is_ok()) => {
                repo.publish(PUBLISH_BATCH).err()
            }
            _ => None,
        };
        let updates: Vec<(String, &str, Option<Value>)> = done
            .into_iter()
            .map(|t| {
                let (ok_msg, fail_msg) = messages(&t.name);
                let outcome = match (&publish_err, t.outcome) {
                    (Some(e), Ok(_)) if t.publish => Err(e.to_string()),
                    (_, Ok(d)) => Ok(d),
                    (_, Err(e)) => Err(e.to_string()),
                };
                match outcome {
                    Ok(details) => (
                        t.id,
                        state::SUCCESS,
                        Some(result(&t.name, ok_msg, None, Some(details))),
                    ),
                    Err(e) => {
                        warn!(task = %t.id, "{} failed: {e}", t.name);
                        (
                            t.id,
                            state::ERRORED,
                            Some(result(&t.name, fail_msg, Some(&e), None)),
                        )
                    }
                }
            })
            .collect();
        if let Err(e) = self.svc.tasks.set_many(&updates) {
            error!("recording {} task results: {e}", updates.len());
        }
    }

    /// Run one non-artifact task and record its result.
    fn one(&mut self, id: &str, name: &str, payload: Value) {
        if let Err(e) = self.svc.tasks.set(id, state::RUNNING, None) {
            error!(task = %id, "recording the state: {e}");
        }
        let outcome = match name {
            "bootstrap" => self.bootstrap(id, &payload),
            "metadata_update" => self.metadata_update(&payload),
            "sign_metadata" => self.sign(&payload),
            "delete_sign_metadata" => self.delete_sign(&payload),
            "update_settings" => self.update_settings(&payload),
            "force_online_metadata_update" => self.force_online(&payload),
            other => Err(RstufError::Refused(format!("unknown task {other}"))),
        };
        let (ok_msg, fail_msg) = messages(name);
        let (st, res) = match outcome {
            Ok(details) => (state::SUCCESS, result(name, ok_msg, None, Some(details))),
            Err(e) => {
                warn!(task = %id, "{name} failed: {e}");
                (
                    state::ERRORED,
                    result(name, fail_msg, Some(&e.to_string()), None),
                )
            }
        };
        if let Err(e) = self.svc.tasks.set(id, st, Some(res)) {
            error!(task = %id, "recording the result: {e}");
        }
    }

    fn bootstrap(&mut self, id: &str, payload: &Value) -> Result<Value, RstufError> {
        let bs = self.svc.bootstrap_state();
        let mine = bs.state == Some("pre") && bs.task_id.as_deref() == Some(id);
        if self.repo.is_some() || !(bs.state.is_none() || mine) {
            return Err(RstufError::Refused(format!(
                "bootstrap state is {}: the repository is bootstrapped or a bootstrap is \
                 in progress",
                bs.name()
            )));
        }
        let res = self.bootstrap_inner(id, payload);
        if res.is_err() {
            // As RSTUF: a failed bootstrap leaves the service available for another.
            let _ = self.svc.set_bootstrap(None);
        }
        res
    }

    fn bootstrap_inner(&mut self, id: &str, payload: &Value) -> Result<Value, RstufError> {
        let mut c = Check::new();
        let b = payload::bootstrap(&mut c, payload).ok_or_else(|| invalid_payload(c))?;
        roots::check_layout(&b.root)?;
        roots::check_signatures(&b.root, None)?;
        // The online key must be usable before anything is recorded.
        crate::online::load(&b.root, self.svc.online_key_dir.as_deref())?;
        settings::save_bootstrap(&self.svc.tasks, &b)?;
        let message = if roots::threshold_met(&b.root, None) {
            self.finish_bootstrap(id, b.root)?;
            format!("Bootstrap finished {id}")
        } else {
            self.svc
                .tasks
                .set_setting(ROOT_SIGNING, Some(&roots::to_json(&b.root)))?;
            self.svc.set_bootstrap(Some(&format!("signing-{id}")))?;
            format!("Root v{} is pending signature", b.root.signed.version)
        };
        info!("{message}");
        Ok(json!({ "bootstrap": message }))
    }

    /// Publish the bootstrap root and every online role.
    fn finish_bootstrap(&mut self, id: &str, root: Metadata) -> Result<(), RstufError> {
        let online = crate::online::load(&root, self.svc.online_key_dir.as_deref())?;
        let config = settings::repo_config(&self.svc.tasks)?;
        let dir = &self.svc.data_dir;
        std::fs::create_dir_all(dir.join("metadata"))
            .map_err(|e| RstufError::io("creating the metadata directory", e))?;
        let mut repo = Repository::init_with_root(Backend::embedded(dir)?, config, root, online)?;
        repo.lock_as("tufpi repo serve (RSTUF API)")?;
        self.svc.tasks.set_setting(ROOT_SIGNING, None)?;
        self.svc.set_bootstrap(Some(id))?;
        self.repo = Some(repo);
        Ok(())
    }

    fn metadata_update(&mut self, payload: &Value) -> Result<Value, RstufError> {
        let repo = self.repo.as_ref().ok_or_else(not_bootstrapped)?;
        let mut c = Check::new();
        let new = payload::metadata_update(&mut c, payload).ok_or_else(|| invalid_payload(c))?;
        let trusted = repo.current("root")?;
        let want = trusted.signed.version + 1;
        if new.signed.version != want {
            return Err(RstufError::Refused(format!(
                "metadata.root: version {} is not the next version of the trusted root \
                 (v{}): expected {want}",
                new.signed.version, trusted.signed.version
            )));
        }
        if self.svc.root_signing()?.is_some() {
            return Err(RstufError::Refused(
                "a root is already waiting for signatures: sign it or stop its signing \
                 (POST /api/v1/metadata/sign/delete) first"
                    .into(),
            ));
        }
        roots::check_layout(&new)?;
        roots::check_signatures(&new, Some(&trusted))?;
        // A new online key must be usable before anything is recorded.
        self.online_key_for(&new)?;
        let message = if roots::threshold_met(&new, Some(&trusted)) {
            self.finish_update(new)?
        } else {
            self.svc
                .tasks
                .set_setting(ROOT_SIGNING, Some(&roots::to_json(&new)))?;
            format!("Root v{} is pending signatures", new.signed.version)
        };
        info!("{message}");
        Ok(json!({ "role": "root", "update": message }))
    }

    /// The online key `root` names, if it differs from the one in use.
    fn online_key_for(
        &self,
        root: &Metadata,
    ) -> Result<Option<tufpi_repo::keys::SigningKey>, RstufError> {
        let (keyid, _) = crate::online::online_entry(root)?;
        let current = self.repo.as_ref().and_then(|r| {
            tufpi_repo::keys::load_in(r.keys_dir(), "online")
                .ok()
                .flatten()
        });
        if current.is_some_and(|k| k.keyid == keyid) {
            return Ok(None);
        }
        crate::online::load(root, self.svc.online_key_dir.as_deref()).map(Some)
    }

    /// Publish a root signed to threshold (with every online role re-signed if the online
    /// key changed).
    fn finish_update(&mut self, new: Metadata) -> Result<String, RstufError> {
        let key = self.online_key_for(&new)?;
        let rotated = key.is_some();
        let version = new.signed.version;
        let repo = self.repo.as_mut().ok_or_else(not_bootstrapped)?;
        repo.publish_offline_key(vec![new], key)?;
        self.svc.tasks.set_setting(ROOT_SIGNING, None)?;
        Ok(if rotated {
            format!("Root v{version} published; online roles re-signed with the new online key")
        } else {
            format!("Root v{version} published")
        })
    }

    fn sign(&mut self, payload: &Value) -> Result<Value, RstufError> {
        let mut c = Check::new();
        let s = payload::sign(&mut c, payload).ok_or_else(|| invalid_payload(c))?;
        if s.role != "root" {
            return Err(RstufError::Refused(format!(
                "role {}: only root is signed through this API (custom delegations are not \
                 supported)",
                s.role
            )));
        }
        let pending = self
            .svc
            .root_signing()?
            .ok_or_else(|| RstufError::Refused("no signing pending for root".into()))?;
        let mut root = roots::from_json("root", &pending)?;
        let trusted = match &self.repo {
            Some(r) => Some(r.current("root")?),
            None => None,
        };
        let sig = Signature {
            keyid: s.keyid,
            sig: s.sig,
            unrecognized: Default::default(),
        };
        roots::check_one_signature(&root, trusted.as_ref(), &sig)?;
        root.add_signature(sig);
        let message = if roots::threshold_met(&root, trusted.as_ref()) {
            if trusted.is_none() {
                let bs = self.svc.bootstrap_state();
                let id = bs.task_id.unwrap_or_default();
                self.finish_bootstrap(&id, root)?;
                format!("Bootstrap finished {id}")
            } else {
                self.finish_update(root)?
            }
        } else {
            self.svc
                .tasks
                .set_setting(ROOT_SIGNING, Some(&roots::to_json(&root)))?;
            format!("Root v{} is pending signatures", root.signed.version)
        };
        info!("{message}");
        Ok(json!({ "role": "root", "message": message }))
    }

    fn delete_sign(&mut self, payload: &Value) -> Result<Value, RstufError> {
        let mut c = Check::new();
        let role = payload::role(&mut c, payload).ok_or_else(|| invalid_payload(c))?;
        if role != "root" || self.svc.root_signing()?.is_none() {
            return Err(RstufError::Refused(format!(
                "the {role} role is not in a signing process"
            )));
        }
        self.svc.tasks.set_setting(ROOT_SIGNING, None)?;
        if self.svc.bootstrap_state().state == Some("signing") {
            self.svc.set_bootstrap(None)?;
        }
        Ok(json!({ "deleted_signing_process": role }))
    }

    fn update_settings(&mut self, payload: &Value) -> Result<Value, RstufError> {
        let mut c = Check::new();
        let exp = payload::config(&mut c, payload).ok_or_else(|| invalid_payload(c))?;
        let (updated, invalid) = settings::update_expirations(&self.svc.tasks, &exp)?;
        if let Some(repo) = self.repo.as_mut() {
            repo.set_expiry_policy(&settings::repo_config(&self.svc.tasks)?)?;
            // Online roles are re-signed now, so none outlives its new setting (root, signed
            // offline, takes its new expiry at its next version).
            if updated.iter().any(|r| r != "root") {
                repo.refresh(RESIGN_ALL)?;
            }
        }
        Ok(json!({ "updated_roles": updated, "invalid_roles": invalid }))
    }

    fn force_online(&mut self, payload: &Value) -> Result<Value, RstufError> {
        let mut c = Check::new();
        let roles = payload::online_roles(&mut c, payload).ok_or_else(|| invalid_payload(c))?;
        let repo = self.repo.as_mut().ok_or_else(not_bootstrapped)?;
        // Every online role gets a new version (RSTUF bumps the ones named; the bins and
        // targets here are re-signed together with snapshot and timestamp).
        let n = repo.refresh(RESIGN_ALL)?;
        Ok(json!({ "updated_roles": roles, "bins": n }))
    }
}

/// A refresh margin no expiry is beyond: every online role is re-signed.
const RESIGN_ALL: Duration = Duration::days(365 * 1000);

/// How close to its expiry an online role is re-signed: RSTUF's hour, or half the shortest
/// online period when that is shorter, so every role (each with its own period) is re-signed
/// before it expires, whichever the refresh timer checks first.
fn refresh_margin(cfg: &RepoConfig) -> Duration {
    [
        ExpiryRole::Timestamp,
        ExpiryRole::Snapshot,
        ExpiryRole::Bin,
        ExpiryRole::Targets,
    ]
    .into_iter()
    .map(|role| cfg.expiry(role) / 2)
    .fold(Duration::hours(1), Duration::min)
}

fn is_artifact_task(name: &str) -> bool {
    matches!(
        name,
        "add_artifacts" | "remove_artifacts" | "publish_artifacts"
    )
}

fn not_bootstrapped() -> RstufError {
    RstufError::Refused("it requires bootstrap finished".into())
}

fn invalid_payload(c: Check) -> RstufError {
    RstufError::Refused(format!("invalid payload: {}", c.into_detail()["detail"]))
}

/// (success, failure) messages of a task, as RSTUF's worker words them.
fn messages(name: &str) -> (&'static str, &'static str) {
    match name {
        "add_artifacts" => ("Artifact(s) Added", "Adding artifact(s) Failed"),
        "remove_artifacts" => ("Artifact(s) removed", "Removing artifact(s) Failed"),
        "publish_artifacts" => ("Publish Artifacts Processed", "Publish Artifacts Failed"),
        "bootstrap" => ("Bootstrap Processed", "Bootstrap Failed"),
        "metadata_update" => ("Metadata Update Processed", "Metadata Update Failed"),
        "sign_metadata" => ("Signature Processed", "Signature Failed"),
        "delete_sign_metadata" => (
            "Metadata sign delete processed",
            "Metadata sign delete Failed",
        ),
        "update_settings" => ("Update Settings Succeded", "Update Settings Failed"),
        "force_online_metadata_update" => (
            "Force new online metadata update succeeded",
            "Force new online metadata update Failed",
        ),
        _ => ("Processed", "Failed"),
    }
}

/// Queue an add task's changes; (publish, details).
fn queue_add(
    repo: &mut Repository,
    payload: &Value,
    added: &mut HashSet<String>,
) -> (bool, Result<Value, RstufError>) {
    let mut c = Check::new();
    let Some(a) = payload::add_artifacts(&mut c, payload) else {
        return (false, Err(invalid_payload(c)));
    };
    let cfg = repo.config().clone();
    let mut roles = BTreeSet::new();
    let mut paths = Vec::with_capacity(a.artifacts.len());
    let mut changes: Vec<Change> = Vec::with_capacity(a.artifacts.len());
    for art in a.artifacts {
        roles.insert(layout::bin_name(&cfg, layout::bin_of(&cfg, &art.path)));
        paths.push(art.path.clone());
        let custom = match art.custom.as_ref().map(crate::convert::to_core).transpose() {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("artifact {}: info.custom {e}", art.path);
                return (false, Err(RstufError::Refused(msg)));
            }
        };
        changes.push(Change::Add(TargetRecord {
            path: art.path,
            length: art.length,
            hashes: art.hashes,
            custom,
        }));
    }
    if let Err(e) = repo.enqueue(&changes) {
        return (false, Err(e.into()));
    }
    added.extend(paths.iter().cloned());
    (
        a.publish,
        Ok(json!({
            "added_artifacts": paths,
            "invalid_paths": [],
            "target_roles": roles,
        })),
    )
}

/// Queue a delete task's removals of listed (or just added) targets; (publish, details).
fn queue_remove(
    repo: &mut Repository,
    payload: &Value,
    added: &HashSet<String>,
    cache: &mut BTreeMap<String, BTreeSet<String>>,
) -> (bool, Result<Value, RstufError>) {
    let mut c = Check::new();
    let Some(d) = payload::delete_artifacts(&mut c, payload) else {
        return (false, Err(invalid_payload(c)));
    };
    let cfg = repo.config().clone();
    let mut deleted = Vec::new();
    let mut not_found = Vec::new();
    for path in d.artifacts {
        let bin = layout::bin_name(&cfg, layout::bin_of(&cfg, &path));
        let listed = match cache.get(&bin) {
            Some(set) => set.contains(&path),
            None => {
                let version = repo.role_states().get(&bin).map(|s| s.version);
                let set: BTreeSet<String> = match repo.read_metadata(&bin, version) {
                    Ok(md) => md
                        .as_targets()
                        .map(|t| t.targets.keys().cloned().collect())
                        .unwrap_or_default(),
                    Err(e) => return (false, Err(e.into())),
                };
                let hit = set.contains(&path);
                cache.insert(bin, set);
                hit
            }
        };
        if listed || added.contains(&path) {
            deleted.push(path);
        } else {
            not_found.push(path);
        }
    }
    let changes: Vec<Change> = deleted.iter().cloned().map(Change::Remove).collect();
    if let Err(e) = repo.enqueue(&changes) {
        return (false, Err(e.into()));
    }
    (
        d.publish && !deleted.is_empty(),
        Ok(json!({
            "deleted_artifacts": deleted,
            "not_found_artifacts": not_found,
        })),
    )
}
