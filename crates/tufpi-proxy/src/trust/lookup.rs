//! Lookups: a target path resolved on fresh, unexpired metadata through the client's
//! delegation search, loading each delegated role once per generation (single flight),
//! from the local cache or the upstream, verified before it is used or kept.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::{debug, info, warn};
use tufpi_client::quote::{quote, target_url_for};
use tufpi_client::trusted::targets_of;
use tufpi_client::{redact, ClientError, TargetWalk};
use tufpi_core::metadata::Signed;

use super::generation::{expired, Generation};
use super::store::{Resolved, RoleLoad, Trust};
use crate::error::ProxyError;
use crate::sync::lock;

/// How many times a lookup starts over on fresh metadata when a consistent-snapshot role it
/// was told to fetch is already gone (the repository moved on).
const RACE_RETRIES: usize = 3;

impl Trust {
    /// Look `path` up in the signed metadata, after a refresh once the interval has passed,
    /// and never on metadata expired by now. `None`: no trusted role lists it.
    pub async fn lookup(self: &Arc<Self>, path: &str) -> Result<Option<Resolved>, ProxyError> {
        let arrival = Instant::now();
        self.refreshed_since(arrival.checked_sub(self.interval))
            .await?;
        let mut attempt = 0;
        let mut expiry_refresh = false;
        loop {
            let gen = self
                .generation()
                .ok_or_else(|| ProxyError::Internal("no trusted metadata yet".into()))?;
            let found = match self.resolve(&gen, path).await {
                Err((true, e)) if attempt + 1 < RACE_RETRIES => {
                    attempt += 1;
                    warn!("{e}; the repository moved on, looking again on fresh metadata");
                    self.refreshed_since(Some(Instant::now())).await?;
                    continue;
                }
                Err((_, e)) => return Err(e),
                Ok(found) => found,
            };
            match expired(&gen, path, Utc::now()) {
                None => return Ok(found),
                Some(why) if !expiry_refresh => {
                    info!("{why}; refreshing before answering");
                    expiry_refresh = true;
                    self.refreshed_since(Some(arrival)).await?;
                }
                Some(why) => return Err(ProxyError::Verification(why.into())),
            }
        }
    }

    /// Resolve `path` on the current metadata, without refreshing or waiting for a refresh:
    /// for looking ahead (loading the roles an installer's next requests will need).
    /// Failures are left for the real lookup to report.
    pub async fn warm(self: &Arc<Self>, path: &str) {
        let ok = lock(&self.refresh)
            .last
            .as_ref()
            .is_some_and(|(_, out)| out.is_ok());
        if let (true, Some(gen)) = (ok, self.generation()) {
            let _ = self.resolve(&gen, path).await;
        }
    }

    /// Find `path` in `gen`'s delegation graph: the client's search (`TargetWalk`: pre-order
    /// depth-first, as the spec and python-tuf do it), loading delegated roles as needed.
    async fn resolve(
        self: &Arc<Self>,
        gen: &Arc<Generation>,
        path: &str,
    ) -> Result<Option<Resolved>, (bool, ProxyError)> {
        if gen.is_missing(path) {
            return Ok(None);
        }
        let internal = |m: &str| (false, ProxyError::Internal(m.into()));
        let mut walk = TargetWalk::new(path, self.config.max_delegations, gen.root.clone());
        while let Some(next) = walk.next_role() {
            let signed = match gen.loaded(&next.role, &next.parent) {
                Some(s) => s,
                None => {
                    self.load_role(gen, &next.role, &next.parent, next.from)
                        .await?
                }
            };
            let targets = targets_of(&signed).ok_or_else(|| internal("targets body"))?;
            if let Some(info) = walk.visit(&next.role, targets, signed.clone()) {
                let url = target_url_for(
                    &self.upstream.target_base,
                    path,
                    info,
                    gen.consistent && self.config.prefix_targets_with_hash,
                )
                .map_err(|e| (false, ProxyError::from_client(e)))?;
                return Ok(Some(Resolved {
                    path: path.to_string(),
                    info: info.clone(),
                    url,
                }));
            }
        }
        gen.set_missing(path);
        Ok(None)
    }

    /// `role` (delegated by `parent`, whose verified metadata is `delegator`) verified for
    /// `gen`: one load per role and generation, shared by every lookup that needs it.
    async fn load_role(
        self: &Arc<Self>,
        gen: &Arc<Generation>,
        role: &str,
        parent: &str,
        delegator: Arc<Signed>,
    ) -> RoleLoad {
        let key = (gen.id, parent.to_string(), role.to_string());
        let (me, g, r, p) = (
            self.clone(),
            gen.clone(),
            role.to_string(),
            parent.to_string(),
        );
        let task = || async move {
            // Someone may have finished loading it just before this flight took off.
            if let Some(s) = g.loaded(&r, &p) {
                return Ok(s);
            }
            let _slot = me
                .metadata_fetches
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| (false, ProxyError::Internal(e.to_string().into())))?;
            let (m, g2, r2) = (me.clone(), g.clone(), r.clone());
            let s = tokio::task::spawn_blocking(move || m.load_role_blocking(&g2, &r2, &delegator))
                .await
                .map_err(|e| (false, ProxyError::Internal(e.to_string().into())))??;
            let s = Arc::new(s);
            lock(&g.roles).insert((p, r), s.clone());
            Ok(s)
        };
        self.roles.run(key, task).await.unwrap_or_else(|| {
            Err((
                false,
                ProxyError::Internal("loading a delegated role ended without a result".into()),
            ))
        })
    }

    /// Load `role` from the local cache if it verifies for `gen`, else from the upstream
    /// (within the length the snapshot gives, or the configured cap), verify it, and keep
    /// its bytes in the cache. Blocking.
    fn load_role_blocking(
        &self,
        gen: &Generation,
        role: &str,
        delegator: &Signed,
    ) -> Result<Signed, (bool, ProxyError)> {
        let refused = |e: ClientError| (false, ProxyError::from_client(e));
        let file = self.dir.join(format!("{}.json", quote(role)));
        if let Ok(local) = std::fs::read(&file) {
            match gen
                .trusted
                .verify_delegated_targets_at(&local, role, delegator, Utc::now())
            {
                Ok(s) => return Ok(s),
                Err(e) => debug!("local {role} not usable: {e}"),
            }
        }
        let meta = gen.trusted.snapshot_entry(role).map_err(refused)?;
        let length = meta.length.unwrap_or(self.config.targets_max_length);
        let name = quote(role);
        let url = if gen.consistent {
            format!("{}{}.{name}.json", self.upstream.metadata_url, meta.version)
        } else {
            format!("{}{name}.json", self.upstream.metadata_url)
        };
        debug!(url = %redact(&url), length, "fetching metadata");
        let data = self.fetcher.fetch(&url, length).map_err(|e| {
            let race = gen.consistent && e.is_not_found();
            (race, ProxyError::from_client(ClientError::Fetch(e)))
        })?;
        let s = gen
            .trusted
            .verify_delegated_targets_at(&data, role, delegator, Utc::now())
            .map_err(refused)?;
        // Only verified bytes are kept (a lost or torn copy is only fetched again), and only
        // for the current generation: a lookup still on an older one does not put back the
        // version a newer snapshot has replaced.
        if self.generation().is_some_and(|c| c.id == gen.id) {
            // Not synced: a copy a power loss damaged fails verification and is fetched again.
            let cache = tufpi_fs::WriteOptions::new()
                .sync_data(false)
                .sync_dir(false);
            if let Err(e) = cache.write(&file, &data) {
                warn!("caching {role}: {e}");
            }
        }
        Ok(s)
    }
}
