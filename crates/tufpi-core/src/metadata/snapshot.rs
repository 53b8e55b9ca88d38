//! Snapshot and timestamp metadata, and the meta entries they hold.

use std::collections::BTreeMap;

use super::fields::{hashes_value, int, invalid, object, Ctx, Obj};
use super::MetadataError;
use crate::json::{Map, Value};

/// A `meta` entry: the version (and optionally length and hashes) of a metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFile {
    /// Version of the listed file, ≥ 1.
    pub version: u64,
    /// Length in bytes of the listed file, if given.
    pub length: Option<u64>,
    /// Hashes of the listed file's bytes, if given (never empty).
    pub hashes: Option<BTreeMap<String, String>>,
    /// Fields we do not know.
    pub unrecognized: Map,
}

impl MetaFile {
    /// An entry with just a version.
    pub fn new(version: u64) -> MetaFile {
        MetaFile {
            version,
            length: None,
            hashes: None,
            unrecognized: Map::new(),
        }
    }

    pub(crate) fn from_value(v: Value, ctx: Ctx<'_>) -> Result<MetaFile, MetadataError> {
        let mut o = Obj::new(v, ctx)?;
        let version = o.u64("version")?;
        if version == 0 {
            return Err(invalid(
                Ctx::Field(&ctx, "version"),
                "version must be > 0, got 0",
            ));
        }
        let length = o.opt_u64("length")?;
        let hashes = o.opt_hashes("hashes")?;
        Ok(MetaFile {
            version,
            length,
            hashes,
            unrecognized: o.rest(),
        })
    }

    /// The JSON value of the entry.
    pub fn to_value(&self) -> Value {
        let mut v = object(&self.unrecognized, [("version", int(self.version))]);
        if let Some(m) = v.as_object_mut() {
            if let Some(l) = self.length {
                m.insert("length".into(), int(l));
            }
            if let Some(h) = &self.hashes {
                m.insert("hashes".into(), hashes_value(h));
            }
        }
        v
    }
}

fn meta_from(o: Obj) -> Result<BTreeMap<String, MetaFile>, MetadataError> {
    Ok(o.members(MetaFile::from_value)?.into_iter().collect())
}

fn meta_value(meta: &BTreeMap<String, MetaFile>) -> Value {
    Value::Object(
        meta.iter()
            .map(|(n, m)| (n.clone(), m.to_value()))
            .collect(),
    )
}

/// The body of snapshot metadata: `meta` lists targets and every delegated targets role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `ROLE.json` → entry.
    pub meta: BTreeMap<String, MetaFile>,
}

impl Snapshot {
    pub(crate) fn take_from(o: &mut Obj) -> Result<Snapshot, MetadataError> {
        Ok(Snapshot {
            meta: meta_from(o.obj("meta")?)?,
        })
    }

    pub(crate) fn put_into(&self, m: &mut Map) {
        m.insert("meta".into(), meta_value(&self.meta));
    }
}

/// The body of timestamp metadata: `meta` holds `snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// The `snapshot.json` entry.
    pub snapshot_meta: MetaFile,
    /// Any other `meta` entries (kept, unused).
    pub other_meta: BTreeMap<String, MetaFile>,
}

impl Timestamp {
    /// A timestamp body pointing at snapshot `meta`.
    pub fn new(snapshot_meta: MetaFile) -> Timestamp {
        Timestamp {
            snapshot_meta,
            other_meta: BTreeMap::new(),
        }
    }

    pub(crate) fn take_from(o: &mut Obj) -> Result<Timestamp, MetadataError> {
        let mut other_meta = meta_from(o.obj("meta")?)?;
        let snapshot_meta = other_meta
            .remove("snapshot.json")
            .ok_or_else(|| invalid("signed.meta", "timestamp must list \"snapshot.json\""))?;
        Ok(Timestamp {
            snapshot_meta,
            other_meta,
        })
    }

    pub(crate) fn put_into(&self, m: &mut Map) {
        let mut meta = self.other_meta.clone();
        meta.insert("snapshot.json".into(), self.snapshot_meta.clone());
        m.insert("meta".into(), meta_value(&meta));
    }
}
