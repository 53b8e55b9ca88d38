//! The proxy's page rendering: a (verified) PEP 691 JSON page rewritten so every file link
//! points back at the proxy, then rendered as JSON and as PEP 503 HTML; plus the request-path
//! and link helpers on the input as text. Checks: nothing panics; every kept file's target
//! is a clean target path, and its proxy link leads back to it (percent-decoded once); the JSON rendering parses
//! and keeps exactly those files; the HTML has exactly the page's fixed markup plus one
//! `<a …>…</a><br />` per file (nothing in the page can inject markup).
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use tufpi_proxy::pages::{proxy_link, rewrite, target_of_request};
use tufpi_simple::{negotiate, normalize_valid as normalize};

const PAGE_URL: &str = "http://index.test:4458/simple/demo/vnd.pypi.simple.v1.json";
const BASE: &str = "http://index.test:4458/";

/// The installer follows the proxy link to `t` and asks for exactly `t` again.
fn check_target(t: &str) {
    let link = proxy_link(t);
    let rest = link.strip_prefix("../../").expect("relative proxy link");
    assert!(!rest.contains(['"', '<', '>', ' ', '#', '?', '\'', '&']), "{link:?}");
    assert_eq!(percent_decode_str(rest).decode_utf8().unwrap(), t);
    assert_eq!(target_of_request(&format!("/{rest}")).as_deref(), Some(t));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = target_of_request(s) {
            check_target(&t);
        }
        if let Some(n) = normalize(s) {
            assert_eq!(normalize(&n).as_deref(), Some(n.as_str()), "normalize is idempotent");
        }
        let _ = negotiate(Some(s), None);
        let _ = negotiate(None, Some(s));
    }
    let Ok(page) = rewrite(data, PAGE_URL, BASE) else {
        return;
    };
    for (t, meta) in &page.targets {
        check_target(t);
        if let Some(m) = meta {
            assert_eq!(m, &format!("{t}.metadata"));
        }
    }
    let _ = page.name();
    let json: serde_json::Value = serde_json::from_slice(&page.json()).expect("JSON rendering parses");
    let files = json["files"].as_array().expect("files list");
    assert_eq!(files.len(), page.targets.len());
    for (f, (t, _)) in files.iter().zip(&page.targets) {
        assert_eq!(f["url"].as_str(), Some(proxy_link(t).as_str()));
    }
    let html = String::from_utf8(page.html()).expect("HTML is UTF-8");
    let n = page.targets.len();
    // 12 tags of the page itself, 3 per file (<a …>, </a>, <br />).
    assert_eq!(html.matches('<').count(), 12 + 3 * n, "{html}");
    assert_eq!(html.matches('>').count(), 12 + 3 * n, "{html}");
    assert_eq!(html.matches("<a href=\"").count(), n);
});
