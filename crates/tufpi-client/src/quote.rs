//! URL quoting: role names and target paths as file names and as URLs, python-tuf's way.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tufpi_core::metadata::TargetFile;

use crate::error::ClientError;

/// Python's `urllib.parse.quote(s, safe="")`: everything but `A-Za-z0-9_.-~` is encoded,
/// `/` included, so a name can never leave its directory.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Percent-encode a role name or target path into one file-name-safe component.
pub fn quote(name: &str) -> String {
    let q = utf8_percent_encode(name, QUOTE).to_string();
    // "." and ".." are the only all-safe names that still mean something to a filesystem.
    match q.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => q,
    }
}

/// Encode a target path for a URL: each `/`-separated segment quoted, `/` kept. A path with a
/// `.` or `..` segment is quoted whole, `/` included: URL parsing resolves dot segments (even
/// percent-encoded ones, per the WHATWG URL standard) and they would climb out of the target
/// base. `None` for a bare `.` or `..`, which has no URL form under the base.
fn quote_path(path: &str) -> Option<String> {
    let encode = |s: &str| utf8_percent_encode(s, QUOTE).to_string();
    if path.split('/').any(|s| s == "." || s == "..") {
        return (path != "." && path != "..").then(|| encode(path));
    }
    Some(path.split('/').map(encode).collect::<Vec<_>>().join("/"))
}

/// `url` ending with `/`, ready to have names appended.
pub fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// The URL of target `target_path` under `base` (which ends with `/`): each path segment
/// quoted, and with `hash_prefix` (consistent snapshots, when targets are fetched by hash)
/// the file name prefixed with its first signed hash, `dir/HASH.name`.
pub fn target_url_for(
    base: &str,
    target_path: &str,
    info: &TargetFile,
    hash_prefix: bool,
) -> Result<String, ClientError> {
    let path = match info.hashes.values().next() {
        Some(hash) if hash_prefix => match target_path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{hash}.{base}"),
            None => format!("{hash}.{target_path}"),
        },
        _ => target_path.to_string(),
    };
    let quoted = quote_path(&path).ok_or_else(|| {
        ClientError::Config(format!(
            "target path {target_path:?} has no URL form under the target base"
        ))
    })?;
    Ok(format!("{base}{quoted}"))
}

/// The URL of `role`'s metadata under `base` (which ends with `/`): `VERSION.ROLE.json`
/// when `version` is given (consistent snapshots), else `ROLE.json`.
pub fn metadata_url_for(base: &str, role: &str, version: Option<u64>) -> String {
    let name = quote(role);
    match version {
        Some(v) => format!("{base}{v}.{name}.json"),
        None => format!("{base}{name}.json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_never_escapes() {
        assert_eq!(quote("../x"), "..%2Fx");
        assert_eq!(quote("?#%/"), "%3F%23%25%2F");
        assert_eq!(quote(".."), "%2E%2E");
        assert_eq!(quote("bin-0a3f"), "bin-0a3f");
        assert_eq!(quote("café"), "caf%C3%A9");
        assert_eq!(
            quote_path("packages/a b/c?.whl").as_deref(),
            Some("packages/a%20b/c%3F.whl")
        );
        assert_eq!(quote_path("a/../../b").as_deref(), Some("a%2F..%2F..%2Fb"));
        assert_eq!(quote_path("./x").as_deref(), Some(".%2Fx"));
        assert_eq!(quote_path(".."), None);
        assert_eq!(quote_path("."), None);
    }

    #[test]
    fn metadata_urls() {
        assert_eq!(
            metadata_url_for("http://h/m/", "bin-0a", Some(7)),
            "http://h/m/7.bin-0a.json"
        );
        assert_eq!(
            metadata_url_for("http://h/m/", "a/b", None),
            "http://h/m/a%2Fb.json"
        );
    }
}
