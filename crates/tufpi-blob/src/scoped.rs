//! A view of a blob store under a key prefix: the repository engine sees `N.role.json` while
//! the store holds `metadata/N.role.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{check_key, BlobMeta, BlobStore, Bytes, Created, Etag, Result};

/// `inner` seen under `prefix/`.
#[derive(Debug, Clone)]
pub struct Scoped {
    inner: Arc<dyn BlobStore>,
    prefix: String,
}

impl Scoped {
    /// The keys of `inner` under `prefix` (a plain relative path).
    pub fn new(inner: Arc<dyn BlobStore>, prefix: &str) -> Result<Scoped> {
        check_key(prefix)?;
        Ok(Scoped {
            inner,
            prefix: format!("{prefix}/"),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl BlobStore for Scoped {
    fn put_new(&self, key: &str, bytes: Bytes) -> Result<Created> {
        self.inner.put_new(&self.key(key), bytes)
    }
    fn put_many_new(&self, items: Vec<(String, Bytes)>) -> Result<()> {
        self.inner
            .put_many_new(items.into_iter().map(|(k, b)| (self.key(&k), b)).collect())
    }
    fn put_new_file(&self, key: &str, file: &Path) -> Result<Created> {
        self.inner.put_new_file(&self.key(key), file)
    }
    fn put_swap(&self, key: &str, bytes: Bytes, expected: Option<&Etag>) -> Result<Etag> {
        self.inner.put_swap(&self.key(key), bytes, expected)
    }
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(&self.key(key))
    }
    fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, Etag)>> {
        self.inner.get_tagged(&self.key(key))
    }
    fn head(&self, key: &str) -> Result<Option<BlobMeta>> {
        Ok(self.inner.head(&self.key(key))?.map(|mut m| {
            m.key = key.to_string();
            m
        }))
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&self.key(key))
    }
    fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let mut out = self.inner.list(&self.key(prefix))?;
        for m in &mut out {
            m.key = m.key[self.prefix.len()..].to_string();
        }
        Ok(out)
    }
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.inner.local_path(&self.key(key))
    }
    fn describe(&self) -> String {
        format!(
            "{}/{}",
            self.inner.describe(),
            self.prefix.trim_end_matches('/')
        )
    }
}
