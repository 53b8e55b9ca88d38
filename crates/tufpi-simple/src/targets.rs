//! The TUF target names of a PEP 458 index: what the index signs and serves, and what the
//! proxy looks up and checks. One owner for their shapes:
//!
//! - project pages, `simple/<project>/vnd.pypi.simple.v1.{html,json}` ([`PageKind`]);
//! - distribution files, `packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>`, named by their
//!   BLAKE2b-256 ([`package_path`], [`parse_package_path`]), and their PEP 658 core metadata,
//!   `<that>.metadata` ([`metadata_path`], [`split_metadata`]);
//! - the content-addressed form of any of them, `HASH.<basename>` in the same directory, as
//!   consistent-snapshot clients fetch targets ([`split_hash_prefix`]).

use crate::{HTML_TYPE, JSON_TYPE};

/// The directory of project pages in target paths.
const PAGES_PREFIX: &str = "simple/";
/// The directory of distribution files in target paths.
const PACKAGES_PREFIX: &str = "packages/";
/// The suffix of a distribution's PEP 658 core metadata target.
const METADATA_SUFFIX: &str = ".metadata";

/// The two renderings of a project page (PEP 503 HTML, PEP 691 JSON), each its own target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// PEP 503 HTML (`vnd.pypi.simple.v1.html`).
    Html,
    /// PEP 691 JSON (`vnd.pypi.simple.v1.json`).
    Json,
}

impl PageKind {
    /// Both kinds.
    pub const ALL: [PageKind; 2] = [PageKind::Html, PageKind::Json];

    /// Its short name (`html`, `json`), as the index database stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Html => "html",
            PageKind::Json => "json",
        }
    }

    /// The kind whose short name ([`PageKind::as_str`]) is `s`.
    pub fn from_name(s: &str) -> Option<PageKind> {
        PageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The page's target basename.
    pub fn target_basename(self) -> &'static str {
        match self {
            PageKind::Html => "vnd.pypi.simple.v1.html",
            PageKind::Json => "vnd.pypi.simple.v1.json",
        }
    }

    /// The page's TUF target path for `project` (normalised).
    pub fn target_path(self, project: &str) -> String {
        format!("{PAGES_PREFIX}{project}/{}", self.target_basename())
    }

    /// The PEP 691 media type of this rendering.
    pub fn media_type(self) -> &'static str {
        match self {
            PageKind::Html => HTML_TYPE,
            PageKind::Json => JSON_TYPE,
        }
    }
}

/// Whether target `path` is a project page (lies under `simple/`).
pub fn is_page_path(path: &str) -> bool {
    path.starts_with(PAGES_PREFIX)
}

/// Whether `s` is a 64-digit lower-case hex string (a SHA-256 or BLAKE2b-256 as TUF metadata
/// and PyPI write them, and as digests are compared).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The target path of a distribution file: `packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>`,
/// `blake2b` its BLAKE2b-256 (64 lower-case hex digits).
pub fn package_path(blake2b: &str, filename: &str) -> String {
    format!(
        "{PACKAGES_PREFIX}{}/{}/{}/{filename}",
        &blake2b[..2],
        &blake2b[2..4],
        &blake2b[4..]
    )
}

/// A target path of the [`package_path`] shape taken apart: the BLAKE2b-256 its directories
/// name (64 lower-case hex digits) and the basename after them (not empty). A distribution's
/// `.metadata`, and either under a `HASH.` prefix, name the distribution's digest too.
pub fn parse_package_path(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix(PACKAGES_PREFIX)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [a, b, c, name] = parts[..] else {
        return None;
    };
    if a.len() != 2 || b.len() != 2 || name.is_empty() {
        return None;
    }
    let digest = format!("{a}{b}{c}");
    is_hex64(&digest).then_some((digest, name))
}

/// The BLAKE2b-256 a PyPI-style path names ([`parse_package_path`]), or `None`.
pub fn named_blake2b_256(path: &str) -> Option<String> {
    parse_package_path(path).map(|(digest, _)| digest)
}

/// The target path of the PEP 658 core metadata of the distribution at `dist`.
pub fn metadata_path(dist: &str) -> String {
    format!("{dist}{METADATA_SUFFIX}")
}

/// `path` without a `.metadata` suffix, and whether it had one (then it names a
/// distribution's core metadata, the rest the distribution).
pub fn split_metadata(path: &str) -> (&str, bool) {
    match path.strip_suffix(METADATA_SUFFIX) {
        Some(dist) => (dist, true),
        None => (path, false),
    }
}

/// The last segment of a target path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A content-addressed basename, `HASH.NAME`, split into its hash prefix (not empty; not
/// checked to be hex) and the name; `None` without a `.`.
pub fn split_hash_prefix(basename: &str) -> Option<(&str, &str)> {
    basename
        .split_once('.')
        .filter(|(prefix, _)| !prefix.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_targets() {
        assert_eq!(
            PageKind::Json.target_path("foo-bar"),
            "simple/foo-bar/vnd.pypi.simple.v1.json"
        );
        assert_eq!(
            PageKind::Html.target_path("x"),
            "simple/x/vnd.pypi.simple.v1.html"
        );
        for k in PageKind::ALL {
            assert_eq!(PageKind::from_name(k.as_str()), Some(k));
            assert!(is_page_path(&k.target_path("p")));
        }
        assert_eq!(PageKind::from_name("xml"), None);
        assert_eq!(PageKind::Json.media_type(), JSON_TYPE);
        assert_eq!(PageKind::Html.media_type(), HTML_TYPE);
        assert!(!is_page_path("packages/aa/bb/cc/x.whl"));
    }

    #[test]
    fn package_paths_round_trip() {
        let b2 = format!("abcd{}", "e".repeat(60));
        let path = package_path(&b2, "x-1.0.tar.gz");
        assert_eq!(
            path,
            format!("packages/ab/cd/{}/x-1.0.tar.gz", "e".repeat(60))
        );
        assert_eq!(
            parse_package_path(&path),
            Some((b2.clone(), "x-1.0.tar.gz"))
        );
        let meta = metadata_path(&path);
        assert_eq!(named_blake2b_256(&meta).as_deref(), Some(b2.as_str()));
        assert_eq!(split_metadata(&meta), (path.as_str(), true));
        assert_eq!(split_metadata(&path), (path.as_str(), false));
        assert_eq!(basename(&path), "x-1.0.tar.gz");
        assert_eq!(basename("x"), "x");
        assert!(is_hex64(&b2));
        assert!(!is_hex64(&b2.to_uppercase()));
        assert!(!is_hex64("abc"));
    }

    #[test]
    fn paths_name_a_blake2b_256_only_pypi_style() {
        let b2 = format!("abcd{}", "e".repeat(60));
        let path = format!("packages/ab/cd/{}/x-1.0.tar.gz", "e".repeat(60));
        assert_eq!(named_blake2b_256(&path).as_deref(), Some(b2.as_str()));
        // A wheel's PEP 658 metadata names the wheel's digest (never its own).
        assert_eq!(
            named_blake2b_256(&format!("{path}.metadata")).as_deref(),
            Some(b2.as_str())
        );
        for bad in [
            format!("packages/AB/cd/{}/x", "e".repeat(60)),
            format!("packages/ab/cd/{}/x", "e".repeat(59)),
            format!("packages/ab/cd/{}/x", "g".repeat(60)),
            format!("packages/abc/d/{}/x", "e".repeat(60)),
            format!("packages/ab/cd/{}/", "e".repeat(60)),
            format!("packages/ab/cd/{}/x/y", "e".repeat(60)),
            format!("simple/ab/cd/{}/x", "e".repeat(60)),
        ] {
            assert_eq!(named_blake2b_256(&bad), None, "{bad}");
        }
    }

    #[test]
    fn hash_prefixes() {
        assert_eq!(split_hash_prefix("ab.x.whl"), Some(("ab", "x.whl")));
        assert_eq!(split_hash_prefix(".x"), None);
        assert_eq!(split_hash_prefix("x"), None);
    }
}
