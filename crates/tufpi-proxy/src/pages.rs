//! Project pages: the rewrite of a verified PEP 691 JSON page into the HTML or JSON asked
//! for, every file link pointing back at the proxy (which verifies each file on the way
//! through), the request paths and links between the proxy's URLs and target paths, and the
//! verified pages kept in memory (`PageCache`).

use std::collections::HashMap;
use std::sync::Arc;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Map, Value};
use tufpi_simple::targets::metadata_path;
use tufpi_simple::{escape, PageKind};

/// The page target the proxy verifies for a project: its JSON rendering (the proxy renders
/// HTML from the same verified data, so both formats say exactly the same).
pub const VERIFIED_PAGE: PageKind = PageKind::Json;

/// Characters escaped in a target path segment of a link (`/` separates segments).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'\'')
    .add(b'&');

/// The proxy's link to `target` from a project page at `/simple/<project>/`: relative, so
/// it holds whatever host and port the installer reaches the proxy at.
pub fn proxy_link(target: &str) -> String {
    let quoted: Vec<String> = target
        .split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    format!("../../{}", quoted.join("/"))
}

/// The target path of a proxy request path (`/packages/…`): percent-decoded, refused if it
/// is empty, not UTF-8, or has empty, `.` or `..` segments.
pub fn target_of_request(path: &str) -> Option<String> {
    let p = path.strip_prefix('/')?;
    let decoded = percent_decode_str(p).decode_utf8().ok()?.into_owned();
    let bad = decoded.is_empty()
        || decoded
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || decoded.chars().any(char::is_control);
    (!bad).then_some(decoded)
}

/// A verified project page, its file links already turned into proxy links.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's JSON object, `files` rewritten.
    doc: Map<String, Value>,
    /// Files dropped because their URL is outside the target base (unverifiable).
    pub dropped: Vec<String>,
    /// The target paths of the files kept, in page order, each with its `.metadata` target
    /// when the page offers core metadata.
    pub targets: Vec<(String, Option<String>)>,
}

/// Parse a verified PEP 691 page fetched from `page_url` and point every file at the proxy.
/// A file whose URL does not lie under `target_base` cannot be verified and is dropped.
pub fn rewrite(bytes: &[u8], page_url: &str, target_base: &str) -> Result<Page, String> {
    let mut doc = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err("the page is not a JSON object".into()),
        Err(e) => return Err(format!("the page is not valid JSON: {e}")),
    };
    let base = url::Url::parse(page_url).map_err(|e| format!("page URL {page_url}: {e}"))?;
    let files = match doc.remove("files") {
        Some(Value::Array(files)) => files,
        _ => return Err("the page has no \"files\" list".into()),
    };
    let mut kept = Vec::with_capacity(files.len());
    let mut dropped = Vec::new();
    let mut targets = Vec::with_capacity(files.len());
    for f in files {
        let Value::Object(mut f) = f else {
            return Err("a \"files\" entry is not an object".into());
        };
        let filename = f
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let target = f
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| base.join(u).ok())
            .and_then(|u| target_under(&u, target_base));
        match target {
            Some(t) => {
                f.insert("url".into(), json!(proxy_link(&t)));
                let meta = ["core-metadata", "dist-info-metadata"]
                    .iter()
                    .any(|k| f.get(*k).is_some_and(|v| v.as_bool() != Some(false)));
                targets.push((t.clone(), meta.then(|| metadata_path(&t))));
                kept.push(Value::Object(f));
            }
            None => dropped.push(filename),
        }
    }
    doc.insert("files".into(), Value::Array(kept));
    Ok(Page {
        doc,
        dropped,
        targets,
    })
}

/// The target path of `url` if it lies under `base` (query and fragment ignored).
fn target_under(url: &url::Url, base: &str) -> Option<String> {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let rest = u.as_str().strip_prefix(base)?;
    target_of_request(&format!("/{rest}"))
}

/// `alg=hex` for a PEP 691 hashes object: sha256 if given, else the first.
fn hash_fragment(hashes: Option<&Value>) -> Option<String> {
    let h = hashes?.as_object()?;
    let (alg, hex) = h.get_key_value("sha256").or_else(|| h.iter().next())?;
    Some(format!("{alg}={}", hex.as_str()?))
}

/// The PEP 658 attribute value for a `core-metadata` field (`true` or a hashes object).
fn metadata_attr(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Bool(true) => Some("true".into()),
        h @ Value::Object(_) => hash_fragment(Some(h)),
        _ => None,
    }
}

impl Page {
    /// The project name the page gives.
    pub fn name(&self) -> &str {
        self.doc.get("name").and_then(Value::as_str).unwrap_or("")
    }

    /// The page as PEP 691 JSON.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.doc).unwrap_or_default()
    }

    /// The page as PEP 503 HTML (PEP 592 yanking, PEP 658/714 metadata, hash fragments).
    pub fn html(&self) -> Vec<u8> {
        let name = escape(self.name());
        let api = self
            .doc
            .get("meta")
            .and_then(|m| m.get("api-version"))
            .and_then(Value::as_str)
            .unwrap_or("1.0");
        let mut s = format!(
            "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{}\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n",
            escape(api)
        );
        let files = self.doc.get("files").and_then(Value::as_array);
        for f in files.into_iter().flatten() {
            let get = |k: &str| f.get(k);
            let url = get("url").and_then(Value::as_str).unwrap_or("");
            let mut href = url.to_string();
            if let Some(frag) = hash_fragment(get("hashes")) {
                href = format!("{href}#{frag}");
            }
            s.push_str(&format!("    <a href=\"{}\"", escape(&href)));
            if let Some(rp) = get("requires-python").and_then(Value::as_str) {
                s.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
            }
            let meta = metadata_attr(get("core-metadata"))
                .or_else(|| metadata_attr(get("dist-info-metadata")));
            if let Some(m) = meta {
                let m = escape(&m);
                s.push_str(&format!(
                    " data-dist-info-metadata=\"{m}\" data-core-metadata=\"{m}\""
                ));
            }
            match get("yanked") {
                Some(Value::Bool(true)) => s.push_str(" data-yanked=\"\""),
                Some(Value::String(r)) => s.push_str(&format!(" data-yanked=\"{}\"", escape(r))),
                _ => {}
            }
            let filename = get("filename").and_then(Value::as_str).unwrap_or("");
            s.push_str(&format!(">{}</a><br />\n", escape(filename)));
        }
        s.push_str("  </body>\n</html>\n");
        s.into_bytes()
    }
}

/// Most bytes of signed page files whose parsed pages are kept in memory (a parsed page
/// takes several times its file's size); the lot is dropped when a new page would pass it.
const PAGE_CACHE_BYTES: usize = 16 << 20;

/// Verified pages in memory: the newest version of each page only, bounded in bytes.
#[derive(Default)]
pub(crate) struct PageCache {
    /// Target path → (signed digest, page, its file's size).
    pages: HashMap<String, (String, Arc<Page>, usize)>,
    /// Sum of the file sizes.
    bytes: usize,
}

impl PageCache {
    pub(crate) fn get(&self, target: &str, digest: &str) -> Option<Arc<Page>> {
        self.pages
            .get(target)
            .filter(|(d, _, _)| d == digest)
            .map(|(_, p, _)| p.clone())
    }

    pub(crate) fn insert(&mut self, target: String, digest: String, page: Arc<Page>, size: usize) {
        if let Some((_, _, old)) = self.pages.remove(&target) {
            self.bytes -= old;
        }
        if size > PAGE_CACHE_BYTES {
            return;
        }
        if self.bytes + size > PAGE_CACHE_BYTES {
            self.pages.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        self.pages.insert(target, (digest, page, size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://index.test:4458/";

    fn page() -> Vec<u8> {
        json!({
            "meta": {"api-version": "1.1"},
            "name": "foo-bar",
            "versions": ["1.0"],
            "files": [
                {"filename": "foo_bar-1.0-py3-none-any.whl",
                 "url": "../../packages/ab/cd/ef/foo_bar-1.0-py3-none-any.whl",
                 "hashes": {"sha256": "aa"}, "requires-python": ">=3.8",
                 "core-metadata": {"sha256": "cc"}, "dist-info-metadata": {"sha256": "cc"},
                 "yanked": "bad <build>", "size": 3, "upload-time": "2024-01-01T00:00:00Z"},
                {"filename": "foo_bar-1.0.tar.gz",
                 "url": "http://index.test:4458/packages/ab/cd/ef/foo_bar-1.0.tar.gz#sha256=bb",
                 "hashes": {"sha256": "bb"}, "yanked": false},
                {"filename": "evil-1.0.tar.gz", "url": "http://elsewhere.test/evil-1.0.tar.gz",
                 "hashes": {"sha256": "dd"}}
            ]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn links_point_back_at_the_proxy_and_foreign_ones_go() {
        let p = rewrite(
            &page(),
            "http://index.test:4458/simple/foo-bar/vnd.pypi.simple.v1.json",
            BASE,
        )
        .unwrap();
        assert_eq!(p.dropped, vec!["evil-1.0.tar.gz".to_string()]);
        let v: Value = serde_json::from_slice(&p.json()).unwrap();
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0]["url"],
            "../../packages/ab/cd/ef/foo_bar-1.0-py3-none-any.whl"
        );
        assert_eq!(
            files[1]["url"],
            "../../packages/ab/cd/ef/foo_bar-1.0.tar.gz"
        );
        assert_eq!(files[0]["core-metadata"]["sha256"], "cc");
        assert_eq!(v["versions"], json!(["1.0"]));
        let html = String::from_utf8(p.html()).unwrap();
        assert!(html.contains("content=\"1.1\""), "{html}");
        assert!(html.contains(
            "<a href=\"../../packages/ab/cd/ef/foo_bar-1.0-py3-none-any.whl#sha256=aa\" data-requires-python=\"&gt;=3.8\" data-dist-info-metadata=\"sha256=cc\" data-core-metadata=\"sha256=cc\" data-yanked=\"bad &lt;build&gt;\">foo_bar-1.0-py3-none-any.whl</a>"
        ), "{html}");
        assert!(html.contains("foo_bar-1.0.tar.gz#sha256=bb\">foo_bar-1.0.tar.gz</a>"));
        assert!(!html.contains("evil"));
    }

    #[test]
    fn bad_pages_are_refused() {
        let url = "http://index.test:4458/simple/x/vnd.pypi.simple.v1.json";
        assert!(rewrite(b"[]", url, BASE).is_err());
        assert!(rewrite(b"{", url, BASE).is_err());
        assert!(rewrite(b"{\"name\": \"x\"}", url, BASE).is_err());
        assert!(rewrite(b"{\"files\": [1]}", url, BASE).is_err());
    }

    #[test]
    fn request_paths_and_links() {
        assert_eq!(
            target_of_request("/packages/a%20b/c.whl").as_deref(),
            Some("packages/a b/c.whl")
        );
        for bad in [
            "/",
            "/a//b",
            "/a/../b",
            "/./a",
            "/a/%2e%2e/b",
            "/%ff",
            "/a%0a",
        ] {
            assert_eq!(target_of_request(bad), None, "{bad}");
        }
        assert_eq!(
            proxy_link("packages/a b/c#d.whl"),
            "../../packages/a%20b/c%23d.whl"
        );
    }

    #[test]
    fn the_page_cache_keeps_one_version_per_page_within_its_bytes() {
        let page = || {
            let doc = br#"{"meta":{"api-version":"1.1"},"name":"x","files":[]}"#;
            Arc::new(
                rewrite(
                    doc,
                    "http://h/simple/x/vnd.pypi.simple.v1.json",
                    "http://h/",
                )
                .unwrap(),
            )
        };
        let mut c = PageCache::default();
        for v in 0..100 {
            c.insert("simple/x/p".into(), format!("d{v}"), page(), 1 << 20);
        }
        assert_eq!(c.pages.len(), 1);
        assert_eq!(c.bytes, 1 << 20);
        assert!(c.get("simple/x/p", "d99").is_some());
        assert!(c.get("simple/x/p", "d98").is_none());
        for i in 0..100 {
            c.insert(format!("simple/p{i}/p"), "d".into(), page(), 1 << 20);
            assert!(c.bytes <= PAGE_CACHE_BYTES);
        }
        c.insert(
            "simple/huge/p".into(),
            "d".into(),
            page(),
            PAGE_CACHE_BYTES + 1,
        );
        assert!(c.get("simple/huge/p", "d").is_none());
    }
}
