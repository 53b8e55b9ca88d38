//! Storage URLs: `file:///path` (the local file system, today's data-directory layout) and
//! `s3://BUCKET[/PREFIX]` (S3-compatible object storage).

use std::path::PathBuf;
use std::sync::Arc;

use crate::{BlobError, BlobStore, FsStore, Result, S3Store};

/// Options beside the URL.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// An S3-compatible server's endpoint (`http://127.0.0.1:9000`); otherwise the AWS
    /// tools' configuration (`AWS_ENDPOINT_URL`, region, credentials) decides.
    pub endpoint: Option<String>,
}

/// A parsed storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory.
    File(PathBuf),
    /// A bucket and a key prefix (possibly empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
}

impl StorageUrl {
    /// Parse `url`.
    pub fn parse(url: &str) -> Result<StorageUrl> {
        let bad = |why: &str| BlobError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("a file URL names an absolute path: file:///path"));
            }
            return Ok(StorageUrl::File(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket: s3://BUCKET[/PREFIX]"));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if !prefix.is_empty() {
                crate::check_key(&prefix).map_err(|e| bad(&e.to_string()))?;
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        Err(bad("expected file:///path or s3://BUCKET[/PREFIX]"))
    }
}

/// Open the store `url` names.
pub fn open(url: &str, opts: &StorageOptions) -> Result<Arc<dyn BlobStore>> {
    match StorageUrl::parse(url)? {
        StorageUrl::File(p) => Ok(Arc::new(FsStore::open(&p)?)),
        StorageUrl::S3 { bucket, prefix } => Ok(Arc::new(S3Store::open(&bucket, &prefix, opts)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_s3() {
        assert_eq!(
            StorageUrl::parse("file:///srv/x").unwrap(),
            StorageUrl::File("/srv/x".into())
        );
        assert_eq!(
            StorageUrl::parse("s3://b/p/q/").unwrap(),
            StorageUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        for bad in ["file://rel", "s3://", "s3:///x", "http://x", "s3://b/../x"] {
            assert!(StorageUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
