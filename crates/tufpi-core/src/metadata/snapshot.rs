//! Snapshot and timestamp metadata, and the meta entries they hold.

use std::collections::BTreeMap;

use super::error::MetadataError;
use super::fields::{hashes_view, invalid, Ctx, Obj};
use super::view::View;
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
        self.view().to_value()
    }

    pub(crate) fn view(&self) -> View<'_> {
        let mut f = vec![("version", View::Int(self.version))];
        if let Some(l) = self.length {
            f.push(("length", View::Int(l)));
        }
        if let Some(h) = &self.hashes {
            f.push(("hashes", hashes_view(h)));
        }
        View::obj(f, &self.unrecognized)
    }
}

fn meta_from(o: Obj) -> Result<BTreeMap<String, MetaFile>, MetadataError> {
    Ok(o.members(MetaFile::from_value)?.into_iter().collect())
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

    pub(crate) fn fields(&self) -> Vec<(&'static str, View<'_>)> {
        vec![(
            "meta",
            View::entries(
                self.meta
                    .iter()
                    .map(|(n, m)| (n.as_str(), m.view()))
                    .collect(),
            ),
        )]
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

    pub(crate) fn fields(&self) -> Vec<(&'static str, View<'_>)> {
        let mut meta: Vec<(&str, View<'_>)> = self
            .other_meta
            .iter()
            .map(|(n, m)| (n.as_str(), m.view()))
            .collect();
        // "snapshot.json" wins over an "other" entry of the same name; keep key order.
        meta.retain(|(n, _)| *n != "snapshot.json");
        let at = meta.partition_point(|(n, _)| *n < "snapshot.json");
        meta.insert(at, ("snapshot.json", self.snapshot_meta.view()));
        vec![("meta", View::entries(meta))]
    }
}
