//! TUF metadata compressed on the wire for clients that accept gzip. A 16,384-bin snapshot
//! is ~700 KiB of JSON and shrinks several-fold. Versioned files never change, so each is
//! compressed once into `DIR/cache/metadata-gz/`; `timestamp.json` is small and changes,
//! so it is compressed per request.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::IndexError;

/// Files smaller than this go as they are: gzip would save next to nothing.
pub(crate) const MIN_SIZE: u64 = 1024;

/// Whether the request's `Accept-Encoding` allows gzip (`gzip` or `*`, q not 0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q_zero = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .any(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0));
            (coding == "gzip" || coding == "x-gzip" || coding == "*") && !q_zero
        })
}

/// `data` gzipped.
pub(crate) fn gzip(data: &[u8]) -> Result<Vec<u8>, IndexError> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::new(6));
    enc.write_all(data)
        .and_then(|()| enc.finish())
        .map_err(|e| IndexError::io("compressing metadata", e))
}

/// The response carrying gzipped JSON metadata `gz`, with `cache` as its Cache-Control.
pub(crate) fn response(gz: impl Into<Body>, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
            (header::VARY, HeaderValue::from_static("Accept-Encoding")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        gz.into(),
    )
        .into_response()
}

/// The gzip form of metadata file `src` (named `name`), or `None` if it is too small to
/// bother. Versioned names are compressed once and kept under `cache`.
pub fn compressed(
    cache: &Path,
    name: &str,
    src: &Path,
    versioned: bool,
) -> Result<Option<Vec<u8>>, IndexError> {
    let len = std::fs::metadata(src)
        .map_err(|e| IndexError::io(format!("reading {}", src.display()), e))?
        .len();
    if len < MIN_SIZE {
        return Ok(None);
    }
    if !versioned {
        let data = std::fs::read(src)
            .map_err(|e| IndexError::io(format!("reading {}", src.display()), e))?;
        return gzip(&data).map(Some);
    }
    let gz: PathBuf = cache.join(format!("{name}.gz"));
    if let Ok(bytes) = std::fs::read(&gz) {
        return Ok(Some(bytes));
    }
    let data =
        std::fs::read(src).map_err(|e| IndexError::io(format!("reading {}", src.display()), e))?;
    let bytes = gzip(&data)?;
    // A cache: written whole then renamed (never half a file under the name); no fsync, a
    // lost entry is made again.
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(cache)?;
        let tmp = cache.join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &gz)
    };
    if let Err(e) = write() {
        tracing::warn!("caching compressed {name}: {e}");
    }
    Ok(Some(bytes))
}

/// Remove cached compressed files whose metadata file is gone (collected by GC).
pub fn sweep(cache: &Path, metadata: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = match name.strip_suffix(".gz") {
            Some(src) => !metadata.join(src).is_file(),
            None => name.ends_with(".tmp"),
        };
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn accept_encoding() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip, deflate"));
        assert!(h("br;q=1.0, gzip;q=0.8"));
        assert!(h("*"));
        assert!(!h("gzip;q=0"));
        assert!(!h("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn versioned_files_are_compressed_once() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("metadata");
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&meta).unwrap();
        let body = b"{\"signed\": 1}".repeat(200);
        std::fs::write(meta.join("3.snapshot.json"), &body).unwrap();
        std::fs::write(meta.join("1.bin-0.json"), b"{}").unwrap();
        let gz = compressed(
            &cache,
            "3.snapshot.json",
            &meta.join("3.snapshot.json"),
            true,
        )
        .unwrap()
        .unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, body);
        assert!(cache.join("3.snapshot.json.gz").is_file());
        assert!(
            compressed(&cache, "1.bin-0.json", &meta.join("1.bin-0.json"), true)
                .unwrap()
                .is_none()
        );
        std::fs::remove_file(meta.join("3.snapshot.json")).unwrap();
        assert_eq!(sweep(&cache, &meta), 1);
    }
}
