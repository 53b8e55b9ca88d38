//! Bulk import (backsigning an existing corpus): records go straight into new bin files,
//! without a row per target in the state store. The result equals adding the same targets
//! one by one and publishing.
//!
//! Records are spread over buckets of bins (spilled to local scratch files beyond a memory
//! bound: `DIR/staging/` embedded), then each bucket's bins are built from their published
//! files plus the new records, signed and written into the staging store: a local directory
//! (`DIR/staging/` embedded, a temp directory in scale-out mode; see `backend.rs`), or a
//! blob store if the backend names one. Once every staged file is durable, one plan naming
//! them (with their target counts) is recorded and finished like any other: staged bins are
//! renamed into a local metadata store, or written once into a remote one (create-only, many
//! in flight), then the snapshot and the timestamp are written. A crash before the plan is
//! recorded leaves nothing but staged files, removed on the next run; after, the plan is
//! finished on restart, by any replica: bins whose staged file it cannot read are re-signed
//! from the published state, so the snapshot never names a missing bin.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use rayon::prelude::*;
use tracing::debug;
use tufpi_blob::{BlobStore, Bytes, Created};
use tufpi_core::json;

use crate::backend::staged_key;
use crate::change::TargetRecord;
use crate::direct::{direct_bin, field, hash_pairs, RecView};
use crate::error::RepoError;
use crate::keys::SigningKey;
use crate::layout;
use crate::plan::Plan;
use crate::publisher::read_bin_targets;
use crate::repo::Repository;
use crate::store::RoleState;

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

/// A bucket's records: its spill file (if any) and what stayed in memory.
type Part = (Option<PathBuf>, Vec<u8>);

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

    fn push(&mut self, i: usize, encoded: &[u8]) -> Result<(), RepoError> {
        self.mem[i].extend_from_slice(encoded);
        self.buffered += encoded.len();
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
            // Keep the capacity: regrowing means fresh pages for the kernel to zero.
            self.mem[i].clear();
        }
        self.buffered = 0;
        Ok(())
    }

    /// Every bucket as (its spill file, if any, closed; the records still in memory), to
    /// be read one at a time.
    fn into_parts(mut self) -> Result<Vec<Part>, RepoError> {
        let mut out = Vec::with_capacity(self.mem.len());
        for i in 0..self.mem.len() {
            let file = match self.files[i].take() {
                Some(mut w) => {
                    w.flush()
                        .map_err(|e| RepoError::io("flushing import spill file", e))?;
                    Some(self.path(i))
                }
                None => None,
            };
            out.push((file, std::mem::take(&mut self.mem[i])));
        }
        Ok(out)
    }
}

/// A bucket's encoded records, in the order they came: its spill file, then what stayed in
/// memory.
fn read_part(file: Option<PathBuf>, mem: Vec<u8>) -> Result<Vec<u8>, RepoError> {
    let Some(path) = file else {
        return Ok(mem);
    };
    let mut data =
        fs::read(&path).map_err(|e| RepoError::io(format!("reading {}", path.display()), e))?;
    let _ = fs::remove_file(&path);
    data.extend_from_slice(&mem);
    Ok(data)
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
            &json::canonical(v).map_err(|source| RepoError::BadCustom {
                path: rec.path.clone(),
                source,
            })?,
        ),
    }
    Ok(())
}

fn corrupt(detail: impl ToString) -> RepoError {
    RepoError::CorruptSpill {
        detail: detail.to_string(),
    }
}

fn truncated() -> RepoError {
    corrupt("truncated")
}

fn u64_at(data: &[u8]) -> Result<(u64, &[u8]), RepoError> {
    let b = data.get(..8).ok_or_else(truncated)?;
    Ok((
        u64::from_le_bytes(b.try_into().unwrap_or_default()),
        &data[8..],
    ))
}

/// The records encoded in `data`, borrowed.
fn decode_views(data: &[u8]) -> Result<Vec<RecView<'_>>, RepoError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (bin, r) = u64_at(rest)?;
        let (path, r) = field(r).ok_or_else(truncated)?;
        let path = std::str::from_utf8(path).map_err(|_| corrupt("bad UTF-8"))?;
        let (length, r) = u64_at(r)?;
        let n = u32::from_le_bytes(
            r.get(..4)
                .ok_or_else(truncated)?
                .try_into()
                .unwrap_or_default(),
        );
        let r = &r[4..];
        let mut end = r;
        for _ in 0..2 * n {
            end = field(end).ok_or_else(truncated)?.1;
        }
        let hashes = &r[..r.len() - end.len()];
        let (custom, r) = field(end).ok_or_else(truncated)?;
        out.push(RecView {
            bin,
            path,
            length,
            nhashes: n,
            hashes,
            custom,
        });
        rest = r;
    }
    Ok(out)
}

/// The record a view encodes.
fn to_record(v: &RecView<'_>) -> Result<TargetRecord, RepoError> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| corrupt("bad UTF-8"));
    let mut hashes = BTreeMap::new();
    for (alg, hex) in hash_pairs(v).ok_or_else(truncated)? {
        hashes.insert(text(alg)?, text(hex)?);
    }
    let custom = match v.custom {
        [] => None,
        b => Some(json::parse(b).map_err(corrupt)?),
    };
    Ok(TargetRecord {
        path: v.path.to_string(),
        length: v.length,
        hashes,
        custom,
    })
}

/// Sign bin `name` at `st` listing its previous targets (if any) plus `recs` (sorted by path,
/// later ones winning); returns the file bytes and the target count.
fn build_bin(
    name: &str,
    st: RoleState,
    previous: Option<(&dyn BlobStore, &str)>,
    recs: &[RecView<'_>],
    online: &SigningKey,
) -> Result<(Vec<u8>, u64), RepoError> {
    // One record per path: the last one given.
    let mut unique: Vec<RecView<'_>> = Vec::with_capacity(recs.len());
    for r in recs {
        match unique.last_mut() {
            Some(last) if last.path == r.path => *last = *r,
            _ => unique.push(*r),
        }
    }
    if previous.is_none() {
        if let Some(bytes) = direct_bin(&unique, st.version, st.expiry(), online)? {
            return Ok((bytes, unique.len() as u64));
        }
    }
    let mut targets = match previous {
        Some((store, key)) => read_bin_targets(store, key)?,
        None => BTreeMap::new(),
    };
    for r in &unique {
        let (path, entry) = layout::target_entry(to_record(r)?);
        targets.insert(path, entry);
    }
    let count = targets.len() as u64;
    let md = online
        .sign(layout::bin_of_targets(targets, st.version, st.expiry()))
        .map_err(|e| RepoError::Bin {
            bin: name.to_string(),
            source: Box::new(e),
        })?;
    Ok((md.to_compact_bytes(), count))
}

/// Stage a signed bin under `key`. On the local file system a plain write (returns its path):
/// one sync of the file system makes every staged file durable before the plan is recorded.
/// Elsewhere a create-only put, durable when it returns.
fn stage(staging: &dyn BlobStore, key: &str, bytes: Vec<u8>) -> Result<Option<PathBuf>, RepoError> {
    if let Some(path) = staging.local_path(key) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| RepoError::io(format!("creating {}", dir.display()), e))?;
        }
        fs::write(&path, bytes)
            .map_err(|e| RepoError::io(format!("writing {}", path.display()), e))?;
        return Ok(Some(path));
    }
    let bytes = Bytes::from(bytes);
    if staging.put_new(key, bytes.clone())? == Created::Existed {
        // Left by an import that died before recording its plan (and not cleared): replace.
        staging.delete(key)?;
        staging.put_new(key, bytes)?;
    }
    Ok(None)
}

/// A staged bin: its name, new state, target count and local path (if staged locally).
type Staged = (String, RoleState, u64, Option<PathBuf>);

/// Items converted per parallel step of the ingest.
const STEP: usize = 16_384;

impl Repository {
    /// Add targets to the repository in one publish (queued changes are published first).
    /// Each item is turned into a record by `convert`, in parallel (parsing a line, hashing a
    /// file). All or nothing: a bad record (its error says which) leaves the repository as it
    /// was. `progress` is called with the number of records read so far.
    pub fn import<T: Send>(
        &mut self,
        items: impl Iterator<Item = Result<T, RepoError>>,
        convert: impl Fn(T) -> Result<TargetRecord, RepoError> + Sync,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportReport, RepoError> {
        self.publish(100_000)?;
        let spill = self.spill_dir();
        // A local staging directory is this publisher's alone: start it empty. A shared
        // store gets a prefix of this import's own.
        let prefix = self.staging.new_prefix();
        if prefix.is_empty() {
            self.staging.clear_prefix("");
        }
        let _ = fs::remove_dir_all(&spill);
        fs::create_dir_all(&spill)
            .map_err(|e| RepoError::io(format!("creating {}", spill.display()), e))?;
        let staging = self.staging.open()?;
        let result = self.import_into((&spill, &*staging, &prefix), items, &convert, &mut progress);
        if result.is_err() && self.store.plan()?.is_none() {
            self.staging.clear_prefix(&prefix);
        }
        // Spill files are scratch; when they share the staging directory it went with it.
        if self.staging.local_dir() != Some(spill.as_path()) {
            let _ = fs::remove_dir_all(&spill);
        }
        result
    }

    fn import_into<T: Send>(
        &mut self,
        (spill, staging, prefix): (&Path, &dyn BlobStore, &str),
        mut items: impl Iterator<Item = Result<T, RepoError>>,
        convert: &(dyn Fn(T) -> Result<TargetRecord, RepoError> + Sync),
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, RepoError> {
        let nbins = self.config.bins();
        let nbuckets = nbins.min(64) as usize;
        let bucket_of = |bin: u64| (bin as u128 * nbuckets as u128 / nbins as u128) as usize;
        let mut buckets = Buckets::new(spill.to_path_buf(), nbuckets);
        let mut n = 0u64;
        let cfg = &self.config;
        let t0 = std::time::Instant::now();
        loop {
            let step: Vec<T> = items.by_ref().take(STEP).collect::<Result<_, _>>()?;
            if step.is_empty() {
                break;
            }
            let count = step.len() as u64;
            // Each task encodes a slice of the step into its own per-bucket buffers, so the
            // sequential part is a few large copies, not one small one per record.
            let encoded: Vec<Vec<Vec<u8>>> = step
                .into_par_iter()
                .chunks(1024)
                .map(|items| {
                    let mut local = vec![Vec::new(); nbuckets];
                    for item in items {
                        let rec = convert(item)?.validate(cfg)?;
                        let bin = layout::bin_of(cfg, &rec.path);
                        encode(&mut local[bucket_of(bin)], bin, &rec)?;
                    }
                    Ok(local)
                })
                .collect::<Result<_, RepoError>>()?;
            for local in &encoded {
                for (b, buf) in local.iter().enumerate() {
                    if !buf.is_empty() {
                        buckets.push(b, buf)?;
                    }
                }
            }
            n += count;
            progress(n);
        }
        progress(n);
        debug!(records = n, elapsed = ?t0.elapsed(), "import: records read and bucketed");
        let t0 = std::time::Instant::now();
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
        let meta = &*self.meta;
        let published = self.store.bin_counts()?;
        let now = Utc::now();
        // New bins' expiries staggered as at init, so they are not all due for re-signing
        // at once.
        let mut plan = Plan::new();
        plan.prefix = prefix.to_string();
        let mut written: Option<PathBuf> = None;
        // Buckets in parallel too: reading, decoding and sorting one is sequential work.
        let parts = buckets.into_parts()?;
        let cfg = &self.config;
        let roles = &self.roles;
        let done: Vec<Vec<Staged>> = parts
            .into_par_iter()
            .map(|(file, mem)| {
                // Read here, in the task: one bucket per thread in memory at a time.
                let data = read_part(file, mem)?;
                let mut recs = decode_views(&data)?;
                // Stable: several records for one path keep their order (the last one wins).
                recs.sort_by(|a, b| (a.bin, a.path.as_bytes()).cmp(&(b.bin, b.path.as_bytes())));
                let mut groups: Vec<&[RecView<'_>]> = Vec::new();
                let mut start = 0;
                for j in 1..=recs.len() {
                    if j == recs.len() || recs[j].bin != recs[start].bin {
                        groups.push(&recs[start..j]);
                        start = j;
                    }
                }
                groups
                    .into_par_iter()
                    .map(|group| {
                        let bin = group[0].bin;
                        let name = layout::bin_name(cfg, bin);
                        let current = roles.get(&name).map_or(0, |s| s.version);
                        let previous = (published.get(&bin).copied().unwrap_or(0) > 0)
                            .then(|| format!("{current}.{name}.json"));
                        let st = RoleState {
                            version: current + 1,
                            expires: cfg.staggered_bin_expiry(now, bin, nbins),
                        };
                        let previous = previous.as_deref().map(|k| (meta, k));
                        let (bytes, count) = build_bin(&name, st, previous, group, online)?;
                        let key = staged_key(prefix, &format!("{}.{name}.json", st.version));
                        let path = stage(staging, &key, bytes)?;
                        Ok((name, st, count, path))
                    })
                    .collect::<Result<Vec<_>, RepoError>>()
            })
            .collect::<Result<_, RepoError>>()?;
        for (name, st, count, path) in done.into_iter().flatten() {
            plan.stage(name, st, count);
            written = written.or(path);
        }
        // Every staged file durable before the plan that names them is recorded.
        if let Some(p) = &written {
            tufpi_fs::sync_files(&[p.as_path()])?;
        }
        let bins = plan.roles().len();
        debug!(bins, elapsed = ?t0.elapsed(), "import: bins signed and staged");
        let t0 = std::time::Instant::now();
        self.config
            .add_snapshot_and_timestamp(&mut plan, &self.roles, now);
        self.record(&plan)?;
        self.finish_plan()?;
        debug!(elapsed = ?t0.elapsed(), "import: plan recorded and published");
        Ok(ImportReport {
            records: n,
            bins,
            targets: self.store.target_count()?,
            snapshot_version: self.roles.get("snapshot").map_or(0, |s| s.version),
            timestamp_version: self.roles.get("timestamp").map_or(0, |s| s.version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufpi_core::crypto::{PrivateKey, Scheme};

    fn rec(path: &str, n: u64, custom: Option<&str>) -> TargetRecord {
        TargetRecord {
            path: path.into(),
            length: n,
            hashes: BTreeMap::from([
                ("sha256".to_string(), format!("{n:064x}")),
                ("blake2b-256".to_string(), format!("{:064x}", n + 1)),
            ]),
            custom: custom.map(|c| json::parse(c.as_bytes()).unwrap()),
        }
    }

    /// The direct writer and the model give the same bytes, duplicates resolved the same way.
    #[test]
    fn direct_bin_equals_model() {
        for scheme in [Scheme::Ed25519, Scheme::EcdsaP256] {
            let key = SigningKey::new(PrivateKey::generate(scheme).unwrap());
            let recs = vec![
                rec("packages/b/x-1.0.tar.gz", 7, None),
                rec(
                    "packages/a/y-1.0-py3-none-any.whl",
                    12_345_678,
                    Some(r#"{"z":[1,"q"],"a":{}}"#),
                ),
                rec("packages/b/x-1.0.tar.gz", 9, None),
                rec(
                    "simple/x/vnd.pypi.simple.v1.json",
                    0,
                    Some(r#""it's \"quoted\"""#),
                ),
            ];
            let mut data = Vec::new();
            for r in &recs {
                encode(&mut data, 3, r).unwrap();
            }
            let mut views = decode_views(&data).unwrap();
            views.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
            let st = RoleState {
                version: 4,
                expires: 1_900_000_000,
            };
            let (direct, count) = build_bin("bin-3", st, None, &views, &key).unwrap();
            assert_eq!(count, 3);
            let mut model_recs = recs.clone();
            model_recs.remove(0);
            let md = key
                .sign(layout::build_bin(model_recs, st.version, st.expiry()))
                .unwrap();
            let model = md.to_compact_bytes();
            if scheme == Scheme::Ed25519 {
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&model)
                );
            } else {
                // ECDSA signatures differ run to run: compare the signed parts and verify.
                let d = tufpi_core::metadata::Metadata::from_bytes(&direct).unwrap();
                assert_eq!(
                    d.signed.canonical().unwrap(),
                    md.signed.canonical().unwrap()
                );
                assert_eq!(d.signatures.len(), 1);
                assert_eq!(d.signatures[0].keyid, key.keyid);
                key.public
                    .verify(&d.signatures[0].sig, &d.signed.canonical().unwrap())
                    .unwrap();
            }
        }
    }

    /// Non-ASCII paths take the general writer, with the same result as the model.
    #[test]
    fn non_ascii_falls_back() {
        let key = SigningKey::new(PrivateKey::generate(Scheme::Ed25519).unwrap());
        let recs = vec![
            rec("packages/é/ü-1.0.tar.gz", 1, None),
            rec("packages/a\"b", 2, None),
        ];
        let mut data = Vec::new();
        for r in &recs {
            encode(&mut data, 0, r).unwrap();
        }
        let mut views = decode_views(&data).unwrap();
        views.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let st = RoleState {
            version: 2,
            expires: 1_900_000_000,
        };
        let (bytes, count) = build_bin("bin-0", st, None, &views, &key).unwrap();
        assert_eq!(count, 2);
        let model = key
            .sign(layout::build_bin(recs, 2, st.expiry()))
            .unwrap()
            .to_compact_bytes();
        assert_eq!(bytes, model);
    }
}
