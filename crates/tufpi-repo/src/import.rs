//! Bulk import (backsigning an existing corpus): records go straight into new bin files,
//! without a row per target in the state store. The result equals adding the same targets
//! one by one and publishing.
//!
//! Records are spread over buckets of bins (spilled to `DIR/staging/` beyond a memory bound),
//! then each bucket's bins are built from their published files plus the new records, signed
//! and written into `DIR/staging/`. Once every staged file is durable, one plan naming them is
//! recorded and finished like any other: staged bins are renamed into `metadata/`, then the
//! snapshot and the timestamp are written. A crash before the plan is recorded leaves nothing
//! but the staging directory, removed on the next run; after, the plan is finished on restart.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use chrono::Utc;
use rayon::prelude::*;
use tufpi_core::json;

use crate::error::RepoError;
use crate::layout;
use crate::publisher::{read_bin_targets, Plan};
use crate::repo::{at, sign, ts, validate, Repository};
use crate::store::{Change, RoleState, StateStore, TargetRecord};

/// Encoded records buffered in memory before the buckets spill to disk.
const SPILL_AT: usize = 64 << 20;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records read.
    pub records: u64,
    /// Bin roles re-signed.
    pub bins: usize,
    /// Targets listed after the import.
    pub targets: u64,
    /// New snapshot version.
    pub snapshot_version: u64,
    /// New timestamp version.
    pub timestamp_version: u64,
}

/// Buckets of encoded records, in memory up to `SPILL_AT`, then appended to files.
struct Buckets {
    dir: PathBuf,
    mem: Vec<Vec<u8>>,
    files: Vec<Option<BufWriter<fs::File>>>,
    buffered: usize,
}

impl Buckets {
    fn new(dir: PathBuf, n: usize) -> Buckets {
        Buckets {
            dir,
            mem: vec![Vec::new(); n],
            files: (0..n).map(|_| None).collect(),
            buffered: 0,
        }
    }

    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("import-{i}.spill"))
    }

    fn push(&mut self, i: usize, bin: u64, rec: &TargetRecord) -> Result<(), RepoError> {
        let buf = &mut self.mem[i];
        let before = buf.len();
        encode(buf, bin, rec)?;
        self.buffered += buf.len() - before;
        if self.buffered >= SPILL_AT {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), RepoError> {
        for i in 0..self.mem.len() {
            if self.mem[i].is_empty() {
                continue;
            }
            let path = self.path(i);
            if self.files[i].is_none() {
                let f = fs::File::create(&path)
                    .map_err(|e| RepoError::io(format!("creating {}", path.display()), e))?;
                self.files[i] = Some(BufWriter::with_capacity(1 << 16, f));
            }
            if let Some(w) = self.files[i].as_mut() {
                w.write_all(&self.mem[i])
                    .map_err(|e| RepoError::io(format!("writing {}", path.display()), e))?;
            }
            self.mem[i] = Vec::new();
        }
        self.buffered = 0;
        Ok(())
    }

    /// Bucket `i`'s records, in the order they came.
    fn take(&mut self, i: usize) -> Result<Vec<(u64, TargetRecord)>, RepoError> {
        let mut data = Vec::new();
        if let Some(mut w) = self.files[i].take() {
            w.flush()
                .map_err(|e| RepoError::io("flushing import spill file", e))?;
            drop(w);
            let path = self.path(i);
            data = fs::read(&path)
                .map_err(|e| RepoError::io(format!("reading {}", path.display()), e))?;
            let _ = fs::remove_file(&path);
        }
        data.extend_from_slice(&std::mem::take(&mut self.mem[i]));
        decode_all(&data)
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

fn encode(buf: &mut Vec<u8>, bin: u64, rec: &TargetRecord) -> Result<(), RepoError> {
    buf.extend_from_slice(&bin.to_le_bytes());
    put_bytes(buf, rec.path.as_bytes());
    buf.extend_from_slice(&rec.length.to_le_bytes());
    buf.extend_from_slice(&(rec.hashes.len() as u32).to_le_bytes());
    for (alg, hex) in &rec.hashes {
        put_bytes(buf, alg.as_bytes());
        put_bytes(buf, hex.as_bytes());
    }
    match &rec.custom {
        None => put_bytes(buf, b""),
        Some(v) => put_bytes(
            buf,
            &json::canonical(v)
                .map_err(|e| RepoError::Invalid(format!("target {:?}: custom: {e}", rec.path)))?,
        ),
    }
    Ok(())
}

/// A cursor over encoded records; the bytes are our own, so a short read is a store error.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RepoError> {
        if self.0.len() < n {
            return Err(RepoError::Store("import spill file truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, RepoError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Result<u32, RepoError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn bytes(&mut self) -> Result<&[u8], RepoError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, RepoError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| RepoError::Store("import spill file: bad UTF-8".into()))
    }
}

fn decode_all(data: &[u8]) -> Result<Vec<(u64, TargetRecord)>, RepoError> {
    let mut c = Cursor(data);
    let mut out = Vec::new();
    while !c.0.is_empty() {
        let bin = c.u64()?;
        let path = c.string()?;
        let length = c.u64()?;
        let n = c.u32()?;
        let mut hashes = BTreeMap::new();
        for _ in 0..n {
            let alg = c.string()?;
            hashes.insert(alg, c.string()?);
        }
        let custom = match c.bytes()? {
            [] => None,
            b => Some(
                json::parse(b)
                    .map_err(|e| RepoError::Store(format!("import spill file: {e}")))?,
            ),
        };
        out.push((
            bin,
            TargetRecord {
                path,
                length,
                hashes,
                custom,
            },
        ));
    }
    Ok(out)
}

impl Repository {
    /// Add `records` to the repository in one publish (queued changes are published first).
    /// All or nothing: a bad record (its error says which) leaves the repository as it was.
    /// `progress` is called with the number of records read so far.
    pub fn import(
        &mut self,
        records: impl Iterator<Item = Result<TargetRecord, RepoError>>,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportReport, RepoError> {
        self.publish(100_000)?;
        let staging = self.staging_dir();
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)
            .map_err(|e| RepoError::io(format!("creating {}", staging.display()), e))?;
        let result = self.import_into(&staging, records, &mut progress);
        if result.is_err() && self.store.plan()?.is_none() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }

    fn import_into(
        &mut self,
        staging: &std::path::Path,
        records: impl Iterator<Item = Result<TargetRecord, RepoError>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, RepoError> {
        let nbins = self.config.bins();
        let nbuckets = nbins.min(64) as usize;
        let bucket_of = |bin: u64| (bin as u128 * nbuckets as u128 / nbins as u128) as usize;
        let mut buckets = Buckets::new(staging.to_path_buf(), nbuckets);
        let mut n = 0u64;
        for rec in records {
            let rec = rec?;
            let change = Change::Add(rec);
            validate(&change)?;
            let Change::Add(rec) = change else {
                continue;
            };
            let bin = layout::bin_of(&self.config, &rec.path);
            buckets.push(bucket_of(bin), bin, &rec)?;
            n += 1;
            if n % 4096 == 0 {
                progress(n);
            }
        }
        progress(n);
        if n == 0 {
            return Ok(ImportReport {
                targets: self.store.target_count()?,
                snapshot_version: self.roles.get("snapshot").map_or(0, |s| s.version),
                timestamp_version: self.roles.get("timestamp").map_or(0, |s| s.version),
                ..ImportReport::default()
            });
        }

        let online = self
            .online
            .as_ref()
            .ok_or(RepoError::MissingKey("online"))?;
        let meta_dir = self.metadata_dir();
        let published = self.store.bin_counts()?;
        let now = Utc::now();
        // New bins' expiries spread over a second day, as at init, so they are not all due
        // for re-signing at once.
        let base = ts(now + self.config.online_expiry);
        let span = self.config.online_expiry.num_seconds().max(1) as u128;
        let mut planned: Vec<(String, RoleState)> = Vec::new();
        let mut counts = BTreeMap::new();
        let mut written: Option<PathBuf> = None;
        for i in 0..nbuckets {
            let mut recs = buckets.take(i)?;
            if recs.is_empty() {
                continue;
            }
            // Stable: several records for one path keep their order (the last one wins).
            recs.sort_by_key(|(bin, _)| *bin);
            let mut groups: Vec<(u64, Vec<TargetRecord>)> = Vec::new();
            for (bin, rec) in recs {
                match groups.last_mut() {
                    Some((b, v)) if *b == bin => v.push(rec),
                    _ => groups.push((bin, vec![rec])),
                }
            }
            let jobs: Vec<(String, RoleState, Option<PathBuf>, Vec<TargetRecord>)> = groups
                .into_iter()
                .map(|(bin, recs)| {
                    let name = layout::bin_name(&self.config, bin);
                    let current = self.roles.get(&name).map_or(0, |s| s.version);
                    let previous = (published.get(&bin).copied().unwrap_or(0) > 0)
                        .then(|| meta_dir.join(format!("{current}.{name}.json")));
                    let st = RoleState {
                        version: current + 1,
                        expires: base + (bin as u128 * span / nbins as u128) as i64,
                    };
                    (name, st, previous, recs)
                })
                .collect();
            let done: Vec<(String, RoleState, u64, PathBuf)> = jobs
                .into_par_iter()
                .map(|(name, st, previous, recs)| {
                    let mut targets = match &previous {
                        Some(p) => read_bin_targets(p)?,
                        None => BTreeMap::new(),
                    };
                    for r in recs {
                        let (path, entry) = layout::target_entry(r);
                        targets.insert(path, entry);
                    }
                    let count = targets.len() as u64;
                    let md = sign(
                        layout::bin_of_targets(targets, st.version, at(st.expires)),
                        online,
                    )?;
                    let path = staging.join(format!("{}.{name}.json", st.version));
                    fs::write(&path, md.to_compact_bytes())
                        .map_err(|e| RepoError::io(format!("writing {}", path.display()), e))?;
                    Ok((name, st, count, path))
                })
                .collect::<Result<_, RepoError>>()?;
            for (name, st, count, path) in done {
                counts.insert(name.clone(), count);
                planned.push((name, st));
                written = Some(path);
            }
        }
        // Every staged file durable before the plan that names them is recorded.
        if let Some(p) = &written {
            crate::files::sync_files(&[p.as_path()])?;
        }
        let bins = planned.len();
        let exp = ts(now + self.config.online_expiry);
        let mut roles: Vec<String> = planned.iter().map(|(n, _)| n.clone()).collect();
        for r in ["snapshot", "timestamp"] {
            planned.push((
                r.to_string(),
                RoleState {
                    version: self.roles.get(r).map_or(0, |s| s.version) + 1,
                    expires: exp,
                },
            ));
            roles.push(r.to_string());
        }
        let plan = Plan {
            roles,
            upto: 0,
            staged: true,
            counts,
        };
        self.record_plan(planned, &plan)?;
        self.finish_plan()?;
        Ok(ImportReport {
            records: n,
            bins,
            targets: self.store.target_count()?,
            snapshot_version: self.roles.get("snapshot").map_or(0, |s| s.version),
            timestamp_version: self.roles.get("timestamp").map_or(0, |s| s.version),
        })
    }
}
